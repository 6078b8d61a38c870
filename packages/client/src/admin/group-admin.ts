// Consumer-group administration: list, describe (members, assignments, committed offsets, lag),
// reset and delete committed offsets, delete groups. The Admin client's group methods delegate
// here; this module owns talking to group coordinators.
//
// Where requests go (client.proto, RaftkaGroups): ListGroups is answered by every broker for the
// groups it coordinates, so listing asks every live broker and merges (as Kafka's Admin does).
// Everything else about one group goes to that group's coordinator, found with FindCoordinator.
// Coordinators move (the leader of the group's __consumer_offsets partition changes) and load
// (the new leader replays the partition), so a call answered NOT_COORDINATOR or
// COORDINATOR_NOT_AVAILABLE, or not answered at all, forgets the coordinator, waits a backoff and
// asks FindCoordinator again; COORDINATOR_LOAD_IN_PROGRESS waits and asks the same coordinator.
// Both repeat, with exponential backoff, until requestTimeoutMs. Every other error is final and
// carries its Kafka name.
//
// Offset resets follow kafka-consumer-groups: only a group with no live members (Empty or Dead)
// may have its offsets changed from outside, since a running member would overwrite them with
// its own commits; the commit is sent with generation -1 and an empty member id, the form the
// coordinator accepts from a non-member (Kafka's "simple consumer" commit). A reset first builds
// a plan (partition, current offset, new offset); a dry run returns the plan without committing.

import { RaftkaError, type ErrorCodeName } from '@raftka/protocol';
import { errorFromResponse, partitionKey, toRaftkaError, type ClusterClient, type ListedOffset, type TopicPartition } from '../cluster-client.js';
import type { AdminOptions } from '../options.js';
import { AdminOperationError } from './admin-errors.js';
import { lookUpCoordinator } from '../consumer/coordinator-client.js';
import { decodeAssignment, decodeSubscription } from '../consumer/assignors/consumer-protocol.js';
import type {
  DeleteGroupsRequest,
  DeleteGroupsResponse,
  DescribedGroupMessage,
  DescribeGroupsRequest,
  DescribeGroupsResponse,
  ListGroupsRequest,
  ListGroupsResponse,
  OffsetCommitRequest,
  OffsetCommitResponse,
  OffsetDeleteRequest,
  OffsetDeleteResponse,
  OffsetFetchRequest,
  OffsetFetchResponse,
} from '../network/client-messages.js';

/** A classic consumer group's states (Kafka's names; "Unknown" for a state this client does not know). */
export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead' | 'Unknown';

const KNOWN_GROUP_STATES: ReadonlySet<string> = new Set(['Empty', 'PreparingRebalance', 'CompletingRebalance', 'Stable', 'Dead']);

/** States in which a group's offsets may be changed from outside the group (kafka-consumer-groups' rule). */
export const OFFSET_RESETTABLE_STATES: readonly GroupState[] = ['Empty', 'Dead'];

export interface ListedGroup {
  groupId: string;
  /** "consumer" for consumer groups; empty for a group that never had members. */
  protocolType: string;
  state: GroupState;
  /** The broker that coordinates the group. */
  coordinatorId: number;
}

export interface GroupMember {
  memberId: string;
  groupInstanceId: string | undefined;
  clientId: string;
  clientHost: string;
  /** The member's assigned partitions (decoded consumer-protocol assignment; empty unless Stable). */
  assignment: TopicPartition[];
  /** Topics the member subscribes to (empty unless Stable). */
  subscribedTopics: string[];
}

/** A committed offset of a group. */
export interface GroupOffset extends TopicPartition {
  /** The next offset the group will read. */
  offset: number;
  /** Leader epoch of the last consumed record, -1 when unknown. */
  leaderEpoch: number;
  metadata: string;
}

/** One partition of a group as kafka-consumer-groups --describe shows it. */
export interface GroupPartitionLag extends TopicPartition {
  /** Committed offset, undefined when the group has committed nothing for the partition. */
  currentOffset: number | undefined;
  /** The partition's high watermark, undefined when it could not be read. */
  logEndOffset: number | undefined;
  /** logEndOffset - currentOffset, undefined when either is unknown. */
  lag: number | undefined;
  /** The member the partition is assigned to, undefined when none. */
  memberId: string | undefined;
}

export interface GroupDescription {
  groupId: string;
  state: GroupState;
  protocolType: string;
  /** The assignor in use ("range", "cooperative-sticky", ...); empty unless Stable. */
  protocol: string;
  coordinatorId: number;
  members: GroupMember[];
  /** Committed and assigned partitions with lag, sorted by topic and partition; empty with includeOffsets: false. */
  partitions: GroupPartitionLag[];
}

/** Where a reset moves a group's offsets (kafka-consumer-groups' --to-* / --shift-by). */
export type OffsetResetTarget =
  | { earliest: true }
  | { latest: true }
  /** An absolute offset, clamped to [log start, log end] as Kafka's tool does. */
  | { offset: number }
  /** The first offset with a timestamp at or after this one (ms since the epoch); log end when none. */
  | { timestamp: number }
  /** The committed offset plus this many (may be negative), clamped to [log start, log end]. */
  | { shiftBy: number };

export interface ResetOffsetsRequest {
  groupId: string;
  topic: string;
  /** Only these partitions (default: every partition of the topic). */
  partitions?: readonly number[];
  to: OffsetResetTarget;
  /** Build and return the plan without committing it (default false). */
  dryRun?: boolean;
}

export interface OffsetResetPlanEntry extends TopicPartition {
  /** The committed offset before the reset, undefined when none. */
  currentOffset: number | undefined;
  newOffset: number;
}

/** A reset refused because the group has live members; `state` is what the coordinator said. */
export class GroupNotInactiveError extends RaftkaError {
  readonly groupId: string;
  readonly state: GroupState;

  constructor(groupId: string, state: GroupState) {
    super(
      'NON_EMPTY_GROUP',
      `offsets of group ${groupId} can only be reset while it is inactive (${OFFSET_RESETTABLE_STATES.join(' or ')}), but its state is ${state}; stop its consumers and try again`,
      { retriable: false },
    );
    this.name = 'GroupNotInactiveError';
    this.groupId = groupId;
    this.state = state;
  }
}

/** Errors after which the coordinator is looked up again. */
const COORDINATOR_MOVED_CODES: ReadonlySet<ErrorCodeName> = new Set<ErrorCodeName>(['NOT_COORDINATOR', 'COORDINATOR_NOT_AVAILABLE', 'NETWORK_EXCEPTION', 'BROKER_NOT_AVAILABLE']);
/** Errors after which the same coordinator is asked again. */
const COORDINATOR_WAIT_CODES: ReadonlySet<ErrorCodeName> = new Set<ErrorCodeName>(['COORDINATOR_LOAD_IN_PROGRESS']);
/** Backoff exponent cap, so 2^n stays finite. */
const BACKOFF_EXPONENT_MAX = 20;

export interface GroupAdminDependencies {
  cluster: ClusterClient;
  options: Readonly<AdminOptions>;
  /** Admin.listOffsets' core: offsets per partition or the partition's error. */
  listOffsets: (queries: readonly (TopicPartition & { spec: 'earliest' | 'latest' | { timestamp: number } })[]) => Promise<Map<string, ListedOffset | RaftkaError>>;
  /** The topic's partition indexes (fails with UNKNOWN_TOPIC_OR_PARTITION). */
  partitionsOf: (topic: string) => Promise<number[]>;
}

function groupState(text: string): GroupState {
  return KNOWN_GROUP_STATES.has(text) ? (text as GroupState) : 'Unknown';
}

function compareTopicPartition(a: TopicPartition, b: TopicPartition): number {
  return a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition;
}

export class GroupAdmin {
  readonly #deps: GroupAdminDependencies;
  // Coordinator node id per group, forgotten when a call says it moved.
  readonly #coordinators = new Map<string, number>();

  constructor(deps: GroupAdminDependencies) {
    this.#deps = deps;
  }

  get #cluster(): ClusterClient {
    return this.#deps.cluster;
  }

  #backoffMs(attempt: number): number {
    const { retryBackoffMs, retryBackoffMaxMs } = this.#deps.options;
    return Math.min(retryBackoffMaxMs, retryBackoffMs * 2 ** Math.min(attempt, BACKOFF_EXPONENT_MAX));
  }

  /** Every group of every broker, sorted by id; `states` keeps only groups in those states (KIP-518). */
  async listGroups(options: { states?: readonly GroupState[] } = {}): Promise<ListedGroup[]> {
    const deadlineMs = this.#cluster.runtime.clock() + this.#deps.options.requestTimeoutMs;
    await this.#retrying(deadlineMs, () => this.#cluster.refreshMetadata(), () => true);
    const brokers = this.#cluster.metadata.brokers();
    const failures = new Map<string, RaftkaError>();
    const found = new Map<string, ListedGroup>();
    await Promise.all(
      brokers.map(async (broker) => {
        try {
          const response = await this.#retrying(
            deadlineMs,
            async () => {
              const answer = await this.#cluster.call<ListGroupsRequest, ListGroupsResponse>(broker.nodeId, 'RaftkaGroups', 'ListGroups', {
                statesFilter: (options.states ?? []).filter((state) => state !== 'Unknown'),
              });
              if (answer.errorCode !== 0) throw errorFromResponse(answer.errorCode, answer.errorMessage, `ListGroups on broker ${broker.nodeId}`);
              return answer;
            },
            (error) => error.code === 'NETWORK_EXCEPTION' || COORDINATOR_WAIT_CODES.has(error.code) || error.code === 'COORDINATOR_NOT_AVAILABLE',
          );
          for (const group of response.groups) {
            found.set(group.groupId, { groupId: group.groupId, protocolType: group.protocolType, state: groupState(group.groupState), coordinatorId: broker.nodeId });
          }
        } catch (error) {
          failures.set(`broker ${broker.nodeId}`, toRaftkaError(error));
        }
      }),
    );
    const groups = [...found.values()].sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
    if (failures.size > 0) throw new AdminOperationError('listGroups', failures, groups);
    return groups;
  }

  /**
   * State, assignor and members (with decoded assignments) of each group, and unless
   * `includeOffsets` is false, its committed offsets with log end offsets and lag. A group that
   * does not exist is described as Dead with no members, as Kafka does.
   */
  async describeGroups(groupIds: readonly string[], options: { includeOffsets?: boolean } = {}): Promise<GroupDescription[]> {
    const failures = new Map<string, RaftkaError>();
    const results = new Map<string, GroupDescription>();
    await Promise.all(
      groupIds.map(async (groupId) => {
        try {
          const { group, coordinatorId } = await this.#describeOne(groupId);
          const description = describedGroup(group, coordinatorId);
          if (options.includeOffsets !== false) description.partitions = await this.#partitionLags(groupId, description.members);
          results.set(groupId, description);
        } catch (error) {
          failures.set(groupId, toRaftkaError(error));
        }
      }),
    );
    const ordered = groupIds.flatMap((groupId) => (results.has(groupId) ? [results.get(groupId)!] : []));
    if (failures.size > 0) throw new AdminOperationError('describeGroups', failures, ordered);
    return ordered;
  }

  /** The group's committed offsets, sorted (only `partitions` when given; -1 offsets are left out). */
  async listGroupOffsets(groupId: string, options: { partitions?: readonly TopicPartition[] } = {}): Promise<GroupOffset[]> {
    const response = await this.#withCoordinator(groupId, true, async (nodeId) => {
      const answer = await this.#cluster.call<OffsetFetchRequest, OffsetFetchResponse>(nodeId, 'RaftkaGroups', 'OffsetFetch', {
        groupId,
        topics: options.partitions === undefined ? [] : byTopic(options.partitions),
        allTopics: options.partitions === undefined,
        requireStable: false,
      });
      if (answer.errorCode !== 0) throw errorFromResponse(answer.errorCode, answer.errorMessage, `OffsetFetch for group ${groupId}`);
      return answer;
    });
    const failures = new Map<string, RaftkaError>();
    const offsets: GroupOffset[] = [];
    for (const topic of response.topics) {
      for (const partition of topic.partitions) {
        if (partition.errorCode !== 0) {
          failures.set(`${topic.name}-${partition.partitionIndex}`, errorFromResponse(partition.errorCode, partition.errorMessage, `offset of ${topic.name}-${partition.partitionIndex}`));
        } else if (partition.committedOffset >= 0) {
          offsets.push({
            topic: topic.name,
            partition: partition.partitionIndex,
            offset: partition.committedOffset,
            leaderEpoch: partition.committedLeaderEpoch,
            metadata: partition.metadata ?? '',
          });
        }
      }
    }
    offsets.sort(compareTopicPartition);
    if (failures.size > 0) throw new AdminOperationError('listGroupOffsets', failures, offsets);
    return offsets;
  }

  /**
   * Moves an inactive group's offsets for one topic; resolves with the plan (also when committed).
   * Refused with GroupNotInactiveError (NON_EMPTY_GROUP) unless the group is Empty or Dead.
   */
  async resetOffsets(request: ResetOffsetsRequest): Promise<OffsetResetPlanEntry[]> {
    validateResetTarget(request.to);
    const { group } = await this.#describeOne(request.groupId);
    const state = groupState(group.groupState);
    if (!OFFSET_RESETTABLE_STATES.includes(state)) throw new GroupNotInactiveError(request.groupId, state);

    const all = await this.#deps.partitionsOf(request.topic);
    const partitions = request.partitions === undefined ? all : [...new Set(request.partitions)].sort((a, b) => a - b);
    const missing = partitions.filter((partition) => !all.includes(partition));
    if (missing.length > 0) {
      throw new RaftkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${request.topic} has partitions 0..${all.length - 1}; there is no partition ${missing.join(', ')}`, {
        retriable: false,
      });
    }
    const targets = partitions.map((partition) => ({ topic: request.topic, partition }));
    const committed = new Map(
      (await this.listGroupOffsets(request.groupId, { partitions: targets })).map((entry) => [partitionKey(entry.topic, entry.partition), entry.offset]),
    );
    const plan = await this.#plan(targets, committed, request.to);
    if (request.dryRun !== true) await this.#commit(request.groupId, plan);
    return plan;
  }

  /** Deletes groups (each must be Empty: NON_EMPTY_GROUP otherwise; GROUP_ID_NOT_FOUND for an unknown one). */
  async deleteGroups(groupIds: readonly string[]): Promise<string[]> {
    const failures = new Map<string, RaftkaError>();
    const deleted = new Set<string>();
    await Promise.all(
      groupIds.map(async (groupId) => {
        try {
          await this.#withCoordinator(groupId, false, async (nodeId) => {
            const response = await this.#cluster.call<DeleteGroupsRequest, DeleteGroupsResponse>(nodeId, 'RaftkaGroups', 'DeleteGroups', { groupsNames: [groupId] });
            const result = response.results.find((entry) => entry.groupId === groupId);
            if (result === undefined) throw new RaftkaError('UNKNOWN_SERVER_ERROR', `the coordinator did not answer for group ${groupId}`, { retriable: false });
            if (result.errorCode !== 0) throw errorFromResponse(result.errorCode, result.errorMessage, `deleting group ${groupId}`);
          });
          deleted.add(groupId);
        } catch (error) {
          failures.set(groupId, toRaftkaError(error));
        }
      }),
    );
    const ordered = groupIds.filter((groupId) => deleted.has(groupId));
    if (failures.size > 0) throw new AdminOperationError('deleteGroups', failures, ordered);
    return ordered;
  }

  /**
   * Deletes a group's committed offsets for some partitions. Refused per partition with
   * GROUP_SUBSCRIBED_TO_TOPIC while a live member subscribes to the topic.
   */
  async deleteGroupOffsets(groupId: string, partitions: readonly TopicPartition[]): Promise<TopicPartition[]> {
    const response = await this.#withCoordinator(groupId, false, async (nodeId) => {
      const answer = await this.#cluster.call<OffsetDeleteRequest, OffsetDeleteResponse>(nodeId, 'RaftkaGroups', 'OffsetDelete', { groupId, topics: byTopic(partitions) });
      if (answer.errorCode !== 0) throw errorFromResponse(answer.errorCode, answer.errorMessage, `deleting offsets of group ${groupId}`);
      return answer;
    });
    const failures = new Map<string, RaftkaError>();
    const deleted: TopicPartition[] = [];
    for (const topic of response.topics) {
      for (const partition of topic.partitions) {
        const item = `${topic.name}-${partition.partitionIndex}`;
        if (partition.errorCode !== 0) failures.set(item, errorFromResponse(partition.errorCode, partition.errorMessage, `deleting the offset of ${item}`));
        else deleted.push({ topic: topic.name, partition: partition.partitionIndex });
      }
    }
    deleted.sort(compareTopicPartition);
    if (failures.size > 0) throw new AdminOperationError('deleteGroupOffsets', failures, deleted);
    return deleted;
  }

  // ---- internals -------------------------------------------------------------------------------

  async #describeOne(groupId: string): Promise<{ group: DescribedGroupMessage; coordinatorId: number }> {
    let coordinatorId = -1;
    const group = await this.#withCoordinator(groupId, true, async (nodeId) => {
      coordinatorId = nodeId;
      const response = await this.#cluster.call<DescribeGroupsRequest, DescribeGroupsResponse>(nodeId, 'RaftkaGroups', 'DescribeGroups', {
        groups: [groupId],
        includeAuthorizedOperations: false,
      });
      const described = response.groups.find((entry) => entry.groupId === groupId);
      if (described === undefined) throw new RaftkaError('UNKNOWN_SERVER_ERROR', `the coordinator did not describe group ${groupId}`, { retriable: false });
      if (described.errorCode !== 0) throw errorFromResponse(described.errorCode, described.errorMessage, `describing group ${groupId}`);
      return described;
    });
    return { group, coordinatorId };
  }

  /** Committed offsets joined with assignments and log end offsets, for --describe. */
  async #partitionLags(groupId: string, members: readonly GroupMember[]): Promise<GroupPartitionLag[]> {
    const committed = await this.listGroupOffsets(groupId);
    const owners = new Map<string, string>();
    for (const member of members) for (const assigned of member.assignment) owners.set(partitionKey(assigned.topic, assigned.partition), member.memberId);
    const rows = new Map<string, GroupPartitionLag>();
    const row = (tp: TopicPartition): GroupPartitionLag => {
      const key = partitionKey(tp.topic, tp.partition);
      let entry = rows.get(key);
      if (entry === undefined) {
        entry = { topic: tp.topic, partition: tp.partition, currentOffset: undefined, logEndOffset: undefined, lag: undefined, memberId: owners.get(key) };
        rows.set(key, entry);
      }
      return entry;
    };
    for (const entry of committed) row(entry).currentOffset = entry.offset;
    for (const member of members) for (const assigned of member.assignment) row(assigned);
    // A partition whose end cannot be read (topic deleted, no leader) keeps an unknown lag
    // rather than failing the whole description.
    const queries = [...rows.values()].map((entry) => ({ topic: entry.topic, partition: entry.partition, spec: 'latest' as const }));
    const ends = queries.length === 0 ? new Map<string, ListedOffset | RaftkaError>() : await this.#deps.listOffsets(queries);
    for (const [key, entry] of rows) {
      const end = ends.get(key);
      if (end !== undefined && !(end instanceof RaftkaError)) entry.logEndOffset = end.offset;
      if (entry.logEndOffset !== undefined && entry.currentOffset !== undefined) entry.lag = Math.max(0, entry.logEndOffset - entry.currentOffset);
    }
    return [...rows.values()].sort(compareTopicPartition);
  }

  async #plan(targets: readonly TopicPartition[], committed: ReadonlyMap<string, number>, to: OffsetResetTarget): Promise<OffsetResetPlanEntry[]> {
    const lookup = async (spec: 'earliest' | 'latest' | { timestamp: number }): Promise<Map<string, number>> => {
      const found = await this.#deps.listOffsets(targets.map((tp) => ({ ...tp, spec })));
      const offsets = new Map<string, number>();
      const failures = new Map<string, RaftkaError>();
      for (const tp of targets) {
        const key = partitionKey(tp.topic, tp.partition);
        const answer = found.get(key);
        if (answer === undefined || answer instanceof RaftkaError) {
          failures.set(`${tp.topic}-${tp.partition}`, answer ?? new RaftkaError('UNKNOWN_SERVER_ERROR', `no offset for ${tp.topic}-${tp.partition}`, { retriable: false }));
        } else offsets.set(key, answer.offset);
      }
      if (failures.size > 0) throw new AdminOperationError('resetOffsets', failures, []);
      return offsets;
    };
    const needsBounds = 'offset' in to || 'shiftBy' in to || 'timestamp' in to;
    const earliest = 'earliest' in to || needsBounds ? await lookup('earliest') : undefined;
    const latest = 'latest' in to || needsBounds ? await lookup('latest') : undefined;
    const byTime = 'timestamp' in to ? await lookup({ timestamp: to.timestamp }) : undefined;
    return targets.map((tp) => {
      const key = partitionKey(tp.topic, tp.partition);
      const current = committed.get(key);
      const clamp = (offset: number): number => Math.min(latest!.get(key)!, Math.max(earliest!.get(key)!, offset));
      let newOffset: number;
      if ('earliest' in to) newOffset = earliest!.get(key)!;
      else if ('latest' in to) newOffset = latest!.get(key)!;
      else if ('offset' in to) newOffset = clamp(to.offset);
      else if ('timestamp' in to) {
        // No record at or after the time: the log end, as Kafka's tool does.
        const found = byTime!.get(key)!;
        newOffset = found < 0 ? latest!.get(key)! : found;
      } else {
        if (current === undefined) {
          throw new RaftkaError('INVALID_REQUEST', `group has no committed offset for ${tp.topic}-${tp.partition} to shift; reset it with an absolute target first`, {
            retriable: false,
          });
        }
        newOffset = clamp(current + to.shiftBy);
      }
      return { topic: tp.topic, partition: tp.partition, currentOffset: current, newOffset };
    });
  }

  async #commit(groupId: string, plan: readonly OffsetResetPlanEntry[]): Promise<void> {
    if (plan.length === 0) return;
    const newOffsets = new Map(plan.map((entry) => [partitionKey(entry.topic, entry.partition), entry.newOffset]));
    const request: OffsetCommitRequest = {
      groupId,
      // Generation -1 and no member id: a commit from outside group management, which the
      // coordinator accepts only while the group has no members.
      generationIdOrMemberEpoch: -1,
      memberId: '',
      groupInstanceId: null,
      topics: byTopic(plan).map((topic) => ({
        name: topic.name,
        partitions: topic.partitionIndexes.map((partitionIndex) => ({
          partitionIndex,
          committedOffset: newOffsets.get(partitionKey(topic.name, partitionIndex))!,
          committedLeaderEpoch: -1,
          committedMetadata: '',
        })),
      })),
    };
    const response = await this.#withCoordinator(groupId, true, async (nodeId) => {
      const answer = await this.#cluster.call<OffsetCommitRequest, OffsetCommitResponse>(nodeId, 'RaftkaGroups', 'OffsetCommit', request);
      // A whole-call coordinator error shows up on every partition; surface it for rediscovery.
      const first = answer.topics[0]?.partitions[0];
      if (first !== undefined && first.errorCode !== 0) {
        const error = errorFromResponse(first.errorCode, first.errorMessage, `committing offsets of group ${groupId}`);
        if (COORDINATOR_MOVED_CODES.has(error.code) || COORDINATOR_WAIT_CODES.has(error.code)) throw error;
      }
      return answer;
    });
    const failures = new Map<string, RaftkaError>();
    for (const topic of response.topics) {
      for (const partition of topic.partitions) {
        if (partition.errorCode !== 0) {
          const item = `${topic.name}-${partition.partitionIndex}`;
          failures.set(item, errorFromResponse(partition.errorCode, partition.errorMessage, `committing the offset of ${item}`));
        }
      }
    }
    if (failures.size > 0) throw new AdminOperationError('resetOffsets', failures, []);
  }

  /** The group's coordinator, asking FindCoordinator (with backoff) when not known. */
  async #coordinator(groupId: string, deadlineMs: number): Promise<number> {
    const known = this.#coordinators.get(groupId);
    if (known !== undefined) return known;
    const nodeId = await this.#retrying(deadlineMs, () => lookUpCoordinator(this.#cluster, groupId), (error) => error.retriable);
    this.#coordinators.set(groupId, nodeId);
    return nodeId;
  }

  /**
   * Runs `call` on the group's coordinator, rediscovering it when it moved and waiting while it
   * loads, until requestTimeoutMs. `idempotent` calls are also repeated after a timeout (the
   * first attempt may or may not have been applied; applying them twice changes nothing).
   */
  async #withCoordinator<T>(groupId: string, idempotent: boolean, call: (nodeId: number) => Promise<T>): Promise<T> {
    const deadlineMs = this.#cluster.runtime.clock() + this.#deps.options.requestTimeoutMs;
    return this.#retrying(
      deadlineMs,
      async () => {
        const nodeId = await this.#coordinator(groupId, deadlineMs);
        try {
          return await call(nodeId);
        } catch (error) {
          const raftkaError = toRaftkaError(error);
          if (COORDINATOR_MOVED_CODES.has(raftkaError.code) || raftkaError.code === 'REQUEST_TIMED_OUT') this.#coordinators.delete(groupId);
          throw raftkaError;
        }
      },
      (error) =>
        COORDINATOR_MOVED_CODES.has(error.code) || COORDINATOR_WAIT_CODES.has(error.code) || (idempotent && error.code === 'REQUEST_TIMED_OUT'),
    );
  }

  /** Repeats `call` while `shouldRetry` says so, with exponential backoff, until deadlineMs. */
  async #retrying<T>(deadlineMs: number, call: () => Promise<T>, shouldRetry: (error: RaftkaError) => boolean): Promise<T> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await call();
      } catch (error) {
        const raftkaError = toRaftkaError(error);
        const delayMs = this.#backoffMs(attempt);
        if (!shouldRetry(raftkaError) || this.#cluster.closed || this.#cluster.runtime.clock() + delayMs >= deadlineMs) throw raftkaError;
        await this.#cluster.delay(delayMs);
      }
    }
  }
}

function validateResetTarget(to: OffsetResetTarget): void {
  const bad = (text: string): never => {
    throw new RaftkaError('INVALID_REQUEST', `offset reset: ${text}`, { retriable: false });
  };
  const keys = Object.keys(to).filter((key) => ['earliest', 'latest', 'offset', 'timestamp', 'shiftBy'].includes(key));
  if (keys.length !== 1) bad(`exactly one of earliest, latest, offset, timestamp, shiftBy is required, got ${keys.length === 0 ? 'none' : keys.join(', ')}`);
  if ('offset' in to && !(Number.isSafeInteger(to.offset) && to.offset >= 0)) bad(`offset must be a non-negative integer, got ${to.offset}`);
  if ('timestamp' in to && !(Number.isSafeInteger(to.timestamp) && to.timestamp >= 0)) bad(`timestamp must be a non-negative integer (ms), got ${to.timestamp}`);
  if ('shiftBy' in to && !Number.isSafeInteger(to.shiftBy)) bad(`shiftBy must be an integer, got ${to.shiftBy}`);
}

function byTopic(partitions: readonly TopicPartition[]): { name: string; partitionIndexes: number[] }[] {
  const topics = new Map<string, number[]>();
  for (const tp of partitions) {
    const list = topics.get(tp.topic) ?? [];
    if (!list.includes(tp.partition)) list.push(tp.partition);
    topics.set(tp.topic, list);
  }
  return [...topics].map(([name, partitionIndexes]) => ({ name, partitionIndexes }));
}

/** Decodes members' consumer-protocol bytes; bytes that do not decode leave the member's lists empty. */
function describedGroup(group: DescribedGroupMessage, coordinatorId: number): GroupDescription {
  const consumer = group.protocolType === 'consumer';
  return {
    groupId: group.groupId,
    state: groupState(group.groupState),
    protocolType: group.protocolType,
    protocol: group.protocolData,
    coordinatorId,
    members: group.members.map((member) => {
      let assignment: TopicPartition[] = [];
      let subscribedTopics: string[] = [];
      if (consumer && member.memberAssignment.length > 0) {
        try {
          assignment = decodeAssignment(member.memberAssignment)
            .value.partitions.map((tp) => ({ topic: tp.topic, partition: tp.partition }))
            .sort(compareTopicPartition);
        } catch {
          // Not a consumer-protocol assignment (another client's format): show no partitions.
        }
      }
      if (consumer && member.memberMetadata.length > 0) {
        try {
          subscribedTopics = [...decodeSubscription(member.memberMetadata).value.topics].sort();
        } catch {
          // As above.
        }
      }
      return {
        memberId: member.memberId,
        groupInstanceId: member.groupInstanceId ?? undefined,
        clientId: member.clientId,
        clientHost: member.clientHost,
        assignment,
        subscribedTopics,
      };
    }),
    partitions: [],
  };
}
