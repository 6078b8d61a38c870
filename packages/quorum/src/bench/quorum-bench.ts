// Quorum benchmark: a 3-voter quorum of real `raftka server` processes over gRPC on loopback, with
// real storage (synced LevelDB writes), driven through the diagnostic AppendRecords RPC.
//
// Three measurements, run separately as OpenMessaging Benchmark does (max rate and latency are
// different questions):
//   1. max rate: APPENDS_IN_FLIGHT closed-loop writers of BATCH_RECORDS x RECORD_BYTES batches;
//      committed records/s and commit latency (client send -> commit acknowledged);
//   2. latency at a fixed offered rate (--rate records/s, 20,000 by default: the commit-latency
//      target is p99 < 20 ms at that rate), open loop: latency is measured from each append's
//      scheduled time, so a stall is not hidden (no coordinated omission);
//   3. failover: SIGKILL the leader, time until a new leader has committed an append; the killed
//      node is restarted and caught up between trials.
//
// Run: npm run bench:quorum   (options: --seconds N --trials N --in-flight N --batch-records N
//      --record-bytes N --rate RECORDS_PER_S --phases max,fixed,failover --cpu-prof-dir DIR
//      --override key=value, repeatable: a server config line for every node)

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { encodeMetadataRecord } from '../metadata/metadata-records.js';
import { QuorumClient } from '../transport/grpc-transport.js';
import { QuorumAdmin } from '../transport/quorum-admin.js';
import { createControllers, until, type BenchNode } from './bench-cluster.js';

const RECORD_POOL_SIZE = 65_536;
/** Deadline of one append of the measurements. */
const APPEND_TIMEOUT_MS = 5_000;
const PHASES = ['max', 'fixed', 'failover'] as const;
type Phase = (typeof PHASES)[number];
/** The offered rate of the fixed-rate phase unless --rate says otherwise: the target's load. */
const DEFAULT_OFFERED_RECORDS_PER_S = 20_000;

interface BenchOptions {
  seconds: number;
  trials: number;
  inFlight: number;
  batchRecords: number;
  recordBytes: number;
  offeredRecordsPerS: number;
  /** Which measurements to run (--phases max,fixed,failover). */
  phases: ReadonlySet<Phase>;
  /** Where the servers write V8 CPU profiles (--cpu-prof-dir), if profiling. */
  cpuProfileDir: string | undefined;
  /** Server config lines for every node (--override key=value, repeatable). */
  overrides: string[];
}

function parseOptions(argv: string[]): BenchOptions {
  const options: BenchOptions = {
    seconds: 10,
    trials: 12,
    inFlight: 8,
    batchRecords: 100,
    recordBytes: 100,
    offeredRecordsPerS: DEFAULT_OFFERED_RECORDS_PER_S,
    phases: new Set(PHASES),
    cpuProfileDir: undefined,
    overrides: [],
  };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--cpu-prof-dir') {
      options.cpuProfileDir = path.resolve(argv[i + 1] ?? '.');
      continue;
    }
    if (argv[i] === '--override') {
      const line = argv[i + 1] ?? '';
      if (!/^[a-z0-9._-]+=/.test(line)) throw new Error(`--override needs key=value, got ${line}`);
      options.overrides.push(line);
      continue;
    }
    if (argv[i] === '--phases') {
      const phases = (argv[i + 1] ?? '').split(',');
      const unknown = phases.filter((phase) => !(PHASES as readonly string[]).includes(phase));
      if (unknown.length > 0) throw new Error(`unknown phase ${unknown.join(', ')}; allowed: ${PHASES.join(', ')}`);
      options.phases = new Set(phases as Phase[]);
      continue;
    }
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
      case '--rate':
        options.offeredRecordsPerS = value;
        break;
      default:
        throw new Error(`unknown option ${argv[i]}`);
    }
    if (!Number.isFinite(value) || value <= 0) {
      throw new Error(`option ${argv[i]} needs a positive number`);
    }
  }
  return options;
}

/** Clock ticks per second of /proc/<pid>/stat's CPU times (USER_HZ, 100 on Linux). */
const PROC_TICKS_PER_S = 100;

/**
 * CPU seconds (user + system) the servers have used so far, from /proc (Linux); undefined where
 * that is not available. CPU per committed record is steadier than latency on a shared machine.
 */
async function serversCpuSeconds(nodes: readonly BenchNode[]): Promise<number | undefined> {
  let total = 0;
  for (const node of nodes) {
    if (node.child?.pid === undefined) continue;
    const stat = await fs.readFile(`/proc/${node.child.pid}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined) return undefined;
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += (Number(fields[11]) + Number(fields[12])) / PROC_TICKS_PER_S;
  }
  return total;
}

function cpuPerRecord(cpuSeconds: number | undefined, records: number): string {
  return cpuSeconds === undefined ? '' : `; servers' CPU ${((cpuSeconds * 1e6) / records).toFixed(1)} µs per committed record`;
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
  const nodes = await createControllers(root, 3, {
    extra: options.overrides,
    ...(options.cpuProfileDir ? { cpuProfileDir: options.cpuProfileDir } : {}),
  });
  const admins = new Map(nodes.map((node) => [node.nodeId, new QuorumAdmin(node.address, 5_000)]));
  const admin = (nodeId: number): QuorumAdmin => admins.get(nodeId)!;
  let closeClients = (): void => undefined;
  try {
    for (const node of nodes) node.start();
    const leaderOf = async (): Promise<number> =>
      until('a leader', async () => {
        for (const node of nodes.filter((candidate) => candidate.child)) {
          const status = await admin(node.nodeId).describe().catch(() => undefined);
          if (status?.leaderId !== undefined && status.answeredBy === status.leaderId) return status.leaderId;
        }
        return undefined;
      }, 15_000);
    let leaderId = await leaderOf();
    // Records drawn from a pre-made pool of random payloads, each already wrapped in a NoOp
    // metadata record (what the controllers' state machine expects): making them per append would
    // spend the benchmark client's CPU (on the same two cores as the servers) on randomness and
    // encoding, and show up as commit latency.
    const pool = Array.from({ length: RECORD_POOL_SIZE }, () =>
      encodeMetadataRecord({ type: 'noOp', payload: randomBytes(options.recordBytes) }),
    );
    let poolPosition = 0;
    const batch = (): Uint8Array[] =>
      Array.from({ length: options.batchRecords }, () => pool[poolPosition++ % RECORD_POOL_SIZE]!);
    const clients = new Map(nodes.map((node) => [node.nodeId, new QuorumClient(node.address, true)]));
    const appendTo = async (nodeId: number, records: Uint8Array[]): Promise<void> => {
      const result = await clients.get(nodeId)!.appendRecords(records, APPEND_TIMEOUT_MS);
      if (result.errorCode !== 'NONE') throw new Error(`node ${nodeId} refused an append: ${result.errorCode} ${result.errorMessage}`);
    };
    closeClients = () => {
      for (const client of clients.values()) client.close();
    };
    // Warm-up: channels, JIT, LevelDB files. A fresh quorum on a busy machine may still change
    // leader here; the measurements after it must not see that.
    for (let i = 0; i < 200; i++) {
      const appended = await appendTo(leaderId, batch()).then(
        () => true,
        () => false,
      );
      if (!appended) leaderId = await leaderOf();
    }

    if (options.phases.has('max')) {
      // 1. Max rate, closed loop.
      const maxRateLatency = histogram();
      const cpuBefore = await serversCpuSeconds(nodes);
      let committedRecords = 0;
      const startedAt = performance.now();
      const endAt = startedAt + options.seconds * 1000;
      await Promise.all(
        Array.from({ length: options.inFlight }, async () => {
          while (performance.now() < endAt) {
            const records = batch();
            const sentAt = performance.now();
            await appendTo(leaderId, records);
            maxRateLatency.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
            committedRecords += records.length;
          }
        }),
      );
      const elapsedS = (performance.now() - startedAt) / 1000;
      const maxRate = committedRecords / elapsedS;
      const cpuAfter = await serversCpuSeconds(nodes);
      const maxCpuS = cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore;
      console.log(
        `max rate: ${Math.round(maxRate)} committed records/s (${options.batchRecords} x ${options.recordBytes} B per append, ` +
          `${options.inFlight} appends in flight, ${elapsedS.toFixed(1)} s); commit latency ms p50 ${ms(maxRateLatency.getValueAtPercentile(50))} ` +
          `p99 ${ms(maxRateLatency.getValueAtPercentile(99))} p99.9 ${ms(maxRateLatency.getValueAtPercentile(99.9))} max ${ms(maxRateLatency.maxValue)}` +
          cpuPerRecord(maxCpuS, committedRecords),
      );
    }

    if (options.phases.has('fixed')) {
      // 2. Fixed offered rate, open loop.
      const offeredAppendsPerS = Math.max(1, Math.round(options.offeredRecordsPerS / options.batchRecords));
      const intervalMs = 1000 / offeredAppendsPerS;
      const fixedLatency = histogram();
      const cpuBefore = await serversCpuSeconds(nodes);
      const fixedStart = performance.now();
      const fixedEnd = fixedStart + options.seconds * 1000;
      const inFlight: Promise<void>[] = [];
      for (let sequence = 0; ; sequence++) {
        const scheduledAt = fixedStart + sequence * intervalMs;
        if (scheduledAt >= fixedEnd) break;
        const waitMs = scheduledAt - performance.now();
        if (waitMs > 1) await new Promise((resolve) => setTimeout(resolve, waitMs));
        inFlight.push(
          appendTo(leaderId, batch()).then(() => fixedLatency.recordValue(Math.max(1, Math.round((performance.now() - scheduledAt) * 1000)))),
        );
      }
      await Promise.all(inFlight);
      const cpuAfter = await serversCpuSeconds(nodes);
      const fixedCpuS = cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore;
      const fixedCommittedPerS = (inFlight.length * options.batchRecords) / ((performance.now() - fixedStart) / 1000);
      console.log(
        `fixed rate: ${offeredAppendsPerS * options.batchRecords} records/s offered (${offeredAppendsPerS} appends/s, open loop), ` +
          `${Math.round(fixedCommittedPerS)} committed records/s; ` +
          `commit latency ms p50 ${ms(fixedLatency.getValueAtPercentile(50))} p99 ${ms(fixedLatency.getValueAtPercentile(99))} ` +
          `p99.9 ${ms(fixedLatency.getValueAtPercentile(99.9))} max ${ms(fixedLatency.maxValue)}` +
          cpuPerRecord(fixedCpuS, inFlight.length * options.batchRecords),
      );
    }

    if (options.phases.has('failover')) {
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
    }
  } finally {
    for (const client of admins.values()) client.close();
    closeClients();
    await Promise.all(nodes.map((node) => (options.cpuProfileDir ? node.stop() : node.kill())));
    await fs.rm(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
