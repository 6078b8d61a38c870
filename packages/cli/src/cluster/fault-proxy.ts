// A fault-injecting network between the nodes of a local cluster: one HTTP CONNECT proxy per node
// carries every connection that node opens to another node, so a partition between any two
// nodes can be cut and healed without touching the processes.
//
// How traffic gets here: a node started with `grpc_proxy=http://127.0.0.1:<its proxy>` in its
// environment opens every gRPC channel (Raft fetches and votes, broker heartbeats and sessions,
// follower fetches) as a CONNECT tunnel through that proxy (grpc-js honours the variable for
// every TCP target). The proxy therefore knows both ends of every tunnel: the node it belongs to,
// and the target, which it maps to a node by its listener address. Clients outside the cluster
// (the chaos workload, the CLI) do not use the proxies and are not cut off.
//
// What a cut looks like: like a real partition, not like a refused connection. Data on an
// existing tunnel between cut nodes stops flowing in both directions (the proxy stops reading,
// so the sender's socket buffers fill up, as with packets dropped and retransmitted); a new
// tunnel between cut nodes is neither accepted nor refused until the cut heals. Requests time
// out on their deadlines; when the cut heals, held bytes flow again and held connects complete.

import http from 'node:http';
import net from 'node:net';

/** Which node a host:port belongs to (undefined: not a node of this cluster; never cut). */
export type NodeOfAddress = (hostPort: string) => number | undefined;

/** A tunnel from a node to a target, and whether data flows through it. */
class Tunnel {
  private flowing = true;

  constructor(
    readonly fromNodeId: number,
    readonly toNodeId: number | undefined,
    private readonly client: net.Socket,
    private readonly upstream: net.Socket,
  ) {
    client.pipe(upstream);
    upstream.pipe(client);
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', closeBoth).on('close', closeBoth);
    upstream.on('error', closeBoth).on('close', closeBoth);
  }

  get closed(): boolean {
    return this.client.destroyed || this.upstream.destroyed;
  }

  /** Stops or restarts the flow in both directions. Bytes already read are still delivered (they "left the wire" before the cut). */
  setFlowing(flowing: boolean): void {
    if (flowing === this.flowing || this.closed) return;
    this.flowing = flowing;
    if (flowing) {
      this.client.pipe(this.upstream);
      this.upstream.pipe(this.client);
    } else {
      this.client.unpipe(this.upstream);
      this.upstream.unpipe(this.client);
      this.client.pause();
      this.upstream.pause();
    }
  }

  destroy(): void {
    this.client.destroy();
    this.upstream.destroy();
  }
}

/** A CONNECT request waiting for a cut to heal. */
interface HeldConnect {
  fromNodeId: number;
  toNodeId: number;
  open: () => void;
  socket: net.Socket;
}

export class FaultNetwork {
  private readonly proxies = new Map<number, { server: http.Server; port: number }>();
  private readonly tunnels = new Set<Tunnel>();
  private readonly held = new Set<HeldConnect>();
  /** Unordered pairs "a-b" (a < b) that cannot talk. */
  private readonly cuts = new Set<string>();

  constructor(private readonly nodeOf: NodeOfAddress) {}

  /** Starts (once) the proxy of `nodeId` on a loopback port; returns the value for its `grpc_proxy` variable. */
  async proxyFor(nodeId: number): Promise<string> {
    let proxy = this.proxies.get(nodeId);
    if (proxy === undefined) {
      const server = http.createServer((_request, response) => {
        response.writeHead(405, { 'content-type': 'text/plain' }).end('this proxy only tunnels (CONNECT)\n');
      });
      server.on('connect', (request: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.connect(nodeId, request, socket, head));
      const port = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
      });
      proxy = { server, port };
      this.proxies.set(nodeId, proxy);
    }
    return `http://127.0.0.1:${proxy.port}`;
  }

  /** Cuts `nodeId` off from every other node (both directions) until `heal`. */
  isolate(nodeId: number, otherNodeIds: readonly number[]): void {
    for (const other of otherNodeIds) if (other !== nodeId) this.cuts.add(pairKey(nodeId, other));
    this.apply();
  }

  /** Removes every cut: held bytes flow again, held connects complete. */
  heal(): void {
    this.cuts.clear();
    this.apply();
  }

  isCut(fromNodeId: number, toNodeId: number | undefined): boolean {
    return toNodeId !== undefined && this.cuts.has(pairKey(fromNodeId, toNodeId));
  }

  /** Tunnels currently open (for tests). */
  get openTunnels(): number {
    for (const tunnel of this.tunnels) if (tunnel.closed) this.tunnels.delete(tunnel);
    return this.tunnels.size;
  }

  async close(): Promise<void> {
    for (const tunnel of this.tunnels) tunnel.destroy();
    this.tunnels.clear();
    for (const held of this.held) held.socket.destroy();
    this.held.clear();
    await Promise.all(
      [...this.proxies.values()].map(({ server }) => {
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      }),
    );
    this.proxies.clear();
  }

  private apply(): void {
    for (const tunnel of this.tunnels) {
      if (tunnel.closed) this.tunnels.delete(tunnel);
      else tunnel.setFlowing(!this.isCut(tunnel.fromNodeId, tunnel.toNodeId));
    }
    for (const held of this.held) {
      if (!this.isCut(held.fromNodeId, held.toNodeId)) {
        this.held.delete(held);
        held.open();
      }
    }
  }

  private connect(fromNodeId: number, request: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const target = request.url ?? '';
    const at = target.lastIndexOf(':');
    const host = target.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(target.slice(at + 1));
    if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65_535) {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const toNodeId = this.nodeOf(target);
    socket.on('error', () => socket.destroy());
    const open = (): void => {
      if (socket.destroyed) return;
      const upstream = net.connect({ host, port });
      upstream.once('connect', () => {
        if (socket.destroyed) {
          upstream.destroy();
          return;
        }
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        const tunnel = new Tunnel(fromNodeId, toNodeId, socket, upstream);
        this.tunnels.add(tunnel);
        // A cut may have begun while the connect was under way.
        tunnel.setFlowing(!this.isCut(fromNodeId, toNodeId));
      });
      upstream.once('error', () => {
        upstream.destroy();
        if (!socket.destroyed) socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      });
    };
    if (toNodeId !== undefined && this.isCut(fromNodeId, toNodeId)) {
      const held: HeldConnect = { fromNodeId, toNodeId, open, socket };
      this.held.add(held);
      socket.once('close', () => this.held.delete(held));
      return;
    }
    open();
  }
}

function pairKey(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}
