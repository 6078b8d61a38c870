import { afterEach, describe, expect, it } from 'vitest';
import type { TopicPartition } from '../../src/cluster-client.js';
import { Consumer, WakeupError, type ConsumerRecord, type RebalanceListener } from '../../src/consumer/consumer.js';
import { NoOffsetForPartitionError } from '../../src/consumer/subscription-state.js';
import { Producer } from '../../src/producer/producer.js';
import { InMemoryCluster, PartitionLog, waitFor } from '../support/in-memory-cluster.js';
import { InMemoryGroups, type InMemoryGroupsOptions } from '../support/in-memory-groups.js';

let cluster: InMemoryCluster;
let groups: InMemoryGroups;
let producer: Producer;
const consumers: Consumer[] = [];
const loops: PollLoop[] = [];

const GROUP = 'g';
// Generous against a loaded machine: only the tests about expiry use a short session.
const SESSION_TIMEOUT_MS = 3000;
const SHORT_SESSION_TIMEOUT_MS = 800;

async function start(options: InMemoryGroupsOptions = {}): Promise<void> {
  cluster = await InMemoryCluster.start({ brokerCount: 2 });
  groups = InMemoryGroups.attach(cluster, options);
  producer = new Producer({ bootstrapServers: cluster.bootstrapServers, lingerMs: 0, retryBackoffMs: 10, retryBackoffMaxMs: 50 });
}

afterEach(async () => {
  for (const loop of loops.splice(0)) await loop.stop();
  await Promise.all(consumers.splice(0).map((created) => created.close()));
  await producer.close();
  groups.stop();
  await cluster.stop();
});

function consumer(config: Record<string, unknown> = {}): Consumer {
  const created = new Consumer({
    bootstrapServers: cluster.bootstrapServers,
    groupId: GROUP,
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: 100,
    maxPollIntervalMs: 5000,
    fetchMaxWaitMs: 50,
    retryBackoffMs: 10,
    retryBackoffMaxMs: 50,
    autoOffsetReset: 'earliest',
    enableAutoCommit: false,
    ...config,
  });
  consumers.push(created);
  return created;
}

/** Polls a consumer in the background, collecting what it returns. */
interface PollLoop {
  records: ConsumerRecord[];
  errors: unknown[];
  stop(): Promise<void>;
}

function pollInBackground(target: Consumer): PollLoop {
  let stopped = false;
  const loop: PollLoop = {
    records: [],
    errors: [],
    stop: async () => {
      stopped = true;
      await done;
    },
  };
  const done = (async () => {
    while (!stopped) {
      try {
        loop.records.push(...(await target.poll({ timeoutMs: 50 })));
      } catch (error) {
        if (stopped) return;
        loop.errors.push(error);
      }
    }
  })();
  loops.push(loop);
  return loop;
}

/** A listener that records every callback. */
function recordingListener(): RebalanceListener & { assigned: TopicPartition[][]; revoked: TopicPartition[][]; lost: TopicPartition[][] } {
  const listener = {
    assigned: [] as TopicPartition[][],
    revoked: [] as TopicPartition[][],
    lost: [] as TopicPartition[][],
    onPartitionsAssigned: (partitions: TopicPartition[]) => void listener.assigned.push(partitions),
    onPartitionsRevoked: (partitions: TopicPartition[]) => void listener.revoked.push(partitions),
    onPartitionsLost: (partitions: TopicPartition[]) => void listener.lost.push(partitions),
  };
  return listener;
}

async function produceEach(topic: string, partitions: number, from: number, to: number): Promise<void> {
  for (let partition = 0; partition < partitions; partition += 1) {
    await producer.send({ topic, messages: Array.from({ length: to - from }, (_, index) => ({ partition, value: `p${partition}-v${from + index}` })) });
  }
}

const names = (partitions: readonly TopicPartition[]) => partitions.map((tp) => `${tp.topic}-${tp.partition}`).sort();
const stable = () => groups.describe(GROUP).state === 'Stable';
const distinct = (records: readonly ConsumerRecord[]) => new Set(records.map((record) => `${record.topic}-${record.partition}@${record.offset}`)).size;

/** Waits until the consumers' assignments partition `total` partitions with the given sizes. */
async function waitForBalanced(members: readonly Consumer[], total: number, what: string): Promise<void> {
  await waitFor(
    () => {
      const all = members.flatMap((member) => names(member.assignment()));
      const counts = members.map((member) => member.assignment().length);
      return stable() && all.length === total && new Set(all).size === total && Math.max(...counts) - Math.min(...counts) <= 1;
    },
    10_000,
    what,
  );
}

describe('Consumer groups', () => {
  it('three consumers on a 6-partition topic own exactly 2 partitions each, every partition exactly once', async () => {
    await start();
    cluster.createTopic('orders', 6);
    const members = [consumer(), consumer(), consumer()];
    for (const member of members) {
      member.subscribe(['orders']);
      pollInBackground(member);
    }
    await waitForBalanced(members, 6, 'three balanced members');
    expect(members.map((member) => member.assignment().length)).toEqual([2, 2, 2]);
    expect(groups.describe(GROUP).members).toHaveLength(3);
    groups.core.assertInvariants();
  });

  it('a fourth cooperative-sticky member takes only the partitions it needs; nothing else is revoked', async () => {
    await start();
    cluster.createTopic('orders', 6);
    const listeners = [recordingListener(), recordingListener(), recordingListener()];
    const members = listeners.map((listener) => {
      const member = consumer();
      member.subscribe(['orders'], listener);
      pollInBackground(member);
      return member;
    });
    await waitForBalanced(members, 6, 'three balanced members');
    const before = members.map((member) => names(member.assignment()));
    for (const listener of listeners) listener.revoked.length = 0;
    const generationBefore = groups.describe(GROUP).generationId;

    const newcomer = consumer();
    const newcomerListener = recordingListener();
    newcomer.subscribe(['orders'], newcomerListener);
    pollInBackground(newcomer);
    await waitForBalanced([...members, newcomer], 6, 'four balanced members');

    const moved = names(newcomer.assignment());
    expect(moved).toHaveLength(1);
    const revoked = listeners.flatMap((listener) => listener.revoked.flatMap(names));
    // Exactly the partitions that moved were revoked, once, by their previous owner.
    expect(revoked.sort()).toEqual(moved);
    members.forEach((member, index) => {
      const kept = names(member.assignment());
      expect(kept.every((name) => before[index]!.includes(name))).toBe(true);
      expect(before[index]!.filter((name) => !kept.includes(name))).toEqual(moved.filter((name) => before[index]!.includes(name)));
    });
    expect(newcomerListener.revoked.flat()).toEqual([]);
    // KIP-429: the revocation round and the assignment round.
    expect(groups.describe(GROUP).generationId).toBeGreaterThanOrEqual(generationBefore + 2);
    expect(listeners.flatMap((listener) => listener.lost)).toEqual([]);
  });

  it('a member that stops heartbeating is removed after the session timeout; survivors resume from committed offsets', async () => {
    await start();
    cluster.createTopic('orders', 6);
    // Only the member that will fail has a short session; the survivors' sessions stay generous.
    const members = [consumer(), consumer(), consumer({ sessionTimeoutMs: SHORT_SESSION_TIMEOUT_MS })];
    for (const member of members) member.subscribe(['orders']);
    const polls = members.map(pollInBackground);
    await waitForBalanced(members, 6, 'three balanced members');
    await produceEach('orders', 6, 0, 10);
    await waitFor(() => distinct(polls.flatMap((loop) => loop.records)) === 60, 10_000, 'first 60 records');
    for (const member of members) await member.commitSync();

    await produceEach('orders', 6, 10, 15);
    await waitFor(() => distinct(polls.flatMap((loop) => loop.records)) === 90, 10_000, 'next 30 records');
    // Survivors commit the second round; the member about to fail does not.
    await members[0]!.commitSync();
    await members[1]!.commitSync();
    const failing = members[2]!;
    const failedPartitions = names(failing.assignment());
    groups.isolatedMembers.add(failing.groupMetadata()!.memberId);
    await polls[2]!.stop();

    const survivorsBefore = polls.slice(0, 2).map((loop) => loop.records.length);
    await waitFor(() => stable() && members[0]!.assignment().length + members[1]!.assignment().length === 6, 10_000, 'survivors own everything');
    expect(groups.describe(GROUP).members).toHaveLength(2);
    // Both failed partitions are read again from the failed member's last commit (offset 10).
    await waitFor(() => polls.slice(0, 2).reduce((sum, loop, index) => sum + loop.records.length - survivorsBefore[index]!, 0) === 10, 10_000, 'redelivery');
    const redelivered = polls.slice(0, 2).flatMap((loop, index) => loop.records.slice(survivorsBefore[index]!));
    expect(new Set(redelivered.map((record) => `${record.topic}-${record.partition}`))).toEqual(new Set(failedPartitions));
    expect(redelivered.map((record) => record.offset).sort((a, b) => a - b)).toEqual([10, 10, 11, 11, 12, 12, 13, 13, 14, 14]);
  });

  it('a slow eachMessage handler (longer than the session timeout) does not trigger a rebalance', async () => {
    await start();
    cluster.createTopic('orders', 2);
    const member = consumer({ maxPollIntervalMs: 10_000, sessionTimeoutMs: SHORT_SESSION_TIMEOUT_MS });
    member.subscribe(['orders']);
    const handled: string[] = [];
    let release: () => void = () => undefined;
    const slowDone = new Promise<void>((resolve) => (release = resolve));
    let slowStartedMs = 0;
    const running = member
      .run({
        eachMessage: async ({ message }) => {
          handled.push(message.value!.toString());
          if (handled.length === 1) {
            slowStartedMs = Date.now();
            // The handler is slow: it outlasts the session timeout twice over.
            await waitFor(() => Date.now() - slowStartedMs > 2 * SHORT_SESSION_TIMEOUT_MS, 10_000, 'slow handler');
            release();
          }
        },
      })
      .catch((error: unknown) => error);
    await waitFor(() => stable() && member.assignment().length === 2, 10_000, 'joined');
    const generation = groups.describe(GROUP).generationId;
    await produceEach('orders', 1, 0, 3);
    await slowDone;
    await waitFor(() => handled.length === 3, 10_000, 'all handled');
    expect(groups.describe(GROUP)).toMatchObject({ state: 'Stable', generationId: generation });
    expect(groups.describe(GROUP).members).toHaveLength(1);
    await member.close();
    await running;
  });

  it('a static member restarted within the session timeout keeps its partitions without a rebalance', async () => {
    // A short initial delay lets both members join the first generation together.
    await start({ groupInitialRebalanceDelayMs: 1000 });
    cluster.createTopic('orders', 6);
    const listenerA = recordingListener();
    const a = consumer({ groupInstanceId: 'a' });
    const b = consumer({ groupInstanceId: 'b' });
    a.subscribe(['orders'], listenerA);
    b.subscribe(['orders']);
    const pollA = pollInBackground(a);
    const pollB = pollInBackground(b);
    await waitForBalanced([a, b], 6, 'two static members');
    const generation = groups.describe(GROUP).generationId;
    const ownedByB = names(b.assignment());
    await pollB.stop();
    await b.close();
    expect(groups.callCounts.get('LeaveGroup') ?? 0).toBe(0);

    const restarted = consumer({ groupInstanceId: 'b' });
    restarted.subscribe(['orders']);
    pollInBackground(restarted);
    await waitFor(() => restarted.assignment().length === 3, 10_000, 'restarted member assigned');
    expect(names(restarted.assignment())).toEqual(ownedByB);
    expect(groups.describe(GROUP)).toMatchObject({ state: 'Stable', generationId: generation });
    expect(listenerA.revoked).toEqual([]);
    expect(listenerA.assigned).toHaveLength(1);
    expect(pollA.errors).toEqual([]);
  });

  it('auto-commits consumed positions, and commitSync commits offsets with the leader epoch of the last record (KIP-320)', async () => {
    await start();
    cluster.createTopic('orders', 1);
    cluster.moveLeader('orders', 0, 2);
    await produceEach('orders', 1, 0, 5);
    const auto = consumer({ enableAutoCommit: true, autoCommitIntervalMs: 50 });
    auto.subscribe(['orders']);
    const loop = pollInBackground(auto);
    await waitFor(() => loop.records.length === 5, 10_000, 'records');
    await waitFor(() => groups.committed(GROUP).get('orders-0')?.offset === 5, 10_000, 'auto-commit');
    expect(auto.lags()).toEqual(new Map([['orders-0', 0]]));
    expect(groups.committed(GROUP).get('orders-0')).toEqual({ offset: 5, leaderEpoch: 1 });
    await loop.stop();

    await auto.commitSync([{ topic: 'orders', partition: 0, offset: 3, leaderEpoch: 1, metadata: 'checkpoint' }]);
    expect(groups.committed(GROUP).get('orders-0')).toEqual({ offset: 3, leaderEpoch: 1 });
    expect(await auto.committed([{ topic: 'orders', partition: 0 }])).toEqual([{ topic: 'orders', partition: 0, offset: 3, leaderEpoch: 1, metadata: 'checkpoint' }]);
  });

  it('onPartitionsRevoked can commit before the partitions move, so the next owner does not read them again', async () => {
    await start();
    cluster.createTopic('orders', 4);
    await produceEach('orders', 4, 0, 5);
    const first = consumer();
    const committedOnRevoke: string[] = [];
    first.subscribe(['orders'], {
      onPartitionsRevoked: async (partitions) => {
        const offsets = await Promise.all(partitions.map(async (tp) => ({ ...tp, offset: await first.position(tp) })));
        await first.commitSync(offsets);
        committedOnRevoke.push(...names(partitions));
      },
    });
    const firstLoop = pollInBackground(first);
    await waitFor(() => firstLoop.records.length === 20, 10_000, 'first member read everything');
    const second = consumer();
    second.subscribe(['orders']);
    const secondLoop = pollInBackground(second);
    await waitForBalanced([first, second], 4, 'two members');
    expect(committedOnRevoke.sort()).toEqual(names(second.assignment()));
    await produceEach('orders', 4, 5, 6);
    await waitFor(() => secondLoop.records.length === 2, 10_000, 'second reads new records');
    expect(secondLoop.records.every((record) => record.offset === 5)).toBe(true);
  });

  it('consumes as an async iterator and with run({ eachBatch }) in group mode', async () => {
    await start();
    cluster.createTopic('orders', 2);
    await produceEach('orders', 2, 0, 3);
    const iterated = consumer();
    iterated.subscribe(['orders']);
    const seen: string[] = [];
    for await (const record of iterated) {
      seen.push(`${record.partition}@${record.offset}`);
      if (seen.length === 6) break;
    }
    expect(seen.sort()).toEqual(['0@0', '0@1', '0@2', '1@0', '1@1', '1@2']);
    await iterated.close();

    const batched = consumer({ groupId: GROUP, enableAutoCommit: true });
    batched.subscribe(['orders']);
    const batches: { partition: number; offsets: number[] }[] = [];
    const running = batched.run({
      eachBatch: ({ partition, messages }) => void batches.push({ partition, offsets: messages.map((message) => message.offset) }),
    });
    await waitFor(() => batches.flatMap((batch) => batch.offsets).length === 6, 10_000, 'batches');
    expect(batches.every((batch) => batch.offsets.every((offset, index) => index === 0 || offset === batch.offsets[index - 1]! + 1))).toBe(true);
    await batched.close();
    await running;
    expect(groups.committed(GROUP).get('orders-0')?.offset).toBe(3);
  });

  it('a seek in onPartitionsAssigned wins over the committed offset', async () => {
    await start();
    cluster.createTopic('orders', 1);
    await produceEach('orders', 1, 0, 5);
    const member = consumer();
    member.subscribe(['orders'], { onPartitionsAssigned: (partitions) => partitions.forEach((tp) => member.seek(tp, 3)) });
    const loop = pollInBackground(member);
    await waitFor(() => loop.records.length === 2, 10_000, 'records from the seek');
    expect(loop.records.map((record) => record.offset)).toEqual([3, 4]);
  });

  it('wakeup makes a blocked poll reject with WakeupError; the next poll works', async () => {
    await start();
    cluster.createTopic('orders', 1);
    const member = consumer();
    member.subscribe(['orders']);
    const polled = member.poll({ timeoutMs: 30_000 });
    await waitFor(() => groups.describe(GROUP).state === 'Stable', 10_000, 'joined');
    member.wakeup();
    await expect(polled).rejects.toBeInstanceOf(WakeupError);
    await produceEach('orders', 1, 0, 1);
    await waitFor(async () => (await member.poll({ timeoutMs: 50 })).length === 1, 10_000, 'record after wakeup');
  });

  it('autoOffsetReset none without a committed offset fails poll with NoOffsetForPartitionError naming the partition', async () => {
    await start();
    cluster.createTopic('orders', 1);
    const member = consumer({ autoOffsetReset: 'none' });
    member.subscribe(['orders']);
    const deadlineMs = Date.now() + 10_000;
    let failure: unknown;
    while (failure === undefined && Date.now() < deadlineMs) {
      try {
        await member.poll({ timeoutMs: 50 });
      } catch (error) {
        failure = error;
      }
    }
    expect(failure).toBeInstanceOf(NoOffsetForPartitionError);
    expect((failure as NoOffsetForPartitionError).partitions).toEqual([{ topic: 'orders', partition: 0 }]);
    expect((failure as NoOffsetForPartitionError).message).toMatch(/orders-0/);
  });

  it('follows the coordinator when it moves mid-group, without a rebalance', async () => {
    await start();
    cluster.createTopic('orders', 2);
    const members = [consumer(), consumer()];
    for (const member of members) member.subscribe(['orders']);
    const polls = members.map(pollInBackground);
    await waitForBalanced(members, 2, 'two members');
    await produceEach('orders', 2, 0, 3);
    await waitFor(() => polls[0]!.records.length + polls[1]!.records.length === 6, 10_000, 'records');
    const generation = groups.describe(GROUP).generationId;

    groups.coordinatorUnavailableFor(3);
    groups.loadInProgressFor(2);
    groups.moveCoordinator(2);
    for (const member of members) await member.commitSync();
    expect(groups.committed(GROUP).get('orders-0')?.offset).toBe(3);
    expect(groups.committed(GROUP).get('orders-1')?.offset).toBe(3);
    // Heartbeats reach the new coordinator (which rebuilt the group from the log) and keep the generation.
    const heartbeats = groups.callCounts.get('Heartbeat') ?? 0;
    await waitFor(() => (groups.callCounts.get('Heartbeat') ?? 0) > heartbeats + 10, 10_000, 'heartbeats continue');
    expect(groups.describe(GROUP)).toMatchObject({ state: 'Stable', generationId: generation });
    expect(polls.flatMap((loop) => loop.errors)).toEqual([]);
  });

  it('run routes a failing record through its retry topic (after the backoff) to the dead-letter topic; other records keep flowing', async () => {
    await start();
    cluster.createTopic('orders', 1);
    cluster.createTopic('orders-retry-0', 1);
    cluster.createTopic('orders-dlt', 1);
    await producer.send({ topic: 'orders', messages: ['ok-1', 'bad', 'ok-2', 'ok-3'].map((value) => ({ value, partition: 0 })) });
    const member = consumer({ enableAutoCommit: true, autoCommitIntervalMs: 50 });
    member.subscribe(['orders']);
    const seen: { topic: string; value: string; atMs: number }[] = [];
    const running = member
      .run({
        eachMessage: ({ topic, message }) => {
          seen.push({ topic, value: message.value!.toString(), atMs: Date.now() });
          if (message.value!.toString() === 'bad') throw new Error('cannot bill this order');
        },
        retry: { attempts: 1, backoffMs: 300 },
        deadLetterTopic: 'orders-dlt',
      })
      .catch((error: unknown) => error);
    await waitFor(() => cluster.partition('orders-dlt', 0).logEndOffset === 1, 10_000, 'dead-lettered');
    expect(member.subscription()).toEqual(['orders', 'orders-retry-0']);
    expect(seen.filter((entry) => entry.topic === 'orders').map((entry) => entry.value)).toEqual(['ok-1', 'bad', 'ok-2', 'ok-3']);
    const attempts = seen.filter((entry) => entry.value === 'bad');
    expect(attempts.map((entry) => entry.topic)).toEqual(['orders', 'orders-retry-0']);
    expect(attempts[1]!.atMs - attempts[0]!.atMs).toBeGreaterThanOrEqual(300);
    const [dead] = await cluster.partition('orders-dlt', 0).records();
    expect(dead!.value!.toString()).toBe('bad');
    expect(dead!.headers.find((header) => header.key === 'raftka.original.topic')!.value!.toString()).toBe('orders');
    // The failed record counts as processed: the original partition's commit moves past it.
    await waitFor(() => groups.committed(GROUP).get('orders-0')?.offset === 4, 10_000, 'commit past the failed record');
    await member.close();
    expect(await running).toBeUndefined();
  });

  it('subscribes by pattern, picking up matching topics created later', async () => {
    await start();
    cluster.createTopic('logs-a', 2);
    cluster.createTopic('metrics', 2);
    const member = consumer({ metadataMaxAgeMs: 100 });
    member.subscribe(/^logs-/);
    pollInBackground(member);
    await waitFor(() => stable() && member.assignment().length === 2, 10_000, 'pattern assignment');
    expect(names(member.assignment())).toEqual(['logs-a-0', 'logs-a-1']);
    cluster.createTopic('logs-b', 1);
    await waitFor(() => stable() && member.assignment().length === 3, 10_000, 'new matching topic');
    expect(names(member.assignment())).toEqual(['logs-a-0', 'logs-a-1', 'logs-b-0']);
    expect(member.subscription()).toEqual(['logs-a', 'logs-b']);
  });

  it('the leader rebalances when a subscribed topic gains partitions', async () => {
    await start();
    cluster.createTopic('orders', 2);
    const members = [consumer({ metadataMaxAgeMs: 100 }), consumer({ metadataMaxAgeMs: 100 })];
    for (const member of members) {
      member.subscribe(['orders']);
      pollInBackground(member);
    }
    await waitForBalanced(members, 2, 'two members');
    cluster.topics.get('orders')!.partitions.push(new PartitionLog(1), new PartitionLog(2));
    await waitForBalanced(members, 4, 'four partitions shared');
    expect(members.map((member) => member.assignment().length)).toEqual([2, 2]);
  });

  it('with an eager assignor (range) every member revokes everything before the rebalance', async () => {
    await start();
    cluster.createTopic('orders', 4);
    const firstListener = recordingListener();
    const first = consumer({ partitionAssignmentStrategy: ['range'] });
    first.subscribe(['orders'], firstListener);
    pollInBackground(first);
    await waitFor(() => stable() && first.assignment().length === 4, 10_000, 'first member');
    const second = consumer({ partitionAssignmentStrategy: ['range'] });
    second.subscribe(['orders']);
    pollInBackground(second);
    await waitForBalanced([first, second], 4, 'two range members');
    expect(names(first.assignment())).toEqual(['orders-0', 'orders-1']);
    expect(names(second.assignment())).toEqual(['orders-2', 'orders-3']);
    expect(firstListener.revoked.map(names)).toEqual([['orders-0', 'orders-1', 'orders-2', 'orders-3']]);
    expect(firstListener.assigned.map(names)).toEqual([['orders-0', 'orders-1', 'orders-2', 'orders-3'], ['orders-0', 'orders-1']]);
  });

  it('a second process with the same groupInstanceId fences the first (FENCED_INSTANCE_ID from poll)', async () => {
    await start();
    cluster.createTopic('orders', 2);
    const original = consumer({ groupInstanceId: 'billing-1' });
    original.subscribe(['orders']);
    const originalLoop = pollInBackground(original);
    await waitFor(() => stable() && original.assignment().length === 2, 10_000, 'original joined');
    const duplicate = consumer({ groupInstanceId: 'billing-1' });
    duplicate.subscribe(['orders']);
    pollInBackground(duplicate);
    await waitFor(() => originalLoop.errors.length > 0, 10_000, 'original fenced');
    expect(originalLoop.errors[0]).toMatchObject({ code: 'FENCED_INSTANCE_ID', retriable: false });
    await waitFor(() => duplicate.assignment().length === 2, 10_000, 'duplicate assigned');
  });

  it('unsubscribe commits, revokes and leaves; the remaining member takes over', async () => {
    await start();
    cluster.createTopic('orders', 2);
    await produceEach('orders', 2, 0, 2);
    const leaving = consumer({ enableAutoCommit: true });
    const staying = consumer();
    const listener = recordingListener();
    leaving.subscribe(['orders'], listener);
    staying.subscribe(['orders']);
    const leavingLoop = pollInBackground(leaving);
    pollInBackground(staying);
    await waitForBalanced([leaving, staying], 2, 'two members');
    await waitFor(() => leavingLoop.records.length === 2, 10_000, 'records');
    const owned = names(leaving.assignment());
    await leavingLoop.stop();
    await leaving.unsubscribe();
    expect(listener.revoked.map(names)).toEqual([owned]);
    expect(groups.committed(GROUP).get(owned[0]!)?.offset).toBe(2);
    await waitFor(() => stable() && staying.assignment().length === 2, 10_000, 'takeover');
    expect(leaving.assignment()).toEqual([]);
  });

  it('a member that does not poll within maxPollIntervalMs leaves the group; its partitions move and are reported lost', async () => {
    await start();
    cluster.createTopic('orders', 2);
    const listener = recordingListener();
    const stalled = consumer({ maxPollIntervalMs: 1000 });
    const other = consumer({ maxPollIntervalMs: 5000 });
    stalled.subscribe(['orders'], listener);
    other.subscribe(['orders']);
    const stalledLoop = pollInBackground(stalled);
    pollInBackground(other);
    await waitForBalanced([stalled, other], 2, 'two members');
    await stalledLoop.stop();
    await waitFor(() => stable() && other.assignment().length === 2 && groups.describe(GROUP).members.length === 1, 10_000, 'partitions moved');
    expect(groups.callCounts.get('LeaveGroup')).toBe(1);
    await stalled.poll({ timeoutMs: 0 });
    expect(listener.lost.flat()).toHaveLength(1);
  });
});
