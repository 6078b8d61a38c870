// The contract between the pure Raft core and the driver that runs it.
//
// The core (raft-core.ts) is a deterministic state machine in the style of etcd-io/raft: it takes
// inputs (`RaftInput`) and queues effects, which the driver collects as a `Ready`. The driver
// persists what the Ready asks for (synced), only then sends its messages and hands its committed
// entries to the state machine above, and finally calls `advance(ready)`. Because messages leave
// only after the Ready's writes are durable, a vote is never granted and a fetch never claims an
// offset before the disk has it — the two durability rules of KIP-595.
//
// The core never touches a socket, a timer, a clock, a disk or Math.random: time arrives as the
// `nowMs` argument of `step`, randomness as the injected `random` function, and everything else as
// inputs. That is what lets the simulation (src/sim) run thousands of seeded clusters.
//
// Offsets: the Raft log is a sequence of entries at offsets [logStartOffset, logEndOffset). One
// entry holds one atomic batch of records appended by one `propose` call, so a batch is either
// committed whole or not at all. A snapshot with id {endOffset, epoch} covers every entry below
// endOffset; `epoch` is the epoch of the entry at endOffset - 1.

export type NodeId = number;

/** A snapshot is named by the log end offset and last epoch it covers (as in KRaft). */
export interface SnapshotId {
  endOffset: number;
  epoch: number;
}

export type EntryPayload =
  /** Records proposed by the state machine above the quorum, opaque to Raft. */
  | { kind: 'data'; records: Uint8Array[] }
  /**
   * Written by a new leader as the first entry of its epoch. Nothing of the epoch counts as
   * committed until it is (KIP-595: the leader commits an entry of its own epoch first).
   */
  | { kind: 'leader-change'; leaderId: NodeId; voters: NodeId[] };

export interface LogEntry {
  offset: number;
  epoch: number;
  payload: EntryPayload;
}

/** What must survive a crash besides the log: the KRaft `quorum-state` file. */
export interface QuorumStateRecord {
  epoch: number;
  /** The candidate this node voted for in `epoch`, if any. Invariant: at most one per epoch. */
  votedFor: NodeId | undefined;
  /** The leader of `epoch` if known (lets a restarted node resume following at once). */
  leaderId: NodeId | undefined;
}

/** What the driver loads from storage and hands to the core at start-up. */
export interface RestoredState {
  quorumState: QuorumStateRecord;
  /** The latest snapshot, if the log has been compacted. */
  snapshot: SnapshotId | undefined;
  /** Entries from the snapshot's end offset (or 0) to the log end, contiguous. */
  entries: LogEntry[];
}

// ---- Messages. Requests carry the sender's epoch; responses the responder's. ----

export type RaftErrorCode =
  | 'NONE'
  /** The request's epoch is older than the responder's. */
  | 'FENCED_LEADER_EPOCH'
  /** The responder is not the leader (the response names the leader when known). */
  | 'NOT_LEADER_OR_FOLLOWER'
  /** The request's epoch is newer than anything the responder knows. */
  | 'UNKNOWN_LEADER_EPOCH'
  /** The requester is not a voter but asked for a vote, or similar. */
  | 'INCONSISTENT_VOTER_SET'
  /** The requested snapshot does not exist (any more). */
  | 'SNAPSHOT_NOT_FOUND'
  /** The requested snapshot position is past its end. */
  | 'POSITION_OUT_OF_RANGE';

export interface VoteRequest {
  kind: 'vote-request';
  /** The epoch the candidate runs in (for a pre-vote: the epoch it would run in). */
  epoch: number;
  candidateId: NodeId;
  lastOffsetEpoch: number;
  /** The candidate's log end offset. */
  lastOffset: number;
  /** KIP-996: a pre-vote asks "would you vote for me?" without bumping anyone's epoch. */
  preVote: boolean;
}

export interface VoteResponse {
  kind: 'vote-response';
  epoch: number;
  errorCode: RaftErrorCode;
  voteGranted: boolean;
  preVote: boolean;
  leaderId: NodeId | undefined;
}

export interface BeginQuorumEpochRequest {
  kind: 'begin-quorum-epoch-request';
  epoch: number;
  leaderId: NodeId;
}

export interface BeginQuorumEpochResponse {
  kind: 'begin-quorum-epoch-response';
  epoch: number;
  errorCode: RaftErrorCode;
  leaderId: NodeId | undefined;
}

export interface EndQuorumEpochRequest {
  kind: 'end-quorum-epoch-request';
  epoch: number;
  leaderId: NodeId;
  /** Voters ordered by how caught up they were; the first should campaign first. */
  preferredSuccessors: NodeId[];
}

export interface EndQuorumEpochResponse {
  kind: 'end-quorum-epoch-response';
  epoch: number;
  errorCode: RaftErrorCode;
  leaderId: NodeId | undefined;
}

export interface FetchRequest {
  kind: 'fetch-request';
  epoch: number;
  replicaId: NodeId;
  /** The replica's log end offset: everything below it is durable on the replica. */
  fetchOffset: number;
  /** The epoch of the entry at fetchOffset - 1 (0 when fetchOffset is 0). */
  lastFetchedEpoch: number;
  /** How long the leader may hold the request when it has nothing new (long poll). */
  maxWaitMs: number;
  maxBytes: number;
}

export interface FetchResponse {
  kind: 'fetch-response';
  epoch: number;
  errorCode: RaftErrorCode;
  leaderId: NodeId | undefined;
  highWatermark: number;
  logStartOffset: number;
  entries: LogEntry[];
  /**
   * Set when the replica's log diverges from the leader's: the replica truncates to
   * min(endOffset, its own end offset) and fetches again (KIP-595, like KIP-101 for data).
   */
  divergingEpoch: { epoch: number; endOffset: number } | undefined;
  /** Set when fetchOffset is below the leader's log start: fetch this snapshot instead. */
  snapshotId: SnapshotId | undefined;
}

export interface FetchSnapshotRequest {
  kind: 'fetch-snapshot-request';
  epoch: number;
  replicaId: NodeId;
  snapshotId: SnapshotId;
  position: number;
  maxBytes: number;
}

export interface FetchSnapshotResponse {
  kind: 'fetch-snapshot-response';
  epoch: number;
  errorCode: RaftErrorCode;
  leaderId: NodeId | undefined;
  snapshotId: SnapshotId;
  position: number;
  /** Total size of the snapshot in bytes. */
  size: number;
  chunk: Uint8Array;
}

export type RaftRequest =
  | VoteRequest
  | BeginQuorumEpochRequest
  | EndQuorumEpochRequest
  | FetchRequest
  | FetchSnapshotRequest;

export type RaftResponse =
  | VoteResponse
  | BeginQuorumEpochResponse
  | EndQuorumEpochResponse
  | FetchResponse
  | FetchSnapshotResponse;

export type RaftMessage = RaftRequest | RaftResponse;

/**
 * A message the core wants sent. A request gets a fresh `correlationId` from the core; the driver
 * sends it as an RPC and feeds the response back with the same `correlationId`, or reports
 * `request-failed` with it. A response echoes the `correlationId` of the inbound request it
 * answers, which the driver uses to complete that RPC.
 */
export interface OutboundMessage {
  to: NodeId;
  correlationId: number;
  message: RaftMessage;
}

// ---- Inputs ----

export type RaftInput =
  /** Time passes. The driver ticks regularly (every few ms); the core acts on deadlines. */
  | { type: 'tick' }
  /** An inbound request (correlationId chosen by the driver) or a response to our request. */
  | { type: 'receive'; from: NodeId; correlationId: number; message: RaftMessage }
  /** A request we sent could not be delivered or timed out (the peer may be down). */
  | { type: 'request-failed'; to: NodeId; correlationId: number }
  /** Graceful shutdown: a leader resigns with EndQuorumEpoch; a voter stops voting. */
  | { type: 'resign' }
  /** The state machine wrote a snapshot of committed state up to `snapshotId.endOffset`. */
  | { type: 'snapshot-created'; snapshotId: SnapshotId }
  /** The driver finished downloading the snapshot that a `Ready.fetchSnapshot` asked for. */
  | { type: 'snapshot-fetched'; snapshotId: SnapshotId }
  /** The download failed; the core falls back to fetching and will ask again if needed. */
  | { type: 'snapshot-fetch-failed'; snapshotId: SnapshotId };

export type RoleName = 'unattached' | 'prospective' | 'candidate' | 'leader' | 'follower' | 'resigned';

// ---- Effects ----

/**
 * Everything the core wants done since the last `advance`. Apply in this order:
 *  1. persist `quorumState` (synced) if set;
 *  2. if `installSnapshot` is set, replace the log with the downloaded snapshot (all entries
 *     gone, log start = its end offset);
 *  3. delete entries at or above `truncateFrom` if set, then append `entries` (synced);
 *  4. delete entries below `compactBefore` if set (covered by a snapshot; no sync needed);
 *  5. send `messages`;
 *  6. if `installSnapshot` is set, load it into the state machine, then hand `committed` entries
 *     to the state machine in order;
 *  7. start downloading `fetchSnapshot` if set;
 *  8. call `advance(ready)`.
 */
export interface Ready {
  quorumState: QuorumStateRecord | undefined;
  installSnapshot: SnapshotId | undefined;
  truncateFrom: number | undefined;
  entries: LogEntry[];
  compactBefore: number | undefined;
  messages: OutboundMessage[];
  committed: LogEntry[];
  fetchSnapshot: { leaderId: NodeId; snapshotId: SnapshotId } | undefined;
  /** Set when the role, epoch or known leader changed during this Ready. */
  roleChange: { role: RoleName; epoch: number; leaderId: NodeId | undefined } | undefined;
}

// ---- Configuration and queries ----

export interface RaftTimingOptions {
  /**
   * A follower (or observer) that has had no successful fetch response for this long considers
   * the leader gone; a leader that has not heard fetches from a majority for this long resigns
   * (check-quorum). Kafka: controller.quorum.fetch.timeout.ms.
   */
  fetchTimeoutMs: number;
  /** Base of the randomized election timeout of a candidate. Kafka: controller.quorum.election.timeout.ms. */
  electionTimeoutMs: number;
  /** Upper bound of the randomized back-off before a new election. Kafka: controller.quorum.election.backoff.max.ms. */
  electionBackoffMaxMs: number;
  /** How long the leader holds a fetch with nothing new before answering empty. */
  fetchMaxWaitMs: number;
  /** Bytes of entries the leader puts in one fetch response (at least one entry is always sent). */
  fetchMaxBytes: number;
}

export interface RaftCoreOptions extends RaftTimingOptions {
  nodeId: NodeId;
  /** The static voter set. A node not in it is an observer. */
  voters: readonly NodeId[];
  /** Uniform in [0, 1). Injected so simulations are reproducible. */
  random: () => number;
}

export interface ReplicaDescription {
  nodeId: NodeId;
  logEndOffset: number;
  /** Leader's clock time of the last fetch from this replica, if any. */
  lastFetchTimeMs: number | undefined;
  /** Leader's clock time when the replica last fetched up to the leader's end offset. */
  lastCaughtUpTimeMs: number | undefined;
}

export interface QuorumDescription {
  leaderId: NodeId | undefined;
  epoch: number;
  highWatermark: number;
  logStartOffset: number;
  logEndOffset: number;
  /** Filled in on the leader; elsewhere the local view (this node only). */
  voters: ReplicaDescription[];
  observers: ReplicaDescription[];
}

export type ProposeResult =
  | { ok: true; offset: number; epoch: number }
  | { ok: false; leaderId: NodeId | undefined; epoch: number };
