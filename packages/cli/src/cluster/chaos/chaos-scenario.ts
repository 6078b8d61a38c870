// One chaos scenario on a running LocalCluster: a fresh topic (RF 3, min.insync.replicas=2), the
// workload, one fault in the middle of it, the heal, the final read and the check.
//
// Timeline (every wait is a condition with a deadline, never a fixed sleep, except the pause
// fault, whose length is the point):
//   1. create the topic, wait for leaders and a full ISR;
//   2. start the workload, wait until every partition has acknowledged writes;
//   3. inject the fault and record it;
//   4. kill faults: wait until every partition acknowledged a write issued after the fault (or
//      the failover deadline), then start the killed nodes again; pause: keep the node frozen
//      for longer than broker.session.timeout.ms, then continue it; restart-all: start every
//      node again at once; partition: keep the leader cut off from the other nodes until every
//      partition has failed over (and a second more), then heal the network;
//   5. keep the load on until every partition has recovered and has some writes after the heal;
//   6. stop the load, wait for the full ISR (a replica that does not rejoin is reported, not
//      fatal: the safety checks still run), read everything back, let the consumer group (which
//      has been reading since step 2) catch up to the same ends, check.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Admin } from '@raftka/client';
import { assertNever } from '@raftka/protocol';
import { pollUntil } from '../local-cluster.js';
import { ChaosGroup, ChaosWorkload, readBack } from './chaos-workload.js';
import { HistoryRecorder, type FaultKind } from './history.js';
import { ackLatencies, checkHistory, failoverTimes, quantile, type CheckResult, type FailoverSample } from './history-checker.js';

/**
 * What a scenario needs from the cluster under test. Two runners implement it: processes on this
 * machine (`ProcessChaosCluster`, over `LocalCluster` and a fault-injecting proxy) and
 * containers (the container suite, over Docker).
 */
export interface ChaosCluster {
  /** host:port of every broker's client listener, as the workload reaches them. */
  readonly bootstrapServers: string[];
  readonly nodeIds: readonly number[];
  readonly brokerIds: readonly number[];
  /** SIGKILL (or the container equivalent), and wait until the node is gone. */
  kill(nodeId: number): Promise<void>;
  /** Starts a killed node again with its config and data. */
  start(nodeId: number): Promise<void>;
  /** Freezes the node: its sockets stay open but it answers nothing (SIGSTOP, `docker pause`). */
  pause(nodeId: number): Promise<void>;
  resume(nodeId: number): Promise<void>;
  /** Cuts the node off from every other node (both directions); clients may still reach it or not, per runner. */
  isolate(nodeId: number): Promise<void>;
  /** Undoes every isolation. */
  heal(): Promise<void>;
  /** The quorum has a leader and every running broker is registered and unfenced. */
  waitReady(timeoutMs: number): Promise<void>;
  /** The id of the active controller. */
  waitForQuorumLeader(timeoutMs: number): Promise<number>;
}

export interface ScenarioOptions {
  cluster: ChaosCluster;
  fault: FaultKind;
  /** Unique per scenario (a fresh topic keeps scenarios on one cluster independent). */
  topic: string;
  /** Where the JSONL history is written. */
  historyDirectory: string;
  /** Random in [0, 1) for the choice of victims; seeded by the caller so a run can be replayed. */
  random: () => number;
  /** broker.session.timeout.ms of the cluster: a pause lasts longer than it. */
  sessionTimeoutMs: number;
  partitions?: number;
  producers?: number;
  sendIntervalMs?: number;
  /** Writes each partition must acknowledge before the fault, and after the heal. */
  acksBeforeFault?: number;
  /** Longest wait for every partition to acknowledge a write after the fault. */
  failoverDeadlineMs?: number;
  requestTimeoutMs?: number;
  /** The producers' retry.backoff.ms / retry.backoff.max.ms (default: the client's, 100 / 1000 as Kafka's). */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  log?: (line: string) => void;
}

export interface ScenarioResult {
  fault: FaultKind;
  topic: string;
  victims: number[];
  check: CheckResult;
  failover: FailoverSample[];
  /** Set when some replica had not rejoined the ISR ISR_HEAL_TIMEOUT_MS after the heal: what was seen. */
  isrNotHealed: string | undefined;
  /** Median send-to-ack latency in the second before the fault (undefined without acks then). */
  baselineAckMsP50: number | undefined;
  historyFile: string;
}

/** The window before the fault whose acknowledgements give the baseline latency. */
const BASELINE_WINDOW_MS = 1_000;

const REPLICATION_FACTOR = 3;
/** Members of the consumer group that reads the topic while the faults hit. */
const GROUP_MEMBERS = 2;
const MIN_INSYNC_REPLICAS = 2;
/** How much longer than the session timeout a paused broker stays frozen. */
const PAUSE_BEYOND_SESSION_MS = 1_000;
/** How long an isolated leader stays cut off after the others have taken over. */
const PARTITION_BEYOND_FAILOVER_MS = 1_000;
const HEAL_TIMEOUT_MS = 60_000;
/** How long every replica gets to rejoin the ISR after the heal. */
const ISR_HEAL_TIMEOUT_MS = 20_000;
/** The client's defaults (Kafka's retry.backoff.ms and retry.backoff.max.ms). */
const RETRY_BACKOFF_MS_DEFAULT = 100;
const RETRY_BACKOFF_MAX_MS_DEFAULT = 1_000;

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.min(items.length - 1, Math.floor(random() * items.length))]!;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const { cluster, fault, topic } = options;
  const partitions = options.partitions ?? 3;
  const acksWanted = options.acksBeforeFault ?? 20;
  const failoverDeadlineMs = options.failoverDeadlineMs ?? 30_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 2_000;
  const log = options.log ?? (() => undefined);
  const history = new HistoryRecorder();
  const historyFile = path.join(options.historyDirectory, `${topic}.jsonl`);
  const admin = new Admin({ bootstrapServers: cluster.bootstrapServers, requestTimeoutMs });
  const workload = new ChaosWorkload({
    bootstrapServers: cluster.bootstrapServers,
    topic,
    partitions,
    producers: options.producers ?? 2,
    sendIntervalMs: options.sendIntervalMs ?? 5,
    history,
    requestTimeoutMs,
    deliveryTimeoutMs: 120_000,
    retryBackoffMs: options.retryBackoffMs ?? RETRY_BACKOFF_MS_DEFAULT,
    retryBackoffMaxMs: options.retryBackoffMaxMs ?? RETRY_BACKOFF_MAX_MS_DEFAULT,
  });
  const group = new ChaosGroup({ bootstrapServers: cluster.bootstrapServers, topic, groupId: `${topic}-readers`, members: GROUP_MEMBERS, history, requestTimeoutMs });
  let victims: number[] = [];
  let faultAtMs = 0;
  let isrNotHealed: string | undefined;
  try {
    await admin.createTopics([{ topic, numPartitions: partitions, replicationFactor: REPLICATION_FACTOR, configs: { 'min.insync.replicas': String(MIN_INSYNC_REPLICAS) } }]);
    let lastSeen = 'nothing yet';
    const fullIsr = async (): Promise<boolean> => {
      const [description] = await admin.describeTopics([topic]);
      lastSeen = description!.partitions.map((partition) => `${partition.partition}: leader ${partition.leader}, isr ${partition.isr.join(',')}`).join('; ');
      return description!.partitions.length === partitions && description!.partitions.every((partition) => partition.leader >= 0 && partition.isr.length === REPLICATION_FACTOR);
    };
    const waitFullIsr = (what: string, timeoutMs = HEAL_TIMEOUT_MS) =>
      pollUntil(what, fullIsr, timeoutMs).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}; last seen ${lastSeen}`, { cause: error });
      });
    await waitFullIsr(`${topic} to have leaders and a full ISR`);

    workload.start();
    group.start();
    await pollUntil('writes on every partition', () => workload.acksPerPartition.every((acks) => acks >= acksWanted), HEAL_TIMEOUT_MS);
    // The fault hits a steady state: the group has joined and reads every partition. (Its first
    // FindCoordinator creates __consumer_offsets, 50 partitions every broker sets up; a fault in
    // the middle of that measures the creation, not the failover.)
    await pollUntil('the consumer group to read every partition', () => group.positions.size === partitions, HEAL_TIMEOUT_MS);

    const [description] = await admin.describeTopics([topic]);
    const leaders: number[] = [];
    for (const partition of description!.partitions) leaders[partition.partition] = partition.leader;
    victims = await chooseVictims(cluster, fault, leaders, options.random);
    faultAtMs = history.now();
    history.record({ type: 'fault', fault, phase: 'begin', nodes: victims, leaders });
    log(`${topic}: ${fault} on node(s) ${victims.join(', ')}`);
    const recoveredSince = (sinceMs: number) => () => {
      const recovered = new Set<number>();
      const sentAt = new Map<string, number>();
      for (const event of history.events) {
        if (event.type === 'invoke') sentAt.set(`${event.producer}/${event.seq}`, event.timeMs);
        else if (event.type === 'ack' && (sentAt.get(`${event.producer}/${event.seq}`) ?? -1) >= sinceMs) recovered.add(event.partition);
      }
      return recovered.size === partitions;
    };

    switch (fault) {
      case 'kill-broker':
      case 'kill-leader':
      case 'kill-controller':
        await Promise.all(victims.map((nodeId) => cluster.kill(nodeId)));
        // The surviving nodes must take over: wait for the failover before the victim returns.
        await pollUntil('every partition to accept writes again', recoveredSince(faultAtMs), failoverDeadlineMs).catch((error: unknown) => log(`${topic}: ${(error as Error).message}`));
        for (const nodeId of victims) await cluster.start(nodeId);
        break;
      case 'pause-broker':
        for (const nodeId of victims) await cluster.pause(nodeId);
        // The length of the pause is the fault itself: longer than the session timeout, so the
        // controller fences the frozen broker while it still holds its connections.
        await sleep(options.sessionTimeoutMs + PAUSE_BEYOND_SESSION_MS);
        for (const nodeId of victims) await cluster.resume(nodeId);
        break;
      case 'partition-leader':
        for (const nodeId of victims) await cluster.isolate(nodeId);
        // The cut lasts until the others have taken over (the controller fences the isolated
        // broker after its session timeout and elects new leaders), and then a little longer so
        // that the old leader, which still believes it leads, meets clients for a while.
        await pollUntil('every partition to accept writes again', recoveredSince(faultAtMs), failoverDeadlineMs).catch((error: unknown) => log(`${topic}: ${(error as Error).message}`));
        await sleep(PARTITION_BEYOND_FAILOVER_MS);
        await cluster.heal();
        break;
      case 'restart-all':
        await Promise.all(victims.map((nodeId) => cluster.kill(nodeId)));
        for (const nodeId of victims) await cluster.start(nodeId);
        break;
      default:
        assertNever(fault, 'fault');
    }
    const healedAtMs = history.now();
    history.record({ type: 'fault', fault, phase: 'heal', nodes: victims });
    await pollUntil('every partition to accept writes again', recoveredSince(faultAtMs), failoverDeadlineMs + HEAL_TIMEOUT_MS);
    await pollUntil('writes after the heal', recoveredSince(healedAtMs), HEAL_TIMEOUT_MS);
    await workload.stop();

    await cluster.waitReady(HEAL_TIMEOUT_MS);
    // Every replica should be back in the ISR; if one is not, that is reported (a liveness
    // problem), and the read and its safety checks go ahead on the leaders there are.
    await waitFullIsr(`${topic} to have a full ISR again`, ISR_HEAL_TIMEOUT_MS).catch((error: unknown) => {
      isrNotHealed = (error as Error).message;
      log(`${topic}: ${isrNotHealed}`);
    });
    const ends = await readBack({ admin, bootstrapServers: cluster.bootstrapServers, topic, partitions, history, timeoutMs: HEAL_TIMEOUT_MS, requestTimeoutMs });
    // The group must get there too; if it does not, the checker names what it missed.
    if (!(await group.waitCaughtUp(ends, HEAL_TIMEOUT_MS))) {
      log(`${topic}: the consumer group did not catch up (at ${JSON.stringify(Object.fromEntries(group.positions))}, ends ${JSON.stringify(Object.fromEntries(ends))}; last errors ${JSON.stringify(group.lastErrors)})`);
    }
    await group.stop();
  } catch (error) {
    throw new Error(`${fault} on ${topic} did not complete (history ${historyFile}): ${(error as Error).message}`, { cause: error });
  } finally {
    await workload.stop().catch(() => undefined);
    await group.stop().catch(() => undefined);
    await admin.close().catch(() => undefined);
    await fs.mkdir(options.historyDirectory, { recursive: true });
    await history.write(historyFile);
  }
  return {
    fault,
    topic,
    victims,
    check: checkHistory(history.events),
    failover: failoverTimes(history.events),
    baselineAckMsP50: quantile(ackLatencies(history.events, faultAtMs - BASELINE_WINDOW_MS, faultAtMs), 0.5),
    isrNotHealed,
    historyFile,
  };
}

/** The nodes a fault hits, chosen now (leaders and the active controller move between scenarios). */
async function chooseVictims(cluster: ChaosCluster, fault: FaultKind, leaders: readonly number[], random: () => number): Promise<number[]> {
  const brokers = cluster.brokerIds;
  switch (fault) {
    case 'kill-broker':
      return [pick(brokers, random)];
    case 'kill-leader':
    case 'pause-broker':
    case 'partition-leader':
      // A partition leader: the fault then costs a leader election, the interesting case.
      return [pick(leaders.filter((leader) => leader >= 0), random)];
    case 'kill-controller':
      return [await cluster.waitForQuorumLeader(HEAL_TIMEOUT_MS)];
    case 'restart-all':
      return [...cluster.nodeIds];
    default:
      return assertNever(fault, 'fault');
  }
}

/** A small seeded generator (mulberry32), so that the victims of a run can be chosen again. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
