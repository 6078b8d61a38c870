// `raftka perf consume`: kafka-consumer-perf-test. Reads --num-records records of a topic from
// the beginning of every partition (manual assignment) and reports MB/s and records/s.
//
// With --throughput R the consumer is held to R records per second on the same open-loop
// schedule as the producer benchmark: after each poll it waits until the records it has taken
// were due, so a slow moment is caught up afterwards rather than lowering the average rate.
// The consumer keeps its next fetch in flight while it waits (the SDK pipelines fetches).

import { Consumer } from '@raftka/client';
import { RaftkaError } from '@raftka/protocol';
import { topicPartitions } from '../consume/consume-command.js';
import { OpenLoopSchedule } from './open-loop-schedule.js';
import { formatConsumerResult, rates, type ConsumerPerfResult } from './perf-stats.js';
import { defaultPerfRuntime, type PerfRuntime } from './open-loop-runner.js';

/** Longest single poll, so the --timeout-ms check runs at least this often. */
const POLL_WAIT_MS_MAX = 500;
/** Records one poll hands out when the rate is not limited (the SDK's default, Kafka's too). */
const POLL_RECORDS_MAX = 500;

export interface ConsumerPerfOptions {
  bootstrapServers: string[];
  topic: string;
  numRecords: number;
  /** Records per second, or -1 for as fast as possible. */
  throughput: number;
  /** Give up after this long without a record (kafka-consumer-perf-test's --timeout). */
  timeoutMs: number;
  fetchMaxBytes?: number;
  json?: boolean;
}

export async function consumerPerfCommand(
  options: ConsumerPerfOptions,
  io: { write: (text: string) => void } = { write: (text) => process.stdout.write(text) },
  runtime: PerfRuntime = defaultPerfRuntime,
): Promise<ConsumerPerfResult> {
  const partitions = await topicPartitions(options.bootstrapServers, options.topic, 'raftka-perf-consumer');
  const consumer = new Consumer({
    bootstrapServers: options.bootstrapServers,
    clientId: 'raftka-perf-consumer',
    autoOffsetReset: 'earliest',
    enableAutoCommit: false,
    // Paced, a poll hands out about 10 ms worth of records, so the rate is smooth at that scale.
    ...(options.throughput > 0 ? { maxPollRecords: Math.max(1, Math.min(POLL_RECORDS_MAX, Math.ceil(options.throughput / 100))) } : { maxPollRecords: POLL_RECORDS_MAX }),
    ...(options.fetchMaxBytes === undefined ? {} : { fetchMaxBytes: options.fetchMaxBytes }),
  });
  try {
    consumer.assign(partitions);
    await consumer.seekToBeginning(partitions);
    const startEpochMs = Date.now();
    const startMs = runtime.nowMs();
    const schedule = new OpenLoopSchedule(startMs, options.throughput);
    let records = 0;
    let bytes = 0;
    let lastRecordMs = startMs;
    let timedOut = false;
    while (records < options.numRecords) {
      const polled = await consumer.poll({ timeoutMs: POLL_WAIT_MS_MAX });
      const nowMs = runtime.nowMs();
      if (polled.length === 0) {
        if (nowMs - lastRecordMs >= options.timeoutMs) {
          timedOut = true;
          break;
        }
        continue;
      }
      lastRecordMs = nowMs;
      const taken = Math.min(polled.length, options.numRecords - records);
      for (let index = 0; index < taken; index++) {
        const record = polled[index]!;
        bytes += (record.value?.length ?? 0) + (record.key?.length ?? 0);
      }
      records += taken;
      // Paced: do not take more until the last record taken was due.
      const waitMs = schedule.waitMs(records - 1, runtime.nowMs());
      if (waitMs > 0) await runtime.sleepMs(waitMs);
    }
    const elapsedMs = (timedOut ? lastRecordMs : runtime.nowMs()) - startMs;
    const result: ConsumerPerfResult = {
      records,
      bytes,
      elapsedMs: Math.round(elapsedMs * 1000) / 1000,
      ...rates(records, bytes, elapsedMs),
      targetRecordsPerSec: options.throughput,
    };
    io.write((options.json ? JSON.stringify(result) : formatConsumerResult(result, startEpochMs)) + '\n');
    if (timedOut) {
      throw new RaftkaError('REQUEST_TIMED_OUT', `consumed ${records} of ${options.numRecords} records: none arrived for ${options.timeoutMs} ms`, { retriable: false });
    }
    return result;
  } finally {
    await consumer.close();
  }
}
