// The group coordinator on real processes (1 controller, 3 brokers), driven over raw gRPC
// (service RaftkaGroups) as a client library would: FindCoordinator creates __consumer_offsets
// (3 partitions, RF 3) and names the leader of the group's partition; a member joins (KIP-394
// MEMBER_ID_REQUIRED, then with its id), syncs its assignment and commits offsets. The
// coordinator's broker is then SIGKILLed: FindCoordinator moves to another broker, which loaded
// the partition from its replica, and OffsetFetch there returns the committed offsets intact.

import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { encodeSubscription, groupPartitionFor, loadRaftkaClientService, loadRaftkaGroupsService } from '@raftka/broker';
import { ErrorCode } from '@raftka/protocol';
import { ProcessCluster, waitFor } from '../support/process-cluster.js';

const GROUP = 'billing';
/** Generous: on a loaded machine an acks=all append to three replicas can take seconds. */
const CALL_TIMEOUT_MS = 20_000;

type Unary = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: any) => void) => void;
type RawClient = grpc.Client & Record<string, Unary>;

let cluster: ProcessCluster | undefined;
const clients: grpc.Client[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await cluster?.destroy();
  cluster = undefined;
});

function connect(service: grpc.ServiceClientConstructor, address: string): RawClient {
  const client = new service(address, grpc.credentials.createInsecure()) as unknown as RawClient;
  clients.push(client);
  return client;
}

function call(client: RawClient, method: string, request: unknown): Promise<any> {
  const metadata = new grpc.Metadata();
  metadata.set('client-id', 'billing-app');
  return new Promise((resolve, reject) =>
    client[method]!(request, metadata, { deadline: Date.now() + CALL_TIMEOUT_MS }, (error, response) => (error ? reject(error) : resolve(response))),
  );
}

describe('group coordinator on real processes', () => {
  it('serves a group, and after SIGKILL of its coordinator another broker serves the committed offsets', async () => {
    cluster = await ProcessCluster.create({
      voters: 1,
      brokers: 3,
      properties: {
        // A SIGKILLed broker is fenced on its closed connection; the long session timeout only
        // keeps a broker slowed down by a loaded machine from being fenced by mistake.
        'broker.session.timeout.ms': '15000',
        'broker.heartbeat.interval.ms': '500',
        'replica.lag.time.max.ms': '10000',
        'replica.fetch.wait.max.ms': '200',
        'offsets.topic.num.partitions': '3',
        'offsets.topic.replication.factor': '3',
        'group.initial.rebalance.delay.ms': '0',
        'offsets.commit.timeout.ms': '15000',
      },
    });
    const current = cluster;
    onTestFailed(() => current.printLogs());
    current.startAll();
    const groupsAt = new Map(current.brokers.map((broker) => [broker.nodeId, connect(loadRaftkaGroupsService(), broker.address)]));
    const first = current.brokers[0]!;
    const admin = connect(loadRaftkaClientService(), first.address);
    await waitFor('3 live brokers', async () => (await call(admin, 'DescribeCluster', {})).brokers.length === 3, 30_000);

    const findCoordinator = (via: RawClient) =>
      waitFor(
        'a coordinator',
        async () => {
          const { coordinators } = await call(via, 'FindCoordinator', { keyType: 'COORDINATOR_GROUP', coordinatorKeys: [GROUP] });
          const [found] = coordinators;
          if (found.errorCode !== 0) {
            expect(found.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
            return undefined;
          }
          return found as { nodeId: number; host: string; port: number };
        },
        30_000,
      );
    const coordinator = await findCoordinator(groupsAt.get(first.nodeId)!);
    expect(coordinator.host).toBe('127.0.0.1');
    expect(coordinator.port).toBe(current.broker(coordinator.nodeId).port);
    const groups = groupsAt.get(coordinator.nodeId)!;

    const joinRequest = (memberId: string) => ({
      groupId: GROUP,
      sessionTimeoutMs: 30_000,
      rebalanceTimeoutMs: 30_000,
      memberId,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: encodeSubscription(['invoices']) }],
    });
    // The coordinator may still be loading its partition: retriable answers are retried.
    const required = await waitFor('MEMBER_ID_REQUIRED', async () => {
      const response = await call(groups, 'JoinGroup', joinRequest(''));
      return response.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS ? undefined : response;
    }, 30_000);
    expect(required.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
    expect(required.memberId).toMatch(/^billing-app-[0-9a-f-]{36}$/);
    const memberId: string = required.memberId;
    const joined = await call(groups, 'JoinGroup', joinRequest(memberId));
    expect(joined).toMatchObject({ errorCode: 0, generationId: 1, leader: memberId, memberId, protocolName: 'range', protocolType: 'consumer' });
    expect(joined.members.map((m: { memberId: string }) => m.memberId)).toEqual([memberId]);

    const synced = await call(groups, 'SyncGroup', {
      groupId: GROUP,
      generationId: 1,
      memberId,
      protocolType: 'consumer',
      protocolName: 'range',
      assignments: [{ memberId, assignment: Buffer.from('invoices-0,invoices-1') }],
    });
    expect(synced).toMatchObject({ errorCode: 0, assignment: Buffer.from('invoices-0,invoices-1') });

    const committed = await call(groups, 'OffsetCommit', {
      groupId: GROUP,
      generationIdOrMemberEpoch: 1,
      memberId,
      topics: [
        {
          name: 'invoices',
          partitions: [
            { partitionIndex: 0, committedOffset: 1_234, committedLeaderEpoch: 3, committedMetadata: 'checkpoint-a' },
            { partitionIndex: 1, committedOffset: 77, committedLeaderEpoch: -1 },
          ],
        },
      ],
    });
    expect(committed.topics[0].partitions.map((p: { errorCode: number }) => p.errorCode)).toEqual([0, 0]);
    // Another broker is not the coordinator, and says so.
    const other = current.brokers.find((broker) => broker.nodeId !== coordinator.nodeId)!;
    expect((await call(groupsAt.get(other.nodeId)!, 'Heartbeat', { groupId: GROUP, generationId: 1, memberId })).errorCode).toBe(ErrorCode.NOT_COORDINATOR);

    // Every replica of the group's partition is in sync (so one of them takes over with the data).
    const partitionIndex = groupPartitionFor(GROUP, 3);
    await waitFor('a full ISR of the group partition', async () => {
      const { topics } = await call(admin, 'Metadata', { topics: ['__consumer_offsets'] });
      const partition = topics[0]?.partitions.find((p: { partitionIndex: number }) => p.partitionIndex === partitionIndex);
      return partition?.leaderId === coordinator.nodeId && partition.isrNodes.length === 3;
    }, 30_000);
    await current.broker(coordinator.nodeId).stop('SIGKILL');
    const survivor = groupsAt.get(other.nodeId)!;
    const moved = await waitFor('the coordinator to move', async () => {
      const found = await findCoordinator(survivor);
      return found.nodeId !== coordinator.nodeId ? found : undefined;
    }, 30_000);
    const next = groupsAt.get(moved.nodeId)!;
    const fetched = await waitFor('the offsets at the new coordinator', async () => {
      const response = await call(next, 'OffsetFetch', { groupId: GROUP, allTopics: true });
      return response.errorCode === 0 ? response : undefined;
    }, 30_000);
    const partitions = fetched.topics
      .flatMap((topic: { name: string; partitions: any[] }) => topic.partitions.map((p) => ({ topic: topic.name, ...p })))
      .sort((a: { partitionIndex: number }, b: { partitionIndex: number }) => a.partitionIndex - b.partitionIndex);
    expect(partitions).toMatchObject([
      { topic: 'invoices', partitionIndex: 0, committedOffset: 1_234, committedLeaderEpoch: 3, metadata: 'checkpoint-a', errorCode: 0 },
      { topic: 'invoices', partitionIndex: 1, committedOffset: 77, committedLeaderEpoch: -1, errorCode: 0 },
    ]);
    // The group itself came back too: its member, generation and assignment.
    const { groups: described } = await call(next, 'DescribeGroups', { groups: [GROUP] });
    expect(described[0]).toMatchObject({ errorCode: 0, groupState: 'Stable', protocolType: 'consumer', protocolData: 'range' });
    expect(described[0].members).toMatchObject([{ memberId, clientId: 'billing-app', memberAssignment: Buffer.from('invoices-0,invoices-1') }]);
    expect((await call(next, 'Heartbeat', { groupId: GROUP, generationId: 1, memberId })).errorCode).toBe(0);
  }, 120_000);
});
