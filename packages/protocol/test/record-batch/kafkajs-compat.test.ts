// Cross-checks against KafkaJS's own RecordBatch v2 encoder and decoder, an independent
// implementation of the same format: batches KafkaJS encodes must decode identically here, and
// batches encoded here must decode in KafkaJS. Compression goes through codecs registered with
// KafkaJS the way its users do:
//   snappy  kafkajs-snappy (snappyjs, pure JS; writes raw snappy, reads raw and xerial)
//   lz4     lz4js (pure JS LZ4 frames with linked blocks and uncompressed blocks), wrapped as a
//           KafkaJS codec. kafkajs-lz4 needs the `lz4` package's native addon compiled at install
//           time (its bundled binary does not load on Linux), so it is not used.
//   zstd    @kafkajs/zstd compiles a native addon (cppzst) at install time, so the codec here is
//           the same two-line adapter (a zstd frame of the records) over the zstd library Raftka
//           already ships: this checks KafkaJS's framing of zstd batches, not a second zstd.
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { compress as zstdCompress, decompress as zstdDecompress } from '@mongodb-js/zstd';
import { decodeRecordBatch, encodeRecordBatch } from '../../src/record-batch/codec.js';
import { CompressionCodec, readBatchHeader, type CompressionName } from '../../src/record-batch/header.js';
import type { RecordInput } from '../../src/record-batch/record.js';

const require = createRequire(import.meta.url);

interface KafkaJSEncoder {
  buffer: Buffer;
}
interface KafkaJSCodec {
  compress(encoder: KafkaJSEncoder): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}
interface KafkaJSDecodedRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: { [key: string]: Buffer | Buffer[] };
  offset: string;
  timestamp: string;
}
interface KafkaJSDecodedBatch {
  firstOffset: string;
  firstTimestamp: string;
  maxTimestamp: string;
  partitionLeaderEpoch: number;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
  inTransaction: boolean;
  lastOffsetDelta: number;
  records: KafkaJSDecodedRecord[];
}

const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch: (options: object) => Promise<KafkaJSEncoder>;
};
const KafkaJSRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (options: object) => unknown;
const kafkajsDecodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (decoder: unknown) => Promise<KafkaJSDecodedBatch>;
const KafkaJSDecoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;
const Long = require('kafkajs/src/utils/long') as { fromValue(value: string | number): unknown };
const { Codecs, Types } = require('kafkajs/src/protocol/message/compression') as {
  Codecs: { [type: number]: () => KafkaJSCodec };
  Types: { None: number; GZIP: number; Snappy: number; LZ4: number; ZSTD: number };
};
const SnappyCodec = require('kafkajs-snappy') as () => KafkaJSCodec;
const lz4js = require('lz4js') as { compress(data: Uint8Array): Uint8Array; decompress(data: Uint8Array): Uint8Array };

const KAFKAJS_TYPES: Record<CompressionName, number> = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 };
const CODECS: CompressionName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const BASE_TIMESTAMP = 1_650_000_000_000;

beforeAll(() => {
  Codecs[Types.Snappy] = SnappyCodec;
  Codecs[Types.LZ4] = () => ({
    compress: async (encoder) => Buffer.from(lz4js.compress(encoder.buffer)),
    decompress: async (buffer) => Buffer.from(lz4js.decompress(buffer)),
  });
  Codecs[Types.ZSTD] = () => ({
    compress: (encoder) => zstdCompress(encoder.buffer, 3),
    decompress: (buffer) => zstdDecompress(buffer),
  });
});

// KafkaJS cannot encode a null header value, and represents headers as an object, so the shared
// sample sticks to what both sides express.
interface SharedRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: { [key: string]: Buffer };
  timestampDelta: number;
}

const RECORDS: SharedRecord[] = [
  { key: Buffer.from('key-0'), value: Buffer.from('value-0'), headers: { trace: Buffer.from('t0') }, timestampDelta: 0 },
  { key: null, value: Buffer.from('value-1 '.repeat(300)), headers: {}, timestampDelta: 17 },
  { key: Buffer.from('key-2'), value: null, headers: { a: Buffer.from('1'), b: Buffer.alloc(0) }, timestampDelta: -4 },
  { key: Buffer.alloc(0), value: Buffer.alloc(0), headers: {}, timestampDelta: 2 ** 33 },
];

function kafkajsHeadersAsList(headers: { [key: string]: Buffer | Buffer[] }): { key: string; value: Buffer }[] {
  return Object.entries(headers).flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).map((v) => ({ key, value: v })));
}

describe('compatibility with KafkaJS RecordBatch v2', () => {
  for (const codec of CODECS) {
    it(`decodes what KafkaJS encodes with ${codec}`, async () => {
      const maxTimestamp = BASE_TIMESTAMP + Math.max(...RECORDS.map((r) => r.timestampDelta));
      const encoded = await RecordBatch({
        compression: KAFKAJS_TYPES[codec],
        firstOffset: Long.fromValue('5000000000'),
        firstTimestamp: BASE_TIMESTAMP,
        maxTimestamp,
        partitionLeaderEpoch: 9,
        lastOffsetDelta: RECORDS.length - 1,
        transactional: true,
        producerId: Long.fromValue('4242'),
        producerEpoch: 2,
        firstSequence: 100,
        records: RECORDS.map((r, i) => KafkaJSRecord({ ...r, offsetDelta: i })),
      });
      const { header, records } = await decodeRecordBatch(encoded.buffer);
      expect(header).toMatchObject({
        baseOffset: 5_000_000_000,
        partitionLeaderEpoch: 9,
        baseTimestamp: BASE_TIMESTAMP,
        maxTimestamp,
        producerId: 4242n,
        producerEpoch: 2,
        baseSequence: 100,
        recordCount: RECORDS.length,
        lastOffsetDelta: RECORDS.length - 1,
        sizeInBytes: encoded.buffer.length,
      });
      expect(header.attributes & 0x07).toBe(CompressionCodec[codec]);
      expect(records).toHaveLength(RECORDS.length);
      records.forEach((record, i) => {
        const expected = RECORDS[i]!;
        expect(record.offset).toBe(5_000_000_000 + i);
        expect(record.timestamp).toBe(BASE_TIMESTAMP + expected.timestampDelta);
        expect(record.key).toEqual(expected.key);
        expect(record.value).toEqual(expected.value);
        expect(record.headers).toEqual(kafkajsHeadersAsList(expected.headers));
      });
    });

    it(`encodes what KafkaJS decodes with ${codec}`, async () => {
      const inputs: RecordInput[] = RECORDS.map((r) => ({
        key: r.key,
        value: r.value,
        headers: kafkajsHeadersAsList(r.headers),
        timestamp: BASE_TIMESTAMP + r.timestampDelta,
      }));
      const batch = await encodeRecordBatch({
        compression: codec,
        records: inputs,
        baseOffset: 77,
        partitionLeaderEpoch: 3,
        producerId: 99n,
        producerEpoch: 1,
        baseSequence: 10,
      });
      const decoded = await kafkajsDecodeBatch(new KafkaJSDecoder(batch));
      expect(decoded).toMatchObject({
        firstOffset: '77',
        firstTimestamp: String(BASE_TIMESTAMP),
        maxTimestamp: String(readBatchHeader(batch).maxTimestamp),
        partitionLeaderEpoch: 3,
        producerId: '99',
        producerEpoch: 1,
        firstSequence: 10,
        inTransaction: false,
        lastOffsetDelta: RECORDS.length - 1,
      });
      expect(decoded.records).toHaveLength(RECORDS.length);
      decoded.records.forEach((record, i) => {
        const expected = RECORDS[i]!;
        expect(record.offset).toBe(String(77 + i));
        expect(record.timestamp).toBe(String(BASE_TIMESTAMP + expected.timestampDelta));
        expect(record.key).toEqual(expected.key);
        expect(record.value).toEqual(expected.value);
        expect(record.headers).toEqual(expected.headers);
      });
    });
  }

  it('writes xerial-framed snappy (as the Java producer) that KafkaJS reads, where kafkajs-snappy writes raw', async () => {
    const snappy = SnappyCodec();
    const data = Buffer.from('snappy '.repeat(10_000)); // three 32 KiB xerial blocks
    const ours = await encodeRecordBatch({ compression: 'snappy', records: [{ value: data, timestamp: 0 }] });
    const compressed = ours.subarray(61);
    expect(compressed.subarray(0, 8)).toEqual(Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]));
    const viaKafkaJS = await kafkajsDecodeBatch(new KafkaJSDecoder(ours));
    expect(viaKafkaJS.records[0]!.value!.equals(data)).toBe(true);
    const raw = await snappy.compress({ buffer: data });
    expect(raw.subarray(0, 8).equals(compressed.subarray(0, 8))).toBe(false);
  });
});
