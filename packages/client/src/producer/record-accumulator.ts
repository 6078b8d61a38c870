// The producer's record accumulator: records wait here, grouped into one open batch per
// partition, until the batch is worth sending (Kafka's RecordAccumulator).
//
// A partition's queue holds batches in append order. Only the last batch is open for appends;
// a record that would push it past batchSize closes it and opens a new one (a record larger than
// batchSize gets a batch of its own, up to maxRequestSize). The head batch is *ready* when
//   - it is closed (full) or more batches queue behind it, or
//   - it has waited lingerMs (retryAtMs when it is being retried), or
//   - appends are blocked on bufferMemory, or a flush or close is under way,
// and it is not backing off before a retry. `ready` tells which leaders have something to send;
// `drain` takes at most one batch per partition per leader, up to maxRequestSize per request, in
// a rotating partition order so no partition starves.
//
// Memory: every appended record takes its estimated encoded size from a BufferPool of
// bufferMemory bytes; `release` returns a batch's bytes once its outcome is known. A full pool
// makes appends wait, up to maxBlockMs. Sizes are estimates of the RecordBatch v2 encoding before
// compression, so compression only ever makes a request smaller than accounted.
//
// Time comes from an injected clock; the accumulator starts no timers of its own.

import {
  BATCH_HEADER_BYTES,
  invariant,
  RaftkaError,
  varintSize,
  varlongSize,
  type RecordInput,
} from '@raftka/protocol';
import { BufferPool, type Timers } from './buffer-pool.js';

export interface RecordAccumulatorOptions {
  /** Upper bound on a batch's estimated bytes (`batch.size`). */
  batchSize: number;
  /** How long a batch waits for more records (`linger.ms`). */
  lingerMs: number;
  /** Bytes of unacknowledged records the producer may hold (`buffer.memory`). */
  bufferMemory: number;
  /** Largest request; also bounds a single record plus batch overhead (`max.request.size`). */
  maxRequestSize: number;
  /** How long an append may wait for memory (`max.block.ms`). */
  maxBlockMs: number;
  /** Batches still queued after this long since creation expire (`delivery.timeout.ms`). */
  deliveryTimeoutMs: number;
  /** Milliseconds since the epoch. */
  clock: () => number;
  timers: Timers;
}

/** Which broker leads a partition, `undefined` when the metadata does not say. */
export type LeaderLookup = (topic: string, partition: number) => number | undefined;

/**
 * The caller's handle on a record's outcome (the producer's send call), kept beside the record
 * so that finishing a batch needs no lookup and no per-record promise. Opaque here.
 */
export type RecordOwner = object;

/** A batch of records for one partition, from the first append until its outcome is known. */
export class ProducerBatch {
  /** Creation order across the accumulator; a partition's batches are created in record order. */
  readonly id: number;
  readonly topic: string;
  readonly partition: number;
  readonly createdMs: number;
  /** Timestamp of the first record; record timestamps are encoded relative to it. */
  readonly baseTimestamp: number;
  readonly records: RecordInput[] = [];
  /** Parallel to `records`: whose record it is and its position in that owner's call. */
  readonly owners: (RecordOwner | undefined)[] = [];
  readonly ownerIndexes: number[] = [];
  /** Estimated encoded bytes, batch header included. */
  sizeBytes = BATCH_HEADER_BYTES;
  /** Bytes this batch holds in the buffer pool. */
  memoryBytes = 0;
  /** Closed batches take no more records. Invariant: only the last batch of a queue is open. */
  closed = false;
  /** Send attempts that failed and were retried. */
  attempts = 0;
  /** Of `attempts`, those made against `lastLeaderId` (the backoff's exponent; reset when the leader changes). */
  attemptsOnLeader = 0;
  /** Set while the batch backs off before a retry. */
  retryAtMs: number | undefined = undefined;
  /** The broker the batch was last drained for (-1 before its first send). */
  lastLeaderId = -1;
  /** Idempotence fields, assigned when the batch is first drained (-1 = not idempotent). */
  producerId = -1;
  producerEpoch = -1;
  baseSequence = -1;

  constructor(topic: string, partition: number, nowMs: number, baseTimestamp: number, id = 0) {
    this.id = id;
    this.topic = topic;
    this.partition = partition;
    this.createdMs = nowMs;
    this.baseTimestamp = baseTimestamp;
  }

  get recordCount(): number {
    return this.records.length;
  }
}

export interface AppendResult {
  batch: ProducerBatch;
  /** The record opened a new batch. */
  newBatchCreated: boolean;
  /** The batch is closed to further records, so it is ready to send. */
  batchIsFull: boolean;
}

export interface ReadyResult {
  /** Leaders with at least one sendable batch. */
  readyNodes: Set<number>;
  /** How long until a not-yet-ready batch may become ready (Infinity when none waits). */
  nextReadyCheckDelayMs: number;
  /** Topics with queued batches whose leader is unknown: the caller should refresh metadata. */
  unknownLeaderTopics: Set<string>;
  /**
   * Some batch backs off before a retry to the same broker that failed it: the caller should
   * keep metadata fresh, since a moved leader ends that wait (see `backingOff`).
   */
  retriesAwaitLeader: boolean;
}

/**
 * Is `batch` still backing off? A retry waits out its backoff only while the partition's leader is
 * the broker that failed it; once metadata names another leader, it goes at once (KIP-951: the
 * backoff protects a struggling broker, and the new leader is not that broker).
 */
function backingOff(batch: ProducerBatch, leader: number, nowMs: number): boolean {
  return batch.retryAtMs !== undefined && nowMs < batch.retryAtMs && leader === batch.lastLeaderId;
}

/**
 * Kafka's DefaultRecord.sizeInBytes: the exact v2 encoding size of a record at `offsetDelta`
 * with `timestampDelta`, before compression.
 */
export function estimateRecordBytes(record: RecordInput, offsetDelta: number, timestampDelta: number): number {
  return recordBytesWithDeltas(recordBodyBytesWithoutDeltas(record), offsetDelta, timestampDelta);
}

/** A record's encoded size given its size without the length and delta varints (computed once per append). */
function recordBytesWithDeltas(bodyBytesWithoutDeltas: number, offsetDelta: number, timestampDelta: number): number {
  const bodyBytes = bodyBytesWithoutDeltas + varlongSize(timestampDelta) + varintSize(offsetDelta);
  return varintSize(bodyBytes) + bodyBytes;
}

function recordBodyBytesWithoutDeltas(record: RecordInput): number {
  const keyBytes = byteLength(record.key);
  const valueBytes = byteLength(record.value);
  let bodyBytes =
    1 + // attributes
    varintSize(keyBytes ?? -1) +
    (keyBytes ?? 0) +
    varintSize(valueBytes ?? -1) +
    (valueBytes ?? 0) +
    varintSize(record.headers?.length ?? 0);
  for (const header of record.headers ?? []) {
    const headerKeyBytes = Buffer.byteLength(header.key, 'utf8');
    const headerValueBytes = byteLength(header.value);
    bodyBytes += varintSize(headerKeyBytes) + headerKeyBytes + varintSize(headerValueBytes ?? -1) + (headerValueBytes ?? 0);
  }
  return bodyBytes;
}

function byteLength(value: Buffer | Uint8Array | string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
}

/** Upper bound on the offset and timestamp delta varints, for the size check made before a record is placed. */
const DELTA_VARINT_BYTES_MAX = 5 + 10;

export class RecordAccumulator {
  readonly #options: RecordAccumulatorOptions;
  readonly #pool: BufferPool;
  // Invariant: no queue is empty (an emptied queue is deleted); batches are in append order.
  readonly #queues = new Map<string, ProducerBatch[]>();
  // Where each leader's drain starts next time, so partitions take turns filling requests.
  readonly #drainStartByNode = new Map<number, number>();
  #flushesInProgress = 0;
  #closed = false;
  #nextBatchId = 0;

  constructor(options: RecordAccumulatorOptions) {
    invariant(options.batchSize >= 0 && options.lingerMs >= 0, 'batchSize and lingerMs must be non-negative');
    invariant(options.maxRequestSize > BATCH_HEADER_BYTES, () => `maxRequestSize ${options.maxRequestSize} must exceed the batch header`);
    this.#options = options;
    this.#pool = new BufferPool(options.bufferMemory, options.timers);
  }

  get availableMemoryBytes(): number {
    return this.#pool.availableBytes;
  }

  /**
   * Checks a record against the size limits before it is placed, so the caller gets
   * MESSAGE_TOO_LARGE at once instead of after a round trip. Returns its size bound.
   */
  checkRecordSize(record: RecordInput): number {
    return this.#checkRecordSize(recordBodyBytesWithoutDeltas(record));
  }

  #checkRecordSize(bodyBytesWithoutDeltas: number): number {
    const recordBytes = recordBytesWithDeltas(bodyBytesWithoutDeltas, 0, 0) + DELTA_VARINT_BYTES_MAX;
    const requestBytes = BATCH_HEADER_BYTES + recordBytes;
    if (requestBytes > this.#options.maxRequestSize) {
      throw new RaftkaError(
        'MESSAGE_TOO_LARGE',
        `the record is ${requestBytes} bytes when encoded, larger than maxRequestSize (${this.#options.maxRequestSize}); raise maxRequestSize (and the broker's message.max.bytes) or send smaller records`,
        { retriable: false },
      );
    }
    if (recordBytes > this.#options.bufferMemory) {
      throw new RaftkaError(
        'MESSAGE_TOO_LARGE',
        `the record is ${recordBytes} bytes when encoded, larger than bufferMemory (${this.#options.bufferMemory})`,
        { retriable: false },
      );
    }
    return recordBytes;
  }

  /**
   * Whether `record` would go into the partition's open batch rather than open a new one. The
   * producer asks this for keyless records so the sticky partitioner can move on before a new
   * batch is opened (KIP-480's "abort on new batch").
   */
  fitsInOpenBatch(topic: string, partition: number, record: RecordInput): boolean {
    const open = this.#openBatch(topic, partition);
    if (!open) return false;
    return this.#fits(open, record);
  }

  /** Whether the partition has a batch open for appends. */
  hasOpenBatch(topic: string, partition: number): boolean {
    return this.#openBatch(topic, partition) !== undefined;
  }

  /**
   * Appends a record. Resolves at once when memory is free; otherwise waits up to maxBlockMs (the
   * option, or the caller's remaining time) for
   * sent batches to free memory, then rejects with REQUEST_TIMED_OUT. Rejects with
   * MESSAGE_TOO_LARGE for a record that can never be sent, and fails once the accumulator is closed.
   */
  append(topic: string, partition: number, record: RecordInput, owner?: RecordOwner, ownerIndex = 0, maxBlockMs = this.#options.maxBlockMs): Promise<AppendResult> {
    try {
      const appended = this.tryAppend(topic, partition, record, owner, ownerIndex);
      if (appended) return Promise.resolve(appended);
      const bodyBytes = recordBodyBytesWithoutDeltas(record);
      const reserveBytes = this.#checkRecordSize(bodyBytes);
      return this.#pool.allocate(reserveBytes, maxBlockMs).then(() => {
        if (this.#closed) {
          this.#pool.free(reserveBytes);
          throw new RaftkaError('SHUTTING_DOWN', 'the producer closed while the record waited for memory', { retriable: false });
        }
        return this.#place(topic, partition, record, reserveBytes, bodyBytes, owner, ownerIndex);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Appends a record at once if memory allows and nobody waits for memory; returns undefined
   * otherwise (nothing appended: the caller waits, with `append`, and keeps its order). Throws
   * MESSAGE_TOO_LARGE and SHUTTING_DOWN as `append` rejects. No promise: the producer's hot path.
   */
  tryAppend(topic: string, partition: number, record: RecordInput, owner?: RecordOwner, ownerIndex = 0): AppendResult | undefined {
    if (this.#closed) throw new RaftkaError('SHUTTING_DOWN', 'the producer is closed; no more records can be sent', { retriable: false });
    const bodyBytes = recordBodyBytesWithoutDeltas(record);
    const reserveBytes = this.#checkRecordSize(bodyBytes);
    if (!this.#pool.tryAllocate(reserveBytes)) return undefined;
    return this.#place(topic, partition, record, reserveBytes, bodyBytes, owner, ownerIndex);
  }

  #place(
    topic: string,
    partition: number,
    input: RecordInput,
    reserveBytes: number,
    bodyBytes: number,
    owner: RecordOwner | undefined,
    ownerIndex: number,
  ): AppendResult {
    const nowMs = this.#options.clock();
    const record: RecordInput = input.timestamp === undefined ? { ...input, timestamp: nowMs } : input;
    const key = queueKey(topic, partition);
    let queue = this.#queues.get(key);
    let batch = queue?.[queue.length - 1];
    let newBatchCreated = false;
    if (!batch || batch.closed || !this.#fitsBody(batch, bodyBytes, record.timestamp!)) {
      if (batch) batch.closed = true;
      batch = new ProducerBatch(topic, partition, nowMs, record.timestamp!, this.#nextBatchId++);
      if (!queue) {
        queue = [];
        this.#queues.set(key, queue);
      }
      queue.push(batch);
      newBatchCreated = true;
    }
    batch.records.push(record);
    batch.owners.push(owner);
    batch.ownerIndexes.push(ownerIndex);
    batch.sizeBytes += recordBytesWithDeltas(bodyBytes, batch.records.length - 1, record.timestamp! - batch.baseTimestamp);
    batch.memoryBytes += reserveBytes;
    if (batch.sizeBytes >= this.#options.batchSize) batch.closed = true;
    return { batch, newBatchCreated, batchIsFull: batch.closed || queue!.length > 1 };
  }

  #fits(batch: ProducerBatch, record: RecordInput): boolean {
    return this.#fitsBody(batch, recordBodyBytesWithoutDeltas(record), record.timestamp ?? this.#options.clock());
  }

  #fitsBody(batch: ProducerBatch, bodyBytesWithoutDeltas: number, timestamp: number): boolean {
    if (batch.closed) return false;
    const recordBytes = recordBytesWithDeltas(bodyBytesWithoutDeltas, batch.records.length, timestamp - batch.baseTimestamp);
    const limit = Math.min(this.#options.batchSize, this.#options.maxRequestSize);
    return batch.sizeBytes + recordBytes <= limit;
  }

  #openBatch(topic: string, partition: number): ProducerBatch | undefined {
    const queue = this.#queues.get(queueKey(topic, partition));
    const last = queue?.[queue.length - 1];
    return last && !last.closed ? last : undefined;
  }

  /** Which leaders have a batch to send now, and when to look again. */
  ready(args: { leaderFor: LeaderLookup; nowMs: number; isMuted?: (topic: string, partition: number) => boolean }): ReadyResult {
    const { leaderFor, nowMs, isMuted } = args;
    const readyNodes = new Set<number>();
    const unknownLeaderTopics = new Set<string>();
    let nextReadyCheckDelayMs = Number.POSITIVE_INFINITY;
    let retriesAwaitLeader = false;
    const exhausted = this.#pool.hasWaiters;
    for (const queue of this.#queues.values()) {
      const head = queue[0]!;
      const leader = leaderFor(head.topic, head.partition);
      if (leader === undefined) {
        unknownLeaderTopics.add(head.topic);
        continue;
      }
      if (backingOff(head, leader, nowMs)) {
        retriesAwaitLeader = true;
        nextReadyCheckDelayMs = Math.min(nextReadyCheckDelayMs, head.retryAtMs! - nowMs);
        continue;
      }
      if (readyNodes.has(leader) || isMuted?.(head.topic, head.partition)) continue;
      const full = head.closed || queue.length > 1;
      const lingerEndMs = head.retryAtMs ?? head.createdMs + this.#options.lingerMs;
      if (full || nowMs >= lingerEndMs || exhausted || this.#closed || this.#flushesInProgress > 0) {
        readyNodes.add(leader);
      } else {
        nextReadyCheckDelayMs = Math.min(nextReadyCheckDelayMs, lingerEndMs - nowMs);
      }
    }
    return { readyNodes, nextReadyCheckDelayMs, unknownLeaderTopics, retriesAwaitLeader };
  }

  /**
   * Takes the batches to send to each of `nodes`: at most one per partition, together at most
   * maxRequestSize estimated bytes (a single batch is always allowed, so none can get stuck).
   * Drained batches leave the queues; the caller owns them until `release` or `reenqueue`.
   */
  drain(args: {
    leaderFor: LeaderLookup;
    nodes: Iterable<number>;
    nowMs: number;
    isMuted?: (topic: string, partition: number) => boolean;
  }): Map<number, ProducerBatch[]> {
    const { leaderFor, nodes, nowMs, isMuted } = args;
    const byNode = new Map<number, ProducerBatch[]>();
    const keys = [...this.#queues.keys()];
    for (const node of nodes) {
      const taken: ProducerBatch[] = [];
      let requestBytes = 0;
      const start = (this.#drainStartByNode.get(node) ?? 0) % Math.max(1, keys.length);
      let lastVisited = start;
      for (let step = 0; step < keys.length; step += 1) {
        const index = (start + step) % keys.length;
        const key = keys[index]!;
        const queue = this.#queues.get(key);
        const head = queue?.[0];
        if (!queue || !head) continue;
        if (leaderFor(head.topic, head.partition) !== node) continue;
        if (isMuted?.(head.topic, head.partition)) continue;
        if (backingOff(head, node, nowMs)) continue;
        if (taken.length > 0 && requestBytes + head.sizeBytes > this.#options.maxRequestSize) break;
        lastVisited = index;
        queue.shift();
        if (queue.length === 0) this.#queues.delete(key);
        head.closed = true;
        head.retryAtMs = undefined;
        if (head.lastLeaderId !== node) head.attemptsOnLeader = 0;
        head.lastLeaderId = node;
        taken.push(head);
        requestBytes += head.sizeBytes;
      }
      this.#drainStartByNode.set(node, lastVisited + 1);
      if (taken.length > 0) byNode.set(node, taken);
    }
    return byNode;
  }

  /**
   * Puts a failed batch back near the head of its partition's queue to be retried at retryAtMs.
   * Batches re-enter in front of never-sent ones so a partition's records keep their order.
   */
  reenqueue(batch: ProducerBatch, retryAtMs: number): void {
    invariant(batch.closed, 'only drained batches are re-enqueued');
    batch.attempts += 1;
    batch.attemptsOnLeader += 1;
    batch.retryAtMs = retryAtMs;
    const key = queueKey(batch.topic, batch.partition);
    const queue = this.#queues.get(key);
    if (!queue) {
      this.#queues.set(key, [batch]);
      return;
    }
    // Several batches of one partition can fail from different in-flight requests (pipelined on
    // one stream), answered in any order of handling. A batch goes back in front of the first
    // queued batch created after it, so the partition is resent in its original record order
    // (and so in sequence order: sequences are assigned in drain order, which is creation order
    // within a partition; Kafka's insertInSequenceOrder).
    const index = queue.findIndex((other) => other.id > batch.id);
    queue.splice(index === -1 ? queue.length : index, 0, batch);
  }

  /** Returns a finished batch's memory to the pool (after success or final failure). */
  release(batch: ProducerBatch): void {
    this.#pool.free(batch.memoryBytes);
    batch.memoryBytes = 0;
  }

  /**
   * Removes and returns queued batches older than deliveryTimeoutMs (KIP-91); the caller fails
   * their records with REQUEST_TIMED_OUT and releases them. In-flight batches are not touched: the
   * broker may still append them.
   */
  expire(nowMs: number): ProducerBatch[] {
    const expired: ProducerBatch[] = [];
    for (const [key, queue] of this.#queues) {
      while (queue.length > 0 && nowMs - queue[0]!.createdMs >= this.#options.deliveryTimeoutMs) {
        const batch = queue.shift()!;
        batch.closed = true;
        expired.push(batch);
      }
      if (queue.length === 0) this.#queues.delete(key);
    }
    return expired;
  }

  /** While a flush is in progress every batch is ready regardless of lingerMs. */
  beginFlush(): void {
    this.#flushesInProgress += 1;
  }

  endFlush(): void {
    invariant(this.#flushesInProgress > 0, 'endFlush without beginFlush');
    this.#flushesInProgress -= 1;
  }

  /** Refuses further appends and makes every queued batch ready. */
  close(): void {
    this.#closed = true;
  }

  /** Whether any batch is still queued (not counting drained, in-flight ones). */
  hasQueuedBatches(): boolean {
    return this.#queues.size > 0;
  }

  /** Queued batches of one partition, oldest first (for inspection and tests). */
  queuedBatches(topic: string, partition: number): readonly ProducerBatch[] {
    return this.#queues.get(queueKey(topic, partition)) ?? [];
  }
}

function queueKey(topic: string, partition: number): string {
  // Topic names cannot contain NUL, so the key is unambiguous.
  return `${topic}\u0000${partition}`;
}
