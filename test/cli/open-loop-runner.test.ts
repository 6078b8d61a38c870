// The open-loop benchmark loop on a virtual clock: records go out when due, a stall is charged
// to every record that fell due during it (no coordinated omission), and the number of records
// in flight stays bounded.

import { describe, expect, it } from 'vitest';
import { runOpenLoop, type PerfRuntime } from '../../packages/cli/src/perf/open-loop-runner.js';
import { OpenLoopSchedule, UNLIMITED_THROUGHPUT } from '../../packages/cli/src/perf/open-loop-schedule.js';

class VirtualRuntime implements PerfRuntime {
  now = 0;
  nowMs = (): number => this.now;
  // Time passes only after everything already runnable has run (acknowledgements included),
  // as it would on a real event loop.
  sleepMs = (ms: number): Promise<void> =>
    new Promise((resolve) =>
      setImmediate(() => {
        this.now += ms;
        resolve();
      }),
    );
  yield = async (): Promise<void> => undefined;
}

interface Outcome {
  dueMs: number;
  settledMs: number;
  error: unknown;
}

describe('runOpenLoop', () => {
  it('sends each record at its due time', async () => {
    const runtime = new VirtualRuntime();
    const sentAtMs: number[] = [];
    const outcomes: Outcome[] = [];
    await runOpenLoop(
      {
        numRecords: 10,
        schedule: new OpenLoopSchedule(0, 1_000),
        outstandingMax: 100,
        burstMax: 100,
        send: async () => void sentAtMs.push(runtime.now),
        onOutcome: (index, dueMs, settledMs, error) => (outcomes[index] = { dueMs, settledMs, error }),
      },
      runtime,
    );
    expect(sentAtMs).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(outcomes.map((outcome) => outcome.settledMs - outcome.dueMs)).toEqual(Array(10).fill(0));
  });

  it('charges a stall to every record that fell due during it', async () => {
    const runtime = new VirtualRuntime();
    const outcomes: Outcome[] = [];
    const stallMs = 500;
    await runOpenLoop(
      {
        numRecords: 100,
        schedule: new OpenLoopSchedule(0, 1_000),
        outstandingMax: 1_000,
        burstMax: 1_000,
        send: async (index) => {
          // Record 10 blocks the sender for half a second (a GC pause, a full socket buffer).
          if (index === 10) runtime.now += stallMs;
        },
        onOutcome: (index, dueMs, settledMs, error) => (outcomes[index] = { dueMs, settledMs, error }),
      },
      runtime,
    );
    const latencyMs = outcomes.map((outcome) => outcome.settledMs - outcome.dueMs);
    expect(latencyMs.slice(0, 10)).toEqual(Array(10).fill(0));
    // Records 11..99 were due at 11..99 ms but could only go out at 510 ms: each carries its
    // own share of the stall, which a loop timing from the actual send would report as ~0.
    for (let index = 10; index < 100; index++) expect(latencyMs[index]).toBe(10 + stallMs - index);
    expect(outcomes.every((outcome) => outcome.error === undefined)).toBe(true);
  });

  it('keeps at most outstandingMax records in flight and reports failures', async () => {
    const runtime = new VirtualRuntime();
    const pending: { resolve: () => void; reject: (error: Error) => void }[] = [];
    const outcomes: Outcome[] = [];
    let maxInFlight = 0;
    const done = runOpenLoop(
      {
        numRecords: 6,
        schedule: new OpenLoopSchedule(0, UNLIMITED_THROUGHPUT),
        outstandingMax: 2,
        burstMax: 100,
        send: () =>
          new Promise<void>((resolve, reject) => {
            pending.push({ resolve, reject });
            maxInFlight = Math.max(maxInFlight, pending.length - outcomes.filter(Boolean).length);
          }),
        onOutcome: (index, dueMs, settledMs, error) => (outcomes[index] = { dueMs, settledMs, error }),
      },
      runtime,
    );
    const settle = async (index: number, failure?: Error): Promise<void> => {
      if (failure) pending[index]!.reject(failure);
      else pending[index]!.resolve();
      await new Promise((resolve) => setImmediate(resolve));
    };
    await new Promise((resolve) => setImmediate(resolve));
    expect(pending).toHaveLength(2);
    await settle(0);
    expect(pending).toHaveLength(3);
    await settle(1, new Error('NOT_ENOUGH_REPLICAS'));
    await settle(2);
    await settle(3);
    await settle(4);
    await settle(5);
    await done;
    expect(maxInFlight).toBe(2);
    expect(outcomes.map((outcome) => (outcome.error as Error | undefined)?.message)).toEqual([undefined, 'NOT_ENOUGH_REPLICAS', undefined, undefined, undefined, undefined]);
  });
});
