// The send schedule of a rate-limited benchmark, open loop.
//
// At a fixed offered rate R, record i is *due* at startMs + i * 1000 / R, whatever happened to
// the records before it. Its latency is measured from that due time, not from the moment the
// benchmark got around to sending it: if the system stalls for a second, the records that should
// have gone out during the stall are sent late in a burst, and each of them carries the stall in
// its latency. A closed-loop benchmark (send, wait, send) or one that measures from the actual
// send time would instead pause its own offered load with the system and report the stall as a
// single slow record: the coordinated omission that OpenMessaging Benchmark and wrk2 avoid.
//
// Without a rate (R = -1, "as fast as possible") there is no schedule: a record is due when it is
// sent, and the measured figure is the throughput ceiling rather than a latency at a given load.
//
// The schedule is pure arithmetic on an injected clock reading, so tests drive it directly.

import { RaftkaError } from '@raftka/protocol';

/** The value of --throughput that means "no pacing". */
export const UNLIMITED_THROUGHPUT = -1;

export class OpenLoopSchedule {
  readonly startMs: number;
  /** Records per second; UNLIMITED_THROUGHPUT for none. */
  readonly recordsPerSecond: number;
  // Invariant: intervalMs > 0 exactly when the schedule paces.
  readonly #intervalMs: number;

  constructor(startMs: number, recordsPerSecond: number) {
    if (recordsPerSecond !== UNLIMITED_THROUGHPUT && !(recordsPerSecond > 0 && Number.isFinite(recordsPerSecond))) {
      throw new RaftkaError('INVALID_CONFIG', `throughput must be a positive number of records per second or -1 (unlimited), got ${recordsPerSecond}`, {
        retriable: false,
      });
    }
    this.startMs = startMs;
    this.recordsPerSecond = recordsPerSecond;
    this.#intervalMs = recordsPerSecond === UNLIMITED_THROUGHPUT ? 0 : 1000 / recordsPerSecond;
  }

  get paced(): boolean {
    return this.#intervalMs > 0;
  }

  /**
   * When record `index` is due. Computed from the start each time (not by adding intervals) so
   * that rounding never accumulates into drift over millions of records.
   */
  dueMs(index: number, nowMs: number): number {
    return this.paced ? this.startMs + index * this.#intervalMs : nowMs;
  }

  /** How many records are due by `nowMs` in total (records 0..n-1), capped at `total`. */
  dueCount(nowMs: number, total: number): number {
    if (!this.paced) return total;
    if (nowMs < this.startMs) return 0;
    return Math.min(total, Math.floor((nowMs - this.startMs) / this.#intervalMs) + 1);
  }

  /** How long to wait from `nowMs` until record `index` is due (0 when it already is). */
  waitMs(index: number, nowMs: number): number {
    return Math.max(0, this.dueMs(index, nowMs) - nowMs);
  }
}
