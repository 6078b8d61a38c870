// The data-plane requests the replica manager serves, as typed values: Kafka's Produce, Fetch,
// ListOffsets and OffsetForLeaderEpoch with one flat list of partitions each. The gRPC service
// (server/client-service.ts) converts proto/client.proto messages to these and back, and the
// replica fetcher builds them for its leader; errors travel as Kafka's code names per partition.

import type { ErrorCodeName } from '@raftka/protocol';

export interface LeaderIdAndEpoch {
  leaderId: number;
  leaderEpoch: number;
}

/** A consumer's replica id in Fetch, ListOffsets and OffsetForLeaderEpoch (Kafka's -1). */
export const CONSUMER_REPLICA_ID = -1;
/** `currentLeaderEpoch` that skips the epoch check (KIP-320). */
export const NO_LEADER_EPOCH_CHECK = -1;

export type IsolationLevel = 'READ_UNCOMMITTED' | 'READ_COMMITTED';

// ---- Produce ----

export interface ProducePartitionRequest {
  topic: string;
  partition: number;
  /** One or more encoded RecordBatch v2; the log takes ownership and rewrites header fields. */
  records: Buffer;
}

export interface ProduceRequest {
  /** 0, 1 or -1 (all in-sync replicas). */
  acks: number;
  /** How long acks=-1 waits for the in-sync replicas. */
  timeoutMs: number;
  partitions: ProducePartitionRequest[];
}

export interface ProducePartitionResponse {
  topic: string;
  partition: number;
  errorCode: ErrorCodeName;
  errorMessage: string;
  /** -1 on error. */
  baseOffset: number;
  /** The broker's append time with LogAppendTime, otherwise -1. */
  logAppendTimeMs: number;
  logStartOffset: number;
  /** With NOT_LEADER_OR_FOLLOWER: the leader the metadata names (KIP-951). */
  currentLeader: LeaderIdAndEpoch | undefined;
}

// ---- Fetch ----

export interface FetchPartitionRequest {
  topic: string;
  partition: number;
  /** NO_LEADER_EPOCH_CHECK, or the epoch the fetcher believes current (KIP-320). */
  currentLeaderEpoch: number;
  fetchOffset: number;
  /** Epoch of the last record the fetcher holds, -1 when unknown (divergence check, KIP-320). */
  lastFetchedEpoch: number;
  partitionMaxBytes: number;
}

export interface FetchRequest {
  /** CONSUMER_REPLICA_ID for consumers, the broker id for followers. */
  replicaId: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  isolationLevel: IsolationLevel;
  partitions: FetchPartitionRequest[];
}

export interface EpochEndOffsetValue {
  epoch: number;
  endOffset: number;
}

export interface FetchPartitionResponse {
  topic: string;
  partition: number;
  errorCode: ErrorCodeName;
  errorMessage: string;
  highWatermark: number;
  lastStableOffset: number;
  logStartOffset: number;
  /** Set when the fetcher's log diverges from the leader's (KIP-320); records are then empty. */
  divergingEpoch: EpochEndOffsetValue | undefined;
  currentLeader: LeaderIdAndEpoch | undefined;
  /** Whole stored batches, byte for byte. */
  records: Buffer;
}

// ---- ListOffsets ----

export interface ListOffsetsPartitionRequest {
  topic: string;
  partition: number;
  currentLeaderEpoch: number;
  /** -1 latest, -2 earliest, otherwise a timestamp in milliseconds. */
  timestamp: number;
}

export interface ListOffsetsRequest {
  replicaId: number;
  isolationLevel: IsolationLevel;
  partitions: ListOffsetsPartitionRequest[];
}

export interface ListOffsetsPartitionResponse {
  topic: string;
  partition: number;
  errorCode: ErrorCodeName;
  errorMessage: string;
  timestamp: number;
  offset: number;
  leaderEpoch: number;
}

// ---- OffsetForLeaderEpoch ----

export interface OffsetForLeaderEpochPartitionRequest {
  topic: string;
  partition: number;
  currentLeaderEpoch: number;
  leaderEpoch: number;
}

export interface OffsetForLeaderEpochRequest {
  replicaId: number;
  partitions: OffsetForLeaderEpochPartitionRequest[];
}

export interface OffsetForLeaderEpochPartitionResponse {
  topic: string;
  partition: number;
  errorCode: ErrorCodeName;
  errorMessage: string;
  leaderEpoch: number;
  endOffset: number;
}
