// Elections: KIP-595 votes, KIP-996 pre-votes, Raft §5.2 (one vote per epoch) and §5.4.1 (the
// up-to-date rule), single-voter quorums.
import { describe, expect, it } from 'vitest';
import { Harness, TIMING, dataEntry, emptyState, kind } from './harness.js';
import type { VoteRequest, VoteResponse } from '../../src/raft/types.js';

describe('pre-vote then vote (KIP-996, KIP-595)', () => {
  it('a timed-out voter asks for pre-votes without bumping any epoch, then runs and wins', () => {
    const h = new Harness([1, 2, 3]);
    for (const id of [1, 2, 3]) h.add(id);
    const readys = h.tick(1, TIMING.electionTimeoutMs);
    expect(h.core(1).role).toBe('prospective');
    expect(h.core(1).epoch).toBe(0);
    // A pre-vote is not a vote: nothing about it is persisted.
    expect(readys.some((r) => r.quorumState !== undefined)).toBe(false);
    const preVotes = h.take(kind('vote-request'));
    expect(preVotes.map((s) => (s.message as VoteRequest).preVote)).toEqual([true, true]);
    expect(preVotes.map((s) => s.message.epoch)).toEqual([1, 1]);

    for (const s of preVotes) h.deliverOne(s);
    expect(h.core(2).epoch).toBe(0); // voters do not move on a pre-vote
    const grants = h.take(kind('vote-response'));
    expect(grants.every((s) => (s.message as VoteResponse).voteGranted)).toBe(true);
    const candidacy = h.deliverOne(grants[0]!);
    expect(h.core(1).role).toBe('candidate');
    expect(h.core(1).epoch).toBe(1);
    // The vote for itself is in the same Ready as the vote requests: on disk before they leave.
    const withVotes = candidacy.find((r) => r.messages.some((m) => m.message.kind === 'vote-request'))!;
    expect(withVotes.quorumState).toEqual({ epoch: 1, votedFor: 1, leaderId: undefined });

    h.deliver(kind('vote-request'));
    h.deliver(kind('vote-response'));
    expect(h.core(1).role).toBe('leader');
    // The new leader tells the voters and writes a leader-change entry of its epoch.
    expect(h.outbox.filter(kind('begin-quorum-epoch-request')).map((s) => s.to).sort()).toEqual([2, 3]);
    expect(h.core(1).entriesFrom(0, 1 << 20)).toEqual([
      { offset: 0, epoch: 1, payload: { kind: 'leader-change', leaderId: 1, voters: [1, 2, 3] } },
    ]);
    h.deliver();
    expect(h.core(2).role).toBe('follower');
    expect(h.core(2).leaderId).toBe(1);
  });

  it('a voter that hears from a live leader refuses pre-votes, so a returning node cannot disrupt the quorum', () => {
    const h = new Harness([1, 2, 3]);
    for (const id of [1, 2, 3]) h.add(id);
    h.elect(1);
    h.deliver();
    expect(h.core(2).role).toBe('follower');
    // Node 3 was cut off and times out, while node 2 still fetches from the leader.
    h.take(() => true);
    h.tick(3, TIMING.fetchTimeoutMs);
    expect(h.core(3).role).toBe('prospective');
    // Meanwhile node 2 keeps hearing from the leader (its parked fetch is answered on append).
    h.core(1).propose([new Uint8Array([1])], h.nowMs);
    h.flush(1);
    h.deliver((s) => (s.to === 2 && s.message.kind === 'fetch-response') || (s.from === 2 && s.message.kind === 'fetch-request'));
    const preVote = h.take(kind('vote-request', 2));
    h.deliverOne(preVote[0]!);
    const [answer] = h.take(kind('vote-response', 3));
    expect((answer!.message as VoteResponse).voteGranted).toBe(false);
    expect((answer!.message as VoteResponse).leaderId).toBe(1);
    h.deliverOne(answer!);
    // The refusal names the leader: node 3 follows it instead of starting an election.
    expect(h.core(3).role).toBe('follower');
    expect(h.core(3).leaderId).toBe(1);
    expect([1, 2, 3].map((id) => h.core(id).epoch)).toEqual([1, 1, 1]);
  });
});

describe('votes (Raft §5.2, §5.4.1; KIP-595)', () => {
  function voteRequest(candidateId: number, epoch: number, lastOffsetEpoch: number, lastOffset: number): VoteRequest {
    return { kind: 'vote-request', epoch, candidateId, lastOffsetEpoch, lastOffset, preVote: false };
  }

  it('grants at most one vote per epoch, persisted in the Ready that carries the response', () => {
    const h = new Harness([1, 2, 3]);
    h.add(1);
    const first = h.step(1, { type: 'receive', from: 2, correlationId: 7, message: voteRequest(2, 4, 0, 0) });
    const response = first.flatMap((r) => r.messages).find((m) => m.message.kind === 'vote-response')!;
    expect(response.correlationId).toBe(7);
    expect((response.message as VoteResponse).voteGranted).toBe(true);
    const withResponse = first.find((r) => r.messages.includes(response))!;
    expect(withResponse.quorumState).toEqual({ epoch: 4, votedFor: 2, leaderId: undefined });

    const second = h.step(1, { type: 'receive', from: 3, correlationId: 8, message: voteRequest(3, 4, 0, 0) });
    const refused = second.flatMap((r) => r.messages).find((m) => m.message.kind === 'vote-response')!;
    expect((refused.message as VoteResponse).voteGranted).toBe(false);
    expect(second.some((r) => r.quorumState !== undefined)).toBe(false);

    // A repeated request from the same candidate (a duplicate on the wire) is granted again.
    const again = h.step(1, { type: 'receive', from: 2, correlationId: 9, message: voteRequest(2, 4, 0, 0) });
    expect((again.flatMap((r) => r.messages)[0]!.message as VoteResponse).voteGranted).toBe(true);
  });

  it('a vote survives a restart: the restored vote still refuses another candidate', () => {
    const h = new Harness([1, 2, 3]);
    h.add(1, { ...emptyState(), quorumState: { epoch: 4, votedFor: 2, leaderId: undefined } });
    const readys = h.step(1, { type: 'receive', from: 3, correlationId: 1, message: voteRequest(3, 4, 0, 0) });
    expect((readys.flatMap((r) => r.messages)[0]!.message as VoteResponse).voteGranted).toBe(false);
  });

  it('refuses candidates whose log is less up to date: compares last epoch, then last offset', () => {
    const h = new Harness([1, 2, 3]);
    const entries = [dataEntry(0, 1), dataEntry(1, 2), dataEntry(2, 2)];
    h.add(1, { quorumState: { epoch: 2, votedFor: undefined, leaderId: undefined }, snapshot: undefined, entries });
    const ask = (candidate: number, epoch: number, lastEpoch: number, lastOffset: number, cid: number): boolean => {
      const readys = h.step(1, { type: 'receive', from: candidate, correlationId: cid, message: voteRequest(candidate, epoch, lastEpoch, lastOffset) });
      return (readys.flatMap((r) => r.messages).find((m) => m.correlationId === cid)!.message as VoteResponse).voteGranted;
    };
    expect(ask(2, 3, 1, 10, 1)).toBe(false); // older last epoch, even with a longer log
    expect(ask(2, 4, 2, 2, 2)).toBe(false); // same last epoch, shorter log
    expect(ask(3, 5, 2, 3, 3)).toBe(true); // same last epoch, same length
    expect(h.core(1).epoch).toBe(5);
  });

  it('an observer never votes', () => {
    const h = new Harness([1, 2, 3]);
    h.add(9);
    const readys = h.step(9, { type: 'receive', from: 1, correlationId: 1, message: voteRequest(1, 1, 0, 0) });
    const response = readys.flatMap((r) => r.messages)[0]!.message as VoteResponse;
    expect(response.voteGranted).toBe(false);
    expect(response.errorCode).toBe('INCONSISTENT_VOTER_SET');
    expect(h.core(9).isVoter).toBe(false);
    h.tick(9, 10 * TIMING.electionTimeoutMs);
    expect(h.core(9).role).toBe('unattached'); // and never campaigns
  });
});

describe('single-voter quorum', () => {
  it('elects itself at start and commits on its own durable writes', () => {
    const h = new Harness([1]);
    const core = h.add(1);
    expect(core.role).toBe('leader');
    expect(core.epoch).toBe(1);
    expect(core.highWatermark).toBe(1); // the leader-change entry, once advanced
    const result = core.propose([new Uint8Array([1, 2, 3])], h.nowMs);
    expect(result).toEqual({ ok: true, offset: 1, epoch: 1 });
    // Not committed before the Ready carrying it is advanced (durable).
    expect(core.highWatermark).toBe(1);
    h.flush(1);
    expect(core.highWatermark).toBe(2);
    expect(h.committed.get(1)!.map((e) => e.offset)).toEqual([0, 1]);
  });

  it('after a restart it leads a new epoch and re-delivers the committed log', () => {
    const h = new Harness([1]);
    const entries = [
      { offset: 0, epoch: 1, payload: { kind: 'leader-change' as const, leaderId: 1, voters: [1] } },
      dataEntry(1, 1),
    ];
    const core = h.add(1, { quorumState: { epoch: 1, votedFor: 1, leaderId: 1 }, snapshot: undefined, entries });
    expect(core.role).toBe('leader');
    expect(core.epoch).toBe(2);
    expect(h.committed.get(1)!.map((e) => `${e.offset}@${e.epoch}`)).toEqual(['0@1', '1@1', '2@2']);
  });
});
