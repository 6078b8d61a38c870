import { describe, expect, it } from 'vitest';
import { InvariantViolation, RaftkaError } from '../../src/errors.js';
import {
  decodeRecordBatch,
  decodeRecordBatchSync,
  encodeRecordBatch,
  encodeRecordBatchSync,
  type EncodeRecordBatchOptions,
} from '../../src/record-batch/codec.js';
import {
  BATCH_HEADER_BYTES,
  BATCH_OFFSET_RECORD_COUNT,
  compressionOf,
  CompressionCodec,
  computeBatchCrc,
  isControlBatch,
  isTransactionalBatch,
  LOG_OVERHEAD,
  readBatchHeader,
  setBaseOffset,
  setPartitionLeaderEpoch,
  timestampTypeOf,
  verifyBatchCrc,
  BATCH_OFFSET_CRC,
  type CompressionName,
} from '../../src/record-batch/header.js';
import type { RecordInput } from '../../src/record-batch/record.js';

const CODECS: CompressionName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const BASE_TIMESTAMP = 1_700_000_000_000;

function sampleRecords(): RecordInput[] {
  return [
    { key: 'user-1', value: 'first', timestamp: BASE_TIMESTAMP },
    { key: null, value: Buffer.from([0, 1, 2, 255]), timestamp: BASE_TIMESTAMP + 5 },
    { key: Buffer.alloc(0), value: null, timestamp: BASE_TIMESTAMP - 3 }, // tombstone, out-of-order time
    {
      key: 'with-headers',
      value: 'x'.repeat(2000),
      headers: [
        { key: 'trace-id', value: 'abc' },
        { key: 'empty', value: Buffer.alloc(0) },
        { key: 'null', value: null },
        { key: 'trace-id', value: 'duplicate keys are kept in order' },
        { key: 'ünïcödé', value: '✓' },
      ],
    },
  ];
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return error instanceof RaftkaError ? error.code : `not a RaftkaError: ${String(error)}`;
  }
  return undefined;
}

function syncCodeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof RaftkaError ? error.code : `not a RaftkaError: ${String(error)}`;
  }
  return undefined;
}

/** Rewrites the CRC so that a deliberately edited batch passes the checksum. */
function refreshCrc(batch: Buffer): Buffer {
  batch.writeUInt32BE(computeBatchCrc(batch, 0, batch.length), BATCH_OFFSET_CRC);
  return batch;
}

describe('encodeRecordBatch / decodeRecordBatch', () => {
  for (const codec of CODECS) {
    it(`round-trips keys, values, nulls, headers and timestamps with ${codec}`, async () => {
      const options: EncodeRecordBatchOptions = { compression: codec, records: sampleRecords(), baseOffset: 42 };
      const batch = await encodeRecordBatch(options);
      expect(verifyBatchCrc(batch)).toBe(true);
      const { header, records } = await decodeRecordBatch(batch);
      expect(compressionOf(header.attributes)).toBe(CompressionCodec[codec]);
      expect(header.sizeInBytes).toBe(batch.length);
      expect(header.baseOffset).toBe(42);
      expect(header.lastOffsetDelta).toBe(3);
      expect(header.recordCount).toBe(4);
      expect(header.baseTimestamp).toBe(BASE_TIMESTAMP);
      expect(header.maxTimestamp).toBe(BASE_TIMESTAMP + 5);
      expect(records.map((r) => r.offset)).toEqual([42, 43, 44, 45]);
      expect(records.map((r) => r.offsetDelta)).toEqual([0, 1, 2, 3]);
      expect(records.map((r) => r.timestamp)).toEqual([BASE_TIMESTAMP, BASE_TIMESTAMP + 5, BASE_TIMESTAMP - 3, BASE_TIMESTAMP]);
      expect(records.map((r) => r.timestampDelta)).toEqual([0, 5, -3, 0]);
      expect(records[0]!.key).toEqual(Buffer.from('user-1'));
      expect(records[0]!.value).toEqual(Buffer.from('first'));
      expect(records[1]!.key).toBeNull();
      expect(records[1]!.value).toEqual(Buffer.from([0, 1, 2, 255]));
      expect(records[2]!.key).toEqual(Buffer.alloc(0));
      expect(records[2]!.value).toBeNull();
      expect(records[3]!.value!.toString()).toBe('x'.repeat(2000));
      expect(records[3]!.headers).toEqual([
        { key: 'trace-id', value: Buffer.from('abc') },
        { key: 'empty', value: Buffer.alloc(0) },
        { key: 'null', value: null },
        { key: 'trace-id', value: Buffer.from('duplicate keys are kept in order') },
        { key: 'ünïcödé', value: Buffer.from('✓') },
      ]);
      if (codec !== 'zstd') {
        // The synchronous paths produce and read the same bytes.
        const syncBatch = encodeRecordBatchSync({ ...options, compression: codec });
        expect(syncBatch).toEqual(batch);
        expect(decodeRecordBatchSync(batch)).toEqual({ header, records });
      }
    });
  }

  it('compresses repetitive records with every codec', async () => {
    const records = Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 10}`, value: 'the same value '.repeat(20), timestamp: BASE_TIMESTAMP + i }));
    const plain = await encodeRecordBatch({ compression: 'none', records });
    for (const codec of CODECS.slice(1)) {
      const compressed = await encodeRecordBatch({ compression: codec, records });
      expect(compressed.length).toBeLessThan(plain.length / 4);
      expect((await decodeRecordBatch(compressed)).records).toEqual((await decodeRecordBatch(plain)).records);
    }
  });

  it('writes producer, transaction, control and leader-epoch fields', async () => {
    const batch = await encodeRecordBatch({
      compression: 'lz4',
      records: [{ value: 'a' }, { value: 'b' }],
      baseTimestamp: BASE_TIMESTAMP,
      baseOffset: 1000,
      partitionLeaderEpoch: 7,
      producerId: 123456789012n,
      producerEpoch: 3,
      baseSequence: 55,
      transactional: true,
      isControl: true,
    });
    const header = readBatchHeader(batch);
    expect(header).toMatchObject({
      baseOffset: 1000,
      partitionLeaderEpoch: 7,
      producerId: 123456789012n,
      producerEpoch: 3,
      baseSequence: 55,
      recordCount: 2,
    });
    expect(isTransactionalBatch(header.attributes)).toBe(true);
    expect(isControlBatch(header.attributes)).toBe(true);
    expect(timestampTypeOf(header.attributes)).toBe(0);
    const decoded = await decodeRecordBatch(batch);
    expect(decoded.records.map((r) => r.timestamp)).toEqual([BASE_TIMESTAMP, BASE_TIMESTAMP]);
  });

  it('defaults to no producer id, epoch, sequence and leader epoch, as a plain Kafka producer', () => {
    const header = readBatchHeader(encodeRecordBatchSync({ records: [{ value: 'v', timestamp: 1 }] }));
    expect(header).toMatchObject({ producerId: -1n, producerEpoch: -1, baseSequence: -1, partitionLeaderEpoch: -1, baseOffset: 0, attributes: 0 });
  });

  it('gives every record the batch maxTimestamp in a LogAppendTime batch', async () => {
    const batch = await encodeRecordBatch({
      timestampType: 1,
      records: [
        { value: 'a', timestamp: 10 },
        { value: 'b', timestamp: 30 },
      ],
    });
    expect(timestampTypeOf(readBatchHeader(batch).attributes)).toBe(1);
    expect((await decodeRecordBatch(batch)).records.map((r) => r.timestamp)).toEqual([30, 30]);
  });

  it('keeps the CRC valid when the log stamps the base offset and leader epoch', async () => {
    const batch = await encodeRecordBatch({ compression: 'gzip', records: sampleRecords() });
    setBaseOffset(batch, 0, 9_000_000_000);
    setPartitionLeaderEpoch(batch, 0, 12);
    const { header, records } = await decodeRecordBatch(batch);
    expect(header.baseOffset).toBe(9_000_000_000);
    expect(header.partitionLeaderEpoch).toBe(12);
    expect(records[3]!.offset).toBe(9_000_000_003);
  });

  it('decodes a batch at a position inside a larger buffer', async () => {
    const first = encodeRecordBatchSync({ records: [{ value: 'one', timestamp: 1 }] });
    const second = await encodeRecordBatch({ compression: 'snappy', records: [{ value: 'two', timestamp: 2 }] });
    const both = Buffer.concat([first, second, Buffer.from([1, 2, 3])]);
    const decoded = await decodeRecordBatch(both, first.length);
    expect(decoded.records[0]!.value).toEqual(Buffer.from('two'));
    expect(decodeRecordBatchSync(both, 0).records[0]!.value).toEqual(Buffer.from('one'));
  });

  it('decodes an empty batch left by compaction, whatever its codec bits', async () => {
    for (const codec of CODECS) {
      const batch = Buffer.from(encodeRecordBatchSync({ records: [{ value: 'v', timestamp: 7 }], baseOffset: 50 }).subarray(0, BATCH_HEADER_BYTES));
      batch.writeInt32BE(BATCH_HEADER_BYTES - LOG_OVERHEAD, 8);
      batch.writeInt16BE(CompressionCodec[codec], 21);
      batch.writeInt32BE(0, BATCH_OFFSET_RECORD_COUNT);
      const decoded = await decodeRecordBatch(refreshCrc(batch));
      expect(decoded.records).toEqual([]);
      expect(decoded.header.lastOffsetDelta).toBe(0);
      if (codec !== 'zstd') expect(decodeRecordBatchSync(batch).records).toEqual([]);
    }
  });

  it('refuses inputs that are caller bugs', () => {
    expect(() => encodeRecordBatchSync({ records: [] })).toThrow(InvariantViolation);
    expect(() => encodeRecordBatchSync({ records: [{ value: 'no timestamp anywhere' }] })).toThrow(InvariantViolation);
  });

  it('refuses zstd in the synchronous decoder with UNSUPPORTED_COMPRESSION_TYPE', async () => {
    const batch = await encodeRecordBatch({ compression: 'zstd', records: [{ value: 'z', timestamp: 1 }] });
    expect(syncCodeOf(() => decodeRecordBatchSync(batch))).toBe('UNSUPPORTED_COMPRESSION_TYPE');
  });
});

describe('decodeRecordBatch on malformed input', () => {
  const valid = () => encodeRecordBatchSync({ records: [{ key: 'k', value: 'v', timestamp: 5 }, { value: 'w', timestamp: 6 }] });

  it('CORRUPT_MESSAGE: bad CRC, bad magic, truncation, short length, unknown codec, bad position', async () => {
    const badCrc = valid();
    badCrc[BATCH_HEADER_BYTES + 3]! ^= 0x01;
    expect(await codeOf(decodeRecordBatch(badCrc))).toBe('CORRUPT_MESSAGE');

    const badMagic = valid();
    badMagic[16] = 1;
    expect(await codeOf(decodeRecordBatch(badMagic))).toBe('CORRUPT_MESSAGE');

    const whole = valid();
    for (const length of [0, 11, 12, 60, whole.length - 1]) {
      expect(await codeOf(decodeRecordBatch(whole.subarray(0, length)))).toBe('CORRUPT_MESSAGE');
    }

    const shortLength = valid();
    shortLength.writeInt32BE(10, 8);
    expect(await codeOf(decodeRecordBatch(shortLength))).toBe('CORRUPT_MESSAGE');

    const negativeLength = valid();
    negativeLength.writeInt32BE(-5, 8);
    expect(await codeOf(decodeRecordBatch(negativeLength))).toBe('CORRUPT_MESSAGE');

    const unknownCodec = valid();
    unknownCodec.writeInt16BE(6, 21);
    expect(await codeOf(decodeRecordBatch(refreshCrc(unknownCodec)))).toBe('CORRUPT_MESSAGE');

    expect(await codeOf(decodeRecordBatch(valid(), 10_000))).toBe('CORRUPT_MESSAGE');
    expect(await codeOf(decodeRecordBatch(valid(), -1))).toBe('CORRUPT_MESSAGE');
  });

  it('CORRUPT_MESSAGE: compressed data that does not decompress', async () => {
    for (const codec of CODECS.slice(1)) {
      const batch = await encodeRecordBatch({ compression: codec, records: sampleRecords() });
      // Overwrite the middle of the compressed payload, then make the CRC agree.
      batch.fill(0xaa, BATCH_HEADER_BYTES + 20, BATCH_HEADER_BYTES + 40);
      const code = await codeOf(decodeRecordBatch(refreshCrc(batch)));
      // Garbage inside compressed data is either undecodable or decodes to broken records.
      expect(['CORRUPT_MESSAGE', 'INVALID_RECORD'], codec).toContain(code);
    }
  });

  it('INVALID_RECORD: record count that does not match the records', async () => {
    for (const count of [0, 1, 3, 1000, 2 ** 31 - 1, -1]) {
      const batch = valid();
      batch.writeInt32BE(count, BATCH_OFFSET_RECORD_COUNT);
      expect(await codeOf(decodeRecordBatch(refreshCrc(batch))), `count ${count}`).toBe('INVALID_RECORD');
    }
  });

  it('INVALID_RECORD: key length below -1, record length past the batch, header key null', async () => {
    // One record: length, attributes 0, timestampDelta 0, offsetDelta 0, then key/value/headers.
    function batchWithRecordBody(body: number[], declaredLength = body.length): Buffer {
      const batch = encodeRecordBatchSync({ records: [{ value: null, timestamp: 0 }] });
      const head = Buffer.from(batch.subarray(0, BATCH_HEADER_BYTES));
      const lengthVarint = Buffer.from([(declaredLength << 1) & 0x7f]); // lengths < 64 fit one byte
      const result = Buffer.concat([head, lengthVarint, Buffer.from(body)]);
      result.writeInt32BE(result.length - LOG_OVERHEAD, 8);
      return refreshCrc(result);
    }
    const zigzag = (n: number) => ((n << 1) ^ (n >> 31)) & 0xff;
    // Sanity: the hand-built record shape decodes.
    const ok = await decodeRecordBatch(batchWithRecordBody([0, 0, 0, zigzag(-1), zigzag(1), 0x41, 0]));
    expect(ok.records[0]!.value).toEqual(Buffer.from('A'));

    expect(await codeOf(decodeRecordBatch(batchWithRecordBody([0, 0, 0, zigzag(-2), zigzag(-1), 0])))).toBe('INVALID_RECORD');
    expect(await codeOf(decodeRecordBatch(batchWithRecordBody([0, 0, 0, zigzag(-1), zigzag(40), 0])))).toBe('INVALID_RECORD');
    expect(await codeOf(decodeRecordBatch(batchWithRecordBody([0, 0, 0, zigzag(-1), zigzag(-1), 0], 30)))).toBe('INVALID_RECORD');
    expect(await codeOf(decodeRecordBatch(batchWithRecordBody([0, 0, 0, zigzag(-1), zigzag(-1), 0, 0xee], 6)))).toBe('INVALID_RECORD');
    // Header with a null (-1) key, and a negative header count.
    expect(await codeOf(decodeRecordBatch(batchWithRecordBody([0, 0, 0, zigzag(-1), zigzag(-1), zigzag(1), zigzag(-1), zigzag(-1)])))).toBe(
      'INVALID_RECORD',
    );
    expect(await codeOf(decodeRecordBatch(batchWithRecordBody([0, 0, 0, zigzag(-1), zigzag(-1), zigzag(-3)])))).toBe('INVALID_RECORD');
    // Header count far larger than the bytes could hold.
    expect(await codeOf(decodeRecordBatch(batchWithRecordBody([0, 0, 0, zigzag(-1), zigzag(-1), 0xfe, 0xff, 0xff, 0xff, 0x07])))).toBe(
      'INVALID_RECORD',
    );
    // A varint of six bytes inside a record is CORRUPT_MESSAGE.
    expect(await codeOf(decodeRecordBatch(batchWithRecordBody([0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])))).toBe(
      'CORRUPT_MESSAGE',
    );
  });

  it('MESSAGE_TOO_LARGE: decompression past the caller limit, refused before inflating', async () => {
    const records = [{ value: Buffer.alloc(200_000, 1), timestamp: 0 }];
    for (const codec of CODECS.slice(1)) {
      const batch = await encodeRecordBatch({ compression: codec, records });
      expect(await codeOf(decodeRecordBatch(batch, 0, { decompressedBytesMax: 100_000 })), codec).toBe('MESSAGE_TOO_LARGE');
      expect((await decodeRecordBatch(batch, 0, { decompressedBytesMax: 300_000 })).records[0]!.value!.length).toBe(200_000);
    }
  });
});

describe('records with given offset deltas (as log compaction writes them)', () => {
  it('keeps gaps between offsets and sets lastOffsetDelta to the last record', () => {
    const buffer = encodeRecordBatchSync({
      baseOffset: 100,
      baseTimestamp: 1_700_000_000_000,
      records: [
        { key: 'a', value: '1', offsetDelta: 0 },
        { key: 'b', value: '2', offsetDelta: 3 },
        { key: 'c', value: null, offsetDelta: 7 },
      ],
    });
    const decoded = decodeRecordBatchSync(buffer);
    expect(decoded.header.lastOffsetDelta).toBe(7);
    expect(decoded.records.map((record) => record.offset)).toEqual([100, 103, 107]);
    expect(decoded.records[2]!.value).toBeNull();
  });

  it('refuses offset deltas that do not start at 0 or do not increase', () => {
    expect(() => encodeRecordBatchSync({ baseTimestamp: 0, records: [{ value: 'x', offsetDelta: 1 }] })).toThrow(/offset deltas/);
    expect(() =>
      encodeRecordBatchSync({ baseTimestamp: 0, records: [{ value: 'x', offsetDelta: 0 }, { value: 'y', offsetDelta: 0 }] }),
    ).toThrow(/offset deltas/);
  });
});
