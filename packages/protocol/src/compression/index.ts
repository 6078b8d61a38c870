// The compression codecs of RecordBatch v2, behind one interface keyed by the codec id stored in
// the batch attributes (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
//
// Libraries (all with prebuilt binaries inside their npm packages, or built into Node):
//   gzip   node:zlib
//   snappy `snappy` (napi-rs, Rust snap crate), xerial framing done here (snappy-xerial.ts)
//   lz4    `lz4-napi` (napi-rs, lz4_flex), LZ4 frame format as Kafka requires (KIP-57)
//   zstd   `@mongodb-js/zstd` 1.x (napi-rs, zstd crate); Node 20's zlib has no zstd
//
// Sync versus async: snappy and lz4 run at GB/s, so a whole batch costs less on the calling
// thread than a hop to the libuv pool; gzip and zstd are slower and run on the pool in the async
// API so that a large batch does not stall the event loop. The zstd library has no synchronous
// entry point, so the synchronous API refuses zstd.
//
// Every decompression is bounded by `decompressedBytesMax`: snappy announces its output size
// up front, LZ4 and zstd are bounded by walking their frame headers (frame-bounds.ts), and zlib
// takes the limit as `maxOutputLength`.

import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import { compress as zstdCompressAsync, decompress as zstdDecompressAsync } from '@mongodb-js/zstd';
import { assertNever, RaftkaError } from '../errors.js';
import { CompressionCodec, type CompressionName } from '../record-batch/header.js';
import { lz4FrameDecompressedBound, zstdFramesDecompressedBound } from './frame-bounds.js';
import { snappyCompressXerial, snappyDecompress } from './snappy-xerial.js';

export { lz4FrameDecompressedBound, zstdFramesDecompressedBound } from './frame-bounds.js';
export { isXerialFramed, snappyCompressXerial, snappyDecompress } from './snappy-xerial.js';

/** Codecs the synchronous API supports (all but zstd, whose library is async only). */
export type SyncCompressionName = Exclude<CompressionName, 'zstd'>;

/**
 * Default ceiling on the decompressed size of one batch's records. Kafka bounds the compressed
 * batch (max.message.bytes, 1 MiB by default); this bounds what a hostile or broken batch can
 * make a reader allocate after decompression.
 */
export const DECOMPRESSED_BYTES_MAX_DEFAULT = 256 * 1024 * 1024;

/**
 * Compressed gzip inputs up to this size are inflated on the calling thread: measured on 16 KiB
 * batches, the libuv round trips of async zlib (one per output chunk) made it 3x slower than
 * gunzipSync, while inflating this much takes well under a millisecond.
 */
const GZIP_SYNC_DECOMPRESS_BYTES_MAX = 16 * 1024;
/** Output chunk of async zlib: larger chunks mean fewer thread-pool round trips per batch. */
const ZLIB_CHUNK_BYTES = 128 * 1024;

/** Kafka's default levels: gzip as java.util.zip (6), zstd 3 (KIP-390). */
const GZIP_LEVEL = 6;
const ZSTD_LEVEL = 3;

const gzipAsync = promisify(zlib.gzip);
const gunzipAsync = promisify(zlib.gunzip);

export function codecName(codecId: number): CompressionName {
  switch (codecId) {
    case CompressionCodec.none:
      return 'none';
    case CompressionCodec.gzip:
      return 'gzip';
    case CompressionCodec.snappy:
      return 'snappy';
    case CompressionCodec.lz4:
      return 'lz4';
    case CompressionCodec.zstd:
      return 'zstd';
    default:
      throw new RaftkaError('CORRUPT_MESSAGE', `unknown compression codec id ${codecId} in record batch attributes`);
  }
}

export function compressSync(codec: SyncCompressionName, data: Buffer): Buffer {
  switch (codec) {
    case 'none':
      return data;
    case 'gzip':
      return zlib.gzipSync(data, { level: GZIP_LEVEL });
    case 'snappy':
      return snappyCompressXerial(data);
    case 'lz4':
      return lz4CompressFrame(data);
    default:
      return assertNever(codec, 'compression codec');
  }
}

export async function compress(codec: CompressionName, data: Buffer): Promise<Buffer> {
  switch (codec) {
    case 'none':
    case 'snappy':
    case 'lz4':
      return compressSync(codec, data);
    case 'gzip':
      return gzipAsync(data, { level: GZIP_LEVEL, chunkSize: ZLIB_CHUNK_BYTES });
    case 'zstd':
      return zstdCompressAsync(data, ZSTD_LEVEL);
    default:
      return assertNever(codec, 'compression codec');
  }
}

function lz4CompressFrame(data: Buffer): Buffer {
  // lz4_flex's defaults suit Kafka's reader (KafkaLZ4BlockInputStream): independent blocks
  // (Kafka decompresses each block on its own), no dictionary id, no checksums. The block size is
  // picked from the input (64 KiB to 4 MiB); Kafka's reader accepts every standard size.
  return compressFrameSync(data);
}

function tooLarge(codec: CompressionName, bytesMax: number): RaftkaError {
  return new RaftkaError(
    'MESSAGE_TOO_LARGE',
    `${codec} records would decompress past the limit of ${bytesMax} bytes; raise the decompression limit if this batch is legitimate`,
  );
}

function corruptData(codec: CompressionName, cause: unknown): RaftkaError {
  return new RaftkaError('CORRUPT_MESSAGE', `${codec} records in the batch do not decompress`, { cause });
}

function isZlibTooLarge(error: unknown): boolean {
  return error instanceof RangeError || (error as { code?: string } | null)?.code === 'ERR_BUFFER_TOO_LARGE';
}

function lz4Decompress(data: Buffer, bytesMax: number): Buffer {
  if (lz4FrameDecompressedBound(data) > bytesMax) throw tooLarge('lz4', bytesMax);
  try {
    return decompressFrameSync(data);
  } catch (cause) {
    throw corruptData('lz4', cause);
  }
}

/** Decompresses the records section of a batch; throws for zstd (use `decompress`). */
export function decompressSync(codec: CompressionName, data: Buffer, bytesMax = DECOMPRESSED_BYTES_MAX_DEFAULT): Buffer {
  switch (codec) {
    case 'none':
      return data;
    case 'gzip':
      try {
        return zlib.gunzipSync(data, { maxOutputLength: bytesMax });
      } catch (cause) {
        throw isZlibTooLarge(cause) ? tooLarge(codec, bytesMax) : corruptData(codec, cause);
      }
    case 'snappy':
      return snappyDecompress(data, bytesMax);
    case 'lz4':
      return lz4Decompress(data, bytesMax);
    case 'zstd':
      throw new RaftkaError(
        'UNSUPPORTED_COMPRESSION_TYPE',
        'zstd batches can only be decoded with the asynchronous API (decodeRecordBatch)',
      );
    default:
      return assertNever(codec, 'compression codec');
  }
}

/** Decompresses the records section of a batch. */
export async function decompress(codec: CompressionName, data: Buffer, bytesMax = DECOMPRESSED_BYTES_MAX_DEFAULT): Promise<Buffer> {
  switch (codec) {
    case 'none':
    case 'snappy':
    case 'lz4':
      return decompressSync(codec, data, bytesMax);
    case 'gzip':
      if (data.length <= GZIP_SYNC_DECOMPRESS_BYTES_MAX) return decompressSync(codec, data, bytesMax);
      try {
        return await gunzipAsync(data, { maxOutputLength: bytesMax, chunkSize: ZLIB_CHUNK_BYTES });
      } catch (cause) {
        throw isZlibTooLarge(cause) ? tooLarge(codec, bytesMax) : corruptData(codec, cause);
      }
    case 'zstd': {
      if (zstdFramesDecompressedBound(data) > bytesMax) throw tooLarge(codec, bytesMax);
      try {
        return await zstdDecompressAsync(data);
      } catch (cause) {
        throw corruptData(codec, cause);
      }
    }
    default:
      return assertNever(codec, 'compression codec');
  }
}
