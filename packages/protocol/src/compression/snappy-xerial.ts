// Snappy as Kafka clients write it. The Java producer wraps snappy in snappy-java's
// SnappyOutputStream ("xerial" framing): an 8-byte magic, two int32 versions, then blocks of
// [int32 big-endian compressed length][raw snappy block], each block holding at most 32 KiB of
// input. Other clients (KafkaJS's kafkajs-snappy, librdkafka) may write one raw snappy block with
// no framing; the Java consumer's SnappyInputStream reads both, and so does this module.
//
// Raftka writes the xerial framing, byte-for-byte what the Java producer writes, so that every
// Kafka consumer reads it.
//
// Before any block is decompressed, the uncompressed length it announces (a varint at the start
// of every raw snappy block) is checked against the caller's limit: a hostile block cannot make
// the library allocate more than the limit.

import { compressSync, uncompressSync } from 'snappy';
import { RaftkaError } from '../errors.js';

/** snappy-java's stream magic: 0x82 'SNAPPY' 0x00. */
export const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
/** Magic + version (int32) + minimum compatible version (int32). */
export const XERIAL_HEADER_BYTES = 16;
const XERIAL_VERSION = 1;
const XERIAL_MIN_COMPATIBLE_VERSION = 1;
/** SnappyOutputStream's default block size, used by the Java producer. */
export const XERIAL_BLOCK_BYTES = 32 * 1024;
const BLOCK_LENGTH_BYTES = 4;

export function isXerialFramed(data: Buffer): boolean {
  return data.length >= XERIAL_HEADER_BYTES && data.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC);
}

/** Compresses `data` into xerial-framed snappy. */
export function snappyCompressXerial(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(XERIAL_HEADER_BYTES);
  XERIAL_MAGIC.copy(header, 0);
  header.writeInt32BE(XERIAL_VERSION, 8);
  header.writeInt32BE(XERIAL_MIN_COMPATIBLE_VERSION, 12);
  parts.push(header);
  let total = XERIAL_HEADER_BYTES;
  for (let start = 0; start < data.length; start += XERIAL_BLOCK_BYTES) {
    const block = compressSync(data.subarray(start, Math.min(data.length, start + XERIAL_BLOCK_BYTES)));
    const length = Buffer.allocUnsafe(BLOCK_LENGTH_BYTES);
    length.writeInt32BE(block.length, 0);
    parts.push(length, block);
    total += BLOCK_LENGTH_BYTES + block.length;
  }
  return Buffer.concat(parts, total);
}

/**
 * The uncompressed length a raw snappy block announces in its preamble (an unsigned varint of
 * at most 5 bytes), or undefined when the preamble is malformed.
 */
export function snappyUncompressedLength(block: Buffer): number | undefined {
  let value = 0;
  for (let i = 0; i < 5 && i < block.length; i++) {
    const byte = block[i]!;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if (byte < 0x80) return value;
  }
  return undefined;
}

function uncompressBlock(block: Buffer, remainingBytesMax: number): Buffer {
  const length = snappyUncompressedLength(block);
  if (length === undefined) {
    throw new RaftkaError('CORRUPT_MESSAGE', 'snappy block has a malformed length preamble');
  }
  if (length > remainingBytesMax) {
    throw new RaftkaError(
      'MESSAGE_TOO_LARGE',
      `snappy data would decompress past the limit of ${remainingBytesMax} more bytes; raise the decompression limit if this batch is legitimate`,
    );
  }
  let out: Buffer;
  try {
    out = uncompressSync(block, { asBuffer: true }) as Buffer;
  } catch (cause) {
    throw new RaftkaError('CORRUPT_MESSAGE', 'snappy data does not decompress', { cause });
  }
  return out;
}

/** Decompresses xerial-framed or raw snappy, refusing output larger than `bytesMax`. */
export function snappyDecompress(data: Buffer, bytesMax: number): Buffer {
  if (!isXerialFramed(data)) return uncompressBlock(data, bytesMax);
  const blocks: Buffer[] = [];
  let total = 0;
  let position = XERIAL_HEADER_BYTES;
  while (position < data.length) {
    if (data.length - position < BLOCK_LENGTH_BYTES) {
      throw new RaftkaError('CORRUPT_MESSAGE', `xerial snappy block length at ${position} is cut off`);
    }
    const length = data.readInt32BE(position);
    position += BLOCK_LENGTH_BYTES;
    if (length < 0 || length > data.length - position) {
      throw new RaftkaError('CORRUPT_MESSAGE', `xerial snappy block at ${position} announces ${length} bytes but ${data.length - position} remain`);
    }
    const block = uncompressBlock(data.subarray(position, position + length), bytesMax - total);
    position += length;
    blocks.push(block);
    total += block.length;
  }
  return blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks, total);
}
