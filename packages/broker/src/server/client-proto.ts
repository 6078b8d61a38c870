// Loading proto/client.proto for the broker: the RaftkaClient service definition its gRPC server
// hosts, and the client constructor replica fetchers use to reach other brokers' listeners.
//
// No generated code: proto-loader reads the contract at start-up, with the options the shapes
// below assume (camelCase field names, int64 as JavaScript numbers, bytes as Buffers, enums as
// their names, defaults filled in). Offsets stay far below 2^53, so numbers are exact.
//
// The shapes below are what proto-loader hands over for the RPCs the broker serves. Everything
// that arrives through them is unvalidated input: client-service.ts checks it before use.

import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { CHANNEL_OPTIONS, MESSAGE_BYTES_MAX, findProtoDirectory } from '@raftka/quorum';

export const CLIENT_PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

/** grpc-js channel options for broker-to-broker calls: large messages, quick reconnects. */
export const BROKER_CHANNEL_OPTIONS: grpc.ChannelOptions = CHANNEL_OPTIONS;

/**
 * Options for the grpc.Server that hosts the client service: record batches travel in single
 * messages, so the default 4 MiB receive limit would refuse ordinary produce requests.
 */
export const BROKER_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': MESSAGE_BYTES_MAX,
  'grpc.max_send_message_length': MESSAGE_BYTES_MAX,
  'grpc.http2.min_ping_interval_without_data_ms': 1_000,
  'grpc.keepalive_permit_without_calls': 1,
};

interface ClientServices {
  RaftkaClient: grpc.ServiceClientConstructor;
  RaftkaAdmin: grpc.ServiceClientConstructor;
  RaftkaGroups: grpc.ServiceClientConstructor;
}

let cached: ClientServices | undefined;

function loadClientServices(): ClientServices {
  if (cached) return cached;
  const file = path.join(findProtoDirectory('client.proto'), 'client.proto');
  const definition = protoLoader.loadSync(file, CLIENT_PROTO_LOADER_OPTIONS);
  const root = grpc.loadPackageDefinition(definition) as unknown as { raftka: { client: { v1: ClientServices } } };
  cached = root.raftka.client.v1;
  return cached;
}

/** The RaftkaClient client constructor; its `.service` is the server-side definition. */
export function loadRaftkaClientService(): grpc.ServiceClientConstructor {
  return loadClientServices().RaftkaClient;
}

/** The RaftkaAdmin client constructor; its `.service` is the server-side definition. */
export function loadRaftkaAdminService(): grpc.ServiceClientConstructor {
  return loadClientServices().RaftkaAdmin;
}

/** The RaftkaGroups client constructor; its `.service` is the server-side definition. */
export function loadRaftkaGroupsService(): grpc.ServiceClientConstructor {
  return loadClientServices().RaftkaGroups;
}

// ---- Wire shapes (camelCase, as proto-loader decodes them with the options above) ----

export interface ProtoLeaderIdAndEpoch {
  leaderId: number;
  leaderEpoch: number;
}

export interface ProtoEpochEndOffset {
  epoch: number;
  endOffset: number;
}

export interface ProtoBrokerAddress {
  nodeId: number;
  host: string;
  port: number;
  rack: string;
}

export interface ProtoMetadataRequest {
  topics: string[];
  allTopics: boolean;
  allowAutoTopicCreation: boolean;
}

export interface ProtoPartitionMetadata {
  errorCode: number;
  errorMessage: string;
  partitionIndex: number;
  leaderId: number;
  leaderEpoch: number;
  replicaNodes: number[];
  isrNodes: number[];
  offlineReplicas: number[];
}

export interface ProtoTopicMetadata {
  errorCode: number;
  errorMessage: string;
  name: string;
  topicId: Buffer;
  isInternal: boolean;
  partitions: ProtoPartitionMetadata[];
}

export interface ProtoMetadataResponse {
  brokers: ProtoBrokerAddress[];
  clusterId: string;
  controllerId: number;
  topics: ProtoTopicMetadata[];
}

export interface ProtoDescribeClusterResponse {
  errorCode: number;
  errorMessage: string;
  clusterId: string;
  controllerId: number;
  brokers: ProtoBrokerAddress[];
  clusterAuthorizedOperations: number;
}

export interface ProtoProduceRequest {
  transactionalId: string;
  acks: number;
  timeoutMs: number;
  topicData: { name: string; partitionData: { index: number; records: Buffer }[] }[];
}

export interface ProtoPartitionProduceResponse {
  index: number;
  errorCode: number;
  errorMessage: string;
  baseOffset: number;
  logAppendTimeMs: number;
  logStartOffset: number;
  recordErrors: { batchIndex: number; batchIndexErrorMessage: string }[];
  currentLeader: ProtoLeaderIdAndEpoch | null;
}

export interface ProtoProduceResponse {
  responses: { name: string; partitionResponses: ProtoPartitionProduceResponse[] }[];
  throttleTimeMs: number;
}

export interface ProtoFetchPartition {
  partition: number;
  currentLeaderEpoch: number;
  fetchOffset: number;
  lastFetchedEpoch: number;
  logStartOffset: number;
  partitionMaxBytes: number;
}

export interface ProtoFetchRequest {
  replicaId: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  isolationLevel: string;
  sessionId: number;
  sessionEpoch: number;
  topics: { topic: string; partitions: ProtoFetchPartition[] }[];
  rackId: string;
}

export interface ProtoPartitionData {
  partitionIndex: number;
  errorCode: number;
  errorMessage: string;
  highWatermark: number;
  lastStableOffset: number;
  logStartOffset: number;
  divergingEpoch: ProtoEpochEndOffset | null;
  currentLeader: ProtoLeaderIdAndEpoch | null;
  abortedTransactions: { producerId: number; firstOffset: number }[];
  preferredReadReplica: number;
  records: Buffer;
}

export interface ProtoFetchResponse {
  errorCode: number;
  errorMessage: string;
  throttleTimeMs: number;
  sessionId: number;
  responses: { topic: string; partitions: ProtoPartitionData[] }[];
}

export interface ProtoListOffsetsRequest {
  replicaId: number;
  isolationLevel: string;
  topics: { name: string; partitions: { partitionIndex: number; currentLeaderEpoch: number; timestamp: number }[] }[];
}

export interface ProtoListOffsetsResponse {
  throttleTimeMs: number;
  topics: {
    name: string;
    partitions: { partitionIndex: number; errorCode: number; errorMessage: string; timestamp: number; offset: number; leaderEpoch: number }[];
  }[];
}

export interface ProtoOffsetForLeaderEpochRequest {
  replicaId: number;
  topics: { topic: string; partitions: { partition: number; currentLeaderEpoch: number; leaderEpoch: number }[] }[];
}

export interface ProtoOffsetForLeaderEpochResponse {
  throttleTimeMs: number;
  topics: {
    topic: string;
    partitions: { errorCode: number; errorMessage: string; partition: number; leaderEpoch: number; endOffset: number }[];
  }[];
}

export interface ProtoInitProducerIdRequest {
  transactionalId: string;
  transactionTimeoutMs: number;
  producerId: number;
  producerEpoch: number;
}

export interface ProtoInitProducerIdResponse {
  errorCode: number;
  errorMessage: string;
  throttleTimeMs: number;
  producerId: number;
  producerEpoch: number;
}
