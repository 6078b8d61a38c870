// `raftka perf produce`: kafka-producer-perf-test. Sends --num-records records of --record-size
// random bytes to a topic at --throughput records per second (open loop, see
// open-loop-schedule.ts) or as fast as possible (-1), and reports records/s, MB/s and the
// latency distribution from each record's due time to its acknowledgement.
//
// One `send` per record gives each record its own acknowledgement time; the producer still
// batches them (batch.size / linger.ms), exactly as an application's sends would be. The number
// of unacknowledged records is bounded (OUTSTANDING_RECORDS_MAX); when the bound holds the loop
// back, the records it delays are still measured from their due time, so the wait shows up as
// latency instead of silently lowering the offered load.

import { randomBytes } from 'node:crypto';
import { Producer, ProducerSendError, type Acks, type CompressionType } from '@raftka/client';
import { RaftkaError } from '@raftka/protocol';
import { topicPartitions } from '../consume/consume-command.js';
import { defaultPerfRuntime, runOpenLoop, type PerfRuntime } from './open-loop-runner.js';
import { OpenLoopSchedule } from './open-loop-schedule.js';
import { formatProducerResult, formatProducerWindow, LatencyHistogram, rates, type ProducerPerfResult } from './perf-stats.js';

/** Unacknowledged records the benchmark allows before it waits (bounds memory at any rate). */
const OUTSTANDING_RECORDS_MAX = 50_000;
/** Records sent back to back before the loop yields so acknowledgements can be processed. */
const SEND_BURST_RECORDS_MAX = 1_000;
/** kafka-producer-perf-test reports a window every 5 seconds. */
const REPORT_INTERVAL_MS = 5_000;
/** Failed records printed individually before the rest are only counted. */
const FAILURES_PRINTED_MAX = 10;

export interface ProducerPerfOptions {
  bootstrapServers: string[];
  topic: string;
  numRecords: number;
  recordSize: number;
  /** Records per second, or -1 for as fast as possible. */
  throughput: number;
  /** The first records sent are left out of the figures (connection set-up, JIT warm-up). */
  warmupRecords?: number;
  acks: Acks;
  batchSize?: number;
  lingerMs?: number;
  compression: CompressionType;
  json?: boolean;
}

export async function producerPerfCommand(
  options: ProducerPerfOptions,
  io: { write: (text: string) => void; report: (text: string) => void } = {
    write: (text) => process.stdout.write(text),
    report: (text) => process.stderr.write(text),
  },
  runtime: PerfRuntime = defaultPerfRuntime,
): Promise<ProducerPerfResult> {
  // An unknown topic fails here at once instead of after the producer's max.block.ms.
  await topicPartitions(options.bootstrapServers, options.topic, 'raftka-perf-producer');
  const producer = new Producer({
    bootstrapServers: options.bootstrapServers,
    clientId: 'raftka-perf-producer',
    acks: options.acks,
    compressionType: options.compression,
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    ...(options.lingerMs === undefined ? {} : { lingerMs: options.lingerMs }),
  });
  try {
    await producer.connect();
    // One random payload for every record, like kafka-producer-perf-test: generating fresh
    // bytes per record would measure the random generator.
    const payload = randomBytes(options.recordSize);
    // Every record is the same message, so one send argument serves them all: building it per
    // record would add three objects per record to what the benchmark measures (the producer
    // keeps nothing of it once the record is appended).
    const sendArgument = { topic: options.topic, messages: [{ value: payload }] };
    const total = new LatencyHistogram();
    const window = new LatencyHistogram();
    const warmupRecords = Math.min(options.warmupRecords ?? 0, options.numRecords);
    let windowStartMs = runtime.nowMs();
    let windowRecords = 0;
    let acknowledged = 0;
    let failed = 0;
    let lastSettledMs = 0;

    const onOutcome = (index: number, dueMs: number, settledMs: number, error: unknown): void => {
      lastSettledMs = settledMs;
      if (error === undefined) {
        if (index >= warmupRecords) {
          acknowledged += 1;
          total.recordMs(settledMs - dueMs);
        }
        window.recordMs(settledMs - dueMs);
        windowRecords += 1;
      } else {
        failed += 1;
        if (failed <= FAILURES_PRINTED_MAX) {
          const cause = error instanceof ProducerSendError ? error.outcomes.find((outcome) => !outcome.ok) : undefined;
          const raftkaError = cause && !cause.ok ? cause.error : error;
          io.report(`raftka perf produce: ${raftkaError instanceof RaftkaError ? `${raftkaError.code}: ` : ''}${(raftkaError as Error).message}\n`);
        }
      }
      if (!options.json && settledMs - windowStartMs >= REPORT_INTERVAL_MS) {
        io.write(formatProducerWindow({ records: windowRecords, bytes: windowRecords * options.recordSize, elapsedMs: settledMs - windowStartMs, latency: window.summary() }) + '\n');
        window.reset();
        windowRecords = 0;
        windowStartMs = settledMs;
      }
    };

    const startMs = runtime.nowMs();
    const schedule = new OpenLoopSchedule(startMs, options.throughput);
    // The measured period starts when the first record after the warm-up is due (or is sent).
    let measuredStartMs = startMs;
    await runOpenLoop(
      {
        numRecords: options.numRecords,
        schedule,
        outstandingMax: OUTSTANDING_RECORDS_MAX,
        burstMax: SEND_BURST_RECORDS_MAX,
        send: (index) => {
          if (index === warmupRecords) measuredStartMs = schedule.dueMs(index, runtime.nowMs());
          return producer.send(sendArgument);
        },
        onOutcome,
      },
      runtime,
    );
    const elapsedMs = lastSettledMs - measuredStartMs;
    const result: ProducerPerfResult = {
      records: acknowledged,
      failedRecords: failed,
      recordSizeBytes: options.recordSize,
      elapsedMs: Math.round(elapsedMs * 1000) / 1000,
      ...rates(acknowledged, acknowledged * options.recordSize, elapsedMs),
      targetRecordsPerSec: options.throughput,
      warmupRecords,
      latency: total.summary(),
    };
    io.write((options.json ? JSON.stringify(result) : formatProducerResult(result)) + '\n');
    return result;
  } finally {
    await producer.close();
  }
}
