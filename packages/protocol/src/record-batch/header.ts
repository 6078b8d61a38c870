// Cheap access to the fixed 61-byte header of a Kafka RecordBatch v2 (magic 2), without
// decoding its records. The broker's hot path lives here: it validates one CRC32C per batch,
// reads a few header fields, stamps the base offset and leader epoch, and stores the bytes as
// they are.
//
// Layout (big-endian), offsets in bytes from the start of the batch:
//    0 baseOffset           int64
//    8 batchLength          int32   bytes after this field (so the batch is 12 + batchLength long)
//   12 partitionLeaderEpoch int32
//   16 magic                int8    = 2
//   17 crc                  uint32  CRC32C of bytes [21, end)
//   21 attributes           int16   bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control
//   23 lastOffsetDelta      int32
//   27 baseTimestamp        int64
//   35 maxTimestamp         int64
//   43 producerId           int64
//   51 producerEpoch        int16
//   53 baseSequence         int32
//   57 recordCount          int32
//   61 records...
// baseOffset and partitionLeaderEpoch sit before the CRC'd range so the log can rewrite them
// without recomputing the checksum.

import { crc32c } from '@node-rs/crc32';
import { RaftkaError } from '../errors.js';

export const BATCH_OFFSET_BASE_OFFSET = 0;
export const BATCH_OFFSET_LENGTH = 8;
export const BATCH_OFFSET_PARTITION_LEADER_EPOCH = 12;
export const BATCH_OFFSET_MAGIC = 16;
export const BATCH_OFFSET_CRC = 17;
export const BATCH_OFFSET_ATTRIBUTES = 21;
export const BATCH_OFFSET_LAST_OFFSET_DELTA = 23;
export const BATCH_OFFSET_BASE_TIMESTAMP = 27;
export const BATCH_OFFSET_MAX_TIMESTAMP = 35;
export const BATCH_OFFSET_PRODUCER_ID = 43;
export const BATCH_OFFSET_PRODUCER_EPOCH = 51;
export const BATCH_OFFSET_BASE_SEQUENCE = 53;
export const BATCH_OFFSET_RECORD_COUNT = 57;
export const BATCH_HEADER_BYTES = 61;
/** The bytes before `batchLength` ends: a batch occupies LOG_OVERHEAD + batchLength bytes. */
export const LOG_OVERHEAD = 12;
export const RECORD_BATCH_MAGIC = 2;

export const ATTRIBUTE_COMPRESSION_MASK = 0x07;
export const ATTRIBUTE_TIMESTAMP_TYPE_MASK = 0x08;
export const ATTRIBUTE_TRANSACTIONAL_MASK = 0x10;
export const ATTRIBUTE_CONTROL_MASK = 0x20;

export const NO_PRODUCER_ID = -1n;
export const NO_PRODUCER_EPOCH = -1;
export const NO_SEQUENCE = -1;
export const NO_PARTITION_LEADER_EPOCH = -1;

/** The fixed header fields of one batch. Offsets are JavaScript numbers (safe up to 2^53). */
export interface RecordBatchHeader {
  baseOffset: number;
  /** Total size of the batch in bytes, header included (LOG_OVERHEAD + batchLength). */
  sizeInBytes: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/**
 * Reads the header of the batch starting at `position` in `buffer`. Checks only that the header
 * fits and that the magic byte is 2; it does not check the CRC (see `verifyBatchCrc`).
 * Throws CORRUPT_MESSAGE when the bytes cannot be a v2 batch header.
 */
export function readBatchHeader(buffer: Buffer, position = 0): RecordBatchHeader {
  if (buffer.length - position < BATCH_HEADER_BYTES) {
    throw new RaftkaError(
      'CORRUPT_MESSAGE',
      `record batch header needs ${BATCH_HEADER_BYTES} bytes but only ${buffer.length - position} remain at position ${position}`,
    );
  }
  const batchLength = buffer.readInt32BE(position + BATCH_OFFSET_LENGTH);
  const magic = buffer.readInt8(position + BATCH_OFFSET_MAGIC);
  if (magic !== RECORD_BATCH_MAGIC) {
    throw new RaftkaError(
      'CORRUPT_MESSAGE',
      `unsupported record batch magic ${magic} at position ${position}; Raftka stores only magic 2 (Kafka 0.11+) batches`,
    );
  }
  if (batchLength < BATCH_HEADER_BYTES - LOG_OVERHEAD) {
    throw new RaftkaError('CORRUPT_MESSAGE', `record batch length ${batchLength} at position ${position} is shorter than its header`);
  }
  return {
    baseOffset: Number(buffer.readBigInt64BE(position + BATCH_OFFSET_BASE_OFFSET)),
    sizeInBytes: LOG_OVERHEAD + batchLength,
    partitionLeaderEpoch: buffer.readInt32BE(position + BATCH_OFFSET_PARTITION_LEADER_EPOCH),
    magic,
    crc: buffer.readUInt32BE(position + BATCH_OFFSET_CRC),
    attributes: buffer.readInt16BE(position + BATCH_OFFSET_ATTRIBUTES),
    lastOffsetDelta: buffer.readInt32BE(position + BATCH_OFFSET_LAST_OFFSET_DELTA),
    baseTimestamp: Number(buffer.readBigInt64BE(position + BATCH_OFFSET_BASE_TIMESTAMP)),
    maxTimestamp: Number(buffer.readBigInt64BE(position + BATCH_OFFSET_MAX_TIMESTAMP)),
    producerId: buffer.readBigInt64BE(position + BATCH_OFFSET_PRODUCER_ID),
    producerEpoch: buffer.readInt16BE(position + BATCH_OFFSET_PRODUCER_EPOCH),
    baseSequence: buffer.readInt32BE(position + BATCH_OFFSET_BASE_SEQUENCE),
    recordCount: buffer.readInt32BE(position + BATCH_OFFSET_RECORD_COUNT),
  };
}

/** The size in bytes of the batch at `position`, or undefined when its length field is not there yet. */
export function batchSizeAt(buffer: Buffer, position = 0): number | undefined {
  if (buffer.length - position < LOG_OVERHEAD) return undefined;
  return LOG_OVERHEAD + buffer.readInt32BE(position + BATCH_OFFSET_LENGTH);
}

/** CRC32C of the checksummed range of the batch occupying `buffer[position, position + size)`. */
export function computeBatchCrc(buffer: Buffer, position: number, sizeInBytes: number): number {
  return crc32c(buffer.subarray(position + BATCH_OFFSET_ATTRIBUTES, position + sizeInBytes)) >>> 0;
}

/** True when the stored CRC matches the batch's bytes. */
export function verifyBatchCrc(buffer: Buffer, position = 0): boolean {
  const size = batchSizeAt(buffer, position);
  if (size === undefined || size < BATCH_HEADER_BYTES || position + size > buffer.length) return false;
  return computeBatchCrc(buffer, position, size) === buffer.readUInt32BE(position + BATCH_OFFSET_CRC);
}

/** Rewrites the base offset in place (outside the CRC'd range, so the CRC stays valid). */
export function setBaseOffset(buffer: Buffer, position: number, baseOffset: number): void {
  buffer.writeBigInt64BE(BigInt(baseOffset), position + BATCH_OFFSET_BASE_OFFSET);
}

/** Rewrites the partition leader epoch in place (outside the CRC'd range). */
export function setPartitionLeaderEpoch(buffer: Buffer, position: number, epoch: number): void {
  buffer.writeInt32BE(epoch, position + BATCH_OFFSET_PARTITION_LEADER_EPOCH);
}

/** Compression codec ids as stored in the attributes. */
export const CompressionCodec = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export type CompressionName = keyof typeof CompressionCodec;

export function compressionOf(attributes: number): number {
  return attributes & ATTRIBUTE_COMPRESSION_MASK;
}

export function isControlBatch(attributes: number): boolean {
  return (attributes & ATTRIBUTE_CONTROL_MASK) !== 0;
}

export function isTransactionalBatch(attributes: number): boolean {
  return (attributes & ATTRIBUTE_TRANSACTIONAL_MASK) !== 0;
}

/** Timestamp type: 0 = CreateTime (set by the producer), 1 = LogAppendTime (set by the broker). */
export function timestampTypeOf(attributes: number): 0 | 1 {
  return (attributes & ATTRIBUTE_TIMESTAMP_TYPE_MASK) !== 0 ? 1 : 0;
}
