// proto/client.proto messages <-> the replica manager's typed requests (replica-manager/requests.ts).
//
// Both directions live here: the gRPC service parses requests and formats responses, the replica
// fetcher's gRPC endpoint does the reverse for Fetch and OffsetForLeaderEpoch. Keeping them side
// by side keeps them symmetric. The wire groups partitions by topic; the typed requests are flat.
// Error codes travel as Kafka's numbers on the wire and as code names inside.

import { ErrorCode, errorCodeName } from '@raftka/protocol';
import type {
  FetchPartitionResponse,
  FetchRequest,
  IsolationLevel,
  LeaderIdAndEpoch,
  ListOffsetsPartitionResponse,
  ListOffsetsRequest,
  OffsetForLeaderEpochPartitionResponse,
  OffsetForLeaderEpochRequest,
  ProducePartitionResponse,
  ProduceRequest,
} from '../replica-manager/requests.js';
import type {
  ProtoFetchRequest,
  ProtoFetchResponse,
  ProtoLeaderIdAndEpoch,
  ProtoListOffsetsRequest,
  ProtoListOffsetsResponse,
  ProtoOffsetForLeaderEpochRequest,
  ProtoOffsetForLeaderEpochResponse,
  ProtoProduceRequest,
  ProtoProduceResponse,
} from './client-proto.js';

/** Groups items by topic, topics in first-seen order, items in their order. */
export function groupByTopic<T extends { topic: string }>(items: readonly T[]): { topic: string; items: T[] }[] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    let group = groups.get(item.topic);
    if (group === undefined) groups.set(item.topic, (group = []));
    group.push(item);
  }
  return [...groups].map(([topic, grouped]) => ({ topic, items: grouped }));
}

function isolationFrom(value: string): IsolationLevel {
  return value === 'READ_COMMITTED' ? 'READ_COMMITTED' : 'READ_UNCOMMITTED';
}

function leaderToProto(leader: LeaderIdAndEpoch | undefined): ProtoLeaderIdAndEpoch {
  return leader === undefined ? { leaderId: -1, leaderEpoch: -1 } : { leaderId: leader.leaderId, leaderEpoch: leader.leaderEpoch };
}

function leaderFromProto(leader: ProtoLeaderIdAndEpoch | null | undefined): LeaderIdAndEpoch | undefined {
  return leader === null || leader === undefined || leader.leaderId < 0 ? undefined : { leaderId: leader.leaderId, leaderEpoch: leader.leaderEpoch };
}

// ---- Produce (served) ----

export function produceRequestFromProto(message: ProtoProduceRequest): ProduceRequest {
  return {
    acks: message.acks,
    timeoutMs: message.timeoutMs,
    partitions: (message.topicData ?? []).flatMap((topic) =>
      (topic.partitionData ?? []).map((partition) => ({ topic: topic.name, partition: partition.index, records: partition.records ?? Buffer.alloc(0) })),
    ),
  };
}

export function produceResponseToProto(responses: readonly ProducePartitionResponse[]): ProtoProduceResponse {
  return {
    throttleTimeMs: 0,
    responses: groupByTopic(responses).map(({ topic, items }) => ({
      name: topic,
      partitionResponses: items.map((item) => ({
        index: item.partition,
        errorCode: ErrorCode[item.errorCode],
        errorMessage: item.errorMessage,
        baseOffset: item.baseOffset,
        logAppendTimeMs: item.logAppendTimeMs,
        logStartOffset: item.logStartOffset,
        recordErrors: [],
        currentLeader: leaderToProto(item.currentLeader),
      })),
    })),
  };
}

// ---- Fetch (served and sent) ----

export function fetchRequestFromProto(message: ProtoFetchRequest): FetchRequest {
  return {
    replicaId: message.replicaId,
    maxWaitMs: message.maxWaitMs,
    minBytes: message.minBytes,
    maxBytes: message.maxBytes,
    isolationLevel: isolationFrom(message.isolationLevel),
    partitions: (message.topics ?? []).flatMap((topic) =>
      (topic.partitions ?? []).map((partition) => ({
        topic: topic.topic,
        partition: partition.partition,
        currentLeaderEpoch: partition.currentLeaderEpoch,
        fetchOffset: partition.fetchOffset,
        lastFetchedEpoch: partition.lastFetchedEpoch,
        partitionMaxBytes: partition.partitionMaxBytes,
      })),
    ),
  };
}

export function fetchRequestToProto(request: FetchRequest): ProtoFetchRequest {
  return {
    replicaId: request.replicaId,
    maxWaitMs: request.maxWaitMs,
    minBytes: request.minBytes,
    maxBytes: request.maxBytes,
    isolationLevel: request.isolationLevel,
    sessionId: 0,
    sessionEpoch: -1,
    rackId: '',
    topics: groupByTopic(request.partitions).map(({ topic, items }) => ({
      topic,
      partitions: items.map((item) => ({
        partition: item.partition,
        currentLeaderEpoch: item.currentLeaderEpoch,
        fetchOffset: item.fetchOffset,
        lastFetchedEpoch: item.lastFetchedEpoch,
        logStartOffset: -1,
        partitionMaxBytes: item.partitionMaxBytes,
      })),
    })),
  };
}

export function fetchResponseToProto(responses: readonly FetchPartitionResponse[]): ProtoFetchResponse {
  return {
    errorCode: 0,
    errorMessage: '',
    throttleTimeMs: 0,
    sessionId: 0,
    responses: groupByTopic(responses).map(({ topic, items }) => ({
      topic,
      partitions: items.map((item) => ({
        partitionIndex: item.partition,
        errorCode: ErrorCode[item.errorCode],
        errorMessage: item.errorMessage,
        highWatermark: item.highWatermark,
        lastStableOffset: item.lastStableOffset,
        logStartOffset: item.logStartOffset,
        divergingEpoch: item.divergingEpoch ?? { epoch: -1, endOffset: -1 },
        currentLeader: leaderToProto(item.currentLeader),
        abortedTransactions: [],
        preferredReadReplica: -1,
        records: item.records,
      })),
    })),
  };
}

export function fetchResponseFromProto(message: ProtoFetchResponse): FetchPartitionResponse[] {
  return (message.responses ?? []).flatMap((topic) =>
    (topic.partitions ?? []).map((partition) => ({
      topic: topic.topic,
      partition: partition.partitionIndex,
      errorCode: errorCodeName(partition.errorCode),
      errorMessage: partition.errorMessage,
      highWatermark: partition.highWatermark,
      lastStableOffset: partition.lastStableOffset,
      logStartOffset: partition.logStartOffset,
      divergingEpoch:
        partition.divergingEpoch === null || partition.divergingEpoch === undefined || partition.divergingEpoch.epoch < 0
          ? undefined
          : { epoch: partition.divergingEpoch.epoch, endOffset: partition.divergingEpoch.endOffset },
      currentLeader: leaderFromProto(partition.currentLeader),
      records: partition.records ?? Buffer.alloc(0),
    })),
  );
}

// ---- ListOffsets (served) ----

export function listOffsetsRequestFromProto(message: ProtoListOffsetsRequest): ListOffsetsRequest {
  return {
    replicaId: message.replicaId,
    isolationLevel: isolationFrom(message.isolationLevel),
    partitions: (message.topics ?? []).flatMap((topic) =>
      (topic.partitions ?? []).map((partition) => ({
        topic: topic.name,
        partition: partition.partitionIndex,
        currentLeaderEpoch: partition.currentLeaderEpoch,
        timestamp: partition.timestamp,
      })),
    ),
  };
}

export function listOffsetsResponseToProto(responses: readonly ListOffsetsPartitionResponse[]): ProtoListOffsetsResponse {
  return {
    throttleTimeMs: 0,
    topics: groupByTopic(responses).map(({ topic, items }) => ({
      name: topic,
      partitions: items.map((item) => ({
        partitionIndex: item.partition,
        errorCode: ErrorCode[item.errorCode],
        errorMessage: item.errorMessage,
        timestamp: item.timestamp,
        offset: item.offset,
        leaderEpoch: item.leaderEpoch,
      })),
    })),
  };
}

// ---- OffsetForLeaderEpoch (served and sent) ----

export function offsetForLeaderEpochRequestFromProto(message: ProtoOffsetForLeaderEpochRequest): OffsetForLeaderEpochRequest {
  return {
    replicaId: message.replicaId,
    partitions: (message.topics ?? []).flatMap((topic) =>
      (topic.partitions ?? []).map((partition) => ({
        topic: topic.topic,
        partition: partition.partition,
        currentLeaderEpoch: partition.currentLeaderEpoch,
        leaderEpoch: partition.leaderEpoch,
      })),
    ),
  };
}

export function offsetForLeaderEpochRequestToProto(request: OffsetForLeaderEpochRequest): ProtoOffsetForLeaderEpochRequest {
  return {
    replicaId: request.replicaId,
    topics: groupByTopic(request.partitions).map(({ topic, items }) => ({
      topic,
      partitions: items.map((item) => ({ partition: item.partition, currentLeaderEpoch: item.currentLeaderEpoch, leaderEpoch: item.leaderEpoch })),
    })),
  };
}

export function offsetForLeaderEpochResponseToProto(responses: readonly OffsetForLeaderEpochPartitionResponse[]): ProtoOffsetForLeaderEpochResponse {
  return {
    throttleTimeMs: 0,
    topics: groupByTopic(responses).map(({ topic, items }) => ({
      topic,
      partitions: items.map((item) => ({
        errorCode: ErrorCode[item.errorCode],
        errorMessage: item.errorMessage,
        partition: item.partition,
        leaderEpoch: item.leaderEpoch,
        endOffset: item.endOffset,
      })),
    })),
  };
}

export function offsetForLeaderEpochResponseFromProto(message: ProtoOffsetForLeaderEpochResponse): OffsetForLeaderEpochPartitionResponse[] {
  return (message.topics ?? []).flatMap((topic) =>
    (topic.partitions ?? []).map((partition) => ({
      topic: topic.topic,
      partition: partition.partition,
      errorCode: errorCodeName(partition.errorCode),
      errorMessage: partition.errorMessage,
      leaderEpoch: partition.leaderEpoch,
      endOffset: partition.endOffset,
    })),
  );
}
