import { describe, expect, it } from 'vitest';
import { encodeSubscription, type JoinGroupResponse } from '../../src/group/index.js';
import { Harness, type JoinOptions } from './harness.js';

const G = 'orders-app';

/** Runs deadlines until every given join is answered (a bounded number of steps). */
function settleJoins(h: Harness, requestIds: number[]): JoinGroupResponse[] {
  for (let i = 0; i < 20 && requestIds.some((id) => h.response(id) === undefined); i++) {
    const next = h.core.nextDeadlineMs();
    if (next === undefined) break;
    h.advanceTo(Math.max(next, h.nowMs));
  }
  return requestIds.map((id) => h.joinResult(id));
}

/** Joins members (dynamic unless an instance id is given), syncs, and returns the Stable group. */
function formStableGroup(h: Harness, members: JoinOptions[]) {
  const joins = members.map((m) =>
    m.groupInstanceId !== undefined ? { memberId: '', requestId: h.join(G, m) } : h.joinNew(G, m),
  );
  const results = settleJoins(h, joins.map((j) => j.requestId));
  const generationId = results[0]!.generationId;
  const leader = results.find((r) => r.members.length > 0)!;
  const memberIds = results.map((r) => r.memberId);
  const assignments = Object.fromEntries(memberIds.map((id) => [id, `assignment-of-${id}`]));
  const syncs = memberIds.map((id) => h.sync(G, id, generationId, id === leader.leaderId ? assignments : {}));
  for (const s of syncs) expect(h.syncResult(s).errorCode).toBe('NONE');
  expect(h.state(G)).toBe('Stable');
  return { generationId, leaderId: leader.leaderId, memberIds, assignments };
}

describe('JoinGroup and SyncGroup', () => {
  it('three members joining within the initial delay form one generation with one leader', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 3_000 });
    const start = h.nowMs;
    const a = h.joinNew(G, { clientId: 'a' });
    const b = h.joinNew(G, { clientId: 'b' });
    const c = h.joinNew(G, { clientId: 'c' });
    expect(h.state(G)).toBe('PreparingRebalance');
    // Members kept arriving during the first delay, so it is extended once (Kafka's InitialDelayedJoin).
    h.advanceTo(start + 5_999);
    expect(h.response(a.requestId)).toBeUndefined();
    h.advanceTo(start + 6_000);
    const results = [a, b, c].map((m) => h.joinResult(m.requestId));
    for (const r of results) {
      expect(r.errorCode).toBe('NONE');
      expect(r.generationId).toBe(1);
      expect(r.leaderId).toBe(a.memberId);
      expect(r.protocolName).toBe('range');
    }
    expect(results[0]!.members.map((m) => m.memberId)).toEqual([a.memberId, b.memberId, c.memberId]);
    expect(results[1]!.members).toEqual([]);
    expect(results[2]!.members).toEqual([]);
    expect(h.state(G)).toBe('CompletingRebalance');
  });

  it('a group created after a quiet initial delay completes at exactly that delay', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 3_000 });
    const start = h.nowMs;
    const a = h.joinNew(G);
    h.advanceTo(start + 2_999);
    expect(h.response(a.requestId)).toBeUndefined();
    h.advanceTo(start + 3_000);
    expect(h.joinResult(a.requestId).generationId).toBe(1);
  });

  it('the initial delay never stretches beyond the rebalance timeout', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 3_000 });
    const start = h.nowMs;
    const first = h.joinNew(G, { rebalanceTimeoutMs: 5_000 });
    h.advanceTo(start + 1_000);
    h.joinNew(G, { rebalanceTimeoutMs: 5_000 });
    // remaining = 5000 - 3000 = 2000: one extension of min(3000, 2000) ms.
    h.advanceTo(start + 4_999);
    expect(h.response(first.requestId)).toBeUndefined();
    h.advanceTo(start + 5_000);
    expect(h.joinResult(first.requestId).generationId).toBe(1);
  });

  it('sync delivers the leader assignment to every member, parked followers included', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 3_000 });
    const joins = [h.joinNew(G), h.joinNew(G), h.joinNew(G)];
    const [leader, f1, f2] = settleJoins(h, joins.map((j) => j.requestId));
    const followerSync = h.sync(G, f1!.memberId, 1);
    expect(h.response(followerSync)).toBeUndefined(); // parked until the leader syncs
    const recordsBefore = h.records.length;
    const leaderSync = h.sync(G, leader!.memberId, 1, {
      [leader!.memberId]: 'p0',
      [f1!.memberId]: 'p1',
      [f2!.memberId]: 'p2',
    });
    expect(h.syncResult(leaderSync).assignment.toString()).toBe('p0');
    expect(h.syncResult(followerSync).assignment.toString()).toBe('p1');
    expect(h.state(G)).toBe('Stable');
    expect(h.records.length).toBe(recordsBefore + 1); // the group metadata with assignments
    const lateSync = h.sync(G, f2!.memberId, 1);
    expect(h.syncResult(lateSync).assignment.toString()).toBe('p2');
    const described = h.core.describeGroups([G])[0]!;
    expect(described.members.map((m) => m.assignment.toString())).toEqual(['p0', 'p1', 'p2']);
    expect(described.protocolName).toBe('range');
  });

  it('a new dynamic member gets MEMBER_ID_REQUIRED first (KIP-394)', () => {
    const h = new Harness();
    const r = h.joinResult(h.join(G, { clientId: 'app' }));
    expect(r.errorCode).toBe('MEMBER_ID_REQUIRED');
    expect(r.memberId).toBe('app-1');
    const second = h.joinResult(h.join(G, { memberId: r.memberId }));
    expect(second.errorCode).toBe('NONE');
    expect(second.memberId).toBe('app-1');
  });

  it('a pending member id expires after the session timeout', () => {
    const h = new Harness();
    const r = h.joinResult(h.join(G, { sessionTimeoutMs: 10_000 }));
    h.advance(10_000);
    expect(h.joinResult(h.join(G, { memberId: r.memberId })).errorCode).toBe('UNKNOWN_MEMBER_ID');
    // The group existed only for that id: it is gone, not left behind as an Empty group.
    expect(h.core.listGroups()).toEqual([]);
  });

  it('refuses joins that break the protocol rules', () => {
    const h = new Harness({ groupMaxSize: 2, groupInitialRebalanceDelayMs: 1_000 });
    formStableGroup(h, [{}, {}]);
    expect(h.joinResult(h.join(G, { protocolType: 'connect' })).errorCode).toBe('INCONSISTENT_GROUP_PROTOCOL');
    expect(h.joinResult(h.join(G, { protocols: [{ name: 'roundrobin', metadata: Buffer.alloc(0) }] })).errorCode).toBe(
      'INCONSISTENT_GROUP_PROTOCOL',
    );
    expect(h.joinResult(h.join(G)).errorCode).toBe('GROUP_MAX_SIZE_REACHED');
    expect(h.joinResult(h.join(G, { sessionTimeoutMs: 1 })).errorCode).toBe('INVALID_SESSION_TIMEOUT');
    expect(h.joinResult(h.join('other', { memberId: 'nobody' })).errorCode).toBe('UNKNOWN_MEMBER_ID');
    expect(h.joinResult(h.join('other', { protocols: [] })).errorCode).toBe('INCONSISTENT_GROUP_PROTOCOL');
    expect(h.joinResult(h.join(''))).toMatchObject({ errorCode: 'INVALID_GROUP_ID' });
  });

  it('selects the protocol all members support that most members prefer', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
    const p = (name: string) => ({ name, metadata: encodeSubscription(['t']) });
    const joins = [
      h.joinNew(G, { protocols: [p('sticky'), p('range')] }),
      h.joinNew(G, { protocols: [p('range'), p('sticky')] }),
      h.joinNew(G, { protocols: [p('cooperative'), p('range')] }),
    ];
    const results = settleJoins(h, joins.map((j) => j.requestId));
    // Only "range" is common to all three.
    expect(results[0]!.protocolName).toBe('range');
  });

  it('sync and heartbeat answer with Kafka errors for wrong generations and members', () => {
    const h = new Harness();
    const g = formStableGroup(h, [{}]);
    const member = g.memberIds[0]!;
    expect(h.heartbeat(G, member, g.generationId)).toBe('NONE');
    expect(h.heartbeat(G, member, g.generationId - 1)).toBe('ILLEGAL_GENERATION');
    expect(h.heartbeat(G, 'ghost', g.generationId)).toBe('UNKNOWN_MEMBER_ID');
    expect(h.heartbeat('no-such-group', member, 1)).toBe('UNKNOWN_MEMBER_ID');
    expect(h.syncResult(h.sync(G, member, g.generationId + 1)).errorCode).toBe('ILLEGAL_GENERATION');
    expect(h.syncResult(h.sync(G, 'ghost', g.generationId)).errorCode).toBe('UNKNOWN_MEMBER_ID');
    const inconsistent = h.send({ type: 'sync', groupId: G, memberId: member, generationId: g.generationId, protocolName: 'x', assignments: [] });
    expect(h.errorOf(inconsistent)).toBe('INCONSISTENT_GROUP_PROTOCOL');
  });
});

describe('rebalancing', () => {
  it("a member's session expiry triggers a rebalance and a new generation without it", () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 3_000 });
    const g = formStableGroup(h, [{ sessionTimeoutMs: 10_000 }, { sessionTimeoutMs: 10_000 }, { sessionTimeoutMs: 10_000 }]);
    const [m1, m2, m3] = g.memberIds as [string, string, string];
    // m1 and m2 heartbeat every 3 s; m3 is silent.
    for (let i = 0; i < 3; i++) {
      h.advance(3_000);
      expect(h.heartbeat(G, m1, g.generationId)).toBe('NONE');
      expect(h.heartbeat(G, m2, g.generationId)).toBe('NONE');
    }
    h.advance(1_000); // m3 last heard of 10 s ago
    expect(h.state(G)).toBe('PreparingRebalance');
    expect(h.core.describeGroups([G])[0]!.members.map((m) => m.memberId)).toEqual([m1, m2]);
    expect(h.heartbeat(G, m1, g.generationId)).toBe('REBALANCE_IN_PROGRESS');
    expect(h.heartbeat(G, m3, g.generationId)).toBe('UNKNOWN_MEMBER_ID');
    const r1 = h.join(G, { memberId: m1 });
    expect(h.response(r1)).toBeUndefined();
    const r2 = h.join(G, { memberId: m2 });
    const [j1, j2] = [h.joinResult(r1), h.joinResult(r2)];
    expect(j1.generationId).toBe(g.generationId + 1);
    expect(j2.generationId).toBe(g.generationId + 1);
    expect(j1.members.map((m) => m.memberId)).toEqual([m1, m2]);
  });

  it('the rebalance timeout removes members that do not rejoin', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 3_000 });
    const g = formStableGroup(h, [{ rebalanceTimeoutMs: 20_000 }, { rebalanceTimeoutMs: 20_000 }]);
    const [m1, m2] = g.memberIds as [string, string];
    const newcomer = h.joinNew(G, { rebalanceTimeoutMs: 20_000 });
    const rejoin = h.join(G, { memberId: m1, rebalanceTimeoutMs: 20_000 });
    const start = h.nowMs;
    // m2 keeps heartbeating (so its session does not end) but never rejoins.
    for (let t = 2_000; t < 20_000; t += 2_000) {
      h.advanceTo(start + t);
      expect(h.heartbeat(G, m2, g.generationId)).toBe('REBALANCE_IN_PROGRESS');
    }
    expect(h.response(rejoin)).toBeUndefined();
    h.advanceTo(start + 20_000);
    const r = h.joinResult(rejoin);
    expect(r.generationId).toBe(g.generationId + 1);
    expect(r.members.map((m) => m.memberId).sort()).toEqual([m1, newcomer.memberId].sort());
    expect(h.heartbeat(G, m2, g.generationId)).toBe('UNKNOWN_MEMBER_ID');
  });

  it('members that never send SyncGroup are removed after the rebalance timeout', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
    const options = { rebalanceTimeoutMs: 15_000, sessionTimeoutMs: 30_000 };
    const joins = [h.joinNew(G, options), h.joinNew(G, options)];
    const [leader, follower] = settleJoins(h, joins.map((j) => j.requestId));
    h.sync(G, leader!.memberId, 1, { [leader!.memberId]: 'x', [follower!.memberId]: 'y' });
    expect(h.state(G)).toBe('Stable');
    h.advance(5_000);
    expect(h.heartbeat(G, follower!.memberId, 1)).toBe('NONE'); // heartbeats alone do not count as a sync
    h.advance(10_000);
    expect(h.state(G)).not.toBe('Stable');
    expect(h.core.describeGroups([G])[0]!.members.map((m) => m.memberId)).toEqual([leader!.memberId]);
  });

  it('a rejoin during CompletingRebalance fails the parked syncs with REBALANCE_IN_PROGRESS', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
    const joins = [h.joinNew(G), h.joinNew(G)];
    const [leader, follower] = settleJoins(h, joins.map((j) => j.requestId));
    const parked = h.sync(G, follower!.memberId, 1);
    h.join(G, { memberId: leader!.memberId, topics: ['orders', 'payments'] });
    expect(h.syncResult(parked).errorCode).toBe('REBALANCE_IN_PROGRESS');
    expect(h.state(G)).toBe('PreparingRebalance');
  });

  it('a follower rejoining a Stable group unchanged gets the generation back without a rebalance', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
    const g = formStableGroup(h, [{}, {}]);
    const follower = g.memberIds.find((id) => id !== g.leaderId)!;
    const r = h.joinResult(h.join(G, { memberId: follower }));
    expect(r.generationId).toBe(g.generationId);
    expect(h.state(G)).toBe('Stable');
  });
});

describe('LeaveGroup', () => {
  it('leaves in a batch by member id and by instance id, with per-member errors', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
    const g = formStableGroup(h, [{}, { groupInstanceId: 'static-b' }, {}]);
    const [m1, m2, m3] = g.memberIds as [string, string, string];
    const id = h.send({
      type: 'leave',
      groupId: G,
      members: [
        { memberId: m1 },
        { memberId: '', groupInstanceId: 'static-b' },
        { memberId: 'ghost' },
        { memberId: 'wrong-id', groupInstanceId: 'static-unknown' },
      ],
    });
    const r = h.response(id)!;
    expect(r.api === 'leave' && r.members.map((m) => m.errorCode)).toEqual(['NONE', 'NONE', 'UNKNOWN_MEMBER_ID', 'UNKNOWN_MEMBER_ID']);
    expect(h.state(G)).toBe('PreparingRebalance');
    expect(h.core.describeGroups([G])[0]!.members.map((m) => m.memberId)).toEqual([m3]);
    void m2;
    // The remaining member rejoins and completes the rebalance alone.
    const rejoin = h.joinResult(h.join(G, { memberId: m3 }));
    expect(rejoin.generationId).toBe(g.generationId + 1);
    expect(rejoin.leaderId).toBe(m3);
  });

  it('a static leave with the wrong member id is fenced', () => {
    const h = new Harness();
    formStableGroup(h, [{ groupInstanceId: 'i1' }]);
    const id = h.send({ type: 'leave', groupId: G, members: [{ memberId: 'old-incarnation', groupInstanceId: 'i1' }] });
    const r = h.response(id)!;
    expect(r.api === 'leave' && r.members[0]!.errorCode).toBe('FENCED_INSTANCE_ID');
  });

  it('the group becomes Empty with a new generation when the last member leaves', () => {
    const h = new Harness();
    const g = formStableGroup(h, [{}]);
    h.send({ type: 'leave', groupId: G, members: [{ memberId: g.memberIds[0]! }] });
    expect(h.state(G)).toBe('Empty');
    expect(h.core.describeGroups([G])[0]!.generationId).toBe(g.generationId + 1);
  });
});

describe('static membership (KIP-345)', () => {
  it('a restarted static member gets its assignment back without a rebalance', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
    const g = formStableGroup(h, [{ groupInstanceId: 'i1' }, { groupInstanceId: 'i2' }]);
    const [m1, m2] = g.memberIds as [string, string];
    const follower = g.leaderId === m1 ? m2 : m1;
    const instance = follower === m1 ? 'i1' : 'i2';
    const recordsBefore = h.records.length;
    const r = h.joinResult(h.join(G, { groupInstanceId: instance }));
    expect(r.errorCode).toBe('NONE');
    expect(r.memberId).not.toBe(follower);
    expect(r.generationId).toBe(g.generationId);
    expect(h.state(G)).toBe('Stable');
    expect(h.records.length).toBe(recordsBefore + 1); // the new member id is persisted
    const s = h.syncResult(h.sync(G, r.memberId, g.generationId, {}, instance));
    expect(s.assignment.toString()).toBe(g.assignments[follower]);
    // The old incarnation is fenced.
    expect(h.heartbeat(G, follower, g.generationId, instance)).toBe('FENCED_INSTANCE_ID');
    expect(h.commit(G, follower, g.generationId, [['orders', 0, 5]], instance)).toEqual(['FENCED_INSTANCE_ID']);
    expect(h.heartbeat(G, r.memberId, g.generationId, instance)).toBe('NONE');
  });

  it('a restarted static leader learns the members but keeps the assignment', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
    const g = formStableGroup(h, [{ groupInstanceId: 'i1' }, { groupInstanceId: 'i2' }]);
    const r = h.joinResult(h.join(G, { groupInstanceId: 'i1' }));
    expect(r.leaderId).toBe(r.memberId);
    expect(r.skipAssignment).toBe(true);
    expect(r.members).toHaveLength(2);
    expect(r.generationId).toBe(g.generationId);
    expect(h.state(G)).toBe('Stable');
  });

  it('a restarted static consumer whose subscription differs only in owned partitions keeps its assignment without a rebalance', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
    const g = formStableGroup(h, [{ groupInstanceId: 'i1' }, { groupInstanceId: 'i2' }]);
    const follower = g.leaderId === g.memberIds[0] ? g.memberIds[1]! : g.memberIds[0]!;
    const instance = follower === g.memberIds[0] ? 'i1' : 'i2';
    // Same topics; the trailing bytes stand for the owned partitions and generation a
    // cooperative consumer adds (ConsumerProtocolSubscription v1+), which change on restart.
    const ownedPartitions = Buffer.from([0, 0, 0, 1, 0, 6, ...Buffer.from('orders'), 0, 0, 0, 1, 0, 0, 0, 3]);
    const metadata = Buffer.concat([encodeSubscription(['orders']), ownedPartitions]);
    const r = h.joinResult(h.join(G, { groupInstanceId: instance, protocols: [{ name: 'range', metadata }] }));
    expect(r.errorCode).toBe('NONE');
    expect(r.generationId).toBe(g.generationId);
    expect(h.state(G)).toBe('Stable');
  });

  it('a static member that rejoins with a changed subscription triggers a rebalance', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
    formStableGroup(h, [{ groupInstanceId: 'i1' }, { groupInstanceId: 'i2' }]);
    const id = h.join(G, { groupInstanceId: 'i2', topics: ['orders', 'refunds'] });
    expect(h.response(id)).toBeUndefined();
    expect(h.state(G)).toBe('PreparingRebalance');
  });

  it('a static member restarting while the leader computes the assignment forces a new rebalance', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
    const joins = [h.join(G, { groupInstanceId: 'i1' }), h.join(G, { groupInstanceId: 'i2' })];
    const [leader, follower] = settleJoins(h, joins);
    expect(h.state(G)).toBe('CompletingRebalance');
    // The follower restarts with its old subscription; the leader still holds the old member id.
    const restarted = h.join(G, { groupInstanceId: 'i2' });
    expect(h.response(restarted)).toBeUndefined();
    expect(h.state(G)).toBe('PreparingRebalance');
    // The leader's assignment for the old generation is refused rather than lost for the new id.
    const stale = h.sync(G, leader!.memberId, leader!.generationId, { [leader!.memberId]: 'a', [follower!.memberId]: 'b' }, 'i1');
    expect(h.syncResult(stale).errorCode).toBe('REBALANCE_IN_PROGRESS');
    const leaderRejoin = h.join(G, { memberId: leader!.memberId, groupInstanceId: 'i1' });
    const [l2, f2] = [h.joinResult(leaderRejoin), h.joinResult(restarted)];
    expect(l2.generationId).toBe(leader!.generationId + 1);
    expect(l2.members.map((m) => m.memberId)).toContain(f2.memberId);
  });

  it('a static member that is gone for its session timeout is removed', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
    const g = formStableGroup(h, [{ groupInstanceId: 'i1', sessionTimeoutMs: 10_000 }, { groupInstanceId: 'i2', sessionTimeoutMs: 10_000 }]);
    for (let i = 0; i < 4; i++) {
      h.advance(3_000);
      h.heartbeat(G, g.memberIds[0]!, g.generationId, 'i1');
    }
    expect(h.state(G)).toBe('PreparingRebalance');
    expect(h.core.describeGroups([G])[0]!.members.map((m) => m.groupInstanceId)).toEqual(['i1']);
  });
});

describe('offsets', () => {
  it('commits from the current generation are stored and fetched', () => {
    const h = new Harness();
    const g = formStableGroup(h, [{}]);
    const m = g.memberIds[0]!;
    expect(h.commit(G, m, g.generationId, [['orders', 0, 42], ['orders', 1, 7]])).toEqual(['NONE', 'NONE']);
    expect(h.core.fetchOffsets(G, [{ topic: 'orders', partition: 0 }, { topic: 'orders', partition: 9 }])).toEqual([
      { topic: 'orders', partition: 0, offset: 42, leaderEpoch: -1, metadata: 'm42', errorCode: 'NONE' },
      { topic: 'orders', partition: 9, offset: -1, leaderEpoch: -1, metadata: '', errorCode: 'NONE' },
    ]);
    expect(h.core.fetchOffsets(G).map((o) => [o.topic, o.partition, o.offset])).toEqual([
      ['orders', 0, 42],
      ['orders', 1, 7],
    ]);
  });

  it('commits from a fenced generation or an unknown member are refused', () => {
    const h = new Harness({ groupInitialRebalanceDelayMs: 1_000 });
    const g = formStableGroup(h, [{}, {}]);
    const [m1, m2] = g.memberIds as [string, string];
    // m2 leaves; m1 rejoins: generation + 1.
    h.send({ type: 'leave', groupId: G, members: [{ memberId: m2 }] });
    // During PreparingRebalance the current generation may still commit (onPartitionsRevoked).
    expect(h.commit(G, m1, g.generationId, [['orders', 0, 10]])).toEqual(['NONE']);
    const r = h.joinResult(h.join(G, { memberId: m1 }));
    expect(r.generationId).toBe(g.generationId + 1);
    // CompletingRebalance: nobody commits until the assignment is known.
    expect(h.commit(G, m1, r.generationId, [['orders', 0, 11]])).toEqual(['REBALANCE_IN_PROGRESS']);
    h.sync(G, m1, r.generationId, { [m1]: 'all' });
    expect(h.commit(G, m1, g.generationId, [['orders', 0, 12]])).toEqual(['ILLEGAL_GENERATION']);
    expect(h.commit(G, m2, g.generationId, [['orders', 0, 13]])).toEqual(['UNKNOWN_MEMBER_ID']);
    expect(h.commit(G, '', -1, [['orders', 0, 14]])).toEqual(['UNKNOWN_MEMBER_ID']); // simple client, group not Empty
    expect(h.commit(G, m1, r.generationId, [['orders', 0, 15]])).toEqual(['NONE']);
    expect(h.core.fetchOffsets(G, [{ topic: 'orders', partition: 0 }])[0]!.offset).toBe(15);
    expect(h.commit('never-seen', 'x', 3, [['orders', 0, 1]])).toEqual(['ILLEGAL_GENERATION']);
  });

  it('a simple consumer (generation -1, no member id) commits to an Empty or new group', () => {
    const h = new Harness();
    expect(h.commit('simple', '', -1, [['t', 0, 5]])).toEqual(['NONE']);
    expect(h.state('simple')).toBe('Empty');
    expect(h.core.fetchOffsets('simple', [{ topic: 't', partition: 0 }])[0]!.offset).toBe(5);
    const big = h.send({ type: 'commit-offsets', groupId: 'simple', memberId: '', generationId: -1, offsets: [{ topic: 't', partition: 1, offset: 1, metadata: 'x'.repeat(5_000) }] });
    const r = h.response(big)!;
    expect(r.api === 'commit-offsets' && r.partitions[0]!.errorCode).toBe('OFFSET_METADATA_TOO_LARGE');
  });

  it('OffsetDelete refuses topics the group still consumes (KIP-496)', () => {
    const h = new Harness();
    const g = formStableGroup(h, [{ topics: ['orders'] }]);
    const m = g.memberIds[0]!;
    h.commit(G, m, g.generationId, [['orders', 0, 1], ['old-topic', 0, 2]]);
    const id = h.send({ type: 'delete-offsets', groupId: G, partitions: [{ topic: 'orders', partition: 0 }, { topic: 'old-topic', partition: 0 }] });
    const r = h.response(id)!;
    expect(r.api === 'delete-offsets' && r.partitions.map((p) => p.errorCode)).toEqual(['GROUP_SUBSCRIBED_TO_TOPIC', 'NONE']);
    expect(h.core.fetchOffsets(G).map((o) => o.topic)).toEqual(['orders']);
    const missing = h.send({ type: 'delete-offsets', groupId: 'nope', partitions: [{ topic: 'orders', partition: 0 }] });
    expect(h.errorOf(missing)).toBe('GROUP_ID_NOT_FOUND');
    // Once the group is Empty every offset may go.
    h.send({ type: 'leave', groupId: G, members: [{ memberId: m }] });
    const again = h.send({ type: 'delete-offsets', groupId: G, partitions: [{ topic: 'orders', partition: 0 }] });
    const r2 = h.response(again)!;
    expect(r2.api === 'delete-offsets' && r2.partitions[0]!.errorCode).toBe('NONE');
    expect(h.core.fetchOffsets(G)).toEqual([]);
  });

  it('OffsetDelete on a non-consumer group with members is NON_EMPTY_GROUP', () => {
    const h = new Harness();
    formStableGroup(h, [{ protocolType: 'connect', protocols: [{ name: 'v1', metadata: Buffer.from('opaque') }] }]);
    const id = h.send({ type: 'delete-offsets', groupId: G, partitions: [{ topic: 'x', partition: 0 }] });
    expect(h.errorOf(id)).toBe('NON_EMPTY_GROUP');
  });

  it('DeleteGroups deletes only Empty groups, writing tombstones', () => {
    const h = new Harness();
    const g = formStableGroup(h, [{}]);
    h.commit('simple', '', -1, [['t', 0, 5], ['t', 1, 6]]);
    const before = h.records.length;
    const id = h.send({ type: 'delete-groups', groupIds: [G, 'simple', 'nope', ''] });
    const r = h.response(id)!;
    expect(r.api === 'delete-groups' && r.results.map((x) => x.errorCode)).toEqual([
      'NON_EMPTY_GROUP',
      'NONE',
      'GROUP_ID_NOT_FOUND',
      'INVALID_GROUP_ID',
    ]);
    const tombstones = h.records.slice(before);
    expect(tombstones).toHaveLength(3); // two offsets and the group
    expect(tombstones.every((t) => t.value === null)).toBe(true);
    expect(h.core.listGroups().map((l) => l.groupId)).toEqual([G]);
    expect(h.core.describeGroups(['simple'])[0]!.state).toBe('Dead');
    void g;
  });

  it('ListGroups filters by state', () => {
    const h = new Harness();
    formStableGroup(h, [{}]);
    h.commit('simple', '', -1, [['t', 0, 5]]);
    expect(h.core.listGroups(['Empty'])).toEqual([{ groupId: 'simple', protocolType: '', state: 'Empty' }]);
    expect(h.core.listGroups(['Stable'])).toEqual([{ groupId: G, protocolType: 'consumer', state: 'Stable' }]);
    expect(h.core.listGroups()).toHaveLength(2);
  });
});

describe('offset retention (KIP-211)', () => {
  const retentionMs = 100_000;

  it("a simple consumer's offsets expire by commit time, then the group goes", () => {
    const h = new Harness({ offsetsRetentionMs: retentionMs });
    const start = h.nowMs;
    h.commit('simple', '', -1, [['t', 0, 1]]);
    h.advanceTo(start + 50_000);
    h.commit('simple', '', -1, [['t', 1, 2]]);
    h.advanceTo(start + retentionMs);
    const before = h.records.length;
    h.expireOffsets();
    expect(h.core.fetchOffsets('simple').map((o) => o.partition)).toEqual([1]);
    expect(h.records.slice(before).map((r) => r.value)).toEqual([null]);
    h.advanceTo(start + 150_000);
    h.expireOffsets();
    expect(h.core.listGroups()).toEqual([]);
    expect(h.records.slice(before + 1).map((r) => r.value)).toEqual([null, null]); // offset, then group
  });

  it('an Empty consumer group keeps its offsets for the retention time after it emptied', () => {
    const h = new Harness({ offsetsRetentionMs: retentionMs });
    const g = formStableGroup(h, [{}]);
    h.commit(G, g.memberIds[0]!, g.generationId, [['orders', 0, 5]]);
    h.advance(5_000);
    h.send({ type: 'leave', groupId: G, members: [{ memberId: g.memberIds[0]! }] });
    // The clock starts when the group became Empty, not at the commit.
    const emptiedAt = h.nowMs;
    h.advanceTo(emptiedAt + retentionMs - 1);
    h.expireOffsets();
    expect(h.core.fetchOffsets(G)).toHaveLength(1);
    h.advanceTo(emptiedAt + retentionMs);
    h.expireOffsets();
    expect(h.core.fetchOffsets(G)).toEqual([]);
    expect(h.core.listGroups()).toEqual([]);
  });

  it('a Stable group loses only offsets of topics it no longer consumes', () => {
    const h = new Harness({ offsetsRetentionMs: retentionMs });
    const g = formStableGroup(h, [{ topics: ['orders'], sessionTimeoutMs: 300_000 }]);
    const m = g.memberIds[0]!;
    h.commit(G, m, g.generationId, [['orders', 0, 5], ['dropped-topic', 0, 6]]);
    h.advance(retentionMs);
    expect(h.heartbeat(G, m, g.generationId)).toBe('NONE');
    h.expireOffsets();
    expect(h.core.fetchOffsets(G).map((o) => o.topic)).toEqual(['orders']);
    expect(h.state(G)).toBe('Stable');
  });
});

