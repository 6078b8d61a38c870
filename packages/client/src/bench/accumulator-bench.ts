// Micro-benchmark of the producer's hot path without a broker: append keyless records to a few
// partitions, drain ready batches as a sender loop would, encode each drained batch into its
// RecordBatch v2 bytes (with producer id, epoch and sequence) and release it. Measures the
// accumulator's own cost per record (size computation, encoding into the batch buffer, batching,
// memory accounting, buffer recycling), garbage collection included, in nanoseconds per record.
//
// Run: npx tsc -b packages/client && node packages/client/dist/bench/accumulator-bench.js [records] [recordBytes] [batchSize]

import { APPEND_NO_MEMORY, RecordAccumulator } from '../producer/record-accumulator.js';
import { recordFieldsBytes } from '@raftka/protocol';

const RECORDS_DEFAULT = 1_000_000;
const RECORD_BYTES_DEFAULT = 1024;
const BATCH_SIZE_DEFAULT = 16_384;
const PARTITIONS = 12;
const BROKERS = 3;

function run(records: number, recordBytes: number, batchSize: number): { elapsedMs: number; batches: number; bytes: number } {
  let nowMs = 0;
  const accumulator = new RecordAccumulator({
    batchSize,
    lingerMs: 5,
    bufferMemory: 32 * 1024 * 1024,
    maxRequestSize: 1024 * 1024,
    maxBlockMs: 60_000,
    deliveryTimeoutMs: 120_000,
    clock: () => nowMs,
    timers: { setTimeout, clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout) },
  });
  const value = Buffer.alloc(recordBytes, 1);
  const fieldsBytes = recordFieldsBytes(null, value, undefined);
  const leaderFor = (_topic: string, partition: number) => partition % BROKERS;
  const nodes = Array.from({ length: BROKERS }, (_, node) => node);
  const owner = {};
  let batches = 0;
  let bytes = 0;
  let sequence = 0;
  // Drain about when every partition's batch is full, as a sender would under load.
  const drainEveryRecords = PARTITIONS * Math.max(1, Math.floor(batchSize / (recordBytes + 16)));
  const drainAll = (): number => {
    const before = batches;
    for (const drained of accumulator.drain({ leaderFor, nodes, nowMs }).values()) {
      for (const batch of drained) {
        batch.producerId = 1;
        batch.producerEpoch = 0;
        batch.baseSequence = sequence;
        sequence += batch.recordCount;
        bytes += batch.encode().length;
        batches += 1;
        accumulator.release(batch, true);
      }
    }
    return batches - before;
  };
  const start = process.hrtime.bigint();
  for (let i = 0; i < records; i += 1) {
    const flags = accumulator.appendRecord('bench', i % PARTITIONS, null, value, undefined, nowMs, fieldsBytes, owner, 0);
    if (flags === APPEND_NO_MEMORY) throw new Error('bufferMemory exhausted: drain more often');
    if (i % drainEveryRecords === drainEveryRecords - 1) {
      nowMs += 5;
      while (drainAll() > 0);
    }
  }
  accumulator.close();
  while (drainAll() > 0);
  return { elapsedMs: Number(process.hrtime.bigint() - start) / 1e6, batches, bytes };
}

function main(): void {
  const records = Number(process.argv[2] ?? RECORDS_DEFAULT);
  const recordBytes = Number(process.argv[3] ?? RECORD_BYTES_DEFAULT);
  const batchSize = Number(process.argv[4] ?? BATCH_SIZE_DEFAULT);
  // The first run warms up the JIT; the second is reported.
  run(Math.min(records, 100_000), recordBytes, batchSize);
  const { elapsedMs, batches, bytes } = run(records, recordBytes, batchSize);
  console.log(
    `${records} appends of ${recordBytes}-byte records (batchSize ${batchSize}), ${batches} batches encoded (${(bytes / 1024 / 1024).toFixed(0)} MiB), ` +
      `in ${elapsedMs.toFixed(0)} ms: ${((records / elapsedMs) * 1000).toFixed(0)} records/s, ${((elapsedMs * 1e6) / records).toFixed(0)} ns/record`,
  );
}

main();
