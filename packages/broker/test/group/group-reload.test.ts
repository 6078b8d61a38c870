// A new coordinator (after leadership of the __consumer_offsets partition moves) rebuilds every
// group from the records the old one persisted, and members carry on where they were.
import { describe, expect, it } from 'vitest';
import { GroupCoordinator, decodeGroupRecordKey, type GroupRecord } from '../../src/group/index.js';
import { Harness } from './harness.js';

const G = 'payments';

function buildHistory(): Harness {
  const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
  const a = h.joinNew(G, { clientId: 'a', topics: ['orders', 'refunds'] });
  const b = h.join(G, { clientId: 'b', groupInstanceId: 'static-b', topics: ['orders', 'refunds'] });
  h.advance(2_000); // the initial delay, extended once because b arrived during it
  const ja = h.joinResult(a.requestId);
  const jb = h.joinResult(b);
  h.sync(G, ja.memberId, ja.generationId, { [ja.memberId]: 'orders-0', [jb.memberId]: 'orders-1' });
  h.sync(G, jb.memberId, jb.generationId, {}, 'static-b');
  h.commit(G, ja.memberId, ja.generationId, [['orders', 0, 100], ['refunds', 0, 3]]);
  h.commit(G, jb.memberId, jb.generationId, [['orders', 1, 200]], 'static-b');
  h.commit(G, ja.memberId, ja.generationId, [['orders', 0, 150]]);
  // A simple consumer's group, one of whose offsets is later deleted, and a deleted group.
  h.commit('simple', '', -1, [['logs', 0, 9], ['logs', 1, 10]]);
  h.send({ type: 'delete-offsets', groupId: 'simple', partitions: [{ topic: 'logs', partition: 1 }] });
  h.commit('doomed', '', -1, [['logs', 0, 1]]);
  h.send({ type: 'delete-groups', groupIds: ['doomed'] });
  // A dynamic group whose only member left: Empty at generation 2.
  const e = h.joinNew('emptied');
  h.advance(1_000);
  expect(h.joinResult(e.requestId).generationId).toBe(1);
  h.sync('emptied', e.memberId, 1, { [e.memberId]: 'x' });
  h.send({ type: 'leave', groupId: 'emptied', members: [{ memberId: e.memberId }] });
  return h;
}

function snapshot(core: GroupCoordinator) {
  const ids = core.listGroups().map((l) => l.groupId).sort();
  return {
    listing: core.listGroups().sort((x, y) => x.groupId.localeCompare(y.groupId)),
    described: core.describeGroups(ids),
    // Offsets in a canonical order: fetch-all lists them in load order, which compaction changes.
    offsets: ids.map((id) => core.fetchOffsets(id).sort((x, y) => x.topic.localeCompare(y.topic) || x.partition - y.partition)),
  };
}

/** What log compaction leaves: the newest record per key, tombstones dropped. */
function compact(records: GroupRecord[]): GroupRecord[] {
  const latest = new Map<string, GroupRecord>();
  for (const r of records) {
    const k = r.key.toString('hex');
    latest.delete(k);
    latest.set(k, r);
  }
  return [...latest.values()].filter((r) => r.value !== null);
}

describe('GroupCoordinator.loadFrom', () => {
  it('records -> loadFrom gives the same groups, members, assignments and offsets', () => {
    const h = buildHistory();
    const loaded = GroupCoordinator.loadFrom(h.records, h.options, h.nowMs);
    expect(snapshot(loaded)).toEqual(snapshot(h.core));
    const s = snapshot(loaded);
    expect(s.listing.map((l) => [l.groupId, l.state])).toEqual([
      ['emptied', 'Empty'],
      [G, 'Stable'],
      ['simple', 'Empty'],
    ]);
    expect(loaded.fetchOffsets(G, [{ topic: 'orders', partition: 0 }])[0]!.offset).toBe(150);
    expect(loaded.describeGroups(['emptied'])[0]!.generationId).toBe(2);
  });

  it('a compacted log loads to the same state', () => {
    const h = buildHistory();
    const compacted = compact(h.records);
    expect(compacted.length).toBeLessThan(h.records.length);
    expect(compacted.some((r) => decodeGroupRecordKey(r.key).groupId === 'doomed')).toBe(false);
    expect(snapshot(GroupCoordinator.loadFrom(compacted, h.options, h.nowMs))).toEqual(snapshot(h.core));
  });

  it('members carry on with the new coordinator: heartbeats, commits, static restart', () => {
    const h = buildHistory();
    const before = h.core.describeGroups([G])[0]!;
    const next = new Harness(h.options);
    next.nowMs = h.nowMs + 500;
    next.core = GroupCoordinator.loadFrom(h.records, h.options, next.nowMs);
    const [a, b] = before.members;
    expect(next.heartbeat(G, a!.memberId, before.generationId)).toBe('NONE');
    expect(next.heartbeat(G, a!.memberId, before.generationId - 1)).toBe('ILLEGAL_GENERATION');
    expect(next.commit(G, a!.memberId, before.generationId, [['orders', 0, 151]])).toEqual(['NONE']);
    // The static member restarts against the new coordinator and keeps its partitions.
    const rejoin = next.joinResult(next.join(G, { clientId: 'b', groupInstanceId: 'static-b', topics: ['orders', 'refunds'] }));
    expect(rejoin.generationId).toBe(before.generationId);
    expect(next.state(G)).toBe('Stable');
    const sync = next.syncResult(next.sync(G, rejoin.memberId, before.generationId, {}, 'static-b'));
    expect(sync.assignment.toString()).toBe(b!.assignment.toString());
    // A member that stays silent after the move expires after its session timeout.
    next.advance(5_000);
    expect(next.heartbeat(G, a!.memberId, before.generationId)).toBe('NONE');
    next.advance(5_000);
    expect(next.heartbeat(G, a!.memberId, before.generationId)).toBe('REBALANCE_IN_PROGRESS');
    expect(next.heartbeat(G, rejoin.memberId, before.generationId, 'static-b')).toBe('UNKNOWN_MEMBER_ID');
  });
});
