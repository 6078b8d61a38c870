// Public surface of the replica logic (re-exported by the package index).
export {
  LeaderReplicaState,
  UNKNOWN_LOG_END_OFFSET,
  REPLICA_LAG_TIME_MAX_MS_DEFAULT,
  type ReplicaLagConfig,
  type FollowerState,
  type AlterPartitionProposal,
  type PendingIsrChange,
  type CommittedPartitionState,
  type LeaderReplicaStateOptions,
  type FollowerFetchResult,
  type AlterPartitionOutcome,
  type ProduceAckCheck,
} from './leader-replica-state.js';
export {
  FollowerReplicaState,
  decideTruncation,
  followerHighWatermark,
  TRUNCATION_ROUNDS_MAX,
  type FollowerLogView,
  type TruncationDecision,
  type FollowerPhase,
  type FollowerNextStep,
} from './follower-replica-state.js';
