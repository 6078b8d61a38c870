import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeaderReplicaState, UNKNOWN_LOG_END_OFFSET, type LeaderReplicaStateOptions } from '../../src/replica/leader-replica-state.js';

const T0 = 1_000_000;
const LAG_MS = 10_000;

function leader(overrides: Partial<LeaderReplicaStateOptions> = {}): LeaderReplicaState {
  return new LeaderReplicaState({
    localBrokerId: 1,
    replicas: [1, 2, 3],
    isr: [1, 2, 3],
    leaderEpoch: 5,
    partitionEpoch: 10,
    leaderEpochStartOffset: 0,
    highWatermark: 0,
    nowMs: T0,
    config: { replicaLagTimeMaxMs: LAG_MS, minInsyncReplicas: 2 },
    ...overrides,
  });
}

describe('LeaderReplicaState: high watermark', () => {
  it('is the minimum LEO over the ISR, including the leader', () => {
    const state = leader();
    expect(state.onLeaderAppend(10)).toBeUndefined(); // followers' LEOs are still unknown
    expect(state.onFollowerFetch({ replicaId: 2, fetchOffset: 10, nowMs: T0 + 1 }).highWatermarkAdvancedTo).toBeUndefined();
    expect(state.onFollowerFetch({ replicaId: 3, fetchOffset: 4, nowMs: T0 + 2 }).highWatermarkAdvancedTo).toBe(4);
    expect(state.onFollowerFetch({ replicaId: 3, fetchOffset: 10, nowMs: T0 + 3 }).highWatermarkAdvancedTo).toBe(10);
    expect(state.highWatermark).toBe(10);
  });

  it('moves with the leader alone when the ISR is the leader', () => {
    const state = leader({ isr: [1] });
    expect(state.onLeaderAppend(7)).toBe(7);
  });

  it('acks=all: NOT_ENOUGH_REPLICAS below min.insync.replicas, then NOT_ENOUGH_REPLICAS_AFTER_APPEND on shrink', () => {
    const state = leader({ replicas: [1, 2], isr: [1, 2], config: { replicaLagTimeMaxMs: LAG_MS, minInsyncReplicas: 2 } });
    expect(state.checkAppendAllowed(-1)).toBe('NONE');
    state.onLeaderAppend(5);
    expect(state.checkProduceAcked(4)).toEqual({ kind: 'waiting' });
    // Follower 2 stops fetching; the ISR shrinks to the leader alone once committed.
    const proposal = state.maybeShrinkIsr(T0 + LAG_MS + 1)!;
    expect(proposal.newIsr).toEqual([1]);
    // Until the shrink is committed the HW still waits for follower 2 (KIP-497 maximal ISR).
    expect(state.checkProduceAcked(4)).toEqual({ kind: 'waiting' });
    const { highWatermarkAdvancedTo } = state.onAlterPartitionResponse(proposal, {
      kind: 'committed',
      state: { leader: 1, replicas: [1, 2], isr: [1], leaderEpoch: 5, partitionEpoch: 11 },
    });
    expect(highWatermarkAdvancedTo).toBe(5);
    expect(state.checkProduceAcked(4)).toEqual({ kind: 'done', code: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' });
    expect(state.checkAppendAllowed(-1)).toBe('NOT_ENOUGH_REPLICAS');
    expect(state.checkAppendAllowed(1)).toBe('NONE');
  });
});

describe('LeaderReplicaState: ISR changes', () => {
  it('uses the lastCaughtUpTimeMs rule: a follower that keeps reaching the LEO as of its previous fetch stays in', () => {
    const state = leader({ replicas: [1, 2], isr: [1, 2] });
    let leo = 0;
    // Each fetch reaches the leader LEO seen by the previous fetch, while the leader keeps appending.
    for (let t = 1; t <= 5; t++) {
      const previous = leo;
      leo += 10;
      state.onLeaderAppend(leo);
      state.onFollowerFetch({ replicaId: 2, fetchOffset: previous, nowMs: T0 + t * 5_000 });
    }
    expect(state.follower(2)!.lastCaughtUpTimeMs).toBe(T0 + 4 * 5_000);
    expect(state.maybeShrinkIsr(T0 + 5 * 5_000 + LAG_MS - 5_000)).toBeUndefined();
    // It falls behind for good: fetching far below what the leader had.
    state.onLeaderAppend(leo + 1000);
    state.onFollowerFetch({ replicaId: 2, fetchOffset: leo - 5, nowMs: T0 + 30_000 });
    expect(state.maybeShrinkIsr(T0 + 30_000 + LAG_MS)?.newIsr).toEqual([1]);
  });

  it('never shrinks a follower at the leader LEO, and grants the ISR a grace period at leadership start', () => {
    const state = leader();
    expect(state.maybeShrinkIsr(T0 + LAG_MS)).toBeUndefined();
    state.onFollowerFetch({ replicaId: 2, fetchOffset: 0, nowMs: T0 + 1 });
    state.onFollowerFetch({ replicaId: 3, fetchOffset: 0, nowMs: T0 + 1 });
    // Nothing appended: both are at the leader LEO however long ago they fetched.
    expect(state.maybeShrinkIsr(T0 + 100 * LAG_MS)).toBeUndefined();
  });

  it('expands only with LEO >= HW and an offset of the current leader epoch, one proposal at a time', () => {
    const state = leader({ isr: [1, 2], leaderEpochStartOffset: 20, highWatermark: 15 });
    state.onLeaderAppend(30);
    state.onFollowerFetch({ replicaId: 2, fetchOffset: 25, nowMs: T0 + 1 });
    expect(state.highWatermark).toBe(25);
    // Follower 3 is past the HW of an older epoch but has nothing of epoch 5 yet.
    expect(state.onFollowerFetch({ replicaId: 3, fetchOffset: 19, nowMs: T0 + 2 }).proposal).toBeUndefined();
    expect(state.onFollowerFetch({ replicaId: 3, fetchOffset: 24, nowMs: T0 + 3 }).proposal).toBeUndefined(); // below HW
    const proposal = state.onFollowerFetch({ replicaId: 3, fetchOffset: 26, nowMs: T0 + 4 }).proposal!;
    expect(proposal).toMatchObject({ newIsr: [1, 2, 3], leaderEpoch: 5, partitionEpoch: 10 });
    expect(state.maximalIsr).toEqual([1, 2, 3]);
    expect(state.maybeShrinkIsr(T0 + 10 * LAG_MS)).toBeUndefined(); // one in flight
    // While pending, the HW waits for follower 3 too.
    state.onFollowerFetch({ replicaId: 2, fetchOffset: 30, nowMs: T0 + 5 });
    expect(state.highWatermark).toBe(26);
    // A failed proposal leaves the committed ISR alone; a stale response is ignored.
    state.onAlterPartitionResponse(proposal, { kind: 'failed', code: 'INVALID_UPDATE_VERSION' });
    expect(state.isr).toEqual([1, 2]);
    expect(state.pendingIsrChange).toBeUndefined();
    const again = state.onFollowerFetch({ replicaId: 3, fetchOffset: 30, nowMs: T0 + 6 }).proposal!;
    state.onAlterPartitionResponse(proposal, { kind: 'committed', state: { leader: 1, replicas: [1, 2, 3], isr: [1, 2], leaderEpoch: 5, partitionEpoch: 99 } });
    expect(state.pendingIsrChange?.proposal.proposalId).toBe(again.proposalId);
    state.onPartitionMetadata({ replicas: [1, 2, 3], isr: [1, 2, 3], leaderEpoch: 5, partitionEpoch: 11 });
    expect(state.isr).toEqual([1, 2, 3]);
    expect(state.pendingIsrChange).toBeUndefined();
  });

  it('does not expand with a replica the controller would refuse', () => {
    const state = leader({ isr: [1], isReplicaEligible: (id) => id !== 3 });
    state.onLeaderAppend(5);
    expect(state.onFollowerFetch({ replicaId: 3, fetchOffset: 5, nowMs: T0 }).proposal).toBeUndefined();
    expect(state.onFollowerFetch({ replicaId: 2, fetchOffset: 5, nowMs: T0 }).proposal?.newIsr).toEqual([1, 2]);
  });
});

type Step =
  | { kind: 'append'; records: number }
  | { kind: 'fetch'; replica: number; fraction: number; advanceMs: number }
  | { kind: 'shrink'; advanceMs: number }
  | { kind: 'respond'; commit: boolean };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), records: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant('fetch' as const), replica: fc.integer({ min: 2, max: 4 }), fraction: fc.double({ min: 0, max: 1, noNaN: true }), advanceMs: fc.integer({ min: 0, max: 8_000 }) }),
  fc.record({ kind: fc.constant('shrink' as const), advanceMs: fc.integer({ min: 0, max: 15_000 }) }),
  fc.record({ kind: fc.constant('respond' as const), commit: fc.boolean() }),
);

describe('LeaderReplicaState: properties', () => {
  it('the HW never decreases, never exceeds the leader LEO, and never exceeds an ISR member LEO when it moves', () => {
    fc.assert(
      fc.property(fc.array(stepArbitrary, { maxLength: 120 }), (steps) => {
        let now = T0;
        const state = leader({ replicas: [1, 2, 3, 4], isr: [1, 2, 3] });
        let partitionEpoch = 10;
        let previousHw = state.highWatermark;
        const check = (moved: number | undefined): void => {
          expect(state.highWatermark).toBeGreaterThanOrEqual(previousHw);
          expect(state.highWatermark).toBeLessThanOrEqual(state.logEndOffset);
          if (moved !== undefined) {
            expect(moved).toBe(state.highWatermark);
            for (const id of state.maximalIsr) if (id !== 1) expect(state.follower(id)!.logEndOffset).toBeGreaterThanOrEqual(moved);
          }
          for (const id of state.isr) if (id !== 1) expect(state.maximalIsr).toContain(id);
          // At every moment, every ISR member whose LEO the leader knows holds everything below the HW.
          for (const id of state.maximalIsr) {
            const leo = id === 1 ? state.logEndOffset : state.follower(id)!.logEndOffset;
            if (leo !== UNKNOWN_LOG_END_OFFSET) expect(leo).toBeGreaterThanOrEqual(state.highWatermark);
          }
          previousHw = state.highWatermark;
        };
        for (const step of steps) {
          switch (step.kind) {
            case 'append':
              check(state.onLeaderAppend(state.logEndOffset + step.records));
              break;
            case 'fetch': {
              now += step.advanceMs;
              // Followers fetch forward only (their fetch offset never goes back within an epoch).
              const known = Math.max(0, state.follower(step.replica)!.logEndOffset);
              const fetchOffset = known + Math.floor((state.logEndOffset - known) * step.fraction);
              check(state.onFollowerFetch({ replicaId: step.replica, fetchOffset, nowMs: now }).highWatermarkAdvancedTo);
              break;
            }
            case 'shrink':
              now += step.advanceMs;
              state.maybeShrinkIsr(now);
              check(undefined);
              break;
            case 'respond': {
              const pending = state.pendingIsrChange;
              if (pending === undefined) break;
              const outcome = step.commit
                ? { kind: 'committed' as const, state: { leader: 1, replicas: [1, 2, 3, 4], isr: [...pending.proposal.newIsr], leaderEpoch: 5, partitionEpoch: ++partitionEpoch } }
                : { kind: 'failed' as const, code: 'REQUEST_TIMED_OUT' as const };
              check(state.onAlterPartitionResponse(pending.proposal, outcome).highWatermarkAdvancedTo);
              break;
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
