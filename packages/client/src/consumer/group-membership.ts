// One consumer's membership of its group (Kafka's classic group protocol, client side: the
// AbstractCoordinator / ConsumerCoordinator pair of the Java client).
//
// Membership states and the only transitions (one place changes them: `#setState`):
//   unjoined  no generation. -> joining (startJoin), closed.
//   joining   a JoinGroup/SyncGroup round is running in the background.
//             -> stable (SyncGroup gave an assignment), unjoined (fatal error), closed.
//   stable    member of generation `generationId`; heartbeats run on their own timer.
//             -> joining (startJoin after a rebalance was requested), unjoined (membership lost:
//             UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION, poll interval exceeded), closed.
//   closed    terminal.
//
// Why heartbeats have their own timer: the application's processing time between polls must not
// decide liveness, or a slow handler would make the coordinator expire the member and every slow
// batch would rebalance the whole group (KIP-62). Liveness of the *process* is the session timeout
// (heartbeats); progress of the *application* is maxPollIntervalMs, checked here too: a member that
// has not polled for that long leaves the group on its own (dynamic members send LeaveGroup;
// static members do not, KIP-345) so its partitions move to a member that makes progress.
//
// Why the join runs in the background: under the cooperative protocol (KIP-429) a member keeps
// reading the partitions it owns while the group rebalances; only the partitions the new
// assignment takes away are revoked, and revoking anything triggers an immediate second join. The
// consumer's poll applies assignments (so listener callbacks run inside poll, as in Kafka) and
// keeps fetching meanwhile. Under the eager protocol the consumer revokes everything before it
// starts the join.
//
// Error handling (as Kafka's consumer):
//   NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, transport errors -> forget the coordinator, find
//     it again with backoff, retry;
//   COORDINATOR_LOAD_IN_PROGRESS -> retry after backoff;
//   REBALANCE_IN_PROGRESS (heartbeat) -> rejoin, keeping partitions if cooperative;
//   UNKNOWN_MEMBER_ID -> forget member id and generation: partitions are lost (no commit), rejoin;
//   ILLEGAL_GENERATION -> forget the generation: partitions lost, rejoin with the same member id;
//   FENCED_INSTANCE_ID -> another process runs with this groupInstanceId: fatal for this consumer;
//   INCONSISTENT_GROUP_PROTOCOL, INVALID_SESSION_TIMEOUT, GROUP_MAX_SIZE_REACHED, INVALID_GROUP_ID
//     -> fatal configuration errors, thrown from poll.

import { invariant, RaftkaError } from '@raftka/protocol';
import { errorFromResponse, toRaftkaError, type ClientRuntime, type TopicPartition } from '../cluster-client.js';
import type {
  HeartbeatRequest,
  HeartbeatResponse,
  JoinGroupRequest,
  JoinGroupResponse,
  LeaveGroupRequest,
  LeaveGroupResponse,
  SyncGroupRequest,
  SyncGroupResponse,
} from '../network/client-messages.js';
import { decodeAssignment, encodeSubscription } from './assignors/consumer-protocol.js';
import { decodeMembers, performGroupAssignment, subscribedTopics } from './assignors/group-assignment.js';
import { rebalanceProtocolFor } from './assignors/protocol-selection.js';
import { DEFAULT_GENERATION, type PartitionAssignor, type RebalanceProtocol } from './assignors/types.js';
import { isCoordinatorMovedCode, type CoordinatorClient } from './coordinator-client.js';

/** Kafka's consumer protocol type: the coordinator only groups members of one type together. */
export const CONSUMER_PROTOCOL_TYPE = 'consumer';

/** JoinGroup may be parked for the whole rebalance timeout; the request deadline adds this slack (Kafka: 5 s). */
const JOIN_GROUP_TIMEOUT_SLACK_MS = 5000;

/** Consecutive failed join attempts before backoff stops growing (the backoff itself is capped). */
const JOIN_ATTEMPTS_BACKOFF_MAX = 16;

const ALLOWED_TRANSITIONS: Record<MembershipState, readonly MembershipState[]> = {
  unjoined: ['joining', 'closed'],
  joining: ['stable', 'unjoined', 'closed'],
  stable: ['joining', 'unjoined', 'closed'],
  closed: [],
};

/** How one join round ended: with an assignment, or needing another round now or after backoff. */
type JoinOutcome = 'done' | 'retry' | 'retry-now';

export type MembershipState = 'unjoined' | 'joining' | 'stable' | 'closed';

export interface MembershipOptions {
  groupId: string;
  groupInstanceId: string | undefined;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  maxPollIntervalMs: number;
  requestTimeoutMs: number;
  assignors: readonly PartitionAssignor[];
}

/** A SyncGroup answer, for the consumer's poll to apply. */
export interface ReceivedAssignment {
  generationId: number;
  partitions: TopicPartition[];
  protocol: RebalanceProtocol;
}

/** What the membership needs from the consumer that owns it. */
export interface MembershipHooks {
  /** The topics to put in the Subscription now (a pattern subscription resolved against metadata). */
  subscribedTopics(): Promise<string[]>;
  /** The partitions this member owns now (reported in the Subscription, KIP-429). */
  ownedPartitions(): TopicPartition[];
  /** Partition counts for the leader's assignment; topics unknown to the cluster are left out. */
  partitionCounts(topics: readonly string[]): Promise<Map<string, number>>;
  /** A new assignment arrived; the consumer applies it in its next poll. */
  onAssignment(assignment: ReceivedAssignment): void;
  /** The membership was lost (session expired, fenced generation): partitions go without commit. */
  onLost(reason: string): void;
  /** An error the application must see (thrown from the next poll). */
  onFatal(error: RaftkaError): void;
  /** True when the application has not polled for longer than maxPollIntervalMs. */
  pollIntervalExceeded(nowMs: number): boolean;
}

export class GroupMembership {
  readonly options: MembershipOptions;
  /** eager or cooperative, fixed by the configured assignors (Kafka's rule, see protocol-selection.ts). */
  readonly rebalanceProtocol: RebalanceProtocol;
  readonly #coordinator: CoordinatorClient;
  readonly #runtime: ClientRuntime;
  readonly #hooks: MembershipHooks;
  #state: MembershipState = 'unjoined';
  /** '' until the coordinator hands out an id (KIP-394). */
  #memberId = '';
  // Invariant: DEFAULT_GENERATION unless the state is stable or joining from stable.
  #generationId = DEFAULT_GENERATION;
  #protocolName: string | undefined;
  #rejoinNeeded = false;
  #rejoinAfterJoin = false;
  // The partition counts this member assigned from, when it was the leader of the generation.
  #assignedPartitionCounts: ReadonlyMap<string, number> | undefined;
  #joinTask: Promise<void> | undefined;
  #heartbeatTimer: unknown;
  #heartbeatInFlight = false;
  #lastHeartbeatOkMs = 0;
  #failedHeartbeats = 0;

  constructor(coordinator: CoordinatorClient, runtime: ClientRuntime, options: MembershipOptions, hooks: MembershipHooks) {
    this.#coordinator = coordinator;
    this.#runtime = runtime;
    this.options = options;
    this.#hooks = hooks;
    this.rebalanceProtocol = rebalanceProtocolFor(options.assignors);
  }

  get state(): MembershipState {
    return this.#state;
  }

  get memberId(): string {
    return this.#memberId;
  }

  get generationId(): number {
    return this.#generationId;
  }

  get protocolName(): string | undefined {
    return this.#protocolName;
  }

  /**
   * As leader of the current generation, the partition counts it assigned from (undefined for
   * followers). Kafka's leader rejoins when these change (partitions added to a subscribed
   * topic), since only the leader's rejoin makes a Stable group rebalance.
   */
  get assignedPartitionCounts(): ReadonlyMap<string, number> | undefined {
    return this.#state === 'stable' ? this.#assignedPartitionCounts : undefined;
  }

  /** True when the member must (re)join: never joined, membership lost, or a rebalance asked for. */
  get needsJoin(): boolean {
    return this.#state === 'unjoined' || (this.#state === 'stable' && this.#rejoinNeeded);
  }

  get joining(): boolean {
    return this.#state === 'joining';
  }

  /** Asks for a rejoin at the next poll (subscription changed, cooperative second round). */
  requestRejoin(): void {
    if (this.#state === 'stable') this.#rejoinNeeded = true;
    // A join in flight may carry the old subscription: join again once it completes.
    if (this.#state === 'joining') this.#rejoinAfterJoin = true;
  }

  /** Starts a join round in the background unless one runs; `done` resolves when it ends. */
  startJoin(): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    if (this.#joinTask) return this.#joinTask;
    this.#setState('joining');
    this.#stopHeartbeats();
    this.#joinTask = this.#joinUntilDone()
      .catch((error: unknown) => {
        if (this.#state === 'closed') return;
        this.#generationId = DEFAULT_GENERATION;
        this.#setState('unjoined');
        this.#hooks.onFatal(toRaftkaError(error));
      })
      .finally(() => {
        this.#joinTask = undefined;
      });
    return this.#joinTask;
  }

  /** The identity commits carry: the current generation, or -1 and '' when not a member. */
  commitIdentity(): { groupId: string; generationId: number; memberId: string; groupInstanceId: string | undefined } {
    return { groupId: this.options.groupId, generationId: this.#generationId, memberId: this.#memberId, groupInstanceId: this.options.groupInstanceId };
  }

  /**
   * A commit made in `generationId` was refused with UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION: the
   * membership is gone, unless a join is already under way or done since (Kafka only resets
   * when the generation is unchanged). FENCED_INSTANCE_ID is fatal.
   */
  onCommitRefused(code: string, generationId: number): void {
    if (code !== 'FENCED_INSTANCE_ID' && (this.#state !== 'stable' || generationId !== this.#generationId)) return;
    switch (code) {
      case 'UNKNOWN_MEMBER_ID':
        this.#loseMembership(true, 'a commit found the member unknown to the coordinator');
        return;
      case 'ILLEGAL_GENERATION':
        this.#loseMembership(false, 'a commit was refused: the generation is over');
        return;
      case 'FENCED_INSTANCE_ID':
        this.#fenced();
        return;
      default:
        return;
    }
  }

  /**
   * Leaves the group: stops heartbeats and, for a dynamic member, sends LeaveGroup so its
   * partitions move at once. A static member does not (KIP-345): a restart within the session
   * timeout then gets its partitions back without a rebalance.
   */
  async leave(reason: string): Promise<void> {
    const wasMember = this.#memberId !== '' && this.#state !== 'closed';
    this.#setState('closed');
    this.#stopHeartbeats();
    if (!wasMember || this.options.groupInstanceId !== undefined) return;
    await this.#sendLeave(reason).catch(() => undefined);
  }

  // ---- joining -------------------------------------------------------------------------------

  async #joinUntilDone(): Promise<void> {
    let attempt = 0;
    for (;;) {
      if (this.#state !== 'joining') return;
      if (attempt > 0) await this.#delay(this.#coordinator.backoffMs(Math.min(attempt, JOIN_ATTEMPTS_BACKOFF_MAX)));
      if (this.#state !== 'joining') return;
      attempt += 1;
      let outcome: JoinOutcome;
      try {
        outcome = await this.#joinOnce();
      } catch (error) {
        const raftkaError = toRaftkaError(error);
        if (raftkaError.code === 'SHUTTING_DOWN' || this.state === 'closed') return;
        if (!raftkaError.retriable) throw raftkaError;
        continue;
      }
      if (outcome === 'done') return;
      if (outcome === 'retry-now') attempt = 0;
    }
  }

  #delay(delayMs: number): Promise<void> {
    return new Promise((resolve) => this.#runtime.timers.setTimeout(resolve, Math.max(0, delayMs)));
  }

  /** One JoinGroup + SyncGroup round; 'retry' after errors that only need another attempt. */
  async #joinOnce(): Promise<JoinOutcome> {
    const topics = await this.#hooks.subscribedTopics();
    const owned = this.rebalanceProtocol === 'cooperative' ? this.#hooks.ownedPartitions() : [];
    const ownedGeneration = owned.length > 0 ? this.#generationId : DEFAULT_GENERATION;
    const request: JoinGroupRequest = {
      groupId: this.options.groupId,
      sessionTimeoutMs: this.options.sessionTimeoutMs,
      rebalanceTimeoutMs: this.options.maxPollIntervalMs,
      memberId: this.#memberId,
      groupInstanceId: this.options.groupInstanceId,
      protocolType: CONSUMER_PROTOCOL_TYPE,
      protocols: this.options.assignors.map((assignor) => ({
        name: assignor.name,
        metadata: Buffer.from(
          encodeSubscription({ topics, ownedPartitions: owned, generationId: ownedGeneration, userData: assignor.subscriptionUserData(ownedGeneration), rackId: null }),
        ),
      })),
      reason: this.#generationId === DEFAULT_GENERATION ? 'joining the group' : 'rebalance requested',
    };
    const joined = await this.#coordinator.call<JoinGroupRequest, JoinGroupResponse>('JoinGroup', request, {
      timeoutMs: this.options.maxPollIntervalMs + Math.max(this.options.requestTimeoutMs, JOIN_GROUP_TIMEOUT_SLACK_MS),
      errorCodeOf: (response) => response.errorCode,
    });
    if (this.#state !== 'joining') return 'done';
    if (joined.errorCode !== 0) {
      const error = errorFromResponse(joined.errorCode, joined.errorMessage, `joining group ${this.options.groupId}`);
      return this.#onJoinOrSyncError(error, joined.memberId);
    }
    this.#memberId = joined.memberId;
    const generationId = joined.generationId;
    const assignor = this.options.assignors.find((candidate) => candidate.name === joined.protocolName);
    if (!assignor) {
      throw new RaftkaError('INCONSISTENT_GROUP_PROTOCOL', `the coordinator chose assignor "${joined.protocolName}", which this consumer did not offer`, { retriable: false });
    }
    let assignments: SyncGroupRequest['assignments'] = [];
    let leaderCounts: Map<string, number> | undefined;
    if (joined.leader === joined.memberId && !joined.skipAssignment) {
      const members = joined.members.map((member) => ({ memberId: member.memberId, groupInstanceId: member.groupInstanceId ?? undefined, metadata: member.metadata }));
      const counts = await this.#hooks.partitionCounts(subscribedTopics(decodeMembers(members)));
      const encoded = performGroupAssignment(assignor, members, counts);
      leaderCounts = counts;
      assignments = [...encoded].map(([memberId, assignment]) => ({ memberId, assignment: Buffer.from(assignment) }));
    }
    const synced = await this.#coordinator.call<SyncGroupRequest, SyncGroupResponse>(
      'SyncGroup',
      {
        groupId: this.options.groupId,
        generationId,
        memberId: this.#memberId,
        groupInstanceId: this.options.groupInstanceId,
        protocolType: CONSUMER_PROTOCOL_TYPE,
        protocolName: assignor.name,
        assignments,
      },
      { timeoutMs: this.options.maxPollIntervalMs + Math.max(this.options.requestTimeoutMs, JOIN_GROUP_TIMEOUT_SLACK_MS), errorCodeOf: (response) => response.errorCode },
    );
    if (this.#state !== 'joining') return 'done';
    if (synced.errorCode !== 0) {
      const error = errorFromResponse(synced.errorCode, synced.errorMessage, `syncing group ${this.options.groupId}`);
      return this.#onJoinOrSyncError(error, this.#memberId);
    }
    const partitions = synced.assignment.length === 0 ? [] : [...decodeAssignment(synced.assignment).value.partitions];
    this.#generationId = generationId;
    this.#protocolName = assignor.name;
    this.#assignedPartitionCounts = leaderCounts;
    this.#rejoinNeeded = this.#rejoinAfterJoin;
    this.#rejoinAfterJoin = false;
    this.#setState('stable');
    this.#lastHeartbeatOkMs = this.#runtime.clock();
    this.#failedHeartbeats = 0;
    this.#hooks.onAssignment({ generationId, partitions, protocol: assignor.rebalanceProtocol === 'cooperative' && this.rebalanceProtocol === 'cooperative' ? 'cooperative' : 'eager' });
    this.#scheduleHeartbeat(this.options.heartbeatIntervalMs);
    return 'done';
  }

  #onJoinOrSyncError(error: RaftkaError, memberId: string): JoinOutcome {
    switch (error.code) {
      case 'MEMBER_ID_REQUIRED':
        // KIP-394: join again at once with the id the coordinator handed out.
        this.#memberId = memberId;
        return 'retry-now';
      case 'UNKNOWN_MEMBER_ID':
        this.#memberId = '';
        this.#generationId = DEFAULT_GENERATION;
        return 'retry-now';
      case 'ILLEGAL_GENERATION':
        this.#generationId = DEFAULT_GENERATION;
        return 'retry-now';
      case 'REBALANCE_IN_PROGRESS':
        // The generation being synced was abandoned (a member came or went): join the next one.
        return 'retry-now';
      case 'NOT_COORDINATOR':
      case 'COORDINATOR_NOT_AVAILABLE':
      case 'COORDINATOR_LOAD_IN_PROGRESS':
        return 'retry';
      case 'FENCED_INSTANCE_ID':
        throw new RaftkaError(
          'FENCED_INSTANCE_ID',
          `another consumer joined group ${this.options.groupId} with groupInstanceId ${JSON.stringify(this.options.groupInstanceId)}; this one is fenced (give each process its own groupInstanceId)`,
          { retriable: false },
        );
      default:
        throw new RaftkaError(error.code, error.message, { retriable: false });
    }
  }

  // ---- heartbeats ----------------------------------------------------------------------------

  #scheduleHeartbeat(delayMs: number): void {
    this.#stopHeartbeats();
    this.#heartbeatTimer = this.#runtime.timers.setTimeout(() => {
      this.#heartbeatTimer = undefined;
      this.#heartbeatTick();
    }, Math.max(1, delayMs));
  }

  #stopHeartbeats(): void {
    if (this.#heartbeatTimer !== undefined) this.#runtime.timers.clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  #heartbeatTick(): void {
    if (this.#state !== 'stable') return;
    const nowMs = this.#runtime.clock();
    if (this.#hooks.pollIntervalExceeded(nowMs)) {
      // The application stopped making progress: leave so the partitions move (KIP-62).
      const dynamic = this.options.groupInstanceId === undefined;
      if (dynamic) void this.#sendLeave('consumer poll timeout has expired').catch(() => undefined);
      this.#loseMembership(dynamic, `no poll for more than maxPollIntervalMs (${this.options.maxPollIntervalMs} ms)`);
      return;
    }
    if (nowMs - this.#lastHeartbeatOkMs > this.options.sessionTimeoutMs) {
      // No heartbeat got through for a whole session: the coordinator has probably expired us, or
      // moved. Look it up again; the next answer tells which.
      this.#coordinator.markUnknown();
    }
    this.#scheduleHeartbeat(this.#failedHeartbeats > 0 ? Math.min(this.options.heartbeatIntervalMs, this.#coordinator.backoffMs(this.#failedHeartbeats)) : this.options.heartbeatIntervalMs);
    if (this.#heartbeatInFlight) return;
    this.#heartbeatInFlight = true;
    const generationId = this.#generationId;
    this.#coordinator
      .call<HeartbeatRequest, HeartbeatResponse>(
        'Heartbeat',
        { groupId: this.options.groupId, generationId, memberId: this.#memberId, groupInstanceId: this.options.groupInstanceId },
        { timeoutMs: Math.min(this.options.requestTimeoutMs, this.options.sessionTimeoutMs), errorCodeOf: (response) => response.errorCode },
      )
      .then(
        (response) => this.#onHeartbeatResponse(generationId, response),
        () => {
          this.#failedHeartbeats += 1;
        },
      )
      .finally(() => {
        this.#heartbeatInFlight = false;
      });
  }

  #onHeartbeatResponse(generationId: number, response: HeartbeatResponse): void {
    if (this.#state !== 'stable' || generationId !== this.#generationId) return;
    if (response.errorCode === 0) {
      this.#lastHeartbeatOkMs = this.#runtime.clock();
      this.#failedHeartbeats = 0;
      return;
    }
    const error = errorFromResponse(response.errorCode, response.errorMessage, 'heartbeat');
    switch (error.code) {
      case 'REBALANCE_IN_PROGRESS':
        // The coordinator heard us (the session is fresh) and asks everyone to rejoin.
        this.#lastHeartbeatOkMs = this.#runtime.clock();
        this.#failedHeartbeats = 0;
        this.#rejoinNeeded = true;
        return;
      case 'UNKNOWN_MEMBER_ID':
        this.#loseMembership(true, 'the coordinator no longer knows this member (session expired)');
        return;
      case 'ILLEGAL_GENERATION':
        this.#loseMembership(false, 'the group moved to a newer generation without this member');
        return;
      case 'FENCED_INSTANCE_ID':
        this.#fenced();
        return;
      default:
        if (isCoordinatorMovedCode(error.code) || error.retriable) {
          this.#failedHeartbeats += 1;
          return;
        }
        this.#hooks.onFatal(error);
        return;
    }
  }

  // ---- losing the membership -----------------------------------------------------------------

  #loseMembership(forgetMemberId: boolean, reason: string): void {
    if (this.#state !== 'stable' && this.#state !== 'joining') return;
    if (forgetMemberId) this.#memberId = '';
    this.#generationId = DEFAULT_GENERATION;
    this.#rejoinNeeded = false;
    this.#stopHeartbeats();
    if (this.#state === 'stable') this.#setState('unjoined');
    this.#hooks.onLost(reason);
  }

  #fenced(): void {
    this.#stopHeartbeats();
    this.#generationId = DEFAULT_GENERATION;
    if (this.#state === 'stable') this.#setState('unjoined');
    this.#hooks.onFatal(
      new RaftkaError(
        'FENCED_INSTANCE_ID',
        `another consumer joined group ${this.options.groupId} with groupInstanceId ${JSON.stringify(this.options.groupInstanceId)}; this one is fenced`,
        { retriable: false },
      ),
    );
  }

  async #sendLeave(reason: string): Promise<void> {
    const memberId = this.#memberId;
    if (memberId === '') return;
    await this.#coordinator.call<LeaveGroupRequest, LeaveGroupResponse>(
      'LeaveGroup',
      { groupId: this.options.groupId, members: [{ memberId, groupInstanceId: this.options.groupInstanceId, reason }] },
      { errorCodeOf: (response) => response.errorCode },
    );
  }

  /** The one place the state changes; a closed membership stays closed (late answers are ignored). */
  #setState(next: MembershipState): void {
    const from = this.#state;
    if (from === 'closed') return;
    invariant(ALLOWED_TRANSITIONS[from].includes(next), () => `group membership: illegal transition ${from} -> ${next}`);
    this.#state = next;
  }
}
