// A cluster of real `raftka server` processes on loopback, for integration tests and benchmarks.
//
// Each node gets a free 127.0.0.1 port, its own directory under one temp root and a generated
// properties file; the harness spawns `node packages/cli/dist/main.js server`, keeps every line
// the process writes (printed by `printLogs()` when a test fails), and offers kill / restart /
// wait-for-condition with a deadline. Tests never sleep: they poll a condition until a deadline.

import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil } from '@raftka/cli';
import { QuorumAdmin, type QuorumStatus } from '@raftka/quorum';

const REPOSITORY_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RAFTKA_BIN = path.join(REPOSITORY_ROOT, 'packages', 'cli', 'dist', 'main.js');
/** Output lines kept per node for failure reports. */
const LOG_LINES_MAX = 5_000;

/** Ports this process has handed out: the OS may offer a just-released port again. */
const handedOutPorts = new Set<number>();

/**
 * Asks the OS for a free loopback port (bind to 0, read it, release it), never one this process
 * handed out before: a cluster's nodes are given their ports before any of them binds, so a port
 * offered twice would make two nodes collide.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port: bound } = server.address() as net.AddressInfo;
        server.close(() => resolve(bound));
      });
    });
    if (handedOutPorts.has(port)) continue;
    handedOutPorts.add(port);
    return port;
  }
}

/** Polls `condition` until it returns a value other than undefined/false, or throws at the deadline. */
export function waitFor<T>(what: string, condition: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  return pollUntil(what, condition, timeoutMs);
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ServerProcess {
  readonly lines: string[] = [];
  private child: ChildProcess | undefined;
  private exitPromise: Promise<ProcessExit> | undefined;
  exit: ProcessExit | undefined;

  constructor(
    readonly nodeId: number,
    readonly port: number,
    readonly directory: string,
    readonly configFile: string,
    private readonly extraArgs: string[] = [],
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get dataDirectory(): string {
    return path.join(this.directory, 'data', '__cluster_metadata-0');
  }

  get running(): boolean {
    return this.child !== undefined && this.exit === undefined;
  }

  start(env: Record<string, string> = {}): void {
    this.exit = undefined;
    const child = spawn(process.execPath, [RAFTKA_BIN, 'server', '--config', this.configFile, ...this.extraArgs], {
      cwd: this.directory,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (stream: string) => (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        this.lines.push(`[node ${this.nodeId} ${stream}] ${line}`);
        if (this.lines.length > LOG_LINES_MAX) this.lines.shift();
      }
    };
    child.stdout!.on('data', keep('out'));
    child.stderr!.on('data', keep('err'));
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /** Freezes the process (SIGSTOP): it keeps its sockets but answers nothing, like a long GC pause. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Sends `signal` and waits for the process to exit. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<ProcessExit> {
    if (!this.child || !this.exitPromise) throw new Error(`node ${this.nodeId} was never started`);
    if (this.exit) return this.exit;
    this.child.kill(signal);
    return this.exitPromise;
  }

  /** Waits for the process to exit by itself (e.g. a start-up failure). */
  async exited(timeoutMs = 15_000): Promise<ProcessExit> {
    if (!this.exitPromise) throw new Error(`node ${this.nodeId} was never started`);
    return waitFor(`node ${this.nodeId} to exit`, () => this.exit, timeoutMs);
  }

  stderr(): string {
    return this.lines
      .filter((line) => line.startsWith(`[node ${this.nodeId} err] `))
      .map((line) => line.slice(`[node ${this.nodeId} err] `.length))
      .join('\n');
  }
}

export interface ClusterOptions {
  voters: number;
  /** Broker-only nodes (process.roles=broker), with node ids after the voters'. */
  brokers?: number;
  /** Extra properties for every node (e.g. timing overrides). */
  properties?: Record<string, string>;
}

export class ProcessCluster {
  private readonly admins = new Map<string, QuorumAdmin>();

  private constructor(
    readonly root: string,
    /** The controllers (quorum voters). */
    readonly nodes: ServerProcess[],
    /** The brokers; `address` is their client listener. */
    readonly brokers: ServerProcess[],
  ) {}

  static async create(options: ClusterOptions): Promise<ProcessCluster> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-cluster-'));
    const ports: number[] = [];
    for (let i = 0; i < options.voters; i++) ports.push(await freePort());
    const voters = ports.map((port, index) => `${index + 1}@127.0.0.1:${port}`).join(',');
    // __consumer_offsets is never created with fewer replicas than configured, so a cluster of
    // one or two brokers asks for that many (as `raftka cluster up` does); tests may override it.
    const brokerCount = options.brokers ?? 0;
    const groupDefaults: Record<string, string> =
      brokerCount > 0 && brokerCount < 3 ? { 'offsets.topic.replication.factor': String(brokerCount) } : {};
    const nodes: ServerProcess[] = [];
    for (let index = 0; index < options.voters; index++) {
      const nodeId = index + 1;
      const directory = path.join(root, `node-${nodeId}`);
      await fs.mkdir(directory, { recursive: true });
      const properties: Record<string, string> = {
        'process.roles': 'controller',
        'node.id': String(nodeId),
        'controller.quorum.voters': voters,
        listeners: `CONTROLLER://127.0.0.1:${ports[index]}`,
        'log.dirs': path.join(directory, 'data'),
        'log.level': 'info',
        ...groupDefaults,
        ...options.properties,
      };
      const configFile = path.join(directory, 'server.properties');
      await fs.writeFile(configFile, Object.entries(properties).map(([key, value]) => `${key}=${value}`).join('\n') + '\n');
      nodes.push(new ServerProcess(nodeId, ports[index]!, directory, configFile));
    }
    const brokers: ServerProcess[] = [];
    for (let index = 0; index < (options.brokers ?? 0); index++) {
      const nodeId = options.voters + index + 1;
      const port = await freePort();
      const directory = path.join(root, `node-${nodeId}`);
      await fs.mkdir(directory, { recursive: true });
      const properties: Record<string, string> = {
        'process.roles': 'broker',
        'node.id': String(nodeId),
        'controller.quorum.voters': voters,
        listeners: `PLAINTEXT://127.0.0.1:${port}`,
        'log.dirs': path.join(directory, 'data'),
        'log.level': 'info',
        ...groupDefaults,
        ...options.properties,
      };
      const configFile = path.join(directory, 'server.properties');
      await fs.writeFile(configFile, Object.entries(properties).map(([key, value]) => `${key}=${value}`).join('\n') + '\n');
      brokers.push(new ServerProcess(nodeId, port, directory, configFile));
    }
    return new ProcessCluster(root, nodes, brokers);
  }

  /** host:port of every broker's client listener. */
  get bootstrapServers(): string[] {
    return this.brokers.map((broker) => broker.address);
  }

  broker(nodeId: number): ServerProcess {
    const broker = this.brokers.find((candidate) => candidate.nodeId === nodeId);
    if (!broker) throw new Error(`no broker ${nodeId}`);
    return broker;
  }

  node(nodeId: number): ServerProcess {
    const node = this.nodes.find((candidate) => candidate.nodeId === nodeId);
    if (!node) throw new Error(`no node ${nodeId}`);
    return node;
  }

  startAll(): void {
    for (const node of [...this.nodes, ...this.brokers]) node.start();
  }

  admin(node: ServerProcess): QuorumAdmin {
    let admin = this.admins.get(node.address);
    if (!admin) {
      admin = new QuorumAdmin(node.address, 2_000);
      this.admins.set(node.address, admin);
    }
    return admin;
  }

  /** The status as the leader reports it, once the running nodes agree on one leader. */
  async leaderStatus(timeoutMs = 15_000, notLeader?: number, minEpoch = 0): Promise<QuorumStatus & { leaderId: number }> {
    return waitFor(
      'a leader',
      async () => {
        const running = this.nodes.filter((node) => node.running);
        for (const node of running) {
          const status = await this.admin(node).describe().catch(() => undefined);
          if (
            status?.leaderId !== undefined &&
            status.answeredBy === status.leaderId &&
            status.leaderId !== notLeader &&
            status.epoch >= minEpoch &&
            this.node(status.leaderId).running
          ) {
            return status as QuorumStatus & { leaderId: number };
          }
        }
        return undefined;
      },
      timeoutMs,
    );
  }

  /** Appends through any running node (redirected to the leader), retrying while leadership moves. */
  async append(records: Uint8Array[], timeoutMs = 15_000): Promise<{ offset: number; epoch: number }> {
    return waitFor(
      'an append to commit',
      async () => {
        for (const node of this.nodes.filter((candidate) => candidate.running)) {
          const result = await this.admin(node).append(records).catch(() => undefined);
          if (result) return result;
        }
        return undefined;
      },
      timeoutMs,
    );
  }

  /** Every committed data record on `node`, in order, as UTF-8 strings. */
  async committedRecords(node: ServerProcess): Promise<string[]> {
    const records: string[] = [];
    let offset = 0;
    for (;;) {
      const result = await this.admin(node).readCommitted(offset, 1_000);
      for (const entry of result.entries) {
        if (entry.payload.kind === 'data') for (const record of entry.payload.records) records.push(Buffer.from(record).toString('utf8'));
      }
      const last = result.entries.at(-1);
      if (!last) return records;
      offset = last.offset + 1;
    }
  }

  printLogs(): void {
    for (const node of [...this.nodes, ...this.brokers]) process.stderr.write(node.lines.join('\n') + '\n');
  }

  async destroy(): Promise<void> {
    for (const admin of this.admins.values()) admin.close();
    this.admins.clear();
    const running = [...this.nodes, ...this.brokers].filter((node) => node.running);
    // A paused process must be resumed to die from SIGKILL promptly on every platform.
    for (const node of running) node.resume();
    await Promise.all(running.map((node) => node.stop('SIGKILL')));
    await fs.rm(this.root, { recursive: true, force: true });
  }
}
