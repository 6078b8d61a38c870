// Re-encoding of records the log cleaner retains. Compaction keeps each record's original
// offset, so a rewritten batch can have gaps between offset deltas; @raftka/protocol's
// `encodeRecordBatch` numbers records densely from its base offset, so the cleaner writes its
// batches here (uncompressed). Decoding uses the protocol decoder.
//
// Record layout (Kafka RecordBatch v2): length varint, attributes int8, timestampDelta varlong,
// offsetDelta varint, keyLength varint (-1 = null), key, valueLength varint (-1 = null), value,
// headerCount varint, then per header: keyLength varint, key, valueLength varint, value.

import {
  ATTRIBUTE_COMPRESSION_MASK,
  ATTRIBUTE_TIMESTAMP_TYPE_MASK,
  BATCH_HEADER_BYTES,
  BATCH_OFFSET_ATTRIBUTES,
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
  LOG_OVERHEAD,
  RECORD_BATCH_MAGIC,
  computeBatchCrc,
  invariant,
  varintSize,
  varlongSize,
  writeVarint,
  writeVarlong,
  type DecodedRecord,
} from '@raftka/protocol';

/** The batch-level fields a rewritten batch inherits from the batch it came from. */
export interface BatchAttributes {
  partitionLeaderEpoch: number;
  attributes: number;
  /** The original max timestamp, kept for LogAppendTime batches (their records carry none). */
  maxTimestamp: number;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
}

export function readBatchAttributes(buffer: Buffer, position: number): BatchAttributes {
  return {
    partitionLeaderEpoch: buffer.readInt32BE(position + BATCH_OFFSET_PARTITION_LEADER_EPOCH),
    attributes: buffer.readInt16BE(position + BATCH_OFFSET_ATTRIBUTES),
    maxTimestamp: Number(buffer.readBigInt64BE(position + BATCH_OFFSET_MAX_TIMESTAMP)),
    producerId: buffer.readBigInt64BE(position + BATCH_OFFSET_PRODUCER_ID),
    producerEpoch: buffer.readInt16BE(position + BATCH_OFFSET_PRODUCER_EPOCH),
    baseSequence: buffer.readInt32BE(position + BATCH_OFFSET_BASE_SEQUENCE),
  };
}

/**
 * Encodes retained records (non-empty, offsets increasing, possibly with gaps) as one
 * uncompressed batch whose base offset is the first record's offset.
 */
export function encodeCompactedBatch(records: readonly DecodedRecord[], batch: BatchAttributes): Buffer {
  invariant(records.length > 0, 'a compacted batch keeps at least one record');
  const baseOffset = records[0]!.offset;
  const baseTimestamp = records[0]!.timestamp;
  const logAppendTime = (batch.attributes & ATTRIBUTE_TIMESTAMP_TYPE_MASK) !== 0;
  let maxTimestamp = baseTimestamp;
  const bodySizes: number[] = [];
  let total = BATCH_HEADER_BYTES;
  for (const record of records) {
    if (record.timestamp > maxTimestamp) maxTimestamp = record.timestamp;
    const body = recordBodySize(record, baseOffset, baseTimestamp);
    bodySizes.push(body);
    total += varintSize(body) + body;
  }
  if (logAppendTime) maxTimestamp = batch.maxTimestamp;
  const buffer = Buffer.alloc(total);
  let position = BATCH_HEADER_BYTES;
  for (let index = 0; index < records.length; index++) {
    const record = records[index]!;
    position = writeVarint(buffer, position, bodySizes[index]!);
    buffer.writeInt8(0, position++);
    position = writeVarlong(buffer, position, record.timestamp - baseTimestamp);
    position = writeVarint(buffer, position, record.offset - baseOffset);
    position = writeBytes(buffer, position, record.key);
    position = writeBytes(buffer, position, record.value);
    position = writeVarint(buffer, position, record.headers.length);
    for (const header of record.headers) {
      position = writeBytes(buffer, position, Buffer.from(header.key, 'utf8'));
      position = writeBytes(buffer, position, header.value);
    }
  }
  invariant(position === total, 'compacted batch size computed wrongly');
  buffer.writeBigInt64BE(BigInt(baseOffset), 0);
  buffer.writeInt32BE(total - LOG_OVERHEAD, BATCH_OFFSET_LENGTH);
  buffer.writeInt32BE(batch.partitionLeaderEpoch, BATCH_OFFSET_PARTITION_LEADER_EPOCH);
  buffer.writeInt8(RECORD_BATCH_MAGIC, BATCH_OFFSET_MAGIC);
  buffer.writeInt16BE(batch.attributes & ~ATTRIBUTE_COMPRESSION_MASK, BATCH_OFFSET_ATTRIBUTES);
  buffer.writeInt32BE(records[records.length - 1]!.offset - baseOffset, BATCH_OFFSET_LAST_OFFSET_DELTA);
  buffer.writeBigInt64BE(BigInt(baseTimestamp), BATCH_OFFSET_BASE_TIMESTAMP);
  buffer.writeBigInt64BE(BigInt(maxTimestamp), BATCH_OFFSET_MAX_TIMESTAMP);
  buffer.writeBigInt64BE(batch.producerId, BATCH_OFFSET_PRODUCER_ID);
  buffer.writeInt16BE(batch.producerEpoch, BATCH_OFFSET_PRODUCER_EPOCH);
  buffer.writeInt32BE(batch.baseSequence, BATCH_OFFSET_BASE_SEQUENCE);
  buffer.writeInt32BE(records.length, BATCH_OFFSET_RECORD_COUNT);
  buffer.writeUInt32BE(computeBatchCrc(buffer, 0, buffer.length), BATCH_OFFSET_CRC);
  return buffer;
}

function bytesFieldSize(value: Buffer | null): number {
  return value === null ? varintSize(-1) : varintSize(value.length) + value.length;
}

function recordBodySize(record: DecodedRecord, baseOffset: number, baseTimestamp: number): number {
  let size = 1 + varlongSize(record.timestamp - baseTimestamp) + varintSize(record.offset - baseOffset);
  size += bytesFieldSize(record.key) + bytesFieldSize(record.value) + varintSize(record.headers.length);
  for (const header of record.headers) size += bytesFieldSize(Buffer.from(header.key, 'utf8')) + bytesFieldSize(header.value);
  return size;
}

function writeBytes(buffer: Buffer, position: number, value: Buffer | null): number {
  if (value === null) return writeVarint(buffer, position, -1);
  const at = writeVarint(buffer, position, value.length);
  value.copy(buffer, at);
  return at + value.length;
}
