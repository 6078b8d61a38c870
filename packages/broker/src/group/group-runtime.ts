// The driver around the pure GroupCoordinator core (group-coordinator.ts): one coordinator per
// `__consumer_offsets` partition this broker leads, fed by the RaftkaGroups service, persisting
// through the replica manager and ticking on timers.
//
// Per partition the runtime holds a slot whose state follows the partition's leadership, which
// comes only from the metadata log (through ReplicaManager.onRoleChange):
//   (none)   -> loading  this broker became leader: read the partition from log start to log
//                        end and rebuild every group (GroupCoordinator.loadFrom); requests get
//                        COORDINATOR_LOAD_IN_PROGRESS meanwhile
//   loading  -> active   the load finished and the leadership is still the one it started for
//   active   -> loading  an append failed: the core's memory may be ahead of the log, so it is
//                        rebuilt from what is really there (waiting requests get the error)
//   any      -> (none)   leadership moved away or the replica stopped: waiting requests get
//                        NOT_COORDINATOR and clients find the new coordinator
//
// Writes follow the core's contract: the records one step outputs go into one record batch,
// appended with acks=all through the replica manager's internal path (clients cannot produce to
// this topic); appends of one partition run strictly one after another, and the steps taken
// while one is in flight are group-committed in the next. A step's responses are released only
// once its records (and those of every earlier step) are acknowledged; a step without records
// still waits for the appends before it, because its answers may rest on their state.
//
// OffsetFetch does not read the core's memory, which may hold a commit whose append is still in
// flight (or about to fail): like Kafka, which keeps such commits "pending", it reads a view of
// the committed offsets updated only from records that are loaded or acknowledged, so an offset
// is never shown before it is durable.

import { randomUUID } from 'node:crypto';
import {
  batchesIn,
  decodeRecordBatch,
  encodeRecordBatchSync,
  isControlBatch,
  RaftkaError,
  assertNever,
  type ErrorCodeName,
} from '@raftka/protocol';
import { NO_LEADER, type CreateTopicsResponse } from '@raftka/quorum';
import type { LogLogger } from '../log/partition-log.js';
import { systemClock, systemTimers, type Clock, type TimerHandle, type Timers } from '../log/time.js';
import type { ReplicaManager, ReplicaRoleChange } from '../replica-manager/replica-manager.js';
import {
  GroupCoordinator,
  GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT,
  GROUP_MAX_SESSION_TIMEOUT_MS_DEFAULT,
  GROUP_MAX_SIZE_DEFAULT,
  GROUP_MIN_SESSION_TIMEOUT_MS_DEFAULT,
  OFFSET_METADATA_MAX_BYTES_DEFAULT,
  OFFSETS_RETENTION_MS_DEFAULT,
  type CompletedResponse,
  type DeleteGroupsInput,
  type DeleteGroupsResponse,
  type FetchedOffset,
  type GroupCoordinatorOptions,
  type GroupDescription,
  type GroupInput,
  type GroupListing,
  type GroupResponse,
  type GroupStateName,
  type HeartbeatInput,
  type JoinGroupInput,
  type LeaveGroupInput,
  type OffsetCommitInput,
  type OffsetDeleteInput,
  type SyncGroupInput,
  type TopicPartition,
} from './group-coordinator.js';
import {
  decodeGroupRecordKey,
  decodeOffsetCommitValue,
  groupPartitionFor,
  NO_LEADER_EPOCH,
  type GroupRecord,
  type OffsetCommitValue,
} from './group-records.js';

/** The compacted topic holding group metadata and committed offsets (Kafka's name). */
export const GROUP_METADATA_TOPIC_NAME = '__consumer_offsets';

// ---- Kafka's broker defaults ----

export const OFFSETS_TOPIC_NUM_PARTITIONS_DEFAULT = 50;
export const OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT = 3;
/** offsets.topic.segment.bytes: small, so compaction can clean old segments soon. */
export const OFFSETS_TOPIC_SEGMENT_BYTES_DEFAULT = 104_857_600;
export const OFFSETS_RETENTION_CHECK_INTERVAL_MS_DEFAULT = 600_000;
export const OFFSETS_COMMIT_TIMEOUT_MS_DEFAULT = 5_000;

// ---- limits ----

/** Bytes one read of the log asks for while loading a partition. */
export const LOAD_READ_BYTES = 1024 * 1024;
/** A failed load (a read error, corrupt records) is retried after this pause while still leader. */
export const LOAD_RETRY_BACKOFF_MS = 1_000;
/**
 * Record bytes group-committed into one append at most (whole steps only: a single step larger
 * than this still goes alone). Half the default max.message.bytes leaves room for batch overhead.
 */
export const APPEND_BATCH_BYTES_MAX = 512 * 1024;
/**
 * After asking the controller to create `__consumer_offsets`, the broker does not ask again for
 * this long: the topic reaches this broker's image a moment after the controller answered.
 */
export const TOPIC_CREATION_RETRY_BACKOFF_MS = 5_000;
/** The longest delay Node's setTimeout honours (2^31 - 1 ms). */
const TIMER_DELAY_MS_MAX = 2_147_483_647;
/** Requests one coordinator keeps waiting (parked joins and syncs, queued writes) at most. */
export const WAITING_REQUESTS_MAX = 100_000;

export interface GroupRuntimeConfig {
  /** offsets.topic.num.partitions (used when this broker asks for the topic's creation). */
  offsetsTopicNumPartitions: number;
  /** offsets.topic.replication.factor */
  offsetsTopicReplicationFactor: number;
  /** offsets.topic.segment.bytes */
  offsetsTopicSegmentBytes: number;
  /** offsets.retention.ms */
  offsetsRetentionMs: number;
  /** offsets.retention.check.interval.ms */
  offsetsRetentionCheckIntervalMs: number;
  /** offsets.commit.timeout.ms: how long an append waits for every in-sync replica. */
  offsetsCommitTimeoutMs: number;
  /** offset.metadata.max.bytes */
  offsetMetadataMaxBytes: number;
  /** group.min.session.timeout.ms */
  groupMinSessionTimeoutMs: number;
  /** group.max.session.timeout.ms */
  groupMaxSessionTimeoutMs: number;
  /** group.initial.rebalance.delay.ms */
  groupInitialRebalanceDelayMs: number;
  /** group.max.size */
  groupMaxSize: number;
}

export const GROUP_RUNTIME_CONFIG_DEFAULT: Readonly<GroupRuntimeConfig> = Object.freeze({
  offsetsTopicNumPartitions: OFFSETS_TOPIC_NUM_PARTITIONS_DEFAULT,
  offsetsTopicReplicationFactor: OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT,
  offsetsTopicSegmentBytes: OFFSETS_TOPIC_SEGMENT_BYTES_DEFAULT,
  offsetsRetentionMs: OFFSETS_RETENTION_MS_DEFAULT,
  offsetsRetentionCheckIntervalMs: OFFSETS_RETENTION_CHECK_INTERVAL_MS_DEFAULT,
  offsetsCommitTimeoutMs: OFFSETS_COMMIT_TIMEOUT_MS_DEFAULT,
  offsetMetadataMaxBytes: OFFSET_METADATA_MAX_BYTES_DEFAULT,
  groupMinSessionTimeoutMs: GROUP_MIN_SESSION_TIMEOUT_MS_DEFAULT,
  groupMaxSessionTimeoutMs: GROUP_MAX_SESSION_TIMEOUT_MS_DEFAULT,
  groupInitialRebalanceDelayMs: GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT,
  groupMaxSize: GROUP_MAX_SIZE_DEFAULT,
});

/** A request for one group, as the service hands it over (the runtime numbers requests itself). */
export type GroupRequest =
  | Omit<JoinGroupInput, 'requestId'>
  | Omit<SyncGroupInput, 'requestId'>
  | Omit<HeartbeatInput, 'requestId'>
  | Omit<LeaveGroupInput, 'requestId'>
  | Omit<OffsetCommitInput, 'requestId'>
  | Omit<OffsetDeleteInput, 'requestId'>;

/** Where a group's coordinator is, as FindCoordinator answers. */
export type CoordinatorLocation =
  | { found: true; nodeId: number; host: string; port: number }
  | { found: false; errorCode: ErrorCodeName; message: string };

/** Why a group is not served here (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ...). */
export interface GroupRouteError {
  errorCode: ErrorCodeName;
  message: string;
}

export interface GroupRuntimeOptions {
  replicaManager: ReplicaManager;
  config?: Partial<GroupRuntimeConfig>;
  /** The listener whose address FindCoordinator answers unless the call names one; default: each broker's first endpoint. */
  listenerName?: string | undefined;
  /** Asks the controller to create `__consumer_offsets`; absent: never (FindCoordinator waits). */
  createTopics?: (request: {
    topics: { name: string; numPartitions: number; replicationFactor: number; configs: Record<string, string> }[];
  }) => Promise<CreateTopicsResponse>;
  /** Kafka's member ids: clientId + "-" + a UUID. Injected for tests. */
  newMemberId?: (clientId: string) => string;
  clock?: Clock;
  timers?: Timers;
  logger?: LogLogger;
}

interface QueuedStep {
  records: GroupRecord[];
  responses: CompletedResponse[];
  bytes: number;
}

interface WaitingRequest {
  resolve: (response: GroupResponse) => void;
  /** The request's answer when it cannot be served (a whole-request error). */
  failWith: (code: ErrorCodeName) => GroupResponse;
}

type SlotState =
  | { kind: 'loading' }
  | {
      kind: 'active';
      coordinator: GroupCoordinator;
      // Invariant: steps in the order the core produced them; only the head may be appending.
      queue: QueuedStep[];
      appending: boolean;
      timer: TimerHandle | undefined;
      timerDeadlineMs: number | undefined;
      // Invariant: exactly the offsets the partition's log holds up to the last acknowledged
      // append (group -> topic -> partition -> value); what OffsetFetch answers from.
      durableOffsets: Map<string, Map<string, Map<number, OffsetCommitValue>>>;
    };

/** One `__consumer_offsets` partition led by this broker at one leader epoch. */
interface Slot {
  readonly partition: number;
  readonly leaderEpoch: number;
  state: SlotState;
  // Invariant: holds exactly the requests given to this slot's coordinator and not yet answered.
  readonly waiting: Map<number, WaitingRequest>;
  loadRetryTimer: TimerHandle | undefined;
}

const silentLogger: LogLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
} as unknown as LogLogger;

/** The answer to `request` when the whole request fails with `code`. */
export function groupErrorResponse(request: GroupRequest | DeleteGroupsInput, code: ErrorCodeName): GroupResponse {
  switch (request.type) {
    case 'join':
      return {
        api: 'join',
        errorCode: code,
        generationId: -1,
        protocolType: undefined,
        protocolName: undefined,
        leaderId: '',
        memberId: request.memberId,
        members: [],
        skipAssignment: false,
      };
    case 'sync':
      return { api: 'sync', errorCode: code, protocolType: undefined, protocolName: undefined, assignment: Buffer.alloc(0) };
    case 'heartbeat':
      return { api: 'heartbeat', errorCode: code };
    case 'leave':
      return { api: 'leave', errorCode: code, members: [] };
    case 'commit-offsets':
      return { api: 'commit-offsets', partitions: request.offsets.map((o) => ({ topic: o.topic, partition: o.partition, errorCode: code })) };
    case 'delete-offsets':
      return { api: 'delete-offsets', errorCode: code, partitions: [] };
    case 'delete-groups':
      return { api: 'delete-groups', results: request.groupIds.map((groupId) => ({ groupId, errorCode: code })) };
    default:
      return assertNever(request, 'group request');
  }
}

/**
 * Kafka's mapping of a failed `__consumer_offsets` append to what the group's client is told
 * (GroupMetadataManager): a lost leadership sends it to the new coordinator, a partition that
 * cannot take writes right now is "not available" (retriable), a timeout stays a timeout.
 */
export function appendErrorToGroupError(code: ErrorCodeName): ErrorCodeName {
  switch (code) {
    case 'NOT_LEADER_OR_FOLLOWER':
    case 'KAFKA_STORAGE_ERROR':
    case 'FENCED_LEADER_EPOCH':
      return 'NOT_COORDINATOR';
    case 'UNKNOWN_TOPIC_OR_PARTITION':
    case 'NOT_ENOUGH_REPLICAS':
    case 'NOT_ENOUGH_REPLICAS_AFTER_APPEND':
      return 'COORDINATOR_NOT_AVAILABLE';
    case 'REQUEST_TIMED_OUT':
      return 'REQUEST_TIMED_OUT';
    default:
      return 'UNKNOWN_SERVER_ERROR';
  }
}

/** Applies offset-commit records (and their tombstones) in log order; group records are skipped. */
function applyOffsetRecords(offsets: Map<string, Map<string, Map<number, OffsetCommitValue>>>, records: readonly GroupRecord[]): void {
  for (const record of records) {
    const key = decodeGroupRecordKey(record.key);
    if (key.type !== 'offset-commit') continue;
    let byTopic = offsets.get(key.groupId);
    if (record.value === null) {
      const byPartition = byTopic?.get(key.topic);
      byPartition?.delete(key.partition);
      if (byPartition?.size === 0) byTopic!.delete(key.topic);
      if (byTopic?.size === 0) offsets.delete(key.groupId);
      continue;
    }
    if (byTopic === undefined) offsets.set(key.groupId, (byTopic = new Map()));
    let byPartition = byTopic.get(key.topic);
    if (byPartition === undefined) byTopic.set(key.topic, (byPartition = new Map()));
    byPartition.set(key.partition, decodeOffsetCommitValue(record.value));
  }
}

function recordBytes(record: GroupRecord): number {
  return record.key.length + (record.value?.length ?? 0);
}

export class GroupRuntime {
  readonly config: GroupRuntimeConfig;
  private readonly replicaManager: ReplicaManager;
  private readonly options: GroupRuntimeOptions;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly logger: LogLogger;
  private readonly newMemberId: (clientId: string) => string;
  // Invariant: a slot exists only for a partition this broker leads (or is about to stop leading:
  // the role change that removes it is on its way), keyed by partition index.
  private readonly slots = new Map<number, Slot>();
  private nextRequestId = 1;
  // The core refuses time that goes backwards; the wall clock may (NTP steps), so it is clamped.
  private lastNowMs = Number.NEGATIVE_INFINITY;
  private unsubscribe: (() => void) | undefined;
  private expireTimer: TimerHandle | undefined;
  private topicCreation: Promise<void> | undefined;
  private topicCreationAskedAtMs = Number.NEGATIVE_INFINITY;
  private closed = false;

  constructor(options: GroupRuntimeOptions) {
    this.options = options;
    this.replicaManager = options.replicaManager;
    this.config = { ...GROUP_RUNTIME_CONFIG_DEFAULT, ...options.config };
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.logger = options.logger ?? silentLogger;
    this.newMemberId = options.newMemberId ?? ((clientId) => `${clientId}-${randomUUID()}`);
    // The core validates the group options; failing here surfaces a bad config at start-up
    // rather than at the first leadership.
    new GroupCoordinator(this.coordinatorOptions());
    const c = this.config;
    const problems: string[] = [];
    if (!(Number.isInteger(c.offsetsTopicNumPartitions) && c.offsetsTopicNumPartitions > 0)) problems.push(`offsets.topic.num.partitions=${c.offsetsTopicNumPartitions}: must be a positive integer`);
    if (!(Number.isInteger(c.offsetsTopicReplicationFactor) && c.offsetsTopicReplicationFactor > 0)) problems.push(`offsets.topic.replication.factor=${c.offsetsTopicReplicationFactor}: must be a positive integer`);
    if (!(c.offsetsRetentionCheckIntervalMs > 0)) problems.push(`offsets.retention.check.interval.ms=${c.offsetsRetentionCheckIntervalMs}: must be positive`);
    if (!(c.offsetsCommitTimeoutMs > 0)) problems.push(`offsets.commit.timeout.ms=${c.offsetsCommitTimeoutMs}: must be positive`);
    if (problems.length > 0) throw new RaftkaError('INVALID_CONFIG', problems.join('; '));
  }

  /** Follows the leadership of `__consumer_offsets` (subscribe before metadata is applied). */
  start(): void {
    if (this.unsubscribe !== undefined || this.closed) return;
    this.unsubscribe = this.replicaManager.onRoleChange((change) => this.onRoleChange(change));
    this.scheduleOffsetExpiration();
  }

  private nowMs(): number {
    this.lastNowMs = Math.max(this.lastNowMs, this.clock.nowMs());
    return this.lastNowMs;
  }

  private coordinatorOptions(): GroupCoordinatorOptions {
    const c = this.config;
    return {
      groupMinSessionTimeoutMs: c.groupMinSessionTimeoutMs,
      groupMaxSessionTimeoutMs: c.groupMaxSessionTimeoutMs,
      groupInitialRebalanceDelayMs: c.groupInitialRebalanceDelayMs,
      groupMaxSize: c.groupMaxSize,
      offsetMetadataMaxBytes: c.offsetMetadataMaxBytes,
      offsetsRetentionMs: c.offsetsRetentionMs,
      newMemberId: this.newMemberId,
    };
  }

  // ---- leadership ----

  private onRoleChange(change: ReplicaRoleChange): void {
    if (change.topic !== GROUP_METADATA_TOPIC_NAME || this.closed) return;
    const current = this.slots.get(change.partition);
    switch (change.role) {
      case 'leader':
        // The same leadership again (a new ISR) changes nothing for the coordinator.
        if (current?.leaderEpoch === change.leaderEpoch) return;
        if (current !== undefined) this.dropSlot(current, 'NOT_COORDINATOR');
        this.beginLoad(change.partition, change.leaderEpoch);
        return;
      case 'follower':
      case 'stopped':
        if (current !== undefined) {
          this.dropSlot(current, 'NOT_COORDINATOR');
          this.logger.info({ partition: change.partition, leaderEpoch: change.leaderEpoch }, 'no longer the coordinator of this __consumer_offsets partition');
        }
        return;
      default:
        assertNever(change.role, 'replica role');
    }
  }

  /** Removes a slot and answers everything waiting in it with `code`. */
  private dropSlot(slot: Slot, code: ErrorCodeName): void {
    if (this.slots.get(slot.partition) === slot) this.slots.delete(slot.partition);
    this.stopSlotTimers(slot);
    this.failWaiting(slot, code);
  }

  private stopSlotTimers(slot: Slot): void {
    if (slot.loadRetryTimer !== undefined) this.timers.clearTimeout(slot.loadRetryTimer);
    slot.loadRetryTimer = undefined;
    if (slot.state.kind === 'active' && slot.state.timer !== undefined) {
      this.timers.clearTimeout(slot.state.timer);
      slot.state.timer = undefined;
      slot.state.timerDeadlineMs = undefined;
    }
  }

  private failWaiting(slot: Slot, code: ErrorCodeName): void {
    const waiting = [...slot.waiting.values()];
    slot.waiting.clear();
    for (const request of waiting) request.resolve(request.failWith(code));
  }

  private beginLoad(partition: number, leaderEpoch: number): void {
    const slot: Slot = { partition, leaderEpoch, state: { kind: 'loading' }, waiting: new Map(), loadRetryTimer: undefined };
    this.slots.set(partition, slot);
    this.logger.info({ partition, leaderEpoch }, 'loading the groups of a __consumer_offsets partition');
    void this.load(slot);
  }

  /** True while `slot` is still the one serving its partition. */
  private isCurrent(slot: Slot): boolean {
    return !this.closed && this.slots.get(slot.partition) === slot;
  }

  private async load(slot: Slot): Promise<void> {
    const startedMs = this.clock.nowMs();
    try {
      const records = await this.readPartition(slot);
      if (!this.isCurrent(slot)) return;
      const coordinator = GroupCoordinator.loadFrom(records, this.coordinatorOptions(), this.nowMs());
      const durableOffsets = new Map<string, Map<string, Map<number, OffsetCommitValue>>>();
      applyOffsetRecords(durableOffsets, records);
      slot.state = { kind: 'active', coordinator, queue: [], appending: false, timer: undefined, timerDeadlineMs: undefined, durableOffsets };
      this.logger.info(
        { partition: slot.partition, leaderEpoch: slot.leaderEpoch, records: records.length, groups: coordinator.listGroups().length, loadMs: this.clock.nowMs() - startedMs },
        'loaded the groups of a __consumer_offsets partition',
      );
      this.armTimer(slot, coordinator.nextDeadlineMs());
    } catch (error) {
      if (!this.isCurrent(slot)) return;
      this.logger.error({ err: error, partition: slot.partition }, `loading a __consumer_offsets partition failed; retrying in ${LOAD_RETRY_BACKOFF_MS} ms`);
      slot.loadRetryTimer = this.timers.setTimeout(() => {
        slot.loadRetryTimer = undefined;
        if (this.isCurrent(slot)) void this.load(slot);
      }, LOAD_RETRY_BACKOFF_MS);
    }
  }

  /** Every record of the partition's local log, log start to log end, in offset order. */
  private async readPartition(slot: Slot): Promise<GroupRecord[]> {
    const log = this.replicaManager.logManager.getLog(GROUP_METADATA_TOPIC_NAME, slot.partition);
    if (log === undefined) throw new RaftkaError('NOT_LEADER_OR_FOLLOWER', `${GROUP_METADATA_TOPIC_NAME}-${slot.partition} is not hosted here`);
    const records: GroupRecord[] = [];
    // As a new leader, our log is the partition: everything in it up to its end is what the
    // previous coordinators wrote and clients may have been told about (acks=all).
    const endOffset = log.logEndOffset;
    let offset = log.logStartOffset;
    while (offset < endOffset && this.isCurrent(slot)) {
      const read = await log.read(offset, { maxBytes: LOAD_READ_BYTES, maxOffset: endOffset, minOneBatch: true });
      if (read.records.length === 0) break;
      let advanced = false;
      for (const { header, position } of batchesIn(read.records, 0, { verifyCrc: true })) {
        const lastOffset = header.baseOffset + header.lastOffsetDelta;
        if (lastOffset < offset) continue;
        if (!isControlBatch(header.attributes)) {
          const decoded = await decodeRecordBatch(read.records, position);
          for (const record of decoded.records) {
            // Kafka skips records without a key here; the coordinator never writes any.
            if (record.offset < offset || record.key === null) continue;
            records.push({ key: Buffer.from(record.key), value: record.value === null ? null : Buffer.from(record.value) });
          }
        }
        offset = lastOffset + 1;
        advanced = true;
      }
      if (!advanced) break;
    }
    return records;
  }

  // ---- serving ----

  /** The `__consumer_offsets` partition of `groupId`, or why this broker cannot serve it. */
  private route(groupId: string): { slot: Slot & { state: { kind: 'active' } } } | GroupRouteError {
    const topic = this.replicaManager.image?.topicByName(GROUP_METADATA_TOPIC_NAME);
    if (topic === undefined || topic.partitions.length === 0) {
      return { errorCode: 'NOT_COORDINATOR', message: `${GROUP_METADATA_TOPIC_NAME} does not exist yet; send FindCoordinator first` };
    }
    const partition = groupPartitionFor(groupId, topic.partitions.length);
    const slot = this.slots.get(partition);
    if (slot === undefined && topic.partitions[partition]!.leader === this.replicaManager.brokerId) {
      // The image names us, but the replica manager has not finished becoming leader yet.
      return { errorCode: 'COORDINATOR_LOAD_IN_PROGRESS', message: `the coordinator of group ${groupId} is taking over ${GROUP_METADATA_TOPIC_NAME}-${partition}; retry shortly` };
    }
    if (slot === undefined) {
      return { errorCode: 'NOT_COORDINATOR', message: `broker ${this.replicaManager.brokerId} is not the coordinator of group ${groupId}; find the coordinator again` };
    }
    if (slot.state.kind === 'loading') {
      return { errorCode: 'COORDINATOR_LOAD_IN_PROGRESS', message: `the coordinator of group ${groupId} is loading ${GROUP_METADATA_TOPIC_NAME}-${partition}; retry shortly` };
    }
    return { slot: slot as Slot & { state: { kind: 'active' } } };
  }

  /** Serves one group request; resolves when it is answered (parked joins and syncs may wait long). */
  handle(request: GroupRequest): Promise<GroupResponse> {
    if (this.closed) return Promise.resolve(groupErrorResponse(request, 'NOT_COORDINATOR'));
    const routed = this.route(request.groupId);
    if ('errorCode' in routed) return Promise.resolve(groupErrorResponse(request, routed.errorCode));
    const { slot } = routed;
    if (slot.waiting.size >= WAITING_REQUESTS_MAX) return Promise.resolve(groupErrorResponse(request, 'COORDINATOR_NOT_AVAILABLE'));
    return new Promise((resolve) => {
      const requestId = this.nextRequestId++;
      slot.waiting.set(requestId, { resolve, failWith: (code) => groupErrorResponse(request, code) });
      this.step(slot, { ...request, requestId } as GroupInput);
    });
  }

  /** DeleteGroups: each group at its own coordinator partition; groups not served here get its error. */
  async deleteGroups(groupIds: readonly string[]): Promise<DeleteGroupsResponse> {
    const results = new Map<string, { groupId: string; errorCode: ErrorCodeName }>();
    const byPartition = new Map<Slot, string[]>();
    for (const groupId of groupIds) {
      const routed = this.closed ? { errorCode: 'NOT_COORDINATOR' as ErrorCodeName, message: '' } : this.route(groupId);
      if ('errorCode' in routed) {
        results.set(groupId, { groupId, errorCode: routed.errorCode });
        continue;
      }
      const ids = byPartition.get(routed.slot) ?? [];
      ids.push(groupId);
      byPartition.set(routed.slot, ids);
    }
    await Promise.all(
      [...byPartition].map(
        ([slot, ids]) =>
          new Promise<void>((resolve) => {
            const requestId = this.nextRequestId++;
            const input: DeleteGroupsInput = { type: 'delete-groups', requestId, groupIds: ids };
            slot.waiting.set(requestId, {
              resolve: (response) => {
                if (response.api === 'delete-groups') for (const result of response.results) results.set(result.groupId, result);
                resolve();
              },
              failWith: (code) => groupErrorResponse(input, code),
            });
            this.step(slot, input);
          }),
      ),
    );
    return { api: 'delete-groups', results: groupIds.map((groupId) => results.get(groupId) ?? { groupId, errorCode: 'UNKNOWN_SERVER_ERROR' }) };
  }

  /** OffsetFetch: the committed offsets of a group this broker coordinates. */
  fetchOffsets(groupId: string, partitions?: readonly TopicPartition[]): { offsets: FetchedOffset[] } | GroupRouteError {
    if (this.closed) return { errorCode: 'NOT_COORDINATOR', message: 'the broker is shutting down' };
    const routed = this.route(groupId);
    if ('errorCode' in routed) return routed;
    const byTopic = routed.slot.state.durableOffsets.get(groupId);
    const found = (topic: string, partition: number): FetchedOffset => {
      const value = byTopic?.get(topic)?.get(partition);
      return value === undefined
        ? { topic, partition, offset: -1, leaderEpoch: NO_LEADER_EPOCH, metadata: '', errorCode: 'NONE' }
        : { topic, partition, offset: value.offset, leaderEpoch: value.leaderEpoch, metadata: value.metadata, errorCode: 'NONE' };
    };
    if (partitions !== undefined) return { offsets: partitions.map((tp) => found(tp.topic, tp.partition)) };
    const offsets: FetchedOffset[] = [];
    for (const [topic, byPartition] of byTopic ?? []) for (const partition of byPartition.keys()) offsets.push(found(topic, partition));
    return { offsets };
  }

  /** DescribeGroups: groups not coordinated here are answered with the reason. */
  describeGroups(groupIds: readonly string[]): (GroupDescription & { errorMessage: string })[] {
    return groupIds.map((groupId) => {
      const routed = this.closed ? ({ errorCode: 'NOT_COORDINATOR', message: 'the broker is shutting down' } as GroupRouteError) : this.route(groupId);
      if ('errorCode' in routed) {
        return { groupId, errorCode: routed.errorCode, errorMessage: routed.message, state: 'Dead', protocolType: '', protocolName: '', generationId: -1, leaderId: '', members: [] };
      }
      return { ...routed.slot.state.coordinator.describeGroups([groupId])[0]!, errorMessage: '' };
    });
  }

  /**
   * ListGroups: the groups of every partition this broker coordinates (as Kafka, the Admin asks
   * every broker); COORDINATOR_LOAD_IN_PROGRESS while any of them is still loading.
   */
  listGroups(states?: readonly GroupStateName[]): { errorCode: ErrorCodeName; message: string; groups: GroupListing[] } {
    const groups: GroupListing[] = [];
    let loading = false;
    for (const slot of this.slots.values()) {
      if (slot.state.kind === 'loading') loading = true;
      else groups.push(...slot.state.coordinator.listGroups(states));
    }
    if (loading) return { errorCode: 'COORDINATOR_LOAD_IN_PROGRESS', message: 'some group partitions are still loading; retry shortly', groups };
    return { errorCode: 'NONE', message: '', groups };
  }

  /** How a `__consumer_offsets` partition stands here (for tests and admin views). */
  coordinatorState(partition: number): 'none' | 'loading' | 'active' {
    return this.slots.get(partition)?.state.kind ?? 'none';
  }

  // ---- FindCoordinator ----

  /**
   * Where the coordinator of `groupId` is: the leader of its `__consumer_offsets` partition in the
   * metadata image. Asks the controller once to create the topic when it does not exist, and
   * answers COORDINATOR_NOT_AVAILABLE (retriable) until it has a leader. The address is the
   * coordinator's endpoint named `listenerName` (the listener the request arrived on), else its first.
   */
  findCoordinator(groupId: string, listenerName: string | undefined = this.options.listenerName): CoordinatorLocation {
    const image = this.replicaManager.image;
    const notAvailable = (message: string): CoordinatorLocation => ({ found: false, errorCode: 'COORDINATOR_NOT_AVAILABLE', message });
    if (image === undefined) return notAvailable('this broker has not loaded the cluster metadata yet; retry shortly');
    const topic = image.topicByName(GROUP_METADATA_TOPIC_NAME);
    if (topic === undefined || topic.partitions.length === 0) return notAvailable(this.createOffsetsTopic());
    const partition = groupPartitionFor(groupId, topic.partitions.length);
    const state = topic.partitions[partition]!;
    if (state.leader === NO_LEADER) return notAvailable(`${GROUP_METADATA_TOPIC_NAME}-${partition} has no leader; retry after the election`);
    const broker = image.brokers.get(state.leader);
    const endpoint = broker === undefined ? undefined : ((listenerName === undefined ? undefined : broker.endpoints.find((e) => e.name === listenerName)) ?? broker.endpoints[0]);
    if (broker === undefined || broker.fenced || endpoint === undefined) {
      return notAvailable(`the leader ${state.leader} of ${GROUP_METADATA_TOPIC_NAME}-${partition} is not available; retry shortly`);
    }
    return { found: true, nodeId: broker.brokerId, host: endpoint.host, port: endpoint.port };
  }

  /** Starts the creation of `__consumer_offsets` if allowed and not already asked; says why to wait. */
  private createOffsetsTopic(): string {
    const { offsetsTopicNumPartitions: partitions, offsetsTopicReplicationFactor: replicationFactor } = this.config;
    const image = this.replicaManager.image;
    const live = image === undefined ? 0 : [...image.brokers.values()].filter((broker) => !broker.fenced).length;
    // As Kafka: the replication factor is never silently reduced, which would leave the offsets
    // of every group on fewer copies than the operator asked for.
    if (live < replicationFactor) {
      return `${GROUP_METADATA_TOPIC_NAME} cannot be created yet: offsets.topic.replication.factor=${replicationFactor} needs that many live brokers and ${live} are live; start more brokers or lower offsets.topic.replication.factor`;
    }
    const create = this.options.createTopics;
    if (create === undefined) return `${GROUP_METADATA_TOPIC_NAME} does not exist yet; retry shortly`;
    const nowMs = this.clock.nowMs();
    if (this.topicCreation === undefined && nowMs - this.topicCreationAskedAtMs >= TOPIC_CREATION_RETRY_BACKOFF_MS) {
      this.topicCreationAskedAtMs = nowMs;
      this.logger.info({ partitions, replicationFactor }, `creating ${GROUP_METADATA_TOPIC_NAME}`);
      this.topicCreation = create({
        topics: [
          {
            name: GROUP_METADATA_TOPIC_NAME,
            numPartitions: partitions,
            replicationFactor,
            configs: {
              'cleanup.policy': 'compact',
              'compression.type': 'producer',
              'segment.bytes': String(this.config.offsetsTopicSegmentBytes),
            },
          },
        ],
      })
        .then((response) => {
          const failed = response.topics.find((topic) => topic.error !== undefined && topic.error.code !== 'TOPIC_ALREADY_EXISTS');
          if (failed !== undefined) this.logger.warn({ code: failed.error!.code, message: failed.error!.message }, `creating ${GROUP_METADATA_TOPIC_NAME} failed`);
        })
        .catch((error: unknown) => this.logger.warn({ err: error }, `asking the controller to create ${GROUP_METADATA_TOPIC_NAME} failed`))
        .finally(() => {
          // A later FindCoordinator asks again (after the back-off) if the topic still does not exist.
          this.topicCreation = undefined;
        });
    }
    return `${GROUP_METADATA_TOPIC_NAME} is being created; retry shortly`;
  }

  // ---- the core and its outputs ----

  private step(slot: Slot, input: GroupInput): void {
    const state = slot.state;
    if (state.kind !== 'active' || !this.isCurrent(slot)) {
      if ('requestId' in input) this.answer(slot, input.requestId, undefined, 'NOT_COORDINATOR');
      return;
    }
    let output;
    try {
      output = state.coordinator.step(input, this.nowMs());
    } catch (error) {
      // A bug in the core: its state cannot be trusted, but the log can. Everything waiting is
      // answered and the partition is reloaded, rather than the whole broker stopped.
      this.logger.error({ err: error, partition: slot.partition, input: input.type }, 'the group coordinator failed; reloading its partition');
      this.reload(slot, 'COORDINATOR_NOT_AVAILABLE');
      return;
    }
    if (output.records.length > 0 || output.responses.length > 0) {
      state.queue.push({ records: output.records, responses: output.responses, bytes: output.records.reduce((sum, r) => sum + recordBytes(r), 0) });
    }
    this.armTimer(slot, output.nextDeadlineMs);
    this.drain(slot);
  }

  private answer(slot: Slot, requestId: number, response: GroupResponse | undefined, code: ErrorCodeName = 'NONE'): void {
    const waiting = slot.waiting.get(requestId);
    if (waiting === undefined) return; // already answered by a drop or reload
    slot.waiting.delete(requestId);
    waiting.resolve(response ?? waiting.failWith(code));
  }

  /** Releases steps without records at the head; starts the next append when none is in flight. */
  private drain(slot: Slot): void {
    const state = slot.state;
    if (state.kind !== 'active' || state.appending) return;
    while (state.queue.length > 0 && state.queue[0]!.records.length === 0) {
      for (const { requestId, response } of state.queue.shift()!.responses) this.answer(slot, requestId, response);
    }
    if (state.queue.length === 0) return;
    const taken: QueuedStep[] = [];
    let bytes = 0;
    while (state.queue.length > 0) {
      const next = state.queue[0]!;
      if (taken.length > 0 && bytes + next.bytes > APPEND_BATCH_BYTES_MAX) break;
      taken.push(state.queue.shift()!);
      bytes += next.bytes;
    }
    const records = taken.flatMap((entry) => entry.records);
    const nowMs = this.nowMs();
    const batch = encodeRecordBatchSync({ records: records.map((r) => ({ key: r.key, value: r.value, timestamp: nowMs })), baseTimestamp: nowMs });
    state.appending = true;
    this.replicaManager
      .produce({ acks: -1, timeoutMs: this.config.offsetsCommitTimeoutMs, partitions: [{ topic: GROUP_METADATA_TOPIC_NAME, partition: slot.partition, records: batch }] })
      .then(
        ([result]) => (result === undefined ? 'UNKNOWN_SERVER_ERROR' : result.errorCode),
        (error: unknown) => {
          this.logger.error({ err: error, partition: slot.partition }, 'appending group records failed unexpectedly');
          return 'UNKNOWN_SERVER_ERROR' as ErrorCodeName;
        },
      )
      .then((appendCode) => {
        if (!this.isCurrent(slot) || slot.state !== state) {
          // The slot was dropped or reloaded meanwhile: its waiting requests are answered already.
          return;
        }
        state.appending = false;
        if (appendCode === 'NONE') {
          applyOffsetRecords(state.durableOffsets, records);
          for (const entry of taken) for (const { requestId, response } of entry.responses) this.answer(slot, requestId, response);
          this.drain(slot);
          return;
        }
        const code = appendErrorToGroupError(appendCode);
        this.logger.warn({ partition: slot.partition, appendCode, answered: code }, 'appending group records failed; reloading the partition from its log');
        // Every waiting request, not only those of this append: later steps built on its state.
        this.reload(slot, code);
      })
      .catch((error: unknown) => this.logger.error({ err: error, partition: slot.partition }, 'completing group requests failed'));
  }

  /** Answers everything waiting with `code` and rebuilds the coordinator from the log. */
  private reload(slot: Slot, code: ErrorCodeName): void {
    this.stopSlotTimers(slot);
    this.failWaiting(slot, code);
    if (!this.isCurrent(slot)) return;
    const status = this.replicaManager.replicaStatus(GROUP_METADATA_TOPIC_NAME, slot.partition);
    if (status?.role !== 'leader' || status.leaderEpoch !== slot.leaderEpoch) {
      // Leadership is gone; the role change that says so drops nothing more.
      this.dropSlot(slot, 'NOT_COORDINATOR');
      return;
    }
    // A fresh slot, so that an append of the old state completing late finds it replaced.
    this.slots.delete(slot.partition);
    this.beginLoad(slot.partition, slot.leaderEpoch);
  }

  private armTimer(slot: Slot, deadlineMs: number | undefined): void {
    const state = slot.state;
    if (state.kind !== 'active' || state.timerDeadlineMs === deadlineMs) return;
    if (state.timer !== undefined) this.timers.clearTimeout(state.timer);
    state.timer = undefined;
    state.timerDeadlineMs = deadlineMs;
    if (deadlineMs === undefined) return;
    state.timer = this.timers.setTimeout(
      () => {
        state.timer = undefined;
        state.timerDeadlineMs = undefined;
        this.step(slot, { type: 'tick' });
      },
      // Node fires longer delays at once; a clamped timer ticks early and is simply re-armed.
      Math.min(Math.max(0, deadlineMs - this.clock.nowMs()), TIMER_DELAY_MS_MAX),
    );
  }

  private scheduleOffsetExpiration(): void {
    this.expireTimer = this.timers.setTimeout(() => {
      this.expireTimer = undefined;
      if (this.closed) return;
      for (const slot of [...this.slots.values()]) if (slot.state.kind === 'active') this.step(slot, { type: 'expire-offsets' });
      this.scheduleOffsetExpiration();
    }, this.config.offsetsRetentionCheckIntervalMs);
  }

  /**
   * Stops serving: every waiting request is answered NOT_COORDINATOR (the clients find the next
   * coordinator) and the timers stop. Appends in flight finish in the replica manager.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    if (this.expireTimer !== undefined) this.timers.clearTimeout(this.expireTimer);
    for (const slot of [...this.slots.values()]) this.dropSlot(slot, 'NOT_COORDINATOR');
  }
}
