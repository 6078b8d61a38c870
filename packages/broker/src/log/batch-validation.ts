// Validation of record batches where they enter the log (a producer's append on the leader, a
// fetch response on a follower) and fast header field access for the log's hot paths.
//
// Validation is per batch, never per record: structure (header fits, magic 2, length within
// the buffer), CRC32C, and size limits. The log trusts validated bytes afterwards (STYLE.md:
// boundaries validate, the inside trusts).

import {
  BATCH_HEADER_BYTES,
  BATCH_OFFSET_LAST_OFFSET_DELTA,
  BATCH_OFFSET_LENGTH,
  BATCH_OFFSET_MAGIC,
  BATCH_OFFSET_MAX_TIMESTAMP,
  BATCH_OFFSET_PARTITION_LEADER_EPOCH,
  BATCH_OFFSET_RECORD_COUNT,
  LOG_OVERHEAD,
  RECORD_BATCH_MAGIC,
  RaftkaError,
  verifyBatchCrc,
} from '@raftka/protocol';

// The header fields below are read with two 32-bit reads instead of BigInt: offsets and
// timestamps are well inside 2^53, and BigInt allocation per batch is measurable on the hot path.

export function batchBaseOffset(buffer: Buffer, position: number): number {
  return buffer.readInt32BE(position) * 2 ** 32 + buffer.readUInt32BE(position + 4);
}

export function batchSize(buffer: Buffer, position: number): number {
  return LOG_OVERHEAD + buffer.readInt32BE(position + BATCH_OFFSET_LENGTH);
}

export function batchLastOffsetDelta(buffer: Buffer, position: number): number {
  return buffer.readInt32BE(position + BATCH_OFFSET_LAST_OFFSET_DELTA);
}

export function batchMaxTimestamp(buffer: Buffer, position: number): number {
  return buffer.readInt32BE(position + BATCH_OFFSET_MAX_TIMESTAMP) * 2 ** 32 + buffer.readUInt32BE(position + BATCH_OFFSET_MAX_TIMESTAMP + 4);
}

export function batchPartitionLeaderEpoch(buffer: Buffer, position: number): number {
  return buffer.readInt32BE(position + BATCH_OFFSET_PARTITION_LEADER_EPOCH);
}

export function batchRecordCount(buffer: Buffer, position: number): number {
  return buffer.readInt32BE(position + BATCH_OFFSET_RECORD_COUNT);
}

/** Bytes of a batch needed to know its base offset, size and last offset. */
export const BATCH_PREFIX_BYTES = BATCH_OFFSET_LAST_OFFSET_DELTA + 4;

/** Where the batches of a validated buffer sit; parallel arrays, one slot per batch. */
export interface ValidatedBatches {
  readonly buffer: Buffer;
  readonly count: number;
  readonly positions: number[];
  readonly sizes: number[];
  readonly lastOffsetDeltas: number[];
  readonly maxTimestamps: number[];
  /** Sum of record counts: what flush.messages counts. */
  readonly recordCount: number;
}

export interface ValidateOptions {
  /** Largest batch accepted (max.message.bytes); larger ones fail with MESSAGE_TOO_LARGE. */
  maxBatchBytes: number;
  /**
   * Producer batches must have lastOffsetDelta = recordCount - 1 (their offsets are dense);
   * batches a follower copies from a compacted leader may have gaps, so they skip this check.
   */
  requireDenseOffsets: boolean;
}

/**
 * Checks every batch in `buffer` and returns where they are. Throws CORRUPT_MESSAGE (bad
 * structure or CRC) or MESSAGE_TOO_LARGE; nothing is appended when any batch is bad.
 */
export function validateBatches(buffer: Buffer, options: ValidateOptions): ValidatedBatches {
  const positions: number[] = [];
  const sizes: number[] = [];
  const lastOffsetDeltas: number[] = [];
  const maxTimestamps: number[] = [];
  let recordCount = 0;
  let position = 0;
  if (buffer.length === 0) {
    throw new RaftkaError('CORRUPT_MESSAGE', 'the request holds no record batch; send at least one batch', { retriable: false });
  }
  while (position < buffer.length) {
    const remaining = buffer.length - position;
    if (remaining < BATCH_HEADER_BYTES) {
      throw new RaftkaError('CORRUPT_MESSAGE', `trailing ${remaining} bytes at position ${position} are too short for a record batch header`);
    }
    const magic = buffer.readInt8(position + BATCH_OFFSET_MAGIC);
    if (magic !== RECORD_BATCH_MAGIC) {
      throw new RaftkaError('CORRUPT_MESSAGE', `record batch at position ${position} has magic ${magic}; only magic 2 batches are accepted`);
    }
    const size = batchSize(buffer, position);
    if (size < BATCH_HEADER_BYTES || size > remaining) {
      throw new RaftkaError('CORRUPT_MESSAGE', `record batch at position ${position} declares ${size} bytes but ${remaining} remain`);
    }
    if (size > options.maxBatchBytes) {
      throw new RaftkaError(
        'MESSAGE_TOO_LARGE',
        `record batch of ${size} bytes exceeds max.message.bytes=${options.maxBatchBytes}; send smaller batches or raise the topic's max.message.bytes`,
      );
    }
    if (!verifyBatchCrc(buffer, position)) {
      throw new RaftkaError('CORRUPT_MESSAGE', `record batch at position ${position} fails its CRC32C check`);
    }
    const lastOffsetDelta = batchLastOffsetDelta(buffer, position);
    const records = batchRecordCount(buffer, position);
    if (lastOffsetDelta < 0 || records < 0 || (options.requireDenseOffsets && lastOffsetDelta !== records - 1) || records > lastOffsetDelta + 1) {
      throw new RaftkaError(
        'CORRUPT_MESSAGE',
        `record batch at position ${position} has ${records} records but lastOffsetDelta ${lastOffsetDelta}`,
      );
    }
    positions.push(position);
    sizes.push(size);
    lastOffsetDeltas.push(lastOffsetDelta);
    maxTimestamps.push(batchMaxTimestamp(buffer, position));
    recordCount += records;
    position += size;
  }
  return { buffer, count: positions.length, positions, sizes, lastOffsetDeltas, maxTimestamps, recordCount };
}
