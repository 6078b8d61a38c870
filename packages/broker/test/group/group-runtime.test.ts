// The group runtime on real replica managers (in-process brokers with real replication, the test
// playing the controller): a coordinator loads its __consumer_offsets partition when it becomes
// leader, answers only after its records are acknowledged by the ISR, hands over to the next
// leader with offsets and group metadata intact, and answers NOT_COORDINATOR once it lost the
// partition. Clients cannot append to __consumer_offsets themselves.
import { afterEach, describe, expect, it } from 'vitest';
import { GROUP_METADATA_TOPIC_NAME, GroupRuntime, encodeSubscription, type GroupRequest, type GroupResponse, type GroupRuntimeConfig, type GroupRuntimeOptions } from '../../src/index.js';
import { TestCluster, batch, waitFor } from '../replica-manager/cluster-fixture.js';

const GROUP = 'payments';
const TOPIC = GROUP_METADATA_TOPIC_NAME;

let cluster: TestCluster | undefined;
const runtimes: GroupRuntime[] = [];

afterEach(async () => {
  for (const runtime of runtimes.splice(0)) runtime.close();
  await cluster?.close();
  cluster = undefined;
});

const CONFIG: Partial<GroupRuntimeConfig> = { groupInitialRebalanceDelayMs: 0, groupMinSessionTimeoutMs: 100, offsetsTopicReplicationFactor: 2 };

async function startCluster(brokerIds: number[], options: { createTopics?: GroupRuntimeOptions['createTopics'] } = {}): Promise<{ current: TestCluster; runtime: Map<number, GroupRuntime> }> {
  const current = await TestCluster.create();
  cluster = current;
  const runtime = new Map<number, GroupRuntime>();
  for (const id of brokerIds) {
    const broker = await current.startBroker(id);
    let member = 0;
    const groups = new GroupRuntime({
      replicaManager: broker.replicaManager,
      config: CONFIG,
      newMemberId: (clientId) => `${clientId}-${id}-${++member}`,
      ...(options.createTopics ? { createTopics: options.createTopics } : {}),
    });
    groups.start();
    runtimes.push(groups);
    runtime.set(id, groups);
  }
  return { current, runtime };
}

function join(memberId: string, clientId = 'app'): GroupRequest {
  return {
    type: 'join',
    groupId: GROUP,
    memberId,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: encodeSubscription(['orders']) }],
    sessionTimeoutMs: 30_000,
    rebalanceTimeoutMs: 60_000,
    clientId,
    clientHost: '/127.0.0.1',
  };
}

function errorOf(response: GroupResponse): string {
  switch (response.api) {
    case 'commit-offsets':
      return response.partitions[0]!.errorCode;
    case 'delete-groups':
      return response.results[0]!.errorCode;
    default:
      return response.errorCode;
  }
}

/** Joins a new dynamic member (KIP-394) and completes the first generation with its sync. */
async function formGroup(runtime: GroupRuntime): Promise<{ memberId: string; generationId: number }> {
  const first = await runtime.handle(join(''));
  expect(errorOf(first)).toBe('MEMBER_ID_REQUIRED');
  const memberId = first.api === 'join' ? first.memberId : '';
  const joined = await runtime.handle(join(memberId));
  expect(joined).toMatchObject({ api: 'join', errorCode: 'NONE', generationId: 1, leaderId: memberId });
  const synced = await runtime.handle({
    type: 'sync',
    groupId: GROUP,
    generationId: 1,
    memberId,
    assignments: [{ memberId, assignment: Buffer.from('orders-0') }],
  });
  expect(synced).toMatchObject({ api: 'sync', errorCode: 'NONE', assignment: Buffer.from('orders-0') });
  return { memberId, generationId: 1 };
}

function commit(memberId: string, generationId: number, offset: number): GroupRequest {
  return { type: 'commit-offsets', groupId: GROUP, generationId, memberId, offsets: [{ topic: 'orders', partition: 0, offset, metadata: `at-${offset}` }] };
}

describe('GroupRuntime', () => {
  it('loads on leadership, answers after the ISR has the records, and hands over to the next leader', async () => {
    const { current, runtime } = await startCluster([1, 2]);
    const one = runtime.get(1)!;
    const two = runtime.get(2)!;
    // Before the topic exists nobody coordinates anything.
    expect(errorOf(await one.handle(join('')))).toBe('NOT_COORDINATOR');
    await current.createTopic(TOPIC, [[1, 2]], { 'cleanup.policy': 'compact' });
    await waitFor(() => one.coordinatorState(0) === 'active', 'broker 1 to load the partition');
    expect(two.coordinatorState(0)).toBe('none');
    expect(errorOf(await two.handle(join('')))).toBe('NOT_COORDINATOR');

    const { memberId, generationId } = await formGroup(one);
    const committed = await one.handle(commit(memberId, generationId, 42));
    expect(errorOf(committed)).toBe('NONE');
    // acks=all: by the time the commit is answered the follower holds every record written.
    const leaderEnd = current.broker(1).replicaManager.replicaStatus(TOPIC, 0)!.logEndOffset;
    expect(leaderEnd).toBeGreaterThan(0);
    expect(current.broker(2).replicaManager.replicaStatus(TOPIC, 0)!.logEndOffset).toBe(leaderEnd);

    // A second member's join parks (the group waits for the first member to rejoin).
    const parked = one.handle(join('')).then(async (response) => {
      expect(errorOf(response)).toBe('MEMBER_ID_REQUIRED');
      return one.handle(join(response.api === 'join' ? response.memberId : '', 'second'));
    });
    await waitFor(() => one.describeGroups([GROUP])[0]!.state === 'PreparingRebalance', 'the rebalance to start');

    // The controller moves leadership to broker 2.
    await current.changePartition(TOPIC, 0, { leader: 2 });
    expect(errorOf(await parked)).toBe('NOT_COORDINATOR');
    expect(one.coordinatorState(0)).toBe('none');
    await waitFor(() => two.coordinatorState(0) === 'active', 'broker 2 to load the partition');

    // Offsets and group metadata survived: the member carries on at its generation.
    expect(two.fetchOffsets(GROUP)).toEqual({ offsets: [{ topic: 'orders', partition: 0, offset: 42, leaderEpoch: -1, metadata: 'at-42', errorCode: 'NONE' }] });
    const described = two.describeGroups([GROUP])[0]!;
    expect(described).toMatchObject({ state: 'Stable', generationId: 1, leaderId: memberId, protocolName: 'range' });
    expect(described.members.map((m) => m.memberId)).toEqual([memberId]);
    expect(errorOf(await two.handle({ type: 'heartbeat', groupId: GROUP, generationId, memberId }))).toBe('NONE');
    expect(errorOf(await two.handle(commit(memberId, generationId, 43)))).toBe('NONE');
    expect(errorOf(await one.handle({ type: 'heartbeat', groupId: GROUP, generationId, memberId }))).toBe('NOT_COORDINATOR');
    expect(one.fetchOffsets(GROUP)).toMatchObject({ errorCode: 'NOT_COORDINATOR' });

    // And back: broker 1 reloads everything, including the commit broker 2 made.
    await current.changePartition(TOPIC, 0, { leader: 1 });
    await waitFor(() => one.coordinatorState(0) === 'active', 'broker 1 to load the partition again');
    expect(one.fetchOffsets(GROUP)).toMatchObject({ offsets: [{ offset: 43, metadata: 'at-43' }] });
  });

  it('holds the answer (and the offset from OffsetFetch) until the records are acknowledged, and reloads from the log when an append fails', async () => {
    const { current, runtime } = await startCluster([1, 2]);
    const one = runtime.get(1)!;
    await current.createTopic(TOPIC, [[1, 2]], { 'cleanup.policy': 'compact', 'min.insync.replicas': '2' });
    await waitFor(() => one.coordinatorState(0) === 'active', 'broker 1 to load the partition');
    const { memberId, generationId } = await formGroup(one);
    expect(errorOf(await one.handle(commit(memberId, generationId, 10)))).toBe('NONE');

    // The follower stops: the next commit is appended on the leader but not acknowledged.
    await current.stopBroker(2);
    const before = current.broker(1).replicaManager.replicaStatus(TOPIC, 0)!.logEndOffset;
    let answer: GroupResponse | undefined;
    const pending = one.handle(commit(memberId, generationId, 11)).then((response) => (answer = response));
    await waitFor(() => current.broker(1).replicaManager.replicaStatus(TOPIC, 0)!.logEndOffset > before, 'the leader to append');
    expect(answer).toBeUndefined();
    // OffsetFetch shows only acknowledged commits, never the one still waiting.
    expect(one.fetchOffsets(GROUP)).toMatchObject({ offsets: [{ offset: 10 }] });
    // The ISR shrinks below min.insync.replicas=2: the append fails, the client is told to retry
    // elsewhere-or-later, and the coordinator rebuilds itself from its log.
    await pending;
    expect(['COORDINATOR_NOT_AVAILABLE', 'REQUEST_TIMED_OUT']).toContain(errorOf(answer!));
    await waitFor(() => one.coordinatorState(0) === 'active', 'the coordinator to reload');
    // The reload took what the leader's log holds (the unacknowledged commit was appended there).
    expect(one.fetchOffsets(GROUP)).toMatchObject({ offsets: [{ offset: 11 }] });
    // Later writes are refused at once while the ISR is too small; nothing is answered as done.
    await waitFor(() => current.partitionState(TOPIC).isr.length === 1, 'the ISR to shrink to the leader');
    expect(errorOf(await one.handle(commit(memberId, generationId, 12)))).toBe('COORDINATOR_NOT_AVAILABLE');
    await waitFor(() => one.coordinatorState(0) === 'active', 'the coordinator to reload again');
    expect(one.fetchOffsets(GROUP)).toMatchObject({ offsets: [{ offset: 11 }] });
  });

  it('refuses client appends to __consumer_offsets', async () => {
    const { current } = await startCluster([1]);
    await current.createTopic(TOPIC, [[1]], { 'cleanup.policy': 'compact' });
    await current.createTopic('orders', [[1]]);
    const refused = await current.broker(1).client.produce({ topic: TOPIC, records: batch('forged'), acks: -1 });
    expect(refused.code).toBe('INVALID_TOPIC_EXCEPTION');
    expect(refused.message).toBe(`Cannot append to internal topic ${TOPIC}`);
    expect(current.broker(1).replicaManager.replicaStatus(TOPIC, 0)!.logEndOffset).toBe(0);
    expect((await current.broker(1).client.produce({ topic: 'orders', records: batch('fine'), acks: -1 })).code).toBe('NONE');
  });

  it('finds the coordinator, creating __consumer_offsets once, and never with fewer replicas than configured', async () => {
    const requests: unknown[] = [];
    const { current, runtime } = await startCluster([1], {
      createTopics: async (request) => {
        requests.push(request);
        return { topics: [] };
      },
    });
    const one = runtime.get(1)!;
    // offsets.topic.replication.factor=2 with one live broker: not created, and the answer says why.
    const lonely = one.findCoordinator(GROUP);
    expect(lonely).toMatchObject({ found: false, errorCode: 'COORDINATOR_NOT_AVAILABLE' });
    expect(!lonely.found && lonely.message).toContain('offsets.topic.replication.factor=2');
    expect(requests).toHaveLength(0);

    await current.startBroker(2);
    expect(one.findCoordinator(GROUP)).toMatchObject({ found: false, errorCode: 'COORDINATOR_NOT_AVAILABLE' });
    expect(one.findCoordinator(GROUP)).toMatchObject({ found: false });
    await waitFor(() => requests.length === 1, 'the creation request');
    expect(requests[0]).toEqual({
      topics: [
        {
          name: TOPIC,
          numPartitions: 50,
          replicationFactor: 2,
          configs: { 'cleanup.policy': 'compact', 'compression.type': 'producer', 'segment.bytes': '104857600' },
        },
      ],
    });

    await current.createTopic(TOPIC, [[2, 1]], { 'cleanup.policy': 'compact' });
    expect(one.findCoordinator(GROUP)).toEqual({ found: true, nodeId: 2, host: '127.0.0.1', port: current.broker(2).port });
  });
});
