// The fault network's proxies on loopback: a tunnel carries bytes both ways; a cut between two
// nodes stops an open tunnel and holds a new one (neither refused nor answered) while other
// pairs keep talking; the heal delivers what was held. "Nothing arrived" is observed after a
// round trip on an uncut tunnel opened through the same proxy afterwards, never after a sleep.

import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultNetwork } from '../../src/cluster/fault-proxy.js';
import { pollUntil } from '../../src/cluster/local-cluster.js';

const DEADLINE_MS = 5_000;

interface EchoServer {
  address: string;
  received: () => string;
  close: () => Promise<void>;
}

/** A TCP server that echoes every byte and remembers what it got. */
async function echoServer(): Promise<EchoServer> {
  let received = '';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (data) => {
      received += data.toString('utf8');
      socket.write(data);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    received: () => received,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Opens a CONNECT tunnel through `proxyUrl` to `target`; resolves once the proxy answers 200. */
function tunnel(proxyUrl: string, target: string): { opened: Promise<net.Socket>; answered: () => boolean } {
  const proxy = new URL(proxyUrl);
  let answered = false;
  const opened = new Promise<net.Socket>((resolve, reject) => {
    const request = http.request({ host: proxy.hostname, port: Number(proxy.port), method: 'CONNECT', path: target });
    request.once('connect', (response, socket) => {
      answered = true;
      if (response.statusCode === 200) resolve(socket);
      else reject(new Error(`proxy answered ${response.statusCode}`));
    });
    request.once('error', reject);
    request.end();
  });
  return { opened, answered: () => answered };
}

/** Collects what comes back on a socket. */
function collect(socket: net.Socket): () => string {
  let text = '';
  socket.on('data', (data) => (text += data.toString('utf8')));
  return () => text;
}

async function roundTrip(socket: net.Socket, read: () => string, message: string): Promise<void> {
  const before = read().length;
  socket.write(message);
  await pollUntil(`the echo of ${message}`, () => read().length >= before + message.length, DEADLINE_MS);
}

describe('FaultNetwork', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setUp(): Promise<{ network: FaultNetwork; node2: EchoServer; node3: EchoServer; outsider: EchoServer }> {
    const node2 = await echoServer();
    const node3 = await echoServer();
    const outsider = await echoServer();
    const nodes = new Map([
      [node2.address, 2],
      [node3.address, 3],
    ]);
    const network = new FaultNetwork((hostPort) => nodes.get(hostPort));
    cleanups.push(node2.close, node3.close, outsider.close, () => network.close());
    return { network, node2, node3, outsider };
  }

  it('tunnels bytes both ways to the target of a CONNECT', async () => {
    const { network, node2 } = await setUp();
    const socket = await tunnel(await network.proxyFor(1), node2.address).opened;
    const read = collect(socket);
    await roundTrip(socket, read, 'hello');
    expect(read()).toBe('hello');
    expect(node2.received()).toBe('hello');
    expect(network.openTunnels).toBe(1);
    socket.destroy();
  });

  it('stops an open tunnel between cut nodes, keeps other pairs talking, and delivers the held bytes on heal', async () => {
    const { network, node2, node3 } = await setUp();
    const proxy = await network.proxyFor(1);
    const toNode2 = await tunnel(proxy, node2.address).opened;
    const readNode2 = collect(toNode2);
    await roundTrip(toNode2, readNode2, 'before;');

    network.isolate(2, [1, 2, 3]);
    expect(network.isCut(1, 2)).toBe(true);
    expect(network.isCut(2, 3)).toBe(true);
    expect(network.isCut(1, 3)).toBe(false);
    toNode2.write('during;');
    // Node 1 still reaches node 3 through the same proxy; once that round trip is done, the cut
    // tunnel has had every chance to carry its bytes.
    const toNode3 = await tunnel(proxy, node3.address).opened;
    const readNode3 = collect(toNode3);
    await roundTrip(toNode3, readNode3, 'other pair;');
    expect(node2.received()).toBe('before;');

    network.heal();
    await pollUntil('the held bytes to arrive', () => readNode2() === 'before;during;', DEADLINE_MS);
    expect(node2.received()).toBe('before;during;');
    toNode2.destroy();
    toNode3.destroy();
  });

  it('holds a new tunnel between cut nodes unanswered until the heal, then opens it', async () => {
    const { network, node2, node3 } = await setUp();
    const proxy = await network.proxyFor(1);
    network.isolate(1, [1, 2, 3]);
    const held = tunnel(proxy, node2.address);
    // A node outside the cut (here: node 3's proxy to node 2) is not held.
    const fromNode3 = await tunnel(await network.proxyFor(3), node2.address).opened;
    const readFromNode3 = collect(fromNode3);
    await roundTrip(fromNode3, readFromNode3, 'node 3 talks;');
    expect(held.answered()).toBe(false);

    network.heal();
    const socket = await held.opened;
    const read = collect(socket);
    await roundTrip(socket, read, 'after heal');
    expect(node3.received()).toBe('');
    socket.destroy();
    fromNode3.destroy();
  });

  it('never cuts a target that is not a node of the cluster', async () => {
    const { network, outsider } = await setUp();
    const proxy = await network.proxyFor(1);
    network.isolate(1, [1, 2, 3]);
    const socket = await tunnel(proxy, outsider.address).opened;
    const read = collect(socket);
    await roundTrip(socket, read, 'outside');
    expect(outsider.received()).toBe('outside');
    socket.destroy();
  });

  it('answers 400 to a CONNECT without a port and 502 when the target refuses', async () => {
    const { network } = await setUp();
    const proxy = await network.proxyFor(1);
    await expect(tunnel(proxy, 'no-port').opened).rejects.toThrow(/400/);
    const closed = await echoServer();
    await closed.close();
    await expect(tunnel(proxy, closed.address).opened).rejects.toThrow(/502/);
  });
});
