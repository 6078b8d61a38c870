// The Consumer, with manual partition assignment: `assign` partitions, then `poll` (or iterate
// with `for await`) to receive their records in offset order.
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
// Group subscription (`subscribe`, coordinator, commits) is a later addition: it will drive
// `SubscriptionState.assign` from the group's assignment; fetching stays as it is.

import {
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

type ConsumerLifecycle = 'open' | 'closed';

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
      },
      runtime,
    );
    this.#subscriptions = new SubscriptionState(this.options.autoOffsetReset);
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
      await this.#updatePositions([state]);
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
    try {
      const deadlineMs = this.#runtime.clock() + Math.max(0, options.timeoutMs ?? POLL_TIMEOUT_MS_DEFAULT);
      await this.connect();
      for (;;) {
        this.#throwPendingError();
        const records = this.#drainBuffered(this.options.maxPollRecords);
        if (records.length > 0) {
          this.#sendFetches();
          return records;
        }
        if (this.#isClosed()) return [];
        await this.#cluster.maybeRefreshMetadata();
        await this.#updatePositions(this.#subscriptions.states());
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

  /** Stops fetching and releases connections; a waiting poll returns []. */
  async close(): Promise<void> {
    if (this.#isClosed()) return;
    this.#lifecycle = 'closed';
    this.#completed = [];
    this.#wake();
    this.#cluster.close();
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

/** A fresh read of the fetch state (the compiler would otherwise keep a narrowing across awaits). */
function isFetching(state: PartitionState): boolean {
  return state.fetchState.kind === 'fetching';
}
