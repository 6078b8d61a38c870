// Requests and responses of the controller's duties, as the pure logic sees them. They mirror
// proto/controller.proto (the gRPC server converts between the two) in camelCase TypeScript.

import type { ErrorCodeName } from '@raftka/protocol';
import type { BrokerEndpoint, ConfigResourceType, MetadataRecord } from '../metadata/metadata-records.js';

/** What every controller operation returns: records to append (one atomic batch) and the answer. */
export interface ControllerResult<Response> {
  /** Appended as one Raft entry; the response is valid only once that entry is committed. */
  records: MetadataRecord[];
  response: Response;
}

/** A per-item failure inside a response that covers several items (topics, partitions, resources). */
export interface ItemError {
  code: ErrorCodeName;
  message: string;
}

// ---- Broker lifecycle ----

export interface BrokerRegistrationRequest {
  brokerId: number;
  /** Random id the broker process draws at start; a new one means a new process. */
  incarnationId: string;
  endpoints: BrokerEndpoint[];
  rack?: string;
}

export interface BrokerRegistrationResponse {
  brokerEpoch: number;
}

export interface BrokerHeartbeatRequest {
  brokerId: number;
  brokerEpoch: number;
  /** Offset of the last metadata log entry the broker has applied (-1: none). */
  currentMetadataOffset: number;
  /** The broker asks to be fenced (e.g. it cannot serve its log directories). */
  wantFence: boolean;
  /** The broker asks for a controlled shutdown. */
  wantShutDown: boolean;
}

export interface BrokerHeartbeatResponse {
  /** The broker has applied at least its own registration. */
  isCaughtUp: boolean;
  /** Fenced once this response's records are committed. */
  isFenced: boolean;
  /** Controlled shutdown finished: the broker leads nothing and may stop now. */
  shouldShutDown: boolean;
}

// ---- Topics ----

export interface CreatableTopic {
  name: string;
  /** Omitted or -1: `num.partitions`. Ignored when `assignments` is given. */
  numPartitions?: number;
  /** Omitted or -1: `default.replication.factor`. Ignored when `assignments` is given. */
  replicationFactor?: number;
  /** Explicit replica lists, one per partition (replicas[0] is the preferred leader). */
  assignments?: number[][];
  /** Topic-level config overrides. */
  configs?: Record<string, string>;
}

export interface CreateTopicsRequest {
  topics: CreatableTopic[];
  validateOnly?: boolean;
}

export interface CreateTopicResult {
  name: string;
  topicId?: string;
  numPartitions: number;
  replicationFactor: number;
  error?: ItemError;
}

export interface CreateTopicsResponse {
  topics: CreateTopicResult[];
}

export interface DeleteTopicsRequest {
  names: string[];
}

export interface DeleteTopicResult {
  name: string;
  topicId?: string;
  error?: ItemError;
}

export interface DeleteTopicsResponse {
  topics: DeleteTopicResult[];
}

export interface CreatePartitionsTopic {
  name: string;
  /** The new total partition count. */
  count: number;
  /** Replica lists for the new partitions only. */
  assignments?: number[][];
}

export interface CreatePartitionsRequest {
  topics: CreatePartitionsTopic[];
  validateOnly?: boolean;
}

export interface CreatePartitionsResult {
  name: string;
  error?: ItemError;
}

export interface CreatePartitionsResponse {
  topics: CreatePartitionsResult[];
}

// ---- Configs ----

export interface ConfigResource {
  resourceType: ConfigResourceType;
  /** Topic name; broker id as text, or '' for the cluster-wide broker default. */
  resourceName: string;
}

export interface DescribeConfigsRequest {
  resources: (ConfigResource & { keys?: string[] })[];
}

/** Where a described value comes from, most specific first (Kafka's ConfigSource). */
export type ConfigSourceKind = 'topic' | 'dynamic-broker' | 'dynamic-default-broker' | 'static-broker' | 'default';

export interface DescribedConfig {
  name: string;
  value: string;
  source: ConfigSourceKind;
  isDefault: boolean;
  readOnly: boolean;
  sensitive: boolean;
  doc: string;
}

export interface DescribeConfigsResult extends ConfigResource {
  configs: DescribedConfig[];
  error?: ItemError;
}

export interface DescribeConfigsResponse {
  results: DescribeConfigsResult[];
}

export type AlterConfigOpKind = 'set' | 'delete' | 'append' | 'subtract';

export interface AlterConfigOp {
  name: string;
  op: AlterConfigOpKind;
  /** Required for set, append and subtract. */
  value?: string;
}

export interface IncrementalAlterConfigsRequest {
  resources: (ConfigResource & { ops: AlterConfigOp[] })[];
  validateOnly?: boolean;
}

export interface AlterConfigsResult extends ConfigResource {
  error?: ItemError;
}

export interface IncrementalAlterConfigsResponse {
  results: AlterConfigsResult[];
}

// ---- Partitions ----

export interface AlterPartitionItem {
  partitionId: number;
  /** The leader epoch the leader believes is current. */
  leaderEpoch: number;
  /** The partition epoch the leader last saw; a mismatch means its view is stale. */
  partitionEpoch: number;
  newIsr: number[];
}

export interface AlterPartitionRequest {
  brokerId: number;
  brokerEpoch: number;
  topics: { topicId: string; partitions: AlterPartitionItem[] }[];
}

export interface AlterPartitionItemResult {
  partitionId: number;
  error?: ItemError;
  /** The partition's state once the records are committed (current state on error, when known). */
  leader: number;
  leaderEpoch: number;
  isr: number[];
  partitionEpoch: number;
}

export interface AlterPartitionResponse {
  topics: { topicId: string; partitions: AlterPartitionItemResult[] }[];
}

export interface ElectLeadersResponse {
  /** Partitions whose leadership moves. */
  electedCount: number;
  /** More partitions need an election than one batch may carry; call again. */
  more: boolean;
}

// ---- Producer ids ----

export interface AllocateProducerIdsRequest {
  brokerId: number;
  brokerEpoch: number;
}

export interface AllocateProducerIdsResponse {
  firstProducerId: number;
  count: number;
}
