// The Admin client: topics, partitions, configs, cluster and offsets.
//
// Topic and config changes go to any broker, which forwards them to the active controller and
// answers after the change is committed (client.proto, RaftkaAdmin). Descriptions come from
// Metadata; offsets from the partition leaders (ListOffsets).
//
// Errors: a call that acts on several items succeeds only if every item does. Otherwise it
// rejects with AdminOperationError, whose `code` is the first failure's Kafka error name and whose
// `failures` map each failed item (topic name, or "type:name" for config resources) to its own
// RaftkaError; `results` holds the items that succeeded. Transport failures (no broker answers)
// are retried with backoff until requestTimeoutMs, and so are items refused with an error that
// changed nothing (NOT_CONTROLLER while the controller moves); ListOffsets' stale-leader errors
// refresh metadata and try again. Other per-item errors are final.

import { RaftkaError, type ErrorCodeName } from '@raftka/protocol';
import {
  ClusterClient,
  defaultRuntime,
  EARLIEST_TIMESTAMP,
  errorFromResponse,
  LATEST_TIMESTAMP,
  MAX_TIMESTAMP,
  partitionKey,
  toRaftkaError,
  topicInfoFromMessage,
  type ClientRuntime,
  type ListedOffset,
  type TopicPartition,
} from '../cluster-client.js';
import { resolveAdminOptions, type AdminOptions } from '../options.js';
import type {
  AlterConfigOpName,
  ConfigResourceTypeName,
  ConfigSourceName,
  CreatePartitionsRequest,
  CreatePartitionsResponse,
  CreateTopicsRequest,
  CreateTopicsResponse,
  DeleteTopicsRequest,
  DeleteTopicsResponse,
  DescribeClusterRequest,
  DescribeClusterResponse,
  DescribeConfigsRequest,
  DescribeConfigsResponse,
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponse,
} from '../network/client-messages.js';
import { isStaleMetadataError, type BrokerInfo } from '../metadata-cache.js';
import { AdminOperationError } from './admin-errors.js';
import {
  GroupAdmin,
  type GroupDescription,
  type GroupOffset,
  type GroupState,
  type ListedGroup,
  type OffsetResetPlanEntry,
  type ResetOffsetsRequest,
} from './group-admin.js';

export { AdminOperationError };

/** Admin options: `bootstrapServers` is required, every other key has Kafka's default. */
export type AdminConfig = Partial<AdminOptions> & { bootstrapServers: string[] };

export interface NewTopic {
  topic: string;
  /** Defaults to the broker's num.partitions. */
  numPartitions?: number;
  /** Defaults to the broker's default.replication.factor. */
  replicationFactor?: number;
  /** Explicit placement: replicas (broker ids, preferred leader first) per partition index. */
  replicaAssignment?: readonly (readonly number[])[];
  /** Topic configs, e.g. { 'cleanup.policy': 'compact' }. */
  configs?: Readonly<Record<string, string>>;
}

export interface CreatedTopic {
  topic: string;
  /** The topic id as 32 hex digits. */
  topicId: string;
  numPartitions: number;
  replicationFactor: number;
}

export interface PartitionIncrease {
  topic: string;
  /** The new total partition count. */
  count: number;
  /** Replicas for each new partition; omitted lets the controller place them. */
  assignments?: readonly (readonly number[])[];
}

export type ConfigResourceType = 'topic' | 'broker' | 'broker-logger';

export interface ConfigResource {
  type: ConfigResourceType;
  /** Topic name, or broker id in decimal ("" for the cluster-wide broker default). */
  name: string;
  /** Only these keys (default: all). */
  configNames?: readonly string[];
}

export type ConfigSource =
  | 'unknown'
  | 'dynamic-topic-config'
  | 'dynamic-broker-config'
  | 'dynamic-default-broker-config'
  | 'static-broker-config'
  | 'default-config';

export interface ConfigEntry {
  name: string;
  /** undefined for a sensitive value. */
  value: string | undefined;
  source: ConfigSource;
  readOnly: boolean;
  sensitive: boolean;
  synonyms: { name: string; value: string | undefined; source: ConfigSource }[];
  type: string;
  documentation: string;
}

export interface ConfigResourceDescription {
  type: ConfigResourceType;
  name: string;
  entries: ConfigEntry[];
}

export type AlterConfigOperation = 'set' | 'delete' | 'append' | 'subtract';

export interface ConfigChange {
  resource: { type: ConfigResourceType; name: string };
  operations: readonly { name: string; op: AlterConfigOperation; value?: string }[];
}

export interface PartitionDescription {
  partition: number;
  /** -1 when the partition has no leader. */
  leader: number;
  leaderEpoch: number;
  replicas: readonly number[];
  isr: readonly number[];
  offlineReplicas: readonly number[];
}

export interface TopicDescription {
  topic: string;
  topicId: string;
  isInternal: boolean;
  partitions: PartitionDescription[];
}

export interface ClusterDescription {
  clusterId: string;
  /** -1 when unknown. */
  controllerId: number;
  brokers: BrokerInfo[];
}

/** Which offset ListOffsets looks up. */
export type OffsetSpec = 'earliest' | 'latest' | 'max-timestamp' | { timestamp: number };

export interface OffsetQuery extends TopicPartition {
  spec: OffsetSpec;
}

/**
 * Per-item errors after which the same item is sent again: nothing was changed and a later
 * attempt can succeed. (A timeout is not among them: the change may have been committed.)
 */
const ADMIN_RETRY_CODES: ReadonlySet<ErrorCodeName> = new Set<ErrorCodeName>(['NOT_CONTROLLER', 'THROTTLING_QUOTA_EXCEEDED', 'QUORUM_LEADER_UNKNOWN']);

/** Admin calls in flight per broker (they are few and rarely concurrent). */
const ADMIN_IN_FLIGHT_PER_BROKER_MAX = 5;

const resourceTypeNames: Record<ConfigResourceType, ConfigResourceTypeName> = {
  topic: 'CONFIG_RESOURCE_TOPIC',
  broker: 'CONFIG_RESOURCE_BROKER',
  'broker-logger': 'CONFIG_RESOURCE_BROKER_LOGGER',
};

const operationNames: Record<AlterConfigOperation, AlterConfigOpName> = {
  set: 'ALTER_CONFIG_SET',
  delete: 'ALTER_CONFIG_DELETE',
  append: 'ALTER_CONFIG_APPEND',
  subtract: 'ALTER_CONFIG_SUBTRACT',
};

const sourceNames: Record<ConfigSourceName, ConfigSource> = {
  CONFIG_SOURCE_UNKNOWN: 'unknown',
  CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG: 'dynamic-topic-config',
  CONFIG_SOURCE_DYNAMIC_BROKER_CONFIG: 'dynamic-broker-config',
  CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG: 'dynamic-default-broker-config',
  CONFIG_SOURCE_STATIC_BROKER_CONFIG: 'static-broker-config',
  CONFIG_SOURCE_DEFAULT_CONFIG: 'default-config',
};

function resourceTypeOf(name: ConfigResourceTypeName): ConfigResourceType {
  const entry = Object.entries(resourceTypeNames).find(([, protoName]) => protoName === name);
  return (entry?.[0] as ConfigResourceType | undefined) ?? 'topic';
}

function resourceKey(type: ConfigResourceType, name: string): string {
  return `${type}:${name}`;
}

export class Admin {
  readonly options: Readonly<AdminOptions>;
  readonly #runtime: ClientRuntime;
  readonly #cluster: ClusterClient;
  readonly #groups: GroupAdmin;

  constructor(config: AdminConfig, runtime: ClientRuntime = defaultRuntime) {
    this.options = resolveAdminOptions(config);
    this.#runtime = runtime;
    this.#cluster = new ClusterClient(
      {
        bootstrapServers: this.options.bootstrapServers,
        requestTimeoutMs: this.options.requestTimeoutMs,
        retryBackoffMs: this.options.retryBackoffMs,
        metadataMaxAgeMs: this.options.metadataMaxAgeMs,
        maxRequestSize: this.options.maxRequestSize,
        maxInFlightPerBroker: ADMIN_IN_FLIGHT_PER_BROKER_MAX,
        clientId: this.options.clientId,
      },
      runtime,
    );
    this.#groups = new GroupAdmin({
      cluster: this.#cluster,
      options: this.options,
      listOffsets: (queries) => this.#listOffsetsSettled(queries),
      partitionsOf: async (topic) => (await this.describeTopics([topic]))[0]!.partitions.map((partition) => partition.partition),
    });
  }

  /** Discovers the cluster. Optional: every call connects on first use. */
  async connect(): Promise<void> {
    await this.#withRetry(() => this.#cluster.refreshMetadata());
  }

  async close(): Promise<void> {
    this.#cluster.close();
  }

  /** Creates topics; resolves with what the controller created, or rejects with AdminOperationError. */
  async createTopics(topics: readonly NewTopic[], options: { validateOnly?: boolean; timeoutMs?: number } = {}): Promise<CreatedTopic[]> {
    return this.#perItem('createTopics', topics, (topic) => topic.topic, async (pending) => {
      const response = await this.#admin<CreateTopicsRequest, CreateTopicsResponse>('CreateTopics', {
        topics: pending.map((topic) => ({
          name: topic.topic,
          numPartitions: topic.replicaAssignment ? -1 : (topic.numPartitions ?? -1),
          replicationFactor: topic.replicaAssignment ? -1 : (topic.replicationFactor ?? -1),
          assignments: (topic.replicaAssignment ?? []).map((brokerIds, partitionIndex) => ({ partitionIndex, brokerIds: [...brokerIds] })),
          configs: Object.entries(topic.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
        timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs,
        validateOnly: options.validateOnly ?? false,
      });
      return new Map(
        response.topics.map((topic) => [
          topic.name,
          topic.errorCode !== 0
            ? errorFromResponse(topic.errorCode, topic.errorMessage, `creating topic ${topic.name}`)
            : { topic: topic.name, topicId: topic.topicId.toString('hex'), numPartitions: topic.numPartitions, replicationFactor: topic.replicationFactor },
        ]),
      );
    });
  }

  /** Deletes topics (and their data). */
  async deleteTopics(topics: readonly string[], options: { timeoutMs?: number } = {}): Promise<void> {
    await this.#perItem('deleteTopics', topics, (topic) => topic, async (pending) => {
      const response = await this.#admin<DeleteTopicsRequest, DeleteTopicsResponse>('DeleteTopics', {
        topicNames: [...pending],
        timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs,
      });
      return new Map(
        response.responses.map((topic) => [topic.name, topic.errorCode !== 0 ? errorFromResponse(topic.errorCode, topic.errorMessage, `deleting topic ${topic.name}`) : topic.name]),
      );
    });
  }

  /** Raises topics' partition counts (never lowers them: INVALID_PARTITIONS). */
  async createPartitions(increases: readonly PartitionIncrease[], options: { validateOnly?: boolean; timeoutMs?: number } = {}): Promise<void> {
    await this.#perItem('createPartitions', increases, (increase) => increase.topic, async (pending) => {
      const response = await this.#admin<CreatePartitionsRequest, CreatePartitionsResponse>('CreatePartitions', {
        topics: pending.map((increase) => ({
          name: increase.topic,
          count: increase.count,
          assignments: (increase.assignments ?? []).map((brokerIds) => ({ brokerIds: [...brokerIds] })),
        })),
        timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs,
        validateOnly: options.validateOnly ?? false,
      });
      return new Map(
        response.results.map((result) => [
          result.name,
          result.errorCode !== 0 ? errorFromResponse(result.errorCode, result.errorMessage, `adding partitions to ${result.name}`) : result.name,
        ]),
      );
    });
  }

  /** Current config values of topics or brokers, with where each comes from. */
  async describeConfigs(
    resources: readonly ConfigResource[],
    options: { includeSynonyms?: boolean; includeDocumentation?: boolean } = {},
  ): Promise<ConfigResourceDescription[]> {
    return this.#perItem('describeConfigs', resources, (resource) => resourceKey(resource.type, resource.name), async (pending) => {
      const response = await this.#admin<DescribeConfigsRequest, DescribeConfigsResponse>('DescribeConfigs', {
        resources: pending.map((resource) => ({
          resourceType: resourceTypeNames[resource.type],
          resourceName: resource.name,
          configurationKeys: [...(resource.configNames ?? [])],
        })),
        includeSynonyms: options.includeSynonyms ?? false,
        includeDocumentation: options.includeDocumentation ?? false,
      });
      const answers = new Map<string, ConfigResourceDescription | RaftkaError>();
      for (const result of response.results) {
        const type = resourceTypeOf(result.resourceType);
        const key = resourceKey(type, result.resourceName);
        if (result.errorCode !== 0) {
          answers.set(key, errorFromResponse(result.errorCode, result.errorMessage, `describing ${type} ${result.resourceName}`));
          continue;
        }
        answers.set(key, {
          type,
          name: result.resourceName,
          entries: result.configs.map((config) => ({
            name: config.name,
            value: config.value ?? undefined,
            source: sourceNames[config.configSource] ?? 'unknown',
            readOnly: config.readOnly,
            sensitive: config.isSensitive,
            synonyms: config.synonyms.map((synonym) => ({ name: synonym.name, value: synonym.value ?? undefined, source: sourceNames[synonym.source] ?? 'unknown' })),
            type: config.configType,
            documentation: config.documentation,
          })),
        });
      }
      return answers;
    });
  }

  /** Changes configs: set / delete (back to the default) / append to / subtract from a list; atomic per resource. */
  async incrementalAlterConfigs(changes: readonly ConfigChange[], options: { validateOnly?: boolean } = {}): Promise<void> {
    for (const change of changes) {
      for (const operation of change.operations) {
        if (operation.op !== 'delete' && operation.value === undefined) {
          throw new RaftkaError('INVALID_REQUEST', `config ${operation.name}: operation ${operation.op} needs a value`, { retriable: false });
        }
      }
    }
    await this.#perItem('incrementalAlterConfigs', changes, (change) => resourceKey(change.resource.type, change.resource.name), async (pending) => {
      const response = await this.#admin<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>('IncrementalAlterConfigs', {
        resources: pending.map((change) => ({
          resourceType: resourceTypeNames[change.resource.type],
          resourceName: change.resource.name,
          configs: change.operations.map((operation) => ({ name: operation.name, configOperation: operationNames[operation.op], value: operation.value ?? null })),
        })),
        validateOnly: options.validateOnly ?? false,
      });
      return new Map(
        response.responses.map((result) => {
          const type = resourceTypeOf(result.resourceType);
          const key = resourceKey(type, result.resourceName);
          return [key, result.errorCode !== 0 ? errorFromResponse(result.errorCode, result.errorMessage, `altering ${type} ${result.resourceName}`) : key];
        }),
      );
    });
  }

  /** Names of all topics, sorted; internal ones (like __consumer_offsets) only when asked. */
  async listTopics(options: { includeInternal?: boolean } = {}): Promise<string[]> {
    const response = await this.#withRetry(() => this.#cluster.fetchMetadata('all'));
    return response.topics
      .filter((topic) => topic.errorCode === 0 && (options.includeInternal === true || !topic.isInternal))
      .map((topic) => topic.name)
      .sort();
  }

  /** Partitions, leaders, replicas and ISR of the named topics. */
  async describeTopics(topics: readonly string[]): Promise<TopicDescription[]> {
    const response = await this.#withRetry(() => this.#cluster.fetchMetadata(topics));
    const failures = new Map<string, RaftkaError>();
    const results: TopicDescription[] = [];
    for (const topic of response.topics) {
      const info = topic.errorCode === 0 ? topicInfoFromMessage(topic) : undefined;
      if (!info) {
        failures.set(
          topic.name,
          topic.errorCode !== 0
            ? errorFromResponse(topic.errorCode, topic.errorMessage, `describing topic ${topic.name}`)
            : new RaftkaError('LEADER_NOT_AVAILABLE', `topic ${topic.name} has gaps in its partition list; retry`),
        );
        continue;
      }
      results.push({
        topic: topic.name,
        topicId: topic.topicId.toString('hex'),
        isInternal: topic.isInternal,
        partitions: info.partitions.map((partition) => ({
          partition: partition.partition,
          leader: partition.leaderId,
          leaderEpoch: partition.leaderEpoch,
          replicas: partition.replicas,
          isr: partition.isr,
          offlineReplicas: partition.offlineReplicas,
        })),
      });
    }
    return settle('describeTopics', failures, results);
  }

  /** Cluster id, active controller and live brokers. */
  async describeCluster(): Promise<ClusterDescription> {
    const response = await this.#withRetry(() =>
      this.#cluster.callAny<DescribeClusterRequest, DescribeClusterResponse>('RaftkaClient', 'DescribeCluster', { includeClusterAuthorizedOperations: false }),
    );
    if (response.errorCode !== 0) throw errorFromResponse(response.errorCode, response.errorMessage, 'DescribeCluster');
    return {
      clusterId: response.clusterId,
      controllerId: response.controllerId,
      brokers: response.brokers.map((broker) => ({ nodeId: broker.nodeId, host: broker.host, port: broker.port, rack: broker.rack })),
    };
  }

  /**
   * Offsets by spec: earliest (log start), latest (high watermark, or last stable offset with
   * read_committed), max-timestamp, or the first offset at or after a timestamp (-1 when none).
   */
  async listOffsets(queries: readonly OffsetQuery[], options: { isolationLevel?: 'read_uncommitted' | 'read_committed' } = {}): Promise<ListedOffset[]> {
    const deadlineMs = this.#runtime.clock() + this.options.requestTimeoutMs;
    const metadata = this.#cluster.metadata;
    metadata.addTopics(queries.map((query) => query.topic));
    if (queries.some((query) => !metadata.topic(query.topic))) await this.#withRetry(() => this.#cluster.refreshMetadata());
    const isolation = options.isolationLevel === 'read_committed' ? 'READ_COMMITTED' : 'READ_UNCOMMITTED';
    const answers = new Map<string, ListedOffset | RaftkaError>();
    for (const query of queries) {
      if (metadata.isUnknownTopic(query.topic)) {
        answers.set(partitionKey(query.topic, query.partition), new RaftkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${query.topic} does not exist`, { retriable: false }));
      }
    }
    let pending = queries.filter((query) => !answers.has(partitionKey(query.topic, query.partition)));
    while (pending.length > 0) {
      const found = await this.#cluster.listOffsets(
        pending.map((query) => ({ topic: query.topic, partition: query.partition, timestamp: timestampOf(query.spec) })),
        isolation,
      );
      for (const [key, value] of found) answers.set(key, value);
      // Stale leaders are refreshed and asked again until the deadline; other errors are final.
      pending = pending.filter((query) => {
        const answer = found.get(partitionKey(query.topic, query.partition));
        return answer instanceof RaftkaError && answer.retriable && isStaleMetadataError(answer.code);
      });
      if (pending.length === 0 || this.#runtime.clock() >= deadlineMs) break;
      await this.#cluster.delay(this.options.retryBackoffMs);
      await this.#cluster.refreshMetadata().catch(() => undefined);
    }
    const failures = new Map<string, RaftkaError>();
    const results: ListedOffset[] = [];
    for (const query of queries) {
      const answer = answers.get(partitionKey(query.topic, query.partition))!;
      if (answer instanceof RaftkaError) failures.set(`${query.topic}-${query.partition}`, answer);
      else results.push(answer);
    }
    return settle('listOffsets', failures, results);
  }

  // ---- consumer groups (see group-admin.ts) ----------------------------------------------------

  /** Every consumer group of the cluster (each broker lists the groups it coordinates), sorted by id. */
  listGroups(options: { states?: readonly GroupState[] } = {}): Promise<ListedGroup[]> {
    return this.#groups.listGroups(options);
  }

  /** State, assignor, members with their assignments, and (unless includeOffsets: false) committed offsets with lag. */
  describeGroups(groupIds: readonly string[], options: { includeOffsets?: boolean } = {}): Promise<GroupDescription[]> {
    return this.#groups.describeGroups(groupIds, options);
  }

  /** A group's committed offsets, sorted by topic and partition. */
  listGroupOffsets(groupId: string, options: { partitions?: readonly TopicPartition[] } = {}): Promise<GroupOffset[]> {
    return this.#groups.listGroupOffsets(groupId, options);
  }

  /**
   * Resets an inactive (Empty or Dead) group's offsets of one topic and resolves with the plan;
   * with dryRun only plans. An active group is refused with GroupNotInactiveError (NON_EMPTY_GROUP).
   */
  resetOffsets(request: ResetOffsetsRequest): Promise<OffsetResetPlanEntry[]> {
    return this.#groups.resetOffsets(request);
  }

  /** Deletes empty groups; resolves with the deleted ids or rejects with AdminOperationError (NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND per group). */
  deleteGroups(groupIds: readonly string[]): Promise<string[]> {
    return this.#groups.deleteGroups(groupIds);
  }

  /** Deletes a group's committed offsets of some partitions (GROUP_SUBSCRIBED_TO_TOPIC while a member subscribes to the topic). */
  deleteGroupOffsets(groupId: string, partitions: readonly TopicPartition[]): Promise<TopicPartition[]> {
    return this.#groups.deleteGroupOffsets(groupId, partitions);
  }

  /** listOffsets with each partition's own outcome instead of an all-or-nothing answer. */
  async #listOffsetsSettled(queries: readonly OffsetQuery[]): Promise<Map<string, ListedOffset | RaftkaError>> {
    const answers = new Map<string, ListedOffset | RaftkaError>();
    let listed: readonly ListedOffset[];
    try {
      listed = await this.listOffsets(queries);
    } catch (error) {
      if (!(error instanceof AdminOperationError)) throw error;
      listed = error.results as readonly ListedOffset[];
      for (const query of queries) {
        const failure = error.failures.get(`${query.topic}-${query.partition}`);
        if (failure) answers.set(partitionKey(query.topic, query.partition), failure);
      }
    }
    for (const offset of listed) answers.set(partitionKey(offset.topic, offset.partition), offset);
    return answers;
  }

  /**
   * Runs an admin call over `items` and sorts the answers per item. Items refused with an error
   * that says "try again" (the controller moved, a quota) are re-sent alone after a backoff
   * until requestTimeoutMs; everything else is final. Resolves with the results in item order,
   * or rejects with AdminOperationError naming each failed item.
   */
  async #perItem<Item, Result>(
    operation: string,
    items: readonly Item[],
    keyOf: (item: Item) => string,
    attempt: (pending: readonly Item[]) => Promise<Map<string, Result | RaftkaError>>,
  ): Promise<Result[]> {
    const deadlineMs = this.#runtime.clock() + this.options.requestTimeoutMs;
    const answers = new Map<string, Result | RaftkaError>();
    let pending = [...items];
    for (let round = 0; pending.length > 0; round += 1) {
      const found = await attempt(pending);
      for (const item of pending) {
        const key = keyOf(item);
        answers.set(key, found.get(key) ?? new RaftkaError('UNKNOWN_SERVER_ERROR', `the broker did not answer for ${key}`, { retriable: false }));
      }
      pending = pending.filter((item) => {
        const answer = answers.get(keyOf(item));
        return answer instanceof RaftkaError && ADMIN_RETRY_CODES.has(answer.code);
      });
      const delayMs = Math.min(this.options.retryBackoffMaxMs, this.options.retryBackoffMs * 2 ** Math.min(round, 20));
      if (pending.length === 0 || this.#runtime.clock() + delayMs >= deadlineMs) break;
      await this.#cluster.delay(delayMs);
    }
    const failures = new Map<string, RaftkaError>();
    const results: Result[] = [];
    for (const item of items) {
      const answer = answers.get(keyOf(item))!;
      if (answer instanceof RaftkaError) failures.set(keyOf(item), answer);
      else results.push(answer);
    }
    return settle(operation, failures, results);
  }

  async #admin<Request, Response>(method: string, request: Request): Promise<Response> {
    return this.#withRetry(() => this.#cluster.callAny<Request, Response>('RaftkaAdmin', method, request));
  }

  /** Retries a whole call on transport failures (nothing was answered), with backoff, until requestTimeoutMs. */
  async #withRetry<T>(call: () => Promise<T>): Promise<T> {
    const deadlineMs = this.#runtime.clock() + this.options.requestTimeoutMs;
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await call();
      } catch (error) {
        const raftkaError = toRaftkaError(error);
        const transport = raftkaError.code === 'NETWORK_EXCEPTION' || raftkaError.code === 'REQUEST_TIMED_OUT';
        const delayMs = Math.min(this.options.retryBackoffMaxMs, this.options.retryBackoffMs * 2 ** Math.min(attempt, 20));
        if (!transport || this.#cluster.closed || this.#runtime.clock() + delayMs >= deadlineMs) throw raftkaError;
        await this.#cluster.delay(delayMs);
      }
    }
  }
}

function timestampOf(spec: OffsetSpec): number {
  if (spec === 'earliest') return EARLIEST_TIMESTAMP;
  if (spec === 'latest') return LATEST_TIMESTAMP;
  if (spec === 'max-timestamp') return MAX_TIMESTAMP;
  if (!Number.isSafeInteger(spec.timestamp) || spec.timestamp < 0) {
    throw new RaftkaError('INVALID_REQUEST', `an offset lookup timestamp must be a non-negative integer, got ${spec.timestamp}`, { retriable: false });
  }
  return spec.timestamp;
}

function settle<Result>(operation: string, failures: ReadonlyMap<string, RaftkaError>, results: Result[]): Result[] {
  if (failures.size > 0) throw new AdminOperationError(operation, failures, results);
  return results;
}
