// ISR change counting around AlterPartition, and the broker gauges read on scrape.

import { describe, expect, it } from 'vitest';
import type { AlterPartitionRequest, AlterPartitionResponse, MetadataImage } from '@raftka/quorum';
import { NodeMetrics, committedOffsetsOf, countIsrChanges, registerBrokerCollectors, type PartitionLog } from '../../src/index.js';

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const TOPIC_ID = 'topic-a';
const states = [
  { topicId: TOPIC_ID, partitionId: 0, replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
  { topicId: TOPIC_ID, partitionId: 1, replicas: [1, 2, 3], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
  { topicId: TOPIC_ID, partitionId: 2, replicas: [2, 1, 3], isr: [2], leader: 2, leaderEpoch: 0, partitionEpoch: 0 },
];
// The few members of MetadataImage the collectors read.
const image = {
  topicsById: new Map([[TOPIC_ID, { topicId: TOPIC_ID, name: 'orders', partitions: states }]]),
  partition: (topicId: string, partitionId: number) => (topicId === TOPIC_ID ? states[partitionId] : undefined),
  partitionsOnBroker: () => new Set(states),
} as unknown as MetadataImage;

describe('countIsrChanges', () => {
  it('counts committed shrinks and expansions against the ISR before the request, not failed items', async () => {
    const metrics = new NodeMetrics({ collectProcessMetrics: false });
    const alter = countIsrChanges(metrics, () => image, async (request: AlterPartitionRequest): Promise<AlterPartitionResponse> => ({
      topics: request.topics.map((topic) => ({
        topicId: topic.topicId,
        partitions: topic.partitions.map((item) => ({
          partitionId: item.partitionId,
          ...(item.partitionId === 2 ? { error: { code: 'INVALID_UPDATE_VERSION', message: 'stale' } } : {}),
          leader: 1,
          leaderEpoch: 0,
          isr: item.newIsr,
          partitionEpoch: 1,
        })),
      })),
    }) as AlterPartitionResponse);
    await alter({
      brokerId: 1,
      brokerEpoch: 1,
      topics: [
        {
          topicId: TOPIC_ID,
          partitions: [
            { partitionId: 0, leaderEpoch: 0, partitionEpoch: 0, newIsr: [1, 2] }, // shrink
            { partitionId: 1, leaderEpoch: 0, partitionEpoch: 0, newIsr: [1, 2, 3] }, // expand
            { partitionId: 2, leaderEpoch: 0, partitionEpoch: 0, newIsr: [2, 1] }, // refused
          ],
        },
      ],
    } as AlterPartitionRequest);
    const text = await metrics.render();
    expect(sample(text, 'raftka_isr_shrinks_total')).toBe(1);
    expect(sample(text, 'raftka_isr_expands_total')).toBe(1);
  });
});

describe('registerBrokerCollectors', () => {
  it('reports hosted, led and under-replicated partitions, per-partition log figures and the lifecycle state', async () => {
    const metrics = new NodeMetrics({ collectProcessMetrics: false });
    const logs = new Map([[0, { sizeInBytes: 4096, highWatermark: 7, logEndOffset: 9 }]]);
    registerBrokerCollectors(metrics, {
      brokerId: 1,
      image: () => image,
      log: (topic, partition) => (topic === 'orders' ? (logs.get(partition) as unknown as PartitionLog | undefined) : undefined),
      lifecycleState: () => 'fenced',
      committedOffsets: () =>
        committedOffsetsOf({
          listGroups: () => ({ groups: [{ groupId: 'billing' }, { groupId: 'elsewhere' }] }),
          fetchOffsets: (groupId) =>
            groupId === 'billing'
              ? { offsets: [{ topic: 'orders', partition: 0, offset: 3 }, { topic: 'orders', partition: 1, offset: 5 }, { topic: 'orders', partition: 2, offset: -1 }] }
              : { errorCode: 'NOT_COORDINATOR' },
        }),
    });
    const text = await metrics.render();
    expect(sample(text, 'raftka_partitions')).toBe(3);
    expect(sample(text, 'raftka_leader_partitions')).toBe(2);
    expect(sample(text, 'raftka_under_replicated_partitions')).toBe(1);
    expect(sample(text, 'raftka_log_size_bytes{topic="orders",partition="0"}')).toBe(4096);
    expect(sample(text, 'raftka_partition_high_watermark{topic="orders",partition="0"}')).toBe(7);
    expect(sample(text, 'raftka_partition_log_end_offset{topic="orders",partition="0"}')).toBe(9);
    expect(sample(text, 'raftka_log_size_bytes{topic="orders",partition="1"}')).toBeUndefined();
    expect(sample(text, 'raftka_broker_state{state="fenced"}')).toBe(1);
    // Lag where the partition's log is here (high watermark 7 - committed 3); none elsewhere.
    expect(sample(text, 'raftka_consumer_group_lag{group="billing",topic="orders",partition="0"}')).toBe(4);
    expect(text).not.toContain('raftka_consumer_group_lag{group="billing",topic="orders",partition="1"}');
    expect(sample(text, 'raftka_broker_state{state="active"}')).toBe(0);
  });
});
