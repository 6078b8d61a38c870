// Quorum benchmark: a 3-voter quorum of real `raftka server` processes over gRPC on loopback, with
// real storage (synced LevelDB writes), driven through the diagnostic AppendRecords RPC.
//
// Three measurements, run separately as OpenMessaging Benchmark does (max rate and latency are
// different questions):
//   1. max rate: APPENDS_IN_FLIGHT closed-loop writers of BATCH_RECORDS x RECORD_BYTES batches;
//      committed records/s and commit latency (client send -> commit acknowledged);
//   2. latency at a fixed offered rate (half the measured max), open loop: latency is measured
//      from each append's scheduled time, so a stall is not hidden (no coordinated omission);
//   3. failover: SIGKILL the leader, time until a new leader has committed an append; the killed
//      node is restarted and caught up between trials.
//
// Run: npm run bench:quorum   (options: --seconds N --trials N --in-flight N --batch-records N)

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { QuorumAdmin } from '../transport/quorum-admin.js';

const RECORD_POOL_SIZE = 65_536;

interface BenchOptions {
  seconds: number;
  trials: number;
  inFlight: number;
  batchRecords: number;
  recordBytes: number;
}

function parseOptions(argv: string[]): BenchOptions {
  const options: BenchOptions = { seconds: 10, trials: 12, inFlight: 8, batchRecords: 100, recordBytes: 100 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    switch (argv[i]) {
      case '--seconds':
        options.seconds = value;
        break;
      case '--trials':
        options.trials = value;
        break;
      case '--in-flight':
        options.inFlight = value;
        break;
      case '--batch-records':
        options.batchRecords = value;
        break;
      case '--record-bytes':
        options.recordBytes = value;
        break;
      default:
        throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return options;
}

const cliMain = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'cli', 'dist', 'main.js');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

class BenchNode {
  child: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();
  constructor(
    readonly nodeId: number,
    readonly port: number,
    readonly configFile: string,
  ) {}
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }
  start(): void {
    // Warn level keeps the servers quiet unless something goes wrong, which then shows up here.
    const child = spawn(process.execPath, [cliMain, 'server', '--config', this.configFile, '--override', 'log.level=warn'], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        // Only the benchmark's own SIGKILLs are expected; anything else is worth a line.
        if (signal !== 'SIGKILL') console.error(`node ${this.nodeId} exited unexpectedly: code ${code}, signal ${signal}`);
        resolve();
      }),
    );
  }
  async kill(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, pollMs = 5): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

function histogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

function ms(microseconds: number): string {
  return (microseconds / 1000).toFixed(2);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-quorum-bench-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  const voters = ports.map((port, index) => `${index + 1}@127.0.0.1:${port}`).join(',');
  const nodes: BenchNode[] = [];
  for (let index = 0; index < 3; index++) {
    const directory = path.join(root, `node-${index + 1}`);
    await fs.mkdir(directory, { recursive: true });
    const configFile = path.join(directory, 'server.properties');
    await fs.writeFile(
      configFile,
      [
        'process.roles=controller',
        `node.id=${index + 1}`,
        `controller.quorum.voters=${voters}`,
        `listeners=CONTROLLER://127.0.0.1:${ports[index]}`,
        `log.dirs=${path.join(directory, 'data')}`,
      ].join('\n'),
    );
    nodes.push(new BenchNode(index + 1, ports[index]!, configFile));
  }
  const admins = new Map(nodes.map((node) => [node.nodeId, new QuorumAdmin(node.address, 5_000)]));
  const admin = (nodeId: number): QuorumAdmin => admins.get(nodeId)!;
  try {
    for (const node of nodes) node.start();
    // Whatever happens to this process, its servers must not outlive it.
    process.once('exit', () => {
      for (const node of nodes) node.child?.kill('SIGKILL');
    });
    const leaderOf = async (): Promise<number> =>
      until('a leader', async () => {
        for (const node of nodes.filter((candidate) => candidate.child)) {
          const status = await admin(node.nodeId).describe().catch(() => undefined);
          if (status?.leaderId !== undefined && status.answeredBy === status.leaderId) return status.leaderId;
        }
        return undefined;
      }, 15_000);
    let leaderId = await leaderOf();
    // Random records drawn from a pre-made pool: generating them per append would spend the
    // benchmark client's CPU (on the same two cores as the servers) on randomness.
    const pool = Array.from({ length: RECORD_POOL_SIZE }, () => randomBytes(options.recordBytes));
    let poolPosition = 0;
    const batch = (): Uint8Array[] =>
      Array.from({ length: options.batchRecords }, () => pool[poolPosition++ % RECORD_POOL_SIZE]!);
    // Warm-up: channels, JIT, LevelDB files.
    for (let i = 0; i < 200; i++) await admin(leaderId).append(batch(), nodes[leaderId - 1]!.address);

    // 1. Max rate, closed loop.
    const maxRateLatency = histogram();
    let committedRecords = 0;
    const startedAt = performance.now();
    const endAt = startedAt + options.seconds * 1000;
    await Promise.all(
      Array.from({ length: options.inFlight }, async () => {
        while (performance.now() < endAt) {
          const records = batch();
          const sentAt = performance.now();
          await admin(leaderId).append(records, nodes[leaderId - 1]!.address);
          maxRateLatency.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
          committedRecords += records.length;
        }
      }),
    );
    const elapsedS = (performance.now() - startedAt) / 1000;
    const maxRate = committedRecords / elapsedS;
    console.log(
      `max rate: ${Math.round(maxRate)} committed records/s (${options.batchRecords} x ${options.recordBytes} B per append, ` +
        `${options.inFlight} appends in flight, ${elapsedS.toFixed(1)} s); commit latency ms p50 ${ms(maxRateLatency.getValueAtPercentile(50))} ` +
        `p99 ${ms(maxRateLatency.getValueAtPercentile(99))} p99.9 ${ms(maxRateLatency.getValueAtPercentile(99.9))} max ${ms(maxRateLatency.maxValue)}`,
    );

    // 2. Fixed offered rate (half of max), open loop.
    const offeredAppendsPerS = Math.max(1, Math.floor(maxRate / 2 / options.batchRecords));
    const intervalMs = 1000 / offeredAppendsPerS;
    const fixedLatency = histogram();
    const fixedStart = performance.now();
    const fixedEnd = fixedStart + options.seconds * 1000;
    const inFlight: Promise<void>[] = [];
    for (let sequence = 0; ; sequence++) {
      const scheduledAt = fixedStart + sequence * intervalMs;
      if (scheduledAt >= fixedEnd) break;
      const waitMs = scheduledAt - performance.now();
      if (waitMs > 1) await new Promise((resolve) => setTimeout(resolve, waitMs));
      inFlight.push(
        admin(leaderId)
          .append(batch(), nodes[leaderId - 1]!.address)
          .then(() => fixedLatency.recordValue(Math.max(1, Math.round((performance.now() - scheduledAt) * 1000)))),
      );
    }
    await Promise.all(inFlight);
    console.log(
      `fixed rate: ${offeredAppendsPerS * options.batchRecords} records/s offered (${offeredAppendsPerS} appends/s, open loop); ` +
        `commit latency ms p50 ${ms(fixedLatency.getValueAtPercentile(50))} p99 ${ms(fixedLatency.getValueAtPercentile(99))} ` +
        `p99.9 ${ms(fixedLatency.getValueAtPercentile(99.9))} max ${ms(fixedLatency.maxValue)}`,
    );

    // 3. Failover: SIGKILL the leader until a new leader has committed an append.
    const failover = histogram();
    const failoverMs: number[] = [];
    for (let trial = 0; trial < options.trials; trial++) {
      leaderId = await leaderOf();
      const victim = nodes[leaderId - 1]!;
      const survivors = nodes.filter((node) => node !== victim);
      const killedAt = performance.now();
      victim.child!.kill('SIGKILL');
      await until(
        'a new leader to commit',
        async () => {
          for (const node of survivors) {
            const result = await admin(node.nodeId).append([randomBytes(options.recordBytes)], node.address).catch(() => undefined);
            if (result) return result;
          }
          return undefined;
        },
        10_000,
        2,
      );
      const tookMs = performance.now() - killedAt;
      failoverMs.push(tookMs);
      failover.recordValue(Math.round(tookMs * 1000));
      await victim.exited;
      victim.child = undefined;
      victim.start();
      // Wait until the restarted node has caught up, so every trial starts from a full quorum.
      await until(
        'the restarted node to catch up',
        async () => {
          const status = await admin(survivors[0]!.nodeId).describe();
          const replica = status.replicas.find((candidate) => candidate.nodeId === victim.nodeId);
          return replica?.lag === 0 && replica.lastFetchAgoMs !== undefined && replica.lastFetchAgoMs < 200 ? true : undefined;
        },
        20_000,
        20,
      );
    }
    console.log(
      `failover (SIGKILL leader -> new leader committed), ${options.trials} trials: ms p50 ${ms(failover.getValueAtPercentile(50))} ` +
        `max ${ms(failover.maxValue)} (each: ${failoverMs.map((value) => value.toFixed(0)).join(', ')})`,
    );
  } finally {
    for (const client of admins.values()) client.close();
    await Promise.all(nodes.map((node) => node.kill()));
    await fs.rm(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
