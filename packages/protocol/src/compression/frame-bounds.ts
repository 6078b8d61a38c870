// Upper bounds on the decompressed size of LZ4 and Zstandard frames, found by walking the block
// headers without decompressing anything.
//
// Why: the native decompressors grow their output as they go and take no size limit, and both
// formats can expand a few bytes into megabytes (LZ4 ~255:1, zstd RLE blocks far more). A batch
// arriving from the network must not be able to make the broker or a consumer allocate without
// bound, so before decompressing we prove from the frame structure that the output cannot
// exceed the caller's limit. The walk also rejects structurally broken frames early.
//
// Formats: LZ4 frame format 1.6.x (lz4/doc/lz4_Frame_format.md) — Kafka writes this (KIP-57
// fixed the header checksum for magic >= 1); Zstandard frame format, RFC 8878 section 3.1.

import { RaftkaError } from '../errors.js';

const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK_BYTES_BY_ID: Readonly<Record<number, number>> = { 4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20 };

function corrupt(message: string): RaftkaError {
  return new RaftkaError('CORRUPT_MESSAGE', message);
}

/**
 * Walks one LZ4 frame (Kafka writes exactly one per batch) and returns the most bytes it can
 * decompress to. Throws CORRUPT_MESSAGE when the frame structure is broken.
 */
export function lz4FrameDecompressedBound(data: Buffer): number {
  if (data.length < 7 || data.readUInt32LE(0) !== LZ4_MAGIC) throw corrupt('lz4 data does not start with a frame magic');
  const flags = data[4]!;
  const blockDescriptor = data[5]!;
  if (flags >> 6 !== 1) throw corrupt(`lz4 frame version ${flags >> 6} is not 1`);
  const blockChecksum = (flags & 0x10) !== 0;
  const contentSize = (flags & 0x08) !== 0;
  const contentChecksum = (flags & 0x04) !== 0;
  const dictionaryId = (flags & 0x01) !== 0;
  const blockBytesMax = LZ4_BLOCK_BYTES_BY_ID[(blockDescriptor >> 4) & 0x07];
  if (blockBytesMax === undefined) throw corrupt(`lz4 frame has an invalid block size id ${(blockDescriptor >> 4) & 0x07}`);
  let position = 6 + (contentSize ? 8 : 0) + (dictionaryId ? 4 : 0) + 1; // + header checksum byte
  let bound = 0;
  for (;;) {
    if (data.length - position < 4) throw corrupt('lz4 frame is cut off before its end mark');
    const word = data.readUInt32LE(position);
    position += 4;
    if (word === 0) break;
    const uncompressed = word >>> 31 === 1;
    const size = word & 0x7fffffff;
    if (size > blockBytesMax) throw corrupt(`lz4 block of ${size} bytes exceeds the frame's ${blockBytesMax}-byte block size`);
    position += size + (blockChecksum ? 4 : 0);
    if (position > data.length) throw corrupt('lz4 block is cut off');
    bound += uncompressed ? size : blockBytesMax;
  }
  position += contentChecksum ? 4 : 0;
  if (position !== data.length) throw corrupt(`lz4 frame ends at ${position} but the data is ${data.length} bytes long`);
  return bound;
}

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const ZSTD_SKIPPABLE_MAGIC = 0x184d2a50;
/** RFC 8878 3.1.1.2.3: no block regenerates more than 128 KiB. */
const ZSTD_BLOCK_BYTES_MAX = 128 << 10;
const ZSTD_DICTIONARY_ID_BYTES = [0, 1, 2, 4] as const;
const ZSTD_CONTENT_SIZE_BYTES = [0, 2, 4, 8] as const;

/**
 * Walks every Zstandard frame (and skippable frame) in `data` and returns the most bytes they can
 * decompress to. Throws CORRUPT_MESSAGE when the structure is broken.
 */
export function zstdFramesDecompressedBound(data: Buffer): number {
  let position = 0;
  let bound = 0;
  if (data.length === 0) throw corrupt('zstd data is empty');
  while (position < data.length) {
    if (data.length - position < 4) throw corrupt('zstd frame magic is cut off');
    const magic = data.readUInt32LE(position);
    position += 4;
    if ((magic & ZSTD_SKIPPABLE_MAGIC_MASK) >>> 0 === ZSTD_SKIPPABLE_MAGIC) {
      if (data.length - position < 4) throw corrupt('zstd skippable frame is cut off');
      position += 4 + data.readUInt32LE(position);
      if (position > data.length) throw corrupt('zstd skippable frame is cut off');
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw corrupt(`zstd frame magic 0x${magic.toString(16)} is not valid`);
    if (position >= data.length) throw corrupt('zstd frame header is cut off');
    const descriptor = data[position++]!;
    const singleSegment = (descriptor & 0x20) !== 0;
    if ((descriptor & 0x08) !== 0) throw corrupt('zstd frame header has its reserved bit set');
    const checksum = (descriptor & 0x04) !== 0;
    let contentSizeBytes: number = ZSTD_CONTENT_SIZE_BYTES[descriptor >> 6]!;
    if (contentSizeBytes === 0 && singleSegment) contentSizeBytes = 1;
    position += (singleSegment ? 0 : 1) + ZSTD_DICTIONARY_ID_BYTES[descriptor & 0x03]! + contentSizeBytes;
    for (;;) {
      if (data.length - position < 3) throw corrupt('zstd block header is cut off');
      const header = data[position]! | (data[position + 1]! << 8) | (data[position + 2]! << 16);
      position += 3;
      const last = (header & 1) === 1;
      const type = (header >> 1) & 3;
      const size = header >>> 3;
      if (size > ZSTD_BLOCK_BYTES_MAX) throw corrupt(`zstd block size ${size} exceeds ${ZSTD_BLOCK_BYTES_MAX}`);
      switch (type) {
        case 0: // raw: `size` bytes copied as they are
          position += size;
          bound += size;
          break;
        case 1: // RLE: one byte repeated `size` times
          position += 1;
          bound += size;
          break;
        case 2: // compressed: regenerates at most one full block
          position += size;
          bound += ZSTD_BLOCK_BYTES_MAX;
          break;
        default:
          throw corrupt('zstd block has the reserved block type');
      }
      if (position > data.length) throw corrupt('zstd block is cut off');
      if (last) break;
    }
    position += checksum ? 4 : 0;
    if (position > data.length) throw corrupt('zstd frame checksum is cut off');
  }
  return bound;
}
