import { ErrorCode } from '@raftka/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterClient, defaultRuntime } from '../../src/cluster-client.js';
import type * as M from '../../src/network/client-messages.js';
import { InMemoryCluster } from '../support/in-memory-cluster.js';
import { InMemoryGroups } from '../support/in-memory-groups.js';

let cluster: InMemoryCluster;
let groups: InMemoryGroups;
let client: ClusterClient;

beforeEach(async () => {
  cluster = await InMemoryCluster.start({ brokerCount: 2 });
  groups = InMemoryGroups.attach(cluster);
  client = new ClusterClient(
    { bootstrapServers: cluster.bootstrapServers, requestTimeoutMs: 5000, retryBackoffMs: 10, metadataMaxAgeMs: 60_000, maxRequestSize: 1 << 20, maxInFlightPerBroker: 5 },
    defaultRuntime,
  );
  await client.refreshMetadata();
});

afterEach(async () => {
  client.close();
  groups.stop();
  await cluster.stop();
});

const join = (nodeId: number, memberId: string, groupInstanceId?: string) =>
  client.call<M.JoinGroupRequest, M.JoinGroupResponse>(nodeId, 'RaftkaGroups', 'JoinGroup', {
    groupId: 'g',
    sessionTimeoutMs: 1000,
    rebalanceTimeoutMs: 2000,
    memberId,
    groupInstanceId,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.from([0, 0, 0, 0, 0, 0, 255, 255, 255, 255]) }],
    reason: '',
  });

describe('in-memory RaftkaGroups (test support over the real coordinator core)', () => {
  it('finds the coordinator, runs a join/sync/heartbeat/commit round and survives a coordinator move', async () => {
    const found = await client.call<M.FindCoordinatorRequest, M.FindCoordinatorResponse>(1, 'RaftkaGroups', 'FindCoordinator', { keyType: 'COORDINATOR_GROUP', coordinatorKeys: ['g'] });
    expect(found.coordinators[0]).toMatchObject({ key: 'g', nodeId: 1, errorCode: 0 });
    expect((await join(2, '')).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    const first = await join(1, '');
    expect(first.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
    const joined = await join(1, first.memberId);
    expect(joined).toMatchObject({ errorCode: 0, generationId: 1, leader: first.memberId, protocolName: 'range' });
    expect(joined.members.map((member) => member.memberId)).toEqual([first.memberId]);
    const synced = await client.call<M.SyncGroupRequest, M.SyncGroupResponse>(1, 'RaftkaGroups', 'SyncGroup', {
      groupId: 'g',
      generationId: 1,
      memberId: first.memberId,
      protocolType: 'consumer',
      protocolName: 'range',
      assignments: [{ memberId: first.memberId, assignment: Buffer.from([1, 2, 3]) }],
    });
    expect(synced.errorCode).toBe(0);
    expect([...synced.assignment]).toEqual([1, 2, 3]);
    const commit = await client.call<M.OffsetCommitRequest, M.OffsetCommitResponse>(1, 'RaftkaGroups', 'OffsetCommit', {
      groupId: 'g',
      generationIdOrMemberEpoch: 1,
      memberId: first.memberId,
      topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 42, committedLeaderEpoch: 3 }] }],
    });
    expect(commit.topics[0]!.partitions[0]!.errorCode).toBe(0);

    groups.moveCoordinator(2);
    const heartbeatOld = await client.call<M.HeartbeatRequest, M.HeartbeatResponse>(1, 'RaftkaGroups', 'Heartbeat', { groupId: 'g', generationId: 1, memberId: first.memberId });
    expect(heartbeatOld.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    const heartbeatNew = await client.call<M.HeartbeatRequest, M.HeartbeatResponse>(2, 'RaftkaGroups', 'Heartbeat', { groupId: 'g', generationId: 1, memberId: first.memberId });
    expect(heartbeatNew.errorCode).toBe(0);
    const fetched = await client.call<M.OffsetFetchRequest, M.OffsetFetchResponse>(2, 'RaftkaGroups', 'OffsetFetch', {
      groupId: 'g',
      topics: [{ name: 't', partitionIndexes: [0] }],
      allTopics: false,
      requireStable: false,
    });
    expect(fetched.topics[0]!.partitions[0]).toMatchObject({ committedOffset: 42, committedLeaderEpoch: 3 });
    expect(groups.describe('g')).toMatchObject({ state: 'Stable', generationId: 1 });
  });
});
