// The Consumer: `assign` partitions (manual assignment) or `subscribe` as a member of a consumer
// group, then `poll` (or iterate with `for await`, or `run` a handler) to receive records in
// offset order per partition.
//
// How a poll works (Kafka's KafkaConsumer.poll over its Fetcher):
//   1. Records already fetched and buffered are returned first, at most maxPollRecords, and the
//      position of each partition moves past the records returned.
//   2. Partitions without a usable position are fixed first: a pending reset (autoOffsetReset,
//      seekToBeginning/End, OFFSET_OUT_OF_RANGE) looks the offset up with ListOffsets; a position
//      whose leader changed is validated with OffsetForLeaderEpoch, and moved back to where the
//      new leader's log diverges if it was truncated under the consumer (KIP-320).
//   3. One Fetch per leader is kept in flight for the fetchable partitions (assigned, positioned,
//      not paused, nothing buffered), with fetchMinBytes / fetchMaxWaitMs long polling and the
//      maxPartitionFetchBytes / fetchMaxBytes limits. The next fetch is sent while the caller
//      processes the records just returned (pipelining).
//   4. A fetch answer updates each partition's high watermark (for `lag`) and buffers its decoded
//      records; errors steer the partition: NOT_LEADER_OR_FOLLOWER and friends refresh metadata,
//      FENCED_LEADER_EPOCH refreshes metadata and validates the position, OFFSET_OUT_OF_RANGE
//      resets per autoOffsetReset or, with `none`, fails the next poll with OffsetOutOfRangeError.
//
// Group mode (`subscribe`): the consumer joins its group (group-membership.ts) and the group's
// assignment drives `SubscriptionState.assign`; fetching stays as above. Each poll iteration first
// does the group's work, in this order (Kafka's ConsumerCoordinator.poll):
//   a. a fatal group error (fenced, misconfigured) is thrown;
//   b. lost partitions (session expired, generation fenced) are dropped without commit and
//      onPartitionsLost runs;
//   c. a new assignment is applied: revoked partitions get their processed offsets committed (with
//      auto-commit), then onPartitionsRevoked while they are still assigned, then they go; added
//      partitions get onPartitionsAssigned; under the cooperative protocol a revocation triggers the
//      second join at once (KIP-429);
//   d. a due auto-commit is sent (asynchronously);
//   e. a needed (re)join is started in the background (eager: after revoking everything);
//   f. added partitions start from the group's committed offset (with its leader epoch, so the
//      position is validated against the leader's log, KIP-320), else from autoOffsetReset.
// Records of partitions a member keeps are returned throughout a cooperative rebalance.

import {
  assertNever,
  batchesIn,
  decodeRecordBatch,
  isControlBatch,
  RaftkaError,
  type RecordHeader,
} from '@raftka/protocol';
import {
  ClusterClient,
  defaultRuntime,
  EARLIEST_TIMESTAMP,
  errorFromResponse,
  LATEST_TIMESTAMP,
  partitionKey,
  toRaftkaError,
  type ClientRuntime,
  type TopicPartition,
} from '../cluster-client.js';
import { resolveConsumerOptions, type ConsumerOptions } from '../options.js';
import { Producer } from '../producer/producer.js';
import { assignorsByName } from './assignors/protocol-selection.js';
import { compareTopicPartitions, topicPartitionKey } from './assignors/types.js';
import { CoordinatorClient } from './coordinator-client.js';
import { GroupMembership, type ReceivedAssignment } from './group-membership.js';
import {
  CommitFailedError,
  commitOffsetsOnce,
  fetchCommittedOnce,
  RebalanceInProgressError,
  type CommitIdentity,
  type CommittedOffset,
  type OffsetAndMetadata,
} from './offset-committer.js';
import { RetryRouter, retryTopicsFor, type RetryPolicy } from './retry-topics.js';
import type {
  FetchRequest,
  FetchResponse,
  OffsetForLeaderEpochRequest,
  OffsetForLeaderEpochResponse,
  PartitionDataMessage,
} from '../network/client-messages.js';
import {
  LogTruncationError,
  NoOffsetForPartitionError,
  OffsetOutOfRangeError,
  partitionName,
  SubscriptionState,
  type PartitionState,
  type ResetStrategy,
} from './subscription-state.js';

/** One record as the consumer returns it. */
export interface ConsumerRecord {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  /** CreateTime, or the broker's append time for LogAppendTime topics. */
  timestamp: number;
  /** Leader epoch of the batch the record was written in (-1 when unknown). */
  leaderEpoch: number;
}

export interface PollOptions {
  /** Longest time to wait for records (default 1000). 0 returns what is buffered or arrives at once. */
  timeoutMs?: number;
}

/** Consumer options: `bootstrapServers` is required, every other key has Kafka's default. */
export type ConsumerConfig = Partial<ConsumerOptions> & { bootstrapServers: string[] };

/**
 * Callbacks around rebalances (Kafka's ConsumerRebalanceListener). They run inside poll (or run),
 * so they may call commitSync, seek and the like. onPartitionsRevoked runs while the partitions are
 * still assigned (a commit there still counts); onPartitionsLost runs when the membership was lost
 * (session expired, generation fenced): another member may already own the partitions, so
 * committing is pointless and refused. Without onPartitionsLost, onPartitionsRevoked is called.
 */
export interface RebalanceListener {
  onPartitionsAssigned?(partitions: TopicPartition[]): void | Promise<void>;
  onPartitionsRevoked?(partitions: TopicPartition[]): void | Promise<void>;
  onPartitionsLost?(partitions: TopicPartition[]): void | Promise<void>;
}

/** What `run` passes to eachMessage. */
export interface EachMessagePayload {
  topic: string;
  partition: number;
  message: ConsumerRecord;
}

/** What `run` passes to eachBatch: one poll's records of one partition, in offset order. */
export interface EachBatchPayload {
  topic: string;
  partition: number;
  messages: ConsumerRecord[];
}

export interface RunConfig {
  /** Called once per record; the next record of the partition waits for it (backpressure). */
  eachMessage?: (payload: EachMessagePayload) => void | Promise<void>;
  /** Called once per partition per poll; exclusive with eachMessage. */
  eachBatch?: (payload: EachBatchPayload) => void | Promise<void>;
  /** Retry topics for records whose eachMessage throws (see retry-topics.ts). */
  retry?: RetryPolicy;
  /** Where a record goes after its last retry (or at once, without `retry`). */
  deadLetterTopic?: string;
  /** The producer retry routing uses; by default one is created (acks = all) and closed with the consumer. */
  producer?: Producer;
  /** How long each poll of the loop waits (default 1000 ms). */
  pollTimeoutMs?: number;
}

/** poll was interrupted by wakeup() (Kafka's WakeupException). */
export class WakeupError extends RaftkaError {
  constructor() {
    super('CONSUMER_WAKEUP', 'poll was interrupted by wakeup()', { retriable: false });
    this.name = 'WakeupError';
  }
}

type SubscriptionKind = { kind: 'topics'; topics: string[] } | { kind: 'pattern'; pattern: RegExp };

/** The consumer's group state (group mode, after subscribe). */
interface GroupContext {
  membership: GroupMembership;
  subscription: SubscriptionKind;
  listener: RebalanceListener;
  /** Topics a pattern matched at the last check (sorted); the topics list otherwise. */
  resolvedTopics: string[];
  nextPatternCheckMs: number;
  assignmentPending: ReceivedAssignment | undefined;
  lostPending: string | undefined;
  fatal: RaftkaError | undefined;
}

/** A fetch answer's decoded records for one partition, waiting to be returned by poll. */
interface CompletedFetch {
  state: PartitionState;
  /** The position the fetch was made from; stale once the position moved otherwise (seek). */
  fetchOffset: number;
  records: ConsumerRecord[];
  /** Index of the next record to return. */
  nextIndex: number;
  /** Offset after the last complete batch (may exceed the last record's offset + 1). */
  nextOffset: number;
  lastEpoch: number;
}

// closing: close() is committing and leaving; listeners may still commit.
type ConsumerLifecycle = 'open' | 'closing' | 'closed';

/** Requests in flight per broker: one Fetch plus metadata and offset lookups. */
const CONSUMER_IN_FLIGHT_PER_BROKER_MAX = 5;

/** poll's default wait, and the async iterator's poll period. */
const POLL_TIMEOUT_MS_DEFAULT = 1000;

export class Consumer implements AsyncIterable<ConsumerRecord> {
  readonly options: Readonly<ConsumerOptions>;
  readonly #runtime: ClientRuntime;
  readonly #cluster: ClusterClient;
  readonly #subscriptions: SubscriptionState;
  #lifecycle: ConsumerLifecycle = 'open';
  #connected: Promise<void> | undefined;
  // Invariant: at most one entry per partition, in arrival order.
  #completed: CompletedFetch[] = [];
  // Leaders with a Fetch in flight (one at a time per leader).
  // Partitions named in a Fetch that has not answered yet. Tracked per partition, not per broker:
  // a long poll for caught-up partitions must not hold back a partition whose buffer poll() just
  // drained (it would wait fetch.max.wait.ms for data that is already there).
  readonly #fetchingPartitions = new Set<PartitionState>();
  // Per-leader backoff after a failed fetch.
  readonly #nodeBackoffUntilMs = new Map<number, number>();
  // An error to throw from the next poll (Kafka raises fetch errors from poll).
  #pendingError: RaftkaError | undefined;
  #polling = false;
  #notify: (() => void) | undefined;
  // ---- groups ----
  readonly #coordinator: CoordinatorClient | undefined;
  #group: GroupContext | undefined;
  // Partitions (by key) that start from the group's committed offset once it is fetched.
  readonly #needsCommitted = new Set<string>();
  #nextCommittedAttemptMs = 0;
  #nextAutoCommitMs = 0;
  // Last offset committed per partition key, so auto-commit skips partitions that did not move.
  readonly #lastCommitted = new Map<string, number>();
  #lastPollMs: number;
  #wakeupPending = false;
  #runStopped = false;
  readonly #resumeTimers = new Set<unknown>();
  #ownedProducer: Producer | undefined;
  #closing: Promise<void> | undefined;

  constructor(config: ConsumerConfig, runtime: ClientRuntime = defaultRuntime) {
    this.options = resolveConsumerOptions(config);
    this.#runtime = runtime;
    this.#cluster = new ClusterClient(
      {
        bootstrapServers: this.options.bootstrapServers,
        requestTimeoutMs: this.options.requestTimeoutMs,
        retryBackoffMs: this.options.retryBackoffMs,
        metadataMaxAgeMs: this.options.metadataMaxAgeMs,
        maxRequestSize: Math.max(this.options.maxRequestSize, this.options.fetchMaxBytes, this.options.maxPartitionFetchBytes),
        maxInFlightPerBroker: CONSUMER_IN_FLIGHT_PER_BROKER_MAX,
        clientId: this.options.clientId,
      },
      runtime,
    );
    this.#subscriptions = new SubscriptionState(this.options.autoOffsetReset);
    this.#lastPollMs = runtime.clock();
    if (this.options.groupId !== '') {
      this.#coordinator = new CoordinatorClient(this.#cluster, runtime, {
        groupId: this.options.groupId,
        retryBackoffMs: this.options.retryBackoffMs,
        retryBackoffMaxMs: this.options.retryBackoffMaxMs,
        requestTimeoutMs: this.options.requestTimeoutMs,
      });
      // Unknown assignor names are a configuration error, reported at construction.
      assignorsByName(this.options.partitionAssignmentStrategy);
    }
  }

  /** Discovers the cluster. Optional: poll connects on first use. */
  connect(): Promise<void> {
    this.#checkOpen();
    this.#connected ??= this.#cluster.refreshMetadata().catch((error: unknown) => {
      this.#connected = undefined;
      throw error;
    });
    return this.#connected;
  }

  /** Reads exactly these partitions from now on (replacing any earlier assignment). */
  assign(partitions: readonly TopicPartition[]): void {
    this.#checkOpen();
    if (this.#group) throw new RaftkaError('INVALID_REQUEST', 'this consumer subscribed to topics; assign and subscribe are exclusive (use another consumer)', { retriable: false });
    this.#subscriptions.assign(partitions);
    this.#cluster.metadata.addTopics(partitions.map((partition) => partition.topic));
    const assigned = new Set(partitions.map((partition) => partitionKey(partition.topic, partition.partition)));
    this.#completed = this.#completed.filter((fetch) => assigned.has(partitionKey(fetch.state.topic, fetch.state.partition)));
  }

  assignment(): TopicPartition[] {
    return this.#subscriptions.assignment();
  }

  /** The next poll returns records from `offset` of this partition. */
  seek(partition: TopicPartition, offset: number): void {
    this.#checkOpen();
    this.#subscriptions.seek(partition, offset);
    // An explicit position wins over the group's committed offset (e.g. a seek in onPartitionsAssigned).
    this.#needsCommitted.delete(topicPartitionKey(partition));
    this.#dropBuffered(partition);
  }

  /** Moves to the first offset still in the log (looked up lazily, like Kafka). Defaults to all assigned partitions. */
  async seekToBeginning(partitions: readonly TopicPartition[] = this.assignment()): Promise<void> {
    this.#requestReset(partitions, 'earliest');
  }

  /** Moves to the end of the log (the high watermark): only records produced from now on are read. */
  async seekToEnd(partitions: readonly TopicPartition[] = this.assignment()): Promise<void> {
    this.#requestReset(partitions, 'latest');
  }

  #requestReset(partitions: readonly TopicPartition[], strategy: ResetStrategy): void {
    this.#checkOpen();
    for (const partition of partitions) {
      this.#subscriptions.requestReset(partition, strategy);
      this.#needsCommitted.delete(topicPartitionKey(partition));
      this.#dropBuffered(partition);
    }
  }

  /**
   * The offset of the next record poll returns for the partition, looking it up first when a
   * reset is pending (so it may throw NoOffsetForPartitionError with autoOffsetReset = none).
   */
  async position(partition: TopicPartition, options: { timeoutMs?: number } = {}): Promise<number> {
    this.#checkOpen();
    const state = this.#subscriptions.require(partition);
    const deadlineMs = this.#runtime.clock() + (options.timeoutMs ?? this.options.requestTimeoutMs);
    await this.connect();
    while (state.fetchState.kind !== 'fetching') {
      // A partition just assigned by the group starts from its committed offset, if any.
      if (this.#needsCommitted.has(topicPartitionKey(state))) await this.#initFromCommitted();
      else await this.#updatePositions([state]);
      if (isFetching(state)) break;
      const nowMs = this.#runtime.clock();
      if (nowMs >= deadlineMs) throw new RaftkaError('REQUEST_TIMED_OUT', `the position of ${partitionName(partition)} could not be determined in time`, { retriable: false });
      await this.#cluster.delay(Math.min(this.options.retryBackoffMs, deadlineMs - nowMs));
    }
    return state.position!;
  }

  /** High watermark minus position, from the last fetch; undefined until both are known. */
  lag(partition: TopicPartition): number | undefined {
    const state = this.#subscriptions.require(partition);
    if (state.highWatermark === undefined || state.position === undefined) return undefined;
    return Math.max(0, state.highWatermark - state.position);
  }

  /** `lag` of every assigned partition, keyed `topic-partition` (undefined until known). */
  lags(): Map<string, number | undefined> {
    return new Map(this.#subscriptions.states().map((state) => [partitionName(state), this.lag(state)]));
  }

  /** The partition's high watermark as of the last fetch. */
  highWatermark(partition: TopicPartition): number | undefined {
    return this.#subscriptions.require(partition).highWatermark;
  }

  /** Stops returning and fetching records of these partitions until `resume`; positions are kept. */
  pause(partitions: readonly TopicPartition[]): void {
    for (const partition of partitions) this.#subscriptions.pause(partition);
  }

  resume(partitions: readonly TopicPartition[]): void {
    for (const partition of partitions) this.#subscriptions.resume(partition);
    this.#wake();
  }

  paused(): TopicPartition[] {
    return this.#subscriptions
      .states()
      .filter((state) => state.paused)
      .map(({ topic, partition }) => ({ topic, partition }));
  }

  /**
   * Returns the next records of the assigned partitions (at most maxPollRecords), waiting up to
   * timeoutMs for some to arrive. Resolves with [] on timeout or when the consumer is closed.
   * Throws the errors Kafka's poll throws: NoOffsetForPartitionError, OffsetOutOfRangeError,
   * LogTruncationError (all OFFSET_OUT_OF_RANGE) and CORRUPT_MESSAGE.
   */
  async poll(options: PollOptions = {}): Promise<ConsumerRecord[]> {
    this.#checkOpen();
    if (this.#polling) {
      throw new RaftkaError('INVALID_REQUEST', 'poll is already running: a consumer is read by one loop at a time', { retriable: false });
    }
    this.#polling = true;
    this.#lastPollMs = this.#runtime.clock();
    try {
      const deadlineMs = this.#runtime.clock() + Math.max(0, options.timeoutMs ?? POLL_TIMEOUT_MS_DEFAULT);
      await this.connect();
      for (;;) {
        this.#throwIfWakeup();
        if (this.#group) await this.#groupPoll();
        this.#throwIfWakeup();
        this.#throwPendingError();
        const records = this.#drainBuffered(this.options.maxPollRecords);
        if (records.length > 0) {
          this.#sendFetches();
          return records;
        }
        if (this.#isClosed()) return [];
        await this.#cluster.maybeRefreshMetadata();
        await this.#updatePositions(this.#positionableStates());
        this.#throwPendingError();
        this.#sendFetches();
        const remainingMs = deadlineMs - this.#runtime.clock();
        if (remainingMs <= 0 || this.#isClosed()) return this.#drainBuffered(this.options.maxPollRecords);
        await this.#waitForActivity(Math.min(remainingMs, this.#nextHousekeepingDelayMs()));
      }
    } catch (error) {
      // close() during a poll ends it quietly, whatever request it was waiting on.
      if (this.#isClosed()) return [];
      throw error;
    } finally {
      this.#polling = false;
      this.#lastPollMs = this.#runtime.clock();
    }
  }

  /**
   * Iterates records forever (until close or break). Breaking out of the loop rewinds each
   * partition to the first record not yet handed out, so nothing fetched is skipped.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<ConsumerRecord, void, undefined> {
    let batch: ConsumerRecord[] = [];
    let index = 0;
    try {
      while (this.#lifecycle === 'open') {
        batch = await this.poll({ timeoutMs: POLL_TIMEOUT_MS_DEFAULT });
        for (index = 0; index < batch.length; index += 1) yield batch[index]!;
        batch = [];
      }
    } finally {
      if (this.#lifecycle === 'open') {
        // Records returned by poll but not yielded: move their partitions back to the first of them.
        const rewound = new Set<string>();
        for (const record of batch.slice(index + 1)) {
          const key = partitionKey(record.topic, record.partition);
          if (rewound.has(key) || !this.#subscriptions.get(record.topic, record.partition)) continue;
          rewound.add(key);
          this.seek(record, record.offset);
        }
      }
    }
  }

  /**
   * Stops fetching and releases connections; a waiting poll returns []. In group mode it first
   * commits the processed offsets (with auto-commit), runs onPartitionsRevoked, and leaves the
   * group (a static member does not send LeaveGroup, KIP-345: a restart within the session
   * timeout keeps its partitions without a rebalance).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#isClosed()) return;
    this.#lifecycle = 'closing';
    this.#runStopped = true;
    this.#wake();
    const group = this.#group;
    if (group) {
      const deadlineMs = this.#runtime.clock() + this.options.defaultApiTimeoutMs;
      const owned = this.#subscriptions.assignment();
      if (group.membership.state === 'stable' && owned.length > 0) {
        if (this.options.enableAutoCommit) await this.#commitWithRetries(this.#consumedOffsets(owned), deadlineMs).catch(() => undefined);
        await Promise.resolve(group.listener.onPartitionsRevoked?.(owned)).catch(() => undefined);
      }
      await group.membership.leave('the consumer is closing');
    } else if (this.options.enableAutoCommit && this.#coordinator && this.#subscriptions.assignment().length > 0) {
      await this.#commitWithRetries(this.#consumedOffsets(this.#subscriptions.assignment()), this.#runtime.clock() + this.options.defaultApiTimeoutMs).catch(() => undefined);
    }
    for (const timer of this.#resumeTimers) this.#runtime.timers.clearTimeout(timer);
    this.#resumeTimers.clear();
    this.#lifecycle = 'closed';
    this.#completed = [];
    this.#wake();
    await this.#ownedProducer?.close().catch(() => undefined);
    this.#cluster.close();
  }

  // ---- groups: public API ------------------------------------------------------------------------

  /**
   * Joins the consumer's group (`groupId`) and reads the partitions the group assigns it, for
   * these topics or every topic matching the pattern (checked again every metadataMaxAgeMs).
   * Calling it again replaces the subscription (and rebalances).
   */
  subscribe(topics: readonly string[] | RegExp, listener: RebalanceListener = {}): void {
    this.#checkOpen();
    if (!this.#coordinator) {
      throw new RaftkaError('INVALID_CONFIG', 'subscribe needs a groupId: set groupId in the consumer options (or use assign for manual assignment)', { retriable: false });
    }
    if (!this.#group && this.#subscriptions.assignment().length > 0) {
      throw new RaftkaError('INVALID_REQUEST', 'this consumer has manually assigned partitions; assign and subscribe are exclusive (use another consumer)', { retriable: false });
    }
    const subscription: SubscriptionKind = topics instanceof RegExp ? { kind: 'pattern', pattern: topics } : { kind: 'topics', topics: [...new Set(topics)].sort() };
    if (subscription.kind === 'topics') {
      if (subscription.topics.length === 0 || subscription.topics.some((topic) => typeof topic !== 'string' || topic.length === 0)) {
        throw new RaftkaError('INVALID_REQUEST', 'subscribe needs at least one topic name (or a RegExp)', { retriable: false });
      }
      this.#cluster.metadata.addTopics(subscription.topics);
    }
    if (this.#group) {
      this.#group.subscription = subscription;
      this.#group.listener = listener;
      this.#group.nextPatternCheckMs = 0;
      this.#group.membership.requestRejoin();
      this.#wake();
      return;
    }
    const groupInstanceId = this.options.groupInstanceId === '' ? undefined : this.options.groupInstanceId;
    const context: GroupContext = {
      subscription,
      listener,
      resolvedTopics: subscription.kind === 'topics' ? subscription.topics : [],
      nextPatternCheckMs: 0,
      assignmentPending: undefined,
      lostPending: undefined,
      fatal: undefined,
      // The hooks close over `context`; they run only once a poll starts the join, after this.
      membership: new GroupMembership(
        this.#coordinator,
        this.#runtime,
        {
          groupId: this.options.groupId,
          groupInstanceId,
          sessionTimeoutMs: this.options.sessionTimeoutMs,
          heartbeatIntervalMs: this.options.heartbeatIntervalMs,
          maxPollIntervalMs: this.options.maxPollIntervalMs,
          requestTimeoutMs: this.options.requestTimeoutMs,
          assignors: assignorsByName(this.options.partitionAssignmentStrategy),
        },
        {
          subscribedTopics: () => this.#resolveSubscription(context),
          ownedPartitions: () => this.#subscriptions.assignment(),
          partitionCounts: (topics) => this.#partitionCounts(topics),
          onAssignment: (assignment) => {
            context.assignmentPending = assignment;
            this.#wake();
          },
          onLost: (reason) => {
            context.lostPending = reason;
            context.assignmentPending = undefined;
            this.#wake();
          },
          onFatal: (error) => {
            context.fatal = error;
            this.#wake();
          },
          pollIntervalExceeded: (nowMs) => !this.#polling && nowMs - this.#lastPollMs > this.options.maxPollIntervalMs,
        },
      ),
    };
    this.#group = context;
    this.#lastPollMs = this.#runtime.clock();
  }

  /**
   * Leaves the group: commits (with auto-commit) and revokes every partition, then sends
   * LeaveGroup (dynamic members). The consumer may subscribe again or assign afterwards.
   */
  async unsubscribe(): Promise<void> {
    this.#checkOpen();
    const group = this.#group;
    if (!group) {
      this.assign([]);
      return;
    }
    const owned = this.#subscriptions.assignment();
    if (owned.length > 0) {
      if (group.membership.state === 'stable') await this.#revoke(group, owned);
      else this.#dropPartitions(owned);
    }
    this.#group = undefined;
    await group.membership.leave('the consumer unsubscribed');
    this.#throwPendingError();
  }

  /** The current subscription: the topic list, or the pattern's current matches. */
  subscription(): string[] {
    return this.#group ? [...this.#group.resolvedTopics] : [];
  }

  /** The member id and generation this consumer has in its group (undefined outside a group). */
  groupMetadata(): { groupId: string; memberId: string; generationId: number; groupInstanceId: string | undefined } | undefined {
    return this.#group ? this.#group.membership.commitIdentity() : undefined;
  }

  /**
   * Commits offsets and waits for the coordinator to confirm, retrying coordinator moves until
   * defaultApiTimeoutMs. Without `offsets`, commits the position of every assigned partition (the
   * offset after the last record poll returned, with that record's leader epoch). Throws
   * CommitFailedError when the group rebalanced without this member, RebalanceInProgressError
   * while the group rebalances.
   */
  async commitSync(offsets?: readonly OffsetAndMetadata[], options: { timeoutMs?: number } = {}): Promise<void> {
    this.#checkOpen();
    this.#requireGroupId('commitSync');
    const list = offsets ?? this.#consumedOffsets(this.#subscriptions.assignment());
    await this.#commitWithRetries(list, this.#runtime.clock() + (options.timeoutMs ?? this.options.defaultApiTimeoutMs));
  }

  /** Sends one commit without retrying (Kafka's commitAsync); the promise says how it went. */
  async commitAsync(offsets?: readonly OffsetAndMetadata[]): Promise<void> {
    this.#checkOpen();
    this.#requireGroupId('commitAsync');
    const list = offsets ?? this.#consumedOffsets(this.#subscriptions.assignment());
    await this.#commitOnce(list);
  }

  /** The group's committed offsets for these partitions (offset -1 where none). */
  async committed(partitions: readonly TopicPartition[], options: { timeoutMs?: number } = {}): Promise<CommittedOffset[]> {
    this.#checkOpen();
    const coordinator = this.#requireGroupId('committed');
    const deadlineMs = this.#runtime.clock() + (options.timeoutMs ?? this.options.defaultApiTimeoutMs);
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await fetchCommittedOnce(coordinator, this.options.groupId, partitions);
      } catch (error) {
        const raftkaError = toRaftkaError(error);
        if (!raftkaError.retriable || this.#runtime.clock() >= deadlineMs || this.#isClosed()) throw raftkaError;
        await this.#cluster.delay(Math.min(coordinator.backoffMs(attempt), deadlineMs - this.#runtime.clock()));
      }
    }
  }

  /** Makes a waiting poll (or the next one) reject with WakeupError; safe to call from anywhere. */
  wakeup(): void {
    this.#wakeupPending = true;
    this.#wake();
  }

  /**
   * Runs the consume loop until close(): poll, then hand each partition's records to eachMessage
   * (one at a time) or eachBatch, and only then poll again, so a slow handler slows fetching
   * instead of piling records up (at most one fetched response per partition waits meanwhile).
   * Offsets of handled records are committed by auto-commit, on revocation and on close.
   * A handler that throws stops the loop with that error, and its record is read again next time;
   * with `retry` / `deadLetterTopic` the record is routed there instead and counts as processed.
   */
  async run(config: RunConfig): Promise<void> {
    this.#checkOpen();
    if ((config.eachMessage === undefined) === (config.eachBatch === undefined)) {
      throw new RaftkaError('INVALID_CONFIG', 'run needs exactly one of eachMessage and eachBatch', { retriable: false });
    }
    let router: RetryRouter | undefined;
    if (config.retry !== undefined || config.deadLetterTopic !== undefined) {
      if (!config.eachMessage) throw new RaftkaError('INVALID_CONFIG', 'retry and deadLetterTopic work with eachMessage only', { retriable: false });
      const routing = { retry: config.retry, deadLetterTopic: config.deadLetterTopic };
      let producer = config.producer;
      if (!producer) {
        this.#ownedProducer ??= new Producer({ bootstrapServers: this.options.bootstrapServers, acks: -1, retryBackoffMs: this.options.retryBackoffMs, retryBackoffMaxMs: this.options.retryBackoffMaxMs });
        producer = this.#ownedProducer;
      }
      router = new RetryRouter({ producer, routing, nowMs: this.#runtime.clock });
      const group = this.#group;
      if (group && group.subscription.kind === 'topics') {
        const topics = group.subscription.topics;
        const extra = retryTopicsFor(topics, routing).filter((topic) => !topics.includes(topic));
        if (extra.length > 0) this.subscribe([...topics, ...extra], group.listener);
      }
    }
    this.#runStopped = false;
    while (!this.#runStopped && this.#lifecycle === 'open') {
      const records = await this.poll({ timeoutMs: config.pollTimeoutMs ?? POLL_TIMEOUT_MS_DEFAULT });
      for (const batch of byPartition(records)) {
        if (this.#lifecycle !== 'open') return;
        if (config.eachBatch) {
          try {
            await config.eachBatch({ topic: batch[0]!.topic, partition: batch[0]!.partition, messages: batch });
          } catch (error) {
            this.#rewindTo(batch[0]!);
            throw error;
          }
          continue;
        }
        await this.#handleEach(batch, config.eachMessage!, router);
      }
    }
  }

  /** Ends a running `run` loop after the batch in hand (the consumer stays open). */
  stop(): void {
    this.#runStopped = true;
    this.#wake();
  }

  // ---- groups: internals -------------------------------------------------------------------------

  #requireGroupId(what: string): CoordinatorClient {
    if (!this.#coordinator) throw new RaftkaError('INVALID_CONFIG', `${what} needs a groupId in the consumer options`, { retriable: false });
    return this.#coordinator;
  }

  #throwIfWakeup(): void {
    if (!this.#wakeupPending) return;
    this.#wakeupPending = false;
    throw new WakeupError();
  }

  /** Partitions whose position poll may reset or validate (not those waiting for a committed offset). */
  #positionableStates(): PartitionState[] {
    if (this.#needsCommitted.size === 0) return this.#subscriptions.states();
    return this.#subscriptions.states().filter((state) => !this.#needsCommitted.has(topicPartitionKey(state)));
  }

  /** The group's share of one poll iteration (steps a-f of the module header). */
  async #groupPoll(): Promise<void> {
    const group = this.#group!;
    if (group.fatal) {
      const error = group.fatal;
      group.fatal = undefined;
      throw error;
    }
    if (group.lostPending !== undefined) {
      group.lostPending = undefined;
      await this.#losePartitions();
    }
    const assignment = group.assignmentPending;
    if (assignment) {
      group.assignmentPending = undefined;
      await this.#applyAssignment(group, assignment);
    }
    const nowMs = this.#runtime.clock();
    this.#maybeAutoCommit(nowMs);
    if (nowMs >= group.nextPatternCheckMs && group.membership.state === 'stable') {
      // Every metadataMaxAgeMs: a pattern may match new topics, and the leader rejoins when a
      // subscribed topic gained partitions (Kafka's ConsumerCoordinator does both).
      group.nextPatternCheckMs = nowMs + this.options.metadataMaxAgeMs;
      const before = group.resolvedTopics.join('\u0000');
      const after = (await this.#resolveSubscription(group).catch(() => group.resolvedTopics)).join('\u0000');
      const assignedCounts = group.membership.assignedPartitionCounts;
      let countsChanged = false;
      if (assignedCounts) {
        const current = await this.#partitionCounts([...assignedCounts.keys()]).catch(() => assignedCounts);
        countsChanged = [...assignedCounts].some(([topic, count]) => (current.get(topic) ?? count) !== count);
      }
      if (before !== after || countsChanged) group.membership.requestRejoin();
    }
    if (group.membership.needsJoin) {
      const owned = this.#subscriptions.assignment();
      // Eager protocol: give everything up before joining; the new assignment starts from scratch.
      if (group.membership.rebalanceProtocol === 'eager' && owned.length > 0) await this.#revoke(group, owned);
      void group.membership.startJoin().finally(() => this.#wake());
    }
    if (this.#needsCommitted.size > 0 && nowMs >= this.#nextCommittedAttemptMs) await this.#initFromCommitted();
  }

  async #resolveSubscription(group: GroupContext): Promise<string[]> {
    const subscription = group.subscription;
    switch (subscription.kind) {
      case 'topics':
        group.resolvedTopics = subscription.topics;
        return subscription.topics;
      case 'pattern': {
        const metadata = await this.#cluster.fetchMetadata('all');
        const matched = metadata.topics
          .filter((topic) => topic.errorCode === 0 && !topic.isInternal && !topic.name.startsWith('__'))
          .map((topic) => topic.name)
          .filter((name) => {
            subscription.pattern.lastIndex = 0;
            return subscription.pattern.test(name);
          })
          .sort();
        this.#cluster.metadata.addTopics(matched);
        group.resolvedTopics = matched;
        return matched;
      }
      default:
        return assertNever(subscription, 'subscription kind');
    }
  }

  /** Partition counts the group leader assigns from, after a fresh metadata refresh. */
  async #partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    this.#cluster.metadata.addTopics(topics);
    this.#cluster.metadata.requestUpdate();
    await this.#cluster.refreshMetadata();
    const counts = new Map<string, number>();
    for (const topic of topics) {
      const count = this.#cluster.metadata.partitionCount(topic);
      if (count !== undefined && count > 0) counts.set(topic, count);
    }
    return counts;
  }

  async #applyAssignment(group: GroupContext, assignment: ReceivedAssignment): Promise<void> {
    const owned = this.#subscriptions.assignment();
    const assignedKeys = new Set(assignment.partitions.map(topicPartitionKey));
    const ownedKeys = new Set(owned.map(topicPartitionKey));
    const revoked = owned.filter((tp) => !assignedKeys.has(topicPartitionKey(tp))).sort(compareTopicPartitions);
    const added = assignment.partitions.filter((tp) => !ownedKeys.has(topicPartitionKey(tp))).sort(compareTopicPartitions);
    if (revoked.length > 0) await this.#revoke(group, revoked);
    const kept = this.#subscriptions.assignment();
    this.#subscriptions.assign([...kept, ...added]);
    this.#cluster.metadata.addTopics(added.map((tp) => tp.topic));
    for (const tp of added) this.#needsCommitted.add(topicPartitionKey(tp));
    this.#nextCommittedAttemptMs = 0;
    await this.#callListener(group.listener.onPartitionsAssigned?.bind(group.listener), added);
    // KIP-429: partitions given up in this round are assigned to their new owners in the next one.
    if (assignment.protocol === 'cooperative' && revoked.length > 0) group.membership.requestRejoin();
  }

  /** Commits (with auto-commit) and calls onPartitionsRevoked while still assigned, then drops the partitions. */
  async #revoke(group: GroupContext, partitions: readonly TopicPartition[]): Promise<void> {
    if (this.options.enableAutoCommit) {
      const deadlineMs = this.#runtime.clock() + this.options.defaultApiTimeoutMs;
      await this.#commitWithRetries(this.#consumedOffsets(partitions), deadlineMs).catch(() => undefined);
    }
    await this.#callListener(group.listener.onPartitionsRevoked?.bind(group.listener), [...partitions]);
    this.#dropPartitions(partitions);
  }

  /** The membership is gone: no commit (another member may own the partitions by now). */
  async #losePartitions(): Promise<void> {
    const group = this.#group!;
    const owned = this.#subscriptions.assignment();
    if (owned.length === 0) return;
    const callback = group.listener.onPartitionsLost ?? group.listener.onPartitionsRevoked;
    await this.#callListener(callback?.bind(group.listener), owned);
    this.#dropPartitions(owned);
  }

  #dropPartitions(partitions: readonly TopicPartition[]): void {
    const gone = new Set(partitions.map(topicPartitionKey));
    this.#subscriptions.assign(this.#subscriptions.assignment().filter((tp) => !gone.has(topicPartitionKey(tp))));
    for (const key of gone) {
      this.#needsCommitted.delete(key);
      this.#lastCommitted.delete(key);
    }
    this.#completed = this.#completed.filter((fetch) => !gone.has(topicPartitionKey(fetch.state)));
  }

  /** Runs a listener callback; its error surfaces from this poll after the rebalance step completes. */
  async #callListener(callback: ((partitions: TopicPartition[]) => void | Promise<void>) | undefined, partitions: TopicPartition[]): Promise<void> {
    if (!callback) return;
    try {
      await callback(partitions);
    } catch (error) {
      this.#pendingError ??= new RaftkaError('UNKNOWN_SERVER_ERROR', `a rebalance listener threw: ${error instanceof Error ? error.message : String(error)}`, { cause: error, retriable: false });
    }
  }

  /** Positions newly assigned partitions at the group's committed offsets. */
  async #initFromCommitted(): Promise<void> {
    const coordinator = this.#coordinator!;
    const states = this.#subscriptions.states().filter((state) => this.#needsCommitted.has(topicPartitionKey(state)));
    let committed: CommittedOffset[];
    try {
      committed = await fetchCommittedOnce(coordinator, this.options.groupId, states);
    } catch (error) {
      const raftkaError = toRaftkaError(error);
      if (!raftkaError.retriable) throw raftkaError;
      this.#nextCommittedAttemptMs = this.#runtime.clock() + this.options.retryBackoffMs;
      return;
    }
    for (const entry of committed) {
      const key = topicPartitionKey(entry);
      const state = this.#subscriptions.get(entry.topic, entry.partition);
      if (!state || !this.#needsCommitted.has(key)) continue;
      this.#needsCommitted.delete(key);
      // Without a commit the partition keeps its pending reset (autoOffsetReset decides).
      if (entry.offset >= 0) this.#subscriptions.seek(state, entry.offset, entry.leaderEpoch);
    }
  }

  #maybeAutoCommit(nowMs: number): void {
    if (!this.options.enableAutoCommit || this.#group?.membership.state !== 'stable') return;
    if (nowMs < this.#nextAutoCommitMs) return;
    this.#nextAutoCommitMs = nowMs + this.options.autoCommitIntervalMs;
    const offsets = this.#consumedOffsets(this.#subscriptions.assignment()).filter((entry) => this.#lastCommitted.get(topicPartitionKey(entry)) !== entry.offset);
    if (offsets.length > 0) void this.#commitOnce(offsets).catch(() => undefined);
  }

  /** The position of each partition that has one: the next offset after what poll returned. */
  #consumedOffsets(partitions: readonly TopicPartition[]): OffsetAndMetadata[] {
    const offsets: OffsetAndMetadata[] = [];
    for (const tp of partitions) {
      const state = this.#subscriptions.get(tp.topic, tp.partition);
      if (!state || state.position === undefined || this.#needsCommitted.has(topicPartitionKey(tp))) continue;
      offsets.push({ topic: tp.topic, partition: tp.partition, offset: state.position, leaderEpoch: state.positionEpoch });
    }
    return offsets;
  }

  #commitIdentity(): CommitIdentity {
    if (this.#group) return this.#group.membership.commitIdentity();
    return { groupId: this.options.groupId, generationId: -1, memberId: '', groupInstanceId: undefined };
  }

  async #commitOnce(offsets: readonly OffsetAndMetadata[]): Promise<void> {
    const identity = this.#commitIdentity();
    try {
      await commitOffsetsOnce(this.#coordinator!, identity, offsets);
    } catch (error) {
      if (error instanceof CommitFailedError) this.#group?.membership.onCommitRefused(error.code, identity.generationId);
      throw error;
    }
    for (const entry of offsets) this.#lastCommitted.set(topicPartitionKey(entry), entry.offset);
  }

  async #commitWithRetries(offsets: readonly OffsetAndMetadata[], deadlineMs: number): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#commitOnce(offsets);
        return;
      } catch (error) {
        const raftkaError = toRaftkaError(error);
        if (raftkaError instanceof RebalanceInProgressError || !raftkaError.retriable || this.#runtime.clock() >= deadlineMs || this.#isClosed()) throw raftkaError;
        await this.#cluster.delay(Math.min(this.#coordinator!.backoffMs(attempt), Math.max(0, deadlineMs - this.#runtime.clock())));
      }
    }
  }

  /** eachMessage over one partition's records, with retry-topic routing when configured. */
  async #handleEach(batch: ConsumerRecord[], eachMessage: NonNullable<RunConfig['eachMessage']>, router: RetryRouter | undefined): Promise<void> {
    for (let index = 0; index < batch.length; index += 1) {
      const record = batch[index]!;
      if (this.#lifecycle !== 'open' || !this.#subscriptions.get(record.topic, record.partition)) return;
      if (router) {
        const delayMs = router.delayMs(record, this.#runtime.clock());
        if (delayMs > 0) {
          // Not due yet: hold only this partition, from this record on, and resume when due.
          this.#rewindTo(record);
          this.pause([record]);
          const timer = this.#runtime.timers.setTimeout(() => {
            this.#resumeTimers.delete(timer);
            if (this.#lifecycle === 'open' && this.#subscriptions.get(record.topic, record.partition)) this.resume([record]);
          }, delayMs);
          this.#resumeTimers.add(timer);
          return;
        }
      }
      try {
        await eachMessage({ topic: record.topic, partition: record.partition, message: record });
      } catch (error) {
        if (!router) {
          this.#rewindTo(record);
          throw error;
        }
        try {
          await router.route(record, error);
        } catch (routingError) {
          this.#rewindTo(record);
          throw routingError;
        }
      }
    }
  }

  /** Moves a partition back so `record` is returned again (its later records were not handled). */
  #rewindTo(record: ConsumerRecord): void {
    const state = this.#subscriptions.get(record.topic, record.partition);
    if (!state) return;
    this.#subscriptions.seek(state, record.offset, record.leaderEpoch);
    this.#dropBuffered(record);
  }

  // ---- internals ---------------------------------------------------------------------------------

  #isClosed(): boolean {
    return this.#lifecycle === 'closed';
  }

  #checkOpen(): void {
    if (this.#lifecycle === 'closed') throw new RaftkaError('SHUTTING_DOWN', 'the consumer is closed; create a new one', { retriable: false });
  }

  #throwPendingError(): void {
    const error = this.#pendingError;
    if (error) {
      this.#pendingError = undefined;
      throw error;
    }
  }

  #wake(): void {
    const notify = this.#notify;
    this.#notify = undefined;
    notify?.();
  }

  #waitForActivity(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.#runtime.timers.setTimeout(() => {
        if (this.#notify === notify) this.#notify = undefined;
        resolve();
      }, Math.max(1, timeoutMs));
      const notify = () => {
        this.#runtime.timers.clearTimeout(timer);
        resolve();
      };
      this.#notify = notify;
    });
  }

  /** When poll should look again without news: a metadata refresh or a backoff ending. */
  #nextHousekeepingDelayMs(): number {
    const nowMs = this.#runtime.clock();
    let delayMs = Math.max(this.#cluster.metadata.timeToNextUpdateMs(nowMs), 1);
    for (const state of this.#subscriptions.states()) {
      if (state.fetchState.kind !== 'fetching') delayMs = Math.min(delayMs, Math.max(1, state.nextAttemptMs - nowMs));
    }
    for (const untilMs of this.#nodeBackoffUntilMs.values()) delayMs = Math.min(delayMs, Math.max(1, untilMs - nowMs));
    return delayMs;
  }

  #dropBuffered(partition: TopicPartition): void {
    this.#completed = this.#completed.filter((fetch) => fetch.state.topic !== partition.topic || fetch.state.partition !== partition.partition);
  }

  /** Takes up to `max` buffered records of unpaused partitions, advancing their positions. */
  #drainBuffered(max: number): ConsumerRecord[] {
    const taken: ConsumerRecord[] = [];
    const kept: CompletedFetch[] = [];
    for (const fetch of this.#completed) {
      const { state } = fetch;
      const current = this.#subscriptions.get(state.topic, state.partition) === state;
      const expectedPosition = fetch.nextIndex < fetch.records.length ? fetch.records[fetch.nextIndex]!.offset : fetch.nextOffset;
      const stillValid = current && state.fetchState.kind === 'fetching' && state.position !== undefined && state.position <= expectedPosition && state.position >= fetch.fetchOffset;
      if (!stillValid) continue;
      if (state.paused || taken.length >= max) {
        kept.push(fetch);
        continue;
      }
      const count = Math.min(max - taken.length, fetch.records.length - fetch.nextIndex);
      const slice = fetch.records.slice(fetch.nextIndex, fetch.nextIndex + count);
      fetch.nextIndex += count;
      taken.push(...slice);
      if (fetch.nextIndex >= fetch.records.length) {
        this.#subscriptions.advance(state, fetch.nextOffset, fetch.lastEpoch);
      } else {
        const last = slice[slice.length - 1]!;
        this.#subscriptions.advance(state, last.offset + 1, last.leaderEpoch);
        kept.push(fetch);
      }
    }
    this.#completed = kept;
    return taken;
  }

  /** Resets and validations for partitions that cannot fetch yet. */
  async #updatePositions(states: readonly PartitionState[]): Promise<void> {
    const nowMs = this.#runtime.clock();
    for (const state of states) {
      if (state.fetchState.kind === 'fetching') this.#subscriptions.maybeRequireValidation(state, this.#cluster.metadata.leaderEpoch(state.topic, state.partition));
    }
    const missing = states.filter((state) => state.fetchState.kind === 'awaiting-reset' && state.fetchState.strategy === undefined && this.#subscriptions.autoOffsetReset === 'none');
    if (missing.length > 0) throw new NoOffsetForPartitionError(missing.map(({ topic, partition }) => ({ topic, partition })));
    const due = states.filter((state) => state.fetchState.kind !== 'fetching' && state.nextAttemptMs <= nowMs);
    if (due.some((state) => this.#cluster.metadata.leaderFor(state.topic, state.partition) === undefined)) {
      this.#cluster.metadata.requestUpdate();
      await this.#cluster.maybeRefreshMetadata();
    }
    await Promise.all([this.#resetPositions(due.filter((state) => state.fetchState.kind === 'awaiting-reset')), this.#validatePositions(due.filter((state) => state.fetchState.kind === 'awaiting-validation'))]);
  }

  async #resetPositions(states: readonly PartitionState[]): Promise<void> {
    if (states.length === 0) return;
    const strategyOf = (state: PartitionState): ResetStrategy => {
      const fetchState = state.fetchState;
      return (fetchState.kind === 'awaiting-reset' ? fetchState.strategy : undefined) ?? (this.#subscriptions.autoOffsetReset as ResetStrategy);
    };
    const strategies = new Map(states.map((state) => [state, strategyOf(state)]));
    const results = await this.#cluster.listOffsets(
      states.map((state) => ({ topic: state.topic, partition: state.partition, timestamp: strategies.get(state) === 'earliest' ? EARLIEST_TIMESTAMP : LATEST_TIMESTAMP })),
      this.#isolationLevel(),
    );
    for (const state of states) {
      const result = results.get(partitionKey(state.topic, state.partition));
      if (result instanceof RaftkaError || result === undefined) {
        if (result && !result.retriable) this.#pendingError = result;
        state.nextAttemptMs = this.#runtime.clock() + this.options.retryBackoffMs;
        continue;
      }
      this.#subscriptions.completeReset(state, strategies.get(state)!, result.offset, this.#cluster.metadata.leaderEpoch(state.topic, state.partition));
    }
  }

  /** KIP-320: after a leader change, checks the position's epoch still reaches the position on the new leader. */
  async #validatePositions(states: readonly PartitionState[]): Promise<void> {
    const byLeader = new Map<number, PartitionState[]>();
    for (const state of states) {
      const leader = this.#cluster.metadata.leaderFor(state.topic, state.partition);
      if (leader === undefined) continue;
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), state]);
    }
    await Promise.all(
      [...byLeader].map(async ([leader, list]) => {
        const topics = new Map<string, OffsetForLeaderEpochRequest['topics'][number]>();
        const epochs = new Map<PartitionState, number>();
        for (const state of list) {
          const entry = topics.get(state.topic) ?? { topic: state.topic, partitions: [] };
          const currentLeaderEpoch = this.#cluster.metadata.leaderEpoch(state.topic, state.partition);
          epochs.set(state, currentLeaderEpoch);
          entry.partitions.push({ partition: state.partition, currentLeaderEpoch, leaderEpoch: state.positionEpoch });
          topics.set(state.topic, entry);
        }
        let response: OffsetForLeaderEpochResponse;
        try {
          response = await this.#cluster.call<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>(leader, 'RaftkaClient', 'OffsetForLeaderEpoch', {
            replicaId: -1,
            topics: [...topics.values()],
          });
        } catch (error) {
          this.#cluster.metadata.onPartitionError(toRaftkaError(error).code);
          for (const state of list) state.nextAttemptMs = this.#runtime.clock() + this.options.retryBackoffMs;
          return;
        }
        for (const state of list) {
          const answer = response.topics.find((topic) => topic.topic === state.topic)?.partitions.find((partition) => partition.partition === state.partition);
          if (state.fetchState.kind !== 'awaiting-validation') continue;
          if (!answer || answer.errorCode !== 0) {
            if (answer) this.#cluster.metadata.onPartitionError(errorFromResponse(answer.errorCode, answer.errorMessage, 'OffsetForLeaderEpoch').code);
            state.nextAttemptMs = this.#runtime.clock() + this.options.retryBackoffMs;
            continue;
          }
          this.#applyDivergence(state, answer.leaderEpoch, answer.endOffset);
          state.validatedLeaderEpoch = epochs.get(state)!;
        }
      }),
    );
  }

  /**
   * The leader says the position's epoch ends at `endOffset`. If that is before the position,
   * the log was truncated under the consumer: move back to it (Kafka does so when a reset
   * policy is set) or, with autoOffsetReset none, fail the next poll with LogTruncationError.
   */
  #applyDivergence(state: PartitionState, epoch: number, endOffset: number): void {
    const position = state.position!;
    if (epoch < 0 || endOffset < 0) {
      // The leader knows no epoch this old: the position cannot be checked; reset it.
      if (this.#subscriptions.autoOffsetReset === 'none') this.#pendingError = new LogTruncationError(state, position, -1);
      else this.#subscriptions.requestReset(state, undefined);
      return;
    }
    if (endOffset < position) {
      if (this.#subscriptions.autoOffsetReset === 'none') {
        this.#pendingError = new LogTruncationError(state, position, endOffset);
        return;
      }
      this.#subscriptions.seek(state, endOffset, epoch);
      this.#dropBuffered(state);
      return;
    }
    state.fetchState = { kind: 'fetching' };
  }

  #isolationLevel(): 'READ_UNCOMMITTED' | 'READ_COMMITTED' {
    return this.options.isolationLevel === 'read_committed' ? 'READ_COMMITTED' : 'READ_UNCOMMITTED';
  }

  /** Sends one Fetch to every leader that has fetchable partitions not already in a Fetch. */
  #sendFetches(): void {
    if (this.#isClosed()) return;
    const nowMs = this.#runtime.clock();
    const buffered = new Set(this.#completed.map((fetch) => fetch.state));
    const byLeader = new Map<number, PartitionState[]>();
    for (const state of this.#subscriptions.states()) {
      if (state.fetchState.kind !== 'fetching' || state.paused || buffered.has(state) || this.#fetchingPartitions.has(state)) continue;
      const leader = this.#cluster.metadata.leaderFor(state.topic, state.partition);
      if (leader === undefined) {
        this.#cluster.metadata.requestUpdate();
        continue;
      }
      if ((this.#nodeBackoffUntilMs.get(leader) ?? 0) > nowMs) continue;
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), state]);
    }
    for (const [leader, states] of byLeader) this.#fetchFrom(leader, states);
  }

  #fetchFrom(leader: number, states: PartitionState[]): void {
    const topics = new Map<string, FetchRequest['topics'][number]>();
    const offsets = new Map<PartitionState, { fetchOffset: number; leaderEpoch: number }>();
    for (const state of states) {
      const entry = topics.get(state.topic) ?? { topic: state.topic, partitions: [] };
      const leaderEpoch = this.#cluster.metadata.leaderEpoch(state.topic, state.partition);
      offsets.set(state, { fetchOffset: state.position!, leaderEpoch });
      entry.partitions.push({
        partition: state.partition,
        currentLeaderEpoch: leaderEpoch,
        fetchOffset: state.position!,
        lastFetchedEpoch: state.positionEpoch,
        logStartOffset: -1,
        partitionMaxBytes: this.options.maxPartitionFetchBytes,
      });
      topics.set(state.topic, entry);
    }
    const request: FetchRequest = {
      replicaId: -1,
      maxWaitMs: this.options.fetchMaxWaitMs,
      minBytes: this.options.fetchMinBytes,
      maxBytes: this.options.fetchMaxBytes,
      isolationLevel: this.#isolationLevel(),
      sessionId: 0,
      sessionEpoch: -1,
      topics: [...topics.values()],
      rackId: '',
    };
    for (const state of states) this.#fetchingPartitions.add(state);
    // The long poll may take fetchMaxWaitMs on top of the usual request deadline.
    const timeoutMs = this.options.requestTimeoutMs + this.options.fetchMaxWaitMs;
    this.#cluster
      .call<FetchRequest, FetchResponse>(leader, 'RaftkaClient', 'Fetch', request, timeoutMs)
      .then(
        async (response) => {
          if (response.errorCode !== 0) throw errorFromResponse(response.errorCode, response.errorMessage, `fetch from broker ${leader}`);
          for (const topic of response.responses) {
            for (const data of topic.partitions) {
              const state = this.#subscriptions.get(topic.topic, data.partitionIndex);
              const sent = state ? offsets.get(state) : undefined;
              if (state && sent) await this.#handlePartitionData(state, sent.fetchOffset, data);
            }
          }
        },
      )
      .catch((error: unknown) => {
        if (this.#isClosed()) return;
        const raftkaError = toRaftkaError(error);
        this.#cluster.metadata.onPartitionError(raftkaError.code);
        if (raftkaError.code === 'CORRUPT_MESSAGE' || !raftkaError.retriable) this.#pendingError ??= raftkaError;
        this.#nodeBackoffUntilMs.set(leader, this.#runtime.clock() + this.options.retryBackoffMs);
      })
      .finally(() => {
        for (const state of states) this.#fetchingPartitions.delete(state);
        this.#wake();
      });
  }

  async #handlePartitionData(state: PartitionState, fetchOffset: number, data: PartitionDataMessage): Promise<void> {
    // The answer is stale if the position moved (seek, reset) while the fetch was in flight.
    if (this.#isClosed() || state.position !== fetchOffset || state.fetchState.kind !== 'fetching') return;
    if (data.errorCode !== 0) {
      const error = errorFromResponse(data.errorCode, data.errorMessage, `fetching ${partitionName(state)} at offset ${fetchOffset}`);
      if (data.currentLeader && data.currentLeader.leaderId >= 0) {
        this.#cluster.metadata.updateLeader(state.topic, state.partition, data.currentLeader.leaderId, data.currentLeader.leaderEpoch);
      }
      switch (error.code) {
        case 'OFFSET_OUT_OF_RANGE':
          if (this.#subscriptions.autoOffsetReset === 'none') {
            this.#pendingError = new OffsetOutOfRangeError(state, fetchOffset, `the log holds [${data.logStartOffset}, ${data.highWatermark})`);
          } else {
            this.#subscriptions.requestReset(state, undefined);
          }
          return;
        case 'FENCED_LEADER_EPOCH':
          // Our metadata is older than the leader's: refresh, then validate the position.
          this.#cluster.metadata.requestUpdate();
          if (state.positionEpoch >= 0) state.fetchState = { kind: 'awaiting-validation' };
          return;
        default:
          if (!this.#cluster.metadata.onPartitionError(error.code) && !error.retriable) this.#pendingError ??= error;
          return;
      }
    }
    state.highWatermark = data.highWatermark;
    state.lastStableOffset = data.lastStableOffset;
    state.logStartOffset = data.logStartOffset;
    if (data.divergingEpoch && data.divergingEpoch.epoch >= 0) {
      this.#applyDivergence(state, data.divergingEpoch.epoch, data.divergingEpoch.endOffset);
      return;
    }
    const records: ConsumerRecord[] = [];
    let nextOffset = fetchOffset;
    let lastEpoch = -1;
    for (const { header, position } of batchesIn(data.records)) {
      const lastOffset = header.baseOffset + header.lastOffsetDelta;
      if (lastOffset < fetchOffset) continue;
      nextOffset = lastOffset + 1;
      lastEpoch = header.partitionLeaderEpoch;
      // Control batches (transaction markers) are never returned to the application.
      if (isControlBatch(header.attributes)) continue;
      const decoded = await decodeRecordBatch(data.records, position);
      for (const record of decoded.records) {
        if (record.offset < fetchOffset) continue;
        records.push({
          topic: state.topic,
          partition: state.partition,
          offset: record.offset,
          key: record.key,
          value: record.value,
          headers: record.headers,
          timestamp: record.timestamp,
          leaderEpoch: header.partitionLeaderEpoch,
        });
      }
    }
    if (state.position !== fetchOffset || this.#isClosed()) return;
    if (nextOffset === fetchOffset) return;
    this.#completed.push({ state, fetchOffset, records, nextIndex: 0, nextOffset, lastEpoch });
  }
}

/** Records grouped by partition, each group in offset order, partitions in first-seen order. */
function byPartition(records: readonly ConsumerRecord[]): ConsumerRecord[][] {
  const groups = new Map<string, ConsumerRecord[]>();
  for (const record of records) {
    const key = partitionKey(record.topic, record.partition);
    const list = groups.get(key);
    if (list) list.push(record);
    else groups.set(key, [record]);
  }
  return [...groups.values()];
}

/** A fresh read of the fetch state (the compiler would otherwise keep a narrowing across awaits). */
function isFetching(state: PartitionState): boolean {
  return state.fetchState.kind === 'fetching';
}
