// The Producer: `send` appends records to the RecordAccumulator and resolves once the broker has
// acknowledged them per `acks`; a sender loop turns ready batches into Produce requests.
//
// Flow of one send call:
//   send -> (fast path, the usual case) the topic's metadata is known, nothing waits before this
//   call and memory is free: validate, choose each record's partition (murmur2 of the key, or
//   KIP-480 sticky for keyless records) and append every record synchronously into its
//   partition's open batch -> one promise per call, settled when the last of its records is
//   acknowledged. Otherwise (slow path) the call joins a FIFO of blocked calls, which one pump
//   works through in order: it waits for metadata (maxBlockMs) and for bufferMemory, one wait
//   per blocked stretch, not one per record.
//   -> the sender loop drains ready batches per leader (at most one batch per partition per
//   request) -> each batch is encoded into one buffer per attempt as a RecordBatch v2
//   (compressed, stamped with producer id/epoch/sequence) -> written to the leader's
//   ProduceStream -> per-partition outcome: success completes the records with base offset +
//   index; a retriable error re-queues the batch (in record order) after a backoff, refreshing
//   metadata first when the error says it is stale (NOT_LEADER_OR_FOLLOWER, ...); anything else
//   fails the records with the Kafka error name.
//
// Per record the hot path allocates nothing of its own beyond the send call's promise and, at
// completion, the RecordMetadata the caller asked for: the record is encoded straight into its
// batch's buffer (RecordBatchBuilder), its owner (its send call and position) and timestamp ride
// in the batch's parallel arrays, so completing a batch needs no lookup, and flush counts
// unsettled calls instead of keeping a set of them.
//
// Ordering and pipelining: Produce requests to a broker travel on one ProduceStream
// (network/produce-stream.ts), whose messages the broker starts and answers in order, so up to
// maxInFlightRequestsPerConnection batches of one partition may be in flight together and still
// be appended in order (separate unary calls could be reordered by the transport, which is why
// this producer once kept a single batch per partition on the wire). A batch being retried is
// sent only when nothing else of its partition is in flight, so retries go out in record order.
// With idempotence (the default, KIP-98) every batch also carries a sequence and a retry keeps
// it, so the broker appends each batch exactly once and in order even across a leader change or
// a lost answer: a batch behind a failed one is refused as OUT_OF_ORDER_SEQUENCE_NUMBER and
// retried after it. Without idempotence, as in Kafka with max.in.flight.requests.per.connection
// > 1, a retried batch may land after a later batch of its partition that succeeded meanwhile,
// and a retried batch whose first answer was lost may be appended twice; set
// maxInFlightRequestsPerConnection to 1 for strict order without idempotence.
//
// acks=0 resolves each record as soon as its request is handed to the transport, with offset -1:
// the producer never learns the outcome.
//
// The sender loop owns no clock or randomness of its own: both come from the ClientRuntime.

import { assertNever, invariant, RaftkaError, recordFieldsBytes, type RecordHeaderInput } from '@raftka/protocol';
import { ClusterClient, defaultRuntime, errorFromResponse, toRaftkaError, type ClientRuntime } from '../cluster-client.js';
import type { TopicInfo } from '../metadata-cache.js';
import { IDEMPOTENT_IN_FLIGHT_MAX, resolveProducerOptions, type ProducerOptions } from '../options.js';
import type { InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse } from '../network/client-messages.js';
import type { ProduceStream } from '../network/produce-stream.js';
import { IdempotenceState } from './idempotence.js';
import { StickyPartitioner, type TopicPartitionInfo } from './partitioner.js';
import { APPEND_BATCH_FULL, APPEND_NEW_BATCH, APPEND_NO_MEMORY, RecordAccumulator, type ProducerBatch } from './record-accumulator.js';
import { RetryPolicy } from './retry-policy.js';
import { TopicPartitionMap } from './topic-partition-map.js';

/** One record to send. Strings are encoded as UTF-8. */
export interface ProducerMessage {
  key?: Buffer | string | null;
  /** null is a tombstone in a compacted topic. */
  value: Buffer | string | null;
  /** As an object (one value per name) or as a list (names may repeat, order kept). */
  headers?: Readonly<Record<string, Buffer | string | null>> | readonly RecordHeaderInput[];
  /** Explicit partition; otherwise murmur2(key) % partitions, or sticky for keyless records. */
  partition?: number;
  /** CreateTime in milliseconds since the epoch; defaults to now. */
  timestamp?: number;
}

export interface ProducerRecord {
  topic: string;
  messages: readonly ProducerMessage[];
}

/** Where a record landed. */
export interface RecordMetadata {
  topic: string;
  partition: number;
  /** The record's offset; -1 with acks=0, or for a retried duplicate whose offset the broker did not return. */
  offset: number;
  /** CreateTime, or the broker's append time for LogAppendTime topics. */
  timestamp: number;
}

export type SendOutcome = { ok: true; metadata: RecordMetadata } | { ok: false; error: RaftkaError };

/**
 * Some records of one `send` call failed. `code` is the first failure's Kafka error name;
 * `outcomes` has one entry per message, in the order given.
 */
export class ProducerSendError extends RaftkaError {
  readonly outcomes: readonly SendOutcome[];

  constructor(outcomes: readonly SendOutcome[]) {
    const failures = outcomes.filter((outcome): outcome is { ok: false; error: RaftkaError } => !outcome.ok);
    const first = failures[0]!.error;
    super(first.code, `${failures.length} of ${outcomes.length} records failed; first: ${first.message}`, { cause: first, retriable: first.retriable });
    this.name = 'ProducerSendError';
    this.outcomes = outcomes;
  }
}

/** Producer options: `bootstrapServers` is required, every other key has Kafka's default. */
export type ProducerConfig = Partial<ProducerOptions> & { bootstrapServers: string[] };

// The executor every PendingSend promise shares: it hands the resolve function over through this
// variable, so a send call allocates no executor closure of its own. The reject function is not
// kept: a call that fails resolves with a rejected promise, which rejects the call's promise
// with the same error, and one function fewer per waiting call is less for the collector.
let capturedResolve: ((metadata: RecordMetadata[] | PromiseLike<RecordMetadata[]>) => void) | undefined;
function captureResolve(resolve: (metadata: RecordMetadata[] | PromiseLike<RecordMetadata[]>) => void): void {
  capturedResolve = resolve;
}

/**
 * One send call: the single promise its caller holds, and the outcome of each of its records,
 * filled in as their batches are answered. The batches hold the call itself as each record's
 * owner, so a record's outcome is one array store.
 *
 * Kept small on purpose: under load tens of thousands of calls wait for their answers at once,
 * long enough to outlive the young generation, so every field is paid for in garbage collection.
 * A one-record call (the usual case for applications that send per record) keeps no outcomes
 * array while it waits, and the times of a blocked call are kept as small integers relative to
 * the producer's clock origin (a Date.now() value would be a boxed heap number per field).
 */
class PendingSend {
  /** Creation order of send calls (flush waits for the calls created before it). */
  readonly id: number;
  readonly promise: Promise<RecordMetadata[]>;
  // Invariant: `remaining` counts the records without an outcome while the call is unsettled,
  // and is 0 once it settled (rejectCall sets it). `outcomes` is allocated up front for several
  // records, at settlement for one, so the call's record count is `outcomes?.length ?? 1`.
  #outcomes: (RecordMetadata | RaftkaError | undefined)[] | undefined;
  #remaining: number;
  readonly #resolve: (metadata: RecordMetadata[] | PromiseLike<RecordMetadata[]>) => void;
  readonly #onSettled: (send: PendingSend) => void;
  // While the call waits in the producer's blocked FIFO (for metadata, a connection or memory),
  // these say how far it got; kept here rather than in an object per blocked call.
  /** The call's records, held only while it is blocked (so values are not kept alive until acknowledged). */
  record: ProducerRecord | undefined = undefined;
  /** Set once the call was validated against the topic's metadata. */
  validated = false;
  /** The first record not yet appended; Infinity once the call is done with. */
  nextIndex = 0;
  /** The timestamp of records without one, since the clock origin: when the call was validated (Kafka: before waiting for memory). */
  timestampSinceOriginMs = 0;
  /** maxBlockMs after the call, since the clock origin: how long it may wait for metadata and memory. */
  deadlineSinceOriginMs = 0;

  constructor(id: number, recordCount: number, onSettled: (send: PendingSend) => void) {
    this.id = id;
    this.promise = new Promise<RecordMetadata[]>(captureResolve);
    this.#resolve = capturedResolve!;
    capturedResolve = undefined;
    this.#outcomes = recordCount === 1 ? undefined : new Array<RecordMetadata | RaftkaError | undefined>(recordCount).fill(undefined);
    this.#remaining = recordCount;
    this.#onSettled = onSettled;
  }

  get #recordCount(): number {
    return this.#outcomes?.length ?? 1;
  }

  complete(index: number, metadata: RecordMetadata): void {
    this.#record(index, metadata);
  }

  fail(index: number, error: RaftkaError): void {
    this.#record(index, error);
  }

  /** Fails records `from..end` that were never appended. */
  failFrom(from: number, error: RaftkaError): void {
    for (let index = from; index < this.#recordCount; index++) if (this.#remaining > 0 && this.#outcomes?.[index] === undefined) this.fail(index, error);
  }

  /** The call was invalid and nothing of it was appended: reject it as a whole. */
  rejectCall(error: unknown): void {
    invariant(this.#remaining > 0 && this.#remaining === this.#recordCount, 'a call is rejected as a whole only before any record was appended');
    this.#remaining = 0;
    this.#resolve(Promise.reject(error));
    this.#onSettled(this);
  }

  #record(index: number, outcome: RecordMetadata | RaftkaError): void {
    invariant(this.#remaining > 0 && index < this.#recordCount && this.#outcomes?.[index] === undefined, () => `record ${index} of a send call settled twice`);
    if (this.#outcomes === undefined) this.#outcomes = [outcome];
    else this.#outcomes[index] = outcome;
    this.#remaining -= 1;
    if (this.#remaining > 0) return;
    const outcomes = this.#outcomes;
    if (!hasFailure(outcomes)) {
      this.#resolve(outcomes as RecordMetadata[]);
    } else {
      this.#resolve(
        Promise.reject(new ProducerSendError(outcomes.map((entry) => (entry instanceof RaftkaError ? { ok: false, error: entry } : { ok: true, metadata: entry! })))),
      );
    }
    // After the promise settles, so a flush that waited on this call resumes after the call's own handlers.
    this.#onSettled(this);
  }
}

type ProducerState = 'new' | 'connecting' | 'connected' | 'closing' | 'closed';

/** What the sender loop drained when no leader had a batch ready (never modified). */
const NOTHING_DRAINED: ReadonlyMap<number, ProducerBatch[]> = new Map();

/** Longest the sender loop sleeps without a reason to wake, so metadata aging is noticed. */
const SENDER_IDLE_WAKE_MS_MAX = 1000;

export class Producer {
  readonly options: Readonly<ProducerOptions>;
  readonly #runtime: ClientRuntime;
  readonly #cluster: ClusterClient;
  readonly #accumulator: RecordAccumulator;
  readonly #partitioner: StickyPartitioner;
  readonly #retryPolicy: RetryPolicy;
  readonly #idempotence: IdempotenceState | undefined;
  #state: ProducerState = 'new';
  // Blocked calls keep their times relative to this (see PendingSend).
  readonly #clockOriginMs: number;
  #connecting: Promise<void> | undefined;
  // Unsettled send() calls, for flush(): counted, not kept (a set costs two hash operations per call).
  #nextSendId = 0;
  #unsettledSends = 0;
  // Invariant: each waiter's `remaining` counts the unsettled calls with id < beforeId; it is
  // resolved and removed when that reaches 0.
  #flushWaiters: { beforeId: number; remaining: number; resolve: () => void }[] = [];
  readonly #onSendSettled = (pending: PendingSend): void => {
    this.#unsettledSends -= 1;
    if (this.#flushWaiters.length === 0) return;
    for (const waiter of this.#flushWaiters) {
      if (pending.id < waiter.beforeId && --waiter.remaining === 0) waiter.resolve();
    }
    this.#flushWaiters = this.#flushWaiters.filter((waiter) => waiter.remaining > 0);
  };
  // Calls that could not append at once, in call order (a FIFO as array + head index).
  // Invariant: while it is non-empty, new calls queue behind it (records keep call order).
  #blocked: PendingSend[] = [];
  #blockedHead = 0;
  #pumping = false;
  // Batches of each partition handed to the transport and not yet answered.
  // Invariant: at most #partitionInFlightMax per partition.
  readonly #inFlightByPartition = new TopicPartitionMap<number>();
  readonly #partitionInFlightMax: number;
  #wake: (() => void) | undefined;
  // The sender's wake-up timer and when it fires (see #armSenderTimer).
  #senderTimer: unknown;
  #senderTimerDueMs = 0;
  #senderDone: Promise<void> | undefined;
  #initInProgress = false;
  #closing: Promise<void> | undefined;
  // Set once a fatal error (PRODUCER_FENCED) stops the producer.
  #fatalError: RaftkaError | undefined;

  constructor(config: ProducerConfig, runtime: ClientRuntime = defaultRuntime) {
    this.options = resolveProducerOptions(withImplicitIdempotence(config));
    this.#runtime = runtime;
    this.#clockOriginMs = runtime.clock();
    const options = this.options;
    this.#cluster = new ClusterClient(
      {
        bootstrapServers: options.bootstrapServers,
        requestTimeoutMs: options.requestTimeoutMs,
        retryBackoffMs: options.retryBackoffMs,
        metadataMaxAgeMs: options.metadataMaxAgeMs,
        maxRequestSize: options.maxRequestSize,
        maxInFlightPerBroker: options.maxInFlightRequestsPerConnection,
        allowAutoTopicCreation: true,
      },
      runtime,
    );
    this.#accumulator = new RecordAccumulator({
      batchSize: options.batchSize,
      lingerMs: options.lingerMs,
      bufferMemory: options.bufferMemory,
      maxRequestSize: options.maxRequestSize,
      maxBlockMs: options.maxBlockMs,
      deliveryTimeoutMs: options.deliveryTimeoutMs,
      clock: runtime.clock,
      timers: runtime.timers,
    });
    this.#partitioner = new StickyPartitioner(runtime.random);
    this.#retryPolicy = new RetryPolicy({
      retryBackoffMs: options.retryBackoffMs,
      retryBackoffMaxMs: options.retryBackoffMaxMs,
      deliveryTimeoutMs: options.deliveryTimeoutMs,
      retries: options.retries,
      random: runtime.random,
    });
    this.#idempotence = options.enableIdempotence ? new IdempotenceState(options.maxInFlightRequestsPerConnection) : undefined;
    this.#partitionInFlightMax = options.maxInFlightRequestsPerConnection;
  }

  /** The producer id and epoch in use (-1 before connect or without idempotence). */
  get producerIdAndEpoch(): { producerId: number; producerEpoch: number } {
    return { producerId: this.#idempotence?.producerId ?? -1, producerEpoch: this.#idempotence?.producerEpoch ?? -1 };
  }

  /**
   * Discovers the cluster and, with idempotence, obtains a producer id. `send` connects on first
   * use, so calling this is optional; it surfaces an unreachable cluster early.
   */
  connect(): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') {
      return Promise.reject(new RaftkaError('SHUTTING_DOWN', 'the producer is closed; create a new one', { retriable: false }));
    }
    if (this.#connecting) return this.#connecting;
    this.#state = 'connecting';
    this.#connecting = (async () => {
      const deadlineMs = this.#runtime.clock() + this.options.maxBlockMs;
      await this.#retryUntil(deadlineMs, () => this.#cluster.refreshMetadata());
      if (this.#idempotence) await this.#retryUntil(deadlineMs, () => this.#initProducerId());
      if (this.#state === 'connecting') {
        this.#state = 'connected';
        this.#senderDone = this.#runSender();
      }
    })();
    this.#connecting.catch(() => {
      // A failed connect may be retried by the next call.
      if (this.#state === 'connecting') {
        this.#state = 'new';
        this.#connecting = undefined;
      }
    });
    return this.#connecting;
  }

  /**
   * Sends records to one topic. Resolves, in message order, once every record is acknowledged
   * per `acks`; rejects with a ProducerSendError (per-message outcomes, Kafka error names) when
   * any record fails, or at once for an invalid call (unknown topic, partition out of range,
   * record too large, producer closed).
   */
  send(record: ProducerRecord): Promise<RecordMetadata[]> {
    try {
      this.#checkOpen();
      checkCall(record);
    } catch (error) {
      return Promise.reject(error);
    }
    const pending = new PendingSend(this.#nextSendId++, record.messages.length, this.#onSendSettled);
    this.#unsettledSends += 1;
    const topicInfo = this.#blockedHead === this.#blocked.length && this.#state === 'connected' ? this.#cluster.metadata.topic(record.topic) : undefined;
    const nowMs = this.#runtime.clock();
    if (topicInfo === undefined || topicInfo.partitions.length === 0) {
      this.#block(pending, record, false, nowMs, 0, nowMs + this.options.maxBlockMs);
      return pending.promise;
    }
    try {
      this.#validate(record, topicInfo);
    } catch (error) {
      pending.rejectCall(error);
      return pending.promise;
    }
    const stoppedAt = this.#appendFrom(pending, record, topicInfo, 0, nowMs);
    if (stoppedAt < record.messages.length) {
      this.#block(pending, record, true, nowMs, stoppedAt, nowMs + this.options.maxBlockMs);
    }
    return pending.promise;
  }

  /**
   * Validates every message of a call against the topic before any is appended, so a bad one
   * cannot half-send a call.
   */
  #validate(record: ProducerRecord, topicInfo: TopicInfo): void {
    const { topic, messages } = record;
    for (let index = 0; index < messages.length; index++) {
      const message = messages[index]!;
      checkMessage(message, index);
      // Throws UNKNOWN_TOPIC_OR_PARTITION for an explicit partition the topic does not have.
      if (message.partition !== undefined) this.#partitioner.partition({ topic, partition: message.partition }, { numPartitions: topicInfo.partitions.length, availablePartitions: [] });
      // MESSAGE_TOO_LARGE now, for the whole call, rather than after other records went out.
      this.#accumulator.checkFieldsBytes(recordFieldsBytes(message.key, message.value, normalizeHeaders(message.headers)));
    }
  }

  /** Partitions with a leader, for the sticky partitioner when it has to choose (not per record). */
  #partitionInfo(topic: string, numPartitions: number): TopicPartitionInfo {
    return { numPartitions, availablePartitions: this.#cluster.metadata.availablePartitions(topic) };
  }

  /**
   * Appends records `from..` of a call synchronously while memory allows. Returns the index of
   * the first record not appended (messages.length when all were); a failure that is not a lack
   * of memory fails the rest of the call.
   */
  #appendFrom(pending: PendingSend, record: ProducerRecord, topicInfo: TopicInfo, from: number, timestampMs: number): number {
    const { topic, messages } = record;
    const numPartitions = topicInfo.partitions.length;
    const accumulator = this.#accumulator;
    const partitioner = this.#partitioner;
    let wake = false;
    let index = from;
    try {
      for (; index < messages.length; index++) {
        if (this.#fatalError) throw this.#fatalError;
        const message = messages[index]!;
        const key = message.key ?? null;
        const headers = normalizeHeaders(message.headers);
        const fieldsBytes = recordFieldsBytes(key, message.value, headers);
        const timestamp = message.timestamp ?? timestampMs;
        let partition: number;
        if (message.partition !== undefined) {
          partition = message.partition; // checked by #validate
        } else if (key !== null) {
          partition = partitioner.keyedPartition(key, numPartitions);
        } else {
          partition = partitioner.stickyPartition(topic, numPartitions);
          if (partition < 0) partition = partitioner.partition({ topic }, this.#partitionInfo(topic, numPartitions));
          if (!accumulator.fitsFieldsInOpenBatch(topic, partition, fieldsBytes, timestamp)) {
            // KIP-480: a keyless record that would open a new batch moves the sticky partition first.
            partition = partitioner.onNewBatch(topic, partition, this.#partitionInfo(topic, numPartitions));
          }
        }
        const flags = accumulator.appendRecord(topic, partition, key, message.value, headers, timestamp, fieldsBytes, pending, index);
        if (flags === APPEND_NO_MEMORY) break;
        if ((flags & (APPEND_NEW_BATCH | APPEND_BATCH_FULL)) !== 0) wake = true;
      }
    } catch (error) {
      pending.failFrom(index, toRaftkaError(error));
      index = messages.length;
    }
    if (wake) this.#wakeSender();
    return index;
  }

  #block(pending: PendingSend, record: ProducerRecord, validated: boolean, timestampMs: number, nextIndex: number, deadlineMs: number): void {
    pending.record = record;
    pending.validated = validated;
    pending.timestampSinceOriginMs = timestampMs - this.#clockOriginMs;
    pending.nextIndex = nextIndex;
    pending.deadlineSinceOriginMs = deadlineMs - this.#clockOriginMs;
    this.#blocked.push(pending);
    if (!this.#pumping) void this.#pump();
  }

  /**
   * Works through blocked calls in order: connects, waits for the topic's metadata, then appends
   * while memory allows and waits for memory (up to the call's maxBlockMs) when it does not.
   * Only real waits cost a promise: while memory lasts, blocked calls are appended synchronously.
   */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#blockedHead < this.#blocked.length) {
        const blocked = this.#blocked[this.#blockedHead]!;
        const wait = this.#unblock(blocked);
        if (wait !== undefined) {
          await wait;
          continue;
        }
        blocked.record = undefined;
        this.#blocked[this.#blockedHead] = undefined as unknown as PendingSend;
        this.#blockedHead += 1;
        if (this.#blockedHead === this.#blocked.length) {
          this.#blocked = [];
          this.#blockedHead = 0;
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Moves a blocked call on as far as it can without waiting. Returns undefined once the call
   * is done with (all records appended, or failed), or what to wait for before trying again;
   * that promise never rejects (a failure fails the call).
   */
  #unblock(blocked: PendingSend): Promise<void> | undefined {
    const pending = blocked;
    const record = blocked.record!;
    if (blocked.nextIndex === Number.POSITIVE_INFINITY) return undefined;
    if (this.#fatalError) {
      failBlocked(blocked, this.#fatalError);
      return undefined;
    }
    if (this.#state === 'new' || this.#state === 'connecting') return this.connect().then(noop, (error: unknown) => failBlocked(blocked, error));
    const topicInfo = this.#cluster.metadata.topic(record.topic);
    if (topicInfo === undefined || topicInfo.partitions.length === 0) {
      return this.#cluster.waitForTopic(record.topic, this.#clockOriginMs + blocked.deadlineSinceOriginMs).then(noop, (error: unknown) => failBlocked(blocked, error));
    }
    if (!blocked.validated) {
      try {
        this.#validate(record, topicInfo);
      } catch (error) {
        failBlocked(blocked, error);
        return undefined;
      }
      blocked.validated = true;
      blocked.timestampSinceOriginMs = this.#runtime.clock() - this.#clockOriginMs;
    }
    const messages = record.messages;
    const timestampMs = this.#clockOriginMs + blocked.timestampSinceOriginMs;
    blocked.nextIndex = this.#appendFrom(pending, record, topicInfo, blocked.nextIndex, timestampMs);
    if (blocked.nextIndex >= messages.length) return undefined;
    // Out of memory: wait for room for this one record, then go on synchronously.
    const index = blocked.nextIndex;
    const message = messages[index]!;
    const key = message.key ?? null;
    let partition: number;
    try {
      partition = this.#partitioner.partition({ topic: record.topic, key, partition: message.partition }, this.#partitionInfo(record.topic, topicInfo.partitions.length));
    } catch (error) {
      failBlocked(blocked, error);
      return undefined;
    }
    const waitMs = Math.max(1, this.#clockOriginMs + blocked.deadlineSinceOriginMs - this.#runtime.clock());
    const input = { key, value: message.value, headers: normalizeHeaders(message.headers), timestamp: message.timestamp ?? timestampMs };
    const appended = this.#accumulator.append(record.topic, partition, input, pending, index, waitMs);
    // Appends now wait for memory, which makes every batch ready: let the sender free some.
    this.#wakeSender();
    return appended.then(
      (result) => {
        blocked.nextIndex = index + 1;
        if (result.newBatchCreated || result.batchIsFull) this.#wakeSender();
      },
      (error: unknown) => failBlocked(blocked, error),
    );
  }

  /** Sends everything queued now, regardless of lingerMs, and waits for the outcome of every send made so far. */
  async flush(): Promise<void> {
    this.#accumulator.beginFlush();
    this.#wakeSender();
    try {
      if (this.#unsettledSends > 0) {
        await new Promise<void>((resolve) => this.#flushWaiters.push({ beforeId: this.#nextSendId, remaining: this.#unsettledSends, resolve }));
      }
    } finally {
      this.#accumulator.endFlush();
    }
  }

  /** Flushes, then releases connections. Sends after close fail with SHUTTING_DOWN; calling it again waits for the same close. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = 'closing';
      await this.flush();
      this.#accumulator.close();
      this.#state = 'closed';
      this.#wakeSender();
      await this.#senderDone;
      this.#cluster.close();
    })();
    return this.#closing;
  }

  #checkOpen(): void {
    if (this.#fatalError) throw this.#fatalError;
    if (this.#state === 'closing' || this.#state === 'closed') {
      throw new RaftkaError('SHUTTING_DOWN', 'the producer is closed; no more records can be sent', { retriable: false });
    }
  }

  async #retryUntil(deadlineMs: number, task: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await task();
        return;
      } catch (error) {
        const raftkaError = toRaftkaError(error);
        const delayMs = this.#retryPolicy.backoffMs(attempt);
        if (!raftkaError.retriable || this.#runtime.clock() + delayMs >= deadlineMs) throw raftkaError;
        await this.#cluster.delay(delayMs);
      }
    }
  }

  async #initProducerId(): Promise<void> {
    const idempotence = this.#idempotence!;
    const request: InitProducerIdRequest = {
      transactionalId: '',
      transactionTimeoutMs: 0,
      producerId: idempotence.producerId,
      producerEpoch: idempotence.producerEpoch,
    };
    const response = await this.#cluster.callAny<InitProducerIdRequest, InitProducerIdResponse>('RaftkaClient', 'InitProducerId', request);
    if (response.errorCode !== 0) throw errorFromResponse(response.errorCode, response.errorMessage, 'InitProducerId');
    idempotence.setProducerId(response.producerId, response.producerEpoch);
  }

  // ---- sender loop ------------------------------------------------------------------------------

  #wakeSender(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #leaderFor = (topic: string, partition: number): number | undefined => this.#cluster.metadata.leaderFor(topic, partition);

  #isMuted = (topic: string, partition: number): boolean => {
    // Up to the in-flight limit of batches per partition ride one broker's ProduceStream, which
    // keeps their order (see the module header). A batch being retried goes out only when
    // nothing of its partition is in flight, so retries follow the partition's record order.
    const inFlight = this.#inFlightByPartition.get(topic, partition) ?? 0;
    const head = this.#accumulator.headBatch(topic, partition);
    if (inFlight > 0 && (inFlight >= this.#partitionInFlightMax || (head !== undefined && head.attempts > 0))) return true;
    return this.#idempotence !== undefined && !this.#idempotence.canSend(topic, partition, head);
  };

  #streamFor(node: number): ProduceStream {
    return this.#cluster.pool.produceStream({
      nodeId: node,
      endpoint: this.#endpointOf(node),
      maxInFlight: this.options.maxInFlightRequestsPerConnection,
      requestTimeoutMs: this.options.requestTimeoutMs,
      clock: this.#runtime.clock,
      timers: this.#runtime.timers,
    });
  }

  async #runSender(): Promise<void> {
    for (;;) {
      const nowMs = this.#runtime.clock();
      const anyInFlight = this.#inFlightByPartition.size > 0;
      if (this.#state === 'closed' && !this.#accumulator.hasQueuedBatches() && !anyInFlight) {
        if (this.#senderTimer !== undefined) this.#runtime.timers.clearTimeout(this.#senderTimer);
        this.#senderTimer = undefined;
        return;
      }
      if (this.#cluster.metadata.timeToNextUpdateMs(nowMs) === 0) {
        this.#cluster.refreshMetadata().then(
          () => this.#wakeSender(),
          () => this.#wakeSender(),
        );
      }
      if (this.#idempotence?.needsProducerId && !this.#initInProgress && !this.#fatalError) this.#startEpochBump();
      for (const batch of this.#accumulator.expire(nowMs)) {
        this.#failBatch(
          batch,
          new RaftkaError('REQUEST_TIMED_OUT', `${batch.recordCount} records for ${batch.topic}-${batch.partition} expired after deliveryTimeoutMs (${this.options.deliveryTimeoutMs}) without being sent`, {
            retriable: false,
          }),
        );
      }
      const ready = this.#accumulator.ready({ leaderFor: this.#leaderFor, nowMs, isMuted: this.#isMuted });
      // A retry backing off from its old leader ends early once metadata names a new one, so keep
      // refreshing (spaced by retryBackoffMs) while one waits.
      if (ready.unknownLeaderTopics.size > 0 || ready.retriesAwaitLeader) this.#cluster.metadata.requestUpdate();
      const drained =
        ready.readyNodes.size === 0
          ? NOTHING_DRAINED
          : this.#accumulator.drain({ leaderFor: this.#leaderFor, nodes: [...ready.readyNodes].filter((node) => this.#streamFor(node).hasCapacity()), nowMs, isMuted: this.#isMuted });
      for (const [node, batches] of drained) this.#sendProduce(node, batches);
      const metadataWaitMs = this.#cluster.metadata.timeToNextUpdateMs(this.#runtime.clock());
      const waitMs = Math.min(ready.nextReadyCheckDelayMs, metadataWaitMs, SENDER_IDLE_WAKE_MS_MAX);
      if (drained.size > 0) continue;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#armSenderTimer(this.#runtime.clock() + Math.max(1, waitMs));
      });
    }
  }

  /**
   * Makes sure the sender wakes by `dueMs`. One timer serves many sleeps: it is replaced only
   * when the sender must wake earlier than it would fire, so a busy sender, woken by appends and
   * answers many times per millisecond, does not set and clear a timer per sleep. Waking early
   * is harmless: the loop checks again and sleeps again.
   */
  #armSenderTimer(dueMs: number): void {
    if (this.#senderTimer !== undefined) {
      if (this.#senderTimerDueMs <= dueMs) return;
      this.#runtime.timers.clearTimeout(this.#senderTimer);
    }
    this.#senderTimerDueMs = dueMs;
    this.#senderTimer = this.#runtime.timers.setTimeout(this.#onSenderTimer, Math.max(1, dueMs - this.#runtime.clock()));
  }

  readonly #onSenderTimer = (): void => {
    this.#senderTimer = undefined;
    this.#wakeSender();
  };

  #endpointOf(node: number): { host: string; port: number } {
    const broker = this.#cluster.metadata.broker(node)!;
    return { host: broker.host, port: broker.port };
  }

  #startEpochBump(): void {
    this.#initInProgress = true;
    this.#initProducerId()
      .catch((error: unknown) => {
        const raftkaError = toRaftkaError(error);
        if (!raftkaError.retriable) this.#fail(raftkaError);
        else return this.#cluster.delay(this.options.retryBackoffMs);
        return undefined;
      })
      .finally(() => {
        this.#initInProgress = false;
        this.#wakeSender();
      });
  }

  #sendProduce(node: number, batches: ProducerBatch[]): void {
    const idempotence = this.#idempotence;
    for (const batch of batches) {
      // Stamped synchronously at drain time, so sequences follow the drain order.
      if (idempotence) idempotence.sequenceFor(batch);
      this.#inFlightByPartition.set(batch.topic, batch.partition, (this.#inFlightByPartition.get(batch.topic, batch.partition) ?? 0) + 1);
    }
    const acks = this.options.acks;
    const compression = this.options.compressionType;
    // Uncompressed batches are encoded on the spot into one buffer each; a codec compresses off
    // the event loop, and the stream still writes requests in drain order.
    let request: ProduceRequest | Promise<ProduceRequest>;
    try {
      request =
        compression === 'none'
          ? this.#produceRequest(batches, batches.map((batch) => batch.encode()))
          : Promise.all(batches.map((batch) => batch.encodeAsync(compression))).then((records) => this.#produceRequest(batches, records));
    } catch (error) {
      request = Promise.reject(error);
    }
    let stream: ProduceStream;
    try {
      stream = this.#streamFor(node);
    } catch (error) {
      this.#onProduceFailure(batches, error);
      return;
    }
    const response = stream.send(request);
    // acks=0: the outcome is never learned; the records count as sent once handed over.
    if (acks === 0) {
      void Promise.resolve(request).then(
        () => {
          for (const batch of batches) this.#completeBatch(batch, -1, -1, false);
        },
        () => undefined,
      );
    }
    response.then(
      (answer) => {
        this.#afterResponse(batches);
        if (acks === 0) {
          for (const batch of batches) this.#accumulator.release(batch, true);
          return;
        }
        this.#handleProduceResponse(node, batches, answer);
      },
      (error: unknown) => this.#onProduceFailure(batches, error),
    );
  }

  #onProduceFailure(batches: readonly ProducerBatch[], error: unknown): void {
    this.#afterResponse(batches);
    const raftkaError = toRaftkaError(error);
    if (this.options.acks === 0) {
      // Records already handed over count as sent (their owners are cleared); only records whose
      // request never got that far (it could not be encoded) fail.
      for (const batch of batches) this.#failBatch(batch, raftkaError);
      return;
    }
    for (const batch of batches) this.#handleBatchError(batch, raftkaError);
  }

  #produceRequest(batches: readonly ProducerBatch[], records: readonly Buffer[]): ProduceRequest {
    const topics = new Map<string, ProduceRequest['topicData'][number]>();
    batches.forEach((batch, index) => {
      let topic = topics.get(batch.topic);
      if (!topic) {
        topic = { name: batch.topic, partitionData: [] };
        topics.set(batch.topic, topic);
      }
      topic.partitionData.push({ index: batch.partition, records: records[index]! });
    });
    return { transactionalId: '', acks: this.options.acks, timeoutMs: this.options.ackTimeoutMs, topicData: [...topics.values()] };
  }

  #afterResponse(batches: readonly ProducerBatch[]): void {
    for (const batch of batches) {
      const count = (this.#inFlightByPartition.get(batch.topic, batch.partition) ?? 1) - 1;
      if (count <= 0) this.#inFlightByPartition.delete(batch.topic, batch.partition);
      else this.#inFlightByPartition.set(batch.topic, batch.partition, count);
    }
    this.#wakeSender();
  }

  #handleProduceResponse(node: number, batches: readonly ProducerBatch[], response: ProduceResponse): void {
    for (const batch of batches) {
      const answer = response.responses.find((topic) => topic.name === batch.topic)?.partitionResponses.find((partition) => partition.index === batch.partition);
      if (!answer) {
        this.#handleBatchError(batch, new RaftkaError('NETWORK_EXCEPTION', `broker ${node} did not answer for ${batch.topic}-${batch.partition}`));
        continue;
      }
      if (answer.errorCode === 0) {
        this.#completeBatch(batch, answer.baseOffset, answer.logAppendTimeMs, true, true);
        continue;
      }
      const recordErrors = answer.recordErrors.map((recordError) => `record ${recordError.batchIndex}: ${recordError.batchIndexErrorMessage}`).join('; ');
      const error = errorFromResponse(answer.errorCode, [answer.errorMessage, recordErrors].filter(Boolean).join('; '), `producing to ${batch.topic}-${batch.partition} on broker ${node}`);
      if (answer.currentLeader && answer.currentLeader.leaderId >= 0) {
        this.#cluster.metadata.updateLeader(batch.topic, batch.partition, answer.currentLeader.leaderId, answer.currentLeader.leaderEpoch);
      }
      this.#handleBatchError(batch, error);
    }
  }

  /** `recycle`: the broker answered the request that carried the batch, so its buffer may be reused. */
  #completeBatch(batch: ProducerBatch, baseOffset: number, logAppendTimeMs: number, release: boolean, recycle = false): void {
    const { owners, ownerIndexes, timestamps, topic, partition } = batch;
    for (let index = 0; index < owners.length; index++) {
      const owner = owners[index] as PendingSend | undefined;
      if (owner === undefined) continue;
      owner.complete(ownerIndexes[index]!, {
        topic,
        partition,
        offset: baseOffset < 0 ? -1 : baseOffset + index,
        timestamp: logAppendTimeMs >= 0 ? logAppendTimeMs : timestamps[index]!,
      });
    }
    // acks=0 completes records before the answer; the batch must not complete them twice.
    owners.fill(undefined);
    if (release) {
      this.#idempotence?.onSuccess(batch);
      this.#accumulator.release(batch, recycle);
    }
  }

  #failBatch(batch: ProducerBatch, error: RaftkaError): void {
    if (this.#idempotence && batch.baseSequence >= 0) {
      // The broker may or may not hold this sequence: later batches would leave a gap.
      this.#idempotence.onFinalFailure(batch);
      this.#idempotence.requestEpochBump();
    }
    const { owners, ownerIndexes } = batch;
    for (let index = 0; index < owners.length; index++) (owners[index] as PendingSend | undefined)?.fail(ownerIndexes[index]!, error);
    owners.fill(undefined);
    this.#accumulator.release(batch);
  }

  #handleBatchError(batch: ProducerBatch, error: RaftkaError): void {
    this.#cluster.metadata.onPartitionError(error.code);
    if (this.#fatalError) {
      this.#failBatch(batch, this.#fatalError);
      return;
    }
    if (this.#idempotence) {
      const decision = this.#idempotence.decideOnError(batch, error.code, error.retriable);
      switch (decision.kind) {
        case 'success-duplicate':
          this.#completeBatch(batch, -1, -1, true);
          return;
        case 'retry':
        case 'bump-epoch-then-retry':
          break;
        case 'fail-batch':
          this.#failBatch(batch, error);
          return;
        case 'fatal':
          this.#failBatch(batch, decision.error);
          this.#fail(decision.error);
          return;
        default:
          assertNever(decision, 'idempotence decision');
      }
    }
    // With idempotence the decision above already judged the error retriable (for instance
    // OUT_OF_ORDER_SEQUENCE_NUMBER behind an earlier failed batch); the policy then only bounds
    // attempts and time.
    const judged = this.#idempotence && !error.retriable ? new RaftkaError(error.code, error.message, { cause: error, retriable: true }) : error;
    const retry = this.#retryPolicy.decide({ error: judged, attempts: batch.attempts, backoffAttempt: batch.attemptsOnLeader, createdMs: batch.createdMs, nowMs: this.#runtime.clock() });
    if (retry.kind === 'fail') {
      this.#failBatch(batch, retry.error);
      return;
    }
    this.#accumulator.reenqueue(batch, this.#runtime.clock() + retry.delayMs);
    this.#wakeSender();
  }

  /** A fatal error stops the producer: queued records fail with it, later sends too. */
  #fail(error: RaftkaError): void {
    if (this.#fatalError) return;
    this.#fatalError = error;
    this.#accumulator.close();
    for (const batch of this.#accumulator.expire(Number.POSITIVE_INFINITY)) this.#failBatch(batch, error);
  }
}

/** Boundary check of a send call's shape; each message is checked by checkMessage. */
function checkCall(record: ProducerRecord): void {
  if (typeof record?.topic !== 'string' || record.topic.length === 0) {
    throw new RaftkaError('INVALID_TOPIC_EXCEPTION', `send needs a topic name, got ${JSON.stringify(record?.topic)}`, { retriable: false });
  }
  if (!Array.isArray(record.messages) || record.messages.length === 0) {
    throw new RaftkaError('INVALID_REQUEST', 'send needs a non-empty messages array', { retriable: false });
  }
}

function hasFailure(outcomes: readonly (RecordMetadata | RaftkaError | undefined)[]): boolean {
  for (const outcome of outcomes) if (outcome instanceof RaftkaError) return true;
  return false;
}

function noop(): undefined {
  return undefined;
}

/** Fails what is left of a blocked call: all of it when it was never validated, else its records not yet appended. */
function failBlocked(blocked: PendingSend, error: unknown): void {
  if (!blocked.validated) blocked.rejectCall(toRaftkaError(error));
  else blocked.failFrom(blocked.nextIndex, toRaftkaError(error));
  blocked.nextIndex = Number.POSITIVE_INFINITY;
}

function normalizeHeaders(headers: ProducerMessage['headers']): RecordHeaderInput[] | undefined {
  if (headers === undefined) return undefined;
  if (Array.isArray(headers)) return headers as RecordHeaderInput[];
  return Object.entries(headers).map(([key, value]) => ({ key, value }));
}

/**
 * Idempotence is on by default, but, as in Kafka (KIP-679), only when the user did not ask for
 * something it cannot provide: setting acks other than -1, more than 5 requests in flight, or
 * retries = 0 without mentioning enableIdempotence turns it off instead of failing. Setting
 * enableIdempotence: true together with such a value is still a configuration error.
 */
function withImplicitIdempotence(config: ProducerConfig): ProducerConfig {
  if (typeof config !== 'object' || config === null || config.enableIdempotence !== undefined) return config;
  const conflicting =
    (config.acks !== undefined && config.acks !== -1) ||
    (config.maxInFlightRequestsPerConnection !== undefined && config.maxInFlightRequestsPerConnection > IDEMPOTENT_IN_FLIGHT_MAX) ||
    config.retries === 0;
  return conflicting ? { ...config, enableIdempotence: false } : config;
}

function isBytes(value: unknown): boolean {
  return typeof value === 'string' || Buffer.isBuffer(value) || value instanceof Uint8Array;
}

/** Boundary check of one message (STYLE rule 6): a bad field fails the call, never a batch shared with other calls. */
function checkMessage(message: ProducerMessage, index: number): void {
  const problem = (what: string) => new RaftkaError('INVALID_RECORD', `message ${index}: ${what}`, { retriable: false });
  if (typeof message !== 'object' || message === null) throw problem('must be an object with a value');
  if (message.value !== null && !isBytes(message.value)) throw problem('value must be a Buffer, a string or null');
  if (message.key !== undefined && message.key !== null && !isBytes(message.key)) throw problem('key must be a Buffer, a string or null');
  if (message.timestamp !== undefined && !(Number.isSafeInteger(message.timestamp) && message.timestamp >= 0)) {
    throw problem(`timestamp must be milliseconds since the epoch, got ${String(message.timestamp)}`);
  }
  const headers = message.headers;
  if (headers === undefined) return;
  const entries = Array.isArray(headers)
    ? (headers as readonly RecordHeaderInput[]).map((header) => [header?.key, header?.value] as const)
    : typeof headers === 'object' && headers !== null
      ? Object.entries(headers)
      : undefined;
  if (!entries) throw problem('headers must be an object or an array of { key, value }');
  for (const [key, value] of entries) {
    if (typeof key !== 'string') throw problem('header keys must be strings');
    if (value !== null && !isBytes(value)) throw problem(`header ${key} must be a Buffer, a string or null`);
  }
}
