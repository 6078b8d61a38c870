import { describe, expect, it } from 'vitest';
import { RaftkaError } from '@raftka/protocol';
import { RetryPolicy } from '../../src/producer/retry-policy.js';

const base = { retryBackoffMs: 100, retryBackoffMaxMs: 1000, deliveryTimeoutMs: 120_000, retries: 2 ** 31 - 1 };

describe('RetryPolicy', () => {
  it('grows exponentially from retryBackoffMs and caps at retryBackoffMaxMs', () => {
    const policy = new RetryPolicy({ ...base, random: () => 0.5 }); // factor exactly 1
    expect([0, 1, 2, 3, 4, 5, 50, 5000].map((attempt) => policy.backoffMs(attempt))).toEqual([100, 200, 400, 800, 1000, 1000, 1000, 1000]);
  });

  it('applies ±20% jitter', () => {
    expect(new RetryPolicy({ ...base, random: () => 0 }).backoffMs(1)).toBe(160);
    expect(new RetryPolicy({ ...base, random: () => 0.999999 }).backoffMs(1)).toBe(239);
    expect(new RetryPolicy({ ...base, random: () => 0.999999 }).backoffMs(3)).toBe(959);
    expect(new RetryPolicy({ ...base, random: () => 0.999999 }).backoffMs(4)).toBe(1000);
  });

  it('takes the backoff exponent from the retries against the current leader, and the limit from all retries', () => {
    const policy = new RetryPolicy({ ...base, retries: 5, random: () => 0.5 });
    const error = new RaftkaError('NOT_LEADER_OR_FOLLOWER', 'the new leader has not applied its election yet');
    // Three failures against a dead leader, then the first against the new one: 100 ms, not 800.
    expect(policy.decide({ error, attempts: 3, backoffAttempt: 0, createdMs: 0, nowMs: 10 })).toEqual({ kind: 'retry', delayMs: 100 });
    expect(policy.decide({ error, attempts: 5, backoffAttempt: 0, createdMs: 0, nowMs: 10 })).toMatchObject({ kind: 'fail', reason: 'retries-exhausted' });
  });

  it('retries only retriable errors', () => {
    const policy = new RetryPolicy({ ...base, random: () => 0.5 });
    expect(policy.decide({ error: new RaftkaError('NOT_LEADER_OR_FOLLOWER', 'x'), attempts: 0, createdMs: 0, nowMs: 10 })).toEqual({ kind: 'retry', delayMs: 100 });
    const fatal = new RaftkaError('MESSAGE_TOO_LARGE', 'x');
    expect(policy.decide({ error: fatal, attempts: 0, createdMs: 0, nowMs: 10 })).toEqual({ kind: 'fail', error: fatal, reason: 'not-retriable' });
  });

  it('gives up when retries run out or the delivery timeout would pass', () => {
    const error = new RaftkaError('REQUEST_TIMED_OUT', 'slow');
    expect(new RetryPolicy({ ...base, retries: 3, random: () => 0.5 }).decide({ error, attempts: 3, createdMs: 0, nowMs: 0 })).toMatchObject({
      kind: 'fail',
      reason: 'retries-exhausted',
    });
    const policy = new RetryPolicy({ ...base, random: () => 0.5 });
    expect(policy.decide({ error, attempts: 9, createdMs: 0, nowMs: 118_999 })).toEqual({ kind: 'retry', delayMs: 1000 });
    const decision = policy.decide({ error, attempts: 9, createdMs: 0, nowMs: 119_000 });
    expect(decision).toMatchObject({ kind: 'fail', reason: 'delivery-timeout' });
    if (decision.kind === 'fail') {
      expect(decision.error.code).toBe('REQUEST_TIMED_OUT');
      expect(decision.error.retriable).toBe(false);
      expect(decision.error.cause).toBe(error);
    }
  });
});
