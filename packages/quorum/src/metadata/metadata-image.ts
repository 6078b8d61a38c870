// The metadata image: the cluster state the committed metadata log describes.
//
// Every controller and every observing broker builds the same image by applying the same committed
// records in the same order, starting from empty or from a snapshot (which is itself a list of
// records, see metadata-snapshot.ts). Nothing but the records and the offsets they were committed
// at goes into it, so it is identical everywhere.
//
// The image is mutable and applied in place: the benchmark target (100,000 partitions, a fence
// of a broker leading ~33,000 of them re-elected in well under a second) rules out copying it per
// batch. What changed in a batch is captured instead by a `MetadataDelta` passed to `apply`, which
// copies the *previous* state of each thing the first time the batch touches it.
//
// Invariant: the arrays inside a `PartitionState` or `BrokerRegistration` are never mutated in
// place, only replaced. That makes a shallow copy a true snapshot of the old state (the delta
// relies on it) and lets callers keep an array they were handed.
//
// Records from the committed log are trusted (they were validated by the controller that wrote
// them); a record that contradicts the image is a bug and fails an invariant. The checks are
// written `if (bad) invariant(false, message)` so the hot path allocates no message closures.

import { invariant, assertNever } from '@raftka/protocol';
import type { BrokerEndpoint, ConfigResourceType, MetadataRecord, PartitionChangeRecord } from './metadata-records.js';
import type { MetadataDelta } from './metadata-delta.js';

/** `leader` of a partition that has none. */
export const NO_LEADER = -1;

export interface BrokerRegistration {
  brokerId: number;
  incarnationId: string;
  brokerEpoch: number;
  endpoints: readonly BrokerEndpoint[];
  rack: string | undefined;
  fenced: boolean;
  inControlledShutdown: boolean;
  /**
   * Log offset of the entry that carried this registration. The broker counts as caught up with
   * the metadata log once it has applied this offset (KIP-631): it then knows at least its own
   * registration and everything committed before it.
   */
  registeredAtOffset: number;
  /**
   * Log offset of the entry that last fenced this registration (undefined if none did). A broker
   * fenced while it was cut off still holds the metadata from before its fencing: it believes it
   * leads partitions that have new leaders. It counts as caught up again only once it has applied
   * this offset too, so that it has seen its own fencing and everything decided before it.
   */
  fencedAtOffset: number | undefined;
}

export interface PartitionState {
  readonly topicId: string;
  readonly partitionId: number;
  /** In assignment order; replicas[0] is the preferred leader. */
  replicas: readonly number[];
  /** Invariant: non-empty, a subset of `replicas`; contains `leader` unless leader is NO_LEADER. */
  isr: readonly number[];
  leader: number;
  /** Bumped on every leader change (including to NO_LEADER). */
  leaderEpoch: number;
  /** Bumped on every change; AlterPartition must quote the current value (KIP-497/KIP-841). */
  partitionEpoch: number;
}

export interface TopicImage {
  readonly topicId: string;
  readonly name: string;
  /** Indexed by partition id; Invariant: partitions[i].partitionId === i, no holes. */
  readonly partitions: PartitionState[];
}

export type ConfigMap = ReadonlyMap<string, string>;

/** Replaces `.` by `_`: two topic names equal after this collide in metric names (Kafka refuses them). */
export function collisionName(topicName: string): string {
  return topicName.replace(/\./g, '_');
}

export function copyPartition(partition: PartitionState): PartitionState {
  return { ...partition };
}

export class MetadataImage {
  readonly brokers = new Map<number, BrokerRegistration>();
  readonly topicsById = new Map<string, TopicImage>();
  readonly topicIdsByName = new Map<string, string>();
  /** Topic ids by `collisionName(name)`. */
  readonly topicIdsByCollisionName = new Map<string, string>();
  /** Dynamic config overrides: topic name -> key -> value. */
  readonly topicConfigs = new Map<string, Map<string, string>>();
  /** Dynamic broker configs: broker id as text ('' = cluster default) -> key -> value. */
  readonly brokerConfigs = new Map<string, Map<string, string>>();
  /** Invariant: never decreases; every producer id below it has been handed out. */
  nextProducerId = 0;
  /** Invariant: never decreases; the greatest broker epoch ever registered. */
  highestBrokerEpoch = 0;
  /** Offset of the last log entry applied, -1 when none. */
  lastAppliedOffset = -1;
  lastAppliedEpoch = 0;
  /**
   * Index broker -> partitions that list it as a replica, so that fencing or unfencing a broker
   * visits only its own partitions. Invariant: p is in replicaIndex(b) iff p.replicas includes b.
   */
  private readonly partitionsByReplica = new Map<number, Set<PartitionState>>();
  private partitionCountTotal = 0;

  get partitionCount(): number {
    return this.partitionCountTotal;
  }

  topicByName(name: string): TopicImage | undefined {
    const topicId = this.topicIdsByName.get(name);
    return topicId === undefined ? undefined : this.topicsById.get(topicId);
  }

  partition(topicId: string, partitionId: number): PartitionState | undefined {
    return this.topicsById.get(topicId)?.partitions[partitionId];
  }

  /** Partitions that list `brokerId` among their replicas. Do not modify the set. */
  partitionsOnBroker(brokerId: number): ReadonlySet<PartitionState> {
    return this.partitionsByReplica.get(brokerId) ?? EMPTY_PARTITIONS;
  }

  /** A broker that may lead or join an ISR: registered, unfenced, not shutting down. */
  isBrokerActive(brokerId: number): boolean {
    const broker = this.brokers.get(brokerId);
    return broker !== undefined && !broker.fenced && !broker.inControlledShutdown;
  }

  configsOf(resourceType: ConfigResourceType, resourceName: string): ConfigMap {
    const configs = resourceType === 'topic' ? this.topicConfigs : this.brokerConfigs;
    return configs.get(resourceName) ?? EMPTY_CONFIGS;
  }

  /** Applies one committed record, recording the previous state of what it changes in `delta`. */
  apply(record: MetadataRecord, offset: number, delta?: MetadataDelta): void {
    switch (record.type) {
      case 'registerBroker': {
        if (record.brokerEpoch <= this.highestBrokerEpoch) invariant(false, () => `broker epoch ${record.brokerEpoch} of broker ${record.brokerId} is not above ${this.highestBrokerEpoch}`);
        delta?.noteBroker(record.brokerId, this.brokers.get(record.brokerId));
        this.highestBrokerEpoch = record.brokerEpoch;
        this.brokers.set(record.brokerId, {
          brokerId: record.brokerId,
          incarnationId: record.incarnationId,
          brokerEpoch: record.brokerEpoch,
          endpoints: record.endpoints,
          rack: record.rack,
          fenced: record.fenced,
          inControlledShutdown: false,
          registeredAtOffset: record.registeredAtOffset ?? offset,
          fencedAtOffset: record.fencedAtOffset,
        });
        return;
      }
      case 'unregisterBroker': {
        const broker = this.registeredBroker(record.brokerId, record.brokerEpoch);
        delta?.noteBroker(record.brokerId, broker);
        this.brokers.delete(record.brokerId);
        return;
      }
      case 'fenceBroker':
      case 'unfenceBroker':
      case 'brokerRegistrationChange': {
        const broker = this.registeredBroker(record.brokerId, record.brokerEpoch);
        delta?.noteBroker(record.brokerId, broker);
        const changed = { ...broker };
        if (record.type === 'fenceBroker') {
          changed.fenced = true;
          changed.fencedAtOffset = offset;
          // A fenced broker has stopped (or been declared dead): its shutdown is over.
          changed.inControlledShutdown = false;
        } else if (record.type === 'unfenceBroker') {
          changed.fenced = false;
        } else {
          changed.inControlledShutdown = record.inControlledShutdown;
        }
        this.brokers.set(record.brokerId, changed);
        return;
      }
      case 'topic': {
        if (this.topicIdsByName.has(record.name)) invariant(false, () => `topic ${record.name} created twice`);
        if (this.topicsById.has(record.topicId)) invariant(false, () => `topic id ${record.topicId} used twice`);
        this.topicsById.set(record.topicId, { topicId: record.topicId, name: record.name, partitions: [] });
        this.topicIdsByName.set(record.name, record.topicId);
        this.topicIdsByCollisionName.set(collisionName(record.name), record.topicId);
        delta?.noteTopicCreated(record.topicId);
        return;
      }
      case 'partition': {
        const topic = this.topicsById.get(record.topicId);
        if (topic === undefined) invariant(false, () => `partition record for unknown topic id ${record.topicId}`);
        if (record.partitionId !== topic.partitions.length) invariant(false, () => `partition ${record.partitionId} of ${topic.name} is not the next one (${topic.partitions.length})`);
        const partition: PartitionState = {
          topicId: record.topicId,
          partitionId: record.partitionId,
          replicas: record.replicas,
          isr: record.isr,
          leader: record.leader,
          leaderEpoch: record.leaderEpoch,
          partitionEpoch: record.partitionEpoch,
        };
        assertPartitionShape(partition, topic.name);
        delta?.notePartition(partition, undefined);
        topic.partitions.push(partition);
        this.partitionCountTotal++;
        this.indexReplicas(partition, partition.replicas);
        return;
      }
      case 'partitionChange':
        this.applyPartitionChange(record, delta);
        return;
      case 'removeTopic': {
        const topic = this.topicsById.get(record.topicId);
        if (topic === undefined) invariant(false, () => `removal of unknown topic id ${record.topicId}`);
        delta?.noteTopicRemoved(topic);
        for (const partition of topic.partitions) {
          this.unindexReplicas(partition, partition.replicas);
        }
        this.partitionCountTotal -= topic.partitions.length;
        this.topicsById.delete(record.topicId);
        this.topicIdsByName.delete(topic.name);
        this.topicIdsByCollisionName.delete(collisionName(topic.name));
        if (this.topicConfigs.delete(topic.name)) delta?.noteConfig('topic', topic.name);
        return;
      }
      case 'config': {
        const configs = record.resourceType === 'topic' ? this.topicConfigs : this.brokerConfigs;
        let resource = configs.get(record.resourceName);
        if (record.value === undefined) {
          resource?.delete(record.name);
          if (resource?.size === 0) configs.delete(record.resourceName);
        } else {
          if (resource === undefined) {
            resource = new Map();
            configs.set(record.resourceName, resource);
          }
          resource.set(record.name, record.value);
        }
        delta?.noteConfig(record.resourceType, record.resourceName);
        return;
      }
      case 'noOp':
        return;
      case 'producerIds':
        if (record.nextProducerId <= this.nextProducerId) invariant(false, () => `producer ids went backwards: ${record.nextProducerId} after ${this.nextProducerId}`);
        this.nextProducerId = record.nextProducerId;
        delta?.noteProducerIds();
        return;
      default:
        assertNever(record, 'metadata record');
    }
  }

  /** Applies a committed batch (one Raft entry) and notes its position. */
  applyBatch(records: readonly MetadataRecord[], offset: number, epoch: number, delta?: MetadataDelta): void {
    if (offset <= this.lastAppliedOffset) invariant(false, () => `batch at offset ${offset} applied after offset ${this.lastAppliedOffset}`);
    for (const record of records) this.apply(record, offset, delta);
    this.lastAppliedOffset = offset;
    this.lastAppliedEpoch = epoch;
  }

  private registeredBroker(brokerId: number, brokerEpoch: number): BrokerRegistration {
    const broker = this.brokers.get(brokerId);
    if (broker === undefined) invariant(false, () => `record for unregistered broker ${brokerId}`);
    if (broker.brokerEpoch !== brokerEpoch) invariant(false, () => `record for broker ${brokerId} epoch ${brokerEpoch}, registered epoch is ${broker.brokerEpoch}`);
    return broker;
  }

  private applyPartitionChange(record: PartitionChangeRecord, delta: MetadataDelta | undefined): void {
    const topic = this.topicsById.get(record.topicId);
    const partition = topic?.partitions[record.partitionId];
    if (topic === undefined || partition === undefined) invariant(false, () => `change of unknown partition ${record.topicId}-${record.partitionId}`);
    delta?.notePartition(partition, copyPartition(partition));
    if (record.replicas !== undefined) {
      this.unindexReplicas(partition, partition.replicas);
      partition.replicas = record.replicas;
      this.indexReplicas(partition, partition.replicas);
    }
    if (record.isr !== undefined) partition.isr = record.isr;
    if (record.leader !== undefined && record.leader !== partition.leader) {
      partition.leader = record.leader;
      partition.leaderEpoch++;
    }
    partition.partitionEpoch++;
    assertPartitionShape(partition, topic.name);
  }

  private indexReplicas(partition: PartitionState, replicas: readonly number[]): void {
    for (const brokerId of replicas) {
      let partitions = this.partitionsByReplica.get(brokerId);
      if (partitions === undefined) {
        partitions = new Set();
        this.partitionsByReplica.set(brokerId, partitions);
      }
      partitions.add(partition);
    }
  }

  private unindexReplicas(partition: PartitionState, replicas: readonly number[]): void {
    for (const brokerId of replicas) {
      const partitions = this.partitionsByReplica.get(brokerId);
      partitions?.delete(partition);
      if (partitions?.size === 0) this.partitionsByReplica.delete(brokerId);
    }
  }
}

const EMPTY_PARTITIONS: ReadonlySet<PartitionState> = new Set();
const EMPTY_CONFIGS: ConfigMap = new Map();

// Hot path (every partition record): checks first, messages built only on failure.
function assertPartitionShape(partition: PartitionState, topicName: string): void {
  const where = (): string => `${topicName}-${partition.partitionId}`;
  if (partition.replicas.length === 0) invariant(false, () => `partition ${where()} has no replicas`);
  if (partition.isr.length === 0) invariant(false, () => `partition ${where()} has an empty ISR`);
  for (const member of partition.isr) {
    if (!partition.replicas.includes(member)) invariant(false, () => `ISR member ${member} of ${where()} is not a replica`);
  }
  if (partition.leader !== NO_LEADER && !partition.isr.includes(partition.leader)) {
    invariant(false, () => `leader ${partition.leader} of ${where()} is not in the ISR [${partition.isr.join(',')}]`);
  }
}
