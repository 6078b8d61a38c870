// Public surface of the replica manager (re-exported by the package index).
export {
  ReplicaManager,
  makeReplicaManagerConfig,
  describeError,
  REPLICA_FETCHER_CONFIG_DEFAULT,
  FETCH_MAX_WAIT_MS_LIMIT,
  FETCH_RESPONSE_BYTES_MAX,
  PRODUCE_TIMEOUT_MS_LIMIT,
  PURGATORY_TICK_MS,
  ALTER_PARTITION_RETRY_BACKOFF_MS,
  ALTER_PARTITION_ITEMS_MAX,
  PRODUCER_EXPIRATION_CHECK_INTERVAL_MS,
  HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS,
  type ReplicaManagerConfig,
  type ReplicaManagerOptions,
  type ReplicaStatus,
  type ReplicaRoleChange,
} from './replica-manager.js';
export type { LeaderEndpoint, ReplicaFetcherConfig } from './replica-fetcher.js';
export { GrpcLeaderEndpoint } from './replica-fetcher-transport.js';
export { CONSUMER_REPLICA_ID, NO_LEADER_EPOCH_CHECK } from './requests.js';
export type * from './requests.js';
export { HIGH_WATERMARK_CHECKPOINT_FILE } from './high-watermark-checkpoint.js';
