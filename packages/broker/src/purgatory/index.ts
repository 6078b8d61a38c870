// Public surface of the purgatories (re-exported by the package index).
export {
  DelayedOperationPurgatory,
  PurgatoryFullError,
  partitionKey,
  PURGATORY_OPERATIONS_MAX_DEFAULT,
  type DelayedOperation,
  type PurgatoryKey,
  type PurgatoryOptions,
  type WatchResult,
} from './purgatory.js';
export {
  DelayedProduce,
  DelayedFetch,
  fetchUpperBound,
  type DelayedProducePartition,
  type ProducePartitionCode,
  type ProducePartitionProbe,
  type DelayedProduceOptions,
  type DelayedFetchPartition,
  type FetchPartitionProbe,
  type FetchCompletion,
  type DelayedFetchOptions,
} from './delayed-operations.js';
