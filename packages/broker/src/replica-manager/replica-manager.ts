// The broker's data plane (Kafka's ReplicaManager): the partition replicas this broker hosts, as
// leader or follower exactly as the committed metadata log says, and the requests on them.
//
// Leadership comes only from the metadata log (DESIGN.md): `applyMetadata` takes each
// MetadataPublisher update and, from `delta.localChanges(brokerId)`, makes this broker leader or
// follower of the partitions named, or stops and deletes the replicas it no longer holds. Updates
// are applied one at a time, in commit order.
//
// Leader duties:
//   - Produce: validated at the door (structure, CRC32C and max.message.bytes in the log; unknown
//     partition, not leader), idempotent sequences checked (producer-state/), appended with the
//     leader epoch stamped (KIP-101). acks=all is refused with NOT_ENOUGH_REPLICAS, nothing
//     appended, when the committed ISR is smaller than min.insync.replicas, and otherwise answered
//     from the produce purgatory once the high watermark (HW) passes the batch: every member of
//     the ISR has it.
//   - Fetch: consumers read below the HW only; followers (replica id >= 0) up to the log end
//     offset (LEO), and their fetch offset tells the leader how far they are (HW advance, ISR
//     expansion). A fetch that finds less than min bytes waits in the fetch purgatory.
//   - ISR: followers not caught up for replica.lag.time.max.ms are proposed out of the ISR, and
//     caught-up followers back in, through AlterPartition to the controller (KIP-497); a change
//     counts only once committed. Proposals made together travel in one AlterPartition request;
//     after a failure the next one waits ALTER_PARTITION_RETRY_BACKOFF_MS.
// Follower duties live in the replica fetchers (replica-fetcher.ts).
//
// Background: the high watermarks are checkpointed every HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS
// and at close (high-watermark-checkpoint.ts), producer states are snapshotted at close, and idle
// producers expire. Time comes from the injected clock and timers, so tests drive these checks.

import { promises as fs } from 'node:fs';
import {
  ConfigError,
  ErrorCode,
  RaftkaError,
  assertNever,
  invariant,
  resolveTopicConfig,
  type ErrorCodeName,
} from '@raftka/protocol';
import {
  MESSAGE_BYTES_MAX,
  NO_LEADER,
  type AlterPartitionRequest,
  type AlterPartitionResponse,
  type BrokerRegistration,
  type LocalPartition,
  type MetadataImage,
  type MetadataUpdate,
  type PartitionState,
  type StoppedReplica,
} from '@raftka/quorum';
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, type AppendResult, type LogLogger } from '../log/partition-log.js';
import { logConfigFromValues, type LogConfig } from '../log/log-config.js';
import { LogManager, type LogManagerOptions } from '../log/log-manager.js';
import { systemClock, systemTimers, type Clock, type TimerHandle, type Timers } from '../log/time.js';
import { DelayedFetch, DelayedProduce, type FetchPartitionProbe, type ProducePartitionCode, type ProducePartitionProbe } from '../purgatory/delayed-operations.js';
import { DelayedOperationPurgatory, PURGATORY_OPERATIONS_MAX_DEFAULT, partitionKey, type PurgatoryKey } from '../purgatory/purgatory.js';
import { LeaderReplicaState, REPLICA_LAG_TIME_MAX_MS_DEFAULT, type AlterPartitionOutcome, type AlterPartitionProposal } from '../replica/leader-replica-state.js';
import { readHighWatermarks, writeHighWatermarks } from './high-watermark-checkpoint.js';
import { Partition } from './partition.js';
import type { LeaderEndpoint, ReplicaFetcherConfig } from './replica-fetcher.js';
import { ReplicaFetcherManager } from './replica-fetcher-manager.js';
import { GrpcLeaderEndpoint } from './replica-fetcher-transport.js';
import {
  NO_LEADER_EPOCH_CHECK,
  type FetchPartitionRequest,
  type FetchPartitionResponse,
  type FetchRequest,
  type LeaderIdAndEpoch,
  type ListOffsetsPartitionRequest,
  type ListOffsetsPartitionResponse,
  type ListOffsetsRequest,
  type OffsetForLeaderEpochPartitionRequest,
  type OffsetForLeaderEpochPartitionResponse,
  type OffsetForLeaderEpochRequest,
  type ProducePartitionRequest,
  type ProducePartitionResponse,
  type ProduceRequest,
} from './requests.js';

/** A fetch may ask to be held at most this long (a peer cannot park requests for hours). */
export const FETCH_MAX_WAIT_MS_LIMIT = 60_000;
/** An acks=all produce may ask to wait at most this long. */
export const PRODUCE_TIMEOUT_MS_LIMIT = 300_000;
/**
 * Record bytes one fetch response carries at most, whatever the request asks: the response is
 * one gRPC message, and half the message limit leaves room for everything around the records.
 */
export const FETCH_RESPONSE_BYTES_MAX = MESSAGE_BYTES_MAX / 2;
/**
 * How often idle producers are forgotten (producer.id.expiration.ms) and producers whose records
 * retention deleted are dropped (Kafka's producer.id.expiration.check.interval.ms default).
 */
export const PRODUCER_EXPIRATION_CHECK_INTERVAL_MS = 10 * 60 * 1000;
/** replica.high.watermark.checkpoint.interval.ms (Kafka's default). */
export const HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS = 5_000;
/** ISR changes one AlterPartition request carries at most; more go in further requests. */
export const ALTER_PARTITION_ITEMS_MAX = 10_000;
/** Pause before an ISR change is proposed again after AlterPartition failed. */
export const ALTER_PARTITION_RETRY_BACKOFF_MS = 200;
/** How often waiting produce and fetch requests are checked for their deadline. */
export const PURGATORY_TICK_MS = 10;

export interface ReplicaManagerConfig {
  /** replica.lag.time.max.ms. */
  replicaLagTimeMaxMs: number;
  /** replica.fetch.* settings of this broker's fetchers. */
  fetcher: ReplicaFetcherConfig;
  /** Most waiting requests per purgatory (produce, fetch). */
  purgatoryOperationsMax: number;
  /**
   * Broker-level topic config defaults (server.properties `log.*` keys mapped to topic keys, e.g.
   * `min.insync.replicas`, `max.message.bytes`); topic overrides in the metadata win.
   */
  topicConfigDefaults: Readonly<Record<string, string>>;
  /** Name of the listener other brokers' fetchers connect to; default: a broker's first endpoint. */
  listenerName: string | undefined;
}

export const REPLICA_FETCHER_CONFIG_DEFAULT: Readonly<ReplicaFetcherConfig> = Object.freeze({
  fetchWaitMaxMs: 500,
  fetchMinBytes: 1,
  fetchMaxBytes: 1024 * 1024,
  fetchResponseMaxBytes: 10 * 1024 * 1024,
  fetchBackoffMs: 1000,
  requestTimeoutMs: 30_000,
});

export function makeReplicaManagerConfig(overrides: Partial<Omit<ReplicaManagerConfig, 'fetcher'>> & { fetcher?: Partial<ReplicaFetcherConfig> } = {}): ReplicaManagerConfig {
  const config: ReplicaManagerConfig = {
    replicaLagTimeMaxMs: overrides.replicaLagTimeMaxMs ?? REPLICA_LAG_TIME_MAX_MS_DEFAULT,
    fetcher: { ...REPLICA_FETCHER_CONFIG_DEFAULT, ...overrides.fetcher },
    purgatoryOperationsMax: overrides.purgatoryOperationsMax ?? PURGATORY_OPERATIONS_MAX_DEFAULT,
    topicConfigDefaults: overrides.topicConfigDefaults ?? {},
    listenerName: overrides.listenerName,
  };
  // These values come from server.properties: a bad one is the user's to fix, one line per key.
  const problems: string[] = [];
  const fetcher = config.fetcher;
  if (!(config.replicaLagTimeMaxMs > 0)) problems.push(`replica.lag.time.max.ms=${config.replicaLagTimeMaxMs}: must be positive`);
  // A follower long-polls; if the leader could hold it longer than the lag limit, a caught-up
  // follower would leave the ISR while it waits (Kafka requires the same ordering).
  if (!(fetcher.fetchWaitMaxMs >= 0 && fetcher.fetchWaitMaxMs < config.replicaLagTimeMaxMs)) {
    problems.push(`replica.fetch.wait.max.ms=${fetcher.fetchWaitMaxMs}: must be at least 0 and below replica.lag.time.max.ms=${config.replicaLagTimeMaxMs}`);
  }
  if (!(fetcher.fetchMaxBytes > 0)) problems.push(`replica.fetch.max.bytes=${fetcher.fetchMaxBytes}: must be positive`);
  if (!(fetcher.fetchResponseMaxBytes > 0)) problems.push(`replica.fetch.response.max.bytes=${fetcher.fetchResponseMaxBytes}: must be positive`);
  // A zero back-off would turn a leader that refuses connections into a busy loop of failing calls.
  if (!(fetcher.fetchBackoffMs > 0)) problems.push(`replica.fetch.backoff.ms=${fetcher.fetchBackoffMs}: must be positive`);
  if (!(fetcher.requestTimeoutMs > 0)) problems.push(`replica.fetch request timeout ${fetcher.requestTimeoutMs} ms: must be positive`);
  if (!(config.purgatoryOperationsMax > 0)) problems.push(`purgatory operations maximum ${config.purgatoryOperationsMax}: must be positive`);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

export interface ReplicaManagerOptions {
  brokerId: number;
  /** Root directory of the partition logs (log.dirs[0]). */
  logDir: string;
  config?: ReplicaManagerConfig;
  /** The controller's AlterPartition (its gRPC API in a server; a test controller in tests). */
  alterPartition: (request: AlterPartitionRequest) => Promise<AlterPartitionResponse>;
  /** How fetchers reach another broker; default: RaftkaClient gRPC on its listener. */
  connectToBroker?: (broker: BrokerRegistration) => LeaderEndpoint;
  /** Passed to the LogManager (chore intervals, open-file bound). */
  logManagerOptions?: Omit<LogManagerOptions, 'logDir' | 'clock' | 'timers' | 'logger'>;
  clock?: Clock;
  timers?: Timers;
  logger?: LogLogger;
}

/** What a replica looks like from outside (tests, admin tools). */
export interface ReplicaStatus {
  role: 'leader' | 'follower' | 'stopped';
  leaderId: number;
  leaderEpoch: number;
  logStartOffset: number;
  logEndOffset: number;
  highWatermark: number;
  /** The committed ISR as the leader sees it; empty on a follower. */
  isr: readonly number[];
}

/** A completed role change of one hosted replica (see `ReplicaManager.onRoleChange`). */
export interface ReplicaRoleChange {
  topic: string;
  partition: number;
  role: 'leader' | 'follower' | 'stopped';
  /** The leader epoch of the new role; -1 for a stopped replica. */
  leaderEpoch: number;
}

/** A partition change captured when its update arrived (the image is live and moves on). */
interface CapturedPartition {
  topicName: string;
  state: PartitionState;
  configs: ReadonlyMap<string, string>;
}

interface CapturedChanges {
  leaders: CapturedPartition[];
  followers: CapturedPartition[];
  stopped: StoppedReplica[];
  changedBrokers: number[];
}

const silentLogger: LogLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
} as unknown as LogLogger;

interface QueuedAlterPartition {
  partition: Partition;
  leader: LeaderReplicaState;
  proposal: AlterPartitionProposal;
}

type AppendOutcome =
  | { kind: 'answered'; response: ProducePartitionResponse }
  | { kind: 'appended'; response: ProducePartitionResponse; lastOffset: number; leader: LeaderReplicaState; partition: Partition };

export class ReplicaManager {
  readonly brokerId: number;
  readonly config: ReplicaManagerConfig;
  readonly logManager: LogManager;
  private readonly options: ReplicaManagerOptions;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly logger: LogLogger;
  // Invariant: holds every replica whose log is open; keyed by partitionKey(topic, partition).
  private readonly partitions = new Map<PurgatoryKey, Partition>();
  private readonly producePurgatory: DelayedOperationPurgatory<DelayedProduce>;
  private readonly fetchPurgatory: DelayedOperationPurgatory<DelayedFetch>;
  private readonly fetchers: ReplicaFetcherManager;
  private imageValue: MetadataImage | undefined;
  private metadataChain: Promise<void> = Promise.resolve();
  private tickTimer: TimerHandle | undefined;
  private isrTimer: TimerHandle | undefined;
  private producerExpirationTimer: TimerHandle | undefined;
  private highWatermarkTimer: TimerHandle | undefined;
  /** The checkpoint as read at the first open; entries leave it as their replicas open or stop. */
  private checkpointedHighWatermarks: Map<PurgatoryKey, number> | undefined;
  private lastHighWatermarkCheckpoint = '';
  private highWatermarkWrites: Promise<void> = Promise.resolve();
  private readonly retryTimers = new Set<TimerHandle>();
  // Invariant: holds at most one proposal per partition (a leader has one pending at a time).
  private readonly alterQueue: QueuedAlterPartition[] = [];
  private alterFlushQueued = false;
  private state: 'created' | 'running' | 'closed' = 'created';
  private readonly roleListeners = new Set<(change: ReplicaRoleChange) => void>();

  constructor(options: ReplicaManagerOptions) {
    this.options = options;
    this.brokerId = options.brokerId;
    this.config = options.config ?? makeReplicaManagerConfig();
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.logger = options.logger ?? silentLogger;
    this.logManager = new LogManager({ ...options.logManagerOptions, logDir: options.logDir, clock: this.clock, timers: this.timers, logger: this.logger });
    this.producePurgatory = new DelayedOperationPurgatory({ name: 'produce', operationsMax: this.config.purgatoryOperationsMax });
    this.fetchPurgatory = new DelayedOperationPurgatory({ name: 'fetch', operationsMax: this.config.purgatoryOperationsMax });
    const connect = options.connectToBroker ?? ((broker: BrokerRegistration) => GrpcLeaderEndpoint.forBroker(broker, this.config.listenerName));
    this.fetchers = new ReplicaFetcherManager({
      localBrokerId: this.brokerId,
      config: this.config.fetcher,
      connect: (sourceBrokerId) => {
        const broker = this.imageValue?.brokers.get(sourceBrokerId);
        return broker === undefined ? undefined : connect(broker);
      },
      clock: this.clock,
      timers: this.timers,
      logger: this.logger,
    });
  }

  /** The metadata image of the latest update (live; read, do not keep). */
  get image(): MetadataImage | undefined {
    return this.imageValue;
  }

  /** Starts the log chores, the purgatory deadline checks and the ISR shrink checks. */
  start(): void {
    if (this.state !== 'created') return;
    this.state = 'running';
    this.logManager.start();
    this.scheduleIsrCheck();
    this.scheduleProducerExpiration();
    this.scheduleHighWatermarkCheckpoint();
  }

  /**
   * Applies one MetadataPublisher update (subscribe this to the broker's publisher). The
   * partitions it names are captured now; the role changes run after earlier updates finished.
   * The promise settles when this update is applied (it never rejects: failures are logged).
   */
  applyMetadata(update: MetadataUpdate): Promise<void> {
    this.imageValue = update.image;
    const captured = this.capture(update);
    const run = this.metadataChain.then(() => this.applyChanges(captured));
    this.metadataChain = run.catch((error: unknown) => {
      this.logger.error({ err: error, offset: update.offset }, 'applying a metadata update to the replicas failed');
    });
    return this.metadataChain;
  }

  /** Resolves once every metadata update handed over so far is applied. */
  metadataApplied(): Promise<void> {
    return this.metadataChain;
  }

  private capture(update: MetadataUpdate): CapturedChanges {
    const image = update.image;
    const local = update.delta.localChanges(this.brokerId);
    const copy = (change: LocalPartition): CapturedPartition => ({
      topicName: change.topicName,
      // The image replaces (never mutates) the arrays, so a shallow copy is a snapshot.
      state: { ...change.partition },
      configs: new Map(image.configsOf('topic', change.topicName)),
    });
    const changedBrokers = update.delta
      .brokerChanges()
      // A (re-)registration: new address, or a leader that was unknown when a partition needed it.
      .filter((change) => change.after !== undefined && change.before?.brokerEpoch !== change.after.brokerEpoch)
      .map((change) => change.brokerId);
    return { leaders: local.leaders.map(copy), followers: local.followers.map(copy), stopped: local.stopped, changedBrokers };
  }

  private async applyChanges(changes: CapturedChanges): Promise<void> {
    if (this.state === 'closed') return;
    for (const brokerId of changes.changedBrokers) this.fetchers.onBrokerChanged(brokerId);
    // One replica failing (e.g. its disk) must not keep the others from their new roles.
    const each = async (what: string, key: string, work: () => Promise<void>): Promise<void> => {
      try {
        await work();
      } catch (error) {
        this.logger.error({ err: error, partition: key }, `${what} failed; the replica keeps its previous role`);
      }
    };
    for (const stopped of changes.stopped) {
      await each('stopping the replica', partitionKey(stopped.topicName, stopped.partitionId), async () => {
        await this.stopReplica(stopped);
        this.notifyRoleChange({ topic: stopped.topicName, partition: stopped.partitionId, role: 'stopped', leaderEpoch: -1 });
      });
    }
    for (const change of changes.leaders) {
      await each('becoming leader', partitionKey(change.topicName, change.state.partitionId), async () => {
        await this.becomeLeader(change);
        this.notifyRoleChange({ topic: change.topicName, partition: change.state.partitionId, role: 'leader', leaderEpoch: change.state.leaderEpoch });
      });
    }
    for (const change of changes.followers) {
      await each('becoming follower', partitionKey(change.topicName, change.state.partitionId), async () => {
        await this.becomeFollower(change);
        this.notifyRoleChange({ topic: change.topicName, partition: change.state.partitionId, role: 'follower', leaderEpoch: change.state.leaderEpoch });
      });
    }
  }

  /**
   * Calls `listener` after every role change of a hosted replica has completed (the group
   * coordinator follows the leadership of `__consumer_offsets` this way). A leader change is
   * reported again for a new ISR at the same epoch; listeners compare epochs. Returns the
   * unsubscribe function.
   */
  onRoleChange(listener: (change: ReplicaRoleChange) => void): () => void {
    this.roleListeners.add(listener);
    return () => this.roleListeners.delete(listener);
  }

  private notifyRoleChange(change: ReplicaRoleChange): void {
    for (const listener of this.roleListeners) {
      try {
        listener(change);
      } catch (error) {
        this.logger.error({ err: error, partition: partitionKey(change.topic, change.partition) }, 'a role-change listener failed');
      }
    }
  }

  private topicConfig(configs: ReadonlyMap<string, string>): { log: LogConfig; minInsyncReplicas: number } {
    const merged = new Map(Object.entries(this.config.topicConfigDefaults));
    for (const [key, value] of configs) merged.set(key, value);
    const values = resolveTopicConfig(merged);
    return { log: logConfigFromValues(values), minInsyncReplicas: values.get('min.insync.replicas') as number };
  }

  private async openPartition(change: CapturedPartition): Promise<Partition> {
    const key = partitionKey(change.topicName, change.state.partitionId);
    const existing = this.partitions.get(key);
    if (existing !== undefined) return existing;
    const config = this.topicConfig(change.configs);
    const log =
      this.logManager.getLog(change.topicName, change.state.partitionId) ??
      (await this.logManager.openLog({ topic: change.topicName, partition: change.state.partitionId, config: config.log }));
    this.checkpointedHighWatermarks ??= await readHighWatermarks(this.options.logDir, (reason) =>
      this.logger.warn({ logDir: this.options.logDir, reason }, 'the high-watermark checkpoint is malformed; high watermarks restart at the log start offsets'),
    );
    const checkpointedHighWatermark = this.checkpointedHighWatermarks.get(key);
    this.checkpointedHighWatermarks.delete(key);
    const partition = await Partition.open({
      topic: change.topicName,
      topicId: change.state.topicId,
      partitionId: change.state.partitionId,
      log,
      minInsyncReplicas: config.minInsyncReplicas,
      checkpointedHighWatermark,
    });
    this.partitions.set(key, partition);
    return partition;
  }

  private async becomeLeader(change: CapturedPartition): Promise<void> {
    const partition = await this.openPartition(change);
    const { state } = change;
    await partition.withLock(async () => {
      const role = partition.role;
      if (role.kind === 'leader' && role.state.leaderEpoch === state.leaderEpoch) {
        // Same leadership, new committed ISR / partition epoch (KIP-497).
        const { highWatermarkAdvancedTo } = role.state.onPartitionMetadata(state);
        this.onHighWatermark(partition, highWatermarkAdvancedTo);
        return;
      }
      this.fetchers.removePartition(partition.key);
      // No request of an older leadership of ours may append once the new epoch has started.
      partition.role = { kind: 'follower', leaderId: state.leader, leaderEpoch: state.leaderEpoch };
      await partition.appendsSettled();
      const log = partition.log;
      const startOffset = log.logEndOffset;
      // KIP-101: the epoch's start offset is recorded before the first append of the epoch, so
      // followers truncating by epoch learn where this leader's log diverges from theirs.
      await log.assignEpochStartOffset(state.leaderEpoch, startOffset);
      const nowMs = this.clock.nowMs();
      const leader = new LeaderReplicaState({
        localBrokerId: this.brokerId,
        replicas: state.replicas,
        isr: state.isr,
        leaderEpoch: state.leaderEpoch,
        partitionEpoch: state.partitionEpoch,
        leaderEpochStartOffset: startOffset,
        highWatermark: Math.min(log.highWatermark, startOffset),
        nowMs,
        config: { replicaLagTimeMaxMs: this.config.replicaLagTimeMaxMs, minInsyncReplicas: partition.minInsyncReplicas },
        isReplicaEligible: (replicaId) => this.imageValue?.isBrokerActive(replicaId) ?? false,
      });
      partition.role = { kind: 'leader', state: leader };
      this.logger.info({ partition: partition.key, leaderEpoch: state.leaderEpoch, startOffset, isr: state.isr }, 'became leader');
      // With an ISR of one the HW is the LEO right away.
      this.onHighWatermark(partition, leader.onLeaderAppend(startOffset));
    });
    this.completeDelayed(partition.key);
  }

  private async becomeFollower(change: CapturedPartition): Promise<void> {
    const partition = await this.openPartition(change);
    const { state } = change;
    await partition.withLock(async () => {
      partition.role = { kind: 'follower', leaderId: state.leader, leaderEpoch: state.leaderEpoch };
      await partition.appendsSettled();
    });
    // Waiting acks=all produces of an old leadership answer NOT_LEADER_OR_FOLLOWER now (a new
    // leader may truncate their batches away), and waiting fetches answer.
    this.completeDelayed(partition.key);
    this.fetchers.removePartition(partition.key);
    if (state.leader !== NO_LEADER && state.leader !== this.brokerId) this.fetchers.addPartition(partition, state.leader, state.leaderEpoch);
    this.logger.info({ partition: partition.key, leaderId: state.leader, leaderEpoch: state.leaderEpoch }, 'became follower');
  }

  private async stopReplica(stopped: StoppedReplica): Promise<void> {
    const key = partitionKey(stopped.topicName, stopped.partitionId);
    this.fetchers.removePartition(key);
    const partition = this.partitions.get(key);
    if (partition !== undefined) {
      await partition.withLock(async () => {
        partition.role = { kind: 'stopped' };
      });
      this.partitions.delete(key);
      this.completeDelayed(key);
    }
    const log = this.logManager.getLog(stopped.topicName, stopped.partitionId);
    await this.logManager.closeLog(stopped.topicName, stopped.partitionId);
    if (log !== undefined) await fs.rm(log.dir, { recursive: true, force: true });
    this.logger.info({ partition: key, reason: stopped.reason }, 'stopped and deleted the replica');
  }

  // ---- events that may complete waiting requests ----

  private completeDelayed(key: PurgatoryKey): void {
    this.producePurgatory.checkAndComplete(key);
    this.fetchPurgatory.checkAndComplete(key);
  }

  private onHighWatermark(partition: Partition, highWatermark: number | undefined): void {
    if (highWatermark === undefined) return;
    partition.log.updateHighWatermark(highWatermark);
    this.completeDelayed(partition.key);
  }

  // ---- Produce ----

  /** Appends the batches of a produce request; answers per partition (see the module header). */
  async produce(request: ProduceRequest): Promise<ProducePartitionResponse[]> {
    if (request.acks !== 0 && request.acks !== 1 && request.acks !== -1) {
      return request.partitions.map((item) =>
        produceError(item, 'INVALID_REQUIRED_ACKS', `acks=${request.acks} is not supported; use 0, 1 or -1 (all)`, undefined, -1),
      );
    }
    const seen = new Set<PurgatoryKey>();
    const outcomes = await Promise.all(
      request.partitions.map((item): Promise<AppendOutcome> | AppendOutcome => {
        const key = partitionKey(item.topic, item.partition);
        if (seen.has(key)) {
          // Kafka's request format cannot name a partition twice; answering both would need two offsets.
          return { kind: 'answered', response: produceError(item, 'INVALID_REQUEST', `partition ${key} appears more than once in the request; send its batches together`, undefined, -1) };
        }
        seen.add(key);
        return this.appendToLeader(item, request.acks);
      }),
    );
    const responses = outcomes.map((outcome) => outcome.response);
    if (request.acks !== -1) return responses;
    const waiting = outcomes.flatMap((outcome, index) => (outcome.kind === 'appended' ? [{ outcome, index }] : []));
    if (waiting.length === 0) return responses;
    const timeoutMs = Math.min(Math.max(request.timeoutMs, 0), PRODUCE_TIMEOUT_MS_LIMIT);
    const codes = await this.waitForAcks(
      waiting.map(({ outcome }) => outcome),
      timeoutMs,
    );
    for (const { outcome, index } of waiting) {
      const code = codes.get(outcome.partition.key) ?? 'REQUEST_TIMED_OUT';
      if (code !== 'NONE') {
        responses[index] = produceError(
          responses[index]!,
          code,
          ackErrorMessage(code, timeoutMs),
          code === 'NOT_LEADER_OR_FOLLOWER' ? this.currentLeader(outcome.partition.topic, outcome.partition.partitionId) : undefined,
          outcome.partition.log.logStartOffset,
        );
      }
    }
    return responses;
  }

  private waitForAcks(appended: Extract<AppendOutcome, { kind: 'appended' }>[], timeoutMs: number): Promise<ReadonlyMap<PurgatoryKey, ProducePartitionCode>> {
    const byKey = new Map(appended.map((outcome) => [outcome.partition.key, outcome]));
    return new Promise((resolve) => {
      const operation = new DelayedProduce({
        partitions: appended.map((outcome) => ({ key: outcome.partition.key, lastOffset: outcome.lastOffset })),
        deadlineMs: this.clock.nowMs() + timeoutMs,
        probe: (waiting): ProducePartitionProbe => {
          const outcome = byKey.get(waiting.key)!;
          const role = outcome.partition.role;
          // Only the leadership that appended may acknowledge (KIP-101: a successor may truncate it).
          if (role.kind !== 'leader' || role.state !== outcome.leader || this.partitions.get(waiting.key) !== outcome.partition) return { kind: 'not-leader' };
          return role.state.checkProduceAcked(waiting.lastOffset);
        },
        onComplete: resolve,
      });
      try {
        if (this.producePurgatory.tryCompleteElseWatch(operation) === 'watching') this.ensureTick();
      } catch (error) {
        // A full purgatory: the batches are appended but cannot be waited for.
        this.logger.warn({ err: error }, 'produce purgatory is full');
        resolve(new Map());
      }
    });
  }

  private async appendToLeader(item: ProducePartitionRequest, acks: number): Promise<AppendOutcome> {
    const key = partitionKey(item.topic, item.partition);
    const partition = this.partitions.get(key);
    const answered = (code: ErrorCodeName, message: string, logStartOffset = -1): AppendOutcome => ({
      kind: 'answered',
      response: produceError(item, code, message, code === 'NOT_LEADER_OR_FOLLOWER' ? this.currentLeader(item.topic, item.partition) : undefined, logStartOffset),
    });
    const role = partition?.role;
    if (partition === undefined || role === undefined || role.kind !== 'leader') {
      const known = this.partitionInImage(item.topic, item.partition) !== undefined;
      if (!known) return answered('UNKNOWN_TOPIC_OR_PARTITION', `partition ${key} does not exist; create the topic first or check its partition count`);
      return answered('NOT_LEADER_OR_FOLLOWER', `broker ${this.brokerId} is not the leader of ${key}; refresh metadata and send to the leader`);
    }
    const leader = role.state;
    const log = partition.log;
    if (acks === -1 && leader.checkAppendAllowed(-1) === 'NOT_ENOUGH_REPLICAS') {
      return answered(
        'NOT_ENOUGH_REPLICAS',
        `the ISR of ${key} has ${leader.isr.length} members [${leader.isr.join(',')}], fewer than min.insync.replicas=${leader.config.minInsyncReplicas}; nothing was appended, retry once replicas catch up`,
        log.logStartOffset,
      );
    }
    let result: AppendResult;
    let duplicate: { firstOffset: number; lastOffset: number } | undefined;
    try {
      const headers = Partition.produceHeaders(item.records);
      if (Partition.isIdempotent(headers)) {
        const appended = await partition.withLock(async () => {
          if (partition.role !== role) throw new RaftkaError('NOT_LEADER_OR_FOLLOWER', `broker ${this.brokerId} stopped leading ${key}; send to the new leader`);
          const validation = partition.producerState.validateAppend(headers);
          switch (validation.kind) {
            case 'duplicate':
              return { duplicate: { firstOffset: validation.firstOffset, lastOffset: validation.lastOffset } };
            case 'error':
              throw new RaftkaError(validation.code, validation.message);
            case 'append': {
              const appendResult = await log.append(item.records, { leaderEpoch: leader.leaderEpoch, assignOffsets: true });
              partition.applyLeaderAppend(item.records, appendResult);
              return { result: appendResult };
            }
            default:
              return assertNever(validation, 'append validation');
          }
        });
        if ('duplicate' in appended) duplicate = appended.duplicate;
        else result = appended.result;
      } else {
        result = await partition.trackAppend(log.append(item.records, { leaderEpoch: leader.leaderEpoch, assignOffsets: true }));
        partition.recordAppend(result.logEndOffset, item.records.length);
      }
    } catch (error) {
      const { code, message } = describeError(error);
      return answered(code, message, log.logStartOffset);
    }
    if (duplicate !== undefined) {
      // A retried batch: answered with its original offset, nothing appended (KIP-98). With
      // acks=all the retry waits, as the original did, until the HW passes the batch: the
      // original's answer may have been lost (this leader was paused past its request timeout)
      // while the batch is still uncommitted, and acknowledging it now would acknowledge records
      // that the next leader never had and truncates (found by the chaos suite: SIGSTOP of a leader).
      const response = produceSuccess(item, duplicate.firstOffset, -1, log.logStartOffset);
      if (acks !== -1) return { kind: 'answered', response };
      return { kind: 'appended', response, lastOffset: duplicate.lastOffset, leader, partition };
    }
    invariant(result! !== undefined, 'an append that did not fail has a result');
    if (partition.role === role && result.logEndOffset > leader.logEndOffset) {
      this.onHighWatermark(partition, leader.onLeaderAppend(result.logEndOffset));
    }
    // Followers long-polling this partition may read the new batches now.
    this.fetchPurgatory.checkAndComplete(key);
    const logAppendTimeMs = log.config.messageTimestampType === 'LogAppendTime' ? result.maxTimestamp : -1;
    const response = produceSuccess(item, result.baseOffset, logAppendTimeMs, log.logStartOffset);
    return { kind: 'appended', response, lastOffset: result.lastOffset, leader, partition };
  }

  // ---- Fetch ----

  /** Reads for consumers (below the HW) and followers (below the LEO); long-polls for min bytes. */
  async fetch(request: FetchRequest): Promise<FetchPartitionResponse[]> {
    const maxWaitMs = Math.min(Math.max(request.maxWaitMs, 0), FETCH_MAX_WAIT_MS_LIMIT);
    const first = await this.readPartitions(request, true);
    if (maxWaitMs === 0 || request.partitions.length === 0 || first.bytes >= request.minBytes || first.answerNow) return first.responses;
    const byKey = new Map(request.partitions.map((item) => [partitionKey(item.topic, item.partition), item]));
    await new Promise<void>((resolve) => {
      const operation = new DelayedFetch({
        partitions: request.partitions.map((item) => ({ key: partitionKey(item.topic, item.partition), fetchOffset: item.fetchOffset })),
        minBytes: request.minBytes,
        deadlineMs: this.clock.nowMs() + maxWaitMs,
        probe: (waiting) => this.probeFetch(request, byKey.get(waiting.key)!),
        onComplete: () => resolve(),
      });
      try {
        if (this.fetchPurgatory.tryCompleteElseWatch(operation) === 'watching') this.ensureTick();
      } catch (error) {
        this.logger.warn({ err: error }, 'fetch purgatory is full; answering at once');
        resolve();
      }
    });
    return (await this.readPartitions(request, false)).responses;
  }

  private probeFetch(request: FetchRequest, item: FetchPartitionRequest): FetchPartitionProbe {
    const checked = this.leaderFor(item.topic, item.partition, item.currentLeaderEpoch);
    if (checked.kind === 'error') return { kind: 'answer-now', code: checked.code };
    const { partition, leader } = checked;
    const isFollower = request.replicaId >= 0;
    const bound = isFollower ? leader.logEndOffset : leader.highWatermark;
    if (item.fetchOffset < partition.log.logStartOffset || (isFollower && item.fetchOffset > bound)) return { kind: 'answer-now', code: 'OFFSET_OUT_OF_RANGE' };
    return { kind: 'bytes', bytes: Math.min(partition.bytesBetween(item.fetchOffset, bound), item.partitionMaxBytes) };
  }

  private async readPartitions(request: FetchRequest, firstPass: boolean): Promise<{ responses: FetchPartitionResponse[]; bytes: number; answerNow: boolean }> {
    const responses: FetchPartitionResponse[] = [];
    let bytes = 0;
    let answerNow = false;
    for (const item of request.partitions) {
      const response = await this.readPartition(request, item, firstPass, Math.min(request.maxBytes, FETCH_RESPONSE_BYTES_MAX) - bytes, bytes === 0);
      if (response.errorCode !== 'NONE' || response.divergingEpoch !== undefined) answerNow = true;
      bytes += response.records.length;
      responses.push(response);
    }
    return { responses, bytes, answerNow };
  }

  private async readPartition(request: FetchRequest, item: FetchPartitionRequest, firstPass: boolean, remainingBytes: number, firstNonEmpty: boolean): Promise<FetchPartitionResponse> {
    const fail = (code: ErrorCodeName, message: string, extra: Partial<FetchPartitionResponse> = {}): FetchPartitionResponse => ({
      ...emptyFetchResponse(item),
      errorCode: code,
      errorMessage: message,
      currentLeader: code === 'NOT_LEADER_OR_FOLLOWER' || code === 'FENCED_LEADER_EPOCH' ? this.currentLeader(item.topic, item.partition) : undefined,
      ...extra,
    });
    const checked = this.leaderFor(item.topic, item.partition, item.currentLeaderEpoch);
    if (checked.kind === 'error') return fail(checked.code, checked.message);
    const { partition, leader } = checked;
    const log = partition.log;
    const isFollower = request.replicaId >= 0;
    if (isFollower && leader.follower(request.replicaId) === undefined) {
      return fail('NOT_LEADER_OR_FOLLOWER', `broker ${request.replicaId} is not a replica of ${partition.key}; it must not fetch as a follower`);
    }
    const positions = { highWatermark: leader.highWatermark, lastStableOffset: leader.highWatermark, logStartOffset: log.logStartOffset };
    // KIP-320: a fetcher whose last fetched epoch ends earlier here than its fetch offset (or is
    // unknown here) holds records this leader does not: tell it where to truncate instead.
    if (item.lastFetchedEpoch >= 0) {
      const epochEnd = log.endOffsetForEpoch(item.lastFetchedEpoch);
      if (epochEnd.epoch < item.lastFetchedEpoch || epochEnd.endOffset < item.fetchOffset) {
        return { ...emptyFetchResponse(item), ...positions, divergingEpoch: { epoch: epochEnd.epoch, endOffset: epochEnd.endOffset } };
      }
    }
    // Followers read up to the leader's LEO as the replica state knows it (appends the log holds
    // but has not confirmed yet are not offered); consumers up to the HW.
    const readableEnd = isFollower ? leader.logEndOffset : log.logEndOffset;
    if (item.fetchOffset < log.logStartOffset || item.fetchOffset > readableEnd) {
      return fail('OFFSET_OUT_OF_RANGE', `offset ${item.fetchOffset} is outside [${log.logStartOffset}, ${readableEnd}] of ${partition.key}; reset the position`, positions);
    }
    if (isFollower && firstPass) {
      const { highWatermarkAdvancedTo, proposal } = leader.onFollowerFetch({ replicaId: request.replicaId, fetchOffset: item.fetchOffset, nowMs: this.clock.nowMs() });
      this.onHighWatermark(partition, highWatermarkAdvancedTo);
      if (proposal !== undefined) this.sendAlterPartition(partition, leader, proposal);
      positions.highWatermark = leader.highWatermark;
      positions.lastStableOffset = leader.highWatermark;
    }
    const bound = isFollower ? leader.logEndOffset : leader.highWatermark;
    let records: Buffer = EMPTY_RECORDS;
    const maxBytes = Math.min(item.partitionMaxBytes, remainingBytes);
    if (item.fetchOffset < bound && (maxBytes > 0 || firstNonEmpty)) {
      try {
        ({ records } = await log.read(item.fetchOffset, { maxBytes: Math.max(0, maxBytes), maxOffset: bound, minOneBatch: firstNonEmpty }));
      } catch (error) {
        const { code, message } = describeError(error);
        return fail(code, message, positions);
      }
    }
    return { ...emptyFetchResponse(item), ...positions, records };
  }

  // ---- ListOffsets / OffsetForLeaderEpoch ----

  async listOffsets(request: ListOffsetsRequest): Promise<ListOffsetsPartitionResponse[]> {
    const responses: ListOffsetsPartitionResponse[] = [];
    for (const item of request.partitions) responses.push(await this.listOffset(item));
    return responses;
  }

  private async listOffset(item: ListOffsetsPartitionRequest): Promise<ListOffsetsPartitionResponse> {
    const base = { topic: item.topic, partition: item.partition, errorCode: 'NONE' as ErrorCodeName, errorMessage: '', timestamp: -1, offset: -1, leaderEpoch: -1 };
    const checked = this.leaderFor(item.topic, item.partition, item.currentLeaderEpoch);
    if (checked.kind === 'error') return { ...base, errorCode: checked.code, errorMessage: checked.message };
    const { partition, leader } = checked;
    const log = partition.log;
    const epochAt = (offset: number): number => {
      let epoch = -1;
      for (const entry of log.epochEntries) if (entry.startOffset <= offset) epoch = entry.epoch;
      return epoch;
    };
    if (item.timestamp === LATEST_TIMESTAMP) {
      // Consumers see the end of what is committed: the HW (READ_COMMITTED equals it without transactions).
      return { ...base, offset: leader.highWatermark, leaderEpoch: leader.leaderEpoch };
    }
    if (item.timestamp === EARLIEST_TIMESTAMP) {
      return { ...base, offset: log.logStartOffset, leaderEpoch: epochAt(log.logStartOffset) };
    }
    if (item.timestamp < 0) {
      return { ...base, errorCode: 'INVALID_REQUEST', errorMessage: `timestamp ${item.timestamp} is not supported; use -1 (latest), -2 (earliest) or a time in milliseconds` };
    }
    try {
      const found = await log.offsetForTimestamp(item.timestamp);
      // Records at or above the HW are not visible to consumers yet.
      if (found === undefined || found.offset >= leader.highWatermark) return base;
      return { ...base, offset: found.offset, timestamp: found.timestamp, leaderEpoch: epochAt(found.offset) };
    } catch (error) {
      const { code, message } = describeError(error);
      return { ...base, errorCode: code, errorMessage: message };
    }
  }

  /** KIP-101/KIP-320: where the leader's log for an epoch ends (followers truncate to it). */
  offsetForLeaderEpoch(request: OffsetForLeaderEpochRequest): Promise<OffsetForLeaderEpochPartitionResponse[]> {
    return Promise.resolve(request.partitions.map((item) => this.epochEndOffset(item)));
  }

  private epochEndOffset(item: OffsetForLeaderEpochPartitionRequest): OffsetForLeaderEpochPartitionResponse {
    const base = { topic: item.topic, partition: item.partition, errorCode: 'NONE' as ErrorCodeName, errorMessage: '', leaderEpoch: -1, endOffset: -1 };
    const checked = this.leaderFor(item.topic, item.partition, item.currentLeaderEpoch);
    if (checked.kind === 'error') return { ...base, errorCode: checked.code, errorMessage: checked.message };
    const answer = checked.partition.log.endOffsetForEpoch(item.leaderEpoch);
    return { ...base, leaderEpoch: answer.epoch, endOffset: answer.endOffset };
  }

  // ---- ISR maintenance ----

  private sendAlterPartition(partition: Partition, leader: LeaderReplicaState, proposal: AlterPartitionProposal): void {
    // After a failure the next proposal waits: the leader re-proposes on every follower fetch,
    // which must not turn an unreachable controller into a flood of requests.
    const waitMs = partition.alterPartitionNotBeforeMs - this.clock.nowMs();
    if (waitMs > 0) {
      const handle = this.timers.setTimeout(() => {
        this.retryTimers.delete(handle);
        // Still worth sending only if this leadership still waits for this very proposal.
        const current = partition.role.kind === 'leader' && partition.role.state === leader && leader.pendingIsrChange?.proposal.proposalId === proposal.proposalId;
        if (this.state !== 'closed' && current) this.sendAlterPartition(partition, leader, proposal);
      }, waitMs);
      this.retryTimers.add(handle);
      return;
    }
    this.alterQueue.push({ partition, leader, proposal });
    this.logger.info({ partition: partition.key, isr: leader.isr, newIsr: proposal.newIsr }, 'proposing an ISR change');
    // Sent from a microtask: proposals made in one pass (a shrink check over every led
    // partition, a broker failing for thousands of them) travel in one request, and a
    // controller answering synchronously cannot publish into the caller's stack.
    if (!this.alterFlushQueued) {
      this.alterFlushQueued = true;
      queueMicrotask(() => this.flushAlterPartitions());
    }
  }

  private flushAlterPartitions(): void {
    this.alterFlushQueued = false;
    const items = this.alterQueue.splice(0, ALTER_PARTITION_ITEMS_MAX);
    if (this.alterQueue.length > 0) {
      this.alterFlushQueued = true;
      queueMicrotask(() => this.flushAlterPartitions());
    }
    if (items.length === 0 || this.state === 'closed') return;
    const byTopic = new Map<string, AlterPartitionRequest['topics'][number]>();
    for (const { partition, proposal } of items) {
      let topic = byTopic.get(partition.topicId);
      if (topic === undefined) byTopic.set(partition.topicId, (topic = { topicId: partition.topicId, partitions: [] }));
      topic.partitions.push({ partitionId: partition.partitionId, leaderEpoch: proposal.leaderEpoch, partitionEpoch: proposal.partitionEpoch, newIsr: [...proposal.newIsr] });
    }
    const request: AlterPartitionRequest = {
      brokerId: this.brokerId,
      brokerEpoch: this.imageValue?.brokers.get(this.brokerId)?.brokerEpoch ?? -1,
      topics: [...byTopic.values()],
    };
    void Promise.resolve()
      .then(() => this.options.alterPartition(request))
      .then(
        (response) => {
          const results = new Map<string, AlterPartitionResponse['topics'][number]['partitions'][number]>();
          for (const topic of response.topics) for (const item of topic.partitions) results.set(`${topic.topicId}:${item.partitionId}`, item);
          for (const queued of items) {
            const item = results.get(`${queued.partition.topicId}:${queued.partition.partitionId}`);
            let outcome: AlterPartitionOutcome;
            if (item === undefined) outcome = { kind: 'failed', code: 'UNKNOWN_SERVER_ERROR' };
            else if (item.error !== undefined) outcome = { kind: 'failed', code: item.error.code };
            else {
              outcome = {
                kind: 'committed',
                state: { replicas: queued.leader.replicas, isr: item.isr, leader: item.leader, leaderEpoch: item.leaderEpoch, partitionEpoch: item.partitionEpoch },
              };
            }
            this.onAlterPartitionOutcome(queued, outcome);
          }
        },
        (error: unknown) => {
          const code = describeError(error).code;
          for (const queued of items) this.onAlterPartitionOutcome(queued, { kind: 'failed', code });
        },
      )
      .catch((error: unknown) => this.logger.error({ err: error }, 'handling the AlterPartition response failed'));
  }

  private onAlterPartitionOutcome(queued: QueuedAlterPartition, outcome: AlterPartitionOutcome): void {
    const { partition, leader, proposal } = queued;
    if (outcome.kind === 'failed') {
      this.logger.warn({ partition: partition.key, code: outcome.code }, 'AlterPartition failed');
      partition.alterPartitionNotBeforeMs = this.clock.nowMs() + ALTER_PARTITION_RETRY_BACKOFF_MS;
    }
    if (partition.role.kind !== 'leader' || partition.role.state !== leader) return;
    // A committed ISR whose leader is not us would break the leader state's invariant; the
    // metadata log brings that change as a new leadership instead.
    if (outcome.kind === 'committed' && (outcome.state.leader !== this.brokerId || !outcome.state.isr.includes(this.brokerId))) return;
    const { highWatermarkAdvancedTo } = leader.onAlterPartitionResponse(proposal, outcome);
    this.onHighWatermark(partition, highWatermarkAdvancedTo);
  }

  /** Proposes shrinking the ISR of every led partition with followers lagging too long. */
  checkIsr(): void {
    const nowMs = this.clock.nowMs();
    for (const partition of this.partitions.values()) {
      const role = partition.role;
      if (role.kind !== 'leader') continue;
      const proposal = role.state.maybeShrinkIsr(nowMs);
      if (proposal !== undefined) this.sendAlterPartition(partition, role.state, proposal);
    }
  }

  private scheduleIsrCheck(): void {
    // Kafka checks every replica.lag.time.max.ms / 2, so a lagging follower leaves within 1.5x.
    this.isrTimer = this.timers.setTimeout(() => {
      this.isrTimer = undefined;
      if (this.state !== 'running') return;
      this.checkIsr();
      this.scheduleIsrCheck();
    }, Math.max(1, Math.floor(this.config.replicaLagTimeMaxMs / 2)));
  }

  /**
   * Writes every hosted replica's high watermark to the log directory's checkpoint (skipped when
   * nothing moved since the last write). Writes run one at a time.
   */
  checkpointHighWatermarks(): Promise<void> {
    const run = this.highWatermarkWrites.then(async () => {
      const entries = [...this.partitions.values()].map((partition) => ({ topic: partition.topic, partition: partition.partitionId, highWatermark: partition.log.highWatermark }));
      const text = entries.map((entry) => `${entry.topic} ${entry.partition} ${entry.highWatermark}`).join('\n');
      if (text === this.lastHighWatermarkCheckpoint) return;
      await writeHighWatermarks(this.options.logDir, entries);
      this.lastHighWatermarkCheckpoint = text;
    });
    this.highWatermarkWrites = run.catch(() => undefined);
    return run;
  }

  private scheduleHighWatermarkCheckpoint(): void {
    this.highWatermarkTimer = this.timers.setTimeout(() => {
      this.highWatermarkTimer = undefined;
      if (this.state !== 'running') return;
      void this.checkpointHighWatermarks()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'writing the high-watermark checkpoint failed'))
        .finally(() => {
          if (this.state === 'running') this.scheduleHighWatermarkCheckpoint();
        });
    }, HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS);
  }

  /** Forgets idle producers and those whose records are gone, on every hosted replica. */
  async expireProducers(): Promise<void> {
    const nowMs = this.clock.nowMs();
    for (const partition of [...this.partitions.values()]) {
      // Under the lock: an idempotent produce between its validation and its append must see
      // the entry it was validated against.
      await partition.withLock(async () => {
        partition.producerState.truncateHead(partition.log.logStartOffset);
        partition.producerState.removeExpiredProducers(nowMs);
      });
    }
  }

  private scheduleProducerExpiration(): void {
    this.producerExpirationTimer = this.timers.setTimeout(() => {
      this.producerExpirationTimer = undefined;
      if (this.state !== 'running') return;
      void this.expireProducers()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'expiring idle producers failed'))
        .finally(() => {
          if (this.state === 'running') this.scheduleProducerExpiration();
        });
    }, PRODUCER_EXPIRATION_CHECK_INTERVAL_MS);
  }

  /** Checks deadlines every PURGATORY_TICK_MS while any request waits (no timer while idle). */
  private ensureTick(): void {
    if (this.tickTimer !== undefined || this.state === 'closed') return;
    this.tickTimer = this.timers.setTimeout(() => {
      this.tickTimer = undefined;
      if (this.state === 'closed') return;
      const nowMs = this.clock.nowMs();
      this.producePurgatory.tick(nowMs);
      this.fetchPurgatory.tick(nowMs);
      if (this.producePurgatory.size > 0 || this.fetchPurgatory.size > 0) this.ensureTick();
    }, PURGATORY_TICK_MS);
  }

  // ---- lookups ----

  private partitionInImage(topic: string, partitionId: number): PartitionState | undefined {
    const image = this.imageValue;
    const topicImage = image?.topicByName(topic);
    return topicImage?.partitions[partitionId];
  }

  private currentLeader(topic: string, partitionId: number): LeaderIdAndEpoch | undefined {
    const state = this.partitionInImage(topic, partitionId);
    return state === undefined ? undefined : { leaderId: state.leader, leaderEpoch: state.leaderEpoch };
  }

  /** The led partition, after Kafka's checks: exists, led here, the client's epoch is current (KIP-320). */
  private leaderFor(
    topic: string,
    partitionId: number,
    currentLeaderEpoch: number,
  ): { kind: 'leader'; partition: Partition; leader: LeaderReplicaState } | { kind: 'error'; code: ErrorCodeName; message: string } {
    const key = partitionKey(topic, partitionId);
    const partition = this.partitions.get(key);
    const role = partition?.role;
    if (partition === undefined || role === undefined || role.kind !== 'leader') {
      if (this.partitionInImage(topic, partitionId) === undefined) {
        return { kind: 'error', code: 'UNKNOWN_TOPIC_OR_PARTITION', message: `partition ${key} does not exist` };
      }
      return { kind: 'error', code: 'NOT_LEADER_OR_FOLLOWER', message: `broker ${this.brokerId} is not the leader of ${key}; refresh metadata` };
    }
    const leader = role.state;
    if (currentLeaderEpoch !== NO_LEADER_EPOCH_CHECK) {
      if (currentLeaderEpoch < leader.leaderEpoch) {
        return { kind: 'error', code: 'FENCED_LEADER_EPOCH', message: `leader epoch ${currentLeaderEpoch} of ${key} is older than the current ${leader.leaderEpoch}; refresh metadata` };
      }
      if (currentLeaderEpoch > leader.leaderEpoch) {
        return { kind: 'error', code: 'UNKNOWN_LEADER_EPOCH', message: `leader epoch ${currentLeaderEpoch} of ${key} is newer than this broker's ${leader.leaderEpoch}; retry shortly` };
      }
    }
    return { kind: 'leader', partition, leader };
  }

  /** How one replica stands (undefined when this broker does not host it). */
  replicaStatus(topic: string, partitionId: number): ReplicaStatus | undefined {
    const partition = this.partitions.get(partitionKey(topic, partitionId));
    if (partition === undefined) return undefined;
    const log = partition.log;
    const common = { logStartOffset: log.logStartOffset, logEndOffset: log.logEndOffset, highWatermark: log.highWatermark };
    const role = partition.role;
    switch (role.kind) {
      case 'leader':
        return { ...common, role: 'leader', leaderId: this.brokerId, leaderEpoch: role.state.leaderEpoch, highWatermark: role.state.highWatermark, isr: role.state.isr };
      case 'follower':
        return { ...common, role: 'follower', leaderId: role.leaderId, leaderEpoch: role.leaderEpoch, isr: [] };
      case 'stopped':
        return { ...common, role: 'stopped', leaderId: -1, leaderEpoch: -1, isr: [] };
      default:
        return assertNever(role, 'partition role');
    }
  }

  /**
   * Stops fetching, answers every waiting request (with its timeout answer), and closes every
   * log cleanly. The metadata updates in progress finish first.
   */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    await this.metadataChain;
    this.state = 'closed';
    if (this.tickTimer !== undefined) this.timers.clearTimeout(this.tickTimer);
    if (this.isrTimer !== undefined) this.timers.clearTimeout(this.isrTimer);
    if (this.producerExpirationTimer !== undefined) this.timers.clearTimeout(this.producerExpirationTimer);
    if (this.highWatermarkTimer !== undefined) this.timers.clearTimeout(this.highWatermarkTimer);
    for (const handle of this.retryTimers) this.timers.clearTimeout(handle);
    this.retryTimers.clear();
    await this.fetchers.close();
    for (const partition of this.partitions.values()) partition.role = { kind: 'stopped' };
    this.producePurgatory.expireAll();
    this.fetchPurgatory.expireAll();
    // Appends in flight finish (or fail) before the logs close; then each replica's producer
    // state is saved so that the next start need not replay the whole log.
    await Promise.all(
      [...this.partitions.values()].map((partition) =>
        partition.withLock(async () => {
          await partition.appendsSettled();
          await partition.writeSnapshot().catch((error: unknown) => {
            this.logger.warn({ err: error, partition: partition.key }, 'could not write the producer-state snapshot; the next start replays the log');
          });
        }),
      ),
    );
    await this.checkpointHighWatermarks().catch((error: unknown) => {
      this.logger.warn({ err: error }, 'writing the final high-watermark checkpoint failed; high watermarks restart lower');
    });
    this.partitions.clear();
    await this.logManager.shutdown();
  }
}

const EMPTY_RECORDS: Buffer = Buffer.alloc(0);

function emptyFetchResponse(item: FetchPartitionRequest): FetchPartitionResponse {
  return {
    topic: item.topic,
    partition: item.partition,
    errorCode: 'NONE',
    errorMessage: '',
    highWatermark: -1,
    lastStableOffset: -1,
    logStartOffset: -1,
    divergingEpoch: undefined,
    currentLeader: undefined,
    records: EMPTY_RECORDS,
  };
}

function produceSuccess(item: { topic: string; partition: number }, baseOffset: number, logAppendTimeMs: number, logStartOffset: number): ProducePartitionResponse {
  return { topic: item.topic, partition: item.partition, errorCode: 'NONE', errorMessage: '', baseOffset, logAppendTimeMs, logStartOffset, currentLeader: undefined };
}

function produceError(
  item: { topic: string; partition: number },
  code: ErrorCodeName,
  message: string,
  currentLeader: LeaderIdAndEpoch | undefined,
  logStartOffset: number,
): ProducePartitionResponse {
  return { topic: item.topic, partition: item.partition, errorCode: code, errorMessage: message, baseOffset: -1, logAppendTimeMs: -1, logStartOffset, currentLeader };
}

function ackErrorMessage(code: ProducePartitionCode, timeoutMs: number): string {
  switch (code) {
    case 'NONE':
      return '';
    case 'REQUEST_TIMED_OUT':
      return `the in-sync replicas did not all confirm the batch within ${timeoutMs} ms; it is stored on the leader but not acknowledged, retry (an idempotent producer will not duplicate it)`;
    case 'NOT_ENOUGH_REPLICAS_AFTER_APPEND':
      return 'the batch was appended but the ISR shrank below min.insync.replicas before it was replicated; retry';
    case 'NOT_LEADER_OR_FOLLOWER':
      return 'leadership moved before the batch was replicated; it may be truncated by the new leader, retry there';
    default:
      return assertNever(code, 'produce ack code');
  }
}

/** The Kafka code and message of a failure (a RaftkaError's own, UNKNOWN_SERVER_ERROR otherwise). */
export function describeError(error: unknown): { code: ErrorCodeName; message: string } {
  if (error instanceof RaftkaError && error.code in ErrorCode) return { code: error.code, message: error.message };
  return { code: 'UNKNOWN_SERVER_ERROR', message: error instanceof Error ? error.message : String(error) };
}

