// Drives an open-loop benchmark: sends record i when the schedule says it is due, never waits
// for earlier records to be acknowledged before sending the next one (up to a bound on the
// records in flight), and reports each outcome with the record's *due* time, so that the
// caller measures latency from when the record should have been sent (see
// open-loop-schedule.ts on coordinated omission).
//
// Clock, sleep and yield are injected (PerfRuntime), so tests run the loop on a virtual clock.

import { performance } from 'node:perf_hooks';
import { invariant } from '@raftka/protocol';
import type { OpenLoopSchedule } from './open-loop-schedule.js';

export interface PerfRuntime {
  /** A monotonic clock in fractional milliseconds. */
  nowMs(): number;
  sleepMs(ms: number): Promise<void>;
  /** Lets the event loop run I/O callbacks (acknowledgements) during a burst of sends. */
  yield(): Promise<void>;
}

export const defaultPerfRuntime: PerfRuntime = {
  nowMs: () => performance.now(),
  sleepMs: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  yield: () => new Promise((resolve) => setImmediate(resolve)),
};

export interface OpenLoopRun {
  numRecords: number;
  schedule: OpenLoopSchedule;
  /** Records sent and not yet settled before the loop waits. */
  outstandingMax: number;
  /** Records sent back to back (when behind schedule) before the loop yields. */
  burstMax: number;
  /** Sends record `index`; settles when it is acknowledged or has failed. */
  send(index: number): Promise<unknown>;
  /** Each record's outcome: its due time, the time it settled, and its error if it failed. */
  onOutcome(index: number, dueMs: number, settledMs: number, error: unknown): void;
}

/** Sends every record on schedule and resolves once all have settled. */
export async function runOpenLoop(run: OpenLoopRun, runtime: PerfRuntime): Promise<void> {
  invariant(run.outstandingMax > 0 && run.burstMax > 0, 'open loop limits must be positive');
  let outstanding = 0;
  let wake: (() => void) | undefined;
  const settle = (index: number, dueMs: number, error: unknown): void => {
    outstanding -= 1;
    run.onOutcome(index, dueMs, runtime.nowMs(), error);
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  let burst = 0;
  for (let index = 0; index < run.numRecords; index++) {
    const waitMs = run.schedule.waitMs(index, runtime.nowMs());
    if (waitMs > 0) {
      // Ahead of schedule: sleep until this record is due (timers wake at millisecond
      // granularity, so every record that fell due meanwhile goes out in the next burst).
      await runtime.sleepMs(waitMs);
      burst = 0;
    } else if (++burst >= run.burstMax) {
      await runtime.yield();
      burst = 0;
    }
    // Waiting here delays the send but not the due time: the wait is counted as latency.
    while (outstanding >= run.outstandingMax) await new Promise<void>((resolve) => (wake = resolve));
    const dueMs = run.schedule.dueMs(index, runtime.nowMs());
    outstanding += 1;
    run.send(index).then(
      () => settle(index, dueMs, undefined),
      (error: unknown) => settle(index, dueMs, error ?? new Error('send failed')),
    );
  }
  while (outstanding > 0) await new Promise<void>((resolve) => (wake = resolve));
}
