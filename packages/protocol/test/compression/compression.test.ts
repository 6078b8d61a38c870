import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { compressSync as snappyRaw } from 'snappy';
import { compressFrameSync } from 'lz4-napi';
import { RaftkaError } from '../../src/errors.js';
import { compress, decompress } from '../../src/compression/index.js';
import { lz4FrameDecompressedBound, zstdFramesDecompressedBound } from '../../src/compression/frame-bounds.js';
import { isXerialFramed, snappyDecompress, XERIAL_BLOCK_BYTES } from '../../src/compression/snappy-xerial.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof RaftkaError ? error.code : `not a RaftkaError: ${String(error)}`;
  }
  return undefined;
}

const require = createRequire(import.meta.url);
const lz4js = require('lz4js') as { compress(data: Uint8Array): Uint8Array };

const text = Buffer.from('Raftka stores Kafka record batches. '.repeat(5000));

describe('compression codecs', () => {
  it('round-trips empty, small and multi-block data with every codec', async () => {
    for (const codec of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
      // Random bytes do not compress: gzip then takes its off-thread path (input over 16 KiB).
      for (const data of [Buffer.alloc(0), Buffer.from('x'), text, randomBytes(40_000)]) {
        // Buffer.equals: vitest's deep equality walks big buffers byte by byte, slowly.
        expect((await decompress(codec, await compress(codec, data))).equals(data), codec).toBe(true);
      }
    }
  });

  it('writes xerial snappy blocks of 32 KiB like snappy-java, and reads raw snappy too', () => {
    return compress('snappy', text).then((compressed) => {
      expect(isXerialFramed(compressed)).toBe(true);
      expect(compressed.readInt32BE(8)).toBe(1);
      expect(compressed.readInt32BE(12)).toBe(1);
      let blocks = 0;
      for (let position = 16; position < compressed.length; blocks++) position += 4 + compressed.readInt32BE(position);
      expect(blocks).toBe(Math.ceil(text.length / XERIAL_BLOCK_BYTES));
      expect(snappyDecompress(snappyRaw(text), text.length).equals(text)).toBe(true);
    });
  });

  it('refuses gzip output past the limit on both the inline and the off-thread path', async () => {
    for (const data of [text, randomBytes(40_000)]) {
      const compressed = await compress('gzip', data);
      await expect(decompress('gzip', compressed, data.length - 1)).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
      expect((await decompress('gzip', compressed, data.length)).length).toBe(data.length);
    }
    await expect(decompress('gzip', Buffer.alloc(20_000, 7))).rejects.toMatchObject({ code: 'CORRUPT_MESSAGE' });
  });

  it('refuses snappy whose announced size exceeds the limit before decompressing', () => {
    // A raw block announcing 2^32 - 1 bytes: the preamble alone decides.
    const liar = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
    expect(codeOf(() => snappyDecompress(liar, 1 << 20))).toBe('MESSAGE_TOO_LARGE');
    expect(codeOf(() => snappyDecompress(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80]), 1 << 20))).toBe('CORRUPT_MESSAGE');
    expect(codeOf(() => snappyDecompress(Buffer.from([0x05, 0x00]), 1 << 20))).toBe('CORRUPT_MESSAGE');
  });

  it('bounds lz4 and zstd output from the frame headers, tightly for real data', async () => {
    const lz4 = await compress('lz4', text);
    const lz4Bound = lz4FrameDecompressedBound(lz4);
    expect(lz4Bound).toBeGreaterThanOrEqual(text.length);
    // lz4-napi picks the frame's block size from the input (64 KiB to 4 MiB): the bound is within
    // one block of the real size.
    expect(lz4Bound).toBeLessThanOrEqual(text.length + 4 * 1024 * 1024);
    const zstd = await compress('zstd', text);
    const zstdBound = zstdFramesDecompressedBound(zstd);
    expect(zstdBound).toBeGreaterThanOrEqual(text.length);
    expect(zstdBound).toBeLessThan(text.length + 128 * 1024);
    // Truncated frames are refused by the walk itself.
    expect(codeOf(() => lz4FrameDecompressedBound(lz4.subarray(0, lz4.length - 1)))).toBe('CORRUPT_MESSAGE');
    expect(codeOf(() => zstdFramesDecompressedBound(zstd.subarray(0, zstd.length - 1)))).toBe('CORRUPT_MESSAGE');
    expect(codeOf(() => lz4FrameDecompressedBound(Buffer.from('not lz4 at all')))).toBe('CORRUPT_MESSAGE');
    expect(codeOf(() => zstdFramesDecompressedBound(Buffer.alloc(0)))).toBe('CORRUPT_MESSAGE');
  });

  it("writes LZ4 frames Kafka's Java reader accepts: independent blocks, no dictionary, standard block size", async () => {
    for (const data of [Buffer.from('small'), text, randomBytes(300_000)]) {
      const frame = await compress('lz4', data);
      expect(frame.readUInt32LE(0)).toBe(0x184d2204);
      const flags = frame[4]!;
      expect(flags >> 6).toBe(1); // version 01
      expect(flags & 0x20).toBe(0x20); // block independence: Kafka decompresses each block alone
      expect(flags & 0x01).toBe(0); // no dictionary id (a reserved bit for Kafka's reader)
      expect([4, 5, 6, 7]).toContain((frame[5]! >> 4) & 0x07);
    }
  });

  it('reads LZ4 frames written by other encoders: linked, stored and checksummed blocks', async () => {
    // lz4js (pure JS) links its blocks and stores incompressible input uncompressed.
    const random = randomBytes(100_000);
    for (const data of [text, random]) {
      const foreign = Buffer.from(lz4js.compress(data));
      expect((await decompress('lz4', foreign)).equals(data)).toBe(true);
    }
    const checksummed = compressFrameSync(text, { contentChecksum: true, blockChecksums: true });
    expect(checksummed[4]! & 0x14).toBe(0x14);
    expect((await decompress('lz4', checksummed)).equals(text)).toBe(true);
  });

  it('refuses a zstd RLE bomb past the limit without inflating it', async () => {
    // Frame: magic, descriptor 0 (no size, window byte), window 0x00, then RLE blocks of 128 KiB.
    const blocks: number[] = [];
    const blockCount = 64; // 8 MiB of output from ~260 bytes
    for (let i = 0; i < blockCount; i++) {
      const header = ((128 * 1024) << 3) | (1 << 1) | (i === blockCount - 1 ? 1 : 0);
      blocks.push(header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff, 0x41);
    }
    const bomb = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, ...blocks]);
    expect(zstdFramesDecompressedBound(bomb)).toBe(blockCount * 128 * 1024);
    await expect(decompress('zstd', bomb, 1 << 20)).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    expect((await decompress('zstd', bomb, 16 << 20)).length).toBe(blockCount * 128 * 1024);
  });
});
