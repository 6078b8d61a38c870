// Micro-benchmark of the producer's hot path without a broker: append keyless 100-byte records
// to 12 partitions and drain ready batches, as a sender loop would. Measures the accumulator's
// own cost per record (size estimation, batching, memory accounting).
//
// Run: npx tsc -b packages/client && node packages/client/dist/bench/accumulator-bench.js [records]

import { RecordAccumulator } from '../producer/record-accumulator.js';

const RECORDS_DEFAULT = 1_000_000;
const PARTITIONS = 12;
const BROKERS = 3;
const DRAIN_EVERY_RECORDS = 1000;

async function main(): Promise<void> {
  const records = Number(process.argv[2] ?? RECORDS_DEFAULT);
  let nowMs = 0;
  const accumulator = new RecordAccumulator({
    batchSize: 16_384,
    lingerMs: 5,
    bufferMemory: 32 * 1024 * 1024,
    maxRequestSize: 1024 * 1024,
    maxBlockMs: 60_000,
    deliveryTimeoutMs: 120_000,
    clock: () => nowMs,
    timers: { setTimeout, clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout) },
  });
  const value = Buffer.alloc(100, 1);
  const leaderFor = (_topic: string, partition: number) => partition % BROKERS;
  const nodes = Array.from({ length: BROKERS }, (_, node) => node);
  let batches = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < records; i += 1) {
    await accumulator.append('bench', i % PARTITIONS, { key: null, value });
    if (i % DRAIN_EVERY_RECORDS === DRAIN_EVERY_RECORDS - 1) {
      nowMs += 1;
      for (const drained of accumulator.drain({ leaderFor, nodes, nowMs }).values()) {
        for (const batch of drained) {
          batches += 1;
          accumulator.release(batch);
        }
      }
    }
  }
  const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  console.log(
    `${records} appends of 100-byte records, ${batches} batches drained, in ${elapsedMs.toFixed(0)} ms: ` +
      `${((records / elapsedMs) * 1000).toFixed(0)} records/s`,
  );
}

await main();
