// Benchmark of the record batch codec, printing figures (not a test):
//
//   node packages/protocol/dist/bench/codec-bench.js [--seconds-per-case=1]
//
// 1. CRC32C throughput for 16 KiB and 1 MiB buffers: @node-rs/crc32 (the library the broker's
//    hot path uses, one checksum per batch) against the alternatives that are installed (see
//    loadAlternativeCrcs); they are loaded dynamically so the benchmark runs without them.
// 2. Encode and decode throughput of whole batches per codec: 1 KiB records, 16 per batch
//    (~16 KiB, a typical producer batch), payload measured as the bytes of the record values.
// 3. The raw compressors on the same 16 KiB of records, to separate codec cost from batch cost.
//
// The record values are JSON-like text from a seeded generator, so runs are repeatable and the
// data compresses the way event payloads usually do (neither random nor trivially repetitive).

import { crc32c } from '@node-rs/crc32';
import { compress, decompress, type SyncCompressionName } from '../compression/index.js';
import { decodeRecordBatch, decodeRecordBatchSync, encodeRecordBatch, encodeRecordBatchSync } from '../record-batch/codec.js';
import type { CompressionName } from '../record-batch/header.js';
import type { RecordInput } from '../record-batch/record.js';

const RECORD_VALUE_BYTES = 1024;
const RECORDS_PER_BATCH = 16;
const CODECS: readonly CompressionName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const WARMUP_FRACTION = 0.25;

function secondsPerCase(): number {
  const flag = process.argv.find((arg) => arg.startsWith('--seconds-per-case='));
  const seconds = flag === undefined ? 1 : Number(flag.split('=')[1]);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`--seconds-per-case must be a positive number, got ${flag}`);
  return seconds;
}

/** Deterministic generator (mulberry32) so every run benchmarks the same bytes. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ['order', 'created', 'shipped', 'customer', 'amount', 'currency', 'EUR', 'USD', 'warehouse', 'status', 'priority', 'region'];

function jsonLikeValue(random: () => number, bytes: number): Buffer {
  let text = '';
  while (text.length < bytes) {
    const word = WORDS[Math.floor(random() * WORDS.length)]!;
    text += `"${word}":${Math.floor(random() * 1_000_000)},`;
  }
  return Buffer.from(text.slice(0, bytes), 'latin1');
}

function makeRecords(random: () => number): RecordInput[] {
  return Array.from({ length: RECORDS_PER_BATCH }, (_, i) => ({
    key: `customer-${Math.floor(random() * 10_000)}`,
    value: jsonLikeValue(random, RECORD_VALUE_BYTES),
    headers: [{ key: 'source', value: 'bench' }],
    timestamp: 1_700_000_000_000 + i,
  }));
}

interface Measurement {
  operations: number;
  seconds: number;
}

/** Runs `operation` for `seconds` after a warm-up; returns the count measured. */
async function measure(seconds: number, operation: () => unknown): Promise<Measurement> {
  const warmupEnd = performance.now() + seconds * WARMUP_FRACTION * 1000;
  while (performance.now() < warmupEnd) await operation();
  let operations = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    // Check the clock every few operations: it is not free at small sizes.
    for (let i = 0; i < 8; i++) await operation();
    operations += 8;
    now = performance.now();
  }
  return { operations, seconds: (now - start) / 1000 };
}

function syncMeasure(seconds: number, operation: () => unknown): Measurement {
  const warmupEnd = performance.now() + seconds * WARMUP_FRACTION * 1000;
  while (performance.now() < warmupEnd) operation();
  let operations = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 8; i++) operation();
    operations += 8;
    now = performance.now();
  }
  return { operations, seconds: (now - start) / 1000 };
}

function rate(m: Measurement, bytesPerOperation: number, unit: 'GB/s' | 'MB/s'): string {
  const bytesPerSecond = (m.operations * bytesPerOperation) / m.seconds;
  const value = unit === 'GB/s' ? bytesPerSecond / 1e9 : bytesPerSecond / 1e6;
  return `${value.toFixed(unit === 'GB/s' ? 2 : 1)} ${unit}`;
}

function pad(text: string, width: number): string {
  return text.padEnd(width);
}

type Crc32cFunction = (data: Buffer) => number;

/**
 * Alternatives to compare against, loaded only if installed: sse4_crc32 (native SSE 4.2, but
 * compiled from C++ at install time, which Raftka's dependency rules exclude) and
 * @aws-crypto/crc32c (pure JS, a development dependency of the repository).
 */
async function loadAlternativeCrcs(): Promise<{ name: string; crc: Crc32cFunction }[]> {
  const found: { name: string; crc: Crc32cFunction }[] = [];
  const sse4ModuleName = 'sse4_crc32';
  try {
    const loaded = (await import(sse4ModuleName)) as { default: { calculate: (data: Buffer) => number } };
    found.push({ name: 'sse4_crc32 (native, built at install)', crc: (data) => loaded.default.calculate(data) });
  } catch {
    console.log('  (sse4_crc32 not installed: skipped)');
  }
  const awsModuleName = '@aws-crypto/crc32c';
  try {
    const loaded = (await import(awsModuleName)) as { crc32c: (data: Uint8Array) => number };
    found.push({ name: '@aws-crypto/crc32c (pure JS)', crc: (data) => loaded.crc32c(data) });
  } catch {
    console.log('  (@aws-crypto/crc32c not installed: skipped)');
  }
  return found;
}

async function benchCrc(seconds: number): Promise<void> {
  console.log('CRC32C');
  const random = seededRandom(1);
  const implementations: { name: string; crc: Crc32cFunction }[] = [
    { name: '@node-rs/crc32 (native, prebuilt)', crc: (data) => crc32c(data) },
    ...(await loadAlternativeCrcs()),
  ];
  for (const size of [16 * 1024, 1024 * 1024]) {
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = Math.floor(random() * 256);
    const expected = implementations[0]!.crc(data) >>> 0;
    for (const implementation of implementations) {
      if (implementation.crc(data) >>> 0 !== expected) throw new Error(`${implementation.name} disagrees on the CRC32C`);
      const m = syncMeasure(seconds, () => implementation.crc(data));
      console.log(`  ${pad(`${size / 1024} KiB`, 10)}${pad(implementation.name, 40)}${rate(m, size, 'GB/s')}`);
    }
  }
}

async function benchBatches(seconds: number): Promise<void> {
  const records = makeRecords(seededRandom(2));
  const payloadBytes = RECORDS_PER_BATCH * RECORD_VALUE_BYTES;
  console.log(`\nRecord batches: ${RECORDS_PER_BATCH} records of ${RECORD_VALUE_BYTES} B per batch; MB/s of record values (1 MB = 10^6 B)`);
  console.log(`  ${pad('codec', 8)}${pad('batch B', 9)}${pad('ratio', 7)}${pad('encode', 12)}${pad('decode', 12)}${pad('encode sync', 13)}decode sync`);
  for (const codec of CODECS) {
    const batch = await encodeRecordBatch({ compression: codec, records });
    const encode = await measure(seconds, () => encodeRecordBatch({ compression: codec, records }));
    const decode = await measure(seconds, () => decodeRecordBatch(batch));
    let syncFigures = `${pad('n/a', 13)}n/a (the zstd library is async only)`;
    if (codec !== 'zstd') {
      const syncCodec: SyncCompressionName = codec;
      const encodeSync = syncMeasure(seconds, () => encodeRecordBatchSync({ compression: syncCodec, records }));
      const decodeSync = syncMeasure(seconds, () => decodeRecordBatchSync(batch));
      syncFigures = `${pad(rate(encodeSync, payloadBytes, 'MB/s'), 13)}${rate(decodeSync, payloadBytes, 'MB/s')}`;
    }
    const ratio = (payloadBytes / batch.length).toFixed(2);
    console.log(
      `  ${pad(codec, 8)}${pad(String(batch.length), 9)}${pad(ratio, 7)}${pad(rate(encode, payloadBytes, 'MB/s'), 12)}${pad(rate(decode, payloadBytes, 'MB/s'), 12)}${syncFigures}`,
    );
  }
}

async function benchCompressors(seconds: number): Promise<void> {
  const records = makeRecords(seededRandom(3));
  const data = Buffer.concat(records.map((r) => r.value as Buffer));
  console.log(`\nCompressors alone on ${data.length} B of record values (async API, one at a time)`);
  for (const codec of CODECS.slice(1)) {
    const compressed = await compress(codec, data);
    const c = await measure(seconds, () => compress(codec, data));
    const d = await measure(seconds, () => decompress(codec, compressed));
    console.log(`  ${pad(codec, 8)}compress ${pad(rate(c, data.length, 'MB/s'), 12)}decompress ${rate(d, data.length, 'MB/s')}`);
  }
}

async function main(): Promise<void> {
  const seconds = secondsPerCase();
  console.log(`codec-bench: node ${process.version}, ${seconds}s per case\n`);
  await benchCrc(seconds);
  await benchBatches(seconds);
  await benchCompressors(seconds);
}

await main();
