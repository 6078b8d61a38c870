// Property tests: whatever bytes arrive, decoding either yields a batch or fails with a
// RaftkaError carrying a format error code, never another exception and never a hang. The
// first properties feed arbitrary bytes and damaged copies of valid batches (which the CRC
// must catch); the last ones fix the CRC after damaging the records, so the damage reaches the
// decompressors and the record parser.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RaftkaError } from '../../src/errors.js';
import { decodeRecordBatch, encodeRecordBatch, encodeRecordBatchSync } from '../../src/record-batch/codec.js';
import { BATCH_HEADER_BYTES, BATCH_OFFSET_CRC, computeBatchCrc, type CompressionName } from '../../src/record-batch/header.js';

const CODECS: CompressionName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const FORMAT_ERRORS = ['CORRUPT_MESSAGE', 'INVALID_RECORD'];
// A batch whose CRC matches can still announce a decompressed size past the limit.
const FORMAT_OR_SIZE_ERRORS = [...FORMAT_ERRORS, 'MESSAGE_TOO_LARGE'];
// Small limit so that a lying size field is refused rather than allocated.
const DECODE_OPTIONS = { decompressedBytesMax: 1 << 20 };

async function outcome(buffer: Buffer, position = 0): Promise<'ok' | string> {
  try {
    await decodeRecordBatch(buffer, position, DECODE_OPTIONS);
    return 'ok';
  } catch (error) {
    return error instanceof RaftkaError ? error.code : `unexpected ${String(error)}`;
  }
}

const recordArbitrary = fc.record({
  key: fc.option(fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b)), { nil: null }),
  value: fc.option(fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)), { nil: null }),
  headers: fc.array(
    fc.record({ key: fc.string({ maxLength: 6 }), value: fc.option(fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b)), { nil: null }) }),
    { maxLength: 2 },
  ),
  timestamp: fc.integer({ min: 0, max: 2 ** 42 }),
});

let validBatches: Buffer[] | undefined;
async function samples(): Promise<Buffer[]> {
  validBatches ??= await Promise.all(
    CODECS.map((compression) =>
      encodeRecordBatch({
        compression,
        baseTimestamp: 1_000,
        records: [
          { key: 'k1', value: 'value one', headers: [{ key: 'h', value: 'x' }] },
          { key: null, value: 'value two value two', timestamp: 1_010 },
          { key: 'k3', value: null },
        ],
      }),
    ),
  );
  return validBatches;
}

describe('decodeRecordBatch never fails other than with a format error', () => {
  it('on arbitrary bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (bytes) => {
        expect(FORMAT_ERRORS).toContain(await outcome(Buffer.from(bytes)));
      }),
      { numRuns: 300 },
    );
  });

  it('on arbitrary bytes behind a plausible batch header', async () => {
    // A header with the right length and magic gets past the first checks.
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: BATCH_HEADER_BYTES, maxLength: 200 }), async (bytes) => {
        const buffer = Buffer.from(bytes);
        buffer.writeInt32BE(buffer.length - 12, 8);
        buffer[16] = 2;
        expect(FORMAT_ERRORS).toContain(await outcome(buffer));
      }),
      { numRuns: 300 },
    );
  });

  it('on single-byte mutations of valid batches of every codec (the CRC catches them)', async () => {
    const batches = await samples();
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: batches.length - 1 }), fc.nat(), fc.integer({ min: 1, max: 255 }), async (which, at, xor) => {
        const batch = Buffer.from(batches[which]!);
        const index = at % batch.length;
        batch[index]! ^= xor;
        const result = await outcome(batch);
        // Bytes 0-15 (base offset, length, leader epoch) sit outside the CRC: damage there may decode.
        if (index >= 8 && index < 12) expect(FORMAT_ERRORS).toContain(result);
        else if (index < 16) expect(['ok', ...FORMAT_ERRORS]).toContain(result);
        else expect(result).toBe('CORRUPT_MESSAGE');
      }),
      { numRuns: 400 },
    );
  });

  it('on truncations of valid batches (always CORRUPT_MESSAGE)', async () => {
    const batches = await samples();
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: batches.length - 1 }), fc.nat(), async (which, cut) => {
        const batch = batches[which]!;
        expect(await outcome(batch.subarray(0, cut % batch.length))).toBe('CORRUPT_MESSAGE');
      }),
      { numRuns: 200 },
    );
  });

  it('on damaged records behind a recomputed CRC, for every codec', async () => {
    const batches = await samples();
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: batches.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.option(fc.integer({ min: -5, max: 10 }), { nil: undefined }),
        async (which, edits, recordCount) => {
          const batch = Buffer.from(batches[which]!);
          const span = batch.length - BATCH_HEADER_BYTES;
          for (const [at, value] of edits) batch[BATCH_HEADER_BYTES + (at % span)] = value;
          if (recordCount !== undefined) batch.writeInt32BE(recordCount, 57);
          batch.writeUInt32BE(computeBatchCrc(batch, 0, batch.length), BATCH_OFFSET_CRC);
          expect(['ok', ...FORMAT_OR_SIZE_ERRORS]).toContain(await outcome(batch));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('on random record bytes with a valid CRC and any codec id', async () => {
    const header = encodeRecordBatchSync({ records: [{ value: 'x', timestamp: 0 }] }).subarray(0, BATCH_HEADER_BYTES);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 7 }), fc.integer({ min: -1, max: 20 }), fc.uint8Array({ maxLength: 120 }), async (codec, count, body) => {
        const batch = Buffer.concat([header, Buffer.from(body)]);
        batch.writeInt32BE(batch.length - 12, 8);
        batch.writeInt16BE(codec, 21);
        batch.writeInt32BE(count, 57);
        batch.writeUInt32BE(computeBatchCrc(batch, 0, batch.length), BATCH_OFFSET_CRC);
        expect(['ok', ...FORMAT_OR_SIZE_ERRORS]).toContain(await outcome(batch));
      }),
      { numRuns: 400 },
    );
  });

  it('round-trips arbitrary records with every codec', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...CODECS), fc.array(recordArbitrary, { minLength: 1, maxLength: 8 }), async (compression, records) => {
        const batch = await encodeRecordBatch({ compression, records, baseOffset: 10 });
        const decoded = await decodeRecordBatch(batch);
        expect(decoded.records.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp, offset: r.offset }))).toEqual(
          records.map((r, i) => ({
            key: r.key,
            value: r.value,
            headers: r.headers.map((h) => ({ key: h.key, value: h.value })),
            timestamp: r.timestamp,
            offset: 10 + i,
          })),
        );
      }),
      { numRuns: 150 },
    );
  });
});
