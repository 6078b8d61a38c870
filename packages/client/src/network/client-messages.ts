// TypeScript shapes of the client.proto messages the SDK sends and receives, as proto-loader
// produces them with PROTO_LOADER_OPTIONS (camelCase fields, int64 as number, enums as their
// names, bytes as Buffer, defaults filled in).
//
// Written by hand rather than generated: the SDK uses a subset of the contract, and keeping these
// next to the code that maps them makes a contract change show up as a type error where it
// matters. Field comments live in proto/client.proto; only the mapping is stated here.

export interface BrokerAddressMessage {
  nodeId: number;
  host: string;
  port: number;
  rack: string;
}

export interface LeaderIdAndEpochMessage {
  leaderId: number;
  leaderEpoch: number;
}

export type IsolationLevelName = 'READ_UNCOMMITTED' | 'READ_COMMITTED';

// ---- Metadata / DescribeCluster -------------------------------------------------------------

export interface MetadataRequest {
  topics: string[];
  allTopics: boolean;
  allowAutoTopicCreation: boolean;
}

export interface PartitionMetadataMessage {
  errorCode: number;
  errorMessage: string;
  partitionIndex: number;
  leaderId: number;
  leaderEpoch: number;
  replicaNodes: number[];
  isrNodes: number[];
  offlineReplicas: number[];
}

export interface TopicMetadataMessage {
  errorCode: number;
  errorMessage: string;
  name: string;
  topicId: Buffer;
  isInternal: boolean;
  partitions: PartitionMetadataMessage[];
}

export interface MetadataResponse {
  brokers: BrokerAddressMessage[];
  clusterId: string;
  controllerId: number;
  topics: TopicMetadataMessage[];
}

export interface DescribeClusterRequest {
  includeClusterAuthorizedOperations: boolean;
}

export interface DescribeClusterResponse {
  errorCode: number;
  errorMessage: string;
  clusterId: string;
  controllerId: number;
  brokers: BrokerAddressMessage[];
}

// ---- Produce ----------------------------------------------------------------------------------

export interface ProduceRequest {
  transactionalId: string;
  acks: number;
  timeoutMs: number;
  topicData: { name: string; partitionData: { index: number; records: Buffer }[] }[];
}

export interface PartitionProduceResponseMessage {
  index: number;
  errorCode: number;
  errorMessage: string;
  baseOffset: number;
  logAppendTimeMs: number;
  logStartOffset: number;
  recordErrors: { batchIndex: number; batchIndexErrorMessage: string }[];
  currentLeader: LeaderIdAndEpochMessage | null;
}

export interface ProduceResponse {
  responses: { name: string; partitionResponses: PartitionProduceResponseMessage[] }[];
  throttleTimeMs: number;
}

// ---- Fetch ------------------------------------------------------------------------------------

export interface FetchPartitionMessage {
  partition: number;
  currentLeaderEpoch: number;
  fetchOffset: number;
  lastFetchedEpoch: number;
  logStartOffset: number;
  partitionMaxBytes: number;
}

export interface FetchRequest {
  replicaId: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  isolationLevel: IsolationLevelName;
  sessionId: number;
  sessionEpoch: number;
  topics: { topic: string; partitions: FetchPartitionMessage[] }[];
  rackId: string;
}

export interface EpochEndOffsetMessage {
  epoch: number;
  endOffset: number;
}

export interface PartitionDataMessage {
  partitionIndex: number;
  errorCode: number;
  errorMessage: string;
  highWatermark: number;
  lastStableOffset: number;
  logStartOffset: number;
  divergingEpoch: EpochEndOffsetMessage | null;
  currentLeader: LeaderIdAndEpochMessage | null;
  abortedTransactions: { producerId: number; firstOffset: number }[];
  preferredReadReplica: number;
  records: Buffer;
}

export interface FetchResponse {
  errorCode: number;
  errorMessage: string;
  throttleTimeMs: number;
  sessionId: number;
  responses: { topic: string; partitions: PartitionDataMessage[] }[];
}

// ---- ListOffsets / OffsetForLeaderEpoch / InitProducerId ---------------------------------------

export interface ListOffsetsRequest {
  replicaId: number;
  isolationLevel: IsolationLevelName;
  topics: { name: string; partitions: { partitionIndex: number; currentLeaderEpoch: number; timestamp: number }[] }[];
}

export interface ListOffsetsPartitionResponseMessage {
  partitionIndex: number;
  errorCode: number;
  errorMessage: string;
  timestamp: number;
  offset: number;
  leaderEpoch: number;
}

export interface ListOffsetsResponse {
  throttleTimeMs: number;
  topics: { name: string; partitions: ListOffsetsPartitionResponseMessage[] }[];
}

export interface OffsetForLeaderEpochRequest {
  replicaId: number;
  topics: { topic: string; partitions: { partition: number; currentLeaderEpoch: number; leaderEpoch: number }[] }[];
}

export interface EpochEndOffsetResultMessage {
  errorCode: number;
  errorMessage: string;
  partition: number;
  leaderEpoch: number;
  endOffset: number;
}

export interface OffsetForLeaderEpochResponse {
  throttleTimeMs: number;
  topics: { topic: string; partitions: EpochEndOffsetResultMessage[] }[];
}

export interface InitProducerIdRequest {
  transactionalId: string;
  transactionTimeoutMs: number;
  producerId: number;
  producerEpoch: number;
}

export interface InitProducerIdResponse {
  errorCode: number;
  errorMessage: string;
  throttleTimeMs: number;
  producerId: number;
  producerEpoch: number;
}

// ---- Admin --------------------------------------------------------------------------------------

export interface CreateTopicsRequest {
  topics: {
    name: string;
    numPartitions: number;
    replicationFactor: number;
    assignments: { partitionIndex: number; brokerIds: number[] }[];
    configs: { name: string; value: string }[];
  }[];
  timeoutMs: number;
  validateOnly: boolean;
}

export interface CreateTopicsResponse {
  throttleTimeMs: number;
  topics: { name: string; topicId: Buffer; errorCode: number; errorMessage: string; numPartitions: number; replicationFactor: number }[];
}

export interface DeleteTopicsRequest {
  topicNames: string[];
  timeoutMs: number;
}

export interface DeleteTopicsResponse {
  throttleTimeMs: number;
  responses: { name: string; topicId: Buffer; errorCode: number; errorMessage: string }[];
}

export interface CreatePartitionsRequest {
  topics: { name: string; count: number; assignments: { brokerIds: number[] }[] }[];
  timeoutMs: number;
  validateOnly: boolean;
}

export interface CreatePartitionsResponse {
  throttleTimeMs: number;
  results: { name: string; errorCode: number; errorMessage: string }[];
}

export type ConfigResourceTypeName = 'CONFIG_RESOURCE_UNKNOWN' | 'CONFIG_RESOURCE_TOPIC' | 'CONFIG_RESOURCE_BROKER' | 'CONFIG_RESOURCE_BROKER_LOGGER';

export type ConfigSourceName =
  | 'CONFIG_SOURCE_UNKNOWN'
  | 'CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG'
  | 'CONFIG_SOURCE_DYNAMIC_BROKER_CONFIG'
  | 'CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG'
  | 'CONFIG_SOURCE_STATIC_BROKER_CONFIG'
  | 'CONFIG_SOURCE_DEFAULT_CONFIG';

export type AlterConfigOpName = 'ALTER_CONFIG_SET' | 'ALTER_CONFIG_DELETE' | 'ALTER_CONFIG_APPEND' | 'ALTER_CONFIG_SUBTRACT';

export interface DescribeConfigsRequest {
  resources: { resourceType: ConfigResourceTypeName; resourceName: string; configurationKeys: string[] }[];
  includeSynonyms: boolean;
  includeDocumentation: boolean;
}

export interface DescribeConfigsResourceResultMessage {
  name: string;
  value?: string | null;
  readOnly: boolean;
  configSource: ConfigSourceName;
  isSensitive: boolean;
  synonyms: { name: string; value?: string | null; source: ConfigSourceName }[];
  configType: string;
  documentation: string;
}

export interface DescribeConfigsResponse {
  throttleTimeMs: number;
  results: {
    errorCode: number;
    errorMessage: string;
    resourceType: ConfigResourceTypeName;
    resourceName: string;
    configs: DescribeConfigsResourceResultMessage[];
  }[];
}

export interface IncrementalAlterConfigsRequest {
  resources: {
    resourceType: ConfigResourceTypeName;
    resourceName: string;
    configs: { name: string; configOperation: AlterConfigOpName; value?: string | null }[];
  }[];
  validateOnly: boolean;
}

export interface IncrementalAlterConfigsResponse {
  throttleTimeMs: number;
  responses: { errorCode: number; errorMessage: string; resourceType: ConfigResourceTypeName; resourceName: string }[];
}

// ---- Consumer groups (RaftkaGroups) -------------------------------------------------------------

export type CoordinatorTypeName = 'COORDINATOR_GROUP' | 'COORDINATOR_TRANSACTION';

export interface FindCoordinatorRequest {
  keyType: CoordinatorTypeName;
  coordinatorKeys: string[];
}

export interface CoordinatorMessage {
  key: string;
  nodeId: number;
  host: string;
  port: number;
  errorCode: number;
  errorMessage: string;
}

export interface FindCoordinatorResponse {
  throttleTimeMs: number;
  coordinators: CoordinatorMessage[];
}

export interface JoinGroupRequest {
  groupId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  memberId: string;
  groupInstanceId?: string | null | undefined;
  protocolType: string;
  protocols: { name: string; metadata: Buffer }[];
  reason: string;
}

export interface JoinGroupResponseMember {
  memberId: string;
  groupInstanceId?: string | null | undefined;
  metadata: Buffer;
}

export interface JoinGroupResponse {
  throttleTimeMs: number;
  errorCode: number;
  errorMessage: string;
  generationId: number;
  protocolType: string;
  protocolName: string;
  leader: string;
  skipAssignment: boolean;
  memberId: string;
  members: JoinGroupResponseMember[];
}

export interface SyncGroupRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId?: string | null | undefined;
  protocolType: string;
  protocolName: string;
  assignments: { memberId: string; assignment: Buffer }[];
}

export interface SyncGroupResponse {
  throttleTimeMs: number;
  errorCode: number;
  errorMessage: string;
  protocolType: string;
  protocolName: string;
  assignment: Buffer;
}

export interface HeartbeatRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId?: string | null | undefined;
}

export interface HeartbeatResponse {
  throttleTimeMs: number;
  errorCode: number;
  errorMessage: string;
}

export interface MemberIdentityMessage {
  memberId: string;
  groupInstanceId?: string | null | undefined;
  reason: string;
}

export interface LeaveGroupRequest {
  groupId: string;
  members: MemberIdentityMessage[];
}

export interface LeaveGroupResponse {
  throttleTimeMs: number;
  errorCode: number;
  errorMessage: string;
  members: { memberId: string; groupInstanceId?: string | null | undefined; errorCode: number; errorMessage: string }[];
}

export interface OffsetCommitRequest {
  groupId: string;
  generationIdOrMemberEpoch: number;
  memberId: string;
  groupInstanceId?: string | null | undefined;
  topics: {
    name: string;
    partitions: { partitionIndex: number; committedOffset: number; committedLeaderEpoch: number; committedMetadata?: string | null | undefined }[];
  }[];
}

export interface OffsetCommitResponse {
  throttleTimeMs: number;
  topics: { name: string; partitions: { partitionIndex: number; errorCode: number; errorMessage: string }[] }[];
}

export interface OffsetFetchRequest {
  groupId: string;
  topics: { name: string; partitionIndexes: number[] }[];
  allTopics: boolean;
  requireStable: boolean;
}

export interface OffsetFetchResponsePartitionMessage {
  partitionIndex: number;
  committedOffset: number;
  committedLeaderEpoch: number;
  metadata?: string | null | undefined;
  errorCode: number;
  errorMessage: string;
}

export interface OffsetFetchResponse {
  throttleTimeMs: number;
  errorCode: number;
  errorMessage: string;
  topics: { name: string; partitions: OffsetFetchResponsePartitionMessage[] }[];
}

export interface OffsetDeleteRequest {
  groupId: string;
  topics: { name: string; partitionIndexes: number[] }[];
}

export interface OffsetDeleteResponse {
  errorCode: number;
  errorMessage: string;
  throttleTimeMs: number;
  topics: { name: string; partitions: { partitionIndex: number; errorCode: number; errorMessage: string }[] }[];
}

export interface ListGroupsRequest {
  statesFilter: string[];
}

export interface ListGroupsResponse {
  throttleTimeMs: number;
  errorCode: number;
  errorMessage: string;
  groups: { groupId: string; protocolType: string; groupState: string }[];
}

export interface DescribeGroupsRequest {
  groups: string[];
  includeAuthorizedOperations: boolean;
}

export interface DescribedGroupMemberMessage {
  memberId: string;
  groupInstanceId?: string | null | undefined;
  clientId: string;
  clientHost: string;
  memberMetadata: Buffer;
  memberAssignment: Buffer;
}

export interface DescribedGroupMessage {
  errorCode: number;
  errorMessage: string;
  groupId: string;
  groupState: string;
  protocolType: string;
  protocolData: string;
  members: DescribedGroupMemberMessage[];
  authorizedOperations: number;
}

export interface DescribeGroupsResponse {
  throttleTimeMs: number;
  groups: DescribedGroupMessage[];
}

export interface DeleteGroupsRequest {
  groupsNames: string[];
}

export interface DeleteGroupsResponse {
  throttleTimeMs: number;
  results: { groupId: string; errorCode: number; errorMessage: string }[];
}
