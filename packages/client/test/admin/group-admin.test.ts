import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RaftkaError } from '@raftka/protocol';
import { Admin } from '../../src/admin/admin.js';
import { AdminOperationError } from '../../src/admin/admin-errors.js';
import { GroupNotInactiveError } from '../../src/admin/group-admin.js';
import { encodeAssignment, encodeSubscription } from '../../src/consumer/assignors/consumer-protocol.js';
import { BrokerConnectionPool } from '../../src/network/broker-connection-pool.js';
import type * as M from '../../src/network/client-messages.js';
import { Producer } from '../../src/producer/producer.js';
import { InMemoryCluster } from '../support/in-memory-cluster.js';
import { InMemoryGroups } from '../support/in-memory-groups.js';

let cluster: InMemoryCluster;
let groups: InMemoryGroups;
let admin: Admin;
let pool: BrokerConnectionPool;

beforeEach(async () => {
  cluster = await InMemoryCluster.start({ brokerCount: 3 });
  groups = InMemoryGroups.attach(cluster, { coordinatorId: 2 });
  cluster.createTopic('orders', 2);
  admin = new Admin({ bootstrapServers: cluster.bootstrapServers, retryBackoffMs: 5, retryBackoffMaxMs: 20, requestTimeoutMs: 5_000 });
  pool = new BrokerConnectionPool({ messageBytesMax: 1 << 20, maxInFlightPerBroker: 5 });
});

afterEach(async () => {
  await admin.close();
  pool.close();
  groups.stop();
  await cluster.stop();
});

/** A raw RaftkaGroups call to the current coordinator (the test plays a consumer by hand). */
function coordinatorCall<Request, Response>(method: string, request: Request): Promise<Response> {
  const broker = cluster.brokers.find((candidate) => candidate.nodeId === groups.coordinatorId)!;
  return pool.call<Request, Response>({ nodeId: broker.nodeId, endpoint: { host: '127.0.0.1', port: broker.port }, service: 'RaftkaGroups', method, request, timeoutMs: 5_000 });
}

/** Joins a one-member consumer group that owns every partition of `orders`; returns its member id and generation. */
async function joinStableMember(groupId: string): Promise<{ memberId: string; generationId: number }> {
  const protocols = [{ name: 'range', metadata: Buffer.from(encodeSubscription({ topics: ['orders'], userData: null, ownedPartitions: [], generationId: -1, rackId: null })) }];
  const join = (memberId: string): Promise<M.JoinGroupResponse> =>
    coordinatorCall<M.JoinGroupRequest, M.JoinGroupResponse>('JoinGroup', {
      groupId,
      sessionTimeoutMs: 30_000,
      rebalanceTimeoutMs: 30_000,
      memberId,
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols,
      reason: '',
    });
  const first = await join('');
  const joined = await join(first.memberId);
  expect(joined.errorCode).toBe(0);
  const assignment = Buffer.from(encodeAssignment({ partitions: [{ topic: 'orders', partition: 0 }, { topic: 'orders', partition: 1 }], userData: null }));
  const synced = await coordinatorCall<M.SyncGroupRequest, M.SyncGroupResponse>('SyncGroup', {
    groupId,
    generationId: joined.generationId,
    memberId: joined.memberId,
    groupInstanceId: null,
    protocolType: 'consumer',
    protocolName: joined.protocolName,
    assignments: [{ memberId: joined.memberId, assignment }],
  });
  expect(synced.errorCode).toBe(0);
  return { memberId: joined.memberId, generationId: joined.generationId };
}

async function commit(groupId: string, offsets: Record<number, number>, member = { memberId: '', generationId: -1 }): Promise<void> {
  const response = await coordinatorCall<M.OffsetCommitRequest, M.OffsetCommitResponse>('OffsetCommit', {
    groupId,
    generationIdOrMemberEpoch: member.generationId,
    memberId: member.memberId,
    groupInstanceId: null,
    topics: [
      {
        name: 'orders',
        partitions: Object.entries(offsets).map(([partition, offset]) => ({ partitionIndex: Number(partition), committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: '' })),
      },
    ],
  });
  expect(response.topics.flatMap((topic) => topic.partitions.map((partition) => partition.errorCode))).toEqual(Object.keys(offsets).map(() => 0));
}

async function produce(partition: number, count: number, timestamp = Date.now()): Promise<void> {
  const producer = new Producer({ bootstrapServers: cluster.bootstrapServers, lingerMs: 0 });
  await producer.send({ topic: 'orders', messages: Array.from({ length: count }, (_, index) => ({ value: `r${index}`, partition, timestamp })) });
  await producer.close();
}

describe('Admin consumer groups', () => {
  it('lists the groups of every broker and describes members, assignments, committed offsets and lag', async () => {
    await produce(0, 5);
    await produce(1, 3);
    const member = await joinStableMember('billing');
    await commit('billing', { 0: 2 }, member);
    await commit('audit', { 0: 5, 1: 1 });

    expect(await admin.listGroups()).toEqual([
      { groupId: 'audit', protocolType: '', state: 'Empty', coordinatorId: 2 },
      { groupId: 'billing', protocolType: 'consumer', state: 'Stable', coordinatorId: 2 },
    ]);
    expect((await admin.listGroups({ states: ['Stable'] })).map((group) => group.groupId)).toEqual(['billing']);
    // Every broker was asked, not only the coordinator.
    expect(groups.callCounts.get('ListGroups')).toBeGreaterThanOrEqual(6);

    const [billing, audit, unknown] = await admin.describeGroups(['billing', 'audit', 'nobody']);
    expect(billing).toMatchObject({ groupId: 'billing', state: 'Stable', protocolType: 'consumer', protocol: 'range', coordinatorId: 2 });
    expect(billing!.members).toHaveLength(1);
    expect(billing!.members[0]).toMatchObject({
      memberId: member.memberId,
      clientId: 'raftka',
      assignment: [
        { topic: 'orders', partition: 0 },
        { topic: 'orders', partition: 1 },
      ],
      subscribedTopics: ['orders'],
    });
    expect(billing!.members[0]!.clientHost).not.toBe('');
    expect(billing!.partitions).toEqual([
      { topic: 'orders', partition: 0, currentOffset: 2, logEndOffset: 5, lag: 3, memberId: member.memberId },
      { topic: 'orders', partition: 1, currentOffset: undefined, logEndOffset: 3, lag: undefined, memberId: member.memberId },
    ]);
    expect(audit).toMatchObject({ state: 'Empty', members: [] });
    expect(audit!.partitions.map((row) => [row.partition, row.currentOffset, row.lag, row.memberId])).toEqual([
      [0, 5, 0, undefined],
      [1, 1, 2, undefined],
    ]);
    expect(unknown).toMatchObject({ groupId: 'nobody', state: 'Dead', members: [], partitions: [] });

    expect(await admin.listGroupOffsets('audit')).toEqual([
      { topic: 'orders', partition: 0, offset: 5, leaderEpoch: -1, metadata: '' },
      { topic: 'orders', partition: 1, offset: 1, leaderEpoch: -1, metadata: '' },
    ]);
  });

  it('resets an inactive group by plan, changing nothing on a dry run, and refuses an active one naming its state', async () => {
    await produce(0, 10, 1_000);
    await produce(0, 10, 2_000);
    await produce(1, 4, 3_000);
    await commit('audit', { 0: 15, 1: 2 });

    const dry = await admin.resetOffsets({ groupId: 'audit', topic: 'orders', to: { earliest: true }, dryRun: true });
    expect(dry).toEqual([
      { topic: 'orders', partition: 0, currentOffset: 15, newOffset: 0 },
      { topic: 'orders', partition: 1, currentOffset: 2, newOffset: 0 },
    ]);
    expect(groups.committed('audit').get('orders-0')?.offset).toBe(15);

    expect(await admin.resetOffsets({ groupId: 'audit', topic: 'orders', to: { shiftBy: -20 } })).toEqual([
      { topic: 'orders', partition: 0, currentOffset: 15, newOffset: 0 },
      { topic: 'orders', partition: 1, currentOffset: 2, newOffset: 0 },
    ]);
    expect(groups.committed('audit').get('orders-0')?.offset).toBe(0);

    // An absolute offset is clamped to the log; a partition list narrows the reset.
    expect(await admin.resetOffsets({ groupId: 'audit', topic: 'orders', partitions: [1], to: { offset: 100 } })).toEqual([
      { topic: 'orders', partition: 1, currentOffset: 0, newOffset: 4 },
    ]);
    // By time: the first record at or after it; the log end when there is none.
    expect(await admin.resetOffsets({ groupId: 'audit', topic: 'orders', to: { timestamp: 2_000 } })).toEqual([
      { topic: 'orders', partition: 0, currentOffset: 0, newOffset: 10 },
      { topic: 'orders', partition: 1, currentOffset: 4, newOffset: 0 },
    ]);
    expect(await admin.resetOffsets({ groupId: 'audit', topic: 'orders', partitions: [0], to: { timestamp: 5_000 } })).toEqual([
      { topic: 'orders', partition: 0, currentOffset: 10, newOffset: 20 },
    ]);
    // A group with nothing committed yet can be reset to an absolute position.
    expect(await admin.resetOffsets({ groupId: 'fresh', topic: 'orders', to: { latest: true } })).toEqual([
      { topic: 'orders', partition: 0, currentOffset: undefined, newOffset: 20 },
      { topic: 'orders', partition: 1, currentOffset: undefined, newOffset: 4 },
    ]);
    expect(groups.committed('fresh').get('orders-1')?.offset).toBe(4);

    await joinStableMember('billing');
    const refused = await admin.resetOffsets({ groupId: 'billing', topic: 'orders', to: { earliest: true }, dryRun: true }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(GroupNotInactiveError);
    expect(refused).toMatchObject({ code: 'NON_EMPTY_GROUP', state: 'Stable', retriable: false });
    expect((refused as Error).message).toMatch(/billing.*Stable/);

    await expect(admin.resetOffsets({ groupId: 'audit', topic: 'orders', partitions: [7], to: { earliest: true } })).rejects.toMatchObject({
      code: 'UNKNOWN_TOPIC_OR_PARTITION',
    });
    await expect(admin.resetOffsets({ groupId: 'audit', topic: 'orders', to: { offset: -1 } })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('deletes empty groups and reports each refused group with its Kafka error', async () => {
    await produce(0, 1);
    await commit('audit', { 0: 1 });
    await joinStableMember('billing');
    const failure = await admin.deleteGroups(['audit', 'billing', 'nobody']).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(AdminOperationError);
    const failed = failure as AdminOperationError<string>;
    expect(failed.results).toEqual(['audit']);
    expect(failed.failures.get('billing')?.code).toBe('NON_EMPTY_GROUP');
    expect(failed.failures.get('nobody')?.code).toBe('GROUP_ID_NOT_FOUND');
    expect((await admin.listGroups()).map((group) => group.groupId)).toEqual(['billing']);
  });

  it('deletes committed offsets of some partitions', async () => {
    await commit('audit', { 0: 0, 1: 0 });
    expect(await admin.deleteGroupOffsets('audit', [{ topic: 'orders', partition: 1 }])).toEqual([{ topic: 'orders', partition: 1 }]);
    expect((await admin.listGroupOffsets('audit')).map((entry) => entry.partition)).toEqual([0]);
  });

  it('rediscovers the coordinator when it moves, and waits while it is unavailable or loading', async () => {
    await commit('audit', { 0: 0 });
    groups.coordinatorUnavailableFor(2);
    groups.loadInProgressFor(2);
    expect((await admin.listGroupOffsets('audit')).map((entry) => entry.offset)).toEqual([0]);
    expect(groups.callCounts.get('FindCoordinator')).toBe(3);

    // The cached coordinator now answers NOT_COORDINATOR; the new one has rebuilt the group from the log.
    groups.moveCoordinator(3);
    const [audit] = await admin.describeGroups(['audit']);
    expect(audit).toMatchObject({ state: 'Empty', coordinatorId: 3 });
    expect(audit!.partitions.map((row) => row.currentOffset)).toEqual([0]);
    expect(groups.callCounts.get('FindCoordinator')).toBe(4);
  });

  it('fails with a typed, retriable error when no coordinator appears in time', async () => {
    const impatient = new Admin({ bootstrapServers: cluster.bootstrapServers, retryBackoffMs: 5, retryBackoffMaxMs: 10, requestTimeoutMs: 200 });
    groups.coordinatorUnavailableFor(1_000_000);
    const error = await impatient.listGroupOffsets('audit').catch((caught: unknown) => caught);
    await impatient.close();
    expect(error).toBeInstanceOf(RaftkaError);
    expect(error).toMatchObject({ code: 'COORDINATOR_NOT_AVAILABLE', retriable: true });
  });
});
