// Walking a buffer that holds several record batches back to back: a segment file chunk, a
// produce request's records, a fetch response. Only headers are read (and, on request, CRCs
// checked); records are never decoded, so this is cheap enough for the broker's hot path.
//
// A buffer may end in the middle of a batch — fetch responses are cut at a size limit and a
// crashed writer leaves a torn tail — so an incomplete last batch ends the walk quietly and the
// caller learns where the complete batches end. A batch whose header cannot be valid (wrong
// magic, length shorter than a header) is CORRUPT_MESSAGE: nothing after it can be trusted.

import { RaftkaError } from '../errors.js';
import { BATCH_HEADER_BYTES, batchSizeAt, readBatchHeader, verifyBatchCrc, type RecordBatchHeader } from './header.js';

export interface BatchAt {
  header: RecordBatchHeader;
  /** Where the batch starts in the buffer; it ends at position + header.sizeInBytes. */
  position: number;
}

export interface BatchWalkOptions {
  /** Check each batch's CRC32C and throw CORRUPT_MESSAGE on a mismatch (default false). */
  verifyCrc?: boolean;
}

export interface BatchWalkResult {
  batchCount: number;
  /** Position just past the last complete batch. */
  endPosition: number;
  /** Bytes after `endPosition` that do not form a complete batch (0 when the buffer ends cleanly). */
  incompleteTailBytes: number;
}

/**
 * The header of the complete batch at `position`, or undefined when the buffer ends before that
 * batch does. Throws CORRUPT_MESSAGE for a header that cannot be valid.
 */
export function completeBatchAt(buffer: Buffer, position: number, options: BatchWalkOptions = {}): RecordBatchHeader | undefined {
  const size = batchSizeAt(buffer, position);
  if (size === undefined) return undefined;
  if (size < BATCH_HEADER_BYTES) {
    throw new RaftkaError('CORRUPT_MESSAGE', `record batch at position ${position} declares ${size} bytes, fewer than its ${BATCH_HEADER_BYTES}-byte header`);
  }
  if (size > buffer.length - position) return undefined;
  const header = readBatchHeader(buffer, position);
  if (options.verifyCrc === true && !verifyBatchCrc(buffer, position)) {
    throw new RaftkaError('CORRUPT_MESSAGE', `record batch at position ${position} fails its CRC32C check: the bytes were damaged`);
  }
  return header;
}

/** Yields every complete batch from `position` on, in order. */
export function* batchesIn(buffer: Buffer, position = 0, options: BatchWalkOptions = {}): Generator<BatchAt, void, undefined> {
  for (;;) {
    const header = completeBatchAt(buffer, position, options);
    if (header === undefined) return;
    yield { header, position };
    // Invariant: sizeInBytes >= BATCH_HEADER_BYTES > 0, so every step moves forward.
    position += header.sizeInBytes;
  }
}

/** Calls `visit` for every complete batch from `position` on and says where they end. */
export function forEachBatch(
  buffer: Buffer,
  visit: (header: RecordBatchHeader, position: number) => void,
  position = 0,
  options: BatchWalkOptions = {},
): BatchWalkResult {
  let batchCount = 0;
  for (;;) {
    const header = completeBatchAt(buffer, position, options);
    if (header === undefined) break;
    visit(header, position);
    batchCount++;
    position += header.sizeInBytes;
  }
  return { batchCount, endPosition: position, incompleteTailBytes: buffer.length - position };
}
