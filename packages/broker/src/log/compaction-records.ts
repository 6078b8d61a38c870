// Re-encoding of the records the log cleaner retains from a batch. Compaction keeps each
// record's original offset, so the rewritten batch has gaps between offset deltas; it inherits
// the original batch's producer fields, leader epoch, timestamp type and transactional/control
// bits, and is written uncompressed (Kafka recompresses; Raftka trades size for a simpler,
// faster cleaner). The encoding itself is @raftka/protocol's.

import {
  ATTRIBUTE_CONTROL_MASK,
  ATTRIBUTE_TRANSACTIONAL_MASK,
  encodeRecordBatchSync,
  invariant,
  timestampTypeOf,
  type DecodedRecord,
  type RecordBatchHeader,
} from '@raftka/protocol';

/**
 * Encodes retained records (non-empty, offsets increasing, possibly with gaps) as one
 * uncompressed batch whose base offset is the first record's offset.
 */
export function encodeCompactedBatch(records: readonly DecodedRecord[], original: RecordBatchHeader): Buffer {
  invariant(records.length > 0, 'a compacted batch keeps at least one record');
  const baseOffset = records[0]!.offset;
  return encodeRecordBatchSync({
    records: records.map((record) => ({
      key: record.key,
      value: record.value,
      headers: record.headers,
      timestamp: record.timestamp,
      offsetDelta: record.offset - baseOffset,
    })),
    compression: 'none',
    baseOffset,
    partitionLeaderEpoch: original.partitionLeaderEpoch,
    // LogAppendTime batches: the decoder gave every record the batch's max timestamp, so the
    // rewritten batch keeps that max timestamp.
    timestampType: timestampTypeOf(original.attributes),
    producerId: original.producerId,
    producerEpoch: original.producerEpoch,
    baseSequence: original.baseSequence,
    transactional: (original.attributes & ATTRIBUTE_TRANSACTIONAL_MASK) !== 0,
    isControl: (original.attributes & ATTRIBUTE_CONTROL_MASK) !== 0,
  });
}
