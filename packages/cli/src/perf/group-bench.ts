#!/usr/bin/env node
// `npm run bench:groups`: consumer-group figures on a local process cluster.
//
//   1. Throughput: for each group size (default 1, 2, 4) a fresh group consumes every preloaded
//      record of a 24-partition topic from the earliest offset; the group's MB/s and records/s
//      are measured from the first partition assignment to the moment every partition was read
//      to its end (the join itself is reported apart, as "subscribe to assigned").
//   2. Join: in a stable group of 3, a 4th member subscribes; the time from its subscribe() to
//      the moment the assignment has settled (every partition owned by exactly one member, the
//      joiner owning at least one).
//   3. Kill: in a stable group of 4, one member is SIGKILLed; the time until the 3 survivors own
//      every partition. The coordinator only notices at the member's session timeout, so this is
//      measured for the SDK's default session timeout and for a low one.
//   4. Leave: the same with a graceful close() (LeaveGroup), which needs no timeout to expire.
//
// Every member is a child process (group-member.ts) with its own event loop: in-process members
// would share one loop, so a busy member would delay another's heartbeats and fetches, and one
// of them could not be killed alone. For comparison the throughput phase also runs each group
// with all its members in one process (layout "shared"; --throughput-layout picks). Members
// report the wall-clock time of every change of their owned partitions, so the figures do not
// include the IPC delay to this process.
//
// Options: --controllers (1) --brokers (3) --replication-factor (min(3, brokers)) --partitions
// (24) --records (200000) --record-bytes (1024) --members 1,2,4 --rounds (5)
// --throughput-layout separate,shared --session-timeout-ms (the SDK default)
// --low-session-timeout-ms (6000; 0 skips it) --assignor (the SDK default)
// --phases throughput,join,kill,leave --override key=value (server property for every node)
// --keep (keep the cluster directory) --json.

import { fork, type ChildProcess } from 'node:child_process';
import { promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Admin, Producer, resolveConsumerOptions } from '@raftka/client';
import { assertNever, invariant, RaftkaError } from '@raftka/protocol';
import { LocalCluster, pollUntil } from '../cluster/local-cluster.js';
import { rates } from './perf-stats.js';
import type { MemberCommand, MemberConfig, MemberEvent } from './group-member.js';

const MEMBER_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'group-member.js');
const PHASES = ['throughput', 'join', 'kill', 'leave'] as const;
type Phase = (typeof PHASES)[number];

/** The rebalance phases run on a group of this many members (the issue's "group of 4"). */
const GROUP_SIZE = 4;
/** Messages per Producer.send call while preloading (spread over every partition). */
const PRELOAD_MESSAGES_PER_SEND = 480;
/** Producer.send calls in flight while preloading; the producer batches across them. */
const PRELOAD_SENDS_IN_FLIGHT_MAX = 16;
/** How often members report consumption progress. */
const PROGRESS_INTERVAL_MS = 100;
/** A member process must start and build its consumer within this long. */
const MEMBER_READY_TIMEOUT_MS = 30_000;
/** A gracefully closing member that has not exited after this long is killed. */
const MEMBER_CLOSE_TIMEOUT_MS = 30_000;
/** Longest a join or graceful leave may take before the round counts as failed. */
const REBALANCE_TIMEOUT_MS = 60_000;
/** Heartbeats at most this fraction of the session timeout (Kafka's advice: a third). */
const HEARTBEAT_FRACTION_OF_SESSION = 1 / 3;

interface BenchOptions {
  controllers: number;
  brokers: number;
  replicationFactor: number;
  partitions: number;
  records: number;
  recordBytes: number;
  memberCounts: number[];
  layouts: ThroughputLayout[];
  rounds: number;
  sessionTimeoutMs: number;
  lowSessionTimeoutMs: number;
  assignors: string[];
  phases: Phase[];
  overrides: Record<string, string>;
  keep: boolean;
  json: boolean;
}

function parseOptions(): BenchOptions {
  const consumerDefaults = resolveConsumerOptions({ bootstrapServers: ['127.0.0.1:1'] });
  const { values } = parseArgs({
    options: {
      controllers: { type: 'string', default: '1' },
      brokers: { type: 'string', default: '3' },
      'replication-factor': { type: 'string' },
      partitions: { type: 'string', default: '24' },
      records: { type: 'string', default: '200000' },
      'record-bytes': { type: 'string', default: '1024' },
      members: { type: 'string', default: '1,2,4' },
      'throughput-layout': { type: 'string', default: 'separate,shared' },
      rounds: { type: 'string', default: '5' },
      'session-timeout-ms': { type: 'string', default: String(consumerDefaults.sessionTimeoutMs) },
      'low-session-timeout-ms': { type: 'string', default: '6000' },
      assignor: { type: 'string', default: consumerDefaults.partitionAssignmentStrategy.join(',') },
      phases: { type: 'string', default: PHASES.join(',') },
      override: { type: 'string', multiple: true, default: [] },
      keep: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const integer = (name: string, text: string, min: number): number => {
    const parsed = Number(text);
    if (!Number.isSafeInteger(parsed) || parsed < min) throw new Error(`--${name} ${text}: expected an integer >= ${min}`);
    return parsed;
  };
  const brokers = integer('brokers', values.brokers, 1);
  const phases = values.phases.split(',').map((phase) => phase.trim()) as Phase[];
  for (const phase of phases) if (!PHASES.includes(phase)) throw new Error(`--phases: unknown phase ${phase} (known: ${PHASES.join(', ')})`);
  const overrides: Record<string, string> = {};
  for (const flag of values.override) {
    const at = flag.indexOf('=');
    if (at <= 0) throw new Error(`--override ${flag}: expected key=value`);
    overrides[flag.slice(0, at)] = flag.slice(at + 1);
  }
  const options: BenchOptions = {
    controllers: integer('controllers', values.controllers, 1),
    brokers,
    replicationFactor: integer('replication-factor', values['replication-factor'] ?? String(Math.min(3, brokers)), 1),
    partitions: integer('partitions', values.partitions, GROUP_SIZE),
    records: integer('records', values.records, 1),
    recordBytes: integer('record-bytes', values['record-bytes'], 1),
    memberCounts: values.members.split(',').map((text) => integer('members', text.trim(), 1)),
    layouts: values['throughput-layout'].split(',').map((text) => {
      const layout = text.trim() as ThroughputLayout;
      if (!THROUGHPUT_LAYOUTS.includes(layout)) throw new Error(`--throughput-layout ${text}: expected ${THROUGHPUT_LAYOUTS.join(' and/or ')}`);
      return layout;
    }),
    rounds: integer('rounds', values.rounds, 1),
    sessionTimeoutMs: integer('session-timeout-ms', values['session-timeout-ms'], 1),
    lowSessionTimeoutMs: integer('low-session-timeout-ms', values['low-session-timeout-ms'], 0),
    assignors: values.assignor.split(',').map((name) => name.trim()),
    phases,
    overrides,
    keep: values.keep,
    json: values.json,
  };
  if (options.replicationFactor > brokers) throw new Error(`--replication-factor ${options.replicationFactor}: only ${brokers} broker(s)`);
  return options;
}

/** Heartbeat interval for a session timeout: the SDK default, or less when the session is short. */
function heartbeatIntervalFor(sessionTimeoutMs: number): number {
  const sdkDefault = resolveConsumerOptions({ bootstrapServers: ['127.0.0.1:1'] }).heartbeatIntervalMs;
  return Math.max(1, Math.min(sdkDefault, Math.floor(sessionTimeoutMs * HEARTBEAT_FRACTION_OF_SESSION)));
}

// ---- member processes ----------------------------------------------------------------------------

/** How often the benchmark looks at the members' reports while it waits. */
const WAIT_POLL_INTERVAL_MS = 20;

/**
 * Polls `condition` until it yields a value, or throws at the deadline. Unlike pollUntil, an
 * error thrown by the condition (a member failed or exited) ends the wait at once.
 */
async function waitFor<T>(what: string, condition: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const deadlineMs = Date.now() + timeoutMs;
  for (;;) {
    const value = condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() >= deadlineMs) throw new RaftkaError('REQUEST_TIMED_OUT', `timed out after ${timeoutMs} ms waiting for ${what}`, { retriable: false });
    await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_INTERVAL_MS));
  }
}

/** Every member process ever started, so that an exit of this program can kill the ones left. */
const allChildren = new Set<ChildProcess>();

interface MemberProgress {
  records: number;
  bytes: number;
  firstRecordMs: number | undefined;
  lastRecordMs: number | undefined;
  nextOffsets: Record<number, number>;
}

/** The parent's view of one member process. */
class Member {
  readonly child: ChildProcess;
  ready = false;
  exited = false;
  subscribedAtMs: number | undefined;
  /** The member's owned partitions as it last reported them. */
  owned: ReadonlySet<number> = new Set();
  /** When `owned` last changed (the member's clock, which is this machine's). */
  ownedSinceMs = 0;
  /** When the member first owned a partition. */
  firstOwnedAtMs: number | undefined;
  progress: MemberProgress = { records: 0, bytes: 0, firstRecordMs: undefined, lastRecordMs: undefined, nextOffsets: {} };
  failure: string | undefined;

  constructor(readonly name: string, config: MemberConfig) {
    this.child = fork(MEMBER_SCRIPT, [JSON.stringify(config)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    allChildren.add(this.child);
    this.child.on('message', (event: MemberEvent) => this.#onEvent(event));
    this.child.on('exit', () => {
      this.exited = true;
      allChildren.delete(this.child);
    });
  }

  #onEvent(event: MemberEvent): void {
    switch (event.kind) {
      case 'ready':
        this.ready = true;
        return;
      case 'subscribed':
        this.subscribedAtMs = event.atMs;
        return;
      case 'assignment': {
        const next = new Set(event.owned);
        const changed = next.size !== this.owned.size || [...next].some((partition) => !this.owned.has(partition));
        if (changed) {
          this.owned = next;
          this.ownedSinceMs = event.atMs;
          if (next.size > 0) this.firstOwnedAtMs ??= event.atMs;
        }
        return;
      }
      case 'progress':
        this.progress = { records: event.records, bytes: event.bytes, firstRecordMs: event.firstRecordMs, lastRecordMs: event.lastRecordMs, nextOffsets: event.nextOffsets };
        return;
      case 'closed':
        return;
      case 'failed':
        this.failure = event.message;
        process.stderr.write(`${new Date().toISOString()} member ${this.name} failed: ${event.message}\n`);
        return;
      default:
        assertNever(event, 'member event');
    }
  }

  command(command: MemberCommand): void {
    if (!this.exited && this.child.connected) this.child.send(command);
  }

  async waitReady(): Promise<void> {
    await waitFor(`member ${this.name} to start`, () => this.#checkAlive() && this.ready, MEMBER_READY_TIMEOUT_MS);
  }

  /** Sends subscribe and waits for the member to confirm; returns the time of its subscribe() call. */
  async subscribe(): Promise<number> {
    this.command({ kind: 'subscribe' });
    return waitFor(`member ${this.name} to subscribe`, () => this.#checkAlive() && this.subscribedAtMs, MEMBER_READY_TIMEOUT_MS);
  }

  /** SIGKILL; returns the time just before the signal. */
  async kill(): Promise<number> {
    const atMs = Date.now();
    this.child.kill('SIGKILL');
    await pollUntil(`member ${this.name} to exit`, () => this.exited, MEMBER_CLOSE_TIMEOUT_MS);
    return atMs;
  }

  /** Graceful close (commit, revoke, LeaveGroup); returns the time the command was sent. */
  close(): number {
    const atMs = Date.now();
    this.command({ kind: 'close' });
    return atMs;
  }

  async waitExit(): Promise<void> {
    try {
      await pollUntil(`member ${this.name} to exit`, () => this.exited, MEMBER_CLOSE_TIMEOUT_MS);
    } catch {
      this.child.kill('SIGKILL');
      await pollUntil(`member ${this.name} to exit after SIGKILL`, () => this.exited, MEMBER_CLOSE_TIMEOUT_MS);
    }
  }

  #checkAlive(): true {
    if (this.failure !== undefined) throw new RaftkaError('UNKNOWN_SERVER_ERROR', `member ${this.name} failed: ${this.failure}`, { retriable: false });
    if (this.exited) throw new RaftkaError('UNKNOWN_SERVER_ERROR', `member ${this.name} exited unexpectedly`, { retriable: false });
    return true;
  }
}

interface GroupSettings {
  bootstrapServers: string[];
  topic: string;
  partitions: number;
  groupId: string;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  assignors: string[];
}

/** The members of one group that this program started and has not stopped. */
class Group {
  members: Member[] = [];
  #started = 0;

  constructor(readonly settings: GroupSettings) {}

  /** Starts a member process running `consumers` group members (1 unless comparing layouts). */
  async start(consumers = 1): Promise<Member> {
    const name = `${this.settings.groupId}/m${++this.#started}`;
    const member = new Member(name, {
      bootstrapServers: this.settings.bootstrapServers,
      groupId: this.settings.groupId,
      topic: this.settings.topic,
      clientId: name.replace('/', '-'),
      sessionTimeoutMs: this.settings.sessionTimeoutMs,
      heartbeatIntervalMs: this.settings.heartbeatIntervalMs,
      partitionAssignmentStrategy: this.settings.assignors,
      progressIntervalMs: PROGRESS_INTERVAL_MS,
      consumers,
    });
    this.members.push(member);
    await member.waitReady();
    return member;
  }

  /** Stops counting a member (killed or leaving): its last report no longer says who owns what. */
  remove(member: Member): void {
    this.members = this.members.filter((candidate) => candidate !== member);
  }

  /**
   * When the members' reported assignments last formed a settled group: every partition owned by
   * exactly one member, and `joiner` (if given) owning at least one. Undefined while not settled.
   */
  settledAtMs(joiner?: Member): number | undefined {
    this.#checkMembers();
    const seen = new Set<number>();
    for (const member of this.members) {
      for (const partition of member.owned) {
        if (seen.has(partition)) return undefined;
        seen.add(partition);
      }
    }
    if (seen.size !== this.settings.partitions) return undefined;
    if (joiner !== undefined && joiner.owned.size === 0) return undefined;
    return Math.max(...this.members.map((member) => member.ownedSinceMs));
  }

  #checkMembers(): void {
    for (const member of this.members) {
      if (member.failure !== undefined || member.exited) throw new RaftkaError('UNKNOWN_SERVER_ERROR', `member ${member.name} ${member.failure !== undefined ? `failed: ${member.failure}` : 'exited unexpectedly'}`, { retriable: false });
    }
  }

  async waitSettled(what: string, timeoutMs: number, joiner?: Member): Promise<number> {
    return waitFor(what, () => this.settledAtMs(joiner), timeoutMs);
  }

  /** Waits for a settled assignment that the coordinator also reports as Stable with these members. */
  async waitStable(admin: Admin, timeoutMs: number): Promise<void> {
    const what = `group ${this.settings.groupId} to be stable with ${this.members.length} members`;
    const deadlineMs = Date.now() + timeoutMs;
    let lastError = '';
    for (;;) {
      // A failed member throws here at once; a transient admin error is retried until the deadline.
      if (this.settledAtMs() !== undefined) {
        try {
          const [description] = await admin.describeGroups([this.settings.groupId], { includeOffsets: false });
          if (description?.state === 'Stable' && description.members.length === this.members.length) return;
        } catch (error) {
          lastError = ` (last error: ${(error as Error).message})`;
        }
      }
      if (Date.now() >= deadlineMs) throw new RaftkaError('REQUEST_TIMED_OUT', `timed out after ${timeoutMs} ms waiting for ${what}${lastError}`, { retriable: false });
      await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_INTERVAL_MS * 5));
    }
  }

  /** True once the members together have read every partition up to `endOffsets`. */
  caughtUp(endOffsets: readonly number[]): boolean {
    this.#checkMembers();
    return endOffsets.every((end, partition) => end === 0 || this.members.some((member) => (member.progress.nextOffsets[partition] ?? 0) >= end));
  }

  async closeAll(): Promise<void> {
    for (const member of this.members) member.close();
    await Promise.all(this.members.map((member) => member.waitExit()));
    this.members = [];
  }
}

// ---- phases ------------------------------------------------------------------------------------

type ThroughputLayout = 'separate' | 'shared';
const THROUGHPUT_LAYOUTS: readonly ThroughputLayout[] = ['separate', 'shared'];

interface ThroughputResult {
  members: number;
  /** separate: one process per member; shared: every member in one process (one event loop). */
  layout: ThroughputLayout;
  records: number;
  /** Records read more than once (redelivered after a rebalance). */
  duplicates: number;
  mb: number;
  /** First partition assigned to any member to every partition read to its end. */
  elapsedMs: number;
  recordsPerSec: number;
  mbPerSec: number;
  /** Subscribe to the first partition assigned (includes group.initial.rebalance.delay.ms). */
  joinToAssignedMs: number;
  /** First partition assigned to the first record received (offset lookups, first fetch). */
  assignedToFirstRecordMs: number;
}

interface RebalanceSeries {
  label: string;
  phase: 'join' | 'kill' | 'leave';
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  samplesMs: number[];
  failures: string[];
}

async function throughputPhase(cluster: LocalCluster, options: BenchOptions, topic: string, endOffsets: number[], log: (line: string) => void): Promise<ThroughputResult[]> {
  const results: ThroughputResult[] = [];
  const runs = options.memberCounts.flatMap((count) => options.layouts.filter((layout) => layout === 'separate' || count > 1).map((layout) => ({ count, layout })));
  for (const { count, layout } of runs) {
    const group = new Group({
      bootstrapServers: cluster.bootstrapServers,
      topic,
      partitions: options.partitions,
      groupId: `bench-throughput-${count}-${layout}-${Date.now()}`,
      sessionTimeoutMs: options.sessionTimeoutMs,
      heartbeatIntervalMs: heartbeatIntervalFor(options.sessionTimeoutMs),
      assignors: options.assignors,
    });
    try {
      const members: Member[] = [];
      if (layout === 'shared') members.push(await group.start(count));
      else for (let index = 0; index < count; index++) members.push(await group.start());
      // All members subscribe together, so the group's first rebalance (which waits
      // group.initial.rebalance.delay.ms for more members) takes every one of them.
      const subscribedAtMs = Math.min(...(await Promise.all(members.map((member) => member.subscribe()))));
      const timeoutMs = 120_000 + options.records; // about 1 ms per record on top: a slow machine, not a hang
      await waitFor(`a group of ${count} to read every record`, () => group.caughtUp(endOffsets), timeoutMs);
      // The last progress reports are in: caughtUp needed them. The window starts at the first
      // assignment, not at the first record: the first fetch answers may already carry a large
      // share of the records (1 MiB per partition), so timing from their arrival would leave
      // that transfer out.
      const assignedAtMs = Math.min(...members.map((member) => member.firstOwnedAtMs ?? Number.POSITIVE_INFINITY));
      const firstRecordMs = Math.min(...members.map((member) => member.progress.firstRecordMs ?? Number.POSITIVE_INFINITY));
      const lastRecordMs = Math.max(...members.map((member) => member.progress.lastRecordMs ?? 0));
      const read = members.reduce((sum, member) => sum + member.progress.records, 0);
      invariant(Number.isFinite(assignedAtMs) && Number.isFinite(firstRecordMs) && lastRecordMs >= firstRecordMs, 'a caught-up group was assigned partitions and read records');
      const elapsedMs = Math.max(1, lastRecordMs - assignedAtMs);
      const bytes = options.records * options.recordBytes;
      const result: ThroughputResult = {
        members: count,
        layout,
        records: options.records,
        duplicates: Math.max(0, read - options.records),
        mb: Math.round((bytes / 1024 / 1024) * 10) / 10,
        elapsedMs,
        ...rates(options.records, bytes, elapsedMs),
        joinToAssignedMs: assignedAtMs - subscribedAtMs,
        assignedToFirstRecordMs: firstRecordMs - assignedAtMs,
      };
      results.push(result);
      log(`throughput: ${count} member(s), ${layout === 'separate' ? 'one process each' : 'one process'}: ${result.records} records in ${elapsedMs} ms = ${result.mbPerSec} MB/s, ${result.recordsPerSec} records/s (subscribe to assigned ${result.joinToAssignedMs} ms, assigned to first record ${result.assignedToFirstRecordMs} ms, duplicates ${result.duplicates})`);
    } finally {
      await group.closeAll();
    }
  }
  return results;
}

/**
 * One group of 4 per session timeout: each round a 4th member joins a stable group of 3 (a join
 * sample), then one member is killed or closed (a kill or leave sample), which brings the group
 * back to 3 for the next round. The victim rotates, so the group leader is hit too.
 */
async function rebalanceGroupPhase(
  cluster: LocalCluster,
  options: BenchOptions,
  topic: string,
  endOffsets: number[],
  admin: Admin,
  departure: 'kill' | 'leave',
  sessionTimeoutMs: number,
  log: (line: string) => void,
): Promise<{ join: RebalanceSeries; departure: RebalanceSeries }> {
  const heartbeatIntervalMs = heartbeatIntervalFor(sessionTimeoutMs);
  const group = new Group({
    bootstrapServers: cluster.bootstrapServers,
    topic,
    partitions: options.partitions,
    groupId: `bench-${departure}-${sessionTimeoutMs}-${Date.now()}`,
    sessionTimeoutMs,
    heartbeatIntervalMs,
    assignors: options.assignors,
  });
  const suffix = `session ${sessionTimeoutMs} ms, heartbeat ${heartbeatIntervalMs} ms`;
  const join: RebalanceSeries = { label: `join 3->4, ${departure} group (${suffix})`, phase: 'join', sessionTimeoutMs, heartbeatIntervalMs, samplesMs: [], failures: [] };
  const gone: RebalanceSeries = {
    label: departure === 'kill' ? `kill 4->3, SIGKILL (${suffix})` : `leave 4->3, close() (${suffix})`,
    phase: departure,
    sessionTimeoutMs,
    heartbeatIntervalMs,
    samplesMs: [],
    failures: [],
  };
  // A kill is noticed at the session timeout; allow for it plus a full rebalance.
  const departureTimeoutMs = departure === 'kill' ? sessionTimeoutMs + REBALANCE_TIMEOUT_MS : REBALANCE_TIMEOUT_MS;
  try {
    const first: Member[] = [];
    for (let index = 0; index < GROUP_SIZE - 1; index++) first.push(await group.start());
    await Promise.all(first.map((member) => member.subscribe()));
    // Rounds start from an idle, stable group: the first members read the whole topic first.
    await waitFor(`group ${group.settings.groupId} to read the topic`, () => group.caughtUp(endOffsets), 120_000 + options.records);
    await group.waitStable(admin, REBALANCE_TIMEOUT_MS);
    for (let round = 0; round < options.rounds; round++) {
      const joiner = await group.start();
      const subscribedAtMs = await joiner.subscribe();
      let joinMs: number | undefined;
      let departureMs: number | undefined;
      try {
        const settledAtMs = await group.waitSettled(`the joiner of round ${round + 1} to get partitions`, REBALANCE_TIMEOUT_MS, joiner);
        joinMs = settledAtMs - subscribedAtMs;
        join.samplesMs.push(joinMs);
      } catch (error) {
        join.failures.push(`round ${round + 1}: ${(error as Error).message}`);
      }
      await group.waitStable(admin, REBALANCE_TIMEOUT_MS);
      const victim = group.members[round % group.members.length]!;
      group.remove(victim);
      const departedAtMs = departure === 'kill' ? await victim.kill() : victim.close();
      try {
        const settledAtMs = await group.waitSettled(`the survivors of round ${round + 1} to own every partition`, departureTimeoutMs);
        departureMs = settledAtMs - departedAtMs;
        gone.samplesMs.push(departureMs);
      } catch (error) {
        gone.failures.push(`round ${round + 1}: ${(error as Error).message}`);
      }
      if (departure === 'leave') await victim.waitExit();
      await group.waitStable(admin, departureTimeoutMs);
      log(`${departure} group (session ${sessionTimeoutMs} ms) round ${round + 1}: join ${formatMs(joinMs)}, ${departure} ${formatMs(departureMs)}`);
    }
  } catch (error) {
    // A member that crashed or a group that never settles ends this series, not the benchmark:
    // the other series and the samples so far are still reported (with the failure).
    const message = `aborted after ${gone.samplesMs.length + gone.failures.length} round(s): ${(error as Error).message}`;
    log(`${departure} group (session ${sessionTimeoutMs} ms) ${message}`);
    gone.failures.push(message);
  } finally {
    await group.closeAll();
  }
  return { join, departure: gone };
}

// ---- reporting ---------------------------------------------------------------------------------

function formatMs(ms: number | undefined): string {
  return ms === undefined ? '-' : `${Math.round(ms)} ms`;
}

function percentile(samples: readonly number[], fraction: number): number | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  // Nearest rank: p50 of an even count is the lower middle sample.
  return sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)];
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

// ---- main --------------------------------------------------------------------------------------

async function preload(bootstrapServers: string[], topic: string, options: BenchOptions): Promise<{ elapsedMs: number; mbPerSec: number }> {
  const producer = new Producer({ bootstrapServers, acks: -1, lingerMs: 5, batchSize: 128 * 1024, compressionType: 'none' });
  const payload = Buffer.alloc(options.recordBytes, 0x61);
  const startMs = Date.now();
  try {
    await producer.connect();
    const inFlight = new Set<Promise<unknown>>();
    for (let sent = 0; sent < options.records; ) {
      const count = Math.min(PRELOAD_MESSAGES_PER_SEND, options.records - sent);
      // Explicit partitions, round robin: every partition gets the same share of the records.
      const messages = Array.from({ length: count }, (_, index) => ({ value: payload, partition: (sent + index) % options.partitions }));
      const send = producer.send({ topic, messages });
      const tracked = send.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      sent += count;
      if (inFlight.size >= PRELOAD_SENDS_IN_FLIGHT_MAX) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } finally {
    await producer.close();
  }
  const elapsedMs = Date.now() - startMs;
  return { elapsedMs, mbPerSec: rates(options.records, options.records * options.recordBytes, elapsedMs).mbPerSec };
}

async function main(): Promise<void> {
  const options = parseOptions();
  const log = (line: string): void => {
    process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  };
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-group-bench-'));
  const cpus = os.cpus();
  const machine = `${cpus.length} CPU(s) ${cpus[0]?.model.trim() ?? ''}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, ${os.platform()}`;
  log(`group bench: ${options.controllers} controller(s) + ${options.brokers} broker(s) in ${root}; ${machine}`);
  const cluster = await LocalCluster.up({
    directory: path.join(root, 'cluster'),
    controllers: options.controllers,
    brokers: options.brokers,
    properties: { 'log.level': 'warn', ...options.overrides },
    // Ready is awaited below, once the exit hook is in place: a cluster that never becomes
    // ready must be stopped too.
    waitReady: false,
  });
  // Whatever happens to this program, its cluster and members must not outlive it.
  process.once('exit', () => {
    for (const child of allChildren) child.kill('SIGKILL');
    cluster.killAllNow();
    if (!options.keep) rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  await cluster.waitReady();
  const admin = new Admin({ bootstrapServers: cluster.bootstrapServers });
  const topic = 'group-bench';
  const throughput: ThroughputResult[] = [];
  const series: RebalanceSeries[] = [];
  let preloadResult: { elapsedMs: number; mbPerSec: number } | undefined;
  try {
    await admin.createTopics([{ topic, numPartitions: options.partitions, replicationFactor: options.replicationFactor }]);
    log(`preloading ${options.records} records of ${options.recordBytes} bytes into ${topic} (${options.partitions} partitions, RF ${options.replicationFactor}, acks=all)`);
    preloadResult = await preload(cluster.bootstrapServers, topic, options);
    log(`preloaded in ${preloadResult.elapsedMs} ms (${preloadResult.mbPerSec} MB/s)`);
    const listed = await admin.listOffsets(Array.from({ length: options.partitions }, (_, partition) => ({ topic, partition, spec: 'latest' as const })));
    const endOffsets = Array.from({ length: options.partitions }, (_, partition) => listed.find((entry) => entry.partition === partition)?.offset ?? 0);
    const topicRecords = endOffsets.reduce((sum, end) => sum + end, 0);
    // The producer is idempotent (acks=all), so a retried batch is not written twice; anything
    // else would make the throughput figures count records that are not there.
    if (topicRecords !== options.records) throw new RaftkaError('UNKNOWN_SERVER_ERROR', `the topic holds ${topicRecords} records, not the ${options.records} preloaded (end offsets ${endOffsets.join(',')})`, { retriable: false });

    if (options.phases.includes('throughput')) throughput.push(...(await throughputPhase(cluster, options, topic, endOffsets, log)));
    const sessions = [options.sessionTimeoutMs, ...(options.lowSessionTimeoutMs > 0 && options.lowSessionTimeoutMs !== options.sessionTimeoutMs ? [options.lowSessionTimeoutMs] : [])];
    if (options.phases.includes('kill') || options.phases.includes('join')) {
      // Without a kill phase, join samples come from the leave group alone.
      const killSessions = options.phases.includes('kill') ? sessions : [];
      for (const sessionTimeoutMs of killSessions) {
        const result = await rebalanceGroupPhase(cluster, options, topic, endOffsets, admin, 'kill', sessionTimeoutMs, log);
        if (options.phases.includes('join')) series.push(result.join);
        series.push(result.departure);
      }
    }
    if (options.phases.includes('leave') || (options.phases.includes('join') && !options.phases.includes('kill'))) {
      const result = await rebalanceGroupPhase(cluster, options, topic, endOffsets, admin, 'leave', options.sessionTimeoutMs, log);
      if (options.phases.includes('join')) series.push(result.join);
      if (options.phases.includes('leave')) series.push(result.departure);
    }
  } finally {
    await admin.close().catch(() => undefined);
    await cluster.down({ force: true, purge: !options.keep }).catch(() => undefined);
    if (!options.keep) await fs.rm(root, { recursive: true, force: true }).catch(() => undefined);
  }

  const setup =
    `cluster: ${options.controllers} controller(s) + ${options.brokers} broker(s) as local processes on 127.0.0.1; topic ${options.partitions} partitions, RF ${options.replicationFactor}; ` +
    `${options.records} records x ${options.recordBytes} B; assignor ${options.assignors.join(',')}; every member is its own Node process (throughput also with all members in one), all sharing the machine with the cluster: ${machine}`;
  if (options.json) {
    const rebalance = series.map((entry) => ({ ...entry, p50Ms: percentile(entry.samplesMs, 0.5), maxMs: entry.samplesMs.length === 0 ? undefined : Math.max(...entry.samplesMs) }));
    process.stdout.write(JSON.stringify({ setup, options: { ...options }, preload: preloadResult, throughput, rebalance }) + '\n');
    return;
  }
  const out: string[] = [setup, ''];
  if (preloadResult) out.push(`preload (producer, acks=all): ${preloadResult.mbPerSec} MB/s`, '');
  if (throughput.length > 0) {
    out.push('Group consume throughput (first partition assigned to every partition read to its end; the whole group):');
    out.push(
      table(
        ['members', 'processes', 'records', 'MB', 'elapsed', 'MB/s', 'records/s', 'subscribe->assigned', 'assigned->1st record', 'duplicates'],
        throughput.map((result) => [String(result.members), result.layout === 'separate' ? `${result.members} (one each)` : '1 (shared)', String(result.records), String(result.mb), formatMs(result.elapsedMs), result.mbPerSec.toFixed(1), String(Math.round(result.recordsPerSec)), formatMs(result.joinToAssignedMs), formatMs(result.assignedToFirstRecordMs), String(result.duplicates)]),
      ),
      '',
    );
  }
  if (series.length > 0) {
    out.push(`Rebalance time, group of ${GROUP_SIZE} over ${options.partitions} partitions (join: subscribe() to settled; kill/leave: SIGKILL or close() to the survivors owning every partition):`);
    out.push(
      table(
        ['case', 'rounds', 'p50', 'max', 'samples'],
        series.map((entry) => [
          entry.label,
          `${entry.samplesMs.length}/${entry.samplesMs.length + entry.failures.length}`,
          formatMs(percentile(entry.samplesMs, 0.5)),
          formatMs(entry.samplesMs.length === 0 ? undefined : Math.max(...entry.samplesMs)),
          entry.samplesMs.map((sample) => Math.round(sample)).join(' '),
        ]),
      ),
    );
    for (const entry of series) for (const failure of entry.failures) out.push(`  ${entry.label}: FAILED ${failure}`);
  }
  process.stdout.write(out.join('\n') + '\n');
  if (series.some((entry) => entry.failures.length > 0)) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`group bench: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
