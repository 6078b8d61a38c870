// An incremental RecordBatch v2 encoder for producers: each record is written straight into the
// batch's buffer as it is appended (Kafka's MemoryRecordsBuilder), so sending a batch only writes
// the 61-byte header and the CRC over bytes already in place.
//
// Why it exists beside encodeRecordBatch (codec.ts): that encoder takes a finished list of
// records, builds a prepared object per record and writes them all when the batch is sent. A
// producer that appends one record per call then pays, per record, for the input object, the
// prepared object, and a second walk over its fields. Here a record costs its varints and one
// copy of its key and value, and no object. The bytes are identical to encodeRecordBatch's for
// the same records (see test/record-batch/builder.test.ts), so the broker sees no difference.
//
// Layout written per record (record.ts has the field list): length varint, attributes (0),
// timestampDelta varlong, offsetDelta varint (the record's index: a producer's batches have no
// gaps), key, value, header count, headers.
//
// The buffer starts small and doubles up to a caller-given bound, so a batch that receives one
// record does not hold a full batch.size of memory.

import { invariant } from '../errors.js';
import { compress, compressSync, type SyncCompressionName } from '../compression/index.js';
import { varintSize, varlongSize, writeVarint, writeVarlong } from '../varint.js';
import {
  BATCH_HEADER_BYTES,
  BATCH_OFFSET_ATTRIBUTES,
  BATCH_OFFSET_BASE_OFFSET,
  BATCH_OFFSET_BASE_SEQUENCE,
  BATCH_OFFSET_BASE_TIMESTAMP,
  BATCH_OFFSET_CRC,
  BATCH_OFFSET_LAST_OFFSET_DELTA,
  BATCH_OFFSET_LENGTH,
  BATCH_OFFSET_MAGIC,
  BATCH_OFFSET_MAX_TIMESTAMP,
  BATCH_OFFSET_PARTITION_LEADER_EPOCH,
  BATCH_OFFSET_PRODUCER_EPOCH,
  BATCH_OFFSET_PRODUCER_ID,
  BATCH_OFFSET_RECORD_COUNT,
  CompressionCodec,
  computeBatchCrc,
  LOG_OVERHEAD,
  NO_PARTITION_LEADER_EPOCH,
  NO_PRODUCER_EPOCH,
  NO_PRODUCER_ID,
  NO_SEQUENCE,
  RECORD_BATCH_MAGIC,
  type CompressionName,
} from './header.js';
import { TIMESTAMP_DELTA_LIMIT, type RecordHeaderInput } from './record.js';
import { RECORD_BATCH_BYTES_MAX } from './codec.js';

export { TIMESTAMP_DELTA_LIMIT };

/** Bytes of a key, value or header value as the record stores it; strings are UTF-8. */
export type RecordBytesInput = Buffer | Uint8Array | string | null | undefined;

const EMPTY_BUFFER = Buffer.alloc(0);

/** Buffer a builder starts with when the caller gives no hint (doubles as records arrive). */
export const BUILDER_INITIAL_CAPACITY_BYTES = 4096;

function fieldLength(value: RecordBytesInput): number {
  if (value === null || value === undefined) return -1;
  return typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
}

/**
 * A record's encoded size without its length varint and its two delta varints: attributes, key,
 * value and headers. Computed once per record; `RecordBatchBuilder.recordBytes` adds the rest.
 */
export function recordFieldsBytes(key: RecordBytesInput, value: RecordBytesInput, headers: readonly RecordHeaderInput[] | undefined): number {
  const keyLength = fieldLength(key);
  const valueLength = fieldLength(value);
  let bytes = 1 + varintSize(keyLength) + (keyLength > 0 ? keyLength : 0) + varintSize(valueLength) + (valueLength > 0 ? valueLength : 0);
  if (headers === undefined) return bytes + 1; // header count 0
  bytes += varintSize(headers.length);
  for (let index = 0; index < headers.length; index++) {
    const header = headers[index]!;
    const headerKeyLength = Buffer.byteLength(header.key, 'utf8');
    const headerValueLength = fieldLength(header.value);
    bytes += varintSize(headerKeyLength) + headerKeyLength + varintSize(headerValueLength) + (headerValueLength > 0 ? headerValueLength : 0);
  }
  return bytes;
}

/** A record's full encoded size given its fields size (recordFieldsBytes) and its deltas. */
export function recordBytesWithDeltas(fieldsBytes: number, offsetDelta: number, timestampDelta: number): number {
  const bodyBytes = fieldsBytes + varlongSize(timestampDelta) + varintSize(offsetDelta);
  return varintSize(bodyBytes) + bodyBytes;
}

export interface BuildRecordBatchOptions {
  /** Default 'none'. */
  compression?: CompressionName;
  /** Default -1 (not an idempotent producer). */
  producerId?: number;
  /** Default -1. */
  producerEpoch?: number;
  /** Sequence of the first record; default -1. */
  baseSequence?: number;
}

export interface BuildRecordBatchSyncOptions extends BuildRecordBatchOptions {
  compression?: SyncCompressionName;
}

export class RecordBatchBuilder {
  /** Timestamp the records' deltas are relative to (Kafka: the first record's). */
  readonly baseTimestamp: number;
  #buffer: Buffer;
  /** Growth stops doubling here (a larger single record still gets the room it needs). */
  readonly #capacityBytesMax: number;
  // Invariant: BATCH_HEADER_BYTES <= #end <= #buffer.length; records fill [BATCH_HEADER_BYTES, #end).
  #end = BATCH_HEADER_BYTES;
  #recordCount = 0;
  #maxTimestamp = Number.NEGATIVE_INFINITY;
  // Set by the first uncompressed build, which stamps the header into #buffer itself: appends
  // stop, and a later build copies first, since the bytes handed out may still be queued to send.
  #sealed = false;

  /**
   * `buffer`, when given, is used as the initial buffer (a recycled one: see `takeBuffer`);
   * otherwise one of initialCapacityBytes is allocated.
   */
  constructor(baseTimestamp: number, options: { initialCapacityBytes?: number; capacityBytesMax?: number; buffer?: Buffer | undefined } = {}) {
    invariant(Number.isSafeInteger(baseTimestamp), () => `batch base timestamp ${baseTimestamp} is not a safe integer`);
    this.baseTimestamp = baseTimestamp;
    this.#capacityBytesMax = Math.max(BATCH_HEADER_BYTES, options.capacityBytesMax ?? RECORD_BATCH_BYTES_MAX);
    if (options.buffer !== undefined && options.buffer.length >= BATCH_HEADER_BYTES) {
      this.#buffer = options.buffer;
    } else {
      const initial = Math.min(this.#capacityBytesMax, Math.max(BATCH_HEADER_BYTES, options.initialCapacityBytes ?? BUILDER_INITIAL_CAPACITY_BYTES));
      // Not from Node's shared 8 KiB pool: a batch buffer lives long, and a pooled slice would keep its whole slab alive.
      this.#buffer = Buffer.allocUnsafeSlow(initial);
    }
  }

  /**
   * Gives up the builder's buffer for reuse by another builder, and ends this one (no more
   * appends or builds). Only safe once nothing still reads bytes built from it (for a producer:
   * once the broker answered the request that carried them).
   */
  takeBuffer(): Buffer {
    const buffer = this.#buffer;
    this.#buffer = EMPTY_BUFFER;
    this.#end = 0;
    this.#sealed = true;
    return buffer;
  }

  get recordCount(): number {
    return this.#recordCount;
  }

  /** Encoded bytes so far, header included (the uncompressed batch's exact size). */
  get sizeBytes(): number {
    return this.#end;
  }

  /** Bytes the buffer holds (>= sizeBytes). */
  get capacityBytes(): number {
    return this.#buffer.length;
  }

  get maxTimestamp(): number {
    return this.#maxTimestamp;
  }

  /** Encoded size the next record would take, given its recordFieldsBytes and its timestamp. */
  nextRecordBytes(fieldsBytes: number, timestamp: number): number {
    return recordBytesWithDeltas(fieldsBytes, this.#recordCount, timestamp - this.baseTimestamp);
  }

  /**
   * Writes a record at the next offset. `fieldsBytes` must be recordFieldsBytes of the same key,
   * value and headers (the caller has it already, from its size checks).
   */
  append(key: RecordBytesInput, value: RecordBytesInput, headers: readonly RecordHeaderInput[] | undefined, timestamp: number, fieldsBytes: number): void {
    invariant(!this.#sealed, 'no record can be appended to a batch that was built');
    const timestampDelta = timestamp - this.baseTimestamp;
    invariant(
      Number.isInteger(timestampDelta) && timestampDelta >= -TIMESTAMP_DELTA_LIMIT && timestampDelta < TIMESTAMP_DELTA_LIMIT,
      () => `record timestamp delta ${timestampDelta} is not an integer in [-2^52, 2^52)`,
    );
    const offsetDelta = this.#recordCount;
    const bodyBytes = fieldsBytes + varlongSize(timestampDelta) + varintSize(offsetDelta);
    const recordBytes = varintSize(bodyBytes) + bodyBytes;
    if (this.#end + recordBytes > this.#buffer.length) this.#grow(this.#end + recordBytes);
    const buffer = this.#buffer;
    let position = writeVarint(buffer, this.#end, bodyBytes);
    const bodyStart = position;
    buffer[position++] = 0; // attributes: unused in v2
    position = writeVarlong(buffer, position, timestampDelta);
    position = writeVarint(buffer, position, offsetDelta);
    position = writeField(buffer, position, key);
    position = writeField(buffer, position, value);
    if (headers === undefined) {
      buffer[position++] = 0; // varint 0: no headers
    } else {
      position = writeVarint(buffer, position, headers.length);
      for (let index = 0; index < headers.length; index++) {
        const header = headers[index]!;
        position = writeField(buffer, position, header.key);
        position = writeField(buffer, position, header.value);
      }
    }
    invariant(position - bodyStart === bodyBytes, 'record fields written match the size computed for them');
    this.#end = position;
    this.#recordCount = offsetDelta + 1;
    if (timestamp > this.#maxTimestamp) this.#maxTimestamp = timestamp;
  }

  #grow(neededBytes: number): void {
    const capacity = Math.max(neededBytes, Math.min(this.#buffer.length * 2, this.#capacityBytesMax));
    const grown = Buffer.allocUnsafeSlow(capacity);
    this.#buffer.copy(grown, 0, 0, this.#end);
    this.#buffer = grown;
  }

  /**
   * The finished batch, on the calling thread (every codec but zstd). Uncompressed, the header is
   * stamped in place and the result shares the builder's buffer; call again (a retry with new
   * producer fields) and it is a fresh copy.
   */
  build(options: BuildRecordBatchSyncOptions = {}): Buffer {
    const codec = options.compression ?? 'none';
    if (codec === 'none') return this.#buildUncompressed(options);
    return this.#wrap(options, codec, compressSync(codec, this.#recordsView()));
  }

  /** The finished batch with any codec; gzip and zstd compress off the event loop. */
  async buildAsync(options: BuildRecordBatchOptions = {}): Promise<Buffer> {
    const codec = options.compression ?? 'none';
    if (codec === 'none') return this.#buildUncompressed(options);
    return this.#wrap(options, codec, await compress(codec, this.#recordsView()));
  }

  /** Stops appends (a batch being compressed must not change under the codec). */
  seal(): void {
    this.#sealed = true;
  }

  #recordsView(): Buffer {
    invariant(this.#recordCount > 0 && this.#end > 0, 'a record batch holds at least one record');
    this.#sealed = true;
    return this.#buffer.subarray(BATCH_HEADER_BYTES, this.#end);
  }

  #buildUncompressed(options: BuildRecordBatchOptions): Buffer {
    invariant(this.#recordCount > 0 && this.#end > 0, 'a record batch holds at least one record');
    const view = this.#buffer.subarray(0, this.#end);
    const batch = this.#sealed ? Buffer.from(view) : view;
    this.#sealed = true;
    return this.#finish(batch, options, 'none');
  }

  #wrap(options: BuildRecordBatchOptions, codec: CompressionName, compressed: Buffer): Buffer {
    const batch = Buffer.allocUnsafe(BATCH_HEADER_BYTES + compressed.length);
    compressed.copy(batch, BATCH_HEADER_BYTES);
    return this.#finish(batch, options, codec);
  }

  /** Writes the header around the records already in `batch` and the CRC (codec.ts's finishBatch, CreateTime, non-transactional). */
  #finish(batch: Buffer, options: BuildRecordBatchOptions, codec: CompressionName): Buffer {
    invariant(batch.length <= RECORD_BATCH_BYTES_MAX, () => `record batch of ${batch.length} bytes exceeds the int32 length field`);
    batch.writeBigInt64BE(0n, BATCH_OFFSET_BASE_OFFSET);
    batch.writeInt32BE(batch.length - LOG_OVERHEAD, BATCH_OFFSET_LENGTH);
    batch.writeInt32BE(NO_PARTITION_LEADER_EPOCH, BATCH_OFFSET_PARTITION_LEADER_EPOCH);
    batch.writeInt8(RECORD_BATCH_MAGIC, BATCH_OFFSET_MAGIC);
    batch.writeInt16BE(CompressionCodec[codec], BATCH_OFFSET_ATTRIBUTES);
    batch.writeInt32BE(this.#recordCount - 1, BATCH_OFFSET_LAST_OFFSET_DELTA);
    batch.writeBigInt64BE(BigInt(this.baseTimestamp), BATCH_OFFSET_BASE_TIMESTAMP);
    batch.writeBigInt64BE(BigInt(this.#maxTimestamp), BATCH_OFFSET_MAX_TIMESTAMP);
    batch.writeBigInt64BE(BigInt(options.producerId ?? NO_PRODUCER_ID), BATCH_OFFSET_PRODUCER_ID);
    batch.writeInt16BE(options.producerEpoch ?? NO_PRODUCER_EPOCH, BATCH_OFFSET_PRODUCER_EPOCH);
    batch.writeInt32BE(options.baseSequence ?? NO_SEQUENCE, BATCH_OFFSET_BASE_SEQUENCE);
    batch.writeInt32BE(this.#recordCount, BATCH_OFFSET_RECORD_COUNT);
    batch.writeUInt32BE(computeBatchCrc(batch, 0, batch.length), BATCH_OFFSET_CRC);
    return batch;
  }
}

function writeField(buffer: Buffer, position: number, value: RecordBytesInput): number {
  if (value === null || value === undefined) {
    buffer[position] = 1; // varint -1: null
    return position + 1;
  }
  if (typeof value === 'string') {
    const length = Buffer.byteLength(value, 'utf8');
    position = writeVarint(buffer, position, length);
    return position + buffer.write(value, position, length, 'utf8');
  }
  position = writeVarint(buffer, position, value.length);
  buffer.set(value, position);
  return position + value.length;
}
