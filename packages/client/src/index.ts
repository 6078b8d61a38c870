// Public surface of @raftka/client: the SDK's producer core, options, metadata cache and the
// gRPC connection pool. The Producer/Consumer/Admin classes are built on these.
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
