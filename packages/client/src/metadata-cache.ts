// The client's view of the cluster: topics -> partitions -> leader and leader epoch, and broker
// addresses. A pure data structure: the driver fetches Metadata and feeds it in.
//
// Refresh rules (as in Kafka's client Metadata):
//   - a full refresh is due metadataMaxAgeMs after the last one, even without errors;
//   - `requestUpdate` asks for one at once: after NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE,
//     UNKNOWN_TOPIC_OR_PARTITION, FENCED_LEADER_EPOCH, ..., or a topic with no metadata yet;
//   - refreshes are spaced by retryBackoffMs so a broken partition cannot cause a refresh storm.
// Leader epochs never go back (KIP-320): a response from a broker with older metadata than
// ours does not overwrite a partition's newer leader, so a stale broker cannot send the client
// back to a deposed leader. KIP-951 leader hints in Produce/Fetch responses update one
// partition's leader under the same rule.

import type { ErrorCodeName } from '@raftka/protocol';

export interface BrokerInfo {
  nodeId: number;
  host: string;
  port: number;
  /** Empty when unset. */
  rack: string;
}

export interface PartitionInfo {
  partition: number;
  /** -1 when the partition has no leader. */
  leaderId: number;
  leaderEpoch: number;
  replicas: readonly number[];
  isr: readonly number[];
  offlineReplicas: readonly number[];
}

export interface TopicInfo {
  name: string;
  /** Partitions by index. Invariant: `partitions[i].partition === i`. */
  partitions: readonly PartitionInfo[];
}

/** The part of a Metadata response the cache keeps (already decoded and validated). */
export interface MetadataSnapshot {
  clusterId: string;
  controllerId: number;
  brokers: readonly BrokerInfo[];
  topics: readonly TopicInfo[];
  /** Topics the response said do not exist (UNKNOWN_TOPIC_OR_PARTITION). */
  unknownTopics?: readonly string[];
}

/** Errors after which the client's partition metadata is probably stale. */
const STALE_METADATA_ERRORS: ReadonlySet<ErrorCodeName> = new Set<ErrorCodeName>([
  'NOT_LEADER_OR_FOLLOWER',
  'LEADER_NOT_AVAILABLE',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'KAFKA_STORAGE_ERROR',
  'NOT_LEADER',
  'BROKER_NOT_AVAILABLE',
  'REPLICA_NOT_AVAILABLE',
  'NETWORK_EXCEPTION',
]);

/** Whether an error means the client should refresh metadata before retrying. */
export function isStaleMetadataError(code: ErrorCodeName): boolean {
  return STALE_METADATA_ERRORS.has(code);
}

export interface MetadataCacheOptions {
  metadataMaxAgeMs: number;
  /** Minimum spacing between refreshes (`retry.backoff.ms`). */
  refreshBackoffMs: number;
}

export class MetadataCache {
  readonly #options: MetadataCacheOptions;
  #clusterId: string | undefined;
  #controllerId = -1;
  #brokers = new Map<number, BrokerInfo>();
  #topics = new Map<string, TopicInfo>();
  #unknownTopics = new Set<string>();
  // Topics the client uses; a refresh asks for these.
  readonly #interestingTopics = new Set<string>();
  #lastRefreshMs = Number.NEGATIVE_INFINITY;
  #lastSuccessfulRefreshMs = Number.NEGATIVE_INFINITY;
  #updateRequested = true;
  // Incremented on every successful update, so waiters can tell a newer snapshot arrived.
  #version = 0;

  constructor(options: MetadataCacheOptions) {
    this.#options = options;
  }

  get version(): number {
    return this.#version;
  }

  get clusterId(): string | undefined {
    return this.#clusterId;
  }

  get controllerId(): number {
    return this.#controllerId;
  }

  /** Adds topics the next refresh must cover; a topic not yet known triggers a refresh. */
  addTopics(topics: Iterable<string>): void {
    for (const topic of topics) {
      if (!this.#interestingTopics.has(topic)) {
        this.#interestingTopics.add(topic);
        if (!this.#topics.has(topic)) this.#updateRequested = true;
      }
    }
  }

  /** Topics the next Metadata request should ask for. */
  topicsToRefresh(): string[] {
    return [...this.#interestingTopics];
  }

  /** Asks for a refresh as soon as the backoff allows. */
  requestUpdate(): void {
    this.#updateRequested = true;
  }

  /** Records a per-partition error; refreshes when it signals stale metadata. Returns whether it did. */
  onPartitionError(code: ErrorCodeName): boolean {
    if (!isStaleMetadataError(code)) return false;
    this.#updateRequested = true;
    return true;
  }

  /** Milliseconds until a refresh should start (0 = now). */
  timeToNextUpdateMs(nowMs: number): number {
    const dueByAgeMs = this.#lastSuccessfulRefreshMs + this.#options.metadataMaxAgeMs - nowMs;
    const dueMs = this.#updateRequested ? 0 : dueByAgeMs;
    const backoffLeftMs = this.#lastRefreshMs + this.#options.refreshBackoffMs - nowMs;
    return Math.max(0, dueMs, backoffLeftMs);
  }

  /** The driver started a Metadata request at nowMs. */
  onRefreshAttempt(nowMs: number): void {
    this.#lastRefreshMs = nowMs;
  }

  /** A Metadata request failed: keep the old view; the next try waits refreshBackoffMs. */
  onRefreshFailure(nowMs: number): void {
    this.#lastRefreshMs = nowMs;
    this.#updateRequested = true;
  }

  /** Applies a Metadata response. Partitions whose known leader epoch is newer keep their entry (KIP-320). */
  update(snapshot: MetadataSnapshot, nowMs: number): void {
    this.#clusterId = snapshot.clusterId;
    this.#controllerId = snapshot.controllerId;
    this.#brokers = new Map(snapshot.brokers.map((broker) => [broker.nodeId, broker]));
    const topics = new Map<string, TopicInfo>();
    for (const topic of snapshot.topics) {
      const previous = this.#topics.get(topic.name);
      const partitions = topic.partitions.map((incoming) => {
        const known = previous?.partitions[incoming.partition];
        return known && known.leaderEpoch > incoming.leaderEpoch ? known : incoming;
      });
      topics.set(topic.name, { name: topic.name, partitions });
    }
    // Topics the response did not mention stay as they were only if still of interest and not
    // reported missing: a response may cover a subset of topics.
    for (const [name, info] of this.#topics) {
      if (!topics.has(name) && !snapshot.unknownTopics?.includes(name) && this.#interestingTopics.has(name)) topics.set(name, info);
    }
    this.#topics = topics;
    this.#unknownTopics = new Set(snapshot.unknownTopics ?? []);
    this.#lastRefreshMs = nowMs;
    this.#lastSuccessfulRefreshMs = nowMs;
    this.#updateRequested = false;
    this.#version += 1;
  }

  /**
   * Applies a leader hint from a Produce/Fetch response (KIP-951) when it is newer than ours.
   * Returns whether the cache changed.
   */
  updateLeader(topic: string, partition: number, leaderId: number, leaderEpoch: number): boolean {
    const info = this.#topics.get(topic);
    const known = info?.partitions[partition];
    if (!info || !known || leaderId < 0 || leaderEpoch <= known.leaderEpoch || !this.#brokers.has(leaderId)) return false;
    const partitions = info.partitions.slice();
    partitions[partition] = { ...known, leaderId, leaderEpoch };
    this.#topics.set(topic, { name: topic, partitions });
    return true;
  }

  topic(name: string): TopicInfo | undefined {
    return this.#topics.get(name);
  }

  /** The last refresh reported the topic missing. */
  isUnknownTopic(name: string): boolean {
    return this.#unknownTopics.has(name);
  }

  partitionCount(topic: string): number | undefined {
    return this.#topics.get(topic)?.partitions.length;
  }

  /** Partitions with a live leader, for the sticky partitioner. */
  availablePartitions(topic: string): number[] {
    const info = this.#topics.get(topic);
    if (!info) return [];
    return info.partitions.filter((p) => p.leaderId >= 0 && this.#brokers.has(p.leaderId)).map((p) => p.partition);
  }

  /** The leader's node id, undefined when unknown or without a known address. */
  leaderFor(topic: string, partition: number): number | undefined {
    const leaderId = this.#topics.get(topic)?.partitions[partition]?.leaderId;
    if (leaderId === undefined || leaderId < 0 || !this.#brokers.has(leaderId)) return undefined;
    return leaderId;
  }

  leaderEpoch(topic: string, partition: number): number {
    return this.#topics.get(topic)?.partitions[partition]?.leaderEpoch ?? -1;
  }

  broker(nodeId: number): BrokerInfo | undefined {
    return this.#brokers.get(nodeId);
  }

  brokers(): BrokerInfo[] {
    return [...this.#brokers.values()];
  }
}
