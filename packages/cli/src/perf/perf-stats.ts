// Figures of `raftka perf`: a latency histogram (HdrHistogram, microsecond resolution, three
// significant digits) and the throughput/latency summary in kafka-producer-perf-test's and
// kafka-consumer-perf-test's wording, or as JSON.

import * as hdr from 'hdr-histogram-js';

const MIB = 1024 * 1024;
/** Longest latency the histogram tracks: 10 minutes in microseconds (longer values are clamped). */
const LATENCY_US_MAX = 600_000_000;

/** Records latencies in milliseconds (fractional), stored as whole microseconds. */
export class LatencyHistogram {
  readonly #histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: LATENCY_US_MAX, numberOfSignificantValueDigits: 3 });

  recordMs(latencyMs: number): void {
    this.#histogram.recordValue(Math.min(LATENCY_US_MAX, Math.max(1, Math.round(latencyMs * 1000))));
  }

  get count(): number {
    return this.#histogram.totalCount;
  }

  summary(): LatencySummary {
    const h = this.#histogram;
    const ms = (us: number): number => Math.round(us) / 1000;
    if (h.totalCount === 0) return { avgMs: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 };
    // A percentile is reported as its bucket's highest equivalent value, which can lie a little
    // above the exact maximum; capping keeps p50 <= p99 <= max true in every report.
    const at = (percentile: number): number => ms(Math.min(h.getValueAtPercentile(percentile), h.maxValue));
    return { avgMs: ms(h.mean), p50Ms: at(50), p95Ms: at(95), p99Ms: at(99), p999Ms: at(99.9), maxMs: ms(h.maxValue) };
  }

  reset(): void {
    this.#histogram.reset();
  }
}

export interface LatencySummary {
  avgMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export interface ProducerPerfResult {
  records: number;
  failedRecords: number;
  recordSizeBytes: number;
  elapsedMs: number;
  recordsPerSec: number;
  mbPerSec: number;
  /** The offered rate asked for; -1 when unlimited. */
  targetRecordsPerSec: number;
  /** Records sent first and left out of every other figure. */
  warmupRecords: number;
  /** From each record's due time (open loop) to its acknowledgement. */
  latency: LatencySummary;
}

export interface ConsumerPerfResult {
  records: number;
  bytes: number;
  elapsedMs: number;
  recordsPerSec: number;
  mbPerSec: number;
  targetRecordsPerSec: number;
}

export function rates(records: number, bytes: number, elapsedMs: number): { recordsPerSec: number; mbPerSec: number } {
  const seconds = Math.max(elapsedMs, 1e-3) / 1000;
  return { recordsPerSec: round(records / seconds, 1), mbPerSec: round(bytes / MIB / seconds, 2) };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** kafka-producer-perf-test's closing line, with p50/p95/p99/p99.9 in milliseconds. */
export function formatProducerResult(result: ProducerPerfResult): string {
  const l = result.latency;
  const failed = result.failedRecords > 0 ? ` (${result.failedRecords} failed)` : '';
  return (
    `${result.records} records sent${failed}, ${result.recordsPerSec.toFixed(1)} records/sec (${result.mbPerSec.toFixed(2)} MB/sec), ` +
    `${l.avgMs.toFixed(2)} ms avg latency, ${l.maxMs.toFixed(2)} ms max latency, ` +
    `${l.p50Ms.toFixed(2)} ms 50th, ${l.p95Ms.toFixed(2)} ms 95th, ${l.p99Ms.toFixed(2)} ms 99th, ${l.p999Ms.toFixed(2)} ms 99.9th.`
  );
}

/** kafka-producer-perf-test's periodic line for one reporting window. */
export function formatProducerWindow(window: { records: number; bytes: number; elapsedMs: number; latency: LatencySummary }): string {
  const { recordsPerSec, mbPerSec } = rates(window.records, window.bytes, window.elapsedMs);
  return `${window.records} records sent, ${recordsPerSec.toFixed(1)} records/sec (${mbPerSec.toFixed(2)} MB/sec), ${window.latency.avgMs.toFixed(1)} ms avg latency, ${window.latency.maxMs.toFixed(1)} ms max latency.`;
}

/** kafka-consumer-perf-test's header and line (without the group rebalance columns). */
export function formatConsumerResult(result: ConsumerPerfResult, startEpochMs: number): string {
  const time = (epochMs: number): string => new Date(epochMs).toISOString().replace('T', ' ').replace('Z', '');
  const mb = result.bytes / MIB;
  return [
    'start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec',
    `${time(startEpochMs)}, ${time(startEpochMs + result.elapsedMs)}, ${mb.toFixed(4)}, ${result.mbPerSec.toFixed(4)}, ${result.records}, ${result.recordsPerSec.toFixed(4)}`,
  ].join('\n');
}
