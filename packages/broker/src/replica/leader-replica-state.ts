// The leader's view of one partition it leads: which replicas are in sync, how far each follower
// has fetched, and where the high watermark (HW) is. Pure decision logic: no I/O, no clock reads
// (every event carries `nowMs`), so the replica manager that wires it to the log, the fetch
// service and the controller stays thin and deterministic tests drive it directly.
//
// Terms: LEO = log end offset (the next offset to be written); HW = the exclusive bound below
// which every record is on every ISR member, so consumers may read it and acks=all may answer.
//
// ISR changes go to the controller as AlterPartition proposals {newIsr, leaderEpoch,
// partitionEpoch} and take effect only once committed (KIP-497). At most one proposal is in flight.
// While one is, the HW is computed over the "maximal ISR" — the union of the committed ISR and
// the proposed one — so that the HW never advances on a shrunken ISR the controller has not
// committed: if the shrink were refused, a record acknowledged on the smaller set would be
// missing from a member that can still be elected leader.
//
// Pending-change table (`pending` is set only by maybeExpandIsr/maybeShrinkIsr and cleared only
// by onAlterPartitionResponse/onPartitionMetadata):
//   none      --follower catches up--> expanding (maximal = isr + follower)
//   none      --followers lag-------->  shrinking (maximal = isr, committed set still counts)
//   expanding/shrinking --response or newer metadata--> none
//
// Follower catch-up follows Kafka's Replica.updateFetchState: a fetch at `fetchOffset` means the
// follower holds everything below it; it is caught up as of that fetch if fetchOffset reached the
// leader's LEO at that moment, or caught up as of its previous fetch if fetchOffset reached the
// leader's LEO as of that previous fetch.

import { assertNever, invariant, type ErrorCodeName } from '@raftka/protocol';

/** A follower LEO the leader has not learned yet (no fetch since this leadership began). */
export const UNKNOWN_LOG_END_OFFSET = -1;

export interface ReplicaLagConfig {
  /** replica.lag.time.max.ms: a follower not caught up for longer leaves the ISR (default 30 s). */
  replicaLagTimeMaxMs: number;
  /** min.insync.replicas: acks=all needs at least this many ISR members. */
  minInsyncReplicas: number;
}

export const REPLICA_LAG_TIME_MAX_MS_DEFAULT = 30_000;

export interface FollowerState {
  readonly replicaId: number;
  /** LEO the follower acknowledged by its latest fetch offset; UNKNOWN_LOG_END_OFFSET before. */
  logEndOffset: number;
  lastFetchTimeMs: number;
  /** The last time the follower had everything the leader had (Kafka's lastCaughtUpTimeMs). */
  lastCaughtUpTimeMs: number;
  /** The leader's LEO when the follower last fetched. */
  lastFetchLeaderLogEndOffset: number;
}

export interface AlterPartitionProposal {
  /** Distinguishes proposals so a late response to an old one is ignored. */
  readonly proposalId: number;
  readonly newIsr: readonly number[];
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
}

export type PendingIsrChange =
  | { kind: 'expanding'; proposal: AlterPartitionProposal; addedReplicaId: number }
  | { kind: 'shrinking'; proposal: AlterPartitionProposal; removedReplicaIds: readonly number[] };

/** The partition as the metadata log (or a committed AlterPartition) states it. */
export interface CommittedPartitionState {
  replicas: readonly number[];
  isr: readonly number[];
  leaderEpoch: number;
  partitionEpoch: number;
}

export interface LeaderReplicaStateOptions extends CommittedPartitionState {
  localBrokerId: number;
  /** The leader's LEO when it became leader: the first offset of its epoch (KIP-101). */
  leaderEpochStartOffset: number;
  /** The HW the log holds (checkpointed); it only moves forward from here. */
  highWatermark: number;
  nowMs: number;
  config: ReplicaLagConfig;
  /** Brokers that may join the ISR (registered, unfenced, not shutting down); default all. */
  isReplicaEligible?: (replicaId: number) => boolean;
}

export interface FollowerFetchResult {
  /** Set when the HW moved; the caller stores it in the log and completes delayed operations. */
  highWatermarkAdvancedTo: number | undefined;
  /** Set when this fetch let the follower rejoin the ISR; send it to the controller. */
  proposal: AlterPartitionProposal | undefined;
}

/** What AlterPartition answered for our partition. */
export type AlterPartitionOutcome =
  | { kind: 'committed'; state: CommittedPartitionState & { leader: number } }
  | { kind: 'failed'; code: ErrorCodeName };

export type ProduceAckCheck =
  | { kind: 'waiting' }
  | { kind: 'done'; code: 'NONE' | 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' };

export class LeaderReplicaState {
  readonly localBrokerId: number;
  readonly config: ReplicaLagConfig;
  private readonly isReplicaEligible: (replicaId: number) => boolean;
  private replicasValue: readonly number[];
  // Invariant: contains localBrokerId; a subset of replicas.
  private isrValue: readonly number[];
  private leaderEpochValue: number;
  private partitionEpochValue: number;
  private readonly leaderEpochStartOffset: number;
  // Invariant: leaderLogEndOffset >= leaderEpochStartOffset.
  private leaderLogEndOffset: number;
  // Invariant: never decreases; never above leaderLogEndOffset; when it advances, no member of
  // the maximal ISR has a smaller known LEO.
  private highWatermarkValue: number;
  private readonly followers = new Map<number, FollowerState>();
  private pending: PendingIsrChange | undefined;
  private nextProposalId = 1;

  constructor(options: LeaderReplicaStateOptions) {
    invariant(options.isr.includes(options.localBrokerId), 'the leader is a member of the ISR it leads');
    invariant(options.highWatermark <= options.leaderEpochStartOffset, 'the HW is never above the leader LEO');
    invariant(options.config.minInsyncReplicas >= 1 && options.config.replicaLagTimeMaxMs > 0, 'replica lag config is positive');
    this.localBrokerId = options.localBrokerId;
    this.config = options.config;
    this.isReplicaEligible = options.isReplicaEligible ?? (() => true);
    this.replicasValue = [...options.replicas];
    this.isrValue = [...options.isr];
    this.leaderEpochValue = options.leaderEpoch;
    this.partitionEpochValue = options.partitionEpoch;
    this.leaderEpochStartOffset = options.leaderEpochStartOffset;
    this.leaderLogEndOffset = options.leaderEpochStartOffset;
    this.highWatermarkValue = options.highWatermark;
    this.resetFollowers(options.nowMs);
  }

  get replicas(): readonly number[] {
    return this.replicasValue;
  }
  /** The committed ISR. */
  get isr(): readonly number[] {
    return this.isrValue;
  }
  /** Committed ISR plus a proposed addition (KIP-497): the set the HW waits for. */
  get maximalIsr(): readonly number[] {
    const pending = this.pending;
    if (pending?.kind === 'expanding' && !this.isrValue.includes(pending.addedReplicaId)) {
      return [...this.isrValue, pending.addedReplicaId];
    }
    return this.isrValue;
  }
  get leaderEpoch(): number {
    return this.leaderEpochValue;
  }
  get partitionEpoch(): number {
    return this.partitionEpochValue;
  }
  get highWatermark(): number {
    return this.highWatermarkValue;
  }
  get logEndOffset(): number {
    return this.leaderLogEndOffset;
  }
  get pendingIsrChange(): PendingIsrChange | undefined {
    return this.pending;
  }
  follower(replicaId: number): Readonly<FollowerState> | undefined {
    return this.followers.get(replicaId);
  }

  /** The leader appended: its LEO moved. With a single-member ISR this alone moves the HW. */
  onLeaderAppend(logEndOffset: number): number | undefined {
    invariant(logEndOffset >= this.leaderLogEndOffset, 'the leader LEO never moves back while it leads');
    this.leaderLogEndOffset = logEndOffset;
    return this.maybeAdvanceHighWatermark();
  }

  /**
   * A follower fetched at `fetchOffset` (so it holds everything below it). Updates its state,
   * the HW, and proposes an ISR expansion when it qualifies.
   */
  onFollowerFetch(args: { replicaId: number; fetchOffset: number; nowMs: number }): FollowerFetchResult {
    const follower = this.followers.get(args.replicaId);
    // The fetch service answers fetches from non-replicas (NOT_LEADER_OR_FOLLOWER / UNKNOWN) itself.
    invariant(follower !== undefined, () => `replica ${args.replicaId} is not a follower of this partition`);
    invariant(args.fetchOffset >= 0 && args.fetchOffset <= this.leaderLogEndOffset, 'a follower never fetches past the leader LEO (the fetch path validates it)');
    // Kafka's Replica.updateFetchState (the lastCaughtUpTimeMs rule).
    if (args.fetchOffset >= this.leaderLogEndOffset) {
      follower.lastCaughtUpTimeMs = Math.max(follower.lastCaughtUpTimeMs, args.nowMs);
    } else if (args.fetchOffset >= follower.lastFetchLeaderLogEndOffset) {
      follower.lastCaughtUpTimeMs = Math.max(follower.lastCaughtUpTimeMs, follower.lastFetchTimeMs);
    }
    follower.logEndOffset = args.fetchOffset;
    follower.lastFetchLeaderLogEndOffset = this.leaderLogEndOffset;
    follower.lastFetchTimeMs = args.nowMs;

    const proposal = this.maybeExpandIsr(follower);
    return { highWatermarkAdvancedTo: this.maybeAdvanceHighWatermark(), proposal };
  }

  /**
   * Periodic check (Kafka runs it every replica.lag.time.max.ms / 2): proposes removing followers
   * that have not been caught up for replica.lag.time.max.ms. Never removes the leader.
   */
  maybeShrinkIsr(nowMs: number): AlterPartitionProposal | undefined {
    if (this.pending !== undefined) return undefined;
    const outOfSync = this.isrValue.filter((id) => id !== this.localBrokerId && this.isOutOfSync(id, nowMs));
    if (outOfSync.length === 0) return undefined;
    const newIsr = this.isrValue.filter((id) => !outOfSync.includes(id));
    const proposal = this.makeProposal(newIsr);
    this.pending = { kind: 'shrinking', proposal, removedReplicaIds: outOfSync };
    return proposal;
  }

  /** The controller answered the proposal. Responses to anything but the pending one are ignored. */
  onAlterPartitionResponse(proposal: AlterPartitionProposal, outcome: AlterPartitionOutcome): { highWatermarkAdvancedTo: number | undefined } {
    if (this.pending?.proposal.proposalId !== proposal.proposalId) return { highWatermarkAdvancedTo: undefined };
    this.pending = undefined;
    switch (outcome.kind) {
      case 'committed':
        // A state older than ours (metadata already moved on) must not roll it back.
        if (outcome.state.partitionEpoch > this.partitionEpochValue && outcome.state.leaderEpoch === this.leaderEpochValue) {
          this.applyCommitted(outcome.state);
        }
        break;
      case 'failed':
        // FENCED_LEADER_EPOCH / INVALID_UPDATE_VERSION mean our view is stale: the metadata log
        // will bring the current state. Other errors: the next fetch or shrink check re-proposes.
        break;
      default:
        return assertNever(outcome, 'AlterPartition outcome');
    }
    return { highWatermarkAdvancedTo: this.maybeAdvanceHighWatermark() };
  }

  /**
   * The metadata log published a new state for this partition with this broker still leader in
   * the same leader epoch (an ISR change committed by us or by the controller itself). A new
   * leader epoch means a new leadership: build a new LeaderReplicaState instead.
   */
  onPartitionMetadata(state: CommittedPartitionState): { highWatermarkAdvancedTo: number | undefined } {
    invariant(state.leaderEpoch === this.leaderEpochValue, 'a new leader epoch starts a new LeaderReplicaState');
    if (state.partitionEpoch <= this.partitionEpochValue) return { highWatermarkAdvancedTo: undefined };
    this.pending = undefined;
    this.applyCommitted(state);
    return { highWatermarkAdvancedTo: this.maybeAdvanceHighWatermark() };
  }

  /** acks=all admission (Kafka: NOT_ENOUGH_REPLICAS when the committed ISR is below min.insync.replicas). */
  checkAppendAllowed(requiredAcks: number): 'NONE' | 'NOT_ENOUGH_REPLICAS' {
    if (requiredAcks === -1 && this.isrValue.length < this.config.minInsyncReplicas) return 'NOT_ENOUGH_REPLICAS';
    return 'NONE';
  }

  /**
   * Whether an acks=all append whose last offset is `lastOffset` may be answered: once the HW is
   * past it. If the ISR shrank below min.insync.replicas meanwhile, the record is stored but
   * under-replicated: NOT_ENOUGH_REPLICAS_AFTER_APPEND (Kafka's checkEnoughReplicasReachOffset).
   */
  checkProduceAcked(lastOffset: number): ProduceAckCheck {
    if (this.highWatermarkValue <= lastOffset) return { kind: 'waiting' };
    const code = this.maximalIsr.length >= this.config.minInsyncReplicas ? 'NONE' : 'NOT_ENOUGH_REPLICAS_AFTER_APPEND';
    return { kind: 'done', code };
  }

  private isOutOfSync(replicaId: number, nowMs: number): boolean {
    const follower = this.followers.get(replicaId);
    if (follower === undefined) return true;
    // Kafka's isCaughtUp: at the leader's LEO, or caught up within the allowed lag.
    if (follower.logEndOffset === this.leaderLogEndOffset) return false;
    return nowMs - follower.lastCaughtUpTimeMs > this.config.replicaLagTimeMaxMs;
  }

  private maybeExpandIsr(follower: FollowerState): AlterPartitionProposal | undefined {
    if (this.pending !== undefined || this.isrValue.includes(follower.replicaId)) return undefined;
    if (!this.isReplicaEligible(follower.replicaId)) return undefined;
    // Kafka's isFollowerInSync: LEO >= HW, and the follower holds an offset of the current
    // leader epoch, so it has truncated any divergent suffix of older epochs (KIP-101) and
    // cannot be elected with records the current leader never had.
    if (follower.logEndOffset < this.highWatermarkValue || follower.logEndOffset < this.leaderEpochStartOffset) return undefined;
    const proposal = this.makeProposal([...this.isrValue, follower.replicaId]);
    this.pending = { kind: 'expanding', proposal, addedReplicaId: follower.replicaId };
    return proposal;
  }

  private makeProposal(newIsr: number[]): AlterPartitionProposal {
    return { proposalId: this.nextProposalId++, newIsr, leaderEpoch: this.leaderEpochValue, partitionEpoch: this.partitionEpochValue };
  }

  private applyCommitted(state: CommittedPartitionState): void {
    invariant(state.isr.includes(this.localBrokerId), 'the controller never removes the leader from its own ISR in the same leader epoch');
    this.replicasValue = [...state.replicas];
    this.isrValue = [...state.isr];
    this.partitionEpochValue = state.partitionEpoch;
    // Replicas added by a reassignment start unknown; removed ones are forgotten.
    for (const id of this.replicasValue) {
      if (id !== this.localBrokerId && !this.followers.has(id)) this.followers.set(id, newFollower(id, -Infinity));
    }
    for (const id of [...this.followers.keys()]) if (!this.replicasValue.includes(id)) this.followers.delete(id);
  }

  private resetFollowers(nowMs: number): void {
    this.followers.clear();
    for (const id of this.replicasValue) {
      if (id === this.localBrokerId) continue;
      // Kafka gives ISR members a grace period on leadership change: they count as caught up
      // now, so a new leader does not shrink the ISR before followers had a chance to fetch.
      this.followers.set(id, newFollower(id, this.isrValue.includes(id) ? nowMs : -Infinity));
    }
  }

  private maybeAdvanceHighWatermark(): number | undefined {
    let candidate = this.leaderLogEndOffset;
    for (const id of this.maximalIsr) {
      if (id === this.localBrokerId) continue;
      const follower = this.followers.get(id);
      candidate = Math.min(candidate, follower?.logEndOffset ?? UNKNOWN_LOG_END_OFFSET);
    }
    if (candidate <= this.highWatermarkValue) return undefined;
    this.highWatermarkValue = candidate;
    return candidate;
  }
}

function newFollower(replicaId: number, lastCaughtUpTimeMs: number): FollowerState {
  return {
    replicaId,
    logEndOffset: UNKNOWN_LOG_END_OFFSET,
    lastFetchTimeMs: -Infinity,
    lastCaughtUpTimeMs,
    lastFetchLeaderLogEndOffset: UNKNOWN_LOG_END_OFFSET,
  };
}
