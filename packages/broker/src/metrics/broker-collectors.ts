// Broker gauges, read on scrape from state the broker keeps anyway: the committed metadata image
// (which partitions this broker hosts and leads, their replicas and ISR), the partition logs
// (size, high watermark, log end offset) and the lifecycle with the controller. Nothing here
// runs between scrapes; a scrape costs one pass over the hosted partitions.
//
// The ISR counters are the exception: they count committed AlterPartition results of this
// leader, observed by wrapping the function the replica manager sends AlterPartition with.

import { Gauge } from 'prom-client';
import type { AlterPartitionRequest, AlterPartitionResponse, BrokerLifecycleState, MetadataImage } from '@raftka/quorum';
import type { PartitionLog } from '../log/partition-log.js';
import { METRIC_PREFIX, type NodeMetrics } from './node-metrics.js';

const BROKER_STATES: readonly BrokerLifecycleState[] = ['starting', 'fenced', 'active', 'shutting-down', 'stopped'];

export interface BrokerMetricsSource {
  brokerId: number;
  /** The committed metadata image the replicas follow (undefined before the first update). */
  image: () => MetadataImage | undefined;
  /** The open log of a hosted partition. */
  log: (topic: string, partition: number) => PartitionLog | undefined;
  lifecycleState: () => BrokerLifecycleState;
  /** Committed offsets of the consumer groups this broker coordinates (absent: no lag gauge). */
  committedOffsets?: () => Iterable<CommittedOffset>;
}

export interface CommittedOffset {
  group: string;
  topic: string;
  partition: number;
  offset: number;
}

/** What `committedOffsetsOf` reads of the broker's group runtime. */
export interface GroupOffsetsSource {
  listGroups(): { groups: readonly { groupId: string }[] };
  fetchOffsets(groupId: string): { offsets: readonly { topic: string; partition: number; offset: number }[] } | { errorCode: string };
}

/** Every committed offset (offset >= 0) of the groups the runtime coordinates. */
export function* committedOffsetsOf(groups: GroupOffsetsSource): Iterable<CommittedOffset> {
  for (const { groupId } of groups.listGroups().groups) {
    const fetched = groups.fetchOffsets(groupId);
    if (!('offsets' in fetched)) continue;
    for (const { topic, partition, offset } of fetched.offsets) if (offset >= 0) yield { group: groupId, topic, partition, offset };
  }
}

interface HostedPartition {
  topic: string;
  partition: number;
  replicas: readonly number[];
  isr: readonly number[];
  leader: number;
}

function hostedPartitions(source: BrokerMetricsSource): HostedPartition[] {
  const image = source.image();
  if (image === undefined) return [];
  const hosted: HostedPartition[] = [];
  for (const state of image.partitionsOnBroker(source.brokerId)) {
    const topic = image.topicsById.get(state.topicId);
    if (topic === undefined) continue;
    hosted.push({ topic: topic.name, partition: state.partitionId, replicas: state.replicas, isr: state.isr, leader: state.leader });
  }
  return hosted;
}

/** Registers the broker's gauges on `metrics` (once per node). */
export function registerBrokerCollectors(metrics: NodeMetrics, source: BrokerMetricsSource): void {
  const registers = [metrics.registry];
  new Gauge({
    name: `${METRIC_PREFIX}broker_state`,
    help: 'The broker lifecycle state with the controller: 1 for the current state (active = registered and unfenced).',
    labelNames: ['state'],
    registers,
    collect() {
      const current = source.lifecycleState();
      for (const state of BROKER_STATES) this.set({ state }, state === current ? 1 : 0);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}partitions`,
    help: 'Partition replicas this broker hosts, as the committed metadata says.',
    registers,
    collect() {
      this.set(hostedPartitions(source).length);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}leader_partitions`,
    help: 'Partitions this broker leads.',
    registers,
    collect() {
      this.set(hostedPartitions(source).filter((partition) => partition.leader === source.brokerId).length);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}under_replicated_partitions`,
    help: 'Partitions led by this broker whose ISR is smaller than their replica set (Kafka UnderReplicatedPartitions).',
    registers,
    collect() {
      this.set(hostedPartitions(source).filter((partition) => partition.leader === source.brokerId && partition.isr.length < partition.replicas.length).length);
    },
  });
  const perLog = (name: string, help: string, read: (log: PartitionLog) => number): void => {
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        // Replicas come and go with the metadata: only the ones hosted now are reported.
        this.reset();
        for (const { topic, partition } of hostedPartitions(source)) {
          const log = source.log(topic, partition);
          if (log !== undefined) this.set({ topic, partition: String(partition) }, read(log));
        }
      },
    });
  };
  const committedOffsets = source.committedOffsets;
  if (committedOffsets !== undefined) {
    new Gauge({
      name: `${METRIC_PREFIX}consumer_group_lag`,
      help: 'Records between a group committed offset and the high watermark, for groups this broker coordinates and partitions it hosts.',
      labelNames: ['group', 'topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const { group, topic, partition, offset } of committedOffsets()) {
          // The high watermark is known only where the partition is hosted; elsewhere no figure.
          const log = source.log(topic, partition);
          if (log !== undefined) this.set({ group, topic, partition: String(partition) }, Math.max(0, log.highWatermark - offset));
        }
      },
    });
  }
  perLog('log_size_bytes', 'Bytes of the segment files of each hosted partition replica.', (log) => log.sizeInBytes);
  perLog('partition_high_watermark', 'High watermark of each hosted replica (consumers read below it); on a follower, as last heard from the leader.', (log) => log.highWatermark);
  perLog('partition_log_end_offset', 'Log end offset (offset of the next record) of each hosted replica.', (log) => log.logEndOffset);
}

/**
 * The AlterPartition function with committed ISR changes counted: a result whose ISR lacks a
 * member of the ISR before the request is a shrink, one with a new member an expansion.
 */
export function countIsrChanges(
  metrics: NodeMetrics,
  image: () => MetadataImage | undefined,
  alterPartition: (request: AlterPartitionRequest) => Promise<AlterPartitionResponse>,
): (request: AlterPartitionRequest) => Promise<AlterPartitionResponse> {
  return async (request) => {
    const before = new Map<string, readonly number[]>();
    const current = image();
    for (const topic of request.topics) {
      for (const item of topic.partitions) {
        const state = current?.partition(topic.topicId, item.partitionId);
        if (state !== undefined) before.set(`${topic.topicId}:${item.partitionId}`, state.isr);
      }
    }
    const response = await alterPartition(request);
    for (const topic of response.topics) {
      for (const item of topic.partitions) {
        const previous = before.get(`${topic.topicId}:${item.partitionId}`);
        if (item.error !== undefined || previous === undefined) continue;
        metrics.recordIsrChange({
          shrunk: previous.some((member) => !item.isr.includes(member)),
          expanded: item.isr.some((member) => !previous.includes(member)),
        });
      }
    }
    return response;
  };
}
