// Shared by the benchmarks that run real `raftka server` controller processes on loopback:
// free ports, config files, process start/SIGKILL, and polling a condition with a deadline.

import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const cliMain = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'cli', 'dist', 'main.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export class BenchNode {
  child: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(
    readonly nodeId: number,
    readonly port: number,
    readonly configFile: string,
    readonly dataDirectory: string,
    /** When set, the server writes a V8 CPU profile there on a graceful stop. */
    readonly cpuProfileDir?: string,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  start(): void {
    // Warn level keeps the servers quiet unless something goes wrong, which then shows up here.
    const profiling = this.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', this.cpuProfileDir] : [];
    const child = spawn(process.execPath, [...profiling, cliMain, 'server', '--config', this.configFile, '--override', 'log.level=warn'], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    this.child = child;
    this.stopping = false;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        // Only the benchmark's own SIGKILLs and stops are expected; anything else is worth a line.
        if (signal !== 'SIGKILL' && !this.stopping) console.error(`node ${this.nodeId} exited unexpectedly: code ${code}, signal ${signal}`);
        resolve();
      }),
    );
  }

  /** Graceful stop (SIGTERM), so that a profiled server writes its profile. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.child?.kill('SIGTERM');
    await this.exited;
    this.child = undefined;
  }

  async kill(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }
}

/** Writes the config files of `count` controllers under `root`; `extra` lines go to every node. */
export async function createControllers(
  root: string,
  count: number,
  options: { extra?: readonly string[]; cpuProfileDir?: string } = {},
): Promise<BenchNode[]> {
  const ports: number[] = [];
  for (let index = 0; index < count; index++) ports.push(await freePort());
  const voters = ports.map((port, index) => `${index + 1}@127.0.0.1:${port}`).join(',');
  const nodes: BenchNode[] = [];
  for (let index = 0; index < count; index++) {
    const directory = path.join(root, `node-${index + 1}`);
    await fs.mkdir(directory, { recursive: true });
    const configFile = path.join(directory, 'server.properties');
    const dataDirectory = path.join(directory, 'data');
    await fs.writeFile(
      configFile,
      [
        'process.roles=controller',
        `node.id=${index + 1}`,
        `controller.quorum.voters=${voters}`,
        `listeners=CONTROLLER://127.0.0.1:${ports[index]}`,
        `log.dirs=${dataDirectory}`,
        ...(options.extra ?? []),
      ].join('\n'),
    );
    nodes.push(new BenchNode(index + 1, ports[index]!, configFile, dataDirectory, options.cpuProfileDir));
  }
  // Whatever happens to the benchmark, its servers must not outlive it.
  process.once('exit', () => {
    for (const node of nodes) node.child?.kill('SIGKILL');
  });
  return nodes;
}

/** Polls `probe` until it returns a value (errors count as "not yet"), or throws at the deadline. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, pollMs = 5): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** Total size of the files under a directory. */
export async function directoryBytes(directory: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    total += entry.isDirectory() ? await directoryBytes(full) : (await fs.stat(full)).size;
  }
  return total;
}
