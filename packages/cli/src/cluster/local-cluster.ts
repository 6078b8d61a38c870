// A cluster of `raftka server` processes on this machine, driven from its state file.
//
// `raftka cluster up` spawns one detached process per node and writes `cluster.json` (pids,
// ports, roles, config paths) into the cluster directory; every later command (status, kill,
// pause, resume, restart, down) is a separate process that reads that file. The chaos suite uses
// the same class in-process. A pid in the state file is trusted only while the process with that
// pid still runs this node's config file (on Linux: its command line), so a pid reused by an
// unrelated process after a crash is never signalled.

import { spawn } from 'node:child_process';
import { promises as fs, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Admin, type TopicDescription } from '@raftka/client';
import { QuorumAdmin, type QuorumStatus } from '@raftka/quorum';
import { RaftkaError } from '@raftka/protocol';
import { processLiveness, type NodeLiveness } from './process-liveness.js';
import { consecutivePorts, planCluster, propertiesText, type LocalNodePlan, type LocalNodeRole } from './cluster-layout.js';

export { processLiveness, type NodeLiveness };

export const STATE_FILE_NAME = 'cluster.json';
const STATE_VERSION = 1;
/**
 * The built `raftka` entry point of this package: this module sits in `<package>/dist/cluster/`
 * (or `<package>/src/cluster/` when tests load the sources), the entry point in `<package>/dist/`.
 */
export const RAFTKA_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'main.js');
/** A graceful stop (controlled shutdown, leadership hand-over) gets this long before SIGKILL. */
export const STOP_TIMEOUT_MS_DEFAULT = 20_000;
/** How long `up` waits for a quorum leader and every broker to be registered and unfenced. */
export const READY_TIMEOUT_MS_DEFAULT = 60_000;
const POLL_INTERVAL_MS = 50;
/** Deadline of each status query: a paused node must not hang `raftka cluster status`. */
const QUERY_TIMEOUT_MS = 2_000;

export interface LocalNodeState extends LocalNodePlan {
  /** The pid of the last start; undefined before the first. */
  pid: number | undefined;
  startedAtMs: number | undefined;
}

export interface ClusterState {
  version: typeof STATE_VERSION;
  directory: string;
  createdAtMs: number;
  controllers: number;
  brokers: number;
  nodes: LocalNodeState[];
}

export interface ClusterUpOptions {
  directory: string;
  controllers?: number;
  brokers?: number;
  /** Ports basePort, basePort+1, ...; default: free ports chosen by the OS. */
  basePort?: number;
  /** Extra properties for every node. */
  properties?: Readonly<Record<string, string>>;
  /** Wait for a quorum leader and every broker unfenced (default true). */
  waitReady?: boolean;
  readyTimeoutMs?: number;
  /**
   * Extra environment variables per node id, for this process's starts of the node (not kept in
   * the state file: later `raftka cluster` commands start nodes with their own environment).
   */
  environment?: Readonly<Record<number, Readonly<Record<string, string | undefined>>>>;
}

export interface NodeStatus {
  nodeId: number;
  roles: LocalNodeRole[];
  pid: number | undefined;
  state: NodeLiveness;
  address: string;
  logFile: string;
}

export interface ClusterStatus {
  directory: string;
  nodes: NodeStatus[];
  quorum: { leaderId: number | undefined; epoch: number; highWatermark: number } | undefined;
  activeControllerId: number | undefined;
  bootstrapServers: string[];
  controllers: string[];
  topics: TopicDescription[];
  /** What could not be asked (e.g. every broker down). */
  problems: string[];
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` until it yields a value other than undefined/false, or throws at the deadline. */
export async function pollUntil<T>(what: string, condition: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const reason = lastError === undefined ? '' : ` (last error: ${(lastError as Error)?.message ?? String(lastError)})`;
      throw new RaftkaError('REQUEST_TIMED_OUT', `timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
    }
    await sleep(POLL_INTERVAL_MS);
  }
}

/** A free loopback port chosen by the OS (bind to 0, read, release). */
async function freePort(avoid: ReadonlySet<number>): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port: bound } = server.address() as net.AddressInfo;
        server.close(() => resolve(bound));
      });
    });
    if (!avoid.has(port)) return port;
  }
}

export class LocalCluster {
  private quorumAdmins = new Map<string, QuorumAdmin>();
  private admin: Admin | undefined;
  private environment: Readonly<Record<number, Readonly<Record<string, string | undefined>>>> = {};

  private constructor(readonly state: ClusterState) {}

  get directory(): string {
    return this.state.directory;
  }

  get nodes(): readonly LocalNodeState[] {
    return this.state.nodes;
  }

  get controllerNodes(): LocalNodeState[] {
    return this.state.nodes.filter((node) => node.role === 'controller');
  }

  get brokerNodes(): LocalNodeState[] {
    return this.state.nodes.filter((node) => node.role === 'broker');
  }

  /** host:port of every broker's client listener. */
  get bootstrapServers(): string[] {
    return this.brokerNodes.map((node) => node.address);
  }

  /** host:port of every controller (quorum voter). */
  get controllerAddresses(): string[] {
    return this.controllerNodes.map((node) => node.address);
  }

  node(nodeId: number): LocalNodeState {
    const node = this.state.nodes.find((candidate) => candidate.nodeId === nodeId);
    if (!node) throw new RaftkaError('INVALID_REQUEST', `no node ${nodeId} in this cluster (nodes: ${this.state.nodes.map((n) => n.nodeId).join(', ')})`);
    return node;
  }

  liveness(nodeId: number): NodeLiveness {
    const node = this.node(nodeId);
    return processLiveness(node.pid, node.configFile);
  }

  static statePath(directory: string): string {
    return path.join(path.resolve(directory), STATE_FILE_NAME);
  }

  /** The cluster whose state file is in `directory`. */
  static async open(directory: string): Promise<LocalCluster> {
    const file = LocalCluster.statePath(directory);
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new RaftkaError('INVALID_REQUEST', `no cluster in ${path.resolve(directory)} (${STATE_FILE_NAME} not found); start one with raftka cluster up --dir ${directory}`);
      }
      throw error;
    }
    const state = JSON.parse(text) as ClusterState;
    if (state.version !== STATE_VERSION) throw new RaftkaError('INVALID_REQUEST', `${file}: unknown state version ${String(state.version)}`);
    return new LocalCluster(state);
  }

  /**
   * Starts a cluster in `directory`. A directory that already holds a stopped cluster is started
   * again with its configs and data (the size and port options are then ignored); one whose
   * nodes still run is refused.
   */
  static async up(options: ClusterUpOptions): Promise<LocalCluster> {
    const directory = path.resolve(options.directory);
    let cluster: LocalCluster;
    const existing = await LocalCluster.open(directory).catch(() => undefined);
    if (existing) {
      const running = existing.nodes.filter((node) => processLiveness(node.pid, node.configFile) !== 'dead');
      if (running.length > 0) {
        throw new RaftkaError('INVALID_REQUEST', `the cluster in ${directory} is running (nodes ${running.map((node) => node.nodeId).join(', ')}); stop it with raftka cluster down --dir ${options.directory}`);
      }
      cluster = existing;
    } else {
      const controllers = options.controllers ?? 3;
      const brokers = options.brokers ?? 3;
      const count = controllers + brokers;
      let ports: number[];
      if (options.basePort !== undefined) {
        ports = consecutivePorts(options.basePort, count);
      } else {
        ports = [];
        for (let index = 0; index < count; index++) ports.push(await freePort(new Set(ports)));
      }
      const plans = planCluster({ controllers, brokers, directory, ports, ...(options.properties ? { properties: options.properties } : {}) });
      for (const plan of plans) {
        await fs.mkdir(plan.dataDirectory, { recursive: true });
        await fs.writeFile(plan.configFile, propertiesText(plan));
      }
      cluster = new LocalCluster({
        version: STATE_VERSION,
        directory,
        createdAtMs: Date.now(),
        controllers,
        brokers,
        nodes: plans.map((plan) => ({ ...plan, pid: undefined, startedAtMs: undefined })),
      });
    }
    cluster.environment = options.environment ?? {};
    for (const node of cluster.nodes) cluster.spawnNode(node);
    await cluster.save();
    if (options.waitReady ?? true) {
      try {
        await cluster.waitReady(options.readyTimeoutMs ?? READY_TIMEOUT_MS_DEFAULT);
      } catch (error) {
        const dead = cluster.nodes.filter((node) => cluster.liveness(node.nodeId) === 'dead');
        const hint = dead.length > 0 ? `; nodes that exited: ${dead.map((node) => `${node.nodeId} (see ${node.logFile})`).join(', ')}` : '';
        throw new RaftkaError('REQUEST_TIMED_OUT', `${(error as Error).message}${hint}`, { cause: error });
      }
    }
    return cluster;
  }

  private spawnNode(node: LocalNodeState): void {
    const log = openSync(node.logFile, 'a');
    try {
      // Detached: the node outlives `raftka cluster up` and gets its own process group, so a
      // Ctrl-C in the terminal that started it does not stop the cluster.
      const child = spawn(process.execPath, [RAFTKA_MAIN, 'server', '--config', node.configFile], {
        cwd: node.directory,
        detached: true,
        stdio: ['ignore', log, log],
        env: { ...process.env, ...this.environment[node.nodeId] },
      });
      child.unref();
      if (child.pid === undefined) throw new RaftkaError('UNKNOWN_SERVER_ERROR', `could not start node ${node.nodeId}`);
      node.pid = child.pid;
      node.startedAtMs = Date.now();
    } finally {
      closeSync(log);
    }
  }

  async save(): Promise<void> {
    const file = LocalCluster.statePath(this.directory);
    // Write-then-rename: a reader never sees half a state file.
    await fs.writeFile(`${file}.tmp`, JSON.stringify(this.state, null, 2) + '\n');
    await fs.rename(`${file}.tmp`, file);
  }

  private quorumAdmin(address: string): QuorumAdmin {
    let admin = this.quorumAdmins.get(address);
    if (!admin) {
      admin = new QuorumAdmin(address, QUERY_TIMEOUT_MS);
      this.quorumAdmins.set(address, admin);
    }
    return admin;
  }

  /** An Admin on every broker, with short deadlines (owned by this object; closed by close()). */
  clientAdmin(): Admin {
    this.admin ??= new Admin({ bootstrapServers: this.bootstrapServers, requestTimeoutMs: QUERY_TIMEOUT_MS });
    return this.admin;
  }

  /** The quorum as its leader reports it, asked of the running controllers in turn. */
  async quorumStatus(): Promise<QuorumStatus | undefined> {
    let fallback: QuorumStatus | undefined;
    for (const node of this.controllerNodes) {
      if (this.liveness(node.nodeId) !== 'alive') continue;
      const status = await this.quorumAdmin(node.address).describe().catch(() => undefined);
      if (status?.leaderId !== undefined && status.answeredBy === status.leaderId) return status;
      fallback ??= status;
    }
    return fallback;
  }

  /** The id of the quorum leader (the active controller), once the running controllers know one. */
  async waitForQuorumLeader(timeoutMs: number, options: { not?: number } = {}): Promise<number> {
    return pollUntil(
      'a quorum leader',
      async () => {
        const status = await this.quorumStatus();
        const leader = status?.leaderId;
        return leader !== undefined && leader !== options.not && status?.answeredBy === leader ? leader : undefined;
      },
      timeoutMs,
    );
  }

  /** Waits until the quorum has a leader and every broker whose process runs is registered and unfenced. */
  async waitReady(timeoutMs = READY_TIMEOUT_MS_DEFAULT): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.waitForQuorumLeader(timeoutMs);
    const expected = this.brokerNodes.filter((node) => this.liveness(node.nodeId) !== 'dead').map((node) => node.nodeId);
    await pollUntil(
      `brokers ${expected.join(', ')} to be registered and unfenced`,
      async () => {
        const live = new Set((await this.clientAdmin().describeCluster()).brokers.map((broker) => broker.nodeId));
        return expected.every((nodeId) => live.has(nodeId));
      },
      Math.max(1, deadline - Date.now()),
    );
  }

  /** SIGKILL, and wait until the process is gone. */
  async kill(nodeId: number): Promise<void> {
    await this.signalAndWait(nodeId, 'SIGKILL', STOP_TIMEOUT_MS_DEFAULT);
  }

  /** SIGSTOP: the process keeps its sockets but answers nothing, like a long GC pause. */
  pause(nodeId: number): void {
    this.signal(nodeId, 'SIGSTOP');
  }

  resume(nodeId: number): void {
    this.signal(nodeId, 'SIGCONT');
  }

  /** Starts a node that is not running, with its config and data. */
  async start(nodeId: number): Promise<void> {
    const node = this.node(nodeId);
    if (this.liveness(nodeId) !== 'dead') throw new RaftkaError('INVALID_REQUEST', `node ${nodeId} is running (pid ${node.pid})`);
    this.spawnNode(node);
    await this.save();
  }

  /** Kills the node (SIGKILL, resuming it first if paused) and starts it again with the same config and data. */
  async restart(nodeId: number): Promise<void> {
    if (this.liveness(nodeId) !== 'dead') await this.kill(nodeId);
    await this.start(nodeId);
  }

  /**
   * Stops every node: brokers first (their controlled shutdown needs the controllers), then the
   * controllers, each with SIGTERM and SIGKILL after `timeoutMs` (`force`: SIGKILL at once). With
   * `purge` the node directories and the state file are removed.
   */
  async down(options: { purge?: boolean; timeoutMs?: number; force?: boolean } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? STOP_TIMEOUT_MS_DEFAULT;
    if (options.force) {
      // Tests throw a cluster away: SIGKILL everything at once (a paused process dies too).
      await Promise.all(this.nodes.filter((node) => this.liveness(node.nodeId) !== 'dead').map((node) => this.kill(node.nodeId)));
    }
    for (const group of [this.brokerNodes, this.controllerNodes]) {
      await Promise.all(group.map((node) => this.stopGracefully(node.nodeId, timeoutMs)));
    }
    this.close();
    if (options.purge) {
      for (const node of this.nodes) await fs.rm(node.directory, { recursive: true, force: true });
      await fs.rm(LocalCluster.statePath(this.directory), { force: true });
      // The directory itself only if nothing else lives in it.
      await fs.rmdir(this.directory).catch(() => undefined);
    } else {
      await this.save();
    }
  }

  private async stopGracefully(nodeId: number, timeoutMs: number): Promise<void> {
    if (this.liveness(nodeId) === 'dead') return;
    // A stopped process acts on SIGTERM only once continued.
    this.signal(nodeId, 'SIGCONT');
    this.signal(nodeId, 'SIGTERM');
    try {
      await pollUntil(`node ${nodeId} to stop`, () => this.liveness(nodeId) === 'dead', timeoutMs);
    } catch {
      await this.kill(nodeId);
    }
  }

  private signal(nodeId: number, signal: NodeJS.Signals): void {
    const node = this.node(nodeId);
    if (this.liveness(nodeId) === 'dead') throw new RaftkaError('INVALID_REQUEST', `node ${nodeId} is not running`);
    process.kill(node.pid!, signal);
  }

  private async signalAndWait(nodeId: number, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    this.signal(nodeId, signal);
    await pollUntil(`node ${nodeId} to exit`, () => this.liveness(nodeId) === 'dead', timeoutMs);
  }

  /** Processes, quorum and every topic's partitions, as far as the running nodes can tell. */
  async status(): Promise<ClusterStatus> {
    const problems: string[] = [];
    const nodes = this.nodes.map((node): NodeStatus => ({
      nodeId: node.nodeId,
      roles: [node.role],
      pid: node.pid,
      state: this.liveness(node.nodeId),
      address: node.address,
      logFile: node.logFile,
    }));
    const quorum = await this.quorumStatus().catch(() => undefined);
    if (quorum === undefined) problems.push('no controller answered DescribeQuorum');
    let activeControllerId = quorum?.leaderId;
    let topics: TopicDescription[] = [];
    const brokersUp = nodes.some((node) => node.state === 'alive' && node.roles.includes('broker'));
    if (brokersUp) {
      try {
        const admin = this.clientAdmin();
        const cluster = await admin.describeCluster();
        if (cluster.controllerId >= 0) activeControllerId = cluster.controllerId;
        const names = await admin.listTopics({ includeInternal: true });
        topics = names.length === 0 ? [] : await admin.describeTopics(names);
        topics.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
      } catch (error) {
        problems.push(`brokers: ${(error as Error).message}`);
      }
    } else {
      problems.push('no broker is running');
    }
    return {
      directory: this.directory,
      nodes,
      quorum: quorum === undefined ? undefined : { leaderId: quorum.leaderId, epoch: quorum.epoch, highWatermark: quorum.highWatermark },
      activeControllerId,
      bootstrapServers: this.bootstrapServers,
      controllers: this.controllerAddresses,
      topics,
      problems,
    };
  }

  /** SIGKILLs every running node synchronously (for exit handlers of programs that own the cluster). */
  killAllNow(): void {
    for (const node of this.nodes) {
      if (processLiveness(node.pid, node.configFile) !== 'dead') process.kill(node.pid!, 'SIGKILL');
    }
  }

  /** Closes the clients this object opened (the processes keep running). */
  close(): void {
    for (const admin of this.quorumAdmins.values()) admin.close();
    this.quorumAdmins.clear();
    const admin = this.admin;
    this.admin = undefined;
    void admin?.close().catch(() => undefined);
  }
}
