// The cluster connection every SDK client shares: bootstrap, metadata refresh, calls to a given
// broker or to any broker, and ListOffsets (used by both the consumer and the admin client).
//
// Bootstrap follows Kafka: the first Metadata request goes to the bootstrap servers in turn;
// after that the client talks to the brokers the metadata names, and falls back to the
// bootstrap list only when none of them answers. Bootstrap endpoints get negative node ids
// (-1, -2, ...) in the connection pool so they never collide with real broker ids.
//
// Concurrent refreshes are coalesced: whoever asks while one is running waits for that one.
// A refresh never shrinks what the cache knows about a partition to an older leader epoch
// (MetadataCache enforces KIP-320's rule).

import { errorCodeName, invariant, RaftkaError } from '@raftka/protocol';
import { MetadataCache, type BrokerInfo, type MetadataSnapshot, type PartitionInfo, type TopicInfo } from './metadata-cache.js';
import { BrokerConnectionPool, type BrokerEndpoint } from './network/broker-connection-pool.js';
import type { ClientServiceName } from './network/client-proto.js';
import type {
  ListOffsetsRequest,
  ListOffsetsResponse,
  MetadataRequest,
  MetadataResponse,
  TopicMetadataMessage,
} from './network/client-messages.js';
import type { Timers } from './producer/buffer-pool.js';

/** Clock, randomness and timers of a client; production uses the real ones, tests may inject. */
export interface ClientRuntime {
  clock: () => number;
  random: () => number;
  timers: Timers;
}

export const defaultRuntime: ClientRuntime = {
  clock: () => Date.now(),
  random: () => Math.random(),
  timers: {
    setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
    clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  },
};

export interface ClusterClientOptions {
  bootstrapServers: readonly string[];
  requestTimeoutMs: number;
  retryBackoffMs: number;
  metadataMaxAgeMs: number;
  maxRequestSize: number;
  maxInFlightPerBroker: number;
  /**
   * Ask brokers to create unknown topics named in metadata refreshes (when the cluster allows it,
   * `auto.create.topics.enable`). The producer does, as Kafka's does; consumers and admin do not.
   */
  allowAutoTopicCreation?: boolean;
  /** Sent with every call (metadata `client-id`), as Kafka clients send client.id in each request header. */
  clientId?: string;
}

/** Methods `callAny` may send to the next broker after a timeout: they change nothing. */
const READ_ONLY_METHODS: ReadonlySet<string> = new Set(['Metadata', 'DescribeCluster', 'DescribeConfigs']);

/** ListOffsets sentinels (Kafka's ListOffsetsRequest.LATEST_TIMESTAMP and friends). */
export const LATEST_TIMESTAMP = -1;
export const EARLIEST_TIMESTAMP = -2;
export const MAX_TIMESTAMP = -3;

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface ListOffsetsQuery extends TopicPartition {
  /** LATEST_TIMESTAMP, EARLIEST_TIMESTAMP, MAX_TIMESTAMP or a timestamp in milliseconds. */
  timestamp: number;
}

export interface ListedOffset extends TopicPartition {
  /** -1 when no record has a timestamp at least the requested one. */
  offset: number;
  /** -1 for earliest/latest. */
  timestamp: number;
  leaderEpoch: number;
}

/** Builds a RaftkaError from a numeric Kafka error code in a response. */
export function errorFromResponse(code: number, serverMessage: string, context: string): RaftkaError {
  const name = errorCodeName(code);
  return new RaftkaError(name, `${context}: ${name}${serverMessage ? ` (${serverMessage})` : ''}`);
}

/** Parses `host:port`; a bad entry is a configuration error reported at construction. */
export function parseBootstrapServer(server: string): BrokerEndpoint {
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(server.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || !(port > 0 && port < 65536)) {
    throw new RaftkaError('INVALID_CONFIG', `bootstrap server ${JSON.stringify(server)} is not host:port`, { retriable: false });
  }
  return { host: match[1]!, port };
}

export function partitionKey(topic: string, partition: number): string {
  // Topic names cannot contain NUL, so the key is unambiguous.
  return `${topic}\u0000${partition}`;
}

export class ClusterClient {
  readonly metadata: MetadataCache;
  readonly pool: BrokerConnectionPool;
  readonly runtime: ClientRuntime;
  readonly #options: ClusterClientOptions;
  readonly #bootstrap: BrokerEndpoint[];
  #refreshing: Promise<void> | undefined;
  #closed = false;
  // Round-robin start for "any broker" calls, so load and failures spread.
  #nextAnyIndex = 0;

  constructor(options: ClusterClientOptions, runtime: ClientRuntime) {
    this.#options = options;
    this.runtime = runtime;
    this.#bootstrap = options.bootstrapServers.map(parseBootstrapServer);
    invariant(this.#bootstrap.length > 0, 'at least one bootstrap server');
    this.metadata = new MetadataCache({ metadataMaxAgeMs: options.metadataMaxAgeMs, refreshBackoffMs: options.retryBackoffMs });
    this.pool = new BrokerConnectionPool({
      messageBytesMax: options.maxRequestSize,
      maxInFlightPerBroker: options.maxInFlightPerBroker,
      ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Endpoint of a node: a known broker, or a bootstrap server (negative ids). */
  #endpoint(nodeId: number): BrokerEndpoint {
    if (nodeId < 0) {
      const bootstrap = this.#bootstrap[-nodeId - 1];
      invariant(bootstrap !== undefined, () => `no bootstrap server for node ${nodeId}`);
      return bootstrap;
    }
    const broker = this.metadata.broker(nodeId);
    if (!broker) throw new RaftkaError('BROKER_NOT_AVAILABLE', `broker ${nodeId} is not in the current metadata`);
    return { host: broker.host, port: broker.port };
  }

  /** Calls one broker's method; errors come back as RaftkaError. */
  call<Request, Response>(nodeId: number, service: ClientServiceName, method: string, request: Request, timeoutMs = this.#options.requestTimeoutMs): Promise<Response> {
    if (this.#closed) return Promise.reject(new RaftkaError('SHUTTING_DOWN', 'the client is closed', { retriable: false }));
    try {
      return this.pool.call<Request, Response>({ nodeId, endpoint: this.#endpoint(nodeId), service, method, request, timeoutMs });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Node ids to try for a call any broker can answer: known brokers first, then bootstrap. */
  #candidates(): number[] {
    const known = this.metadata.brokers().map((broker) => broker.nodeId);
    const start = known.length > 0 ? this.#nextAnyIndex++ % known.length : 0;
    const rotated = [...known.slice(start), ...known.slice(0, start)];
    return [...rotated, ...this.#bootstrap.map((_, index) => -index - 1)];
  }

  /**
   * Calls a method any broker answers, trying brokers in turn on transport failures only (an
   * answered request is never sent twice here: admin calls are not all idempotent).
   */
  async callAny<Request, Response>(service: ClientServiceName, method: string, request: Request, timeoutMs = this.#options.requestTimeoutMs): Promise<Response> {
    let lastError: RaftkaError | undefined;
    // A read may also move on from a broker that did not answer in time (paused, overloaded);
    // a write may not, since it may have been applied.
    const readOnly = READ_ONLY_METHODS.has(method);
    for (const nodeId of this.#candidates()) {
      try {
        return await this.call<Request, Response>(nodeId, service, method, request, timeoutMs);
      } catch (error) {
        const raftkaError = toRaftkaError(error);
        const moveOn =
          raftkaError.code === 'NETWORK_EXCEPTION' || raftkaError.code === 'BROKER_NOT_AVAILABLE' || (readOnly && raftkaError.code === 'REQUEST_TIMED_OUT');
        if (!moveOn) throw raftkaError;
        lastError = raftkaError;
      }
    }
    throw new RaftkaError('NETWORK_EXCEPTION', `no broker answered ${method}: ${lastError?.message ?? 'no brokers known'}`, { cause: lastError });
  }

  /** Refreshes metadata for the topics of interest (coalescing concurrent callers). */
  refreshMetadata(): Promise<void> {
    if (this.#refreshing) return this.#refreshing;
    const refresh = this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    this.#refreshing = refresh;
    return refresh;
  }

  async #refresh(): Promise<void> {
    const nowMs = this.runtime.clock();
    this.metadata.onRefreshAttempt(nowMs);
    const request: MetadataRequest = { topics: this.metadata.topicsToRefresh(), allTopics: false, allowAutoTopicCreation: this.#options.allowAutoTopicCreation === true };
    try {
      const response = await this.callAny<MetadataRequest, MetadataResponse>('RaftkaClient', 'Metadata', request);
      this.metadata.update(snapshotFromMetadata(response), this.runtime.clock());
      // A topic answered with a transient error (LEADER_NOT_AVAILABLE while it is created) is
      // not in the snapshot; ask again after the backoff.
      if (response.topics.some((topic) => topic.errorCode !== 0 && errorCodeName(topic.errorCode) !== 'UNKNOWN_TOPIC_OR_PARTITION')) {
        this.metadata.requestUpdate();
      }
    } catch (error) {
      this.metadata.onRefreshFailure(this.runtime.clock());
      throw error;
    }
  }

  /** Refreshes when the cache says one is due (requested or aged); failures are left for the next try. */
  async maybeRefreshMetadata(): Promise<void> {
    if (this.metadata.timeToNextUpdateMs(this.runtime.clock()) > 0) return;
    await this.refreshMetadata().catch(() => undefined);
  }

  /** A one-off Metadata call (admin: all topics, or named ones) that does not touch the cache's interest set. */
  fetchMetadata(topics: readonly string[] | 'all'): Promise<MetadataResponse> {
    const request: MetadataRequest =
      topics === 'all' ? { topics: [], allTopics: true, allowAutoTopicCreation: false } : { topics: [...topics], allTopics: false, allowAutoTopicCreation: false };
    return this.callAny<MetadataRequest, MetadataResponse>('RaftkaClient', 'Metadata', request);
  }

  /**
   * Waits until the metadata knows `topic`'s partitions, refreshing with backoff, up to
   * deadlineMs. Fails with UNKNOWN_TOPIC_OR_PARTITION when the cluster keeps saying the topic
   * does not exist, or the last refresh error.
   */
  async waitForTopic(topic: string, deadlineMs: number): Promise<TopicInfo> {
    this.metadata.addTopics([topic]);
    let lastError: RaftkaError | undefined;
    for (;;) {
      const known = this.metadata.topic(topic);
      if (known && known.partitions.length > 0) return known;
      if (this.#closed) throw new RaftkaError('SHUTTING_DOWN', 'the client closed while waiting for metadata', { retriable: false });
      const nowMs = this.runtime.clock();
      if (nowMs >= deadlineMs) {
        if (this.metadata.isUnknownTopic(topic)) {
          throw new RaftkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${JSON.stringify(topic)} does not exist; create it first (auto-creation is off)`, {
            retriable: false,
          });
        }
        throw new RaftkaError('REQUEST_TIMED_OUT', `metadata for topic ${JSON.stringify(topic)} did not arrive in time${lastError ? `: ${lastError.message}` : ''}`, {
          cause: lastError,
          retriable: false,
        });
      }
      const waitMs = this.metadata.timeToNextUpdateMs(nowMs);
      if (waitMs > 0) await this.delay(Math.min(waitMs, deadlineMs - nowMs));
      else {
        this.metadata.requestUpdate();
        await this.refreshMetadata().catch((error: unknown) => {
          lastError = toRaftkaError(error);
        });
      }
    }
  }

  /** Looks offsets up on the partitions' leaders; per-partition errors come back as results. */
  async listOffsets(
    queries: readonly ListOffsetsQuery[],
    isolationLevel: 'READ_UNCOMMITTED' | 'READ_COMMITTED',
  ): Promise<Map<string, ListedOffset | RaftkaError>> {
    const results = new Map<string, ListedOffset | RaftkaError>();
    const byLeader = new Map<number, ListOffsetsQuery[]>();
    for (const query of queries) {
      const partitionCount = this.metadata.partitionCount(query.topic);
      if (partitionCount !== undefined && (query.partition < 0 || query.partition >= partitionCount)) {
        results.set(
          partitionKey(query.topic, query.partition),
          new RaftkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${query.topic} has ${partitionCount} partitions; there is no partition ${query.partition}`, { retriable: false }),
        );
        continue;
      }
      const leader = this.metadata.leaderFor(query.topic, query.partition);
      if (leader === undefined) {
        this.metadata.requestUpdate();
        results.set(partitionKey(query.topic, query.partition), new RaftkaError('LEADER_NOT_AVAILABLE', `no known leader for ${query.topic}-${query.partition}`));
        continue;
      }
      const list = byLeader.get(leader) ?? [];
      list.push(query);
      byLeader.set(leader, list);
    }
    await Promise.all(
      [...byLeader].map(async ([leader, list]) => {
        const topics = new Map<string, ListOffsetsRequest['topics'][number]>();
        for (const query of list) {
          const entry = topics.get(query.topic) ?? { name: query.topic, partitions: [] };
          entry.partitions.push({
            partitionIndex: query.partition,
            currentLeaderEpoch: this.metadata.leaderEpoch(query.topic, query.partition),
            timestamp: query.timestamp,
          });
          topics.set(query.topic, entry);
        }
        try {
          const response = await this.call<ListOffsetsRequest, ListOffsetsResponse>(leader, 'RaftkaClient', 'ListOffsets', {
            replicaId: -1,
            isolationLevel,
            topics: [...topics.values()],
          });
          for (const topic of response.topics) {
            for (const partition of topic.partitions) {
              const key = partitionKey(topic.name, partition.partitionIndex);
              if (partition.errorCode !== 0) {
                const error = errorFromResponse(partition.errorCode, partition.errorMessage, `ListOffsets for ${topic.name}-${partition.partitionIndex}`);
                this.metadata.onPartitionError(error.code);
                results.set(key, error);
              } else {
                results.set(key, {
                  topic: topic.name,
                  partition: partition.partitionIndex,
                  offset: partition.offset,
                  timestamp: partition.timestamp,
                  leaderEpoch: partition.leaderEpoch,
                });
              }
            }
          }
        } catch (error) {
          const raftkaError = toRaftkaError(error);
          this.metadata.onPartitionError(raftkaError.code);
          for (const query of list) results.set(partitionKey(query.topic, query.partition), raftkaError);
        }
      }),
    );
    for (const query of queries) {
      const key = partitionKey(query.topic, query.partition);
      if (!results.has(key)) results.set(key, new RaftkaError('UNKNOWN_SERVER_ERROR', `the leader did not answer for ${query.topic}-${query.partition}`));
    }
    return results;
  }

  /** Resolves after delayMs (driver code only; the cores take time as input). */
  delay(delayMs: number): Promise<void> {
    return new Promise((resolve) => this.runtime.timers.setTimeout(resolve, Math.max(0, delayMs)));
  }

  close(): void {
    this.#closed = true;
    this.pool.close();
  }
}

export function toRaftkaError(error: unknown): RaftkaError {
  if (error instanceof RaftkaError) return error;
  return new RaftkaError('UNKNOWN_SERVER_ERROR', error instanceof Error ? error.message : String(error), { cause: error, retriable: false });
}

/** Validates a Metadata response at the boundary and turns it into the cache's snapshot. */
export function snapshotFromMetadata(response: MetadataResponse): MetadataSnapshot {
  const brokers: BrokerInfo[] = response.brokers.map((broker) => ({ nodeId: broker.nodeId, host: broker.host, port: broker.port, rack: broker.rack }));
  const topics: TopicInfo[] = [];
  const unknownTopics: string[] = [];
  for (const topic of response.topics) {
    if (topic.errorCode !== 0) {
      if (errorCodeName(topic.errorCode) === 'UNKNOWN_TOPIC_OR_PARTITION') unknownTopics.push(topic.name);
      continue;
    }
    const info = topicInfoFromMessage(topic);
    if (info) topics.push(info);
  }
  return { clusterId: response.clusterId, controllerId: response.controllerId, brokers, topics, unknownTopics };
}

/** A topic's partitions by index, or undefined when the list has gaps (a broker mid-update). */
export function topicInfoFromMessage(topic: TopicMetadataMessage): TopicInfo | undefined {
  const partitions: PartitionInfo[] = [];
  for (const partition of [...topic.partitions].sort((a, b) => a.partitionIndex - b.partitionIndex)) {
    if (partition.partitionIndex !== partitions.length) return undefined;
    const leaderless = partition.errorCode !== 0 && errorCodeName(partition.errorCode) === 'LEADER_NOT_AVAILABLE';
    partitions.push({
      partition: partition.partitionIndex,
      leaderId: leaderless ? -1 : partition.leaderId,
      leaderEpoch: partition.leaderEpoch,
      replicas: partition.replicaNodes,
      isr: partition.isrNodes,
      offlineReplicas: partition.offlineReplicas,
    });
  }
  return { name: topic.name, partitions };
}
