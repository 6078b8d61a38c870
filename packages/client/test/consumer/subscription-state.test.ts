import { describe, expect, it } from 'vitest';
import { SubscriptionState } from '../../src/consumer/subscription-state.js';

const tp = { topic: 't', partition: 0 };

describe('SubscriptionState', () => {
  it('starts partitions awaiting a reset, and keeps state of partitions that stay assigned', () => {
    const state = new SubscriptionState('earliest');
    state.assign([tp, { topic: 't', partition: 1 }]);
    expect(state.require(tp).fetchState).toEqual({ kind: 'awaiting-reset', strategy: undefined });
    state.seek(tp, 42);
    state.assign([tp]);
    expect(state.require(tp)).toMatchObject({ position: 42, fetchState: { kind: 'fetching' } });
    expect(state.assignment()).toEqual([tp]);
    expect(() => state.require({ topic: 't', partition: 1 })).toThrow(/not assigned/);
    expect(() => state.assign([{ topic: '', partition: 0 }])).toThrow(/need a topic name/);
    expect(() => state.seek(tp, -1)).toThrow(/non-negative/);
  });

  it('applies a reset only while that reset is still wanted', () => {
    const state = new SubscriptionState('latest');
    state.assign([tp]);
    const partition = state.require(tp);
    state.requestReset(tp, 'earliest');
    state.completeReset(partition, 'latest', 99, 0);
    expect(partition.position).toBeUndefined();
    state.completeReset(partition, 'earliest', 5, 3);
    expect(partition).toMatchObject({ position: 5, validatedLeaderEpoch: 3, fetchState: { kind: 'fetching' } });
    // A seek made while a lookup was in flight wins over the lookup's late answer.
    state.requestReset(tp, undefined);
    state.seek(tp, 7);
    state.completeReset(partition, 'latest', 100, 3);
    expect(partition.position).toBe(7);
  });

  it('asks for validation when the leader epoch moves past a position with a known epoch (KIP-320)', () => {
    const state = new SubscriptionState('earliest');
    state.assign([tp]);
    const partition = state.require(tp);
    state.seek(tp, 0);
    state.maybeRequireValidation(partition, 2);
    // Nothing consumed under a known epoch: nothing to validate.
    expect(partition).toMatchObject({ fetchState: { kind: 'fetching' }, validatedLeaderEpoch: 2 });
    state.advance(partition, 10, 2);
    state.maybeRequireValidation(partition, 2);
    expect(partition.fetchState.kind).toBe('fetching');
    state.maybeRequireValidation(partition, 3);
    expect(partition.fetchState.kind).toBe('awaiting-validation');
    expect(() => state.advance(partition, 5, 3)).toThrow(/only move forward/);
  });

  it('pauses and resumes without touching the position', () => {
    const state = new SubscriptionState('none');
    state.assign([tp]);
    state.seek(tp, 3);
    state.pause(tp);
    expect(state.require(tp)).toMatchObject({ paused: true, position: 3 });
    state.resume(tp);
    expect(state.require(tp).paused).toBe(false);
  });
});
