// The RaftkaGroups gRPC service (proto/client.proto) of a broker: FindCoordinator, the classic
// group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and offsets (OffsetCommit,
// OffsetFetch, OffsetDelete), plus ListGroups, DescribeGroups and DeleteGroups, served by the
// GroupRuntime (group-runtime.ts).
//
// This module only translates, as client-service.ts does: every outcome a client can act on is a
// normal response with Kafka's error codes (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ...);
// gRPC status codes are left to transport failures and bugs (INTERNAL).
//
// Kafka takes the member's client id from its request header; gRPC has none, so it comes from
// the call metadata key `client-id` (empty when absent), and the client host from the peer
// address, as Kafka's coordinator records them.

import * as grpc from '@grpc/grpc-js';
import { ErrorCode, type ErrorCodeName } from '@raftka/protocol';
import type { LogLogger } from '../log/partition-log.js';
import type { GroupResponse, GroupStateName, TopicPartition } from './group-coordinator.js';
import { type GroupRequest, type GroupRuntime } from './group-runtime.js';

/** The gRPC metadata key a client sends its client.id in. */
export const CLIENT_ID_METADATA_KEY = 'client-id';
/** Kafka's "authorized operations not requested" sentinel. */
const AUTHORIZED_OPERATIONS_OMITTED = -(2 ** 31);
/** Group ids, members or partitions one request may name at most (a bound on work per call). */
export const GROUP_REQUEST_ITEMS_MAX = 100_000;

const GROUP_STATES: readonly GroupStateName[] = ['Empty', 'PreparingRebalance', 'CompletingRebalance', 'Stable', 'Dead'];

const silentLogger: LogLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
} as unknown as LogLogger;

export interface GroupServiceOptions {
  runtime: GroupRuntime;
  /** The listener this service is bound to: FindCoordinator answers the coordinator's endpoint of that name. */
  listenerName?: string;
  logger?: LogLogger;
}

/** A message that tells the client what to do about `code` (empty for NONE). */
export function groupErrorMessage(code: ErrorCodeName, groupId: string): string {
  switch (code) {
    case 'NONE':
      return '';
    case 'NOT_COORDINATOR':
      return `this broker is not the coordinator of group ${groupId}; find the coordinator again`;
    case 'COORDINATOR_LOAD_IN_PROGRESS':
      return `the coordinator of group ${groupId} is still loading its partition; retry shortly`;
    case 'COORDINATOR_NOT_AVAILABLE':
      return `the coordinator of group ${groupId} is not available; find the coordinator again and retry`;
    case 'REQUEST_TIMED_OUT':
      return `the coordinator could not replicate the change of group ${groupId} within offsets.commit.timeout.ms; retry`;
    case 'MEMBER_ID_REQUIRED':
      return 'join again with the member id in this response (KIP-394)';
    case 'UNKNOWN_MEMBER_ID':
      return `the member is not part of group ${groupId} (it may have timed out); rejoin with an empty member id`;
    case 'ILLEGAL_GENERATION':
      return `the generation is not the current one of group ${groupId}; rejoin`;
    case 'REBALANCE_IN_PROGRESS':
      return `group ${groupId} is rebalancing; rejoin`;
    case 'INVALID_SESSION_TIMEOUT':
      return 'the session timeout is outside [group.min.session.timeout.ms, group.max.session.timeout.ms]';
    case 'GROUP_MAX_SIZE_REACHED':
      return `group ${groupId} has group.max.size members already`;
    case 'OFFSET_METADATA_TOO_LARGE':
      return 'the offset metadata is larger than offset.metadata.max.bytes';
    case 'INVALID_GROUP_ID':
      return 'the group id must not be empty';
    default:
      return '';
  }
}

function code(name: ErrorCodeName): number {
  return ErrorCode[name];
}

/** The member's host without the port (grpc-js peers look like `127.0.0.1:53124` or `[::1]:53124`). */
function clientHostOf(call: grpc.ServerUnaryCall<unknown, unknown>): string {
  const peer = call.getPeer();
  const match = /^(?:ipv[46]:)?\[?([^\]]*?)\]?:\d+$/.exec(peer);
  return `/${match?.[1] ?? peer}`;
}

function clientIdOf(call: grpc.ServerUnaryCall<unknown, unknown>): string {
  const value = call.metadata.get(CLIENT_ID_METADATA_KEY)[0];
  return typeof value === 'string' ? value : value === undefined ? '' : value.toString('utf8');
}

/** Proto3 `optional string`: unset arrives as undefined/null; an empty id means none too. */
function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function tooMany(count: number, what: string): string | undefined {
  return count > GROUP_REQUEST_ITEMS_MAX ? `a request may name at most ${GROUP_REQUEST_ITEMS_MAX} ${what}` : undefined;
}

type Call = grpc.ServerUnaryCall<unknown, unknown>;
type UnaryHandler = (call: Call, callback: grpc.sendUnaryData<unknown>) => void;

function unary<Request>(logger: LogLogger, method: string, run: (request: Request, call: Call) => Promise<unknown> | unknown): UnaryHandler {
  return (call, callback) => {
    Promise.resolve()
      .then(() => run(call.request as Request, call))
      .then(
        (response) => callback(null, response),
        (error: unknown) => {
          logger.error({ err: error, method }, 'group request failed unexpectedly');
          callback({ code: grpc.status.INTERNAL, details: error instanceof Error ? error.message : String(error) });
        },
      );
  };
}

function byTopic<T extends { topic: string }>(items: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const list = out.get(item.topic);
    if (list === undefined) out.set(item.topic, [item]);
    else list.push(item);
  }
  return out;
}

function expect<A extends GroupResponse['api']>(response: GroupResponse, api: A): Extract<GroupResponse, { api: A }> {
  if (response.api !== api) throw new Error(`the coordinator answered ${response.api} to a ${api} request`);
  return response as Extract<GroupResponse, { api: A }>;
}

// ---- wire shapes (camelCase, as proto-loader decodes them) ----

interface ProtoTopicPartitions {
  name: string;
  partitionIndexes: number[];
}

interface ProtoJoinGroupRequest {
  groupId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  memberId: string;
  groupInstanceId?: string | null;
  protocolType: string;
  protocols: { name: string; metadata: Buffer }[];
  reason: string;
}

interface ProtoSyncGroupRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId?: string | null;
  protocolType: string;
  protocolName: string;
  assignments: { memberId: string; assignment: Buffer }[];
}

interface ProtoHeartbeatRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId?: string | null;
}

interface ProtoLeaveGroupRequest {
  groupId: string;
  members: { memberId: string; groupInstanceId?: string | null; reason: string }[];
}

interface ProtoOffsetCommitRequest {
  groupId: string;
  generationIdOrMemberEpoch: number;
  memberId: string;
  groupInstanceId?: string | null;
  topics: { name: string; partitions: { partitionIndex: number; committedOffset: number; committedLeaderEpoch: number; committedMetadata?: string | null }[] }[];
}

interface ProtoOffsetFetchRequest {
  groupId: string;
  topics: ProtoTopicPartitions[];
  allTopics: boolean;
  requireStable: boolean;
}

/** The RaftkaGroups implementation (for servers that assemble services themselves). */
export function groupServiceImplementation(options: GroupServiceOptions): grpc.UntypedServiceImplementation {
  const { runtime } = options;
  const logger = options.logger ?? silentLogger;
  const toPartitions = (topics: readonly ProtoTopicPartitions[]): TopicPartition[] =>
    topics.flatMap((topic) => topic.partitionIndexes.map((partition) => ({ topic: topic.name, partition })));
  return {
    FindCoordinator: unary<{ keyType: string; coordinatorKeys: string[] }>(logger, 'FindCoordinator', (request) => {
      const keys = request.coordinatorKeys.slice(0, GROUP_REQUEST_ITEMS_MAX);
      const coordinators = keys.map((key) => {
        const failed = (errorCode: ErrorCodeName, message: string) => ({ key, nodeId: -1, host: '', port: -1, errorCode: code(errorCode), errorMessage: message });
        if (request.keyType !== 'COORDINATOR_GROUP') return failed('INVALID_REQUEST', 'transactions are not supported yet: only group coordinators can be found');
        if (key === '') return failed('INVALID_REQUEST', 'the group id must not be empty');
        const location = runtime.findCoordinator(key, options.listenerName);
        if (!location.found) return failed(location.errorCode, location.message);
        return { key, nodeId: location.nodeId, host: location.host, port: location.port, errorCode: 0, errorMessage: '' };
      });
      return { throttleTimeMs: 0, coordinators };
    }),

    JoinGroup: unary<ProtoJoinGroupRequest>(logger, 'JoinGroup', async (request, call) => {
      const input: GroupRequest = {
        type: 'join',
        groupId: request.groupId,
        memberId: request.memberId,
        groupInstanceId: optionalString(request.groupInstanceId),
        protocolType: request.protocolType,
        protocols: request.protocols.map((p) => ({ name: p.name, metadata: p.metadata })),
        sessionTimeoutMs: request.sessionTimeoutMs,
        // JoinGroup v0 had no rebalance timeout: Kafka uses the session timeout then.
        rebalanceTimeoutMs: request.rebalanceTimeoutMs > 0 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs,
        clientId: clientIdOf(call),
        clientHost: clientHostOf(call),
      };
      const response = expect(await runtime.handle(input), 'join');
      return {
        throttleTimeMs: 0,
        errorCode: code(response.errorCode),
        errorMessage: groupErrorMessage(response.errorCode, request.groupId),
        generationId: response.generationId,
        protocolType: response.protocolType ?? '',
        protocolName: response.protocolName ?? '',
        leader: response.leaderId,
        skipAssignment: response.skipAssignment,
        memberId: response.memberId,
        members: response.members.map((m) => ({ memberId: m.memberId, ...(m.groupInstanceId === undefined ? {} : { groupInstanceId: m.groupInstanceId }), metadata: m.metadata })),
      };
    }),

    SyncGroup: unary<ProtoSyncGroupRequest>(logger, 'SyncGroup', async (request) => {
      const response = expect(
        await runtime.handle({
          type: 'sync',
          groupId: request.groupId,
          generationId: request.generationId,
          memberId: request.memberId,
          groupInstanceId: optionalString(request.groupInstanceId),
          protocolType: optionalString(request.protocolType),
          protocolName: optionalString(request.protocolName),
          assignments: request.assignments.map((a) => ({ memberId: a.memberId, assignment: a.assignment })),
        }),
        'sync',
      );
      return {
        throttleTimeMs: 0,
        errorCode: code(response.errorCode),
        errorMessage: groupErrorMessage(response.errorCode, request.groupId),
        protocolType: response.protocolType ?? '',
        protocolName: response.protocolName ?? '',
        assignment: response.assignment,
      };
    }),

    Heartbeat: unary<ProtoHeartbeatRequest>(logger, 'Heartbeat', async (request) => {
      const response = expect(
        await runtime.handle({
          type: 'heartbeat',
          groupId: request.groupId,
          generationId: request.generationId,
          memberId: request.memberId,
          groupInstanceId: optionalString(request.groupInstanceId),
        }),
        'heartbeat',
      );
      return { throttleTimeMs: 0, errorCode: code(response.errorCode), errorMessage: groupErrorMessage(response.errorCode, request.groupId) };
    }),

    LeaveGroup: unary<ProtoLeaveGroupRequest>(logger, 'LeaveGroup', async (request) => {
      const problem = tooMany(request.members.length, 'members');
      if (problem !== undefined) return { throttleTimeMs: 0, errorCode: code('INVALID_REQUEST'), errorMessage: problem, members: [] };
      const response = expect(
        await runtime.handle({
          type: 'leave',
          groupId: request.groupId,
          members: request.members.map((m) => ({ memberId: m.memberId, groupInstanceId: optionalString(m.groupInstanceId) })),
        }),
        'leave',
      );
      return {
        throttleTimeMs: 0,
        errorCode: code(response.errorCode),
        errorMessage: groupErrorMessage(response.errorCode, request.groupId),
        members: response.members.map((m) => ({
          memberId: m.memberId,
          ...(m.groupInstanceId === undefined ? {} : { groupInstanceId: m.groupInstanceId }),
          errorCode: code(m.errorCode),
          errorMessage: groupErrorMessage(m.errorCode, request.groupId),
        })),
      };
    }),

    OffsetCommit: unary<ProtoOffsetCommitRequest>(logger, 'OffsetCommit', async (request) => {
      const offsets = request.topics.flatMap((topic) =>
        topic.partitions.map((p) => ({
          topic: topic.name,
          partition: p.partitionIndex,
          offset: p.committedOffset,
          leaderEpoch: p.committedLeaderEpoch,
          metadata: typeof p.committedMetadata === 'string' ? p.committedMetadata : undefined,
        })),
      );
      const problem = tooMany(offsets.length, 'partitions');
      let partitions: { topic: string; partition: number; errorCode: ErrorCodeName }[];
      if (problem !== undefined) {
        partitions = offsets.map((o) => ({ topic: o.topic, partition: o.partition, errorCode: 'INVALID_REQUEST' }));
      } else {
        const response = expect(
          await runtime.handle({
            type: 'commit-offsets',
            groupId: request.groupId,
            generationId: request.generationIdOrMemberEpoch,
            memberId: request.memberId,
            groupInstanceId: optionalString(request.groupInstanceId),
            offsets,
          }),
          'commit-offsets',
        );
        partitions = response.partitions;
      }
      return {
        throttleTimeMs: 0,
        topics: [...byTopic(partitions)].map(([name, items]) => ({
          name,
          partitions: items.map((item) => ({
            partitionIndex: item.partition,
            errorCode: code(item.errorCode),
            errorMessage: item.errorCode === 'INVALID_REQUEST' ? (problem ?? '') : groupErrorMessage(item.errorCode, request.groupId),
          })),
        })),
      };
    }),

    OffsetFetch: unary<ProtoOffsetFetchRequest>(logger, 'OffsetFetch', (request) => {
      const wanted = request.allTopics ? undefined : toPartitions(request.topics);
      const fetched = runtime.fetchOffsets(request.groupId, wanted?.slice(0, GROUP_REQUEST_ITEMS_MAX));
      if ('errorCode' in fetched) return { throttleTimeMs: 0, errorCode: code(fetched.errorCode), errorMessage: fetched.message, topics: [] };
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        errorMessage: '',
        topics: [...byTopic(fetched.offsets)].map(([name, items]) => ({
          name,
          partitions: items.map((item) => ({
            partitionIndex: item.partition,
            committedOffset: item.offset,
            committedLeaderEpoch: item.leaderEpoch,
            ...(item.offset < 0 ? {} : { metadata: item.metadata }),
            errorCode: code(item.errorCode),
            errorMessage: '',
          })),
        })),
      };
    }),

    OffsetDelete: unary<{ groupId: string; topics: ProtoTopicPartitions[] }>(logger, 'OffsetDelete', async (request) => {
      const partitions = toPartitions(request.topics);
      const problem = tooMany(partitions.length, 'partitions');
      if (problem !== undefined) return { errorCode: code('INVALID_REQUEST'), errorMessage: problem, throttleTimeMs: 0, topics: [] };
      const response = expect(await runtime.handle({ type: 'delete-offsets', groupId: request.groupId, partitions }), 'delete-offsets');
      return {
        errorCode: code(response.errorCode),
        errorMessage: response.errorCode === 'GROUP_ID_NOT_FOUND' ? `group ${request.groupId} does not exist` : groupErrorMessage(response.errorCode, request.groupId),
        throttleTimeMs: 0,
        topics: [...byTopic(response.partitions)].map(([name, items]) => ({
          name,
          partitions: items.map((item) => ({
            partitionIndex: item.partition,
            errorCode: code(item.errorCode),
            errorMessage: item.errorCode === 'GROUP_SUBSCRIBED_TO_TOPIC' ? `group ${request.groupId} still consumes ${name}` : '',
          })),
        })),
      };
    }),

    ListGroups: unary<{ statesFilter: string[] }>(logger, 'ListGroups', (request) => {
      // KIP-518 filters are matched case-insensitively; unknown names match nothing.
      const filter = request.statesFilter.map((name) => GROUP_STATES.find((state) => state.toLowerCase() === name.toLowerCase()));
      const states = filter.filter((state): state is GroupStateName => state !== undefined);
      const listed = runtime.listGroups(states);
      const groups = filter.length > 0 && states.length === 0 ? [] : listed.groups;
      return {
        throttleTimeMs: 0,
        errorCode: code(listed.errorCode),
        errorMessage: listed.message,
        groups: groups.map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, groupState: g.state })),
      };
    }),

    DescribeGroups: unary<{ groups: string[] }>(logger, 'DescribeGroups', (request) => ({
      throttleTimeMs: 0,
      groups: runtime.describeGroups(request.groups.slice(0, GROUP_REQUEST_ITEMS_MAX)).map((g) => ({
        errorCode: code(g.errorCode),
        errorMessage: g.errorMessage,
        groupId: g.groupId,
        groupState: g.state,
        protocolType: g.protocolType,
        protocolData: g.protocolName,
        members: g.members.map((m) => ({
          memberId: m.memberId,
          ...(m.groupInstanceId === undefined ? {} : { groupInstanceId: m.groupInstanceId }),
          clientId: m.clientId,
          clientHost: m.clientHost,
          memberMetadata: m.metadata,
          memberAssignment: m.assignment,
        })),
        authorizedOperations: AUTHORIZED_OPERATIONS_OMITTED,
      })),
    })),

    DeleteGroups: unary<{ groupsNames: string[] }>(logger, 'DeleteGroups', async (request) => {
      const response = await runtime.deleteGroups(request.groupsNames.slice(0, GROUP_REQUEST_ITEMS_MAX));
      return {
        throttleTimeMs: 0,
        results: response.results.map((r) => ({
          groupId: r.groupId,
          errorCode: code(r.errorCode),
          errorMessage:
            r.errorCode === 'NON_EMPTY_GROUP'
              ? `group ${r.groupId} still has members`
              : r.errorCode === 'GROUP_ID_NOT_FOUND'
                ? `group ${r.groupId} does not exist`
                : groupErrorMessage(r.errorCode, r.groupId),
        })),
      };
    }),
  };
}
