// The KRaft consensus core: a pure, deterministic state machine (KIP-595 with KIP-996 pre-vote).
//
// It owns the in-memory copy of the Raft log since the last snapshot, the quorum state (epoch,
// vote, leader) and every protocol decision. It never performs I/O: inputs arrive through `step`
// and `propose`, effects leave through `ready()` (see types.ts for the order in which the driver
// applies a Ready). Time is the `nowMs` argument; randomness is `options.random`.
//
// Roles and the only legal transitions between them (as in Kafka's QuorumState; `transition()`
// refuses anything else, and observers never enter prospective, candidate, leader or resigned):
//
//   unattached  -> unattached (higher epoch) | prospective | follower
//   prospective -> unattached | prospective (new round) | candidate | follower
//   candidate   -> unattached (higher epoch) | prospective (timeout or lost) | leader | follower
//   leader      -> unattached (higher epoch) | follower (higher epoch) | resigned
//   follower    -> unattached | follower (higher epoch) | prospective
//   resigned    -> unattached (higher epoch) | follower (higher epoch) | prospective
//
// - unattached: epoch known, leader unknown. A voter waits for its election timeout and then goes
//   prospective; an observer asks a random voter for the leader with a Fetch.
// - prospective (KIP-996): asks the voters "would you vote for me in epoch + 1?" without bumping
//   any epoch. A voter says yes only if the candidate's log is at least as up to date as its own
//   AND it has no live leader itself, so a node that was merely cut off cannot disrupt a healthy
//   quorum when it comes back.
// - candidate: epoch + 1, voted for itself (persisted before any vote request leaves, guaranteed
//   by the Ready order), asks for votes; randomized election timeout; on a lost election it backs
//   off at random and tries again through prospective.
// - leader: appends a leader-change entry of its epoch, serves pull replication (Fetch), advances
//   the high watermark, parks fetches that have nothing new (long poll), resigns when it has not
//   heard from a majority within fetchTimeoutMs (check-quorum).
// - follower: fetches from the leader; campaigns (through prospective) when the leader is gone.
// - resigned: a former leader of this epoch (after `resign`, check-quorum, or a restart). It
//   answers fetches with NOT_LEADER_OR_FOLLOWER so its followers move on quickly.
//
// Durability rules (KIP-595): a vote is granted at most once per epoch and the vote is on disk
// before the response leaves; a fetch offset claims only entries that are on disk. Both hold
// because the driver persists a Ready before it sends that Ready's messages, and because requests
// produced after a write are in the same or a later Ready.
//
// The high watermark (HW) is not persisted: after a restart it starts at the log start offset and
// is learned again from the leader (a single-voter quorum commits its own durable log at once).
// Committed entries are therefore re-delivered from the snapshot after a restart.

import { assertNever, invariant } from '@raftka/protocol';
import type {
  BeginQuorumEpochRequest,
  EndQuorumEpochRequest,
  EntryPayload,
  FetchRequest,
  FetchResponse,
  LogEntry,
  NodeId,
  OutboundMessage,
  ProposeResult,
  QuorumDescription,
  QuorumStateRecord,
  RaftCoreOptions,
  RaftErrorCode,
  RaftInput,
  RaftMessage,
  RaftRequest,
  RaftResponse,
  Ready,
  ReplicaDescription,
  RestoredState,
  RoleName,
  SnapshotId,
  VoteRequest,
  VoteResponse,
} from './types.js';

/** Rough per-entry framing cost, so that fetchMaxBytes bounds many tiny entries too. */
const ENTRY_OVERHEAD_BYTES = 24;
const RECORD_OVERHEAD_BYTES = 4;
/**
 * Consecutive failed fetches to the leader that make a follower campaign without waiting for the
 * fetch timeout. A SIGKILLed leader refuses connections at once, so this is what makes failover
 * fast; one lost request alone is not enough, because lossy networks drop the odd request.
 */
const FETCH_FAILURES_BEFORE_ELECTION = 2;
/** The leader tracks at most this many observers (brokers); more are served but not described. */
const OBSERVERS_TRACKED_MAX = 4096;

interface VoteRound {
  granted: Set<NodeId>;
  rejected: Set<NodeId>;
  /** correlationId -> voter, so that stale or duplicated responses of other rounds are ignored. */
  requests: Map<number, NodeId>;
  electionDeadlineMs: number;
  /** Set after a lost or timed-out round: the next round starts then. */
  backoffUntilMs: number | undefined;
}

interface ReplicaState {
  /** Invariant: everything below it is durable on the replica and matches our log. */
  fetchOffset: number | undefined;
  /** The HW in our last answer to this replica: a fetch is parked only if the replica knows the current HW. */
  lastSentHw: number;
  lastFetchTimeMs: number | undefined;
  lastCaughtUpTimeMs: number | undefined;
}

interface ParkedFetch {
  from: NodeId;
  correlationId: number;
  request: FetchRequest;
  deadlineMs: number;
}

interface InflightFetch {
  correlationId: number;
  to: NodeId;
  /** What the request claimed; a response is used only if our log still ends there. */
  fetchOffset: number;
  lastFetchedEpoch: number;
}

type Role =
  | {
      kind: 'unattached';
      electionDeadlineMs: number;
      /** Observers only: the Fetch sent to a random voter to learn the leader. */
      discovery: InflightFetch | undefined;
      nextDiscoveryAtMs: number;
    }
  | { kind: 'prospective'; round: VoteRound }
  | { kind: 'candidate'; round: VoteRound }
  | {
      kind: 'leader';
      sinceMs: number;
      replicas: Map<NodeId, ReplicaState>;
      /** Invariant: at most one parked fetch per replica. */
      parked: Map<NodeId, ParkedFetch>;
      /** Voters that have acknowledged BeginQuorumEpoch or fetched in this epoch. */
      acknowledged: Set<NodeId>;
      nextBeginEpochAtMs: number;
    }
  | {
      kind: 'follower';
      leaderId: NodeId;
      fetch: InflightFetch | undefined;
      lastFetchSuccessMs: number;
      consecutiveFailures: number;
      nextFetchAtMs: number;
      /** The leader told us (EndQuorumEpoch or NOT_LEADER_OR_FOLLOWER) that its epoch is over. */
      leaderEnded: boolean;
      /** When set, go prospective at this time (EndQuorumEpoch handover by position). */
      campaignAtMs: number | undefined;
      /** The snapshot the driver is downloading for us, if any; no fetches meanwhile. */
      snapshotFetch: SnapshotId | undefined;
    }
  | { kind: 'resigned'; electionDeadlineMs: number };

const ALLOWED_TRANSITIONS: Record<RoleName, readonly RoleName[]> = {
  unattached: ['unattached', 'prospective', 'follower'],
  prospective: ['unattached', 'prospective', 'candidate', 'follower'],
  candidate: ['unattached', 'prospective', 'leader', 'follower'],
  leader: ['unattached', 'follower', 'resigned'],
  follower: ['unattached', 'follower', 'prospective'],
  resigned: ['unattached', 'follower', 'prospective'],
};

const OBSERVER_ROLES: ReadonlySet<RoleName> = new Set<RoleName>(['unattached', 'follower']);

interface Pending {
  quorumState: QuorumStateRecord | undefined;
  installSnapshot: SnapshotId | undefined;
  truncateFrom: number | undefined;
  entries: LogEntry[];
  compactBefore: number | undefined;
  messages: OutboundMessage[];
  committed: LogEntry[];
  fetchSnapshot: { leaderId: NodeId; snapshotId: SnapshotId } | undefined;
  roleChange: { role: RoleName; epoch: number; leaderId: NodeId | undefined } | undefined;
}

function emptyPending(): Pending {
  return {
    quorumState: undefined,
    installSnapshot: undefined,
    truncateFrom: undefined,
    entries: [],
    compactBefore: undefined,
    messages: [],
    committed: [],
    fetchSnapshot: undefined,
    roleChange: undefined,
  };
}

/** Bytes an entry counts for against fetchMaxBytes. */
export function entrySizeBytes(entry: LogEntry): number {
  const payload = entry.payload;
  switch (payload.kind) {
    case 'data': {
      let bytes = ENTRY_OVERHEAD_BYTES;
      for (const record of payload.records) bytes += record.byteLength + RECORD_OVERHEAD_BYTES;
      return bytes;
    }
    case 'leader-change':
      return ENTRY_OVERHEAD_BYTES + 4 * payload.voters.length;
    default:
      return assertNever(payload, 'entry payload');
  }
}

export class RaftCore {
  private readonly options: RaftCoreOptions;
  private readonly nodeId: NodeId;
  private readonly voterSet: ReadonlySet<NodeId>;
  private readonly majority: number;

  private quorumState: QuorumStateRecord;
  private roleState: Role;
  /** Set by `resign`: this node is shutting down and never campaigns again. */
  private shuttingDown = false;
  private nowMs: number;
  private nextCorrelationId: number;

  // ---- the log ----
  /** Invariant: log[i].offset === startOffset + i, epochs non-decreasing. */
  private log: LogEntry[];
  private startOffset: number;
  private snapshot: SnapshotId | undefined;
  /** Invariant: monotonic within this incarnation; never above logEndOffset; committed entries are never truncated. */
  private hw: number;
  /** Next committed offset to hand out in Ready.committed. Invariant: <= hw. */
  private deliveredEndOffset: number;
  /** Log end as of the Readys already handed out (what the disk will hold once they are applied). */
  private writtenEndOffset: number;
  /** Log end that is on disk (advanced); the leader counts only this for itself. */
  private durableEndOffset: number;

  private pending: Pending = emptyPending();
  /** Readys handed out and not yet advanced, in order, with the log end each leaves on disk. */
  private readonly handedOut: { ready: Ready; endOffsetAfter: number }[] = [];

  constructor(options: RaftCoreOptions, restored: RestoredState, nowMs: number) {
    invariant(options.voters.length > 0, 'the voter set is empty');
    invariant(new Set(options.voters).size === options.voters.length, 'the voter set has duplicates');
    invariant(options.fetchTimeoutMs > 0 && options.electionTimeoutMs > 0, 'timeouts must be positive');
    invariant(options.fetchMaxWaitMs < options.fetchTimeoutMs, 'fetchMaxWaitMs must be below fetchTimeoutMs');
    invariant(options.fetchMaxBytes > 0, 'fetchMaxBytes must be positive');
    this.options = options;
    this.nodeId = options.nodeId;
    this.voterSet = new Set(options.voters);
    this.majority = Math.floor(options.voters.length / 2) + 1;
    this.nowMs = nowMs;
    // Correlation ids start at a random base so that a restarted node does not mistake a late
    // response to its previous incarnation's request for one of its own.
    this.nextCorrelationId = Math.floor(options.random() * 0x3fffffff);

    this.snapshot = restored.snapshot;
    this.startOffset = restored.snapshot?.endOffset ?? 0;
    this.log = restored.entries.slice();
    this.log.forEach((entry, i) => {
      invariant(entry.offset === this.startOffset + i, `restored log is not contiguous at offset ${entry.offset}`);
      const previous = i > 0 ? this.log[i - 1]!.epoch : (restored.snapshot?.epoch ?? 0);
      invariant(entry.epoch >= previous, `restored log epochs go backwards at offset ${entry.offset}`);
    });
    this.hw = this.startOffset;
    this.deliveredEndOffset = this.startOffset;
    this.writtenEndOffset = this.logEndOffset;
    this.durableEndOffset = this.logEndOffset;

    this.quorumState = { ...restored.quorumState };
    invariant(this.lastEpoch() <= this.quorumState.epoch, 'the log holds an epoch above the quorum state epoch');
    const leaderId = this.quorumState.leaderId;
    if (leaderId === this.nodeId && this.isVoter) {
      // We led this epoch before the restart but lost the leader's in-memory state: never lead it again.
      this.roleState = { kind: 'resigned', electionDeadlineMs: nowMs + this.randomElectionTimeoutMs() };
    } else if (leaderId !== undefined && leaderId !== this.nodeId) {
      this.roleState = this.newFollower(leaderId);
    } else {
      this.roleState = this.newUnattached();
    }
    this.pending.roleChange = { role: this.roleState.kind, epoch: this.epoch, leaderId: this.leaderId };
    // A quorum of one needs nobody's permission: elect ourselves at once.
    if (this.isVoter && this.options.voters.length === 1) this.startProspective();
    // A restarted follower resumes fetching, an observer starts looking for the leader.
    else if (this.roleState.kind === 'follower') this.maybeSendFetch();
    else if (!this.isVoter) this.onTick();
  }

  // ---------------------------------------------------------------- queries

  get role(): RoleName {
    return this.roleState.kind;
  }
  get epoch(): number {
    return this.quorumState.epoch;
  }
  get leaderId(): NodeId | undefined {
    const role = this.roleState;
    if (role.kind === 'leader') return this.nodeId;
    if (role.kind === 'follower') return role.leaderId;
    return undefined;
  }
  get highWatermark(): number {
    return this.hw;
  }
  get logStartOffset(): number {
    return this.startOffset;
  }
  get logEndOffset(): number {
    return this.startOffset + this.log.length;
  }
  get isVoter(): boolean {
    return this.voterSet.has(this.nodeId);
  }
  /** The latest snapshot the log is based on, if any. */
  get snapshotId(): SnapshotId | undefined {
    return this.snapshot;
  }
  /** The quorum state as last queued for persistence. */
  get currentQuorumState(): QuorumStateRecord {
    return { ...this.quorumState };
  }

  describe(nowMs: number): QuorumDescription {
    this.nowMs = Math.max(this.nowMs, nowMs);
    const role = this.roleState;
    const self = (): ReplicaDescription => ({
      nodeId: this.nodeId,
      logEndOffset: this.logEndOffset,
      lastFetchTimeMs: this.nowMs,
      lastCaughtUpTimeMs: this.nowMs,
    });
    const voters: ReplicaDescription[] = [];
    const observers: ReplicaDescription[] = [];
    if (role.kind === 'leader') {
      for (const voter of this.options.voters) {
        const replica = role.replicas.get(voter);
        if (voter === this.nodeId) {
          voters.push(self());
        } else {
          voters.push({
            nodeId: voter,
            logEndOffset: replica?.fetchOffset ?? -1,
            lastFetchTimeMs: replica?.lastFetchTimeMs,
            lastCaughtUpTimeMs: replica?.lastCaughtUpTimeMs,
          });
        }
      }
      for (const [nodeId, replica] of role.replicas) {
        if (this.voterSet.has(nodeId)) continue;
        observers.push({
          nodeId,
          logEndOffset: replica.fetchOffset ?? -1,
          lastFetchTimeMs: replica.lastFetchTimeMs,
          lastCaughtUpTimeMs: replica.lastCaughtUpTimeMs,
        });
      }
    } else if (this.isVoter) {
      voters.push(self());
    } else {
      observers.push(self());
    }
    return {
      leaderId: this.leaderId,
      epoch: this.epoch,
      highWatermark: this.hw,
      logStartOffset: this.startOffset,
      logEndOffset: this.logEndOffset,
      voters,
      observers,
    };
  }

  /** Entries from `offset` (at least one if any exist there), up to about `maxBytes`. */
  entriesFrom(offset: number, maxBytes: number): LogEntry[] {
    if (offset < this.startOffset || offset >= this.logEndOffset) return [];
    const out: LogEntry[] = [];
    let bytes = 0;
    for (let i = offset - this.startOffset; i < this.log.length; i++) {
      const entry = this.log[i]!;
      const size = entrySizeBytes(entry);
      if (out.length > 0 && bytes + size > maxBytes) break;
      out.push(entry);
      bytes += size;
    }
    return out;
  }

  // ---------------------------------------------------------------- Ready / advance

  hasReady(): boolean {
    return !isEmptyReady(this.pending);
  }

  /**
   * Hands out everything queued since the previous `ready()`. The driver applies Readys in the
   * order it received them and advances each one, in that order, once applied.
   */
  ready(): Ready {
    const empty = !this.hasReady();
    const ready: Ready = { ...this.pending };
    this.pending = emptyPending();
    // An empty Ready asks nothing of the driver; advancing it (or not) changes nothing.
    if (empty) return ready;
    this.writtenEndOffset = this.logEndOffset;
    this.handedOut.push({ ready, endOffsetAfter: this.logEndOffset });
    return ready;
  }

  advance(ready: Ready): void {
    if (this.handedOut[0]?.ready !== ready && !this.handedOut.some((h) => h.ready === ready)) {
      invariant(isEmptyReady(ready), 'advance() called for a Ready this core did not hand out');
      return;
    }
    const head = this.handedOut.shift();
    invariant(head !== undefined && head.ready === ready, 'advance() called out of order: Readys must be advanced in the order handed out');
    this.durableEndOffset = head.endOffsetAfter;
    if (this.roleState.kind === 'leader') this.maybeAdvanceLeaderHighWatermark();
  }

  // ---------------------------------------------------------------- inputs

  step(input: RaftInput, nowMs: number): void {
    this.nowMs = Math.max(this.nowMs, nowMs);
    switch (input.type) {
      case 'tick':
        this.onTick();
        return;
      case 'receive':
        if (isRequest(input.message)) this.onRequest(input.from, input.correlationId, input.message);
        else this.onResponse(input.from, input.correlationId, input.message);
        return;
      case 'request-failed':
        this.onRequestFailed(input.to, input.correlationId);
        return;
      case 'resign':
        this.onResign();
        return;
      case 'snapshot-created':
        this.onSnapshotCreated(input.snapshotId);
        return;
      case 'snapshot-fetched':
        this.onSnapshotFetched(input.snapshotId);
        return;
      case 'snapshot-fetch-failed':
        this.onSnapshotFetchFailed(input.snapshotId);
        return;
      default:
        assertNever(input, 'raft input');
    }
  }

  /** Leader only: appends one entry holding `records` as one atomic batch. */
  propose(records: Uint8Array[], nowMs: number): ProposeResult {
    this.nowMs = Math.max(this.nowMs, nowMs);
    if (this.roleState.kind !== 'leader') return { ok: false, leaderId: this.leaderId, epoch: this.epoch };
    const entry = this.appendAsLeader({ kind: 'data', records });
    return { ok: true, offset: entry.offset, epoch: entry.epoch };
  }

  // ---------------------------------------------------------------- transitions

  /** The one place that changes the role. */
  private transition(next: Role, quorumState: QuorumStateRecord): void {
    const from = this.roleState.kind;
    invariant(ALLOWED_TRANSITIONS[from].includes(next.kind), `illegal role transition ${from} -> ${next.kind}`);
    invariant(this.isVoter || OBSERVER_ROLES.has(next.kind), `an observer cannot become ${next.kind}`);
    invariant(quorumState.epoch >= this.quorumState.epoch, 'the epoch must never go backwards');
    if (quorumState.epoch === this.quorumState.epoch && this.quorumState.votedFor !== undefined) {
      invariant(quorumState.votedFor === this.quorumState.votedFor, 'a vote cannot change within an epoch');
    }
    const previous = this.roleState;
    if (previous.kind === 'leader') this.answerParkedFetchesNotLeader(previous);
    this.persistQuorumState(quorumState);
    this.roleState = next;
    this.pending.roleChange = { role: next.kind, epoch: this.epoch, leaderId: this.leaderId };
  }

  /** Queues a quorum-state write if it changed; the Ready persists it before any message leaves. */
  private persistQuorumState(next: QuorumStateRecord): void {
    const current = this.quorumState;
    if (current.epoch === next.epoch && current.votedFor === next.votedFor && current.leaderId === next.leaderId) return;
    this.quorumState = { ...next };
    this.pending.quorumState = { ...next };
  }

  private newUnattached(): Role {
    return {
      kind: 'unattached',
      electionDeadlineMs: this.nowMs + this.randomElectionTimeoutMs(),
      discovery: undefined,
      nextDiscoveryAtMs: this.nowMs,
    };
  }

  private newFollower(leaderId: NodeId): Role {
    return {
      kind: 'follower',
      leaderId,
      fetch: undefined,
      lastFetchSuccessMs: this.nowMs,
      consecutiveFailures: 0,
      nextFetchAtMs: this.nowMs,
      leaderEnded: false,
      campaignAtMs: undefined,
      snapshotFetch: undefined,
    };
  }

  private newRound(): VoteRound {
    return {
      granted: new Set([this.nodeId]),
      rejected: new Set(),
      requests: new Map(),
      electionDeadlineMs: this.nowMs + this.randomElectionTimeoutMs(),
      backoffUntilMs: undefined,
    };
  }

  private becomeUnattached(epoch: number): void {
    const sameEpoch = epoch === this.epoch;
    this.transition(this.newUnattached(), {
      epoch,
      votedFor: sameEpoch ? this.quorumState.votedFor : undefined,
      leaderId: sameEpoch ? this.quorumState.leaderId : undefined,
    });
    this.onTick();
  }

  private becomeFollower(epoch: number, leaderId: NodeId): void {
    invariant(leaderId !== this.nodeId, 'cannot follow ourselves');
    invariant(this.voterSet.has(leaderId), `leader ${leaderId} is not a voter`);
    const sameEpoch = epoch === this.epoch;
    if (sameEpoch && this.quorumState.leaderId !== undefined) {
      invariant(
        this.quorumState.leaderId === leaderId,
        () => `two leaders in epoch ${epoch}: ${this.quorumState.leaderId} and ${leaderId}`,
      );
    }
    this.transition(this.newFollower(leaderId), {
      epoch,
      votedFor: sameEpoch ? this.quorumState.votedFor : undefined,
      leaderId,
    });
    this.maybeSendFetch();
  }

  /** Reacts to an epoch above ours seen in any message; true if we moved to it. */
  private observeEpoch(epoch: number, leaderId: NodeId | undefined): boolean {
    if (epoch <= this.epoch) return false;
    if (leaderId !== undefined && leaderId !== this.nodeId && this.voterSet.has(leaderId)) {
      this.becomeFollower(epoch, leaderId);
    } else {
      this.becomeUnattached(epoch);
    }
    return true;
  }

  private canCampaign(): boolean {
    return this.isVoter && !this.shuttingDown;
  }

  /** KIP-996: start (or restart) asking for pre-votes for epoch + 1. */
  private startProspective(): void {
    invariant(this.canCampaign(), 'only a live voter campaigns');
    const round = this.newRound();
    this.transition({ kind: 'prospective', round }, this.quorumState);
    this.sendVoteRequests(round, true);
    this.maybeFinishRound();
  }

  private startCandidate(): void {
    const round = this.newRound();
    // The vote for ourselves is in this Ready's quorumState, which is on disk before any of
    // the vote requests below leaves (KIP-595: votes are durable before they are relied on).
    this.transition({ kind: 'candidate', round }, { epoch: this.epoch + 1, votedFor: this.nodeId, leaderId: undefined });
    this.sendVoteRequests(round, false);
    this.maybeFinishRound();
  }

  private becomeLeader(): void {
    const replicas = new Map<NodeId, ReplicaState>();
    for (const voter of this.options.voters) {
      if (voter !== this.nodeId) {
        replicas.set(voter, { fetchOffset: undefined, lastSentHw: -1, lastFetchTimeMs: undefined, lastCaughtUpTimeMs: undefined });
      }
    }
    const role: Role = {
      kind: 'leader',
      sinceMs: this.nowMs,
      replicas,
      parked: new Map(),
      acknowledged: new Set(),
      nextBeginEpochAtMs: this.nowMs,
    };
    this.transition(role, { epoch: this.epoch, votedFor: this.quorumState.votedFor, leaderId: this.nodeId });
    this.sendBeginQuorumEpoch(role);
    // KIP-595 / Raft §5.4.2: nothing of this epoch is committed until an entry of this epoch is,
    // so the new leader appends one at once.
    this.appendAsLeader({ kind: 'leader-change', leaderId: this.nodeId, voters: [...this.options.voters] });
  }

  private resignAsLeader(shutdown: boolean): void {
    const role = this.roleState;
    invariant(role.kind === 'leader', 'only a leader resigns');
    const successors = [...role.replicas.entries()]
      .filter(([id]) => this.voterSet.has(id))
      .sort(([idA, a], [idB, b]) => (b.fetchOffset ?? -1) - (a.fetchOffset ?? -1) || idA - idB)
      .map(([id]) => id);
    this.transition(
      { kind: 'resigned', electionDeadlineMs: this.nowMs + this.randomElectionTimeoutMs() },
      this.quorumState,
    );
    for (const voter of this.options.voters) {
      if (voter === this.nodeId) continue;
      this.sendRequest(voter, {
        kind: 'end-quorum-epoch-request',
        epoch: this.epoch,
        leaderId: this.nodeId,
        preferredSuccessors: successors,
      });
    }
    if (shutdown) this.shuttingDown = true;
  }

  // ---------------------------------------------------------------- elections

  private sendVoteRequests(round: VoteRound, preVote: boolean): void {
    const request: Omit<VoteRequest, 'epoch'> = {
      kind: 'vote-request',
      candidateId: this.nodeId,
      lastOffsetEpoch: this.lastEpoch(),
      lastOffset: this.logEndOffset,
      preVote,
    };
    const epoch = preVote ? this.epoch + 1 : this.epoch;
    for (const voter of this.options.voters) {
      if (voter === this.nodeId) continue;
      const correlationId = this.sendRequest(voter, { ...request, epoch });
      round.requests.set(correlationId, voter);
    }
  }

  /** Moves a prospective or candidate on once its round is decided. */
  private maybeFinishRound(): void {
    const role = this.roleState;
    if (role.kind !== 'prospective' && role.kind !== 'candidate') return;
    const round = role.round;
    if (round.granted.size >= this.majority) {
      if (role.kind === 'prospective') this.startCandidate();
      else this.becomeLeader();
      return;
    }
    if (round.rejected.size > this.options.voters.length - this.majority && round.backoffUntilMs === undefined) {
      round.backoffUntilMs = this.nowMs + this.randomBackoffMs();
    }
  }

  private logIsUpToDate(lastOffsetEpoch: number, lastOffset: number): boolean {
    const ourEpoch = this.lastEpoch();
    return lastOffsetEpoch > ourEpoch || (lastOffsetEpoch === ourEpoch && lastOffset >= this.logEndOffset);
  }

  /** KIP-996: do we believe a leader is alive? Then we refuse pre-votes. */
  private hasLiveLeader(): boolean {
    const role = this.roleState;
    switch (role.kind) {
      case 'leader':
        return true;
      case 'follower':
        return (
          !role.leaderEnded &&
          role.consecutiveFailures === 0 &&
          this.nowMs - role.lastFetchSuccessMs < this.options.fetchTimeoutMs
        );
      case 'unattached':
      case 'prospective':
      case 'candidate':
      case 'resigned':
        return false;
      default:
        return assertNever(role, 'role');
    }
  }

  private onVoteRequest(from: NodeId, correlationId: number, request: VoteRequest): void {
    const respond = (errorCode: RaftErrorCode, voteGranted: boolean): void => {
      this.sendResponse(from, correlationId, {
        kind: 'vote-response',
        epoch: this.epoch,
        errorCode,
        voteGranted,
        preVote: request.preVote,
        leaderId: this.leaderId,
      });
    };
    if (!this.isVoter || !this.voterSet.has(request.candidateId) || request.candidateId !== from) {
      respond('INCONSISTENT_VOTER_SET', false);
      return;
    }
    if (request.epoch < this.epoch) {
      respond('FENCED_LEADER_EPOCH', false);
      return;
    }
    const upToDate = this.logIsUpToDate(request.lastOffsetEpoch, request.lastOffset);
    if (request.preVote) {
      // A pre-vote changes nothing here, not even our epoch.
      respond('NONE', upToDate && !this.hasLiveLeader());
      return;
    }
    if (request.epoch > this.epoch) this.becomeUnattached(request.epoch);
    const role = this.roleState;
    const votedFor = this.quorumState.votedFor;
    let grant = upToDate && (votedFor === undefined || votedFor === request.candidateId);
    if (grant && votedFor === undefined) {
      // Only a node that knows no leader of this epoch and is not itself running may vote.
      grant =
        this.quorumState.leaderId === undefined && (role.kind === 'unattached' || role.kind === 'prospective');
      if (grant) {
        // Raft §5.2 / KIP-595: one vote per epoch, on disk (this Ready) before the response leaves.
        if (role.kind === 'prospective') {
          this.transition(this.newUnattached(), { ...this.quorumState, votedFor: request.candidateId });
        } else {
          this.persistQuorumState({ ...this.quorumState, votedFor: request.candidateId });
          // Granting a vote restarts our election timer, as in Raft.
          if (role.kind === 'unattached') role.electionDeadlineMs = this.nowMs + this.randomElectionTimeoutMs();
        }
      }
    }
    respond('NONE', grant);
  }

  private onVoteResponse(from: NodeId, correlationId: number, response: VoteResponse): void {
    if (this.observeEpoch(response.epoch, response.leaderId)) return;
    const role = this.roleState;
    if (role.kind !== 'prospective' && role.kind !== 'candidate') return;
    const voter = role.round.requests.get(correlationId);
    if (voter === undefined || voter !== from) return; // another round's, or a duplicate
    if (response.preVote !== (role.kind === 'prospective')) return;
    if (role.kind === 'prospective' && !response.voteGranted && response.epoch === this.epoch) {
      // The voter knows a live leader of our epoch: follow it instead of campaigning.
      const leaderId = response.leaderId;
      if (leaderId !== undefined && leaderId !== this.nodeId && this.voterSet.has(leaderId)) {
        const known = this.quorumState.leaderId;
        if (known === undefined || known === leaderId) {
          this.becomeFollower(this.epoch, leaderId);
          return;
        }
      }
    }
    if (response.errorCode === 'NONE' && response.voteGranted && response.epoch <= this.epoch) {
      role.round.granted.add(voter);
    } else {
      role.round.rejected.add(voter);
    }
    this.maybeFinishRound();
  }

  // ---------------------------------------------------------------- dispatch

  private onRequest(from: NodeId, correlationId: number, request: RaftRequest): void {
    switch (request.kind) {
      case 'vote-request':
        this.onVoteRequest(from, correlationId, request);
        return;
      case 'begin-quorum-epoch-request':
        this.onBeginQuorumEpoch(from, correlationId, request);
        return;
      case 'end-quorum-epoch-request':
        this.onEndQuorumEpoch(from, correlationId, request);
        return;
      case 'fetch-request':
        this.onFetchRequest(from, correlationId, request);
        return;
      case 'fetch-snapshot-request':
        // Snapshot bytes live in the driver's snapshot store; the driver serves FetchSnapshot
        // itself (it never reaches the core, which holds no snapshot bytes).
        return;
      default:
        assertNever(request, 'request');
    }
  }

  private onResponse(from: NodeId, correlationId: number, response: RaftResponse): void {
    switch (response.kind) {
      case 'vote-response':
        this.onVoteResponse(from, correlationId, response);
        return;
      case 'begin-quorum-epoch-response':
        if (this.observeEpoch(response.epoch, response.leaderId)) return;
        if (this.roleState.kind === 'leader' && response.errorCode === 'NONE') this.roleState.acknowledged.add(from);
        return;
      case 'end-quorum-epoch-response':
        this.observeEpoch(response.epoch, response.leaderId);
        return;
      case 'fetch-response':
        this.onFetchResponse(from, correlationId, response);
        return;
      case 'fetch-snapshot-response':
        // Consumed by the driver's snapshot download, see onRequest.
        return;
      default:
        assertNever(response, 'response');
    }
  }

  private onBeginQuorumEpoch(from: NodeId, correlationId: number, request: BeginQuorumEpochRequest): void {
    const respond = (errorCode: RaftErrorCode): void =>
      this.sendResponse(from, correlationId, {
        kind: 'begin-quorum-epoch-response',
        epoch: this.epoch,
        errorCode,
        leaderId: this.leaderId,
      });
    if (request.epoch < this.epoch) {
      respond('FENCED_LEADER_EPOCH');
      return;
    }
    if (!this.voterSet.has(request.leaderId) || request.leaderId !== from) {
      respond('INCONSISTENT_VOTER_SET');
      return;
    }
    if (request.epoch > this.epoch) {
      this.becomeFollower(request.epoch, request.leaderId);
    } else {
      const role = this.roleState;
      invariant(
        role.kind !== 'leader' && role.kind !== 'resigned',
        () => `two leaders in epoch ${request.epoch}: ${this.nodeId} and ${request.leaderId}`,
      );
      if (role.kind !== 'follower') this.becomeFollower(request.epoch, request.leaderId);
      else invariant(role.leaderId === request.leaderId, `two leaders in epoch ${request.epoch}`);
    }
    respond('NONE');
  }

  private onEndQuorumEpoch(from: NodeId, correlationId: number, request: EndQuorumEpochRequest): void {
    const respond = (errorCode: RaftErrorCode): void =>
      this.sendResponse(from, correlationId, {
        kind: 'end-quorum-epoch-response',
        epoch: this.epoch,
        errorCode,
        leaderId: this.leaderId,
      });
    if (request.epoch < this.epoch) {
      respond('FENCED_LEADER_EPOCH');
      return;
    }
    if (!this.voterSet.has(request.leaderId) || request.leaderId !== from) {
      respond('INCONSISTENT_VOTER_SET');
      return;
    }
    if (request.epoch > this.epoch) this.becomeFollower(request.epoch, request.leaderId);
    const role = this.roleState;
    if (role.kind === 'follower' && role.leaderId === request.leaderId) {
      role.leaderEnded = true;
      if (!this.isVoter) {
        this.becomeUnattached(this.epoch);
      } else if (this.canCampaign()) {
        // KIP-595 graceful handover: the most caught-up voter campaigns at once, the others
        // after a back-off that grows with their position, so that the best one usually wins.
        const position = request.preferredSuccessors.indexOf(this.nodeId);
        if (position === 0) {
          this.startProspective();
        } else {
          const slotMs = this.options.electionBackoffMaxMs / this.options.voters.length;
          role.campaignAtMs =
            position > 0
              ? this.nowMs + Math.floor(slotMs * position + this.options.random() * slotMs)
              : this.nowMs + this.randomElectionTimeoutMs();
        }
      }
    }
    respond('NONE');
  }

  // ---------------------------------------------------------------- replication: leader side

  private onFetchRequest(from: NodeId, correlationId: number, request: FetchRequest): void {
    const role = this.roleState;
    if (role.kind !== 'leader' || request.epoch !== this.epoch || request.replicaId !== from) {
      const errorCode: RaftErrorCode =
        request.epoch < this.epoch
          ? 'FENCED_LEADER_EPOCH'
          : request.epoch > this.epoch
            ? 'UNKNOWN_LEADER_EPOCH'
            : 'NOT_LEADER_OR_FOLLOWER';
      this.sendResponse(from, correlationId, this.fetchError(errorCode));
      return;
    }
    let replica = role.replicas.get(from);
    if (replica === undefined && role.replicas.size < this.options.voters.length - 1 + OBSERVERS_TRACKED_MAX) {
      replica = { fetchOffset: undefined, lastSentHw: -1, lastFetchTimeMs: undefined, lastCaughtUpTimeMs: undefined };
      role.replicas.set(from, replica);
    }
    if (replica !== undefined) replica.lastFetchTimeMs = this.nowMs;
    if (this.voterSet.has(from)) role.acknowledged.add(from);

    // A newer fetch from the same replica supersedes the parked one (bounded: one per replica).
    const previous = role.parked.get(from);
    if (previous !== undefined) {
      role.parked.delete(from);
      this.sendResponse(from, previous.correlationId, this.fetchResponse([]));
    }

    const validation = this.validateFetchPosition(request.fetchOffset, request.lastFetchedEpoch);
    if (validation.kind === 'snapshot') {
      invariant(this.snapshot !== undefined, 'a fetch below the log start needs a snapshot');
      this.sendResponse(from, correlationId, { ...this.fetchResponse([]), snapshotId: { ...this.snapshot } });
      return;
    }
    if (validation.kind === 'diverging') {
      this.sendResponse(from, correlationId, {
        ...this.fetchResponse([]),
        divergingEpoch: { epoch: validation.epoch, endOffset: validation.endOffset },
      });
      return;
    }
    // The fetch offset acknowledges everything below it: the replica persisted it before asking.
    if (replica !== undefined) {
      replica.fetchOffset = request.fetchOffset;
      if (request.fetchOffset >= this.logEndOffset) replica.lastCaughtUpTimeMs = this.nowMs;
    }
    this.maybeAdvanceLeaderHighWatermark();
    if (this.roleState !== role) return;

    if (request.fetchOffset < this.logEndOffset) {
      const maxBytes = Math.min(request.maxBytes, this.options.fetchMaxBytes);
      this.sendResponse(from, correlationId, this.fetchResponse(this.entriesFrom(request.fetchOffset, maxBytes)));
      return;
    }
    // Nothing new: park the fetch (long poll) until an append, a HW change or its deadline,
    // unless the replica has yet to learn the current HW.
    const waitMs = Math.max(0, Math.min(request.maxWaitMs, this.options.fetchMaxWaitMs));
    if (waitMs === 0 || (replica !== undefined && replica.lastSentHw !== this.hw)) {
      this.sendResponse(from, correlationId, this.fetchResponse([]));
      return;
    }
    role.parked.set(from, { from, correlationId, request, deadlineMs: this.nowMs + waitMs });
  }

  /**
   * KIP-595 fetch validation: does the replica's log match ours up to fetchOffset? The replica's
   * entry at fetchOffset - 1 has epoch lastFetchedEpoch; it matches if our log has that epoch and
   * our entries of that epoch reach fetchOffset. Otherwise we answer with the end of the largest
   * epoch we hold that is not above the replica's, and the replica truncates to it.
   */
  private validateFetchPosition(
    fetchOffset: number,
    lastFetchedEpoch: number,
  ):
    | { kind: 'valid' }
    | { kind: 'diverging'; epoch: number; endOffset: number }
    | { kind: 'snapshot' } {
    if (fetchOffset < this.startOffset) return { kind: 'snapshot' };
    if (fetchOffset === 0) return { kind: 'valid' };
    const found = this.endOffsetForEpoch(lastFetchedEpoch);
    if (found === undefined) return { kind: 'snapshot' };
    if (found.epoch !== lastFetchedEpoch || found.endOffset < fetchOffset) {
      return { kind: 'diverging', epoch: found.epoch, endOffset: found.endOffset };
    }
    return { kind: 'valid' };
  }

  /** The largest epoch <= `epoch` in our log (or snapshot) and the offset just past its last entry. */
  private endOffsetForEpoch(epoch: number): { epoch: number; endOffset: number } | undefined {
    for (let i = this.log.length - 1; i >= 0; i--) {
      const entry = this.log[i]!;
      if (entry.epoch <= epoch) return { epoch: entry.epoch, endOffset: entry.offset + 1 };
    }
    if (this.snapshot !== undefined) {
      return this.snapshot.epoch <= epoch ? { epoch: this.snapshot.epoch, endOffset: this.snapshot.endOffset } : undefined;
    }
    return this.startOffset === 0 ? { epoch: 0, endOffset: 0 } : undefined;
  }

  private fetchResponse(entries: LogEntry[]): FetchResponse {
    return {
      kind: 'fetch-response',
      epoch: this.epoch,
      errorCode: 'NONE',
      leaderId: this.nodeId,
      highWatermark: this.hw,
      logStartOffset: this.startOffset,
      entries,
      divergingEpoch: undefined,
      snapshotId: undefined,
    };
  }

  private fetchError(errorCode: RaftErrorCode): FetchResponse {
    return {
      kind: 'fetch-response',
      epoch: this.epoch,
      errorCode,
      leaderId: this.leaderId,
      highWatermark: this.hw,
      logStartOffset: this.startOffset,
      entries: [],
      divergingEpoch: undefined,
      snapshotId: undefined,
    };
  }

  private appendAsLeader(payload: EntryPayload): LogEntry {
    const role = this.roleState;
    invariant(role.kind === 'leader', 'only the leader appends');
    const entry: LogEntry = { offset: this.logEndOffset, epoch: this.epoch, payload };
    this.appendEntry(entry);
    this.answerParkedFetches(role, false);
    return entry;
  }

  private appendEntry(entry: LogEntry): void {
    invariant(entry.offset === this.logEndOffset, () => `append at ${entry.offset}, log ends at ${this.logEndOffset}`);
    invariant(entry.epoch >= this.lastEpoch(), 'log epochs must not go backwards');
    invariant(entry.epoch <= this.epoch, 'an entry cannot be from a future epoch');
    this.log.push(entry);
    this.pending.entries.push(entry);
  }

  /** Answers parked fetches that can now make progress (or all of them, with `all`). */
  private answerParkedFetches(role: Extract<Role, { kind: 'leader' }>, all: boolean): void {
    for (const [replicaId, parked] of role.parked) {
      const hasNew = parked.request.fetchOffset < this.logEndOffset;
      if (!all && !hasNew) continue;
      role.parked.delete(replicaId);
      const maxBytes = Math.min(parked.request.maxBytes, this.options.fetchMaxBytes);
      this.sendResponse(parked.from, parked.correlationId, this.fetchResponse(this.entriesFrom(parked.request.fetchOffset, maxBytes)));
    }
  }

  private answerParkedFetchesNotLeader(role: Extract<Role, { kind: 'leader' }>): void {
    for (const parked of role.parked.values()) {
      this.sendResponse(parked.from, parked.correlationId, {
        ...this.fetchError('NOT_LEADER_OR_FOLLOWER'),
        leaderId: undefined,
      });
    }
    role.parked.clear();
  }

  /**
   * HW = the majority-th largest durable offset among the voters (the leader counts only what it
   * has on disk), and only if the entry below it is of the current epoch (Raft §5.4.2, KIP-595).
   */
  private maybeAdvanceLeaderHighWatermark(): void {
    const role = this.roleState;
    if (role.kind !== 'leader') return;
    const offsets: number[] = [];
    for (const voter of this.options.voters) {
      if (voter === this.nodeId) offsets.push(Math.min(this.durableEndOffset, this.logEndOffset));
      else offsets.push(role.replicas.get(voter)?.fetchOffset ?? 0);
    }
    offsets.sort((a, b) => b - a);
    const candidate = Math.min(offsets[this.majority - 1]!, this.logEndOffset);
    if (candidate <= this.hw) return;
    const below = this.entryAt(candidate - 1);
    if (below === undefined || below.epoch !== this.epoch) return;
    this.setHighWatermark(candidate);
    // Followers waiting in a long poll learn the new HW now rather than at the poll deadline.
    this.answerParkedFetches(role, true);
  }

  private setHighWatermark(next: number): void {
    invariant(next <= this.logEndOffset, 'the HW cannot pass the log end');
    if (next <= this.hw) return;
    this.hw = next;
    for (let offset = this.deliveredEndOffset; offset < next; offset++) {
      const entry = this.entryAt(offset);
      invariant(entry !== undefined, () => `committed entry ${offset} is not in the log`);
      this.pending.committed.push(entry);
    }
    this.deliveredEndOffset = next;
  }

  private sendBeginQuorumEpoch(role: Extract<Role, { kind: 'leader' }>): void {
    for (const voter of this.options.voters) {
      if (voter === this.nodeId || role.acknowledged.has(voter)) continue;
      this.sendRequest(voter, { kind: 'begin-quorum-epoch-request', epoch: this.epoch, leaderId: this.nodeId });
    }
    role.nextBeginEpochAtMs = this.nowMs + Math.max(1, Math.floor(this.options.fetchTimeoutMs / 4));
  }

  // ---------------------------------------------------------------- replication: follower side

  private maybeSendFetch(): void {
    const role = this.roleState;
    if (role.kind !== 'follower') return;
    if (role.fetch !== undefined || role.snapshotFetch !== undefined || this.nowMs < role.nextFetchAtMs) return;
    role.fetch = this.sendFetch(role.leaderId);
  }

  private sendFetch(to: NodeId): InflightFetch {
    const fetchOffset = this.logEndOffset;
    const lastFetchedEpoch = this.lastEpoch();
    const correlationId = this.sendRequest(to, {
      kind: 'fetch-request',
      epoch: this.epoch,
      replicaId: this.nodeId,
      fetchOffset,
      lastFetchedEpoch,
      maxWaitMs: this.options.fetchMaxWaitMs,
      maxBytes: this.options.fetchMaxBytes,
    });
    return { correlationId, to, fetchOffset, lastFetchedEpoch };
  }

  private onFetchResponse(from: NodeId, correlationId: number, response: FetchResponse): void {
    const role = this.roleState;
    if (role.kind === 'unattached') {
      // An observer's discovery fetch: any answer naming the leader is enough.
      if (role.discovery === undefined || role.discovery.correlationId !== correlationId) {
        this.observeEpoch(response.epoch, response.leaderId);
        return;
      }
      role.discovery = undefined;
      if (this.observeEpoch(response.epoch, response.leaderId)) return;
      const leaderId = response.leaderId;
      if (response.epoch === this.epoch && leaderId !== undefined && leaderId !== this.nodeId && this.voterSet.has(leaderId)) {
        this.becomeFollower(this.epoch, leaderId);
      } else {
        role.nextDiscoveryAtMs = this.nowMs + this.retryBackoffMs();
      }
      return;
    }
    if (role.kind !== 'follower') {
      this.observeEpoch(response.epoch, response.leaderId);
      return;
    }
    const inflight = role.fetch;
    if (inflight === undefined || inflight.correlationId !== correlationId || inflight.to !== from) {
      // Stale, duplicated or from an earlier role: only a higher epoch is worth knowing.
      this.observeEpoch(response.epoch, response.leaderId);
      return;
    }
    role.fetch = undefined;
    if (this.observeEpoch(response.epoch, response.leaderId)) return;
    if (response.epoch < this.epoch || response.errorCode !== 'NONE') {
      // NOT_LEADER_OR_FOLLOWER at our epoch: the leader resigned or restarted.
      if (response.errorCode === 'NOT_LEADER_OR_FOLLOWER' && response.epoch === this.epoch) role.leaderEnded = true;
      this.onFetchFailed(role);
      return;
    }
    role.lastFetchSuccessMs = this.nowMs;
    role.consecutiveFailures = 0;
    // Our log may have changed since the request left (truncation, snapshot): ignore the answer.
    if (inflight.fetchOffset !== this.logEndOffset || inflight.lastFetchedEpoch !== this.lastEpoch()) {
      this.maybeSendFetch();
      return;
    }
    if (response.snapshotId !== undefined) {
      // Offered when our fetch offset is below the leader's log start, or when our last epoch is
      // older than anything the leader still has in its log (the divergence point is compacted).
      role.snapshotFetch = { ...response.snapshotId };
      this.pending.fetchSnapshot = { leaderId: role.leaderId, snapshotId: { ...response.snapshotId } };
      return;
    }
    if (response.divergingEpoch !== undefined) {
      const ours = this.endOffsetForEpoch(response.divergingEpoch.epoch);
      const target = Math.min(response.divergingEpoch.endOffset, ours?.endOffset ?? this.startOffset);
      this.truncate(target);
      this.maybeSendFetch();
      return;
    }
    for (const entry of response.entries) {
      if (entry.offset < this.logEndOffset) continue;
      this.appendEntry(entry);
    }
    // Our log matches the leader's up to its end now (validated by the fetch), so the leader's
    // HW covers only entries we share.
    const nextHw = Math.min(response.highWatermark, this.logEndOffset);
    if (nextHw > this.hw) this.setHighWatermark(nextHw);
    this.maybeSendFetch();
  }

  private onFetchFailed(role: Extract<Role, { kind: 'follower' }>): void {
    role.consecutiveFailures++;
    role.nextFetchAtMs = this.nowMs + this.retryBackoffMs();
    this.checkFollowerTimers(role);
  }

  /** Truncates the log to `offset` (KIP-595 divergence). Invariant: never below the HW. */
  private truncate(offset: number): void {
    invariant(offset >= this.hw, () => `truncation to ${offset} would remove committed entries (HW ${this.hw})`);
    invariant(offset >= this.startOffset, 'cannot truncate below the log start');
    if (offset >= this.logEndOffset) return;
    this.log.length = offset - this.startOffset;
    this.pending.entries = this.pending.entries.filter((entry) => entry.offset < offset);
    if (offset < this.writtenEndOffset) {
      this.pending.truncateFrom = Math.min(this.pending.truncateFrom ?? offset, offset);
      this.writtenEndOffset = offset;
    }
    for (const handed of this.handedOut) handed.endOffsetAfter = Math.min(handed.endOffsetAfter, offset);
    this.durableEndOffset = Math.min(this.durableEndOffset, offset);
  }

  private onRequestFailed(to: NodeId, correlationId: number): void {
    const role = this.roleState;
    switch (role.kind) {
      case 'follower':
        if (role.fetch !== undefined && role.fetch.correlationId === correlationId && role.fetch.to === to) {
          role.fetch = undefined;
          this.onFetchFailed(role);
        }
        return;
      case 'unattached':
        if (role.discovery !== undefined && role.discovery.correlationId === correlationId) {
          role.discovery = undefined;
          role.nextDiscoveryAtMs = this.nowMs + this.retryBackoffMs();
        }
        return;
      case 'prospective':
      case 'candidate':
      case 'leader':
      case 'resigned':
        // Vote and BeginQuorumEpoch requests are not retried one by one: the election timeout
        // and the leader's BeginQuorumEpoch timer cover lost ones.
        return;
      default:
        assertNever(role, 'role');
    }
  }

  // ---------------------------------------------------------------- snapshots

  private onSnapshotCreated(snapshotId: SnapshotId): void {
    if (snapshotId.endOffset <= this.startOffset) return;
    invariant(snapshotId.endOffset <= this.hw, () => `snapshot at ${snapshotId.endOffset} is above the HW ${this.hw}`);
    invariant(snapshotId.endOffset <= this.deliveredEndOffset, 'snapshot above the delivered committed entries');
    const last = this.entryAt(snapshotId.endOffset - 1);
    invariant(last !== undefined && last.epoch === snapshotId.epoch, 'snapshot epoch does not match the log');
    this.log = this.log.slice(snapshotId.endOffset - this.startOffset);
    this.startOffset = snapshotId.endOffset;
    this.snapshot = { ...snapshotId };
    this.pending.compactBefore = Math.max(this.pending.compactBefore ?? 0, snapshotId.endOffset);
  }

  private onSnapshotFetched(snapshotId: SnapshotId): void {
    const role = this.roleState;
    if (role.kind !== 'follower' || role.snapshotFetch === undefined) return;
    if (role.snapshotFetch.endOffset !== snapshotId.endOffset || role.snapshotFetch.epoch !== snapshotId.epoch) return;
    role.snapshotFetch = undefined;
    invariant(snapshotId.endOffset >= this.hw, 'a fetched snapshot cannot be behind our HW');
    // The snapshot replaces the whole log: the state machine loads it, and delivery resumes after it.
    this.log = [];
    this.startOffset = snapshotId.endOffset;
    this.snapshot = { ...snapshotId };
    this.pending.installSnapshot = { ...snapshotId };
    this.pending.entries = [];
    this.pending.truncateFrom = undefined;
    this.pending.compactBefore = undefined;
    this.pending.committed = []; // all below the snapshot, which subsumes them
    this.writtenEndOffset = snapshotId.endOffset;
    this.durableEndOffset = Math.min(this.durableEndOffset, snapshotId.endOffset);
    for (const handed of this.handedOut) handed.endOffsetAfter = Math.min(handed.endOffsetAfter, snapshotId.endOffset);
    this.hw = snapshotId.endOffset;
    this.deliveredEndOffset = snapshotId.endOffset;
    role.lastFetchSuccessMs = this.nowMs; // the download came from the leader
    role.nextFetchAtMs = this.nowMs;
    this.maybeSendFetch();
  }

  private onSnapshotFetchFailed(snapshotId: SnapshotId): void {
    const role = this.roleState;
    if (role.kind !== 'follower' || role.snapshotFetch === undefined) return;
    if (role.snapshotFetch.endOffset !== snapshotId.endOffset || role.snapshotFetch.epoch !== snapshotId.epoch) return;
    // The snapshot may just have been superseded by a newer one; the next fetch tells. The fetch
    // timeout restarts so that the fetch gets its chance (a dead leader still shows within two
    // failed fetches).
    role.snapshotFetch = undefined;
    role.lastFetchSuccessMs = this.nowMs;
    role.nextFetchAtMs = this.nowMs + this.retryBackoffMs();
  }

  // ---------------------------------------------------------------- resign and timers

  private onResign(): void {
    const role = this.roleState;
    if (role.kind === 'leader') {
      this.resignAsLeader(true);
      return;
    }
    this.shuttingDown = true;
    if (role.kind === 'prospective' || role.kind === 'candidate') this.becomeUnattached(this.epoch);
  }

  private onTick(): void {
    const role = this.roleState;
    const now = this.nowMs;
    switch (role.kind) {
      case 'unattached':
        if (this.isVoter) {
          if (now >= role.electionDeadlineMs && this.canCampaign()) this.startProspective();
        } else if (role.discovery === undefined && now >= role.nextDiscoveryAtMs) {
          // Observers learn the leader from any voter (the error names it).
          const voters = this.options.voters;
          const voter = voters[Math.floor(this.options.random() * voters.length)]!;
          role.discovery = this.sendFetch(voter);
        }
        return;
      case 'prospective':
      case 'candidate': {
        const round = role.round;
        if (round.backoffUntilMs !== undefined) {
          if (now >= round.backoffUntilMs && this.canCampaign()) this.startProspective();
        } else if (now >= round.electionDeadlineMs) {
          if (role.kind === 'candidate') {
            // Timed out without a decision: go back to asking for pre-votes (KIP-996).
            if (this.canCampaign()) this.startProspective();
          } else {
            round.backoffUntilMs = now + this.randomBackoffMs();
          }
        }
        return;
      }
      case 'leader':
        this.tickLeader(role);
        return;
      case 'follower':
        this.checkFollowerTimers(role);
        if (this.roleState === role) this.maybeSendFetch();
        return;
      case 'resigned':
        if (now >= role.electionDeadlineMs && this.canCampaign()) this.startProspective();
        return;
      default:
        assertNever(role, 'role');
    }
  }

  private checkFollowerTimers(role: Extract<Role, { kind: 'follower' }>): void {
    const now = this.nowMs;
    // A snapshot download can outlast the fetch timeout; the driver reports its failure instead.
    const leaderGone =
      (role.snapshotFetch === undefined && now - role.lastFetchSuccessMs >= this.options.fetchTimeoutMs) ||
      role.consecutiveFailures >= FETCH_FAILURES_BEFORE_ELECTION;
    if (!this.isVoter) {
      if (leaderGone || role.leaderEnded) this.becomeUnattached(this.epoch);
      return;
    }
    if (!this.canCampaign()) return;
    if (leaderGone || (role.campaignAtMs !== undefined && now >= role.campaignAtMs)) this.startProspective();
  }

  private tickLeader(role: Extract<Role, { kind: 'leader' }>): void {
    const now = this.nowMs;
    // Check-quorum: a leader that a majority has not fetched from recently may be partitioned
    // away while the others elect a new one; it steps down rather than serve stale reads forever.
    if (now - role.sinceMs >= this.options.fetchTimeoutMs) {
      let live = 1;
      for (const voter of this.options.voters) {
        if (voter === this.nodeId) continue;
        const seen = role.replicas.get(voter)?.lastFetchTimeMs;
        if (seen !== undefined && now - seen < this.options.fetchTimeoutMs) live++;
      }
      if (live < this.majority) {
        this.resignAsLeader(false);
        return;
      }
    }
    for (const [replicaId, parked] of role.parked) {
      if (now >= parked.deadlineMs) {
        role.parked.delete(replicaId);
        this.sendResponse(parked.from, parked.correlationId, this.fetchResponse([]));
      }
    }
    if (now >= role.nextBeginEpochAtMs && role.acknowledged.size < this.options.voters.length - 1) {
      this.sendBeginQuorumEpoch(role);
    }
  }

  // ---------------------------------------------------------------- helpers

  private sendRequest(to: NodeId, message: RaftRequest): number {
    const correlationId = this.nextCorrelationId++;
    this.pending.messages.push({ to, correlationId, message });
    return correlationId;
  }

  private sendResponse(to: NodeId, correlationId: number, message: RaftResponse): void {
    const role = this.roleState;
    if (
      message.kind === 'fetch-response' &&
      message.errorCode === 'NONE' &&
      message.divergingEpoch === undefined &&
      message.snapshotId === undefined &&
      role.kind === 'leader'
    ) {
      // Only a plain answer teaches the replica our HW (it ignores the HW of the others).
      const replica = role.replicas.get(to);
      if (replica !== undefined) replica.lastSentHw = message.highWatermark;
    }
    this.pending.messages.push({ to, correlationId, message });
  }

  private entryAt(offset: number): LogEntry | undefined {
    if (offset < this.startOffset) return undefined;
    return this.log[offset - this.startOffset];
  }

  private lastEpoch(): number {
    const last = this.log[this.log.length - 1];
    if (last !== undefined) return last.epoch;
    return this.snapshot?.epoch ?? 0;
  }

  private randomElectionTimeoutMs(): number {
    return this.options.electionTimeoutMs + Math.floor(this.options.random() * this.options.electionTimeoutMs);
  }

  private randomBackoffMs(): number {
    return Math.floor(this.options.random() * this.options.electionBackoffMaxMs);
  }

  /** Pause before retrying a failed fetch, so a refused connection does not spin. */
  private retryBackoffMs(): number {
    return Math.max(1, Math.floor(this.options.electionBackoffMaxMs / 2));
  }
}

function isEmptyReady(ready: Ready): boolean {
  return (
    ready.quorumState === undefined &&
    ready.installSnapshot === undefined &&
    ready.truncateFrom === undefined &&
    ready.entries.length === 0 &&
    ready.compactBefore === undefined &&
    ready.messages.length === 0 &&
    ready.committed.length === 0 &&
    ready.fetchSnapshot === undefined &&
    ready.roleChange === undefined
  );
}

function isRequest(message: RaftMessage): message is RaftRequest {
  switch (message.kind) {
    case 'vote-request':
    case 'begin-quorum-epoch-request':
    case 'end-quorum-epoch-request':
    case 'fetch-request':
    case 'fetch-snapshot-request':
      return true;
    case 'vote-response':
    case 'begin-quorum-epoch-response':
    case 'end-quorum-epoch-response':
    case 'fetch-response':
    case 'fetch-snapshot-response':
      return false;
    default:
      return assertNever(message, 'message');
  }
}
