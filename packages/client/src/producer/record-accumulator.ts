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
// Encoding: a record is written into its batch's RecordBatchBuilder (@raftka/protocol) when it
// is appended, so the per-record work is a size computation, a few varints and one copy of the
// key and value; sending a batch only stamps the header and the CRC. No object is kept per
// record: the batch holds parallel arrays of owners, owner positions and timestamps.
//
// Memory: every appended record takes its encoded size (plus a bound on its delta varints) from
// a BufferPool of bufferMemory bytes; `release` returns a batch's bytes once its outcome is
// known. A full pool makes appends wait, up to maxBlockMs. Sizes are those of the RecordBatch v2
// encoding before compression, so compression only ever makes a request smaller than accounted.
// A batch's buffer starts at BATCH_INITIAL_CAPACITY_BYTES and doubles up to the batch limit, so
// the memory really held exceeds the accounted bytes by at most that growth slack per batch.
// (Kafka instead accounts a whole batch.size per batch; per-record accounting keeps the existing
// meaning of bufferMemory: the bytes of records not yet acknowledged.)
//
// Buffers: a batch whose buffer grew to the full batch limit gives it back when its request was
// answered (`release(batch, true)`), and the next batch starts in it, as Kafka's BufferPool
// recycles batch.size buffers. Under load no batch buffer is then allocated, grown or faulted in
// by the kernel; at most BATCH_BUFFERS_POOLED_BYTES_MAX bytes wait in the free list.
//
// Lookups: a partition's queue is found through a per-topic array (no string key per record).
//
// Time comes from an injected clock; the accumulator starts no timers of its own.

import {
  BATCH_HEADER_BYTES,
  invariant,
  RaftkaError,
  RecordBatchBuilder,
  recordBytesWithDeltas,
  recordFieldsBytes,
  TIMESTAMP_DELTA_LIMIT,
  type CompressionName,
  type RecordBytesInput,
  type RecordHeaderInput,
  type RecordInput,
  type SyncCompressionName,
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

/**
 * A batch's buffer starts this large (or as large as its first record needs) and doubles up to
 * the batch limit, so a partition that receives a few small records does not hold a whole
 * batch.size buffer: the memory held beyond the accounted record bytes is at most this much per
 * open batch plus the doubling slack (less than the batch's own bytes). Under load the growth
 * costs nothing: new batches start in recycled full-size buffers.
 */
export const BATCH_INITIAL_CAPACITY_BYTES = 4096;

/** A batch of records for one partition, from the first append until its outcome is known. */
export class ProducerBatch {
  /** Creation order across the accumulator; a partition's batches are created in record order. */
  readonly id: number;
  readonly topic: string;
  readonly partition: number;
  readonly createdMs: number;
  /** The records, encoded as they were appended. */
  readonly builder: RecordBatchBuilder;
  /** Parallel arrays, one entry per record: whose record it is, its position in that owner's call, its timestamp. */
  readonly owners: (RecordOwner | undefined)[] = [];
  readonly ownerIndexes: number[] = [];
  readonly timestamps: number[] = [];
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

  constructor(
    topic: string,
    partition: number,
    nowMs: number,
    baseTimestamp: number,
    id = 0,
    capacity: { initialCapacityBytes?: number; capacityBytesMax?: number; buffer?: Buffer | undefined } = {},
  ) {
    this.id = id;
    this.topic = topic;
    this.partition = partition;
    this.createdMs = nowMs;
    this.builder = new RecordBatchBuilder(baseTimestamp, capacity);
  }

  /** Timestamp of the first record; record timestamps are encoded relative to it. */
  get baseTimestamp(): number {
    return this.builder.baseTimestamp;
  }

  get recordCount(): number {
    return this.builder.recordCount;
  }

  /** Encoded bytes before compression, batch header included. */
  get sizeBytes(): number {
    return this.builder.sizeBytes;
  }

  /** The batch as RecordBatch v2 bytes with its current producer id, epoch and sequence (one per send attempt). */
  encode(compression: SyncCompressionName = 'none'): Buffer {
    return this.builder.build({ compression, producerId: this.producerId, producerEpoch: this.producerEpoch, baseSequence: this.baseSequence });
  }

  /** As `encode`, with any codec (gzip and zstd compress off the event loop). */
  encodeAsync(compression: CompressionName): Promise<Buffer> {
    return this.builder.buildAsync({ compression, producerId: this.producerId, producerEpoch: this.producerEpoch, baseSequence: this.baseSequence });
  }
}

/** One partition's batches, kept for the partition's lifetime in the accumulator (see #byTopic). */
class PartitionQueue {
  readonly key: string;
  readonly topic: string;
  readonly partition: number;
  // Invariant: batches are in append order; only the last may be open.
  batches: ProducerBatch[] = [];
  // Invariant: listed (in the accumulator's #queues) exactly when batches is non-empty.
  listed = false;

  constructor(topic: string, partition: number) {
    this.topic = topic;
    this.partition = partition;
    this.key = queueKey(topic, partition);
  }

  get last(): ProducerBatch | undefined {
    return this.batches[this.batches.length - 1];
  }
}

/** Free batch buffers kept for reuse, in bytes (also at most a quarter of bufferMemory). */
export const BATCH_BUFFERS_POOLED_BYTES_MAX = 4 * 1024 * 1024;

/** `appendRecord` outcome flags (a number, so the hot path allocates no result object). */
export const APPEND_NO_MEMORY = 0;
export const APPEND_DONE = 1;
export const APPEND_NEW_BATCH = 2;
export const APPEND_BATCH_FULL = 4;

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
  return recordBytesWithDeltas(recordFieldsBytes(record.key, record.value, record.headers), offsetDelta, timestampDelta);
}

/** Upper bound on the offset and timestamp delta varints, for the size check made before a record is placed. */
const DELTA_VARINT_BYTES_MAX = 5 + 10;

export class RecordAccumulator {
  readonly #options: RecordAccumulatorOptions;
  readonly #pool: BufferPool;
  /** min(batchSize, maxRequestSize): the bytes a batch may grow to by appends. */
  readonly #batchLimitBytes: number;
  // Non-empty partition queues in the order they became non-empty (ready, drain and expire walk
  // these). Invariant: holds exactly the queues whose `listed` is set, none empty.
  readonly #queues = new Map<string, PartitionQueue>();
  // Every partition queue ever used, by topic then partition: the per-record lookup.
  readonly #byTopic = new Map<string, (PartitionQueue | undefined)[]>();
  // Where each leader's drain starts next time, so partitions take turns filling requests.
  readonly #drainStartByNode = new Map<number, number>();
  #flushesInProgress = 0;
  #closed = false;
  #nextBatchId = 0;
  // Invariant: every buffer here is #batchLimitBytes long and referenced by nothing else.
  readonly #freeBuffers: Buffer[] = [];
  readonly #freeBuffersMax: number;

  constructor(options: RecordAccumulatorOptions) {
    invariant(options.batchSize >= 0 && options.lingerMs >= 0, 'batchSize and lingerMs must be non-negative');
    invariant(options.maxRequestSize > BATCH_HEADER_BYTES, () => `maxRequestSize ${options.maxRequestSize} must exceed the batch header`);
    this.#options = options;
    this.#pool = new BufferPool(options.bufferMemory, options.timers);
    this.#batchLimitBytes = Math.min(options.batchSize, options.maxRequestSize);
    this.#freeBuffersMax = Math.floor(Math.min(BATCH_BUFFERS_POOLED_BYTES_MAX, options.bufferMemory / 4) / Math.max(1, this.#batchLimitBytes));
  }

  get availableMemoryBytes(): number {
    return this.#pool.availableBytes;
  }

  /**
   * Checks a record against the size limits before it is placed, so the caller gets
   * MESSAGE_TOO_LARGE at once instead of after a round trip. Returns its size bound.
   */
  checkRecordSize(record: RecordInput): number {
    return this.checkFieldsBytes(recordFieldsBytes(record.key, record.value, record.headers));
  }

  /** As checkRecordSize, for a record whose recordFieldsBytes the caller has. Returns the bytes it reserves. */
  checkFieldsBytes(fieldsBytes: number): number {
    const recordBytes = recordBytesWithDeltas(fieldsBytes, 0, 0) + DELTA_VARINT_BYTES_MAX;
    if (BATCH_HEADER_BYTES + recordBytes > this.#options.maxRequestSize || recordBytes > this.#options.bufferMemory) this.#tooLarge(recordBytes);
    return recordBytes;
  }

  #tooLarge(recordBytes: number): never {
    const requestBytes = BATCH_HEADER_BYTES + recordBytes;
    if (requestBytes > this.#options.maxRequestSize) {
      throw new RaftkaError(
        'MESSAGE_TOO_LARGE',
        `the record is ${requestBytes} bytes when encoded, larger than maxRequestSize (${this.#options.maxRequestSize}); raise maxRequestSize (and the broker's message.max.bytes) or send smaller records`,
        { retriable: false },
      );
    }
    throw new RaftkaError(
      'MESSAGE_TOO_LARGE',
      `the record is ${recordBytes} bytes when encoded, larger than bufferMemory (${this.#options.bufferMemory})`,
      { retriable: false },
    );
  }

  /**
   * Whether `record` would go into the partition's open batch rather than open a new one. The
   * producer asks this for keyless records so the sticky partitioner can move on before a new
   * batch is opened (KIP-480's "abort on new batch").
   */
  fitsInOpenBatch(topic: string, partition: number, record: RecordInput): boolean {
    return this.fitsFieldsInOpenBatch(topic, partition, recordFieldsBytes(record.key, record.value, record.headers), record.timestamp ?? this.#options.clock());
  }

  /** As fitsInOpenBatch, given the record's recordFieldsBytes and timestamp. */
  fitsFieldsInOpenBatch(topic: string, partition: number, fieldsBytes: number, timestamp: number): boolean {
    const open = this.#queue(topic, partition)?.last;
    return open !== undefined && this.#fits(open, fieldsBytes, timestamp);
  }

  /** Whether the partition has a batch open for appends. */
  hasOpenBatch(topic: string, partition: number): boolean {
    const last = this.#queue(topic, partition)?.last;
    return last !== undefined && !last.closed;
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
      const fieldsBytes = recordFieldsBytes(record.key, record.value, record.headers);
      const reserveBytes = this.checkFieldsBytes(fieldsBytes);
      return this.#pool.allocate(reserveBytes, maxBlockMs).then(() => {
        if (this.#closed) {
          this.#pool.free(reserveBytes);
          throw new RaftkaError('SHUTTING_DOWN', 'the producer closed while the record waited for memory', { retriable: false });
        }
        const flags = this.#place(topic, partition, record.key, record.value, record.headers, record.timestamp, fieldsBytes, reserveBytes, owner, ownerIndex);
        return this.#result(topic, partition, flags);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Appends a record at once if memory allows and nobody waits for memory; returns undefined
   * otherwise (nothing appended: the caller waits, with `append`, and keeps its order). Throws
   * MESSAGE_TOO_LARGE and SHUTTING_DOWN as `append` rejects.
   */
  tryAppend(topic: string, partition: number, record: RecordInput, owner?: RecordOwner, ownerIndex = 0): AppendResult | undefined {
    const flags = this.appendRecord(topic, partition, record.key, record.value, record.headers, record.timestamp, recordFieldsBytes(record.key, record.value, record.headers), owner, ownerIndex);
    return flags === APPEND_NO_MEMORY ? undefined : this.#result(topic, partition, flags);
  }

  /**
   * The producer's hot path: tryAppend without the record object and the result object.
   * `fieldsBytes` is recordFieldsBytes(key, value, headers); `timestamp` undefined means now.
   * Returns APPEND_NO_MEMORY (nothing appended) or APPEND_DONE with APPEND_NEW_BATCH and
   * APPEND_BATCH_FULL set as they apply.
   */
  appendRecord(
    topic: string,
    partition: number,
    key: RecordBytesInput,
    value: RecordBytesInput,
    headers: readonly RecordHeaderInput[] | undefined,
    timestamp: number | undefined,
    fieldsBytes: number,
    owner: RecordOwner | undefined,
    ownerIndex: number,
  ): number {
    if (this.#closed) throw new RaftkaError('SHUTTING_DOWN', 'the producer is closed; no more records can be sent', { retriable: false });
    const reserveBytes = this.checkFieldsBytes(fieldsBytes);
    if (!this.#pool.tryAllocate(reserveBytes)) return APPEND_NO_MEMORY;
    return this.#place(topic, partition, key, value, headers, timestamp, fieldsBytes, reserveBytes, owner, ownerIndex);
  }

  #result(topic: string, partition: number, flags: number): AppendResult {
    const queue = this.#queue(topic, partition)!;
    return {
      batch: queue.last!,
      newBatchCreated: (flags & APPEND_NEW_BATCH) !== 0,
      batchIsFull: (flags & APPEND_BATCH_FULL) !== 0,
    };
  }

  #queue(topic: string, partition: number): PartitionQueue | undefined {
    return this.#byTopic.get(topic)?.[partition];
  }

  #queueOrCreate(topic: string, partition: number): PartitionQueue {
    let partitions = this.#byTopic.get(topic);
    if (partitions === undefined) {
      partitions = [];
      this.#byTopic.set(topic, partitions);
    }
    let queue = partitions[partition];
    if (queue === undefined) {
      queue = new PartitionQueue(topic, partition);
      partitions[partition] = queue;
    }
    return queue;
  }

  #list(queue: PartitionQueue): void {
    if (queue.listed) return;
    queue.listed = true;
    this.#queues.set(queue.key, queue);
  }

  #unlistIfEmpty(queue: PartitionQueue): void {
    if (queue.batches.length > 0 || !queue.listed) return;
    queue.listed = false;
    this.#queues.delete(queue.key);
  }

  #place(
    topic: string,
    partition: number,
    key: RecordBytesInput,
    value: RecordBytesInput,
    headers: readonly RecordHeaderInput[] | undefined,
    timestampOrUndefined: number | undefined,
    fieldsBytes: number,
    reserveBytes: number,
    owner: RecordOwner | undefined,
    ownerIndex: number,
  ): number {
    const timestamp = timestampOrUndefined ?? this.#options.clock();
    const queue = this.#queueOrCreate(topic, partition);
    let batch = queue.last;
    let flags = APPEND_DONE;
    if (batch === undefined || !this.#fits(batch, fieldsBytes, timestamp)) {
      if (batch !== undefined) batch.closed = true;
      const firstRecordBytes = BATCH_HEADER_BYTES + recordBytesWithDeltas(fieldsBytes, 0, 0);
      batch = new ProducerBatch(topic, partition, this.#options.clock(), timestamp, this.#nextBatchId++, {
        initialCapacityBytes: Math.max(firstRecordBytes, Math.min(BATCH_INITIAL_CAPACITY_BYTES, this.#batchLimitBytes)),
        capacityBytesMax: this.#batchLimitBytes,
        buffer: firstRecordBytes <= this.#batchLimitBytes ? this.#freeBuffers.pop() : undefined,
      });
      queue.batches.push(batch);
      this.#list(queue);
      flags |= APPEND_NEW_BATCH;
    }
    batch.builder.append(key, value, headers, timestamp, fieldsBytes);
    batch.owners.push(owner);
    batch.ownerIndexes.push(ownerIndex);
    batch.timestamps.push(timestamp);
    batch.memoryBytes += reserveBytes;
    if (batch.builder.sizeBytes >= this.#options.batchSize) batch.closed = true;
    if (batch.closed || queue.batches.length > 1) flags |= APPEND_BATCH_FULL;
    return flags;
  }

  #fits(batch: ProducerBatch, fieldsBytes: number, timestamp: number): boolean {
    if (batch.closed) return false;
    // A timestamp too far from the batch's base for a delta varlong opens a batch of its own
    // (delta 0), so an append never fails half-way.
    const timestampDelta = timestamp - batch.baseTimestamp;
    if (!(timestampDelta > -TIMESTAMP_DELTA_LIMIT && timestampDelta < TIMESTAMP_DELTA_LIMIT)) return false;
    return batch.builder.sizeBytes + batch.builder.nextRecordBytes(fieldsBytes, timestamp) <= this.#batchLimitBytes;
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
      const head = queue.batches[0]!;
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
      const full = head.closed || queue.batches.length > 1;
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
    const queues = [...this.#queues.values()];
    for (const node of nodes) {
      const taken: ProducerBatch[] = [];
      let requestBytes = 0;
      const start = (this.#drainStartByNode.get(node) ?? 0) % Math.max(1, queues.length);
      let lastVisited = start;
      for (let step = 0; step < queues.length; step += 1) {
        const index = (start + step) % queues.length;
        const queue = queues[index]!;
        const head = queue.batches[0];
        if (!head) continue;
        if (leaderFor(head.topic, head.partition) !== node) continue;
        if (isMuted?.(head.topic, head.partition)) continue;
        if (backingOff(head, node, nowMs)) continue;
        if (taken.length > 0 && requestBytes + head.sizeBytes > this.#options.maxRequestSize) break;
        lastVisited = index;
        queue.batches.shift();
        this.#unlistIfEmpty(queue);
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
    const queue = this.#queueOrCreate(batch.topic, batch.partition);
    // Several batches of one partition can fail from different in-flight requests (pipelined on
    // one stream), answered in any order of handling. A batch goes back in front of the first
    // queued batch created after it, so the partition is resent in its original record order
    // (and so in sequence order: sequences are assigned in drain order, which is creation order
    // within a partition; Kafka's insertInSequenceOrder).
    const index = queue.batches.findIndex((other) => other.id > batch.id);
    queue.batches.splice(index === -1 ? queue.batches.length : index, 0, batch);
    this.#list(queue);
  }

  /**
   * Returns a finished batch's memory to the pool (after success or final failure). With
   * `recycleBuffer`, the caller vouches that nothing reads the batch's bytes any more (the broker
   * answered the request that carried them), so its buffer may hold the next batch.
   */
  release(batch: ProducerBatch, recycleBuffer = false): void {
    this.#pool.free(batch.memoryBytes);
    batch.memoryBytes = 0;
    if (recycleBuffer && batch.builder.capacityBytes === this.#batchLimitBytes && this.#freeBuffers.length < this.#freeBuffersMax) {
      this.#freeBuffers.push(batch.builder.takeBuffer());
    }
  }

  /**
   * Removes and returns queued batches older than deliveryTimeoutMs (KIP-91); the caller fails
   * their records with REQUEST_TIMED_OUT and releases them. In-flight batches are not touched: the
   * broker may still append them.
   */
  expire(nowMs: number): ProducerBatch[] {
    const expired: ProducerBatch[] = [];
    for (const queue of this.#queues.values()) {
      const batches = queue.batches;
      while (batches.length > 0 && nowMs - batches[0]!.createdMs >= this.#options.deliveryTimeoutMs) {
        const batch = batches.shift()!;
        batch.closed = true;
        expired.push(batch);
      }
      this.#unlistIfEmpty(queue);
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
    return this.#queue(topic, partition)?.batches ?? [];
  }

  /** The first queued batch of a partition, if any (the sender's per-partition checks). */
  headBatch(topic: string, partition: number): ProducerBatch | undefined {
    return this.#queue(topic, partition)?.batches[0];
  }
}

function queueKey(topic: string, partition: number): string {
  // Topic names cannot contain NUL, so the key is unambiguous.
  return `${topic}\u0000${partition}`;
}
