// Encoding and decoding whole RecordBatch v2 batches (Kafka's DefaultRecordBatch): the fixed
// header (header.ts), then the records (record.ts), compressed as one block when the batch has
// a codec. The CRC32C covers everything from the attributes to the end, so it is computed last
// when encoding and checked first when decoding.
//
// Producers encode; the broker never decodes records on its hot path (it checks the header and
// CRC only); consumers and tools decode. Decoding turns every malformed input into a RaftkaError:
// CORRUPT_MESSAGE when the batch framing, the CRC or the compressed data is broken,
// INVALID_RECORD when a sound batch carries records that break the format, MESSAGE_TOO_LARGE
// when decompression would exceed the caller's limit.

import { invariant, RaftkaError } from '../errors.js';
import {
  compress,
  compressSync,
  codecName,
  decompress,
  decompressSync,
  DECOMPRESSED_BYTES_MAX_DEFAULT,
  type SyncCompressionName,
} from '../compression/index.js';
import {
  ATTRIBUTE_CONTROL_MASK,
  ATTRIBUTE_TIMESTAMP_TYPE_MASK,
  ATTRIBUTE_TRANSACTIONAL_MASK,
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
  compressionOf,
  computeBatchCrc,
  LOG_OVERHEAD,
  NO_PARTITION_LEADER_EPOCH,
  NO_PRODUCER_EPOCH,
  NO_PRODUCER_ID,
  NO_SEQUENCE,
  readBatchHeader,
  RECORD_BATCH_MAGIC,
  timestampTypeOf,
  type CompressionName,
  type RecordBatchHeader,
} from './header.js';
import { decodeRecords, prepareRecord, recordSize, writeRecord, type DecodedRecord, type PreparedRecord, type RecordInput } from './record.js';

/** Largest batch this encoder writes: its length field is an int32. */
export const RECORD_BATCH_BYTES_MAX = 0x7fffffff;

export interface EncodeRecordBatchOptions {
  records: readonly RecordInput[];
  /** Default 'none'. */
  compression?: CompressionName;
  /** Default 0; the broker's log assigns the real offset when it appends the batch. */
  baseOffset?: number;
  /** Default -1; the leader stamps its epoch when it appends the batch. */
  partitionLeaderEpoch?: number;
  /** 0 = CreateTime (default), 1 = LogAppendTime. */
  timestampType?: 0 | 1;
  /** Default -1 (not an idempotent producer). */
  producerId?: bigint | number;
  /** Default -1. */
  producerEpoch?: number;
  /** Sequence of the first record; default -1. */
  baseSequence?: number;
  transactional?: boolean;
  /** Control batches carry transaction markers (commit/abort), not user records. */
  isControl?: boolean;
  /**
   * Timestamp the records' deltas are relative to. Defaults to the first record's timestamp, as
   * Kafka's producer does; records without a timestamp take this one. The encoder reads no clock:
   * pass `baseTimestamp` (the producer's "now") when records carry no timestamps.
   */
  baseTimestamp?: number;
}

export interface EncodeRecordBatchSyncOptions extends EncodeRecordBatchOptions {
  compression?: SyncCompressionName;
}

export interface DecodeRecordBatchOptions {
  /** Ceiling on the decompressed records size (default DECOMPRESSED_BYTES_MAX_DEFAULT). */
  decompressedBytesMax?: number;
}

export interface DecodedRecordBatch {
  header: RecordBatchHeader;
  records: DecodedRecord[];
}

interface PreparedBatch {
  records: PreparedRecord[];
  recordsBytes: number;
  baseTimestamp: number;
  maxTimestamp: number;
}

function prepareBatch(options: EncodeRecordBatchOptions): PreparedBatch {
  const inputs = options.records;
  invariant(inputs.length > 0, 'a record batch holds at least one record');
  const baseTimestamp = options.baseTimestamp ?? inputs[0]!.timestamp;
  invariant(
    baseTimestamp !== undefined,
    'encodeRecordBatch needs a timestamp on the first record or a baseTimestamp (the encoder reads no clock)',
  );
  let maxTimestamp = Number.NEGATIVE_INFINITY;
  let recordsBytes = 0;
  const records: PreparedRecord[] = new Array(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!;
    const timestamp = input.timestamp ?? baseTimestamp;
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    const offsetDelta = input.offsetDelta ?? i;
    invariant(
      i === 0 ? offsetDelta === 0 : Number.isInteger(offsetDelta) && offsetDelta > records[i - 1]!.offsetDelta,
      () => `record offset deltas must start at 0 and strictly increase (record ${i} has ${offsetDelta})`,
    );
    const record = prepareRecord(input, offsetDelta, timestamp - baseTimestamp);
    records[i] = record;
    recordsBytes += recordSize(record);
  }
  return { records, recordsBytes, baseTimestamp, maxTimestamp };
}

function writeRecords(buffer: Buffer, position: number, records: readonly PreparedRecord[]): number {
  for (const record of records) position = writeRecord(buffer, position, record);
  return position;
}

function attributesOf(options: EncodeRecordBatchOptions, codec: CompressionName): number {
  return (
    CompressionCodec[codec] |
    (options.timestampType === 1 ? ATTRIBUTE_TIMESTAMP_TYPE_MASK : 0) |
    (options.transactional === true ? ATTRIBUTE_TRANSACTIONAL_MASK : 0) |
    (options.isControl === true ? ATTRIBUTE_CONTROL_MASK : 0)
  );
}

/** Writes the header around `buffer[61, end)` (records already in place) and the CRC. */
function finishBatch(buffer: Buffer, options: EncodeRecordBatchOptions, codec: CompressionName, prepared: PreparedBatch): Buffer {
  invariant(buffer.length <= RECORD_BATCH_BYTES_MAX, () => `record batch of ${buffer.length} bytes exceeds the int32 length field`);
  buffer.writeBigInt64BE(BigInt(options.baseOffset ?? 0), BATCH_OFFSET_BASE_OFFSET);
  buffer.writeInt32BE(buffer.length - LOG_OVERHEAD, BATCH_OFFSET_LENGTH);
  buffer.writeInt32BE(options.partitionLeaderEpoch ?? NO_PARTITION_LEADER_EPOCH, BATCH_OFFSET_PARTITION_LEADER_EPOCH);
  buffer.writeInt8(RECORD_BATCH_MAGIC, BATCH_OFFSET_MAGIC);
  buffer.writeInt16BE(attributesOf(options, codec), BATCH_OFFSET_ATTRIBUTES);
  buffer.writeInt32BE(prepared.records[prepared.records.length - 1]!.offsetDelta, BATCH_OFFSET_LAST_OFFSET_DELTA);
  buffer.writeBigInt64BE(BigInt(prepared.baseTimestamp), BATCH_OFFSET_BASE_TIMESTAMP);
  buffer.writeBigInt64BE(BigInt(prepared.maxTimestamp), BATCH_OFFSET_MAX_TIMESTAMP);
  buffer.writeBigInt64BE(BigInt(options.producerId ?? NO_PRODUCER_ID), BATCH_OFFSET_PRODUCER_ID);
  buffer.writeInt16BE(options.producerEpoch ?? NO_PRODUCER_EPOCH, BATCH_OFFSET_PRODUCER_EPOCH);
  buffer.writeInt32BE(options.baseSequence ?? NO_SEQUENCE, BATCH_OFFSET_BASE_SEQUENCE);
  buffer.writeInt32BE(prepared.records.length, BATCH_OFFSET_RECORD_COUNT);
  buffer.writeUInt32BE(computeBatchCrc(buffer, 0, buffer.length), BATCH_OFFSET_CRC);
  return buffer;
}

function encodeUncompressed(options: EncodeRecordBatchOptions, prepared: PreparedBatch): Buffer {
  const buffer = Buffer.allocUnsafe(BATCH_HEADER_BYTES + prepared.recordsBytes);
  const end = writeRecords(buffer, BATCH_HEADER_BYTES, prepared.records);
  invariant(end === buffer.length, 'records fill the batch exactly');
  return finishBatch(buffer, options, 'none', prepared);
}

function serializeRecords(prepared: PreparedBatch): Buffer {
  const records = Buffer.allocUnsafe(prepared.recordsBytes);
  const end = writeRecords(records, 0, prepared.records);
  invariant(end === records.length, 'records fill their buffer exactly');
  return records;
}

function wrapCompressed(options: EncodeRecordBatchOptions, codec: CompressionName, prepared: PreparedBatch, compressed: Buffer): Buffer {
  const buffer = Buffer.allocUnsafe(BATCH_HEADER_BYTES + compressed.length);
  compressed.copy(buffer, BATCH_HEADER_BYTES);
  return finishBatch(buffer, options, codec, prepared);
}

/**
 * Encodes a batch on the calling thread. Supports every codec but zstd (whose library is
 * asynchronous); 'none' is the fast path with a single allocation.
 */
export function encodeRecordBatchSync(options: EncodeRecordBatchSyncOptions): Buffer {
  const codec = options.compression ?? 'none';
  const prepared = prepareBatch(options);
  if (codec === 'none') return encodeUncompressed(options, prepared);
  return wrapCompressed(options, codec, prepared, compressSync(codec, serializeRecords(prepared)));
}

/** Encodes a batch with any codec; gzip and zstd compress off the event loop. */
export async function encodeRecordBatch(options: EncodeRecordBatchOptions): Promise<Buffer> {
  const codec = options.compression ?? 'none';
  const prepared = prepareBatch(options);
  if (codec === 'none') return encodeUncompressed(options, prepared);
  return wrapCompressed(options, codec, prepared, await compress(codec, serializeRecords(prepared)));
}

interface CheckedBatch {
  header: RecordBatchHeader;
  codec: CompressionName;
  recordsStart: number;
  recordsEnd: number;
}

/** Checks the framing and CRC of the batch at `position`; throws CORRUPT_MESSAGE when broken. */
function checkBatch(buffer: Buffer, position: number): CheckedBatch {
  if (!Number.isInteger(position) || position < 0 || position > buffer.length) {
    throw new RaftkaError('CORRUPT_MESSAGE', `record batch position ${position} is outside the ${buffer.length}-byte buffer`);
  }
  const header = readBatchHeader(buffer, position);
  const available = buffer.length - position;
  if (header.sizeInBytes > available) {
    throw new RaftkaError(
      'CORRUPT_MESSAGE',
      `record batch at position ${position} is ${header.sizeInBytes} bytes long but only ${available} bytes remain (truncated)`,
    );
  }
  const crc = computeBatchCrc(buffer, position, header.sizeInBytes);
  if (crc !== header.crc) {
    throw new RaftkaError(
      'CORRUPT_MESSAGE',
      `record batch at position ${position} fails its CRC32C check (stored ${header.crc}, computed ${crc}): the bytes were damaged`,
    );
  }
  return {
    header,
    codec: codecName(compressionOf(header.attributes)),
    recordsStart: position + BATCH_HEADER_BYTES,
    recordsEnd: position + header.sizeInBytes,
  };
}

function contextOf(header: RecordBatchHeader): { baseOffset: number; baseTimestamp: number; logAppendTime: number | undefined } {
  return {
    baseOffset: header.baseOffset,
    baseTimestamp: header.baseTimestamp,
    logAppendTime: timestampTypeOf(header.attributes) === 1 ? header.maxTimestamp : undefined,
  };
}

/**
 * A header with no records section at all. Compaction leaves such batches behind (Kafka's
 * MemoryRecords.writeEmptyHeader) to keep the producer state and last offset, with the codec
 * bits of the original batch: there is nothing to decompress.
 */
function isEmptyBatch(checked: CheckedBatch): boolean {
  return checked.header.recordCount === 0 && checked.recordsStart === checked.recordsEnd;
}

function decodeChecked(checked: CheckedBatch, data: Buffer, start: number, end: number): DecodedRecordBatch {
  const { header } = checked;
  return { header, records: decodeRecords(data, start, end, header.recordCount, contextOf(header)) };
}

/**
 * Decodes and validates the batch at `position` on the calling thread. zstd batches need the
 * asynchronous `decodeRecordBatch` (UNSUPPORTED_COMPRESSION_TYPE here).
 */
export function decodeRecordBatchSync(buffer: Buffer, position = 0, options: DecodeRecordBatchOptions = {}): DecodedRecordBatch {
  const checked = checkBatch(buffer, position);
  if (checked.codec === 'none' || isEmptyBatch(checked)) return decodeChecked(checked, buffer, checked.recordsStart, checked.recordsEnd);
  const data = decompressSync(
    checked.codec,
    buffer.subarray(checked.recordsStart, checked.recordsEnd),
    options.decompressedBytesMax ?? DECOMPRESSED_BYTES_MAX_DEFAULT,
  );
  return decodeChecked(checked, data, 0, data.length);
}

/** Decodes and validates the batch at `position`, with any codec. */
export async function decodeRecordBatch(buffer: Buffer, position = 0, options: DecodeRecordBatchOptions = {}): Promise<DecodedRecordBatch> {
  const checked = checkBatch(buffer, position);
  if (checked.codec === 'none' || isEmptyBatch(checked)) return decodeChecked(checked, buffer, checked.recordsStart, checked.recordsEnd);
  const data = await decompress(
    checked.codec,
    buffer.subarray(checked.recordsStart, checked.recordsEnd),
    options.decompressedBytesMax ?? DECOMPRESSED_BYTES_MAX_DEFAULT,
  );
  return decodeChecked(checked, data, 0, data.length);
}
