// The chaos suite's cluster in containers: 3 controllers and 3 brokers, each its own container
// from the server image (deploy/docker/Dockerfile), configured only through RAFTKA_CFG_*
// variables, on one user-defined Docker network where they find each other by name
// (controller-1..3, broker-4..6: the alias carries the node id, as in deploy/compose). It
// implements the chaos scenario's ChaosCluster with Docker's own faults:
//
//   kill     docker kill (SIGKILL), then wait until the container has stopped
//   start    docker start of the same container: same config, same data (the image's VOLUME
//            /var/lib/raftka is an anonymous volume that lives as long as the container)
//   pause    docker pause (cgroup freezer: sockets stay open, nothing answers), resume: unpause
//   isolate  docker network disconnect from the cluster network, heal: connect again with the
//            same alias
//
// One network, and what isolation means here. A broker has two client listeners: INTERNAL (port
// 9092, advertised as broker-N:9092) for the other brokers on the cluster network, and EXTERNAL
// (advertised as 127.0.0.1:<host port>) for the workload in the test process on the host,
// published on loopback. Every container is attached to the cluster network only, so isolating a
// node cuts it off from everything: its peers and also the clients on the host, whose published
// port stops answering (connection refused) until the node is connected again. That is a whole-
// node partition; the process runner covers the other kind (only node-to-node links cut, clients
// still reach the old leader).
//
// Why not keep the published ports on a second network so that clients still reach an isolated
// node: tried (Docker's default bridge as the second network), and the isolated node then still
// has a default route through that bridge. A connection it opens while cut off leaves with the
// bridge address as its source; once it is connected again the SYN reaches the peer, but the
// answer goes to the bridge address and is dropped between the two bridges, so the connect hangs
// until TCP gives up (minutes). The node's gRPC channels to the controllers then stay down long
// after the heal, an artefact of the test set-up rather than a property of a partition. With
// one network a node that is cut off has no route at all: its connects fail at once
// (ENETUNREACH), its name lookups fail after the resolver's timeout (EAI_AGAIN, 10 s), its peers'
// connects to its address fail with EHOSTUNREACH, and it keeps its address when connected again
// (all measured with Docker 20.10).
//
// Host ports are chosen up front and bound explicitly (loopback only), so a container started
// again after a kill, or connected again after an isolation, keeps its published addresses
// (measured: it does), and an advertised EXTERNAL address stays valid for the whole run.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GenericContainer, Network, Wait, getContainerRuntimeClient, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { envVarForKey } from '@raftka/protocol';
import { QuorumAdmin, type QuorumStatus } from '@raftka/quorum';
import type { ChaosCluster } from '../../packages/cli/src/cluster/chaos/chaos-scenario.js';
import { freePort, waitFor } from '../support/process-cluster.js';

const REPOSITORY_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The tag image.test.ts builds too: the same build context, so a second build is a cache hit. */
export const RAFTKA_TEST_IMAGE = 'raftka:container-test';

/** Ports inside the containers (every container has its own network namespace). */
const CONTROLLER_PORT = 9093;
const INTERNAL_PORT = 9092;
const ADMIN_PORT = 9644;
const DATA_DIRECTORY = '/var/lib/raftka';

const CONTROLLERS_DEFAULT = 3;
const BROKERS_DEFAULT = 3;
/** From container start to /healthz (the process serves); readiness is waited for separately. */
const START_TIMEOUT_MS_DEFAULT = 60_000;
/** How long a killed container gets to be reported stopped. */
const KILL_WAIT_MS_MAX = 20_000;
/**
 * How long a node connected again gets to fetch the metadata log from the quorum leader and catch
 * up. Its gRPC channels come back on their own schedule (a name lookup begun while it was cut off
 * fails only at the resolver's timeout, and failed attempts are retried on a growing backoff):
 * measured 0.1 to 3 s, so the bound is generous.
 */
const HEAL_CATCH_UP_MS_MAX = 60_000;
/** One admin HTTP or quorum call: a paused or isolated node must not hold a poll for long. */
const QUERY_TIMEOUT_MS = 1_000;

/** Builds the server image from the working tree (the Dockerfile's layers make a rebuild cheap). */
export async function buildTestImage(tag = RAFTKA_TEST_IMAGE): Promise<void> {
  await GenericContainer.fromDockerfile(REPOSITORY_ROOT, 'deploy/docker/Dockerfile').build(tag, { deleteOnExit: false });
}

/**
 * Publishes ports on the loopback interface only (Docker's default is every interface), so the
 * cluster under test is not reachable from the network; and attaches the container to one
 * network only, under an alias. (testcontainers' withNetworkAliases creates the container on
 * Docker's default bridge and connects the named network besides: see the header for why that
 * second network is unwanted.)
 */
class ClusterNodeContainer extends GenericContainer {
  override withExposedPorts(...ports: Parameters<GenericContainer['withExposedPorts']>): this {
    super.withExposedPorts(...ports);
    for (const bindings of Object.values(this.hostConfig.PortBindings ?? {}) as { HostIp?: string }[][]) {
      for (const binding of bindings) binding.HostIp = '127.0.0.1';
    }
    return this;
  }

  /** The only network of the container, and its name there. */
  withOnlyNetwork(network: StartedNetwork, alias: string): this {
    this.withNetworkMode(network.getName());
    this.createOpts.NetworkingConfig = { EndpointsConfig: { [network.getName()]: { Aliases: [alias] } } };
    return this;
  }
}

type NodeRole = 'controller' | 'broker';

/** What the harness believes of a node; Docker is asked whenever it matters (kill waits on inspect). */
type NodeState = 'running' | 'paused' | 'killed';

interface ContainerNode {
  readonly nodeId: number;
  readonly role: NodeRole;
  /** The node's name on the cluster network (its network alias). */
  readonly alias: string;
  /** Host port of the admin HTTP listener (/healthz, /readyz). */
  readonly adminHostPort: number;
  /** Host port of the controller listener (controllers) or of the EXTERNAL client listener (brokers). */
  readonly hostPort: number;
  readonly container: StartedTestContainer;
  state: NodeState;
  // Invariant: isolated implies the container is not attached to the cluster network.
  isolated: boolean;
}

export interface ContainerClusterOptions {
  controllers?: number;
  brokers?: number;
  image?: string;
  /** Extra server keys for every node (e.g. `log.level`), passed as RAFTKA_CFG_* variables. */
  properties?: Readonly<Record<string, string>>;
  /** Further environment variables for every container (GRPC_TRACE, NODE_OPTIONS, ...). */
  environment?: Readonly<Record<string, string>>;
  startTimeoutMs?: number;
}

/** server.properties keys as the environment of a container. */
function environmentOf(properties: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(properties).map(([key, value]) => [envVarForKey(key), value]));
}

export class ContainerChaosCluster implements ChaosCluster {
  private readonly quorumAdmins = new Map<number, QuorumAdmin>();
  /** Per heal, ms from the reconnect until every healed node fetched the metadata log again, caught up. */
  readonly healCatchUpMs: number[] = [];

  private constructor(
    private readonly network: StartedNetwork,
    private readonly nodes: readonly ContainerNode[],
  ) {}

  /**
   * Starts the network and every container (in parallel), and returns once every node's process
   * serves /healthz; call `waitReady` for a quorum leader and registered brokers.
   */
  static async start(options: ContainerClusterOptions = {}): Promise<ContainerChaosCluster> {
    const controllers = options.controllers ?? CONTROLLERS_DEFAULT;
    const brokers = options.brokers ?? BROKERS_DEFAULT;
    const image = options.image ?? RAFTKA_TEST_IMAGE;
    const controllerIds = Array.from({ length: controllers }, (_, index) => index + 1);
    const brokerIds = Array.from({ length: brokers }, (_, index) => controllers + index + 1);
    const voters = controllerIds.map((nodeId) => `${nodeId}@controller-${nodeId}:${CONTROLLER_PORT}`).join(',');
    const shared: Record<string, string> = {
      'controller.quorum.voters': voters,
      'log.dirs': DATA_DIRECTORY,
      'admin.http.listener': `0.0.0.0:${ADMIN_PORT}`,
      // acks=all needs two in-sync copies; consumer offsets survive one broker failure.
      'min.insync.replicas': '2',
      'offsets.topic.replication.factor': String(Math.min(3, brokers)),
      ...options.properties,
    };
    const network = await new Network().start();
    const started: StartedTestContainer[] = [];
    try {
      const plan = async (nodeId: number, role: NodeRole): Promise<ContainerNode> => {
        const alias = `${role}-${nodeId}`;
        const adminHostPort = await freePort();
        const hostPort = await freePort();
        const properties: Record<string, string> =
          role === 'controller'
            ? { ...shared, 'node.id': String(nodeId), 'process.roles': 'controller', listeners: `CONTROLLER://0.0.0.0:${CONTROLLER_PORT}` }
            : {
                ...shared,
                'node.id': String(nodeId),
                'process.roles': 'broker',
                // EXTERNAL binds the host port inside the container too, so the address the
                // broker advertises is the same number on both sides of the port mapping.
                listeners: `INTERNAL://0.0.0.0:${INTERNAL_PORT},EXTERNAL://0.0.0.0:${hostPort}`,
                'advertised.listeners': `INTERNAL://${alias}:${INTERNAL_PORT},EXTERNAL://127.0.0.1:${hostPort}`,
                'listener.security.protocol.map': 'INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
                'inter.broker.listener.name': 'INTERNAL',
              };
        const containerPort = role === 'controller' ? CONTROLLER_PORT : hostPort;
        const container = await new ClusterNodeContainer(image)
          .withEnvironment({ ...environmentOf(properties), ...options.environment })
          .withOnlyNetwork(network, alias)
          .withExposedPorts({ container: ADMIN_PORT, host: adminHostPort }, { container: containerPort, host: hostPort })
          .withWaitStrategy(Wait.forHttp('/healthz', ADMIN_PORT).forStatusCode(200))
          .withStartupTimeout(options.startTimeoutMs ?? START_TIMEOUT_MS_DEFAULT)
          .start();
        started.push(container);
        return { nodeId, role, alias, adminHostPort, hostPort, container, state: 'running', isolated: false };
      };
      const nodes = await Promise.all([
        ...controllerIds.map((nodeId) => plan(nodeId, 'controller')),
        ...brokerIds.map((nodeId) => plan(nodeId, 'broker')),
      ]);
      return new ContainerChaosCluster(network, nodes);
    } catch (error) {
      await Promise.allSettled(started.map((container) => container.stop()));
      await network.stop().catch(() => undefined);
      throw error;
    }
  }

  get nodeIds(): number[] {
    return this.nodes.map((node) => node.nodeId);
  }

  get brokerIds(): number[] {
    return this.nodes.filter((node) => node.role === 'broker').map((node) => node.nodeId);
  }

  get controllerIds(): number[] {
    return this.nodes.filter((node) => node.role === 'controller').map((node) => node.nodeId);
  }

  /** The brokers' EXTERNAL listeners: what clients on this host bootstrap from. */
  get bootstrapServers(): string[] {
    return this.nodes.filter((node) => node.role === 'broker').map((node) => `127.0.0.1:${node.hostPort}`);
  }

  /** The node's admin HTTP listener as published on this host. */
  adminUrl(nodeId: number): string {
    return `http://127.0.0.1:${this.node(nodeId).adminHostPort}`;
  }

  /** The node's name on the cluster network. */
  aliasOf(nodeId: number): string {
    return this.node(nodeId).alias;
  }

  /** Runs a command inside the node's container (which has `node`): for checks of what a node can reach. */
  async exec(nodeId: number, command: string[]): Promise<{ exitCode: number; output: string }> {
    const result = await this.node(nodeId).container.exec(command);
    return { exitCode: result.exitCode, output: result.output };
  }

  async kill(nodeId: number): Promise<void> {
    const node = this.node(nodeId);
    const { client, container } = await this.docker(node);
    await container.kill({ signal: 'SIGKILL' });
    node.state = 'killed';
    await waitFor(`container of node ${nodeId} to stop`, async () => !(await client.container.inspect(container)).State.Running, KILL_WAIT_MS_MAX);
  }

  /**
   * Starts the killed container again. Docker reattaches it to its network with its alias and
   * port bindings; the process then opens its data like any restarted server.
   */
  async start(nodeId: number): Promise<void> {
    const node = this.node(nodeId);
    const { client, container } = await this.docker(node);
    await client.container.start(container);
    node.state = 'running';
    // The workload keeps the EXTERNAL addresses it bootstrapped from: they must still be this node's.
    const ports = (await client.container.inspect(container)).NetworkSettings.Ports;
    const published = Object.values(ports ?? {}).flatMap((bindings) => (bindings ?? []).map((binding) => Number(binding.HostPort)));
    if (!published.includes(node.hostPort) || !published.includes(node.adminHostPort)) {
      throw new Error(`node ${nodeId} came back on host ports ${published.join(', ')}, not ${node.hostPort} and ${node.adminHostPort}`);
    }
  }

  async pause(nodeId: number): Promise<void> {
    const node = this.node(nodeId);
    const { container } = await this.docker(node);
    await container.pause();
    node.state = 'paused';
  }

  async resume(nodeId: number): Promise<void> {
    const node = this.node(nodeId);
    const { container } = await this.docker(node);
    await container.unpause();
    node.state = 'running';
  }

  /** Disconnects the node from the cluster network: it reaches nothing, and nothing reaches it (see the header). */
  async isolate(nodeId: number): Promise<void> {
    const node = this.node(nodeId);
    if (node.isolated) return;
    const client = await getContainerRuntimeClient();
    await client.network.getById(this.network.getId()).disconnect({ Container: node.container.getId() });
    node.isolated = true;
  }

  /**
   * Connects every isolated node to the cluster network again, under its alias, and waits until
   * each of them fetches the metadata log from the quorum leader again and has caught up. Without
   * the wait, a broker whose controller heartbeats got through before its metadata fetches still
   * acts on the metadata it had when it was cut off (for one: leads partitions that have moved),
   * and what the scenario reads next depends on which channel reconnected first. The time it took
   * is kept in `healCatchUpMs`.
   */
  async heal(): Promise<void> {
    const client = await getContainerRuntimeClient();
    const network = client.network.getById(this.network.getId());
    const healed: ContainerNode[] = [];
    for (const node of this.nodes) {
      if (!node.isolated) continue;
      await network.connect({ Container: node.container.getId(), EndpointConfig: { Aliases: [node.alias] } });
      node.isolated = false;
      healed.push(node);
    }
    if (healed.length === 0) return;
    const connectedAtMs = Date.now();
    let lastSeen = 'no quorum leader answered';
    await waitFor(
      `nodes ${healed.map((node) => node.nodeId).join(', ')} to fetch the metadata log again after the heal`,
      async () => {
        const status = await this.quorumLeaderStatus();
        if (status === undefined) return false;
        const sinceConnectMs = Date.now() - connectedAtMs;
        const replicas = healed.map((node) => ({ node, replica: status.replicas.find((replica) => replica.nodeId === node.nodeId) }));
        lastSeen = replicas.map(({ node, replica }) => `node ${node.nodeId}: last fetch ${replica?.lastFetchAgoMs ?? '?'} ms ago, lag ${replica?.lag ?? '?'}`).join('; ');
        return replicas.every(({ replica }) => replica?.lastFetchAgoMs !== undefined && replica.lastFetchAgoMs < sinceConnectMs && replica.lag === 0);
      },
      HEAL_CATCH_UP_MS_MAX,
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; last seen ${lastSeen}`, { cause: error });
    });
    this.healCatchUpMs.push(Date.now() - connectedAtMs);
  }

  /**
   * The quorum has a leader and every node that runs answers /readyz with 200: a controller that
   * knows the leader and has caught up, a broker that is registered and unfenced.
   */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.waitForQuorumLeader(timeoutMs);
    const expected = this.nodes.filter((node) => node.state !== 'killed');
    let missing: string[] = [];
    await waitFor(
      'every running node to be ready',
      async () => {
        const answers = await Promise.all(expected.map(async (node) => ({ node, ready: await this.ready(node) })));
        missing = answers.filter((answer) => answer.ready !== true).map((answer) => `${answer.node.alias}: ${answer.ready === true ? '' : answer.ready}`);
        return missing.length === 0;
      },
      Math.max(1, deadline - Date.now()),
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; not ready: ${missing.join('; ')}`, { cause: error });
    });
  }

  /** The active controller, as a running controller that is the quorum leader reports it. */
  async waitForQuorumLeader(timeoutMs: number): Promise<number> {
    return waitFor('a quorum leader', async () => (await this.quorumLeaderStatus())?.leaderId, timeoutMs);
  }

  /** The quorum as its leader reports it (undefined while no running controller is a leader that says so). */
  private async quorumLeaderStatus(): Promise<QuorumStatus | undefined> {
    for (const node of this.nodes) {
      if (node.role !== 'controller' || node.state !== 'running') continue;
      const status = await this.quorumAdmin(node).describe().catch(() => undefined);
      // Only the leader's own word counts: a follower may still name a leader that is gone.
      if (status?.leaderId !== undefined && status.answeredBy === status.leaderId) return status;
    }
    return undefined;
  }

  /** Everything the node wrote (stdout and stderr) over all its starts, for a failure report. */
  async logs(nodeId: number): Promise<string> {
    const { container } = await this.docker(this.node(nodeId));
    const buffer = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    return demultiplex(buffer);
  }

  /** Removes every container (with its volume) and the network. */
  async stop(): Promise<void> {
    for (const admin of this.quorumAdmins.values()) admin.close();
    this.quorumAdmins.clear();
    const client = await getContainerRuntimeClient();
    // A paused container cannot be stopped; an isolated one is removed all the same.
    await Promise.allSettled(
      this.nodes.filter((node) => node.state === 'paused').map((node) => client.container.getById(node.container.getId()).unpause()),
    );
    await Promise.allSettled(this.nodes.map((node) => node.container.stop({ timeout: 0 })));
    await this.network.stop();
  }

  private node(nodeId: number): ContainerNode {
    const node = this.nodes.find((candidate) => candidate.nodeId === nodeId);
    if (!node) throw new Error(`no node ${nodeId} in this cluster (nodes ${this.nodeIds.join(', ')})`);
    return node;
  }

  /** StartedTestContainer has no kill/start/pause of the same container: dockerode has. */
  private async docker(node: ContainerNode) {
    const client = await getContainerRuntimeClient();
    return { client, container: client.container.getById(node.container.getId()) };
  }

  private quorumAdmin(node: ContainerNode): QuorumAdmin {
    let admin = this.quorumAdmins.get(node.nodeId);
    if (!admin) {
      admin = new QuorumAdmin(`127.0.0.1:${node.hostPort}`, QUERY_TIMEOUT_MS);
      this.quorumAdmins.set(node.nodeId, admin);
    }
    return admin;
  }

  /** true, or what the node says is missing (or why it did not answer). */
  private async ready(node: ContainerNode): Promise<true | string> {
    try {
      const response = await fetch(`http://127.0.0.1:${node.adminHostPort}/readyz`, { signal: AbortSignal.timeout(QUERY_TIMEOUT_MS) });
      const body = (await response.json()) as { ready: boolean; missing?: string[] };
      return response.status === 200 && body.ready ? true : (body.missing ?? []).join(', ') || `status ${response.status}`;
    } catch (error) {
      return (error as Error).message;
    }
  }
}

/**
 * Docker's log stream without a TTY interleaves stdout and stderr in frames: 1 byte stream, 3
 * padding, a 4-byte big-endian length, then the payload.
 */
function demultiplex(buffer: Buffer): string {
  const FRAME_HEADER_BYTES = 8;
  const parts: string[] = [];
  let offset = 0;
  while (offset + FRAME_HEADER_BYTES <= buffer.length) {
    const length = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + length).toString('utf8'));
    offset += FRAME_HEADER_BYTES + length;
  }
  return parts.join('');
}
