// Public surface of @raftka/client: the Producer, Consumer and Admin clients, their options and
// errors, and the building blocks they are made of (producer core, metadata cache, gRPC pool).
export {
  resolveProducerOptions,
  resolveConsumerOptions,
  resolveAdminOptions,
  producerOptionDocs,
  IDEMPOTENT_IN_FLIGHT_MAX,
  type Acks,
  type CompressionType,
  type CommonOptions,
  type ProducerOptions,
  type ConsumerOptions,
  type AdminOptions,
} from './options.js';
export { StickyPartitioner, type RandomSource, type PartitionInput, type TopicPartitionInfo } from './producer/partitioner.js';
export { RetryPolicy, RETRY_BACKOFF_JITTER, RETRY_BACKOFF_MULTIPLIER, type RetryPolicyOptions, type RetryDecision } from './producer/retry-policy.js';
export { BufferPool, type Timers } from './producer/buffer-pool.js';
export {
  RecordAccumulator,
  ProducerBatch,
  estimateRecordBytes,
  type RecordAccumulatorOptions,
  type LeaderLookup,
  type AppendResult,
  type ReadyResult,
} from './producer/record-accumulator.js';
export {
  IdempotenceState,
  SEQUENCE_MAX,
  nextSequenceAfter,
  describeDecision,
  type SequencedBatch,
  type IdempotenceDecision,
} from './producer/idempotence.js';
export {
  MetadataCache,
  isStaleMetadataError,
  type BrokerInfo,
  type PartitionInfo,
  type TopicInfo,
  type MetadataSnapshot,
  type MetadataCacheOptions,
} from './metadata-cache.js';
export { InFlightLimiter } from './network/in-flight-limiter.js';
export { loadClientServices, findProtoDirectory, PROTO_LOADER_OPTIONS, type ClientServiceName } from './network/client-proto.js';
export {
  BrokerConnectionPool,
  errorFromGrpcStatus,
  REQUEST_ENVELOPE_BYTES_MAX,
  type BrokerEndpoint,
  type BrokerConnectionPoolOptions,
} from './network/broker-connection-pool.js';
export {
  LATEST_TIMESTAMP,
  EARLIEST_TIMESTAMP,
  MAX_TIMESTAMP,
  type ClientRuntime,
  type TopicPartition,
  type ListedOffset,
} from './cluster-client.js';
export {
  Producer,
  ProducerSendError,
  type ProducerConfig,
  type ProducerMessage,
  type ProducerRecord,
  type RecordMetadata,
  type SendOutcome,
} from './producer/producer.js';
export {
  Consumer,
  WakeupError,
  type ConsumerConfig,
  type ConsumerRecord,
  type PollOptions,
  type RebalanceListener,
  type EachMessagePayload,
  type EachBatchPayload,
  type RunConfig,
} from './consumer/consumer.js';
export {
  CommitFailedError,
  RebalanceInProgressError,
  type OffsetAndMetadata,
  type CommittedOffset,
} from './consumer/offset-committer.js';
export {
  NoOffsetForPartitionError,
  OffsetOutOfRangeError,
  LogTruncationError,
  type AutoOffsetReset,
} from './consumer/subscription-state.js';
export {
  Admin,
  AdminOperationError,
  type AdminConfig,
  type NewTopic,
  type CreatedTopic,
  type PartitionIncrease,
  type ConfigResource,
  type ConfigResourceType,
  type ConfigSource,
  type ConfigEntry,
  type ConfigResourceDescription,
  type AlterConfigOperation,
  type ConfigChange,
  type PartitionDescription,
  type TopicDescription,
  type ClusterDescription,
  type OffsetSpec,
  type OffsetQuery,
} from './admin/admin.js';
export {
  DEFAULT_GENERATION,
  compareMembers,
  compareTopicPartitions,
  type MemberSubscription,
  type PartitionAssignor,
  type RebalanceProtocol,
} from './consumer/assignors/types.js';
export { rangeAssignor, assignRange, RANGE_ASSIGNOR_NAME } from './consumer/assignors/range.js';
export { roundRobinAssignor, assignRoundRobin, ROUND_ROBIN_ASSIGNOR_NAME } from './consumer/assignors/round-robin.js';
export {
  cooperativeStickyAssignor,
  assignCooperativeSticky,
  encodeCooperativeStickyUserData,
  memberGeneration,
  COOPERATIVE_STICKY_ASSIGNOR_NAME,
} from './consumer/assignors/cooperative-sticky.js';
export {
  encodeSubscription,
  decodeSubscription,
  encodeAssignment,
  decodeAssignment,
  SUBSCRIPTION_VERSION_MIN,
  SUBSCRIPTION_VERSION_MAX,
  ASSIGNMENT_VERSION_MIN,
  ASSIGNMENT_VERSION_MAX,
  type Subscription,
  type Assignment,
  type Versioned,
} from './consumer/assignors/consumer-protocol.js';
export {
  BUILT_IN_ASSIGNORS,
  DEFAULT_ASSIGNOR_NAMES,
  assignorsByName,
  supportedProtocols,
  rebalanceProtocolFor,
  selectProtocol,
} from './consumer/assignors/protocol-selection.js';
export {
  performGroupAssignment,
  decodeMembers,
  subscribedTopics,
  toMemberSubscription,
  validateCooperativeAssignment,
  assignmentChange,
  type JoinedMember,
  type DecodedMember,
  type AssignmentChange,
} from './consumer/assignors/group-assignment.js';
export {
  RetryRouter,
  retryTopicsFor,
  retryTopicName,
  retryDelayMs,
  retryPosition,
  validateRetryRouting,
  RETRY_HEADERS,
  RETRY_ATTEMPTS_MAX,
  ERROR_MESSAGE_BYTES_MAX,
  type RetryPolicy as RetryTopicPolicy,
  type RetryRouting,
} from './consumer/retry-topics.js';
export {
  GroupNotInactiveError,
  OFFSET_RESETTABLE_STATES,
  type GroupState,
  type ListedGroup,
  type GroupMember,
  type GroupOffset,
  type GroupPartitionLag,
  type GroupDescription,
  type OffsetResetTarget,
  type ResetOffsetsRequest,
  type OffsetResetPlanEntry,
} from './admin/group-admin.js';
