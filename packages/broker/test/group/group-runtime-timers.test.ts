// The runtime's timers on a manual clock, with one replica manager leading a one-replica
// __consumer_offsets (acks=all is answered at once): the core is ticked at the deadline it asks
// for (a member that stops heartbeating is removed after its session timeout, and the removal is
// persisted), and offsets expire every offsets.retention.check.interval.ms (KIP-211), leaving a
// tombstone in the log that a reload honours.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MetadataPublisher, generateTopicId, type MetadataRecord } from '@raftka/quorum';
import { GROUP_METADATA_TOPIC_NAME, GroupRuntime, ManualTime, ReplicaManager, encodeSubscription, type GroupResponse } from '../../src/index.js';
import { seededRandom, waitFor } from '../replica-manager/cluster-fixture.js';

const SESSION_TIMEOUT_MS = 10_000;
const RETENTION_MS = 60_000;
const CHECK_INTERVAL_MS = 5_000;

let root: string;
let time: ManualTime;
let manager: ReplicaManager;
let publisher: MetadataPublisher;
let offset: number;
let topicId: string;
const runtimes: GroupRuntime[] = [];

function commitMetadata(records: MetadataRecord[]): Promise<void> {
  publisher.applyRecords(records, ++offset, 1);
  return manager.metadataApplied();
}

function newRuntime(checkIntervalMs = CHECK_INTERVAL_MS): GroupRuntime {
  const runtime = new GroupRuntime({
    replicaManager: manager,
    config: { groupInitialRebalanceDelayMs: 0, offsetsRetentionMs: RETENTION_MS, offsetsRetentionCheckIntervalMs: checkIntervalMs, offsetsTopicReplicationFactor: 1 },
    clock: time,
    timers: time,
    newMemberId: (clientId) => `${clientId}-1`,
  });
  runtime.start();
  runtimes.push(runtime);
  return runtime;
}

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-group-timers-'));
  time = new ManualTime();
  offset = -1;
  publisher = new MetadataPublisher();
  manager = new ReplicaManager({ brokerId: 1, logDir: root, clock: time, timers: time, alterPartition: () => Promise.reject(new Error('not in this test')) });
  manager.start();
  publisher.subscribe((update) => void manager.applyMetadata(update));
  topicId = generateTopicId(seededRandom(9));
  await commitMetadata([{ type: 'registerBroker', brokerId: 1, incarnationId: 'one', brokerEpoch: 1, endpoints: [{ name: 'CLIENT', host: '127.0.0.1', port: 1, securityProtocol: 'PLAINTEXT' }], rack: undefined, fenced: false }]);
});

afterEach(async () => {
  for (const runtime of runtimes.splice(0)) runtime.close();
  await manager.close();
  await fs.rm(root, { recursive: true, force: true });
});

async function createOffsetsTopic(): Promise<void> {
  await commitMetadata([
    { type: 'topic', name: GROUP_METADATA_TOPIC_NAME, topicId },
    { type: 'config', resourceType: 'topic', resourceName: GROUP_METADATA_TOPIC_NAME, name: 'cleanup.policy', value: 'compact' },
    { type: 'partition', topicId, partitionId: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
  ]);
}

function errorCode(response: GroupResponse): string {
  return response.api === 'commit-offsets' ? response.partitions[0]!.errorCode : 'errorCode' in response ? response.errorCode : 'NONE';
}

describe('GroupRuntime timers', () => {
  it('ticks the core at its deadlines: a silent member leaves after its session timeout', async () => {
    // No offset expiration here: it would delete the group once it is Empty without offsets.
    const runtime = newRuntime(RETENTION_MS * 10);
    await createOffsetsTopic();
    await waitFor(() => runtime.coordinatorState(0) === 'active', 'the partition to load');
    const join = (memberId: string) =>
      runtime.handle({
        type: 'join',
        groupId: 'g',
        memberId,
        protocolType: 'consumer',
        protocols: [{ name: 'range', metadata: encodeSubscription(['t']) }],
        sessionTimeoutMs: SESSION_TIMEOUT_MS,
        rebalanceTimeoutMs: SESSION_TIMEOUT_MS,
        clientId: 'c',
        clientHost: '/127.0.0.1',
      });
    expect(errorCode(await join(''))).toBe('MEMBER_ID_REQUIRED');
    expect(await join('c-1')).toMatchObject({ errorCode: 'NONE', generationId: 1 });
    expect(errorCode(await runtime.handle({ type: 'sync', groupId: 'g', generationId: 1, memberId: 'c-1', assignments: [{ memberId: 'c-1', assignment: Buffer.from('x') }] }))).toBe('NONE');
    expect(runtime.describeGroups(['g'])[0]!.state).toBe('Stable');

    time.advance(SESSION_TIMEOUT_MS - 1);
    expect(runtime.describeGroups(['g'])[0]!.state).toBe('Stable');
    const before = manager.replicaStatus(GROUP_METADATA_TOPIC_NAME, 0)!.logEndOffset;
    time.advance(1);
    expect(runtime.describeGroups(['g'])[0]).toMatchObject({ state: 'Empty', members: [] });
    // The removal was persisted: a fresh coordinator on the same log sees the group Empty.
    await waitFor(() => {
      const status = manager.replicaStatus(GROUP_METADATA_TOPIC_NAME, 0)!;
      return status.logEndOffset > before && status.highWatermark === status.logEndOffset;
    }, 'the removal to be appended');
    runtime.close();
    const reloaded = newRuntime(RETENTION_MS * 10);
    await commitMetadata([{ type: 'partitionChange', topicId, partitionId: 0, leader: 1 }]);
    await waitFor(() => reloaded.coordinatorState(0) === 'active', 'the reload');
    expect(reloaded.describeGroups(['g'])[0]).toMatchObject({ state: 'Empty', generationId: 2, members: [] });
  });

  it('expires offsets every offsets.retention.check.interval.ms, and the tombstones survive a reload', async () => {
    const runtime = newRuntime();
    await createOffsetsTopic();
    await waitFor(() => runtime.coordinatorState(0) === 'active', 'the partition to load');
    // A client outside group management: its offsets expire retention after their commit.
    const committed = await runtime.handle({ type: 'commit-offsets', groupId: 'simple', generationId: -1, memberId: '', offsets: [{ topic: 't', partition: 0, offset: 7 }] });
    expect(errorCode(committed)).toBe('NONE');
    expect(runtime.fetchOffsets('simple')).toMatchObject({ offsets: [{ offset: 7 }] });

    const before = manager.replicaStatus(GROUP_METADATA_TOPIC_NAME, 0)!.logEndOffset;
    time.advance(RETENTION_MS - CHECK_INTERVAL_MS);
    expect(runtime.fetchOffsets('simple')).toMatchObject({ offsets: [{ offset: 7 }] });
    // The first check at or past commit time + retention drops them (and the empty group).
    time.advance(CHECK_INTERVAL_MS);
    await waitFor(() => 'offsets' in runtime.fetchOffsets('simple') && (runtime.fetchOffsets('simple') as { offsets: unknown[] }).offsets.length === 0, 'the offsets to expire');
    expect(manager.replicaStatus(GROUP_METADATA_TOPIC_NAME, 0)!.logEndOffset).toBeGreaterThan(before);
    expect(runtime.listGroups().groups).toEqual([]);

    runtime.close();
    const reloaded = newRuntime();
    await commitMetadata([{ type: 'partitionChange', topicId, partitionId: 0, leader: 1 }]);
    await waitFor(() => reloaded.coordinatorState(0) === 'active', 'the reload');
    expect(reloaded.fetchOffsets('simple')).toEqual({ offsets: [] });
  });
});
