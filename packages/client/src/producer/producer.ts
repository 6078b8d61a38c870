// The Producer: `send` appends records to the RecordAccumulator and resolves once the broker has
// acknowledged them per `acks`; a sender loop turns ready batches into Produce requests.
//
// Flow of one record:
//   send -> wait for the topic's metadata (maxBlockMs) -> choose a partition (murmur2 of the key,
//   or KIP-480 sticky for keyless records) -> accumulator.append (may wait for bufferMemory)
//   -> the sender loop drains ready batches per leader (at most one batch per partition per
//   request, maxInFlightRequestsPerConnection requests per broker) -> the batch is encoded once
//   per attempt as a RecordBatch v2 (compressed, stamped with producer id/epoch/sequence) ->
//   Produce -> per-partition outcome: success resolves the records with base offset + index;
//   a retriable error re-queues the batch (in sequence order) after a backoff, refreshing
//   metadata first when the error says it is stale (NOT_LEADER_OR_FOLLOWER, ...); anything
//   else rejects the records with the Kafka error name.
//
// Ordering: at most one batch per partition is on the wire at a time (see #isMuted for why gRPC
// needs this where Kafka's single TCP connection does not); requests for different partitions
// pipeline up to maxInFlightRequestsPerConnection per broker. With idempotence (the default,
// KIP-98) every batch also carries a sequence and a retry keeps it, so the broker appends each
// batch exactly once and in order even across a leader change or a lost answer. Without
// idempotence a retried batch whose first answer was lost may be appended twice, as in Kafka.
//
// acks=0 resolves each record as soon as its request is handed to the transport, with offset -1:
// the producer never learns the outcome.
//
// The sender loop owns no clock or randomness of its own: both come from the ClientRuntime.

import {
  assertNever,
  encodeRecordBatch,
  RaftkaError,
  type RecordHeaderInput,
  type RecordInput,
} from '@raftka/protocol';
import { ClusterClient, defaultRuntime, errorFromResponse, partitionKey, toRaftkaError, type ClientRuntime } from '../cluster-client.js';
import { IDEMPOTENT_IN_FLIGHT_MAX, resolveProducerOptions, type ProducerOptions } from '../options.js';
import type { InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse } from '../network/client-messages.js';
import { IdempotenceState } from './idempotence.js';
import { StickyPartitioner } from './partitioner.js';
import { RecordAccumulator, type ProducerBatch } from './record-accumulator.js';
import { RetryPolicy } from './retry-policy.js';

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

interface Delivery {
  resolve: (metadata: RecordMetadata) => void;
  reject: (error: RaftkaError) => void;
}

type ProducerState = 'new' | 'connecting' | 'connected' | 'closing' | 'closed';

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
  #connecting: Promise<void> | undefined;
  // Each appended record (by identity: the accumulator keeps the object) to its caller's promise.
  readonly #deliveries = new WeakMap<RecordInput, Delivery>();
  // Unsettled send() calls, for flush().
  readonly #pendingSends = new Set<Promise<unknown>>();
  // Batches of each partition handed to the transport and not yet answered.
  readonly #inFlightByPartition = new Map<string, number>();
  #wake: (() => void) | undefined;
  #senderDone: Promise<void> | undefined;
  #initInProgress = false;
  #appendChain: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;
  // Set once a fatal error (PRODUCER_FENCED) stops the producer.
  #fatalError: RaftkaError | undefined;

  constructor(config: ProducerConfig, runtime: ClientRuntime = defaultRuntime) {
    this.options = resolveProducerOptions(withImplicitIdempotence(config));
    this.#runtime = runtime;
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
    const result = this.#send(record);
    this.#pendingSends.add(result);
    const forget = () => this.#pendingSends.delete(result);
    result.then(forget, forget);
    return result;
  }

  async #send(record: ProducerRecord): Promise<RecordMetadata[]> {
    this.#checkOpen();
    if (typeof record?.topic !== 'string' || record.topic.length === 0) {
      throw new RaftkaError('INVALID_TOPIC_EXCEPTION', `send needs a topic name, got ${JSON.stringify(record?.topic)}`, { retriable: false });
    }
    if (!Array.isArray(record.messages) || record.messages.length === 0) {
      throw new RaftkaError('INVALID_REQUEST', 'send needs a non-empty messages array', { retriable: false });
    }
    // Appends happen in call order (records of one key keep the order of the send calls), so
    // the metadata wait and the append of each call are chained behind the previous call's.
    const appended = this.#appendChain.then(() => this.#append(record));
    this.#appendChain = appended.then(
      () => undefined,
      () => undefined,
    );
    const deliveries = await appended;
    const settled = await Promise.allSettled(deliveries);
    const outcomes: SendOutcome[] = settled.map((outcome) =>
      outcome.status === 'fulfilled' ? { ok: true, metadata: outcome.value } : { ok: false, error: toRaftkaError(outcome.reason) },
    );
    if (outcomes.some((outcome) => !outcome.ok)) throw new ProducerSendError(outcomes);
    return outcomes.map((outcome) => (outcome as { ok: true; metadata: RecordMetadata }).metadata);
  }

  /** Waits for metadata, partitions and appends the records; returns one delivery promise per record. */
  async #append(record: ProducerRecord): Promise<Promise<RecordMetadata>[]> {
    if (this.#state === 'new' || this.#state === 'connecting') await this.connect();
    const { topic } = record;
    const deadlineMs = this.#runtime.clock() + this.options.maxBlockMs;
    const topicInfo = this.#cluster.metadata.topic(topic) ?? (await this.#cluster.waitForTopic(topic, deadlineMs));
    const deliveries: Promise<RecordMetadata>[] = [];
    // Validate every message before appending any, so a bad one cannot half-send a call.
    record.messages.forEach(checkMessage);
    for (const message of record.messages) {
      // Throws UNKNOWN_TOPIC_OR_PARTITION for an explicit partition the topic does not have.
      if (message.partition !== undefined) this.#partitioner.partition({ topic, partition: message.partition }, { numPartitions: topicInfo.partitions.length, availablePartitions: [] });
    }
    for (const message of record.messages) {
      if (this.#fatalError) throw this.#fatalError;
      const input: RecordInput = {
        key: message.key ?? null,
        value: message.value,
        headers: normalizeHeaders(message.headers),
        timestamp: message.timestamp ?? this.#runtime.clock(),
      };
      const info = {
        numPartitions: topicInfo.partitions.length,
        availablePartitions: this.#cluster.metadata.availablePartitions(topic),
      };
      let partition = this.#partitioner.partition({ topic, key: input.key, partition: message.partition }, info);
      const keyless = message.partition === undefined && (input.key === null || input.key === undefined);
      if (keyless && !this.#accumulator.fitsInOpenBatch(topic, partition, input)) {
        // KIP-480: a keyless record that would open a new batch moves the sticky partition first.
        partition = this.#partitioner.onNewBatch(topic, partition, info);
      }
      const delivery = new Promise<RecordMetadata>((resolve, reject) => this.#deliveries.set(input, { resolve, reject }));
      // Settled by the sender; a failure is also reported through the aggregate below.
      delivery.catch(() => undefined);
      deliveries.push(
        this.#accumulator.append(topic, partition, input).then((appended) => {
          if (appended.newBatchCreated || appended.batchIsFull) this.#wakeSender();
          return delivery;
        }),
      );
    }
    return deliveries;
  }

  /** Sends everything queued now, regardless of lingerMs, and waits for the outcome of every send made so far. */
  async flush(): Promise<void> {
    this.#accumulator.beginFlush();
    this.#wakeSender();
    try {
      await Promise.allSettled([...this.#pendingSends]);
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
    // One batch per partition on the wire. Unlike Kafka's TCP connection, separate gRPC calls on
    // one HTTP/2 channel reach the broker's handlers in the order their messages finish
    // arriving, not the order they were sent (a small later request overtakes a large earlier
    // one). Two batches of one partition in flight could therefore be appended out of order
    // without idempotence, and with it be refused as OUT_OF_ORDER_SEQUENCE_NUMBER and retried in
    // cascades. Requests for different partitions still pipeline, up to
    // maxInFlightRequestsPerConnection per broker.
    if ((this.#inFlightByPartition.get(partitionKey(topic, partition)) ?? 0) > 0) return true;
    return this.#idempotence !== undefined && !this.#idempotence.canSend(topic, partition, this.#accumulator.queuedBatches(topic, partition)[0]);
  };

  async #runSender(): Promise<void> {
    for (;;) {
      const nowMs = this.#runtime.clock();
      const anyInFlight = this.#inFlightByPartition.size > 0;
      if (this.#state === 'closed' && !this.#accumulator.hasQueuedBatches() && !anyInFlight) return;
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
      if (ready.unknownLeaderTopics.size > 0) this.#cluster.metadata.requestUpdate();
      const nodes = [...ready.readyNodes].filter((node) => this.#cluster.pool.limiter(node, this.#endpointOf(node)).hasCapacity());
      const drained = this.#accumulator.drain({ leaderFor: this.#leaderFor, nodes, nowMs, isMuted: this.#isMuted });
      for (const [node, batches] of drained) this.#sendProduce(node, batches);
      const metadataWaitMs = this.#cluster.metadata.timeToNextUpdateMs(this.#runtime.clock());
      const waitMs = Math.min(ready.nextReadyCheckDelayMs, metadataWaitMs, SENDER_IDLE_WAKE_MS_MAX);
      if (drained.size > 0) continue;
      await new Promise<void>((resolve) => {
        const timer = this.#runtime.timers.setTimeout(() => {
          if (this.#wake === wake) this.#wake = undefined;
          resolve();
        }, Math.max(1, waitMs));
        const wake = () => {
          this.#runtime.timers.clearTimeout(timer);
          resolve();
        };
        this.#wake = wake;
      });
    }
  }

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
      const key = partitionKey(batch.topic, batch.partition);
      this.#inFlightByPartition.set(key, (this.#inFlightByPartition.get(key) ?? 0) + 1);
    }
    const acks = this.options.acks;
    const encoded = Promise.all(
      batches.map((batch) =>
        encodeRecordBatch({
          records: batch.records,
          compression: this.options.compressionType,
          baseTimestamp: batch.baseTimestamp,
          producerId: batch.producerId,
          producerEpoch: batch.producerEpoch,
          baseSequence: batch.baseSequence,
        }),
      ),
    );
    const call = encoded.then((records) => {
      const topics = new Map<string, ProduceRequest['topicData'][number]>();
      batches.forEach((batch, index) => {
        const topic = topics.get(batch.topic) ?? { name: batch.topic, partitionData: [] };
        topic.partitionData.push({ index: batch.partition, records: records[index]! });
        topics.set(batch.topic, topic);
      });
      const request: ProduceRequest = { transactionalId: '', acks, timeoutMs: this.options.ackTimeoutMs, topicData: [...topics.values()] };
      const response = this.#cluster.call<ProduceRequest, ProduceResponse>(node, 'RaftkaClient', 'Produce', request);
      // acks=0: the outcome is never learned; the records count as sent once handed over.
      if (acks === 0) for (const batch of batches) this.#completeBatch(batch, -1, -1, false);
      return response;
    });
    call.then(
      (response) => {
        this.#afterResponse(batches);
        if (acks === 0) {
          for (const batch of batches) this.#accumulator.release(batch);
          return;
        }
        this.#handleProduceResponse(node, batches, response);
      },
      (error: unknown) => {
        this.#afterResponse(batches);
        if (acks === 0) {
          for (const batch of batches) this.#accumulator.release(batch);
          return;
        }
        const raftkaError = toRaftkaError(error);
        for (const batch of batches) this.#handleBatchError(batch, raftkaError);
      },
    );
  }

  #afterResponse(batches: readonly ProducerBatch[]): void {
    for (const batch of batches) {
      const key = partitionKey(batch.topic, batch.partition);
      const count = (this.#inFlightByPartition.get(key) ?? 1) - 1;
      if (count <= 0) this.#inFlightByPartition.delete(key);
      else this.#inFlightByPartition.set(key, count);
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
        this.#completeBatch(batch, answer.baseOffset, answer.logAppendTimeMs, true);
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

  #completeBatch(batch: ProducerBatch, baseOffset: number, logAppendTimeMs: number, release: boolean): void {
    batch.records.forEach((record, index) => {
      const delivery = this.#deliveries.get(record);
      this.#deliveries.delete(record);
      delivery?.resolve({
        topic: batch.topic,
        partition: batch.partition,
        offset: baseOffset < 0 ? -1 : baseOffset + index,
        timestamp: logAppendTimeMs >= 0 ? logAppendTimeMs : record.timestamp!,
      });
    });
    if (release) {
      this.#idempotence?.onSuccess(batch);
      this.#accumulator.release(batch);
    }
  }

  #failBatch(batch: ProducerBatch, error: RaftkaError): void {
    if (this.#idempotence && batch.baseSequence >= 0) {
      // The broker may or may not hold this sequence: later batches would leave a gap.
      this.#idempotence.onFinalFailure(batch);
      this.#idempotence.requestEpochBump();
    }
    for (const record of batch.records) {
      const delivery = this.#deliveries.get(record);
      this.#deliveries.delete(record);
      delivery?.reject(error);
    }
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
    const retry = this.#retryPolicy.decide({ error: judged, attempts: batch.attempts, createdMs: batch.createdMs, nowMs: this.#runtime.clock() });
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
