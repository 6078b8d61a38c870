// What changed in the metadata image across one committed batch (or between two images).
//
// A broker uses it to learn exactly which partitions it must now lead, follow or stop replicating
// (Kafka's TopicsDelta.localChanges), without comparing the whole image: the cost is proportional
// to what changed, not to the size of the cluster.
//
// While a batch is applied the image calls the `note*` methods *before* it mutates something, so
// the delta keeps the state as it was before the batch (the first note wins) and reads the state
// after the batch from the live image. Partitions are keyed by their live `PartitionState` object,
// which the image keeps for the partition's whole life.

import type { BrokerRegistration, MetadataImage, PartitionState, TopicImage } from './metadata-image.js';
import type { ConfigResourceType } from './metadata-records.js';

export interface PartitionChange {
  topicId: string;
  topicName: string;
  partitionId: number;
  /** `undefined`: the partition was created. */
  before: PartitionState | undefined;
  /** `undefined`: the partition was removed (its topic was deleted). */
  after: PartitionState | undefined;
}

export interface BrokerChange {
  brokerId: number;
  /** `undefined`: the broker registered for the first time. */
  before: BrokerRegistration | undefined;
  /** `undefined`: the broker unregistered. */
  after: BrokerRegistration | undefined;
}

export interface StoppedReplica {
  topicId: string;
  topicName: string;
  partitionId: number;
  /** `topic-deleted`: the whole topic went away; `replica-removed`: reassigned off this broker. */
  reason: 'topic-deleted' | 'replica-removed';
}

export interface LocalPartition {
  topicName: string;
  partition: PartitionState;
  /** `true` when this broker was not a replica of the partition before. */
  isNew: boolean;
}

/** Kafka's LocalReplicaChanges: what one broker must do after a delta. */
export interface LocalPartitionChanges {
  /** Partitions this broker now leads whose state changed (new leadership, new epoch or new ISR). */
  leaders: LocalPartition[];
  /** Partitions this broker now follows whose leader or leader epoch changed, or that are new to it. */
  followers: LocalPartition[];
  /** Partitions this broker must stop replicating. */
  stopped: StoppedReplica[];
}

interface NotedPartition {
  topicName: string;
  before: PartitionState | undefined;
}

export class MetadataDelta {
  private readonly image: MetadataImage;
  private readonly partitions = new Map<PartitionState, NotedPartition>();
  private readonly brokersBefore = new Map<number, BrokerRegistration | undefined>();
  private readonly configs = new Map<string, { resourceType: ConfigResourceType; resourceName: string }>();
  private readonly createdTopicIds = new Set<string>();
  private readonly removedTopics = new Map<string, string>();
  private producerIdsChanged = false;

  /** `image` is the image the batch is applied to: the state after the batch is read from it. */
  constructor(image: MetadataImage) {
    this.image = image;
  }

  /** The delta that turns `before` into `after`, e.g. when a snapshot replaces the image. */
  static between(before: MetadataImage, after: MetadataImage): MetadataDelta {
    const delta = new MetadataDelta(after);
    for (const [brokerId, broker] of before.brokers) {
      const now = after.brokers.get(brokerId);
      if (now === undefined || !sameBroker(broker, now)) delta.brokersBefore.set(brokerId, broker);
    }
    for (const brokerId of after.brokers.keys()) {
      if (!before.brokers.has(brokerId)) delta.brokersBefore.set(brokerId, undefined);
    }
    for (const [topicId, topic] of before.topicsById) {
      const now = after.topicsById.get(topicId);
      if (now === undefined) {
        delta.noteTopicRemoved(topic);
        continue;
      }
      for (const partition of topic.partitions) {
        const current = now.partitions[partition.partitionId];
        if (current === undefined) {
          // Partitions are never removed from a live topic; treat a missing one as removed anyway.
          delta.partitions.set(partition, { topicName: topic.name, before: partition });
        } else if (!samePartition(partition, current)) {
          delta.partitions.set(current, { topicName: topic.name, before: partition });
        }
      }
      for (let partitionId = topic.partitions.length; partitionId < now.partitions.length; partitionId++) {
        delta.partitions.set(now.partitions[partitionId]!, { topicName: now.name, before: undefined });
      }
    }
    for (const [topicId, topic] of after.topicsById) {
      if (before.topicsById.has(topicId)) continue;
      delta.createdTopicIds.add(topicId);
      for (const partition of topic.partitions) delta.partitions.set(partition, { topicName: topic.name, before: undefined });
    }
    for (const resourceType of ['topic', 'broker'] as const) {
      const names = new Set([...(resourceType === 'topic' ? before.topicConfigs : before.brokerConfigs).keys(), ...(resourceType === 'topic' ? after.topicConfigs : after.brokerConfigs).keys()]);
      for (const name of names) {
        if (!sameConfigs(before.configsOf(resourceType, name), after.configsOf(resourceType, name))) delta.noteConfig(resourceType, name);
      }
    }
    delta.producerIdsChanged = before.nextProducerId !== after.nextProducerId;
    return delta;
  }

  // ---- Called by MetadataImage.apply before it mutates. ----

  noteBroker(brokerId: number, before: BrokerRegistration | undefined): void {
    if (!this.brokersBefore.has(brokerId)) this.brokersBefore.set(brokerId, before);
  }

  /** `live` is the image's object for the partition; `before` a copy of its state before the change. */
  notePartition(live: PartitionState, before: PartitionState | undefined): void {
    if (this.partitions.has(live)) return;
    const topicName = this.image.topicsById.get(live.topicId)?.name ?? '';
    this.partitions.set(live, { topicName, before });
  }

  noteTopicCreated(topicId: string): void {
    this.createdTopicIds.add(topicId);
  }

  noteTopicRemoved(topic: TopicImage): void {
    for (const partition of topic.partitions) {
      const noted = this.partitions.get(partition);
      if (noted === undefined) {
        // The image drops the object, so this copy is the only record of the old state.
        this.partitions.set(partition, { topicName: topic.name, before: { ...partition } });
      } else {
        noted.topicName = topic.name;
      }
    }
    if (this.createdTopicIds.has(topic.topicId)) {
      this.createdTopicIds.delete(topic.topicId);
    } else {
      this.removedTopics.set(topic.topicId, topic.name);
    }
  }

  noteConfig(resourceType: ConfigResourceType, resourceName: string): void {
    this.configs.set(`${resourceType}:${resourceName}`, { resourceType, resourceName });
  }

  noteProducerIds(): void {
    this.producerIdsChanged = true;
  }

  // ---- Read by consumers of the delta. ----

  get isEmpty(): boolean {
    return (
      this.partitions.size === 0 &&
      this.brokersBefore.size === 0 &&
      this.configs.size === 0 &&
      this.createdTopicIds.size === 0 &&
      this.removedTopics.size === 0 &&
      !this.producerIdsChanged
    );
  }

  get producerIdsAdvanced(): boolean {
    return this.producerIdsChanged;
  }

  createdTopics(): TopicImage[] {
    return [...this.createdTopicIds].flatMap((topicId) => {
      const topic = this.image.topicsById.get(topicId);
      return topic === undefined ? [] : [topic];
    });
  }

  removedTopicsList(): { topicId: string; name: string }[] {
    return [...this.removedTopics].map(([topicId, name]) => ({ topicId, name }));
  }

  brokerChanges(): BrokerChange[] {
    return [...this.brokersBefore].map(([brokerId, before]) => ({ brokerId, before, after: this.image.brokers.get(brokerId) }));
  }

  configChanges(): { resourceType: ConfigResourceType; resourceName: string }[] {
    return [...this.configs.values()];
  }

  partitionChanges(): PartitionChange[] {
    const changes: PartitionChange[] = [];
    for (const [live, noted] of this.partitions) {
      const after = this.afterState(live);
      if (noted.before === undefined && after === undefined) continue; // created and removed in one batch
      changes.push({ topicId: live.topicId, topicName: noted.topicName, partitionId: live.partitionId, before: noted.before, after });
    }
    return changes;
  }

  /** What broker `brokerId` must now lead, follow, or stop replicating. */
  localChanges(brokerId: number): LocalPartitionChanges {
    const result: LocalPartitionChanges = { leaders: [], followers: [], stopped: [] };
    for (const [live, noted] of this.partitions) {
      const before = noted.before;
      const after = this.afterState(live);
      const wasReplica = before !== undefined && before.replicas.includes(brokerId);
      if (after === undefined) {
        if (wasReplica) result.stopped.push({ topicId: live.topicId, topicName: noted.topicName, partitionId: live.partitionId, reason: 'topic-deleted' });
        continue;
      }
      if (after.leader === brokerId) {
        result.leaders.push({ topicName: noted.topicName, partition: after, isNew: !wasReplica });
      } else if (after.replicas.includes(brokerId)) {
        const leadershipChanged = before === undefined || before.leader !== after.leader || before.leaderEpoch !== after.leaderEpoch;
        if (leadershipChanged || !wasReplica) result.followers.push({ topicName: noted.topicName, partition: after, isNew: !wasReplica });
      } else if (wasReplica) {
        result.stopped.push({ topicId: live.topicId, topicName: noted.topicName, partitionId: live.partitionId, reason: 'replica-removed' });
      }
    }
    return result;
  }

  private afterState(live: PartitionState): PartitionState | undefined {
    return this.image.partition(live.topicId, live.partitionId) === live ? live : undefined;
  }
}

function sameArray(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

function samePartition(a: PartitionState, b: PartitionState): boolean {
  return (
    a.leader === b.leader &&
    a.leaderEpoch === b.leaderEpoch &&
    a.partitionEpoch === b.partitionEpoch &&
    sameArray(a.replicas, b.replicas) &&
    sameArray(a.isr, b.isr)
  );
}

function sameBroker(a: BrokerRegistration, b: BrokerRegistration): boolean {
  return (
    a.brokerEpoch === b.brokerEpoch &&
    a.incarnationId === b.incarnationId &&
    a.fenced === b.fenced &&
    a.inControlledShutdown === b.inControlledShutdown &&
    a.rack === b.rack
  );
}

function sameConfigs(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, value] of a) if (b.get(key) !== value) return false;
  return true;
}
