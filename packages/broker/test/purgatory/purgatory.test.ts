import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DelayedFetch, DelayedProduce, fetchUpperBound, type ProducePartitionCode } from '../../src/purgatory/delayed-operations.js';
import { DelayedOperationPurgatory, PurgatoryFullError, partitionKey, type DelayedOperation } from '../../src/purgatory/purgatory.js';
import { LeaderReplicaState } from '../../src/replica/leader-replica-state.js';

const T0 = 5_000_000;

class Flag implements DelayedOperation {
  ready = false;
  outcome: 'completed' | 'expired' | undefined;
  completions = 0;
  constructor(
    readonly keys: string[],
    readonly deadlineMs: number,
  ) {}
  tryComplete(): boolean {
    if (!this.ready) return false;
    this.outcome = 'completed';
    this.completions++;
    return true;
  }
  expire(): void {
    this.outcome = 'expired';
    this.completions++;
  }
}

describe('DelayedOperationPurgatory', () => {
  it('completes on events for any watched key, expires on tick, and pushes back when full', () => {
    const purgatory = new DelayedOperationPurgatory<Flag>({ name: 'test', operationsMax: 2 });
    const a = new Flag(['t-0', 't-1'], T0 + 100);
    const b = new Flag(['t-1'], T0 + 50);
    expect(purgatory.tryCompleteElseWatch(a)).toBe('watching');
    expect(purgatory.tryCompleteElseWatch(b)).toBe('watching');
    const ready = new Flag(['t-2'], T0);
    ready.ready = true;
    expect(purgatory.tryCompleteElseWatch(ready)).toBe('completed'); // completes without taking a slot
    expect(() => purgatory.tryCompleteElseWatch(new Flag(['t-3'], T0))).toThrow(PurgatoryFullError);
    try {
      purgatory.tryCompleteElseWatch(new Flag(['t-3'], T0));
    } catch (error) {
      expect((error as PurgatoryFullError).code).toBe('REQUEST_TIMED_OUT');
      expect((error as PurgatoryFullError).retriable).toBe(true);
    }
    expect(purgatory.checkAndComplete('t-0')).toBe(0);
    a.ready = true;
    expect(purgatory.checkAndComplete('t-0')).toBe(1);
    expect(purgatory.watcherCount('t-1')).toBe(1); // a is gone from its other key too
    expect(purgatory.tick(T0 + 49)).toBe(0);
    expect(purgatory.tick(T0 + 50)).toBe(1);
    expect(b.outcome).toBe('expired');
    expect(purgatory.size).toBe(0);
    expect(purgatory.tick(T0 + 1_000)).toBe(0);
    expect(a.completions + b.completions).toBe(2);
  });

  it('property: every operation completes exactly once, expiring in deadline order, and the heap stays bounded', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('add' as const), key: fc.integer({ min: 0, max: 3 }), delayMs: fc.integer({ min: 0, max: 100 }), readyNow: fc.boolean() }),
            fc.record({ kind: fc.constant('ready' as const), key: fc.integer({ min: 0, max: 3 }) }),
            fc.record({ kind: fc.constant('tick' as const), advanceMs: fc.integer({ min: 0, max: 60 }) }),
          ),
          { maxLength: 200 },
        ),
        (events) => {
          const purgatory = new DelayedOperationPurgatory<Flag>({ name: 'prop', operationsMax: 20 });
          const all: Flag[] = [];
          let now = T0;
          for (const event of events) {
            if (event.kind === 'add') {
              const op = new Flag([`k-${event.key}`], now + event.delayMs);
              op.ready = event.readyNow;
              try {
                purgatory.tryCompleteElseWatch(op);
                all.push(op);
              } catch (error) {
                expect(error).toBeInstanceOf(PurgatoryFullError);
                expect(purgatory.size).toBe(20);
              }
            } else if (event.kind === 'ready') {
              for (const op of all) if (op.keys[0] === `k-${event.key}`) op.ready = true;
              purgatory.checkAndComplete(`k-${event.key}`);
            } else {
              now += event.advanceMs;
              purgatory.tick(now);
              for (const op of all) if (op.deadlineMs <= now) expect(op.completions).toBe(1);
            }
            expect(purgatory.deadlineHeapSize).toBeLessThanOrEqual(2 * 20 + 64 + 1);
          }
          purgatory.expireAll();
          for (const op of all) expect(op.completions).toBe(1);
          expect(purgatory.size).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('DelayedProduce (acks=all)', () => {
  function setup() {
    const key = partitionKey('orders', 0);
    const leader = new LeaderReplicaState({
      localBrokerId: 1,
      replicas: [1, 2],
      isr: [1, 2],
      leaderEpoch: 3,
      partitionEpoch: 7,
      leaderEpochStartOffset: 0,
      highWatermark: 0,
      nowMs: T0,
      config: { replicaLagTimeMaxMs: 10_000, minInsyncReplicas: 2 },
    });
    let leading = true;
    const purgatory = new DelayedOperationPurgatory<DelayedProduce>({ name: 'produce', operationsMax: 100 });
    const answers: Map<string, ProducePartitionCode>[] = [];
    const park = (lastOffset: number, deadlineMs: number) =>
      purgatory.tryCompleteElseWatch(
        new DelayedProduce({
          partitions: [{ key, lastOffset }],
          deadlineMs,
          probe: (partition) => (leading ? leader.checkProduceAcked(partition.lastOffset) : { kind: 'not-leader' }),
          onComplete: (codes) => answers.push(new Map(codes)),
        }),
      );
    return { key, leader, purgatory, answers, park, loseLeadership: () => (leading = false) };
  }

  it('completes when the HW passes the batch, times out with REQUEST_TIMED_OUT, fails on leadership loss', () => {
    const { key, leader, purgatory, answers, park, loseLeadership } = setup();
    leader.onLeaderAppend(10);
    expect(park(9, T0 + 1_000)).toBe('watching');
    leader.onFollowerFetch({ replicaId: 2, fetchOffset: 9, nowMs: T0 + 1 });
    expect(purgatory.checkAndComplete(key)).toBe(0); // HW 9 does not cover offset 9
    leader.onFollowerFetch({ replicaId: 2, fetchOffset: 10, nowMs: T0 + 2 });
    expect(purgatory.checkAndComplete(key)).toBe(1);
    expect(answers.pop()!.get(key)).toBe('NONE');

    leader.onLeaderAppend(20);
    park(19, T0 + 1_000);
    purgatory.tick(T0 + 1_000);
    expect(answers.pop()!.get(key)).toBe('REQUEST_TIMED_OUT');

    park(19, T0 + 5_000);
    loseLeadership();
    purgatory.checkAndComplete(key);
    expect(answers.pop()!.get(key)).toBe('NOT_LEADER_OR_FOLLOWER');
  });
});

describe('DelayedFetch', () => {
  it('completes at fetch.min.bytes below the bound, or on timeout with what is there', () => {
    const key = partitionKey('orders', 0);
    let available = 0;
    const reasons: string[] = [];
    const purgatory = new DelayedOperationPurgatory<DelayedFetch>({ name: 'fetch', operationsMax: 10 });
    const fetch = () =>
      new DelayedFetch({
        partitions: [{ key, fetchOffset: 0 }],
        minBytes: 1_000,
        deadlineMs: T0 + 500,
        probe: () => ({ kind: 'bytes', bytes: available }),
        onComplete: (reason) => reasons.push(reason),
      });
    purgatory.tryCompleteElseWatch(fetch());
    available = 999;
    purgatory.checkAndComplete(key);
    expect(reasons).toEqual([]);
    available = 1_000;
    purgatory.checkAndComplete(key);
    expect(reasons).toEqual(['min-bytes']);
    available = 10;
    purgatory.tryCompleteElseWatch(fetch());
    purgatory.tick(T0 + 500);
    expect(reasons).toEqual(['min-bytes', 'timeout']);
    expect(fetchUpperBound('consumer', { highWatermark: 5, logEndOffset: 9 })).toBe(5);
    expect(fetchUpperBound('follower', { highWatermark: 5, logEndOffset: 9 })).toBe(9);
  });

  it('answers at once when a partition cannot wait (leadership moved)', () => {
    const reasons: string[] = [];
    const op = new DelayedFetch({
      partitions: [{ key: 'a-0', fetchOffset: 3 }],
      minBytes: 1,
      deadlineMs: T0,
      probe: () => ({ kind: 'answer-now', code: 'NOT_LEADER_OR_FOLLOWER' }),
      onComplete: (reason) => reasons.push(reason),
    });
    expect(op.tryComplete()).toBe(true);
    op.expire();
    expect(reasons).toEqual(['partition-error']);
  });
});

describe('DelayedOperationPurgatory re-entrancy', () => {
  it('tolerates a completion callback that re-enters checkAndComplete on the same key', () => {
    const purgatory = new DelayedOperationPurgatory<DelayedFetch>({ name: 'fetch', operationsMax: 10 });
    let bytes = 0;
    const reasons: string[] = [];
    const make = () =>
      new DelayedFetch({
        partitions: [{ key: 'a-0', fetchOffset: 0 }],
        minBytes: 1,
        deadlineMs: T0 + 100,
        probe: () => ({ kind: 'bytes', bytes }),
        onComplete: (reason) => {
          reasons.push(reason);
          purgatory.checkAndComplete('a-0');
        },
      });
    purgatory.tryCompleteElseWatch(make());
    purgatory.tryCompleteElseWatch(make());
    bytes = 5;
    purgatory.checkAndComplete('a-0');
    expect(reasons).toEqual(['min-bytes', 'min-bytes']);
    expect(purgatory.size).toBe(0);
    expect(purgatory.tick(T0 + 1_000)).toBe(0);
  });
});
