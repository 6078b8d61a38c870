// Pull replication (KIP-595 Fetch): long poll, divergence and truncation, the high watermark and
// its current-epoch rule (Raft §5.4.2), snapshot catch-up, stale and duplicated responses.
import { describe, expect, it } from 'vitest';
import { InvariantViolation } from '@raftka/protocol';
import { Harness, TIMING, dataEntry, kind } from './harness.js';
import type { FetchRequest, FetchResponse, LogEntry, RestoredState } from '../../src/raft/types.js';

function fetchRequest(replicaId: number, epoch: number, fetchOffset: number, lastFetchedEpoch: number): FetchRequest {
  return { kind: 'fetch-request', epoch, replicaId, fetchOffset, lastFetchedEpoch, maxWaitMs: TIMING.fetchMaxWaitMs, maxBytes: 1 << 20 };
}

function fetchResponse(epoch: number, leaderId: number, fields: Partial<FetchResponse>): FetchResponse {
  return {
    kind: 'fetch-response',
    epoch,
    errorCode: 'NONE',
    leaderId,
    highWatermark: 0,
    logStartOffset: 0,
    entries: [],
    divergingEpoch: undefined,
    snapshotId: undefined,
    ...fields,
  };
}

function restored(epoch: number, entries: LogEntry[], leaderId?: number, votedFor?: number): RestoredState {
  return { quorumState: { epoch, votedFor, leaderId }, snapshot: undefined, entries };
}

/** A three-voter cluster with node 1 elected and both followers caught up. */
function electedCluster(): Harness {
  const h = new Harness([1, 2, 3]);
  for (const id of [1, 2, 3]) h.add(id);
  h.elect(1);
  h.deliver();
  return h;
}

describe('long poll (KIP-595 Fetch with maxWaitMs)', () => {
  it('parks a fetch with nothing new and answers it as soon as an entry is appended', () => {
    const h = electedCluster();
    expect(h.core(1).highWatermark).toBe(1);
    expect(h.outbox).toEqual([]); // both followers' fetches are parked on the leader
    const result = h.core(1).propose([new Uint8Array([7])], h.nowMs);
    expect(result.ok).toBe(true);
    h.flush(1);
    const answers = h.take(kind('fetch-response'));
    expect(answers.map((s) => s.to).sort()).toEqual([2, 3]);
    expect(answers.every((s) => (s.message as FetchResponse).entries.length === 1)).toBe(true);
    for (const s of answers) h.deliverOne(s);
    h.deliver();
    // Both followers acknowledged offset 2 with their next fetch: committed everywhere.
    expect([1, 2, 3].map((id) => h.core(id).highWatermark)).toEqual([2, 2, 2]);
    expect(h.committed.get(3)!.map((e) => e.offset)).toEqual([0, 1]);
  });

  it('answers a parked fetch empty at fetchMaxWaitMs, and a newer fetch from the same replica replaces it', () => {
    const h = electedCluster();
    h.tick(1, TIMING.fetchMaxWaitMs);
    const expired = h.take(kind('fetch-response'));
    expect(expired.map((s) => s.to).sort()).toEqual([2, 3]);
    expect(expired.every((s) => (s.message as FetchResponse).entries.length === 0)).toBe(true);
    // Node 2 fetches twice: the first parked request is answered (empty) when the second arrives.
    h.step(1, { type: 'receive', from: 2, correlationId: 100, message: fetchRequest(2, 1, 1, 1) });
    h.step(1, { type: 'receive', from: 2, correlationId: 101, message: fetchRequest(2, 1, 1, 1) });
    expect(h.take(kind('fetch-response', 2)).map((s) => s.correlationId)).toEqual([100]);
  });
});

describe('divergence and truncation (KIP-595, as KIP-101 for data)', () => {
  it('answers a diverging fetch with the end of the epoch, and the follower truncates to it', () => {
    const h = new Harness([1, 2, 3]);
    // Node 2 holds entries of epoch 1 that never committed; node 1 led epoch 2 from offset 2.
    const leaderLog = [dataEntry(0, 1), dataEntry(1, 1), dataEntry(2, 2), dataEntry(3, 2)];
    const staleLog = [dataEntry(0, 1), dataEntry(1, 1), dataEntry(2, 1, 99), dataEntry(3, 1, 98), dataEntry(4, 1, 97)];
    h.add(1, restored(2, leaderLog, undefined, 1));
    h.add(2, restored(2, staleLog));
    h.add(3, restored(2, leaderLog));
    h.elect(1);
    expect(h.core(1).role).toBe('leader');
    h.deliver((s) => s.message.kind !== 'fetch-request' || s.from !== 2);
    const [fetch] = h.take(kind('fetch-request', 1));
    expect((fetch!.message as FetchRequest).fetchOffset).toBe(5);
    h.deliverOne(fetch!);
    const [answer] = h.take(kind('fetch-response', 2));
    expect((answer!.message as FetchResponse).divergingEpoch).toEqual({ epoch: 1, endOffset: 2 });
    const readys = h.deliverOne(answer!);
    expect(readys.find((r) => r.truncateFrom !== undefined)?.truncateFrom).toBe(2);
    expect(h.core(2).logEndOffset).toBe(2);
    h.deliver();
    // After truncation the follower fetches the leader's entries and matches its log.
    expect(h.core(2).entriesFrom(0, 1 << 20)).toEqual(h.core(1).entriesFrom(0, 1 << 20));
  });

  it('never truncates below its high watermark: that would lose committed entries (a bug, fail-stop)', () => {
    const h = new Harness([1, 2, 3]);
    h.add(2, restored(1, [dataEntry(0, 1), dataEntry(1, 1), dataEntry(2, 1)], 1));
    // Learn HW 3 from the leader, then receive a (broken) diverging answer below it.
    const [fetch] = h.take(kind('fetch-request'));
    h.step(2, { type: 'receive', from: 1, correlationId: fetch!.correlationId, message: fetchResponse(1, 1, { highWatermark: 3 }) });
    expect(h.core(2).highWatermark).toBe(3);
    const [next] = h.take(kind('fetch-request'));
    expect(() =>
      h.core(2).step(
        { type: 'receive', from: 1, correlationId: next!.correlationId, message: fetchResponse(1, 1, { divergingEpoch: { epoch: 0, endOffset: 1 } }) },
        h.nowMs,
      ),
    ).toThrow(InvariantViolation);
  });

  it('ignores stale and duplicated fetch responses', () => {
    const h = new Harness([1, 2, 3]);
    h.add(2, restored(1, [dataEntry(0, 1)], 1));
    const [fetch] = h.take(kind('fetch-request'));
    const response = fetchResponse(1, 1, { entries: [dataEntry(1, 1)], highWatermark: 1 });
    h.step(2, { type: 'receive', from: 1, correlationId: fetch!.correlationId, message: response });
    expect(h.core(2).logEndOffset).toBe(2);
    // The same response again (duplicated by the network) and one with an unknown id change nothing.
    h.step(2, { type: 'receive', from: 1, correlationId: fetch!.correlationId, message: response });
    h.step(2, { type: 'receive', from: 1, correlationId: 424242, message: fetchResponse(1, 1, { entries: [dataEntry(2, 1)] }) });
    expect(h.core(2).logEndOffset).toBe(2);
    expect(h.core(2).highWatermark).toBe(1);
  });
});

describe('the high watermark (Raft §5.4.2, KIP-595)', () => {
  it('a new leader does not commit entries of an older epoch until an entry of its own epoch is on a majority', () => {
    const h = new Harness([1, 2, 3]);
    // Node 1 has entries of epoch 1 that nodes 2 and 3 lack; it wins epoch 2 with their votes.
    const oldLog = [dataEntry(0, 1), dataEntry(1, 1), dataEntry(2, 1)];
    h.add(1, restored(1, oldLog));
    h.add(2, restored(1, [dataEntry(0, 1)]));
    h.add(3, restored(1, [dataEntry(0, 1)]));
    h.elect(1);
    expect(h.core(1).role).toBe('leader');
    expect(h.core(1).logEndOffset).toBe(4); // + the leader-change entry of epoch 2 at offset 3
    // Node 2 receives only offsets 1..2 (epoch 1) and acknowledges them with its next fetch.
    h.take(kind('fetch-request'));
    h.step(1, { type: 'receive', from: 2, correlationId: 1, message: fetchRequest(2, 2, 3, 1) });
    // A majority (1 and 2) holds offsets 0..2, but offset 2 is of epoch 1: not committed yet.
    expect(h.core(1).highWatermark).toBe(0);
    h.step(1, { type: 'receive', from: 2, correlationId: 2, message: fetchRequest(2, 2, 4, 2) });
    expect(h.core(1).highWatermark).toBe(4);
    expect(h.committed.get(1)!.map((e) => e.offset)).toEqual([0, 1, 2, 3]);
  });

  it('a follower sets its HW to min(leader HW, own log end)', () => {
    const h = new Harness([1, 2, 3]);
    h.add(2, restored(1, [dataEntry(0, 1)], 1));
    const [fetch] = h.take(kind('fetch-request'));
    h.step(2, { type: 'receive', from: 1, correlationId: fetch!.correlationId, message: fetchResponse(1, 1, { highWatermark: 9, entries: [dataEntry(1, 1)] }) });
    expect(h.core(2).highWatermark).toBe(2);
    expect(h.committed.get(2)!.map((e) => e.offset)).toEqual([0, 1]);
  });
});

describe('snapshot catch-up (KIP-630 FetchSnapshot)', () => {
  it('compacts after snapshot-created; a replica below the log start fetches and installs the snapshot', () => {
    const h = electedCluster();
    for (let i = 0; i < 4; i++) {
      h.core(1).propose([new Uint8Array([i])], h.nowMs);
      h.flush(1);
      h.deliver();
    }
    expect(h.core(1).highWatermark).toBe(5);
    const ready = h.step(1, { type: 'snapshot-created', snapshotId: { endOffset: 4, epoch: 1 } });
    expect(ready.find((r) => r.compactBefore !== undefined)?.compactBefore).toBe(4);
    expect(h.core(1).logStartOffset).toBe(4);
    expect(() => h.core(1).step({ type: 'snapshot-created', snapshotId: { endOffset: 9, epoch: 1 } }, h.nowMs)).toThrow(InvariantViolation);

    // A new observer starts empty, finds the leader and is told to fetch the snapshot.
    h.add(7);
    h.deliver((s) => s.message.kind !== 'fetch-request' || s.from === 7, 10);
    const asked = h.readys.get(7)!.find((r) => r.fetchSnapshot !== undefined);
    expect(asked?.fetchSnapshot).toEqual({ leaderId: 1, snapshotId: { endOffset: 4, epoch: 1 } });
    expect(h.outbox.filter((s) => s.from === 7)).toEqual([]); // waits for the download
    const installed = h.step(7, { type: 'snapshot-fetched', snapshotId: { endOffset: 4, epoch: 1 } });
    expect(installed[0]!.installSnapshot).toEqual({ endOffset: 4, epoch: 1 });
    expect(h.core(7).logStartOffset).toBe(4);
    expect(h.core(7).highWatermark).toBe(4);
    h.deliver((s) => s.from === 7 || s.to === 7);
    expect(h.core(7).logEndOffset).toBe(5);
    expect(h.core(7).highWatermark).toBe(5);
    // Delivery resumes after the snapshot: only offset 4 is handed to the state machine.
    expect(h.committed.get(7)!.map((e) => e.offset)).toEqual([4]);
  });

  it('a failed download falls back to fetching, which asks for the snapshot again', () => {
    const h = new Harness([1, 2, 3]);
    h.add(2, restored(3, [], 1));
    const [fetch] = h.take(kind('fetch-request'));
    h.step(2, { type: 'receive', from: 1, correlationId: fetch!.correlationId, message: fetchResponse(3, 1, { snapshotId: { endOffset: 10, epoch: 2 }, logStartOffset: 10 }) });
    expect(h.outbox).toEqual([]);
    // A long download does not count as a silent leader; the driver reports its failure instead.
    h.tick(2, 2 * TIMING.fetchTimeoutMs);
    expect(h.core(2).role).toBe('follower');
    h.step(2, { type: 'snapshot-fetch-failed', snapshotId: { endOffset: 10, epoch: 2 } });
    h.tick(2, TIMING.electionBackoffMaxMs);
    expect(h.take(kind('fetch-request')).length).toBe(1);
  });
});
