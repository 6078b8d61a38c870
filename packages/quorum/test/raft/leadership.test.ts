// Leadership changes: check-quorum resignation, graceful EndQuorumEpoch handover (KIP-595),
// fast failover on failed fetches, observers that follow without voting.
import { describe, expect, it } from 'vitest';
import { Harness, TIMING, kind } from './harness.js';
import type { EndQuorumEpochRequest, FetchRequest } from '../../src/raft/types.js';

function electedCluster(voters = [1, 2, 3]): Harness {
  const h = new Harness(voters);
  for (const id of voters) h.add(id);
  h.elect(1);
  h.deliver();
  return h;
}

describe('check-quorum (KIP-595 fetch timeout on the leader)', () => {
  it('a leader that no majority fetches from within fetchTimeoutMs resigns and stops acting as leader', () => {
    const h = electedCluster();
    h.take(() => true);
    h.tick(1, TIMING.fetchTimeoutMs / 2);
    expect(h.core(1).role).toBe('leader');
    h.tick(1, TIMING.fetchTimeoutMs / 2);
    expect(h.core(1).role).toBe('resigned');
    expect(h.core(1).leaderId).toBeUndefined();
    expect(h.core(1).propose([new Uint8Array([1])], h.nowMs)).toEqual({ ok: false, leaderId: undefined, epoch: 1 });
    // A fetch now gets NOT_LEADER_OR_FOLLOWER, so that followers move on at once.
    h.take(() => true);
    h.step(1, {
      type: 'receive',
      from: 2,
      correlationId: 5,
      message: { kind: 'fetch-request', epoch: 1, replicaId: 2, fetchOffset: 1, lastFetchedEpoch: 1, maxWaitMs: 100, maxBytes: 100 },
    });
    const [answer] = h.take(kind('fetch-response'));
    expect(answer!.message.kind === 'fetch-response' && answer!.message.errorCode).toBe('NOT_LEADER_OR_FOLLOWER');
  });

  it('a leader that keeps hearing from one follower (a majority of three) stays', () => {
    const h = electedCluster();
    for (let i = 0; i < 4; i++) {
      h.tick(1, TIMING.fetchTimeoutMs / 2);
      // Node 2's parked fetch expires and it fetches again; node 3 is silent.
      h.deliver((s) => (s.to === 2 && s.message.kind === 'fetch-response') || (s.from === 2 && s.message.kind === 'fetch-request'));
    }
    expect(h.core(1).role).toBe('leader');
  });
});

describe('graceful resignation (KIP-595 EndQuorumEpoch)', () => {
  it('names the most caught-up voters first, and the first one campaigns at once', () => {
    const h = electedCluster();
    // Node 3 falls behind: it stops fetching while node 2 gets a new entry.
    h.core(1).propose([new Uint8Array([1])], h.nowMs);
    h.flush(1);
    h.take(kind('fetch-response', 3));
    h.deliver((s) => s.to === 2 || s.from === 2);
    h.step(1, { type: 'resign' });
    expect(h.core(1).role).toBe('resigned');
    const endEpoch = h.take(kind('end-quorum-epoch-request'));
    expect(endEpoch.map((s) => s.to).sort()).toEqual([2, 3]);
    expect((endEpoch[0]!.message as EndQuorumEpochRequest).preferredSuccessors).toEqual([2, 3]);
    h.take(() => true);
    for (const s of endEpoch) h.deliverOne(s);
    expect(h.core(2).role).toBe('prospective'); // first preferred: no waiting for a timeout
    expect(h.core(3).role).toBe('follower'); // later in the list: backs off by its position
    h.deliver(kind('vote-request'));
    h.deliver((s) => s.message.kind !== 'fetch-request');
    expect(h.core(2).role).toBe('leader');
    expect(h.core(2).epoch).toBe(2);
    // The resigned (shutting-down) node voted but never campaigns again.
    h.tick(1, 10 * TIMING.electionTimeoutMs);
    expect(h.core(1).role).toBe('follower');
    expect(h.core(1).leaderId).toBe(2);
  });
});

describe('resignation answers held fetches', () => {
  it('a resigning leader answers its parked fetches with NOT_LEADER_OR_FOLLOWER, so followers move on at once', () => {
    const h = electedCluster();
    expect(h.outbox).toEqual([]); // both followers' fetches are parked
    h.step(1, { type: 'resign' });
    const answers = h.take(kind('fetch-response'));
    expect(answers.map((s) => s.to).sort()).toEqual([2, 3]);
    expect(answers.map((s) => s.message.kind === 'fetch-response' && s.message.errorCode)).toEqual([
      'NOT_LEADER_OR_FOLLOWER',
      'NOT_LEADER_OR_FOLLOWER',
    ]);
  });
});

describe('fast failover', () => {
  it('two consecutive failed fetches to the leader (connection refused) start an election without waiting for the fetch timeout', () => {
    const h = electedCluster();
    h.core(1).propose([new Uint8Array([1])], h.nowMs);
    h.flush(1);
    h.deliver(kind('fetch-response', 2));
    const [fetch] = h.take(kind('fetch-request', 1)).filter((s) => s.from === 2);
    h.step(2, { type: 'request-failed', to: 1, correlationId: fetch!.correlationId });
    expect(h.core(2).role).toBe('follower');
    h.tick(2, TIMING.electionBackoffMaxMs);
    const [retry] = h.take((s) => s.from === 2 && s.message.kind === 'fetch-request');
    h.step(2, { type: 'request-failed', to: 1, correlationId: retry!.correlationId });
    expect(h.core(2).role).toBe('prospective');
  });
});

describe('observers', () => {
  it('find the leader through any voter, follow it, and commit without ever voting', () => {
    const h = electedCluster();
    h.add(9, undefined, () => 0.99); // picks the last voter, node 3, who is a follower
    const [discovery] = h.take((s) => s.from === 9);
    expect(discovery!.to).toBe(3);
    expect((discovery!.message as FetchRequest).replicaId).toBe(9);
    h.deliverOne(discovery!);
    h.deliver((s) => s.to === 9 || s.from === 9);
    expect(h.core(9).role).toBe('follower');
    expect(h.core(9).leaderId).toBe(1);
    expect(h.core(9).highWatermark).toBe(1);
    // The leader tracks it as an observer, not a voter: it never counts for the HW.
    const description = h.core(1).describe(h.nowMs);
    expect(description.observers.map((o) => o.nodeId)).toEqual([9]);
    expect(description.voters.map((v) => v.nodeId)).toEqual([1, 2, 3]);
    // When the leader goes silent the observer looks for a leader again instead of campaigning.
    h.take(() => true);
    h.tick(9, TIMING.fetchTimeoutMs);
    expect(h.core(9).role).toBe('unattached');
    expect(h.outbox.some((s) => s.from === 9 && s.message.kind === 'fetch-request')).toBe(true);
  });
});
