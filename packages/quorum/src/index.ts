// Public surface of @raftka/quorum: the KRaft metadata quorum.
export type * from './raft/types.js';
export { RaftCore } from './raft/raft-core.js';
export { QuorumNode, TICK_INTERVAL_MS } from './driver/quorum-node.js';
export type { CommittedBatch, CommittedListener, QuorumNodeOptions, RoleChangeListener, SnapshotProvider } from './driver/quorum-node.js';
export {
  METADATA_LOG_DIRECTORY,
  PROCESS_ROLES,
  formatAddress,
  parseListeners,
  parseVoters,
  quorumConfigFrom,
  quorumConfigSchema,
} from './driver/quorum-config.js';
export type { ListenerAddress, ProcessRole, QuorumConfig, VoterAddress } from './driver/quorum-config.js';
export { QuorumStorage } from './storage/quorum-storage.js';
export { QuorumClient, CHANNEL_OPTIONS, MESSAGE_BYTES_MAX, type ExtraService, type ServiceWrapper } from './transport/grpc-transport.js';
export type { AppendRecordsResult, DescribedQuorum, ReadCommittedResult } from './transport/quorum-proto.js';
export { QuorumAdmin, quorumStatusFrom } from './transport/quorum-admin.js';
export type { QuorumStatus, ReplicaStatus } from './transport/quorum-admin.js';

// Metadata records, image, delta and publisher (controllers and observing brokers).
export { encodeMetadataRecord, decodeMetadataRecord } from './metadata/metadata-records.js';
export type {
  MetadataRecord,
  MetadataRecordType,
  BrokerEndpoint,
  ConfigResourceType,
  RegisterBrokerRecord,
  UnregisterBrokerRecord,
  FenceBrokerRecord,
  UnfenceBrokerRecord,
  BrokerRegistrationChangeRecord,
  TopicRecord,
  PartitionRecord,
  PartitionChangeRecord,
  RemoveTopicRecord,
  ConfigRecord,
  ProducerIdsRecord,
  NoOpRecord,
} from './metadata/metadata-records.js';
export { MetadataImage, NO_LEADER, collisionName, type BrokerRegistration, type PartitionState, type TopicImage, type ConfigMap } from './metadata/metadata-image.js';
export * from './metadata/metadata-delta.js';
export * from './metadata/metadata-snapshot.js';
export type { MetadataLog, MetadataSnapshotProvider } from './metadata/metadata-log.js';
export * from './metadata/metadata-publisher.js';
export { generateTopicId } from './metadata/topic-id.js';

// The controller's pure decision logic and configuration.
export * from './controller/controller-config.js';
export * from './controller/controller-types.js';
export * from './controller/controller-logic.js';
export { NotControllerError } from './controller/controller-errors.js';
export { BrokerHeartbeatManager } from './controller/broker-heartbeat-manager.js';
export { placeReplicas, type PlacementBroker, type PlacementRequest } from './controller/replica-placement.js';
export { buildPartitionChange, type ElectionKind, type PartitionChangeOptions } from './controller/partition-change.js';
export { topicNameProblem, TOPIC_NAME_LENGTH_MAX } from './controller/topic-validation.js';
export { QuorumController, PENDING_OPERATIONS_MAX, type QuorumControllerOptions, type ActiveControllerInfo } from './controller/quorum-controller.js';
export { ControllerClient, CONTROLLER_REQUEST_TIMEOUT_MS, type ControllerClientOptions } from './controller/controller-client.js';
export { ControllerNode, CONTROLLER_TICK_INTERVAL_MS, type ControllerNodeOptions } from './controller/controller-node.js';
export { controllerService } from './controller/controller-service.js';

// Following the metadata log as an observer (brokers, tests).
export { MetadataObserver, type MetadataObserverOptions } from './observer/metadata-observer.js';
export { BrokerLifecycle, type BrokerLifecycleOptions, type BrokerLifecycleState } from './controller/broker-lifecycle.js';
export { loadControllerService } from './controller/controller-proto.js';
export { findProtoDirectory } from './transport/proto-path.js';
