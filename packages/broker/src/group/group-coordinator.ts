// The consumer-group coordinator's pure state machine: Kafka's classic group protocol (JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetDelete, DeleteGroups and the read-only
// OffsetFetch, ListGroups, DescribeGroups) for the groups of ONE `__consumer_offsets` partition.
//
// Pure core (STYLE rule 1): no I/O, no timers, no clock. Every call carries `nowMs`; `step`
// returns a `GroupOutput` the driver applies in this order:
//   1. append `records` to the `__consumer_offsets` partition this coordinator serves;
//   2. only once they are durable, complete `responses` (by the driver's `requestId`);
//   3. arm one timer for `nextDeadlineMs` and call `step({ type: 'tick' }, now)` when it fires.
// JoinGroup and SyncGroup responses may be deferred: the request is parked in the member and its
// response appears in the output of a later step (another member's join, the leader's sync, a
// deadline). Every request gets exactly one response.
// If an append fails, this node has lost the partition (the only way an acks=all append to our
// own leader fails for long): the driver drops the coordinator, answers NOT_COORDINATOR, and the
// new leader rebuilds everything with `GroupCoordinator.loadFrom` from what was persisted.
// State therefore changes in memory before the append is durable; a read (OffsetFetch) in that
// window may see a commit whose append is still in flight (Kafka keeps such commits "pending"
// and out of reads until the append completes; this core does not yet).
//
// Group states (Kafka's GroupState) and the only transitions allowed (checked in `transition`):
//   Empty               -> PreparingRebalance (a member joins), Dead (DeleteGroups)
//   PreparingRebalance  -> CompletingRebalance (join completes with members),
//                          Empty (join completes with none), Dead
//   CompletingRebalance -> Stable (the leader's SyncGroup), PreparingRebalance (a member joins,
//                          leaves, fails, or misses the sync deadline), Dead
//   Stable              -> PreparingRebalance (join of a new member, rejoin of the leader or of a
//                          member with new metadata, leave, session expiry), Dead
//   Dead                -> (none: the group is gone from the coordinator)
//
// Rules taken from Kafka's GroupCoordinator / GroupMetadataManager (classic protocol):
//   - KIP-394: a dynamic member joining with an empty member id gets MEMBER_ID_REQUIRED and an id;
//     it is "pending" until it joins again with that id (or its session times out).
//   - KIP-345 static membership: a member with group.instance.id that rejoins with a new member id
//     replaces the old one (whose parked requests get FENCED_INSTANCE_ID). In a Stable group whose
//     selected protocol and the member's metadata are unchanged, it keeps its assignment and the
//     group does not rebalance; the new member id is persisted at once. Anywhere else (or with
//     changed metadata) the replacement joins a rebalance.
//   - A join completes when every member has rejoined and no pending member remains, or at the
//     rebalance timeout (the largest max.poll.interval.ms of the members), which removes whoever
//     did not rejoin. The first rebalance of an Empty group waits group.initial.rebalance.delay.ms,
//     extended by that much (within the rebalance timeout) while new members keep arriving.
//   - After a join, members that do not send SyncGroup within the rebalance timeout are removed
//     and the group rebalances (Kafka's pending-sync members).
//   - A member's session expires when it has not heartbeated (or joined, synced, committed) for
//     session.timeout.ms, except while a join or sync request of it is parked here.
//   - OffsetCommit: accepted from a member of the current generation (also during
//     PreparingRebalance, so consumers can commit in onPartitionsRevoked); from a "simple" client
//     (generation -1) only while the group is Empty; REBALANCE_IN_PROGRESS in CompletingRebalance.

import { assertNever, invariant, RaftkaError, type ErrorCodeName } from '@raftka/protocol';
import { CONSUMER_PROTOCOL_TYPE, decodeSubscriptionTopics } from './consumer-protocol.js';
import {
  decodeGroupMetadataValue,
  decodeGroupRecordKey,
  decodeOffsetCommitValue,
  groupMetadataRecord,
  NO_LEADER_EPOCH,
  offsetCommitRecord,
  type GroupMetadataValue,
  type GroupRecord,
  type OffsetCommitValue,
} from './group-records.js';

// ---- limits and defaults (Kafka's broker defaults) ----

export const GROUP_MIN_SESSION_TIMEOUT_MS_DEFAULT = 6_000;
export const GROUP_MAX_SESSION_TIMEOUT_MS_DEFAULT = 1_800_000;
export const GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT = 3_000;
/** Kafka's default is Int32 max: effectively unbounded unless configured. */
export const GROUP_MAX_SIZE_DEFAULT = 2_147_483_647;
export const OFFSET_METADATA_MAX_BYTES_DEFAULT = 4_096;
/** offsets.retention.ms: 7 days, Kafka's default since 2.0 (KIP-186). */
export const OFFSETS_RETENTION_MS_DEFAULT = 7 * 24 * 60 * 60 * 1_000;
/**
 * One tick may make further deadlines due at the same instant (a zero initial delay, a removal
 * that completes a join); it runs at most this many rounds and reports anything left through
 * `nextDeadlineMs <= now`, so a driver bug can never spin the core forever.
 */
export const DEADLINE_ROUNDS_PER_STEP_MAX = 64;
/** The member id of a member that does not know its id yet (Kafka's UNKNOWN_MEMBER_ID = ""). */
export const NO_MEMBER_ID = '';
/** The generation a client outside group management commits with. */
export const NO_GENERATION_ID = -1;

export type GroupStateName = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

export interface GroupCoordinatorOptions {
  /** group.min.session.timeout.ms */
  groupMinSessionTimeoutMs?: number;
  /** group.max.session.timeout.ms */
  groupMaxSessionTimeoutMs?: number;
  /** group.initial.rebalance.delay.ms */
  groupInitialRebalanceDelayMs?: number;
  /** group.max.size */
  groupMaxSize?: number;
  /** offset.metadata.max.bytes */
  offsetMetadataMaxBytes?: number;
  /** offsets.retention.ms (see the `expire-offsets` input) */
  offsetsRetentionMs?: number;
  /**
   * Makes a fresh member id (Kafka: clientId + "-" + UUID). Injected so the core stays
   * deterministic; it must never return an id in use, including ids loaded from the log.
   */
  newMemberId: (clientId: string) => string;
}

interface ResolvedOptions {
  groupMinSessionTimeoutMs: number;
  groupMaxSessionTimeoutMs: number;
  groupInitialRebalanceDelayMs: number;
  groupMaxSize: number;
  offsetMetadataMaxBytes: number;
  offsetsRetentionMs: number;
  newMemberId: (clientId: string) => string;
}

// ---- requests ----

export interface GroupProtocol {
  name: string;
  metadata: Buffer;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface JoinGroupInput {
  type: 'join';
  requestId: number;
  groupId: string;
  /** NO_MEMBER_ID on the first join. */
  memberId: string;
  groupInstanceId?: string | undefined;
  protocolType: string;
  /** In the member's order of preference. */
  protocols: GroupProtocol[];
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  clientId: string;
  clientHost: string;
}

export interface SyncGroupInput {
  type: 'sync';
  requestId: number;
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId?: string | undefined;
  protocolType?: string | undefined;
  protocolName?: string | undefined;
  /** Non-empty only from the leader. */
  assignments: { memberId: string; assignment: Buffer }[];
}

export interface HeartbeatInput {
  type: 'heartbeat';
  requestId: number;
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId?: string | undefined;
}

export interface LeaveGroupInput {
  type: 'leave';
  requestId: number;
  groupId: string;
  /** KIP-345 batch leave: by member id, or by instance id with memberId = NO_MEMBER_ID. */
  members: { memberId: string; groupInstanceId?: string | undefined }[];
}

export interface OffsetCommitInput {
  type: 'commit-offsets';
  requestId: number;
  groupId: string;
  /** NO_GENERATION_ID for a client that does not use group management. */
  generationId: number;
  memberId: string;
  groupInstanceId?: string | undefined;
  offsets: { topic: string; partition: number; offset: number; leaderEpoch?: number | undefined; metadata?: string | undefined }[];
}

export interface OffsetDeleteInput {
  type: 'delete-offsets';
  requestId: number;
  groupId: string;
  partitions: TopicPartition[];
}

export interface DeleteGroupsInput {
  type: 'delete-groups';
  requestId: number;
  groupIds: string[];
}

export type GroupInput =
  | JoinGroupInput
  | SyncGroupInput
  | HeartbeatInput
  | LeaveGroupInput
  | OffsetCommitInput
  | OffsetDeleteInput
  | DeleteGroupsInput
  /** Time passed: act on due deadlines (session, rebalance, sync, initial delay). */
  | { type: 'tick' }
  /**
   * Offset retention (KIP-211), sent by the driver every offsets.retention.check.interval.ms:
   * drops offsets past offsets.retention.ms and forgets Empty groups left without offsets.
   */
  | { type: 'expire-offsets' };

// ---- responses ----

export interface JoinGroupMember {
  memberId: string;
  groupInstanceId: string | undefined;
  metadata: Buffer;
}

export interface JoinGroupResponse {
  api: 'join';
  errorCode: ErrorCodeName;
  generationId: number;
  protocolType: string | undefined;
  protocolName: string | undefined;
  leaderId: string;
  /** The member's id (the new one with MEMBER_ID_REQUIRED). */
  memberId: string;
  /** Filled for the leader only: every member with its metadata for the selected protocol. */
  members: JoinGroupMember[];
  /** KIP-345: a rejoined static leader learns the members but must not reassign. */
  skipAssignment: boolean;
}

export interface SyncGroupResponse {
  api: 'sync';
  errorCode: ErrorCodeName;
  protocolType: string | undefined;
  protocolName: string | undefined;
  assignment: Buffer;
}

export interface HeartbeatResponse {
  api: 'heartbeat';
  errorCode: ErrorCodeName;
}

export interface LeaveGroupResponse {
  api: 'leave';
  errorCode: ErrorCodeName;
  members: { memberId: string; groupInstanceId: string | undefined; errorCode: ErrorCodeName }[];
}

export interface OffsetCommitResponse {
  api: 'commit-offsets';
  partitions: { topic: string; partition: number; errorCode: ErrorCodeName }[];
}

export interface OffsetDeleteResponse {
  api: 'delete-offsets';
  errorCode: ErrorCodeName;
  partitions: { topic: string; partition: number; errorCode: ErrorCodeName }[];
}

export interface DeleteGroupsResponse {
  api: 'delete-groups';
  results: { groupId: string; errorCode: ErrorCodeName }[];
}

export type GroupResponse =
  | JoinGroupResponse
  | SyncGroupResponse
  | HeartbeatResponse
  | LeaveGroupResponse
  | OffsetCommitResponse
  | OffsetDeleteResponse
  | DeleteGroupsResponse;

export interface CompletedResponse {
  requestId: number;
  response: GroupResponse;
}

export interface GroupOutput {
  /** Append first (acks=all); complete `responses` only once these are durable. */
  records: GroupRecord[];
  responses: CompletedResponse[];
  /** When to `tick` next; undefined when nothing is scheduled. */
  nextDeadlineMs: number | undefined;
}

// ---- read-only views ----

export interface GroupListing {
  groupId: string;
  protocolType: string;
  state: GroupStateName;
}

export interface GroupMemberDescription {
  memberId: string;
  groupInstanceId: string | undefined;
  clientId: string;
  clientHost: string;
  /** Metadata and assignment are shown only while Stable (as Kafka does). */
  metadata: Buffer;
  assignment: Buffer;
}

export interface GroupDescription {
  groupId: string;
  errorCode: ErrorCodeName;
  state: GroupStateName;
  protocolType: string;
  /** Empty unless Stable. */
  protocolName: string;
  generationId: number;
  leaderId: string;
  members: GroupMemberDescription[];
}

export interface FetchedOffset {
  topic: string;
  partition: number;
  /** -1 when the group has no committed offset for the partition. */
  offset: number;
  leaderEpoch: number;
  metadata: string;
  errorCode: ErrorCodeName;
}

// ---- internal state ----

type GroupPhase =
  | { state: 'Empty' }
  | {
      state: 'PreparingRebalance';
      joinDeadlineMs: number;
      /** Set for the first rebalance out of Empty (group.initial.rebalance.delay.ms). */
      initialDelay: { remainingMs: number; newMemberAdded: boolean } | undefined;
    }
  | { state: 'CompletingRebalance'; syncDeadlineMs: number }
  /** syncDeadlineMs is set while some member of the generation has not sent SyncGroup. */
  | { state: 'Stable'; syncDeadlineMs: number | undefined }
  | { state: 'Dead' };

interface Member {
  readonly memberId: string;
  readonly groupInstanceId: string | undefined;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: GroupProtocol[];
  assignment: Buffer;
  /** A JoinGroup of this member parked until the join completes. */
  joinRequestId: number | undefined;
  /** A SyncGroup of this member parked until the leader's assignment arrives. */
  syncRequestId: number | undefined;
  heartbeatDeadlineMs: number;
}

interface Group {
  readonly groupId: string;
  phase: GroupPhase;
  // Invariant: only grows (each completed join adds one).
  generationId: number;
  protocolType: string | undefined;
  /** The protocol selected for the current generation; undefined when Empty or before gen 1. */
  protocolName: string | undefined;
  // Invariant: undefined iff `members` is empty; otherwise a key of `members`.
  leaderId: string | undefined;
  /** In join order (Map order); the first member becomes leader when the leader leaves. */
  members: Map<string, Member>;
  // Invariant: maps every static member's instance id to its member id, and nothing else.
  staticMembers: Map<string, string>;
  /** KIP-394: ids handed out with MEMBER_ID_REQUIRED, to their expiry deadline. */
  pendingMembers: Map<string, number>;
  /** Members of the current generation that have not sent SyncGroup yet. */
  pendingSyncMembers: Set<string>;
  stateTimestampMs: number;
  offsets: Map<string, Map<number, OffsetCommitValue>>;
}

const EMPTY_BUFFER = Buffer.alloc(0);

const allowedTransitions: Record<GroupStateName, readonly GroupStateName[]> = {
  Empty: ['PreparingRebalance', 'Dead'],
  PreparingRebalance: ['CompletingRebalance', 'Empty', 'Dead'],
  CompletingRebalance: ['Stable', 'PreparingRebalance', 'Dead'],
  Stable: ['PreparingRebalance', 'Dead'],
  Dead: [],
};

function protocolsEqual(a: readonly GroupProtocol[], b: readonly GroupProtocol[]): boolean {
  return a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.metadata.equals(b[i]!.metadata));
}

/**
 * Does a rejoining static member subscribe, under the group's selected protocol, to what it did
 * before? For consumers only the topics count: a restarted consumer's subscription also carries
 * the partitions it owned and its generation (KIP-429/KIP-792), which differ after every restart
 * and must not force a rebalance. (Kafka compares only the selected protocol and so misses a
 * changed topic list.) Other protocol types compare the metadata bytes.
 */
function sameSubscription(protocolType: string, protocolName: string | undefined, before: readonly GroupProtocol[], after: readonly GroupProtocol[]): boolean {
  const old = before.find((p) => p.name === protocolName)?.metadata;
  const fresh = after.find((p) => p.name === protocolName)?.metadata;
  if (old === undefined || fresh === undefined) return false;
  if (protocolType !== CONSUMER_PROTOCOL_TYPE) return old.equals(fresh);
  const topicsBefore = decodeSubscriptionTopics(old);
  const topicsAfter = decodeSubscriptionTopics(fresh);
  if (topicsBefore === undefined || topicsAfter === undefined) return old.equals(fresh);
  const sortedAfter = [...topicsAfter].sort();
  return topicsBefore.length === topicsAfter.length && [...topicsBefore].sort().every((topic, i) => topic === sortedAfter[i]);
}

function metadataFor(member: Member, protocolName: string | undefined): Buffer {
  if (protocolName === undefined) return EMPTY_BUFFER;
  return member.protocols.find((p) => p.name === protocolName)?.metadata ?? EMPTY_BUFFER;
}

function newGroup(groupId: string, nowMs: number): Group {
  return {
    groupId,
    phase: { state: 'Empty' },
    generationId: 0,
    protocolType: undefined,
    protocolName: undefined,
    leaderId: undefined,
    members: new Map(),
    staticMembers: new Map(),
    pendingMembers: new Map(),
    pendingSyncMembers: new Set(),
    stateTimestampMs: nowMs,
    offsets: new Map(),
  };
}

interface DeadlineEntry {
  deadlineMs: number;
  groupId: string;
}

/** Stale heap entries tolerated beyond twice the live ones before a rebuild. */
const HEAP_SLACK_ENTRIES = 1_024;

function heapPush(heap: DeadlineEntry[], entry: DeadlineEntry): void {
  heap.push(entry);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]!.deadlineMs <= heap[i]!.deadlineMs) break;
    [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
    i = parent;
  }
}

function heapPop(heap: DeadlineEntry[]): void {
  const last = heap.pop();
  if (last === undefined || heap.length === 0) return;
  heap[0] = last;
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let smallest = i;
    if (left < heap.length && heap[left]!.deadlineMs < heap[smallest]!.deadlineMs) smallest = left;
    if (right < heap.length && heap[right]!.deadlineMs < heap[smallest]!.deadlineMs) smallest = right;
    if (smallest === i) return;
    [heap[smallest], heap[i]] = [heap[i]!, heap[smallest]!];
    i = smallest;
  }
}

export class GroupCoordinator {
  private readonly options: ResolvedOptions;
  private readonly groups = new Map<string, Group>();
  // Invariant: after every step, holds groupNextDeadlineMs(g) for every group g that has one.
  // Only an input's own groups and due groups can change, so a step refreshes just those
  // instead of scanning every member of every group.
  private readonly groupDeadlines = new Map<string, number>();
  // A min-heap over (deadline, group) with lazy deletion: an entry is live only while it equals
  // the group's entry in `groupDeadlines`, so updates push and never search. It is rebuilt from
  // `groupDeadlines` when stale entries outnumber live ones, which bounds its size.
  private deadlineHeap: DeadlineEntry[] = [];
  private lastNowMs = Number.NEGATIVE_INFINITY;
  // The output being collected by the current step.
  private records: GroupRecord[] = [];
  private responses: CompletedResponse[] = [];

  constructor(options: GroupCoordinatorOptions) {
    const resolved: ResolvedOptions = {
      groupMinSessionTimeoutMs: options.groupMinSessionTimeoutMs ?? GROUP_MIN_SESSION_TIMEOUT_MS_DEFAULT,
      groupMaxSessionTimeoutMs: options.groupMaxSessionTimeoutMs ?? GROUP_MAX_SESSION_TIMEOUT_MS_DEFAULT,
      groupInitialRebalanceDelayMs: options.groupInitialRebalanceDelayMs ?? GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT,
      groupMaxSize: options.groupMaxSize ?? GROUP_MAX_SIZE_DEFAULT,
      offsetMetadataMaxBytes: options.offsetMetadataMaxBytes ?? OFFSET_METADATA_MAX_BYTES_DEFAULT,
      offsetsRetentionMs: options.offsetsRetentionMs ?? OFFSETS_RETENTION_MS_DEFAULT,
      newMemberId: options.newMemberId,
    };
    if (resolved.groupMinSessionTimeoutMs < 0 || resolved.groupMinSessionTimeoutMs > resolved.groupMaxSessionTimeoutMs) {
      throw new RaftkaError(
        'INVALID_CONFIG',
        `group.min.session.timeout.ms (${resolved.groupMinSessionTimeoutMs}) must be between 0 and group.max.session.timeout.ms (${resolved.groupMaxSessionTimeoutMs})`,
      );
    }
    if (resolved.groupInitialRebalanceDelayMs < 0) {
      throw new RaftkaError('INVALID_CONFIG', `group.initial.rebalance.delay.ms must be >= 0, got ${resolved.groupInitialRebalanceDelayMs}`);
    }
    if (!Number.isInteger(resolved.groupMaxSize) || resolved.groupMaxSize < 1) {
      throw new RaftkaError('INVALID_CONFIG', `group.max.size must be a positive integer, got ${resolved.groupMaxSize}`);
    }
    if (resolved.offsetsRetentionMs <= 0) {
      throw new RaftkaError('INVALID_CONFIG', `offsets.retention.ms must be > 0, got ${resolved.offsetsRetentionMs}`);
    }
    if (resolved.offsetMetadataMaxBytes < 0) {
      throw new RaftkaError('INVALID_CONFIG', `offset.metadata.max.bytes must be >= 0, got ${resolved.offsetMetadataMaxBytes}`);
    }
    this.options = resolved;
  }

  /**
   * Rebuilds the coordinator of one `__consumer_offsets` partition from its records in log order
   * (the newest value of a key wins, a tombstone deletes it). Groups with members come back
   * Stable at their last persisted generation with fresh session deadlines from `nowMs`, so their
   * members carry on heartbeating; groups with only offsets come back Empty.
   */
  static loadFrom(records: Iterable<GroupRecord>, options: GroupCoordinatorOptions, nowMs: number): GroupCoordinator {
    const coordinator = new GroupCoordinator(options);
    const metadata = new Map<string, GroupMetadataValue>();
    const offsets = new Map<string, Map<string, Map<number, OffsetCommitValue>>>();
    for (const record of records) {
      const key = decodeGroupRecordKey(record.key);
      switch (key.type) {
        case 'group-metadata':
          if (record.value === null) metadata.delete(key.groupId);
          else metadata.set(key.groupId, decodeGroupMetadataValue(record.value));
          break;
        case 'offset-commit': {
          let byTopic = offsets.get(key.groupId);
          if (record.value === null) {
            byTopic?.get(key.topic)?.delete(key.partition);
            if (byTopic?.get(key.topic)?.size === 0) byTopic.delete(key.topic);
            if (byTopic?.size === 0) offsets.delete(key.groupId);
            break;
          }
          if (byTopic === undefined) offsets.set(key.groupId, (byTopic = new Map()));
          let byPartition = byTopic.get(key.topic);
          if (byPartition === undefined) byTopic.set(key.topic, (byPartition = new Map()));
          byPartition.set(key.partition, decodeOffsetCommitValue(record.value));
          break;
        }
        default:
          assertNever(key, 'record key');
      }
    }
    // Groups are built directly in their loaded state (not through `transition`): loading is not a
    // state change of a live group but the reconstruction of one.
    for (const groupId of new Set([...metadata.keys(), ...offsets.keys()])) {
      const group = newGroup(groupId, nowMs);
      const value = metadata.get(groupId);
      if (value !== undefined) {
        group.generationId = value.generationId;
        group.protocolType = value.protocolType === '' ? undefined : value.protocolType;
        group.protocolName = value.protocolName;
        group.stateTimestampMs = value.currentStateTimestampMs;
        for (const m of value.members) {
          if (value.protocolName === undefined) {
            throw new RaftkaError('STORAGE_CORRUPTED', `group ${groupId} has members but no selected protocol in __consumer_offsets`);
          }
          group.members.set(m.memberId, {
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            clientId: m.clientId,
            clientHost: m.clientHost,
            sessionTimeoutMs: m.sessionTimeoutMs,
            rebalanceTimeoutMs: m.rebalanceTimeoutMs,
            protocolType: value.protocolType,
            protocols: [{ name: value.protocolName, metadata: m.subscription }],
            assignment: m.assignment,
            joinRequestId: undefined,
            syncRequestId: undefined,
            heartbeatDeadlineMs: nowMs + m.sessionTimeoutMs,
          });
          if (m.groupInstanceId !== undefined) group.staticMembers.set(m.groupInstanceId, m.memberId);
        }
        if (group.members.size > 0) {
          group.leaderId =
            value.leaderId !== undefined && group.members.has(value.leaderId) ? value.leaderId : group.members.keys().next().value;
          group.phase = { state: 'Stable', syncDeadlineMs: undefined };
        }
      }
      group.offsets = offsets.get(groupId) ?? new Map();
      coordinator.groups.set(groupId, group);
    }
    for (const groupId of coordinator.groups.keys()) coordinator.refreshDeadline(groupId);
    coordinator.lastNowMs = nowMs;
    return coordinator;
  }

  /** Feeds one input at time `nowMs` (never earlier than the previous step's). */
  step(input: GroupInput, nowMs: number): GroupOutput {
    invariant(nowMs >= this.lastNowMs, () => `time went backwards: step at ${nowMs} after ${this.lastNowMs}`);
    this.lastNowMs = nowMs;
    this.records = [];
    this.responses = [];
    // Deadlines that passed before this input act first, as a timer would have.
    this.runDeadlines(nowMs);
    switch (input.type) {
      case 'tick':
        break;
      case 'expire-offsets':
        this.expireOffsets(nowMs);
        break;
      case 'join':
        this.handleJoin(input, nowMs);
        break;
      case 'sync':
        this.handleSync(input, nowMs);
        break;
      case 'heartbeat':
        this.handleHeartbeat(input, nowMs);
        break;
      case 'leave':
        this.handleLeave(input, nowMs);
        break;
      case 'commit-offsets':
        this.handleCommit(input, nowMs);
        break;
      case 'delete-offsets':
        this.handleDeleteOffsets(input);
        break;
      case 'delete-groups':
        this.handleDeleteGroups(input, nowMs);
        break;
      default:
        assertNever(input, 'group input');
    }
    if (input.type === 'delete-groups') for (const groupId of input.groupIds) this.refreshDeadline(groupId);
    else if (input.type !== 'tick' && input.type !== 'expire-offsets') this.refreshDeadline(input.groupId);
    // An input may make a deadline due at once (a zero initial rebalance delay).
    this.runDeadlines(nowMs);
    const output: GroupOutput = { records: this.records, responses: this.responses, nextDeadlineMs: this.nextDeadlineMs() };
    this.records = [];
    this.responses = [];
    return output;
  }

  /** The earliest moment something is due, or undefined. */
  nextDeadlineMs(): number | undefined {
    this.dropStaleHeapTop();
    return this.deadlineHeap[0]?.deadlineMs;
  }

  private isLive(entry: DeadlineEntry): boolean {
    return this.groupDeadlines.get(entry.groupId) === entry.deadlineMs;
  }

  private dropStaleHeapTop(): void {
    while (this.deadlineHeap.length > 0 && !this.isLive(this.deadlineHeap[0]!)) heapPop(this.deadlineHeap);
  }

  /** The earliest deadline of one group (pending ids, sessions, join or sync deadline). */
  private groupNextDeadlineMs(group: Group): number | undefined {
    let next: number | undefined;
    const consider = (deadlineMs: number | undefined): void => {
      if (deadlineMs !== undefined && (next === undefined || deadlineMs < next)) next = deadlineMs;
    };
    for (const deadlineMs of group.pendingMembers.values()) consider(deadlineMs);
    for (const member of group.members.values()) {
      if (this.sessionCounts(member)) consider(member.heartbeatDeadlineMs);
    }
    const phase = group.phase;
    switch (phase.state) {
      case 'PreparingRebalance':
        consider(phase.joinDeadlineMs);
        break;
      case 'CompletingRebalance':
      case 'Stable':
        consider(phase.syncDeadlineMs);
        break;
      case 'Empty':
      case 'Dead':
        break;
      default:
        assertNever(phase, 'group phase');
    }
    return next;
  }

  /** Recomputes the cached deadline of a group an input or a deadline just touched. */
  private refreshDeadline(groupId: string): void {
    const group = this.groups.get(groupId);
    const next = group === undefined ? undefined : this.groupNextDeadlineMs(group);
    if (next === this.groupDeadlines.get(groupId)) return;
    if (next === undefined) {
      this.groupDeadlines.delete(groupId);
      return;
    }
    this.groupDeadlines.set(groupId, next);
    heapPush(this.deadlineHeap, { deadlineMs: next, groupId });
    if (this.deadlineHeap.length > 2 * this.groupDeadlines.size + HEAP_SLACK_ENTRIES) {
      this.deadlineHeap = [];
      for (const [id, deadlineMs] of this.groupDeadlines) heapPush(this.deadlineHeap, { deadlineMs, groupId: id });
    }
  }

  /**
   * Checks every structural invariant of every group and throws InvariantViolation on the first
   * broken one. Cheap enough for tests and simulations to call after every step.
   */
  assertInvariants(): void {
    for (const groupId of this.groupDeadlines.keys()) invariant(this.groups.has(groupId), () => `deadline kept for missing group ${groupId}`);
    const live = new Set(this.deadlineHeap.filter((e) => this.isLive(e)).map((e) => e.groupId));
    invariant(live.size === this.groupDeadlines.size, () => `deadline heap holds ${live.size} live groups, expected ${this.groupDeadlines.size}`);
    for (const group of this.groups.values()) {
      const id = group.groupId;
      const state = group.phase.state;
      invariant(
        this.groupDeadlines.get(id) === this.groupNextDeadlineMs(group),
        () => `group ${id}: cached deadline ${this.groupDeadlines.get(id)} != ${this.groupNextDeadlineMs(group)}`,
      );
      invariant(state !== 'Dead', () => `dead group ${id} still held`);
      invariant((group.leaderId === undefined) === (group.members.size === 0), () => `group ${id}: leader ${group.leaderId} with ${group.members.size} members`);
      invariant(group.leaderId === undefined || group.members.has(group.leaderId), () => `group ${id}: leader ${group.leaderId} is not a member`);
      invariant(state !== 'Empty' || group.members.size === 0, () => `group ${id} is Empty with members`);
      invariant(
        (state !== 'CompletingRebalance' && state !== 'Stable') || group.members.size > 0,
        () => `group ${id} is ${state} without members`,
      );
      for (const [instanceId, memberId] of group.staticMembers) {
        invariant(group.members.get(memberId)?.groupInstanceId === instanceId, () => `group ${id}: instance ${instanceId} maps to ${memberId}`);
      }
      for (const member of group.members.values()) {
        if (member.groupInstanceId !== undefined) {
          invariant(group.staticMembers.get(member.groupInstanceId) === member.memberId, () => `group ${id}: static member ${member.memberId} not mapped`);
        }
        invariant(member.joinRequestId === undefined || state === 'PreparingRebalance', () => `group ${id}: join parked in ${state}`);
        invariant(member.syncRequestId === undefined || state === 'CompletingRebalance', () => `group ${id}: sync parked in ${state}`);
      }
      for (const memberId of group.pendingSyncMembers) {
        invariant(group.members.has(memberId), () => `group ${id}: pending-sync ${memberId} is not a member`);
      }
    }
  }

  // ---- read-only queries ----

  /** ListGroups (KIP-518: optionally only groups in the given states). */
  listGroups(states?: readonly GroupStateName[]): GroupListing[] {
    const out: GroupListing[] = [];
    for (const group of this.groups.values()) {
      if (states !== undefined && states.length > 0 && !states.includes(group.phase.state)) continue;
      out.push({ groupId: group.groupId, protocolType: group.protocolType ?? '', state: group.phase.state });
    }
    return out;
  }

  /** DescribeGroups; an unknown group is described as Dead with no members, as Kafka does. */
  describeGroups(groupIds: readonly string[]): GroupDescription[] {
    return groupIds.map((groupId) => {
      const group = this.groups.get(groupId);
      if (group === undefined) {
        return {
          groupId,
          errorCode: groupId === '' ? 'INVALID_GROUP_ID' : 'NONE',
          state: 'Dead',
          protocolType: '',
          protocolName: '',
          generationId: -1,
          leaderId: '',
          members: [],
        };
      }
      const stable = group.phase.state === 'Stable';
      return {
        groupId,
        errorCode: 'NONE',
        state: group.phase.state,
        protocolType: group.protocolType ?? '',
        protocolName: stable ? (group.protocolName ?? '') : '',
        generationId: group.generationId,
        leaderId: group.leaderId ?? '',
        members: [...group.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          metadata: stable ? metadataFor(m, group.protocolName) : EMPTY_BUFFER,
          assignment: stable ? m.assignment : EMPTY_BUFFER,
        })),
      };
    });
  }

  /** OffsetFetch: the given partitions (offset -1 where none), or every committed one. */
  fetchOffsets(groupId: string, partitions?: readonly TopicPartition[]): FetchedOffset[] {
    const group = this.groups.get(groupId);
    const found = (topic: string, partition: number): FetchedOffset => {
      const value = group?.offsets.get(topic)?.get(partition);
      return value === undefined
        ? { topic, partition, offset: -1, leaderEpoch: NO_LEADER_EPOCH, metadata: '', errorCode: 'NONE' }
        : { topic, partition, offset: value.offset, leaderEpoch: value.leaderEpoch, metadata: value.metadata, errorCode: 'NONE' };
    };
    if (partitions !== undefined) return partitions.map((tp) => found(tp.topic, tp.partition));
    const out: FetchedOffset[] = [];
    for (const [topic, byPartition] of group?.offsets ?? []) {
      for (const partition of byPartition.keys()) out.push(found(topic, partition));
    }
    return out;
  }

  // ---- JoinGroup ----

  private handleJoin(input: JoinGroupInput, nowMs: number): void {
    const fail = (errorCode: ErrorCodeName, memberId = input.memberId): void =>
      this.respond(input.requestId, {
        api: 'join',
        errorCode,
        generationId: -1,
        protocolType: undefined,
        protocolName: undefined,
        leaderId: '',
        memberId,
        members: [],
        skipAssignment: false,
      });
    if (input.groupId === '') return fail('INVALID_GROUP_ID');
    if (input.sessionTimeoutMs < this.options.groupMinSessionTimeoutMs || input.sessionTimeoutMs > this.options.groupMaxSessionTimeoutMs) {
      return fail('INVALID_SESSION_TIMEOUT');
    }
    const existing = this.groups.get(input.groupId);
    if (existing === undefined && input.memberId !== NO_MEMBER_ID) return fail('UNKNOWN_MEMBER_ID');
    const group = existing ?? newGroup(input.groupId, nowMs);
    if (group.phase.state === 'Dead') return fail('COORDINATOR_NOT_AVAILABLE');
    if (!this.supportsProtocols(group, input.protocolType, input.protocols)) return fail('INCONSISTENT_GROUP_PROTOCOL');
    const knownMember =
      group.members.has(input.memberId) ||
      group.pendingMembers.has(input.memberId) ||
      (input.groupInstanceId !== undefined && group.staticMembers.has(input.groupInstanceId));
    if (!knownMember && group.members.size + group.pendingMembers.size >= this.options.groupMaxSize) {
      return fail('GROUP_MAX_SIZE_REACHED');
    }
    if (existing === undefined) this.groups.set(group.groupId, group);

    if (input.memberId === NO_MEMBER_ID) {
      const newMemberId = this.options.newMemberId(input.clientId);
      invariant(
        !group.members.has(newMemberId) && !group.pendingMembers.has(newMemberId),
        () => `newMemberId returned ${newMemberId}, which group ${group.groupId} already uses`,
      );
      if (input.groupInstanceId !== undefined) {
        if (group.staticMembers.has(input.groupInstanceId)) {
          this.replaceStaticMember(group, input, newMemberId, nowMs);
        } else {
          this.addMemberAndRebalance(group, input, newMemberId, nowMs);
        }
        return;
      }
      // KIP-394: hand out the id first; the member becomes part of the group when it joins with
      // it, so a client that crashes between the two leaves only a pending id that expires.
      group.pendingMembers.set(newMemberId, nowMs + input.sessionTimeoutMs);
      return fail('MEMBER_ID_REQUIRED', newMemberId);
    }

    if (group.pendingMembers.has(input.memberId)) {
      group.pendingMembers.delete(input.memberId);
      this.addMemberAndRebalance(group, input, input.memberId, nowMs);
      return;
    }
    const error = this.validateMember(group, input.memberId, input.groupInstanceId);
    if (error !== undefined) return fail(error);
    const member = group.members.get(input.memberId);
    invariant(member !== undefined, 'validated member exists');
    const phase = group.phase;
    switch (phase.state) {
      case 'PreparingRebalance':
        this.updateMemberAndRebalance(group, member, input, nowMs);
        return;
      case 'CompletingRebalance':
        if (protocolsEqual(member.protocols, input.protocols)) {
          // A repeated join (its response was lost): answer with the generation again.
          this.touchSession(member, nowMs);
          this.respond(input.requestId, this.joinResponse(group, member, false));
        } else {
          this.updateMemberAndRebalance(group, member, input, nowMs);
        }
        return;
      case 'Stable':
        // The leader's rejoin always rebalances: it is how a leader asks for a new assignment
        // (e.g. after the topics its members subscribe to changed).
        if (group.leaderId === member.memberId || !protocolsEqual(member.protocols, input.protocols)) {
          this.updateMemberAndRebalance(group, member, input, nowMs);
        } else {
          this.touchSession(member, nowMs);
          this.respond(input.requestId, this.joinResponse(group, member, false));
        }
        return;
      case 'Empty':
        invariant(false, `group ${group.groupId} is Empty but has member ${member.memberId}`);
        return;
      default:
        assertNever(phase, 'group phase');
    }
  }

  private addMemberAndRebalance(group: Group, input: JoinGroupInput, memberId: string, nowMs: number): void {
    if (group.members.size === 0) group.protocolType = input.protocolType;
    const member: Member = {
      memberId,
      groupInstanceId: input.groupInstanceId,
      clientId: input.clientId,
      clientHost: input.clientHost,
      sessionTimeoutMs: input.sessionTimeoutMs,
      rebalanceTimeoutMs: input.rebalanceTimeoutMs,
      protocolType: input.protocolType,
      protocols: input.protocols,
      assignment: EMPTY_BUFFER,
      joinRequestId: input.requestId,
      syncRequestId: undefined,
      heartbeatDeadlineMs: nowMs + input.sessionTimeoutMs,
    };
    group.members.set(memberId, member);
    if (input.groupInstanceId !== undefined) group.staticMembers.set(input.groupInstanceId, memberId);
    group.leaderId ??= memberId;
    if (group.phase.state === 'PreparingRebalance') {
      if (group.phase.initialDelay !== undefined) group.phase.initialDelay.newMemberAdded = true;
      this.maybeCompleteJoin(group, nowMs);
    } else {
      this.maybePrepareRebalance(group, nowMs);
    }
  }

  private updateMemberAndRebalance(group: Group, member: Member, input: JoinGroupInput, nowMs: number): void {
    if (member.joinRequestId !== undefined && member.joinRequestId !== input.requestId) {
      // The client gave up on its earlier join and sent another; only the newest is answered
      // with the join result.
      this.respondJoinError(member.joinRequestId, member.memberId, 'REBALANCE_IN_PROGRESS');
    }
    member.protocols = input.protocols;
    member.protocolType = input.protocolType;
    member.sessionTimeoutMs = input.sessionTimeoutMs;
    member.rebalanceTimeoutMs = input.rebalanceTimeoutMs;
    member.clientId = input.clientId;
    member.clientHost = input.clientHost;
    member.joinRequestId = input.requestId;
    this.touchSession(member, nowMs);
    if (group.phase.state === 'PreparingRebalance') this.maybeCompleteJoin(group, nowMs);
    else this.maybePrepareRebalance(group, nowMs);
  }

  /** KIP-345: a known group.instance.id came back with a new member id. */
  private replaceStaticMember(group: Group, input: JoinGroupInput, newMemberId: string, nowMs: number): void {
    const instanceId = input.groupInstanceId;
    invariant(instanceId !== undefined, 'a static member has an instance id');
    const oldMemberId = group.staticMembers.get(instanceId);
    invariant(oldMemberId !== undefined, 'replaceStaticMember needs a known instance id');
    const old = group.members.get(oldMemberId);
    invariant(old !== undefined, () => `static member ${instanceId} maps to missing member ${oldMemberId}`);
    // The old incarnation is fenced: whatever it still has parked here is refused.
    if (old.joinRequestId !== undefined) this.respondJoinError(old.joinRequestId, oldMemberId, 'FENCED_INSTANCE_ID');
    if (old.syncRequestId !== undefined) this.respondSyncError(old.syncRequestId, 'FENCED_INSTANCE_ID');
    const unchanged = sameSubscription(input.protocolType, group.protocolName, old.protocols, input.protocols);
    const member: Member = {
      ...old,
      memberId: newMemberId,
      clientId: input.clientId,
      clientHost: input.clientHost,
      sessionTimeoutMs: input.sessionTimeoutMs,
      rebalanceTimeoutMs: input.rebalanceTimeoutMs,
      protocolType: input.protocolType,
      protocols: input.protocols,
      joinRequestId: undefined,
      syncRequestId: undefined,
      heartbeatDeadlineMs: nowMs + input.sessionTimeoutMs,
    };
    // Keep the join order (it decides the next leader) by rebuilding the map in place.
    group.members = new Map([...group.members].map(([id, m]) => (id === oldMemberId ? [newMemberId, member] : [id, m])));
    group.staticMembers.set(instanceId, newMemberId);
    if (group.pendingSyncMembers.delete(oldMemberId)) group.pendingSyncMembers.add(newMemberId);
    if (group.leaderId === oldMemberId) group.leaderId = newMemberId;

    const phase = group.phase;
    switch (phase.state) {
      case 'Stable':
        if (unchanged && this.selectProtocol(group) === group.protocolName) {
          // Same topics, same protocol: hand back the generation and the old assignment
          // without a rebalance; persist the new member id so a new coordinator knows it.
          this.persistGroup(group);
          const isLeader = group.leaderId === newMemberId;
          this.respond(input.requestId, this.joinResponse(group, member, isLeader));
        } else {
          member.joinRequestId = input.requestId;
          this.maybePrepareRebalance(group, nowMs);
        }
        return;
      case 'CompletingRebalance':
        // Always rebalance here (as Kafka does): the leader may already be computing an
        // assignment keyed by the old member id, which the new id would never receive.
        member.joinRequestId = input.requestId;
        this.maybePrepareRebalance(group, nowMs);
        return;
      case 'PreparingRebalance':
        member.joinRequestId = input.requestId;
        this.maybeCompleteJoin(group, nowMs);
        return;
      case 'Empty':
      case 'Dead':
        invariant(false, `group ${group.groupId} is ${phase.state} but has static member ${instanceId}`);
        return;
      default:
        assertNever(phase, 'group phase');
    }
  }

  private joinResponse(group: Group, member: Member, skipAssignment: boolean): JoinGroupResponse {
    const isLeader = group.leaderId === member.memberId;
    return {
      api: 'join',
      errorCode: 'NONE',
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leaderId: group.leaderId ?? '',
      memberId: member.memberId,
      members: isLeader
        ? [...group.members.values()].map((m) => ({
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            metadata: metadataFor(m, group.protocolName),
          }))
        : [],
      skipAssignment,
    };
  }

  // ---- rebalance mechanics ----

  private maybePrepareRebalance(group: Group, nowMs: number): void {
    const state = group.phase.state;
    if (state === 'Stable' || state === 'CompletingRebalance' || state === 'Empty') this.prepareRebalance(group, nowMs);
  }

  private prepareRebalance(group: Group, nowMs: number): void {
    if (group.phase.state === 'CompletingRebalance') {
      // The generation being synced is abandoned: its parked syncs learn that at once, and its
      // assignments (never delivered) are dropped.
      for (const member of group.members.values()) {
        if (member.syncRequestId !== undefined) {
          this.respondSyncError(member.syncRequestId, 'REBALANCE_IN_PROGRESS');
          member.syncRequestId = undefined;
        }
        member.assignment = EMPTY_BUFFER;
      }
    }
    group.pendingSyncMembers.clear();
    const rebalanceTimeoutMs = this.rebalanceTimeoutMs(group);
    if (group.phase.state === 'Empty') {
      const delayMs = this.options.groupInitialRebalanceDelayMs;
      this.transition(group, {
        state: 'PreparingRebalance',
        joinDeadlineMs: nowMs + delayMs,
        initialDelay: { remainingMs: Math.max(rebalanceTimeoutMs - delayMs, 0), newMemberAdded: false },
      }, nowMs);
    } else {
      this.transition(group, { state: 'PreparingRebalance', joinDeadlineMs: nowMs + rebalanceTimeoutMs, initialDelay: undefined }, nowMs);
    }
    this.maybeCompleteJoin(group, nowMs);
  }

  /** Completes the join early when nobody is missing (never during the initial delay). */
  private maybeCompleteJoin(group: Group, nowMs: number): void {
    const phase = group.phase;
    if (phase.state !== 'PreparingRebalance' || phase.initialDelay !== undefined) return;
    if (group.pendingMembers.size > 0) return;
    for (const member of group.members.values()) if (member.joinRequestId === undefined) return;
    this.completeJoin(group, nowMs);
  }

  private completeJoin(group: Group, nowMs: number): void {
    invariant(group.phase.state === 'PreparingRebalance', 'a join completes only from PreparingRebalance');
    for (const member of [...group.members.values()]) {
      if (member.joinRequestId === undefined) this.removeMember(group, member);
    }
    group.generationId += 1;
    if (group.members.size === 0) {
      group.protocolName = undefined;
      this.transition(group, { state: 'Empty' }, nowMs);
      this.persistGroup(group);
      return;
    }
    group.protocolName = this.selectProtocol(group);
    this.transition(group, { state: 'CompletingRebalance', syncDeadlineMs: nowMs + this.rebalanceTimeoutMs(group) }, nowMs);
    for (const member of group.members.values()) {
      group.pendingSyncMembers.add(member.memberId);
      const requestId = member.joinRequestId;
      invariant(requestId !== undefined, 'every remaining member has rejoined');
      member.joinRequestId = undefined;
      member.heartbeatDeadlineMs = nowMs + member.sessionTimeoutMs;
      this.respond(requestId, this.joinResponse(group, member, false));
    }
  }

  /**
   * Removes a member without deciding what the group does next. Its parked requests are
   * answered with UNKNOWN_MEMBER_ID: it is no longer part of the group.
   */
  private removeMember(group: Group, member: Member): void {
    if (member.joinRequestId !== undefined) this.respondJoinError(member.joinRequestId, member.memberId, 'UNKNOWN_MEMBER_ID');
    if (member.syncRequestId !== undefined) this.respondSyncError(member.syncRequestId, 'UNKNOWN_MEMBER_ID');
    member.joinRequestId = undefined;
    member.syncRequestId = undefined;
    group.members.delete(member.memberId);
    if (member.groupInstanceId !== undefined && group.staticMembers.get(member.groupInstanceId) === member.memberId) {
      group.staticMembers.delete(member.groupInstanceId);
    }
    group.pendingSyncMembers.delete(member.memberId);
    if (group.leaderId === member.memberId) group.leaderId = group.members.keys().next().value;
  }

  private removeMemberAndUpdateGroup(group: Group, member: Member, nowMs: number): void {
    this.removeMember(group, member);
    const state = group.phase.state;
    switch (state) {
      case 'Stable':
      case 'CompletingRebalance':
        this.prepareRebalance(group, nowMs);
        return;
      case 'PreparingRebalance':
        this.maybeCompleteJoin(group, nowMs);
        return;
      case 'Empty':
      case 'Dead':
        return;
      default:
        assertNever(state, 'group state');
    }
  }

  private transition(group: Group, phase: GroupPhase, nowMs: number): void {
    const from = group.phase.state;
    invariant(allowedTransitions[from].includes(phase.state), () => `group ${group.groupId}: illegal transition ${from} -> ${phase.state}`);
    group.phase = phase;
    group.stateTimestampMs = nowMs;
  }

  /**
   * Kafka's protocol selection: among the protocols every member supports, each member votes
   * for the first one in its own preference order; most votes wins (ties: the earlier member's).
   */
  private selectProtocol(group: Group): string {
    const members = [...group.members.values()];
    invariant(members.length > 0, 'protocol selection needs members');
    const candidates = members[0]!.protocols
      .map((p) => p.name)
      .filter((name) => members.every((m) => m.protocols.some((p) => p.name === name)));
    invariant(candidates.length > 0, () => `group ${group.groupId} has no common protocol (join validation lets none in)`);
    const votes = new Map<string, number>();
    for (const m of members) {
      const choice = m.protocols.find((p) => candidates.includes(p.name))!.name;
      votes.set(choice, (votes.get(choice) ?? 0) + 1);
    }
    let best = candidates[0]!;
    for (const [name, count] of votes) if (count > (votes.get(best) ?? 0)) best = name;
    return best;
  }

  private supportsProtocols(group: Group, protocolType: string, protocols: readonly GroupProtocol[]): boolean {
    if (protocolType === '' || protocols.length === 0) return false;
    if (group.members.size === 0) return true;
    if (group.protocolType !== protocolType) return false;
    const members = [...group.members.values()];
    return protocols.some((p) => members.every((m) => m.protocols.some((q) => q.name === p.name)));
  }

  private rebalanceTimeoutMs(group: Group): number {
    let max = 0;
    for (const m of group.members.values()) max = Math.max(max, m.rebalanceTimeoutMs);
    return max;
  }

  /** Kafka's validateCurrentMember: the instance id (if given) must map to this member id. */
  private validateMember(group: Group, memberId: string, groupInstanceId: string | undefined): ErrorCodeName | undefined {
    if (groupInstanceId !== undefined) {
      const current = group.staticMembers.get(groupInstanceId);
      if (current === memberId) return undefined;
      return current === undefined ? 'UNKNOWN_MEMBER_ID' : 'FENCED_INSTANCE_ID';
    }
    return group.members.has(memberId) ? undefined : 'UNKNOWN_MEMBER_ID';
  }

  private neverUsed(group: Group): boolean {
    return (
      group.phase.state === 'Empty' &&
      group.generationId === 0 &&
      group.members.size === 0 &&
      group.pendingMembers.size === 0 &&
      group.offsets.size === 0
    );
  }

  /** A parked join or sync keeps a member alive; its own deadlines govern it meanwhile. */
  private sessionCounts(member: Member): boolean {
    return member.joinRequestId === undefined && member.syncRequestId === undefined;
  }

  private touchSession(member: Member, nowMs: number): void {
    member.heartbeatDeadlineMs = nowMs + member.sessionTimeoutMs;
  }

  // ---- SyncGroup ----

  private handleSync(input: SyncGroupInput, nowMs: number): void {
    const group = this.groups.get(input.groupId);
    if (group === undefined) return this.respondSyncError(input.requestId, 'UNKNOWN_MEMBER_ID');
    if (group.phase.state === 'Dead') return this.respondSyncError(input.requestId, 'COORDINATOR_NOT_AVAILABLE');
    const error = this.validateMember(group, input.memberId, input.groupInstanceId);
    if (error !== undefined) return this.respondSyncError(input.requestId, error);
    if (input.generationId !== group.generationId) return this.respondSyncError(input.requestId, 'ILLEGAL_GENERATION');
    if (
      (input.protocolType !== undefined && input.protocolType !== group.protocolType) ||
      (input.protocolName !== undefined && input.protocolName !== group.protocolName)
    ) {
      return this.respondSyncError(input.requestId, 'INCONSISTENT_GROUP_PROTOCOL');
    }
    const member = group.members.get(input.memberId);
    invariant(member !== undefined, 'validated member exists');
    const phase = group.phase;
    switch (phase.state) {
      case 'Empty':
        return this.respondSyncError(input.requestId, 'UNKNOWN_MEMBER_ID');
      case 'PreparingRebalance':
        return this.respondSyncError(input.requestId, 'REBALANCE_IN_PROGRESS');
      case 'CompletingRebalance': {
        if (member.syncRequestId !== undefined) this.respondSyncError(member.syncRequestId, 'REBALANCE_IN_PROGRESS');
        member.syncRequestId = input.requestId;
        group.pendingSyncMembers.delete(member.memberId);
        this.touchSession(member, nowMs);
        if (group.leaderId !== member.memberId) return;
        // The leader's assignment ends the rebalance: members it left out get an empty one.
        const byMember = new Map(input.assignments.map((a) => [a.memberId, a.assignment]));
        for (const m of group.members.values()) m.assignment = byMember.get(m.memberId) ?? EMPTY_BUFFER;
        this.transition(group, { state: 'Stable', syncDeadlineMs: group.pendingSyncMembers.size > 0 ? phase.syncDeadlineMs : undefined }, nowMs);
        this.persistGroup(group);
        for (const m of group.members.values()) {
          if (m.syncRequestId === undefined) continue;
          this.respond(m.syncRequestId, this.syncResponse(group, m));
          m.syncRequestId = undefined;
          this.touchSession(m, nowMs);
        }
        return;
      }
      case 'Stable':
        group.pendingSyncMembers.delete(member.memberId);
        if (group.pendingSyncMembers.size === 0) phase.syncDeadlineMs = undefined;
        this.touchSession(member, nowMs);
        return this.respond(input.requestId, this.syncResponse(group, member));
      default:
        assertNever(phase, 'group phase');
    }
  }

  private syncResponse(group: Group, member: Member): SyncGroupResponse {
    return { api: 'sync', errorCode: 'NONE', protocolType: group.protocolType, protocolName: group.protocolName, assignment: member.assignment };
  }

  // ---- Heartbeat ----

  private handleHeartbeat(input: HeartbeatInput, nowMs: number): void {
    const answer = (errorCode: ErrorCodeName): void => this.respond(input.requestId, { api: 'heartbeat', errorCode });
    const group = this.groups.get(input.groupId);
    if (group === undefined) return answer('UNKNOWN_MEMBER_ID');
    if (group.phase.state === 'Dead') return answer('COORDINATOR_NOT_AVAILABLE');
    const error = this.validateMember(group, input.memberId, input.groupInstanceId);
    if (error !== undefined) return answer(error);
    if (input.generationId !== group.generationId) return answer('ILLEGAL_GENERATION');
    const member = group.members.get(input.memberId);
    invariant(member !== undefined, 'validated member exists');
    const state = group.phase.state;
    switch (state) {
      case 'Empty':
        return answer('UNKNOWN_MEMBER_ID');
      case 'PreparingRebalance':
        this.touchSession(member, nowMs);
        return answer('REBALANCE_IN_PROGRESS');
      case 'CompletingRebalance':
      case 'Stable':
        this.touchSession(member, nowMs);
        return answer('NONE');
      default:
        assertNever(state, 'group state');
    }
  }

  // ---- LeaveGroup ----

  private handleLeave(input: LeaveGroupInput, nowMs: number): void {
    const group = this.groups.get(input.groupId);
    const results: LeaveGroupResponse['members'] = [];
    if (group?.phase.state === 'Dead') {
      return this.respond(input.requestId, { api: 'leave', errorCode: 'COORDINATOR_NOT_AVAILABLE', members: [] });
    }
    for (const leaving of input.members) {
      const result = (errorCode: ErrorCodeName): void => {
        results.push({ memberId: leaving.memberId, groupInstanceId: leaving.groupInstanceId, errorCode });
      };
      if (group === undefined) {
        result('UNKNOWN_MEMBER_ID');
        continue;
      }
      let memberId = leaving.memberId;
      if (leaving.groupInstanceId !== undefined) {
        const current = group.staticMembers.get(leaving.groupInstanceId);
        if (current === undefined) {
          result('UNKNOWN_MEMBER_ID');
          continue;
        }
        if (memberId !== NO_MEMBER_ID && memberId !== current) {
          result('FENCED_INSTANCE_ID');
          continue;
        }
        memberId = current;
      }
      if (group.pendingMembers.delete(memberId)) {
        result('NONE');
        this.maybeCompleteJoin(group, nowMs);
        continue;
      }
      const member = group.members.get(memberId);
      if (member === undefined) {
        result('UNKNOWN_MEMBER_ID');
        continue;
      }
      this.removeMemberAndUpdateGroup(group, member, nowMs);
      result('NONE');
    }
    this.respond(input.requestId, { api: 'leave', errorCode: 'NONE', members: results });
  }

  // ---- OffsetCommit / OffsetDelete / DeleteGroups ----

  /** Kafka's ClassicGroup.validateOffsetCommit; undefined when the commit may proceed. */
  private validateCommit(group: Group, input: OffsetCommitInput): ErrorCodeName | undefined {
    const state = group.phase.state;
    if (state === 'Dead') return 'COORDINATOR_NOT_AVAILABLE';
    // A client outside group management may commit only while no generation is running.
    if (input.generationId < 0 && state === 'Empty') return undefined;
    if (input.generationId >= 0 || input.memberId !== NO_MEMBER_ID || input.groupInstanceId !== undefined) {
      const error = this.validateMember(group, input.memberId, input.groupInstanceId);
      if (error !== undefined) return error;
      // A fenced generation must not overwrite the positions of the one that replaced it.
      if (input.generationId !== group.generationId) return 'ILLEGAL_GENERATION';
    } else if (state !== 'Empty') {
      return 'UNKNOWN_MEMBER_ID';
    }
    if (state === 'CompletingRebalance') return 'REBALANCE_IN_PROGRESS';
    return undefined;
  }

  private handleCommit(input: OffsetCommitInput, nowMs: number): void {
    const answerAll = (errorCode: ErrorCodeName): void =>
      this.respond(input.requestId, {
        api: 'commit-offsets',
        partitions: input.offsets.map((o) => ({ topic: o.topic, partition: o.partition, errorCode })),
      });
    if (input.groupId === '') return answerAll('INVALID_GROUP_ID');
    let group = this.groups.get(input.groupId);
    if (group === undefined) {
      if (input.generationId >= 0) return answerAll('ILLEGAL_GENERATION');
      group = newGroup(input.groupId, nowMs);
      this.groups.set(group.groupId, group);
    }
    const error = this.validateCommit(group, input);
    if (error !== undefined) return answerAll(error);
    const member = group.members.get(input.memberId);
    // A commit from a live member proves it is alive, as a heartbeat would.
    if (member !== undefined) this.touchSession(member, nowMs);
    const partitions: OffsetCommitResponse['partitions'] = [];
    for (const o of input.offsets) {
      const metadata = o.metadata ?? '';
      if (Buffer.byteLength(metadata, 'utf8') > this.options.offsetMetadataMaxBytes) {
        partitions.push({ topic: o.topic, partition: o.partition, errorCode: 'OFFSET_METADATA_TOO_LARGE' });
        continue;
      }
      const value: OffsetCommitValue = { offset: o.offset, leaderEpoch: o.leaderEpoch ?? NO_LEADER_EPOCH, metadata, commitTimestampMs: nowMs };
      let byPartition = group.offsets.get(o.topic);
      if (byPartition === undefined) group.offsets.set(o.topic, (byPartition = new Map()));
      byPartition.set(o.partition, value);
      this.records.push(offsetCommitRecord(group.groupId, o.topic, o.partition, value));
      partitions.push({ topic: o.topic, partition: o.partition, errorCode: 'NONE' });
    }
    this.respond(input.requestId, { api: 'commit-offsets', partitions });
  }

  /** Topics the members consume, or undefined when some member's metadata is unreadable. */
  private subscribedTopics(group: Group): Set<string> | undefined {
    const topics = new Set<string>();
    for (const member of group.members.values()) {
      const candidates = group.protocolName === undefined ? member.protocols : member.protocols.filter((p) => p.name === group.protocolName);
      for (const protocol of candidates) {
        const decoded = decodeSubscriptionTopics(protocol.metadata);
        if (decoded === undefined) return undefined;
        for (const t of decoded) topics.add(t);
      }
    }
    return topics;
  }

  private handleDeleteOffsets(input: OffsetDeleteInput): void {
    const group = this.groups.get(input.groupId);
    if (group === undefined || group.phase.state === 'Dead') {
      return this.respond(input.requestId, { api: 'delete-offsets', errorCode: 'GROUP_ID_NOT_FOUND', partitions: [] });
    }
    const empty = group.phase.state === 'Empty';
    if (!empty && group.protocolType !== CONSUMER_PROTOCOL_TYPE) {
      // Without a consumer subscription to read we cannot tell which offsets are in use.
      return this.respond(input.requestId, { api: 'delete-offsets', errorCode: 'NON_EMPTY_GROUP', partitions: [] });
    }
    const subscribed = empty ? new Set<string>() : this.subscribedTopics(group);
    const partitions: OffsetDeleteResponse['partitions'] = [];
    for (const tp of input.partitions) {
      if (subscribed === undefined || subscribed.has(tp.topic)) {
        partitions.push({ topic: tp.topic, partition: tp.partition, errorCode: 'GROUP_SUBSCRIBED_TO_TOPIC' });
        continue;
      }
      const byPartition = group.offsets.get(tp.topic);
      if (byPartition?.delete(tp.partition)) {
        if (byPartition.size === 0) group.offsets.delete(tp.topic);
        this.records.push(offsetCommitRecord(group.groupId, tp.topic, tp.partition, null));
      }
      partitions.push({ topic: tp.topic, partition: tp.partition, errorCode: 'NONE' });
    }
    this.respond(input.requestId, { api: 'delete-offsets', errorCode: 'NONE', partitions });
  }

  private handleDeleteGroups(input: DeleteGroupsInput, nowMs: number): void {
    const results: DeleteGroupsResponse['results'] = [];
    for (const groupId of input.groupIds) {
      const group = this.groups.get(groupId);
      if (groupId === '') {
        results.push({ groupId, errorCode: 'INVALID_GROUP_ID' });
      } else if (group === undefined || group.phase.state === 'Dead') {
        results.push({ groupId, errorCode: 'GROUP_ID_NOT_FOUND' });
      } else if (group.phase.state !== 'Empty') {
        results.push({ groupId, errorCode: 'NON_EMPTY_GROUP' });
      } else {
        // Tombstones for every offset and for the group itself: compaction then forgets it.
        for (const [topic, byPartition] of group.offsets) {
          for (const partition of byPartition.keys()) this.records.push(offsetCommitRecord(groupId, topic, partition, null));
        }
        this.records.push(groupMetadataRecord(groupId, null));
        this.transition(group, { state: 'Dead' }, nowMs);
        this.groups.delete(groupId);
        results.push({ groupId, errorCode: 'NONE' });
      }
    }
    this.respond(input.requestId, { api: 'delete-groups', results });
  }

  // ---- offset retention ----

  /**
   * KIP-211: the offsets of an Empty consumer group expire offsets.retention.ms after the group
   * became Empty (its members may come back until then); offsets of a group outside group
   * management expire that long after their own commit; a group with members keeps offsets of
   * topics it consumes and loses those of topics it dropped (by commit time). An Empty group left
   * with no offsets is deleted (Kafka moves it to Dead and writes its tombstone).
   */
  private expireOffsets(nowMs: number): void {
    const retentionMs = this.options.offsetsRetentionMs;
    for (const group of [...this.groups.values()]) {
      const state = group.phase.state;
      let expired: (topic: string, value: OffsetCommitValue) => boolean;
      if (state === 'Empty' && group.protocolType !== undefined) {
        const emptyLongEnough = group.stateTimestampMs + retentionMs <= nowMs;
        expired = () => emptyLongEnough;
      } else if (state === 'Empty') {
        expired = (_topic, value) => value.commitTimestampMs + retentionMs <= nowMs;
      } else if (group.protocolType === CONSUMER_PROTOCOL_TYPE && state === 'Stable') {
        const subscribed = this.subscribedTopics(group);
        expired = (topic, value) => subscribed !== undefined && !subscribed.has(topic) && value.commitTimestampMs + retentionMs <= nowMs;
      } else {
        continue;
      }
      for (const [topic, byPartition] of [...group.offsets]) {
        for (const [partition, value] of [...byPartition]) {
          if (!expired(topic, value)) continue;
          byPartition.delete(partition);
          this.records.push(offsetCommitRecord(group.groupId, topic, partition, null));
        }
        if (byPartition.size === 0) group.offsets.delete(topic);
      }
      if (state === 'Empty' && group.offsets.size === 0 && group.pendingMembers.size === 0) {
        this.records.push(groupMetadataRecord(group.groupId, null));
        this.transition(group, { state: 'Dead' }, nowMs);
        this.groups.delete(group.groupId);
        this.refreshDeadline(group.groupId);
      }
    }
  }

  // ---- deadlines ----

  private runDeadlines(nowMs: number): void {
    for (let round = 0; round < DEADLINE_ROUNDS_PER_STEP_MAX; round++) {
      const due = new Set<string>();
      for (;;) {
        this.dropStaleHeapTop();
        const top = this.deadlineHeap[0];
        if (top === undefined || top.deadlineMs > nowMs) break;
        heapPop(this.deadlineHeap);
        // Forget the popped deadline so that the refresh below pushes a fresh entry even when
        // the group's next deadline has the same value (e.g. a zero rebalance timeout).
        this.groupDeadlines.delete(top.groupId);
        due.add(top.groupId);
      }
      if (due.size === 0) return;
      for (const groupId of due) {
        const group = this.groups.get(groupId);
        if (group !== undefined) this.expireGroup(group, nowMs);
        this.refreshDeadline(groupId);
      }
    }
  }

  private expireGroup(group: Group, nowMs: number): void {
    for (const [memberId, deadlineMs] of [...group.pendingMembers]) {
      if (deadlineMs > nowMs) continue;
      group.pendingMembers.delete(memberId);
      this.maybeCompleteJoin(group, nowMs);
    }
    if (this.neverUsed(group)) {
      // Created only to hold a KIP-394 pending id that was never claimed: nothing of it was
      // persisted, so dropping it leaves no trace (otherwise such groups would pile up).
      this.groups.delete(group.groupId);
      return;
    }
    for (const member of [...group.members.values()]) {
      // The member may have been removed by an earlier removal in this loop (a join completing).
      if (group.members.get(member.memberId) !== member) continue;
      if (this.sessionCounts(member) && member.heartbeatDeadlineMs <= nowMs) this.removeMemberAndUpdateGroup(group, member, nowMs);
    }
    const phase = group.phase;
    switch (phase.state) {
      case 'PreparingRebalance': {
        if (phase.joinDeadlineMs > nowMs) return;
        const delay = phase.initialDelay;
        if (delay !== undefined && delay.newMemberAdded && delay.remainingMs > 0) {
          // Members are still arriving: wait another delay, within the rebalance timeout.
          const delayMs = Math.min(this.options.groupInitialRebalanceDelayMs, delay.remainingMs);
          phase.joinDeadlineMs = nowMs + delayMs;
          phase.initialDelay = { remainingMs: Math.max(delay.remainingMs - delayMs, 0), newMemberAdded: false };
          return;
        }
        this.completeJoin(group, nowMs);
        return;
      }
      case 'CompletingRebalance':
      case 'Stable': {
        if (phase.syncDeadlineMs === undefined || phase.syncDeadlineMs > nowMs) return;
        if (group.pendingSyncMembers.size === 0) {
          if (phase.state === 'Stable') phase.syncDeadlineMs = undefined;
          else this.prepareRebalance(group, nowMs); // the leader synced nothing in time
          return;
        }
        for (const memberId of [...group.pendingSyncMembers]) {
          const member = group.members.get(memberId);
          invariant(member !== undefined, () => `pending-sync member ${memberId} is not in group ${group.groupId}`);
          this.removeMember(group, member);
        }
        this.prepareRebalance(group, nowMs);
        return;
      }
      case 'Empty':
      case 'Dead':
        return;
      default:
        assertNever(phase, 'group phase');
    }
  }

  // ---- output helpers ----

  private persistGroup(group: Group): void {
    const members = [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      rebalanceTimeoutMs: m.rebalanceTimeoutMs,
      sessionTimeoutMs: m.sessionTimeoutMs,
      subscription: metadataFor(m, group.protocolName),
      assignment: m.assignment,
    }));
    this.records.push(
      groupMetadataRecord(group.groupId, {
        protocolType: group.protocolType ?? '',
        generationId: group.generationId,
        protocolName: group.protocolName,
        leaderId: group.leaderId,
        currentStateTimestampMs: group.stateTimestampMs,
        members,
      }),
    );
  }

  private respond(requestId: number, response: GroupResponse): void {
    this.responses.push({ requestId, response });
  }

  private respondJoinError(requestId: number, memberId: string, errorCode: ErrorCodeName): void {
    this.respond(requestId, {
      api: 'join',
      errorCode,
      generationId: -1,
      protocolType: undefined,
      protocolName: undefined,
      leaderId: '',
      memberId,
      members: [],
      skipAssignment: false,
    });
  }

  private respondSyncError(requestId: number, errorCode: ErrorCodeName): void {
    this.respond(requestId, { api: 'sync', errorCode, protocolType: undefined, protocolName: undefined, assignment: EMPTY_BUFFER });
  }
}
