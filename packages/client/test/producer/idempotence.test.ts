import { describe, expect, it } from 'vitest';
import { IdempotenceState, nextSequenceAfter, SEQUENCE_MAX } from '../../src/producer/idempotence.js';

function batch(partition: number, recordCount: number) {
  return { topic: 't', partition, recordCount, producerId: -1, producerEpoch: -1, baseSequence: -1 };
}

describe('IdempotenceState', () => {
  it('sends nothing until a producer id is known', () => {
    const state = new IdempotenceState();
    expect(state.needsProducerId).toBe(true);
    expect(state.canSend('t', 0)).toBe(false);
    state.setProducerId(42, 0);
    expect(state.canSend('t', 0)).toBe(true);
  });

  it('assigns consecutive sequences per partition and keeps them across retries', () => {
    const state = new IdempotenceState();
    state.setProducerId(42, 0);
    const a = batch(0, 3);
    const b = batch(0, 2);
    const c = batch(1, 4);
    state.sequenceFor(a);
    state.sequenceFor(b);
    state.sequenceFor(c);
    expect([a.baseSequence, b.baseSequence, c.baseSequence]).toEqual([0, 3, 0]);
    expect(a).toMatchObject({ producerId: 42, producerEpoch: 0 });
    expect(state.nextSequence('t', 0)).toBe(5);
    // A retry of `a` keeps sequence 0, so the broker can recognise a duplicate.
    state.sequenceFor(a);
    expect(a.baseSequence).toBe(0);
    expect(state.nextSequence('t', 0)).toBe(5);
    expect(state.inFlight('t', 0).map((x) => x.baseSequence)).toEqual([0, 3]);
  });

  it('bounds in-flight batches per partition at 5', () => {
    const state = new IdempotenceState();
    state.setProducerId(1, 0);
    const sent = Array.from({ length: 5 }, () => batch(0, 1));
    for (const b of sent) state.sequenceFor(b);
    expect(state.canSend('t', 0)).toBe(false);
    expect(state.canSend('t', 1)).toBe(true);
    state.onSuccess(sent[0]!);
    expect(state.canSend('t', 0)).toBe(true);
  });

  it('treats DUPLICATE_SEQUENCE_NUMBER as already appended', () => {
    const state = new IdempotenceState();
    state.setProducerId(1, 0);
    const a = batch(0, 1);
    state.sequenceFor(a);
    expect(state.decideOnError(a, 'DUPLICATE_SEQUENCE_NUMBER', false)).toEqual({ kind: 'success-duplicate' });
  });

  it('retries OUT_OF_ORDER_SEQUENCE_NUMBER behind an unresolved earlier batch, bumps the epoch when it is the first', () => {
    const state = new IdempotenceState();
    state.setProducerId(1, 0);
    const a = batch(0, 1);
    const b = batch(0, 1);
    state.sequenceFor(a);
    state.sequenceFor(b);
    expect(state.decideOnError(b, 'OUT_OF_ORDER_SEQUENCE_NUMBER', false)).toEqual({ kind: 'retry' });
    expect(state.hasValidProducerId).toBe(true);
    expect(state.decideOnError(a, 'OUT_OF_ORDER_SEQUENCE_NUMBER', false)).toEqual({ kind: 'bump-epoch-then-retry' });
    expect(state.needsProducerId).toBe(true);
    expect(state.canSend('t', 0)).toBe(false);
  });

  it('bumps the epoch on UNKNOWN_PRODUCER_ID and re-sequences from 0 (KIP-360)', () => {
    const state = new IdempotenceState();
    state.setProducerId(1, 0);
    const a = batch(0, 2);
    const b = batch(0, 2);
    state.sequenceFor(a);
    state.sequenceFor(b);
    expect(state.decideOnError(a, 'UNKNOWN_PRODUCER_ID', false)).toEqual({ kind: 'bump-epoch-then-retry' });
    state.setProducerId(1, 1);
    expect(state.inFlight('t', 0)).toEqual([]);
    state.sequenceFor(a);
    state.sequenceFor(b);
    expect([a.producerEpoch, a.baseSequence, b.baseSequence]).toEqual([1, 0, 2]);
    // A late answer for the old epoch says nothing about the new one.
    expect(state.decideOnError({ ...a, producerEpoch: 0 }, 'OUT_OF_ORDER_SEQUENCE_NUMBER', false)).toEqual({ kind: 'retry' });
  });

  it('is fatal when fenced, retries retriable errors, and bumps after a non-retriable failure', () => {
    const state = new IdempotenceState();
    state.setProducerId(1, 0);
    const a = batch(0, 1);
    state.sequenceFor(a);
    expect(state.decideOnError(a, 'NOT_LEADER_OR_FOLLOWER', true)).toEqual({ kind: 'retry' });
    const fenced = state.decideOnError(a, 'INVALID_PRODUCER_EPOCH', false);
    expect(fenced.kind).toBe('fatal');
    expect(state.decideOnError(a, 'INVALID_RECORD', false)).toEqual({ kind: 'fail-batch', bumpEpoch: true });
    expect(state.needsProducerId).toBe(true);
  });

  it('wraps sequences at 2^31 - 1', () => {
    expect(nextSequenceAfter(SEQUENCE_MAX - 1, 1)).toBe(SEQUENCE_MAX);
    expect(nextSequenceAfter(SEQUENCE_MAX, 1)).toBe(0);
    expect(nextSequenceAfter(SEQUENCE_MAX - 2, 5)).toBe(2);
  });

  it('lets a retry of an unresolved batch go out even when the in-flight window is full', () => {
    const state = new IdempotenceState(2);
    state.setProducerId(7, 0);
    const first = batch(0, 1);
    const second = batch(0, 1);
    state.sequenceFor(first);
    state.sequenceFor(second);
    expect(state.canSend('t', 0)).toBe(false);
    // Both failed (say NOT_LEADER_OR_FOLLOWER) and wait to be resent with their sequences.
    expect(state.canSend('t', 0, first)).toBe(true);
    state.sequenceFor(first);
    expect(first.baseSequence).toBe(0);
    expect(state.inFlight('t', 0).map((entry) => entry.baseSequence)).toEqual([0, 1]);
    expect(state.canSend('t', 0, batch(0, 1))).toBe(false);
  });

  it('requestEpochBump stops sends until a new epoch is installed', () => {
    const state = new IdempotenceState();
    state.setProducerId(7, 0);
    state.requestEpochBump();
    expect(state.needsProducerId).toBe(true);
    expect(state.canSend('t', 0)).toBe(false);
    state.setProducerId(7, 1);
    expect(state.canSend('t', 0)).toBe(true);
  });
});
