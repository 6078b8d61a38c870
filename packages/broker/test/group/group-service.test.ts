// The RaftkaGroups gRPC service over a real runtime (one in-process broker leading a one-partition
// __consumer_offsets): the proto <-> core mapping of every RPC, the client id taken from the call
// metadata, and the whole-request errors (NOT_COORDINATOR before the topic exists).
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '@raftka/protocol';
import {
  BROKER_SERVER_OPTIONS,
  GROUP_METADATA_TOPIC_NAME,
  GroupRuntime,
  encodeSubscription,
  groupServiceImplementation,
  loadRaftkaGroupsService,
} from '../../src/index.js';
import { TestCluster, waitFor } from '../replica-manager/cluster-fixture.js';

type Unary = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: any) => void) => void;
type RawClient = grpc.Client & Record<string, Unary>;

let cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

async function start(): Promise<{ cluster: TestCluster; runtime: GroupRuntime; call: (method: string, request: unknown) => Promise<any> }> {
  const cluster = await TestCluster.create();
  cleanup.push(() => cluster.close());
  const broker = await cluster.startBroker(1);
  const runtime = new GroupRuntime({ replicaManager: broker.replicaManager, config: { groupInitialRebalanceDelayMs: 0, offsetsTopicReplicationFactor: 1 } });
  runtime.start();
  cleanup.push(async () => runtime.close());
  const server = new grpc.Server(BROKER_SERVER_OPTIONS);
  server.addService(loadRaftkaGroupsService().service, groupServiceImplementation({ runtime }));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  cleanup.push(async () => void server.forceShutdown());
  const Service = loadRaftkaGroupsService();
  const client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as RawClient;
  cleanup.push(async () => client.close());
  const call = (method: string, request: unknown): Promise<any> => {
    const metadata = new grpc.Metadata();
    metadata.set('client-id', 'svc-test');
    return new Promise((resolve, reject) => client[method]!(request, metadata, { deadline: Date.now() + 10_000 }, (error, response) => (error ? reject(error) : resolve(response))));
  };
  return { cluster, runtime, call };
}

const join = (memberId: string) => ({
  groupId: 'g',
  sessionTimeoutMs: 10_000,
  rebalanceTimeoutMs: 10_000,
  memberId,
  protocolType: 'consumer',
  protocols: [{ name: 'range', metadata: encodeSubscription(['t']) }],
});

describe('RaftkaGroups service', () => {
  it('maps every RPC to the coordinator and back', async () => {
    const { cluster, runtime, call } = await start();
    expect((await call('JoinGroup', join(''))).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    expect((await call('OffsetFetch', { groupId: 'g', allTopics: true })).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    const [transaction] = (await call('FindCoordinator', { keyType: 'COORDINATOR_TRANSACTION', coordinatorKeys: ['tx'] })).coordinators;
    expect(transaction).toMatchObject({ key: 'tx', nodeId: -1, errorCode: ErrorCode.INVALID_REQUEST });

    await cluster.createTopic(GROUP_METADATA_TOPIC_NAME, [[1]], { 'cleanup.policy': 'compact' });
    await waitFor(() => runtime.coordinatorState(0) === 'active', 'the partition to load');
    const [found] = (await call('FindCoordinator', { keyType: 'COORDINATOR_GROUP', coordinatorKeys: ['g'] })).coordinators;
    expect(found).toMatchObject({ key: 'g', nodeId: 1, host: '127.0.0.1', port: cluster.broker(1).port, errorCode: 0 });

    const required = await call('JoinGroup', join(''));
    expect(required.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
    expect(required.errorMessage).not.toBe('');
    expect(required.memberId).toMatch(/^svc-test-/);
    const joined = await call('JoinGroup', join(required.memberId));
    expect(joined).toMatchObject({ errorCode: 0, generationId: 1, leader: required.memberId, protocolName: 'range' });
    const memberId: string = joined.memberId;
    expect((await call('SyncGroup', { groupId: 'g', generationId: 1, memberId, assignments: [{ memberId, assignment: Buffer.from('a') }] })).assignment).toEqual(Buffer.from('a'));
    expect((await call('Heartbeat', { groupId: 'g', generationId: 1, memberId })).errorCode).toBe(0);
    expect((await call('Heartbeat', { groupId: 'g', generationId: 7, memberId })).errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);

    const commit = await call('OffsetCommit', {
      groupId: 'g',
      generationIdOrMemberEpoch: 1,
      memberId,
      topics: [
        { name: 't', partitions: [{ partitionIndex: 0, committedOffset: 5, committedLeaderEpoch: 2, committedMetadata: 'm' }] },
        { name: 'u', partitions: [{ partitionIndex: 3, committedOffset: 9, committedLeaderEpoch: -1 }] },
      ],
    });
    expect(commit.topics).toMatchObject([
      { name: 't', partitions: [{ partitionIndex: 0, errorCode: 0 }] },
      { name: 'u', partitions: [{ partitionIndex: 3, errorCode: 0 }] },
    ]);
    const fetched = await call('OffsetFetch', { groupId: 'g', topics: [{ name: 't', partitionIndexes: [0, 1] }] });
    expect(fetched).toMatchObject({
      errorCode: 0,
      topics: [
        {
          name: 't',
          partitions: [
            { partitionIndex: 0, committedOffset: 5, committedLeaderEpoch: 2, metadata: 'm', errorCode: 0 },
            { partitionIndex: 1, committedOffset: -1, errorCode: 0 },
          ],
        },
      ],
    });
    // The group consumes t, so only u's offsets may be deleted (KIP-496).
    const deleted = await call('OffsetDelete', { groupId: 'g', topics: [{ name: 't', partitionIndexes: [0] }, { name: 'u', partitionIndexes: [3] }] });
    expect(deleted).toMatchObject({
      errorCode: 0,
      topics: [
        { name: 't', partitions: [{ partitionIndex: 0, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC }] },
        { name: 'u', partitions: [{ partitionIndex: 3, errorCode: 0 }] },
      ],
    });

    expect((await call('ListGroups', {})).groups).toEqual([{ groupId: 'g', protocolType: 'consumer', groupState: 'Stable' }]);
    expect((await call('ListGroups', { statesFilter: ['empty'] })).groups).toEqual([]);
    expect((await call('ListGroups', { statesFilter: ['stable'] })).groups).toHaveLength(1);
    const [described] = (await call('DescribeGroups', { groups: ['g'] })).groups;
    expect(described).toMatchObject({ errorCode: 0, groupId: 'g', groupState: 'Stable', protocolType: 'consumer', protocolData: 'range' });
    expect(described.members).toMatchObject([{ memberId, clientId: 'svc-test', clientHost: '/127.0.0.1', memberAssignment: Buffer.from('a') }]);

    expect((await call('DeleteGroups', { groupsNames: ['g', 'nope'] })).results).toMatchObject([
      { groupId: 'g', errorCode: ErrorCode.NON_EMPTY_GROUP },
      { groupId: 'nope', errorCode: ErrorCode.GROUP_ID_NOT_FOUND },
    ]);
    const left = await call('LeaveGroup', { groupId: 'g', members: [{ memberId }] });
    expect(left).toMatchObject({ errorCode: 0, members: [{ memberId, errorCode: 0 }] });
    expect((await call('DeleteGroups', { groupsNames: ['g'] })).results).toMatchObject([{ groupId: 'g', errorCode: 0 }]);
    expect((await call('OffsetFetch', { groupId: 'g', allTopics: true })).topics).toEqual([]);
  });
});
