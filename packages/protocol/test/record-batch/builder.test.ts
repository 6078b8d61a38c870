import { describe, expect, it } from 'vitest';
import { RecordBatchBuilder, recordBytesWithDeltas, recordFieldsBytes } from '../../src/record-batch/builder.js';
import { decodeRecordBatch, decodeRecordBatchSync, encodeRecordBatch, encodeRecordBatchSync } from '../../src/record-batch/codec.js';
import type { CompressionName } from '../../src/record-batch/header.js';
import type { RecordInput } from '../../src/record-batch/record.js';

const BASE_TIMESTAMP = 1_700_000_000_000;

function build(records: readonly RecordInput[], initialCapacityBytes?: number): RecordBatchBuilder {
  const builder = new RecordBatchBuilder(records[0]!.timestamp!, initialCapacityBytes === undefined ? {} : { initialCapacityBytes });
  for (const record of records) {
    const fieldsBytes = recordFieldsBytes(record.key, record.value, record.headers);
    const before = builder.sizeBytes;
    const expected = builder.nextRecordBytes(fieldsBytes, record.timestamp!);
    builder.append(record.key, record.value, record.headers, record.timestamp!, fieldsBytes);
    expect(builder.sizeBytes - before).toBe(expected);
  }
  return builder;
}

// Keys, headers (repeated names, null values, multi-byte UTF-8), null values, empty values,
// timestamp deltas that are negative, zero and large, and a value that forces the buffer to grow.
const MIXED: RecordInput[] = [
  { key: 'k1', value: 'v1', timestamp: BASE_TIMESTAMP },
  { key: null, value: Buffer.from([1, 2, 3]), timestamp: BASE_TIMESTAMP + 3 },
  { key: Buffer.alloc(0), value: null, timestamp: BASE_TIMESTAMP - 5 },
  { value: '', headers: [{ key: 'h', value: 'x' }, { key: 'h', value: null }, { key: 'ü', value: Buffer.from('é') }], timestamp: BASE_TIMESTAMP + 1_000_000_000 },
  { key: 'ключ', value: Buffer.from([9, 8, 7]), headers: [], timestamp: BASE_TIMESTAMP },
  { key: 'big', value: Buffer.alloc(10_000, 7), timestamp: BASE_TIMESTAMP + 200 },
  ...Array.from({ length: 200 }, (_, index): RecordInput => ({ value: `value-${index}`, timestamp: BASE_TIMESTAMP + index })),
];

describe('RecordBatchBuilder', () => {
  it('writes the same bytes as encodeRecordBatchSync for the same records', () => {
    for (const records of [MIXED, MIXED.slice(0, 1), MIXED.slice(2, 4)]) {
      const built = build(records, 64).build({ producerId: 77, producerEpoch: 3, baseSequence: 1000 });
      const encoded = encodeRecordBatchSync({ records, baseTimestamp: records[0]!.timestamp!, producerId: 77, producerEpoch: 3, baseSequence: 1000 });
      expect(built.equals(encoded)).toBe(true);
    }
    const plain = build(MIXED).build();
    expect(plain.equals(encodeRecordBatchSync({ records: MIXED, baseTimestamp: BASE_TIMESTAMP }))).toBe(true);
    expect(plain.length).toBe(build(MIXED).sizeBytes);
  });

  it('decodes back to the records appended', () => {
    const decoded = decodeRecordBatchSync(build(MIXED).build());
    expect(decoded.records.map((record) => record.timestamp)).toEqual(MIXED.map((record) => record.timestamp));
    expect(decoded.records[3]!.headers.map((header) => [header.key, header.value?.toString() ?? null])).toEqual([
      ['h', 'x'],
      ['h', null],
      ['ü', 'é'],
    ]);
    expect(decoded.records[2]!.value).toBeNull();
    expect(decoded.header.maxTimestamp).toBe(BASE_TIMESTAMP + 1_000_000_000);
  });

  it('matches encodeRecordBatch with every codec', async () => {
    const codecs: CompressionName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
    for (const compression of codecs) {
      const built = await build(MIXED).buildAsync({ compression, producerId: 5, producerEpoch: 0, baseSequence: 9 });
      const encoded = await encodeRecordBatch({ records: MIXED, baseTimestamp: BASE_TIMESTAMP, compression, producerId: 5, producerEpoch: 0, baseSequence: 9 });
      expect(built.equals(encoded), compression).toBe(true);
      const decoded = await decodeRecordBatch(built);
      expect(decoded.records.map((record) => record.value?.length ?? null)).toEqual(MIXED.map((record) => (record.value === null ? null : Buffer.from(record.value).length)));
    }
    const lz4 = build(MIXED).build({ compression: 'lz4' });
    expect(lz4.equals(encodeRecordBatchSync({ records: MIXED, baseTimestamp: BASE_TIMESTAMP, compression: 'lz4' }))).toBe(true);
  });

  it('rebuilds a retried batch as a copy with new producer fields, leaving the first bytes intact', () => {
    const builder = build(MIXED.slice(0, 3));
    const first = builder.build({ producerId: 1, producerEpoch: 0, baseSequence: 0 });
    const firstCopy = Buffer.from(first);
    const second = builder.build({ producerId: 1, producerEpoch: 1, baseSequence: 0 });
    expect(first.equals(firstCopy)).toBe(true);
    expect(decodeRecordBatchSync(second).header.producerEpoch).toBe(1);
    expect(() => builder.append(null, 'late', undefined, BASE_TIMESTAMP, recordFieldsBytes(null, 'late', undefined))).toThrow(/built/);
  });

  it('sizes records as the encoder does', () => {
    for (const record of MIXED) {
      const fieldsBytes = recordFieldsBytes(record.key, record.value, record.headers);
      const alone = encodeRecordBatchSync({ records: [{ ...record, timestamp: BASE_TIMESTAMP }], baseTimestamp: BASE_TIMESTAMP });
      expect(recordBytesWithDeltas(fieldsBytes, 0, 0) + 61).toBe(alone.length);
    }
  });
});

describe('RecordBatchBuilder with Uint8Array fields', () => {
  it('writes a Uint8Array as the same bytes as a Buffer', () => {
    const asArray = new RecordBatchBuilder(BASE_TIMESTAMP);
    const asBuffer = new RecordBatchBuilder(BASE_TIMESTAMP);
    const bytes = new Uint8Array([9, 8, 7]);
    asArray.append(bytes, bytes, [{ key: 'h', value: 'x' }], BASE_TIMESTAMP, recordFieldsBytes(bytes, bytes, [{ key: 'h', value: 'x' }]));
    asBuffer.append(Buffer.from(bytes), Buffer.from(bytes), [{ key: 'h', value: 'x' }], BASE_TIMESTAMP, recordFieldsBytes(Buffer.from(bytes), Buffer.from(bytes), [{ key: 'h', value: 'x' }]));
    expect(asArray.build().equals(asBuffer.build())).toBe(true);
  });
});

describe('RecordBatchBuilder buffer reuse', () => {
  it('builds the same bytes in a recycled buffer, and ends the builder that gave it up', () => {
    const first = build(MIXED.slice(0, 5));
    const expected = Buffer.from(first.build());
    const recycled = first.takeBuffer();
    expect(() => first.build()).toThrow();
    recycled.fill(0xee);
    const second = new RecordBatchBuilder(BASE_TIMESTAMP, { buffer: recycled });
    for (const record of MIXED.slice(0, 5)) second.append(record.key, record.value, record.headers, record.timestamp!, recordFieldsBytes(record.key, record.value, record.headers));
    expect(second.build().equals(expected)).toBe(true);
  });
});
