// Test support: the RaftkaGroups service for the in-memory test cluster, backed by the real pure
// group coordinator core (`GroupCoordinator` from @raftka/broker), so SDK group tests exercise the
// same join/sync/heartbeat/commit rules the broker runs.
//
// The driver here does what the broker's driver does, minus the log replication:
//   - every request is fed to the core as one `step` at the current time; responses the core
//     parks (JoinGroup/SyncGroup waiting for the rest of the group) complete when a later step
//     releases them;
//   - the records a step emits are "appended" to an in-memory `__consumer_offsets` log at once
//     (durable immediately), then the step's responses are sent;
//   - one timer is armed for the core's `nextDeadlineMs` and ticks it (session expiry, rebalance
//     and sync deadlines).
// One broker is the coordinator of every group. Every other broker answers NOT_COORDINATOR, as a
// broker that does not lead the group's `__consumer_offsets` partition would. Tests can move the
// coordinator (the new one rebuilds its state from the log with `GroupCoordinator.loadFrom`, like
// a new partition leader), make FindCoordinator answer COORDINATOR_NOT_AVAILABLE for a while, make
// group calls answer COORDINATOR_LOAD_IN_PROGRESS, and cut one member off the coordinator (its
// requests fail at the transport, as for a member behind a network partition).

import * as grpc from '@grpc/grpc-js';
import { GroupCoordinator, type GroupCoordinatorOptions, type GroupInput, type GroupOutput, type GroupRecord, type GroupResponse } from '@raftka/broker';
import { ErrorCode, type ErrorCodeName } from '@raftka/protocol';
import { loadClientServices } from '../../src/network/client-proto.js';
import type * as M from '../../src/network/client-messages.js';
import type { InMemoryCluster } from './in-memory-cluster.js';

export interface InMemoryGroupsOptions {
  /** The broker that coordinates every group (default: the first). */
  coordinatorId?: number;
  /** group.min.session.timeout.ms; small by default so tests can use short sessions. */
  groupMinSessionTimeoutMs?: number;
  /** group.initial.rebalance.delay.ms; 0 by default so a lone member's first join is prompt. */
  groupInitialRebalanceDelayMs?: number;
  /** The coordinator's clock (default Date.now); timers follow real time either way. */
  clock?: () => number;
}

type Pending = (response: GroupResponse) => void;

/** A request whose answer is an error for the whole call (the coordinator moved or is loading). */
class CoordinatorErrorAnswer {
  constructor(readonly code: ErrorCodeName) {}
}

/** Brokers never answer faster than this when re-arming the tick timer (ms). */
const TICK_DELAY_MS_MIN = 1;

export class InMemoryGroups {
  readonly cluster: InMemoryCluster;
  /** The `__consumer_offsets` log every step's records are appended to (durable at once). */
  readonly log: GroupRecord[] = [];
  /** Calls served by method name (every broker), for assertions about traffic. */
  readonly callCounts = new Map<string, number>();
  /** JoinGroup calls per member id (including the id-less first join, under ''). */
  readonly joinsByMember = new Map<string, number>();
  /** Member ids whose requests fail at the transport (a member cut off from the coordinator). */
  readonly isolatedMembers = new Set<string>();
  #core: GroupCoordinator;
  #coordinatorId: number;
  readonly #coreOptions: GroupCoordinatorOptions;
  readonly #clock: () => number;
  readonly #pending = new Map<number, Pending>();
  #nextRequestId = 1;
  #nextMemberNumber = 1;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAtMs: number | undefined;
  #unavailableAnswers = 0;
  #loadingAnswers = 0;
  #stopped = false;

  private constructor(cluster: InMemoryCluster, options: InMemoryGroupsOptions) {
    this.cluster = cluster;
    this.#clock = options.clock ?? (() => Date.now());
    this.#coordinatorId = options.coordinatorId ?? cluster.brokers[0]!.nodeId;
    this.#coreOptions = {
      groupMinSessionTimeoutMs: options.groupMinSessionTimeoutMs ?? 10,
      groupInitialRebalanceDelayMs: options.groupInitialRebalanceDelayMs ?? 0,
      newMemberId: (clientId) => `${clientId}-member-${this.#nextMemberNumber++}`,
    };
    this.#core = new GroupCoordinator(this.#coreOptions);
  }

  /** Serves RaftkaGroups on every broker of `cluster`. Call `stop()` before the cluster stops. */
  static attach(cluster: InMemoryCluster, options: InMemoryGroupsOptions = {}): InMemoryGroups {
    const groups = new InMemoryGroups(cluster, options);
    cluster.addService(loadClientServices().RaftkaGroups.service, (nodeId) => groups.#implementation(nodeId));
    return groups;
  }

  get coordinatorId(): number {
    return this.#coordinatorId;
  }

  /** The live core (for assertions: describeGroups, fetchOffsets, assertInvariants). */
  get core(): GroupCoordinator {
    return this.#core;
  }

  /**
   * Moves coordination to `nodeId`: the old coordinator answers NOT_COORDINATOR from now on (its
   * parked joins and syncs too), and the new one rebuilds its groups from the log.
   */
  moveCoordinator(nodeId: number): void {
    for (const [requestId, pending] of this.#pending) {
      this.#pending.delete(requestId);
      pending(coordinatorError('NOT_COORDINATOR'));
    }
    this.#coordinatorId = nodeId;
    this.#core = GroupCoordinator.loadFrom(this.log, this.#coreOptions, this.#clock());
    this.#arm(this.#core.nextDeadlineMs());
  }

  /** FindCoordinator answers COORDINATOR_NOT_AVAILABLE this many more times. */
  coordinatorUnavailableFor(answers: number): void {
    this.#unavailableAnswers = answers;
  }

  /** Group calls to the coordinator answer COORDINATOR_LOAD_IN_PROGRESS this many more times. */
  loadInProgressFor(answers: number): void {
    this.#loadingAnswers = answers;
  }

  /** The group as the coordinator describes it. */
  describe(groupId: string): ReturnType<GroupCoordinator['describeGroups']>[number] {
    return this.#core.describeGroups([groupId])[0]!;
  }

  /** Committed offsets of a group, keyed `topic-partition`. */
  committed(groupId: string): Map<string, { offset: number; leaderEpoch: number }> {
    return new Map(this.#core.fetchOffsets(groupId).map((entry) => [`${entry.topic}-${entry.partition}`, { offset: entry.offset, leaderEpoch: entry.leaderEpoch }]));
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const [requestId, pending] of this.#pending) {
      this.#pending.delete(requestId);
      pending(coordinatorError('COORDINATOR_NOT_AVAILABLE'));
    }
  }

  // ---- driving the core ------------------------------------------------------------------------

  #apply(output: GroupOutput): void {
    this.log.push(...output.records);
    for (const { requestId, response } of output.responses) {
      const pending = this.#pending.get(requestId);
      this.#pending.delete(requestId);
      pending?.(response);
    }
    this.#arm(output.nextDeadlineMs);
  }

  #arm(deadlineMs: number | undefined): void {
    if (this.#stopped || deadlineMs === undefined) return;
    if (this.#timer !== undefined && this.#timerAtMs !== undefined && this.#timerAtMs <= deadlineMs) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAtMs = deadlineMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAtMs = undefined;
      if (this.#stopped) return;
      const core = this.#core;
      const output = core.step({ type: 'tick' }, Math.max(this.#clock(), deadlineMs));
      if (core === this.#core) this.#apply(output);
      else this.#arm(this.#core.nextDeadlineMs());
    }, Math.max(TICK_DELAY_MS_MIN, deadlineMs - this.#clock()));
  }

  /** Feeds one request to the core; resolves with its (possibly deferred) response. */
  #step(input: GroupInput & { requestId: number }): Promise<GroupResponse> {
    return new Promise<GroupResponse>((resolve) => {
      this.#pending.set(input.requestId, resolve);
      this.#apply(this.#core.step(input, this.#clock()));
    });
  }

  /** The whole-call error to answer with instead of serving, if any. */
  #refusal(nodeId: number, memberId?: string): CoordinatorErrorAnswer | 'isolated' | undefined {
    if (memberId !== undefined && memberId !== '' && this.isolatedMembers.has(memberId)) return 'isolated';
    if (this.#stopped) return new CoordinatorErrorAnswer('COORDINATOR_NOT_AVAILABLE');
    if (nodeId !== this.#coordinatorId) return new CoordinatorErrorAnswer('NOT_COORDINATOR');
    if (this.#loadingAnswers > 0) {
      this.#loadingAnswers -= 1;
      return new CoordinatorErrorAnswer('COORDINATOR_LOAD_IN_PROGRESS');
    }
    return undefined;
  }

  // ---- the gRPC service ------------------------------------------------------------------------

  #implementation(nodeId: number): grpc.UntypedServiceImplementation {
    const wrap = <Request, Response>(method: string, handler: (request: Request, peer: string) => Promise<Response> | Response): grpc.handleUnaryCall<Request, Response> => {
      return (call, callback) => {
        this.callCounts.set(method, (this.callCounts.get(method) ?? 0) + 1);
        Promise.resolve()
          .then(() => handler(call.request, call.getPeer()))
          .then(
            (response) => callback(null, response),
            (error: unknown) => {
              if (error === ISOLATED) callback({ code: grpc.status.UNAVAILABLE, details: 'the member is cut off from the coordinator' });
              else callback({ code: grpc.status.INTERNAL, details: error instanceof Error ? error.message : String(error) });
            },
          );
      };
    };
    return {
      FindCoordinator: wrap('FindCoordinator', (request: M.FindCoordinatorRequest) => this.#findCoordinator(request)),
      JoinGroup: wrap('JoinGroup', (request: M.JoinGroupRequest, peer) => this.#joinGroup(nodeId, request, peer)),
      SyncGroup: wrap('SyncGroup', (request: M.SyncGroupRequest) => this.#syncGroup(nodeId, request)),
      Heartbeat: wrap('Heartbeat', (request: M.HeartbeatRequest) => this.#heartbeat(nodeId, request)),
      LeaveGroup: wrap('LeaveGroup', (request: M.LeaveGroupRequest) => this.#leaveGroup(nodeId, request)),
      OffsetCommit: wrap('OffsetCommit', (request: M.OffsetCommitRequest) => this.#offsetCommit(nodeId, request)),
      OffsetFetch: wrap('OffsetFetch', (request: M.OffsetFetchRequest) => this.#offsetFetch(nodeId, request)),
      OffsetDelete: wrap('OffsetDelete', (request: M.OffsetDeleteRequest) => this.#offsetDelete(nodeId, request)),
      ListGroups: wrap('ListGroups', (request: M.ListGroupsRequest) => this.#listGroups(nodeId, request)),
      DescribeGroups: wrap('DescribeGroups', (request: M.DescribeGroupsRequest) => this.#describeGroups(nodeId, request)),
      DeleteGroups: wrap('DeleteGroups', (request: M.DeleteGroupsRequest) => this.#deleteGroups(nodeId, request)),
    };
  }

  #findCoordinator(request: M.FindCoordinatorRequest): M.FindCoordinatorResponse {
    const unavailable = this.#unavailableAnswers > 0 || this.#stopped;
    if (this.#unavailableAnswers > 0) this.#unavailableAnswers -= 1;
    const broker = this.cluster.brokers.find((candidate) => candidate.nodeId === this.#coordinatorId)!;
    return {
      throttleTimeMs: 0,
      coordinators: request.coordinatorKeys.map((key) =>
        unavailable || request.keyType !== 'COORDINATOR_GROUP'
          ? { key, nodeId: -1, host: '', port: -1, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, errorMessage: 'the coordinator is not available yet' }
          : { key, nodeId: broker.nodeId, host: '127.0.0.1', port: broker.port, errorCode: 0, errorMessage: '' },
      ),
    };
  }

  async #joinGroup(nodeId: number, request: M.JoinGroupRequest, peer: string): Promise<M.JoinGroupResponse> {
    this.joinsByMember.set(request.memberId, (this.joinsByMember.get(request.memberId) ?? 0) + 1);
    const failed = (code: ErrorCodeName): M.JoinGroupResponse => ({
      throttleTimeMs: 0,
      errorCode: ErrorCode[code],
      errorMessage: code,
      generationId: -1,
      protocolType: '',
      protocolName: '',
      leader: '',
      skipAssignment: false,
      memberId: request.memberId,
      members: [],
    });
    const refusal = this.#refusal(nodeId, request.memberId);
    if (refusal === 'isolated') throw ISOLATED;
    if (refusal) return failed(refusal.code);
    const response = await this.#step({
      type: 'join',
      requestId: this.#nextRequestId++,
      groupId: request.groupId,
      memberId: request.memberId,
      groupInstanceId: optional(request.groupInstanceId),
      protocolType: request.protocolType,
      protocols: request.protocols.map((protocol) => ({ name: protocol.name, metadata: Buffer.from(protocol.metadata) })),
      sessionTimeoutMs: request.sessionTimeoutMs,
      rebalanceTimeoutMs: request.rebalanceTimeoutMs,
      clientId: 'raftka',
      clientHost: peer,
    });
    if (response.api !== 'join') return failed(errorOf(response));
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode[response.errorCode],
      errorMessage: response.errorCode === 'NONE' ? '' : response.errorCode,
      generationId: response.generationId,
      protocolType: response.protocolType ?? '',
      protocolName: response.protocolName ?? '',
      leader: response.leaderId,
      skipAssignment: response.skipAssignment,
      memberId: response.memberId,
      members: response.members.map((member) => ({ memberId: member.memberId, groupInstanceId: member.groupInstanceId, metadata: member.metadata })),
    };
  }

  async #syncGroup(nodeId: number, request: M.SyncGroupRequest): Promise<M.SyncGroupResponse> {
    const failed = (code: ErrorCodeName): M.SyncGroupResponse => ({
      throttleTimeMs: 0,
      errorCode: ErrorCode[code],
      errorMessage: code,
      protocolType: '',
      protocolName: '',
      assignment: Buffer.alloc(0),
    });
    const refusal = this.#refusal(nodeId, request.memberId);
    if (refusal === 'isolated') throw ISOLATED;
    if (refusal) return failed(refusal.code);
    const response = await this.#step({
      type: 'sync',
      requestId: this.#nextRequestId++,
      groupId: request.groupId,
      generationId: request.generationId,
      memberId: request.memberId,
      groupInstanceId: optional(request.groupInstanceId),
      protocolType: request.protocolType === '' ? undefined : request.protocolType,
      protocolName: request.protocolName === '' ? undefined : request.protocolName,
      assignments: request.assignments.map((entry) => ({ memberId: entry.memberId, assignment: Buffer.from(entry.assignment) })),
    });
    if (response.api !== 'sync') return failed(errorOf(response));
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode[response.errorCode],
      errorMessage: response.errorCode === 'NONE' ? '' : response.errorCode,
      protocolType: response.protocolType ?? '',
      protocolName: response.protocolName ?? '',
      assignment: response.assignment,
    };
  }

  async #heartbeat(nodeId: number, request: M.HeartbeatRequest): Promise<M.HeartbeatResponse> {
    const refusal = this.#refusal(nodeId, request.memberId);
    if (refusal === 'isolated') throw ISOLATED;
    if (refusal) return { throttleTimeMs: 0, errorCode: ErrorCode[refusal.code], errorMessage: refusal.code };
    const response = await this.#step({
      type: 'heartbeat',
      requestId: this.#nextRequestId++,
      groupId: request.groupId,
      generationId: request.generationId,
      memberId: request.memberId,
      groupInstanceId: optional(request.groupInstanceId),
    });
    const code = errorOf(response);
    return { throttleTimeMs: 0, errorCode: ErrorCode[code], errorMessage: code === 'NONE' ? '' : code };
  }

  async #leaveGroup(nodeId: number, request: M.LeaveGroupRequest): Promise<M.LeaveGroupResponse> {
    const refusal = this.#refusal(nodeId, request.members[0]?.memberId);
    if (refusal === 'isolated') throw ISOLATED;
    if (refusal) return { throttleTimeMs: 0, errorCode: ErrorCode[refusal.code], errorMessage: refusal.code, members: [] };
    const response = await this.#step({
      type: 'leave',
      requestId: this.#nextRequestId++,
      groupId: request.groupId,
      members: request.members.map((member) => ({ memberId: member.memberId, groupInstanceId: optional(member.groupInstanceId) })),
    });
    if (response.api !== 'leave') return { throttleTimeMs: 0, errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, errorMessage: 'unexpected response', members: [] };
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode[response.errorCode],
      errorMessage: '',
      members: response.members.map((member) => ({
        memberId: member.memberId,
        groupInstanceId: member.groupInstanceId,
        errorCode: ErrorCode[member.errorCode],
        errorMessage: member.errorCode === 'NONE' ? '' : member.errorCode,
      })),
    };
  }

  async #offsetCommit(nodeId: number, request: M.OffsetCommitRequest): Promise<M.OffsetCommitResponse> {
    const answerAll = (code: ErrorCodeName): M.OffsetCommitResponse => ({
      throttleTimeMs: 0,
      topics: request.topics.map((topic) => ({
        name: topic.name,
        partitions: topic.partitions.map((partition) => ({ partitionIndex: partition.partitionIndex, errorCode: ErrorCode[code], errorMessage: code === 'NONE' ? '' : code })),
      })),
    });
    const refusal = this.#refusal(nodeId, request.memberId);
    if (refusal === 'isolated') throw ISOLATED;
    if (refusal) return answerAll(refusal.code);
    const response = await this.#step({
      type: 'commit-offsets',
      requestId: this.#nextRequestId++,
      groupId: request.groupId,
      generationId: request.generationIdOrMemberEpoch,
      memberId: request.memberId,
      groupInstanceId: optional(request.groupInstanceId),
      offsets: request.topics.flatMap((topic) =>
        topic.partitions.map((partition) => ({
          topic: topic.name,
          partition: partition.partitionIndex,
          offset: partition.committedOffset,
          leaderEpoch: partition.committedLeaderEpoch,
          metadata: optional(partition.committedMetadata),
        })),
      ),
    });
    if (response.api !== 'commit-offsets') return answerAll('UNKNOWN_SERVER_ERROR');
    const byTopic = new Map<string, M.OffsetCommitResponse['topics'][number]>();
    for (const partition of response.partitions) {
      const entry = byTopic.get(partition.topic) ?? { name: partition.topic, partitions: [] };
      entry.partitions.push({ partitionIndex: partition.partition, errorCode: ErrorCode[partition.errorCode], errorMessage: partition.errorCode === 'NONE' ? '' : partition.errorCode });
      byTopic.set(partition.topic, entry);
    }
    return { throttleTimeMs: 0, topics: [...byTopic.values()] };
  }

  #offsetFetch(nodeId: number, request: M.OffsetFetchRequest): M.OffsetFetchResponse {
    const refusal = this.#refusal(nodeId);
    if (refusal instanceof CoordinatorErrorAnswer) return { throttleTimeMs: 0, errorCode: ErrorCode[refusal.code], errorMessage: refusal.code, topics: [] };
    const partitions = request.allTopics ? undefined : request.topics.flatMap((topic) => topic.partitionIndexes.map((partition) => ({ topic: topic.name, partition })));
    const byTopic = new Map<string, M.OffsetFetchResponse['topics'][number]>();
    for (const fetched of this.#core.fetchOffsets(request.groupId, partitions)) {
      const entry = byTopic.get(fetched.topic) ?? { name: fetched.topic, partitions: [] };
      entry.partitions.push({
        partitionIndex: fetched.partition,
        committedOffset: fetched.offset,
        committedLeaderEpoch: fetched.leaderEpoch,
        metadata: fetched.metadata,
        errorCode: ErrorCode[fetched.errorCode],
        errorMessage: '',
      });
      byTopic.set(fetched.topic, entry);
    }
    return { throttleTimeMs: 0, errorCode: 0, errorMessage: '', topics: [...byTopic.values()] };
  }

  async #offsetDelete(nodeId: number, request: M.OffsetDeleteRequest): Promise<M.OffsetDeleteResponse> {
    const refusal = this.#refusal(nodeId);
    if (refusal instanceof CoordinatorErrorAnswer) return { errorCode: ErrorCode[refusal.code], errorMessage: refusal.code, throttleTimeMs: 0, topics: [] };
    const response = await this.#step({
      type: 'delete-offsets',
      requestId: this.#nextRequestId++,
      groupId: request.groupId,
      partitions: request.topics.flatMap((topic) => topic.partitionIndexes.map((partition) => ({ topic: topic.name, partition }))),
    });
    if (response.api !== 'delete-offsets') return { errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, errorMessage: 'unexpected response', throttleTimeMs: 0, topics: [] };
    const byTopic = new Map<string, M.OffsetDeleteResponse['topics'][number]>();
    for (const partition of response.partitions) {
      const entry = byTopic.get(partition.topic) ?? { name: partition.topic, partitions: [] };
      entry.partitions.push({ partitionIndex: partition.partition, errorCode: ErrorCode[partition.errorCode], errorMessage: '' });
      byTopic.set(partition.topic, entry);
    }
    return { errorCode: ErrorCode[response.errorCode], errorMessage: '', throttleTimeMs: 0, topics: [...byTopic.values()] };
  }

  #listGroups(nodeId: number, request: M.ListGroupsRequest): M.ListGroupsResponse {
    // Like Kafka, a broker lists only the groups it coordinates.
    if (nodeId !== this.#coordinatorId) return { throttleTimeMs: 0, errorCode: 0, errorMessage: '', groups: [] };
    const states = request.statesFilter as Parameters<GroupCoordinator['listGroups']>[0];
    return {
      throttleTimeMs: 0,
      errorCode: 0,
      errorMessage: '',
      groups: this.#core.listGroups(states).map((group) => ({ groupId: group.groupId, protocolType: group.protocolType, groupState: group.state })),
    };
  }

  #describeGroups(nodeId: number, request: M.DescribeGroupsRequest): M.DescribeGroupsResponse {
    const refusal = this.#refusal(nodeId);
    if (refusal instanceof CoordinatorErrorAnswer) {
      return {
        throttleTimeMs: 0,
        groups: request.groups.map((groupId) => ({
          errorCode: ErrorCode[refusal.code],
          errorMessage: refusal.code,
          groupId,
          groupState: '',
          protocolType: '',
          protocolData: '',
          members: [],
          authorizedOperations: -2147483648,
        })),
      };
    }
    return {
      throttleTimeMs: 0,
      groups: this.#core.describeGroups(request.groups).map((group) => ({
        errorCode: ErrorCode[group.errorCode],
        errorMessage: '',
        groupId: group.groupId,
        groupState: group.state,
        protocolType: group.protocolType,
        protocolData: group.protocolName,
        members: group.members.map((member) => ({
          memberId: member.memberId,
          groupInstanceId: member.groupInstanceId,
          clientId: member.clientId,
          clientHost: member.clientHost,
          memberMetadata: member.metadata,
          memberAssignment: member.assignment,
        })),
        authorizedOperations: -2147483648,
      })),
    };
  }

  async #deleteGroups(nodeId: number, request: M.DeleteGroupsRequest): Promise<M.DeleteGroupsResponse> {
    const refusal = this.#refusal(nodeId);
    if (refusal instanceof CoordinatorErrorAnswer) {
      return { throttleTimeMs: 0, results: request.groupsNames.map((groupId) => ({ groupId, errorCode: ErrorCode[refusal.code], errorMessage: refusal.code })) };
    }
    const response = await this.#step({ type: 'delete-groups', requestId: this.#nextRequestId++, groupIds: request.groupsNames });
    if (response.api !== 'delete-groups') return { throttleTimeMs: 0, results: [] };
    return {
      throttleTimeMs: 0,
      results: response.results.map((result) => ({ groupId: result.groupId, errorCode: ErrorCode[result.errorCode], errorMessage: result.errorCode === 'NONE' ? '' : result.errorCode })),
    };
  }
}

/** Thrown inside a handler to fail the call at the transport (see `isolatedMembers`). */
const ISOLATED = Symbol('isolated');

/** proto3 `optional` strings arrive as undefined or null when unset. */
function optional(value: string | null | undefined): string | undefined {
  return value === null || value === undefined ? undefined : value;
}

/** The whole-call error code of a response (UNKNOWN_SERVER_ERROR for shapes without one). */
function errorOf(response: GroupResponse): ErrorCodeName {
  return 'errorCode' in response ? response.errorCode : 'UNKNOWN_SERVER_ERROR';
}

/** A stand-in response carrying only a whole-call error code (for parked requests cut short). */
function coordinatorError(code: ErrorCodeName): GroupResponse {
  return { api: 'heartbeat', errorCode: code };
}
