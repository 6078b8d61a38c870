// One ReplicaManager driven directly, on a manual clock: the leader's view of a follower (its fetch
// offsets), high-watermark advance, acks=all completion, and the exact moment the ISR shrinks
// (replica.lag.time.max.ms) and expands, with AlterPartition answered by the controller logic.

import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ControllerLogic,
  MetadataPublisher,
  generateTopicId,
  makeControllerConfig,
  type AlterPartitionRequest,
  type MetadataRecord,
} from '@raftka/quorum';
import { ConfigError } from '@raftka/protocol';
import { ALTER_PARTITION_RETRY_BACKOFF_MS, ManualTime, ReplicaManager, makeReplicaManagerConfig, type LeaderEndpoint } from '../../src/index.js';
import { batch, seededRandom, waitFor } from './cluster-fixture.js';

const LAG_MS = 10_000;

let root: string;
let time: ManualTime;
let manager: ReplicaManager;
let controller: MetadataPublisher;
let brokerView: MetadataPublisher;
let offset: number;
let alterRequests: AlterPartitionRequest[];
/** AlterPartition calls still to fail (the controller unreachable). */
let alterFailures: number;

function commit(records: MetadataRecord[]): Promise<void> {
  offset++;
  controller.applyRecords(records, offset, 1);
  brokerView.applyRecords(records, offset, 1);
  return manager.metadataApplied();
}

/** Lets promise callbacks run (the manager's appends and AlterPartition calls). */
async function settle(): Promise<void> {
  for (let round = 0; round < 20; round++) await new Promise((resolve) => setImmediate(resolve));
}

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-replica-manager-'));
  time = new ManualTime();
  offset = -1;
  alterRequests = [];
  alterFailures = 0;
  controller = new MetadataPublisher();
  brokerView = new MetadataPublisher();
  const logic = new ControllerLogic({ config: makeControllerConfig(), random: seededRandom(3) });
  const unreachable: LeaderEndpoint = {
    fetch: () => Promise.reject(new Error('no leader in this test')),
    offsetForLeaderEpoch: () => Promise.reject(new Error('no leader in this test')),
    close: () => undefined,
  };
  manager = new ReplicaManager({
    brokerId: 1,
    logDir: root,
    config: makeReplicaManagerConfig({ replicaLagTimeMaxMs: LAG_MS }),
    clock: time,
    timers: time,
    connectToBroker: () => unreachable,
    alterPartition: async (request) => {
      alterRequests.push(request);
      if (alterFailures > 0) {
        alterFailures--;
        throw new Error('controller unreachable');
      }
      const { records, response } = logic.alterPartition(controller.image, request);
      if (records.length > 0) await commit(records);
      return response;
    },
  });
  manager.start();
  brokerView.subscribe((update) => void manager.applyMetadata(update));
  const topicId = generateTopicId(seededRandom(5));
  const endpoint = (port: number) => [{ name: 'CLIENT', host: '127.0.0.1', port, securityProtocol: 'PLAINTEXT' }];
  await commit([
    { type: 'registerBroker', brokerId: 1, incarnationId: 'one', brokerEpoch: 1, endpoints: endpoint(1), rack: undefined, fenced: false },
    { type: 'registerBroker', brokerId: 2, incarnationId: 'two', brokerEpoch: 2, endpoints: endpoint(2), rack: undefined, fenced: false },
    { type: 'topic', name: 'logs', topicId },
    { type: 'config', resourceType: 'topic', resourceName: 'logs', name: 'min.insync.replicas', value: '2' },
    { type: 'partition', topicId, partitionId: 0, replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
  ]);
});

afterEach(async () => {
  await manager.close();
  await fs.rm(root, { recursive: true, force: true });
});

function followerFetch(fetchOffset: number) {
  return manager.fetch({
    replicaId: 2,
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 1 << 20,
    isolationLevel: 'READ_UNCOMMITTED',
    partitions: [{ topic: 'logs', partition: 0, currentLeaderEpoch: 0, fetchOffset, lastFetchedEpoch: -1, partitionMaxBytes: 1 << 20 }],
  });
}

describe('ReplicaManager as leader', () => {
  it('acknowledges acks=all once the follower fetches past the batch, moving the HW', async () => {
    let answered = false;
    const produced = manager.produce({ acks: -1, timeoutMs: 30_000, partitions: [{ topic: 'logs', partition: 0, records: batch('x', 4) }] }).then((responses) => {
      answered = true;
      return responses;
    });
    await waitFor(() => manager.replicaStatus('logs', 0)!.logEndOffset === 4, 'the leader appends');
    await settle();
    expect(answered).toBe(false);
    expect(manager.replicaStatus('logs', 0)!.highWatermark).toBe(0);
    // The follower reads the batch (up to the LEO, past the HW) ...
    const [read] = await followerFetch(0);
    expect(read!.records.length).toBeGreaterThan(0);
    expect(read!.highWatermark).toBe(0);
    await settle();
    expect(answered).toBe(false);
    // ... and its next fetch offset says it holds it: the HW moves and the produce is answered.
    const [next] = await followerFetch(4);
    expect(next!.highWatermark).toBe(4);
    const [response] = await produced;
    expect(response).toMatchObject({ errorCode: 'NONE', baseOffset: 0 });
  });

  it('proposes removing a follower after replica.lag.time.max.ms without catching up, and re-adding it once caught up', async () => {
    await manager.produce({ acks: 1, timeoutMs: 0, partitions: [{ topic: 'logs', partition: 0, records: batch('x') }] });
    // Checked every LAG/2 (as Kafka): at LAG the follower is not yet *more* than LAG behind.
    time.advance(LAG_MS);
    await settle();
    expect(alterRequests).toHaveLength(0);
    time.advance(LAG_MS / 2);
    await waitFor(() => alterRequests.length === 1, 'the shrink proposal');
    expect(alterRequests[0]!.topics[0]!.partitions[0]).toMatchObject({ newIsr: [1], leaderEpoch: 0, partitionEpoch: 0 });
    await waitFor(() => manager.replicaStatus('logs', 0)!.isr.length === 1, 'the committed shrink');
    // min.insync.replicas=2 with an ISR of one: acks=all is refused and nothing is appended.
    const [refused] = await manager.produce({ acks: -1, timeoutMs: 1_000, partitions: [{ topic: 'logs', partition: 0, records: batch('y') }] });
    expect(refused!.errorCode).toBe('NOT_ENOUGH_REPLICAS');
    expect(manager.replicaStatus('logs', 0)!.logEndOffset).toBe(1);
    // The follower catches up: it rejoins (KIP-497: only once the controller commits it).
    await followerFetch(1);
    await waitFor(() => alterRequests.length === 2, 'the expand proposal');
    expect(alterRequests[1]!.topics[0]!.partitions[0]!.newIsr).toEqual([1, 2]);
    await waitFor(() => manager.replicaStatus('logs', 0)!.isr.length === 2, 'the committed expansion');
    expect(controller.image.topicByName('logs')!.partitions[0]!.isr).toEqual([1, 2]);
  });

  it('waits ALTER_PARTITION_RETRY_BACKOFF_MS before proposing again after AlterPartition failed', async () => {
    await manager.produce({ acks: 1, timeoutMs: 0, partitions: [{ topic: 'logs', partition: 0, records: batch('x') }] });
    alterFailures = 1;
    time.advance(LAG_MS * 1.5);
    await waitFor(() => alterRequests.length === 1, 'the failed shrink proposal');
    await settle();
    // The follower is still behind; the next check proposes again only after the back-off.
    time.advance(LAG_MS / 2);
    await waitFor(() => alterRequests.length === 2, 'the retried proposal');
    await waitFor(() => manager.replicaStatus('logs', 0)!.isr.length === 1, 'the committed shrink');
    alterFailures = 1;
    await followerFetch(1);
    await waitFor(() => alterRequests.length === 3, 'the failed expansion');
    await settle();
    // Every follower fetch would re-propose; within the back-off none is sent.
    await followerFetch(1);
    await followerFetch(1);
    await settle();
    expect(alterRequests).toHaveLength(3);
    time.advance(ALTER_PARTITION_RETRY_BACKOFF_MS);
    await waitFor(() => alterRequests.length === 4, 'the expansion after the back-off');
    await waitFor(() => manager.replicaStatus('logs', 0)!.isr.length === 2, 'the committed expansion');
  });

  it('sends the ISR changes of one check in a single AlterPartition request', async () => {
    const topicId = generateTopicId(seededRandom(9));
    await commit([
      { type: 'topic', name: 'more', topicId },
      { type: 'partition', topicId, partitionId: 0, replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
      { type: 'partition', topicId, partitionId: 1, replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
    ]);
    await manager.produce({
      acks: 1,
      timeoutMs: 0,
      partitions: [
        { topic: 'logs', partition: 0, records: batch('a') },
        { topic: 'more', partition: 0, records: batch('b') },
        { topic: 'more', partition: 1, records: batch('c') },
      ],
    });
    time.advance(LAG_MS * 1.5);
    await waitFor(() => alterRequests.length === 1, 'the shrink proposals');
    await settle();
    expect(alterRequests).toHaveLength(1);
    const items = alterRequests[0]!.topics.flatMap((topic) => topic.partitions.map((item) => `${topic.topicId === topicId ? 'more' : 'logs'}-${item.partitionId}:${item.newIsr.join(',')}`));
    expect(items.sort()).toEqual(['logs-0:1', 'more-0:1', 'more-1:1']);
    await waitFor(() => ['logs', 'more'].every((topic) => manager.replicaStatus(topic, 0)!.isr.length === 1) && manager.replicaStatus('more', 1)!.isr.length === 1, 'every shrink committed');
  });

  it('times out an acks=all produce at its deadline with REQUEST_TIMED_OUT', async () => {
    const produced = manager.produce({ acks: -1, timeoutMs: 500, partitions: [{ topic: 'logs', partition: 0, records: batch('x') }] });
    await waitFor(() => manager.replicaStatus('logs', 0)!.logEndOffset === 1, 'the leader appends');
    time.advance(499);
    await settle();
    time.advance(20);
    const [response] = await produced;
    expect(response!.errorCode).toBe('REQUEST_TIMED_OUT');
  });
});

describe('makeReplicaManagerConfig', () => {
  it('names every bad setting, one line each', () => {
    let thrown: unknown;
    try {
      makeReplicaManagerConfig({ replicaLagTimeMaxMs: 1_000, fetcher: { fetchWaitMaxMs: 5_000, fetchBackoffMs: 0 } });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const problems = (thrown as ConfigError).problems;
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^replica\.fetch\.wait\.max\.ms=5000: must be at least 0 and below replica\.lag\.time\.max\.ms=1000/);
    expect(problems[1]).toMatch(/^replica\.fetch\.backoff\.ms=0/);
  });
});
