// The driver of one quorum member: it runs the pure Raft core (raft/raft-core.ts) against real
// storage, gRPC and timers, and offers the committed log to the state machine above it.
//
// Ready pipeline (the order is the contract in raft/types.ts, KIP-595's durability rules):
//   step inputs at once (RPCs, responses, failures, ticks every TICK_INTERVAL_MS) ->
//   take every Ready -> persist (writes one at a time, in order; Readies queued behind a write
//   in progress are group-committed in one synced batch) -> send its messages -> install a
//   snapshot / apply committed entries (in order) -> start a snapshot download -> advance (in
//   order). Readies are taken right after every burst of inputs (a microtask after them), so a
//   commit never waits for the next tick; see `drain` for what may overlap and why that is safe.
//
// Snapshots of the state machine are taken between applied batches but saved beside the pipeline
// (file and fsyncs outside the write queue, then a record in the next group-committed batch), so
// taking one never stalls commits.
//
// The same class runs a voter or an observer (a node id not in the voter set): observers fetch
// and apply the log but never vote, which is how brokers follow the metadata log.
//
// A storage failure inside the loop is fail-stop: the node stops and reports through `onFatal`,
// because continuing after a failed synced write could break Raft's durability promises.

import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { NotLeaderError, RaftkaError, assertNever, invariant, type Logger } from '@raftka/protocol';
import { RaftCore } from '../raft/raft-core.js';
import type {
  FetchSnapshotRequest,
  FetchSnapshotResponse,
  LogEntry,
  NodeId,
  OutboundMessage,
  QuorumDescription,
  RaftInput,
  RaftRequest,
  RaftResponse,
  Ready,
  RoleName,
  SnapshotId,
} from '../raft/types.js';
import type { SnapshotMetadata } from '../storage/entry-codec.js';
import { QuorumStorage } from '../storage/quorum-storage.js';
import { QuorumClientPool, QuorumServer, type ExtraService, type QuorumRpcHandler, type ServiceWrapper } from '../transport/grpc-transport.js';
import type { AppendRecordsResult, DescribedQuorum, ReadCommittedResult } from '../transport/quorum-proto.js';
import { METADATA_LOG_DIRECTORY, formatAddress, type QuorumConfig, type VoterAddress } from './quorum-config.js';

/** Core deadlines are checked this often; fine enough for the 100s-of-ms timeouts of quorum-config.ts. */
export const TICK_INTERVAL_MS = 10;
/** Size of one FetchSnapshot chunk. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** A graceful close of a leader waits at most this long for a successor before stopping anyway. */
export const HANDOVER_WAIT_MS_MAX = 2_000;
/** Appends waiting for commit at once; beyond this `append` pushes back with an error. */
export const PENDING_APPENDS_MAX = 10_000;
/**
 * Readies handed out by the core and not yet advanced; bounds the pipeline's memory (a Ready
 * mostly refers to entries the log holds anyway). Generous, because a full pipeline stops the
 * NEXT Readies too, including those that carry commits: while one slow fsync of the leader holds
 * the pipeline, two followers can still commit (a majority without the leader), and at 64 a
 * 100 ms fsync stall on a busy leader was enough to make every commit wait for it.
 */
export const READIES_IN_FLIGHT_MAX = 1024;
/** Entries one ReadCommitted call returns at most. */
export const READ_COMMITTED_ENTRIES_MAX = 1_000;

/** A batch of committed data records, as handed to the state machine. */
export interface CommittedBatch {
  offset: number;
  epoch: number;
  records: Uint8Array[];
}

export type CommittedListener = (batch: CommittedBatch) => void | Promise<void>;
export type RoleChangeListener = (change: { role: RoleName; epoch: number; leaderId: NodeId | undefined }) => void;

/** The state machine's snapshot hooks. */
export interface SnapshotProvider {
  /** Serializes the state machine; called between two applied batches, so it reflects exactly the applied prefix. */
  take(): Promise<Uint8Array>;
  /** Replaces the state machine with a snapshot's contents. */
  load(bytes: Uint8Array, snapshotId: SnapshotId): Promise<void>;
}

export interface QuorumNodeOptions {
  config: QuorumConfig;
  logger: Logger;
  /** Registered before the first Ready so that no committed batch is missed. */
  onCommitted?: CommittedListener;
  snapshotProvider?: SnapshotProvider;
  /** Called once if the node stops on a fatal error (e.g. a failed synced write). */
  onFatal?: (error: unknown) => void;
  /** Serve QuorumService (voters must; an observer may skip it). Defaults to true for voters. */
  serve?: boolean;
  /** More gRPC services to serve on the CONTROLLER listener (the controller's API). */
  extraServices?: readonly ExtraService[];
  /** Wraps every served service (request metrics); default: served as they are. */
  serviceWrapper?: ServiceWrapper;
}

interface PendingAppend {
  epoch: number;
  resolve: (result: { offset: number; epoch: number }) => void;
  reject: (error: unknown) => void;
}

/**
 * A storage write waiting its turn: a Ready's effects, or the record that makes a snapshot file
 * (already written beside the queue) the latest snapshot.
 */
type QueuedWrite = ({ kind: 'ready'; write: Ready } | { kind: 'record-snapshot'; metadata: SnapshotMetadata }) & {
  resolve?: () => void;
  reject?: (error: unknown) => void;
};

interface PendingInbound {
  resolve: (response: RaftResponse) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
}

function nowMs(): number {
  // Monotonic, yet on the epoch scale so that describe's times read as wall-clock.
  return Math.floor(performance.timeOrigin + performance.now());
}

function senderOf(request: RaftRequest): NodeId {
  switch (request.kind) {
    case 'vote-request':
      return request.candidateId;
    case 'begin-quorum-epoch-request':
    case 'end-quorum-epoch-request':
      return request.leaderId;
    case 'fetch-request':
    case 'fetch-snapshot-request':
      return request.replicaId;
    default:
      return assertNever(request, 'raft request');
  }
}

function isRequest(message: OutboundMessage['message']): message is RaftRequest {
  return message.kind.endsWith('-request');
}

export class QuorumNode implements QuorumRpcHandler {
  readonly nodeId: NodeId;
  private readonly config: QuorumConfig;
  private readonly logger: Logger;
  private readonly core: RaftCore;
  private readonly storage: QuorumStorage;
  private readonly peers: QuorumClientPool;
  private readonly voterAddresses: ReadonlyMap<NodeId, VoterAddress>;
  private server: QuorumServer | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private readonly committedListeners: CommittedListener[] = [];
  private readonly roleListeners: RoleChangeListener[] = [];
  private snapshotProvider: SnapshotProvider | undefined;
  private readonly onFatal: ((error: unknown) => void) | undefined;
  // Invariant: keys are offsets proposed by this node as leader and not yet committed or failed.
  private readonly pendingAppends = new Map<number, PendingAppend>();
  private readonly pendingInbound = new Map<number, PendingInbound>();
  private nextInboundCorrelationId = 1;
  // The ordered write queue and chains of the Ready pipeline (see `drain`).
  private readonly writeQueue: QueuedWrite[] = [];
  private writing: Promise<void> | undefined;
  private applyTail: Promise<void> = Promise.resolve();
  private advanceTail: Promise<void> = Promise.resolve();
  // Invariant: 0 <= readiesInFlight <= READIES_IN_FLIGHT_MAX.
  private readiesInFlight = 0;
  private drainScheduled = false;
  private closed = false;
  private failed: unknown;
  private downloading: string | undefined;
  /** Offset of the last entry handed to the state machine (-1: none); snapshots are taken here. */
  private appliedOffset = -1;
  private appliedEpoch = 0;
  private recordsSinceSnapshot = 0;
  private recordBytesSinceSnapshot = 0;
  /** The save of the last snapshot taken, while in progress; snapshots are saved one at a time. */
  private snapshotSave: Promise<SnapshotId | undefined> | undefined;
  /** The snapshot found at start when no provider was given yet; loaded by `setSnapshotProvider`. */
  private unloadedSnapshot: SnapshotId | undefined;
  private lastRole: RoleName;

  private constructor(options: QuorumNodeOptions, storage: QuorumStorage) {
    const { config } = options;
    this.config = config;
    this.nodeId = config.nodeId;
    this.logger = options.logger.child({ component: 'raft', nodeId: config.nodeId });
    this.storage = storage;
    this.onFatal = options.onFatal;
    this.snapshotProvider = options.snapshotProvider;
    if (options.onCommitted) this.committedListeners.push(options.onCommitted);
    this.voterAddresses = new Map(config.voters.map((voter) => [voter.nodeId, voter]));
    this.peers = new QuorumClientPool(
      new Map(config.voters.filter((voter) => voter.nodeId !== config.nodeId).map((voter) => [voter.nodeId, formatAddress(voter.host, voter.port)])),
    );
    const restored = storage.load();
    this.core = new RaftCore(
      {
        nodeId: config.nodeId,
        voters: config.voters.map((voter) => voter.nodeId),
        random: Math.random,
        fetchTimeoutMs: config.fetchTimeoutMs,
        electionTimeoutMs: config.electionTimeoutMs,
        electionBackoffMaxMs: config.electionBackoffMaxMs,
        fetchMaxWaitMs: config.fetchMaxWaitMs,
        fetchMaxBytes: config.fetchMaxBytes,
      },
      restored,
      nowMs(),
    );
    this.lastRole = this.core.role;
    if (restored.snapshot) {
      this.appliedOffset = restored.snapshot.endOffset - 1;
      this.appliedEpoch = restored.snapshot.epoch;
    }
  }

  /**
   * Opens the storage under `<log.dirs[0]>/__cluster_metadata-0/`, loads the latest snapshot into
   * the state machine, starts the gRPC server (voters) and the tick timer.
   */
  static async start(options: QuorumNodeOptions): Promise<QuorumNode> {
    const { config } = options;
    const directory = path.resolve(config.logDirs[0]!, METADATA_LOG_DIRECTORY);
    const storage = await QuorumStorage.open(directory);
    let node: QuorumNode;
    try {
      node = new QuorumNode(options, storage);
    } catch (error) {
      await storage.close();
      throw error;
    }
    try {
      const snapshot = storage.latestSnapshot;
      if (snapshot && node.snapshotProvider) {
        await node.snapshotProvider.load(await storage.readSnapshot(snapshot), snapshot);
      } else if (snapshot) {
        node.unloadedSnapshot = snapshot;
      }
      const isVoter = config.voters.some((voter) => voter.nodeId === config.nodeId);
      if (options.serve ?? isVoter) {
        const listener = config.listeners.find((candidate) => candidate.name === 'CONTROLLER');
        invariant(listener, 'a serving quorum node needs a CONTROLLER listener (checked by quorumConfigFrom)');
        node.server = await QuorumServer.start({
          host: listener.host,
          port: listener.port,
          handler: node,
          logger: node.logger,
          ...(options.extraServices ? { extraServices: options.extraServices } : {}),
          ...(options.serviceWrapper ? { serviceWrapper: options.serviceWrapper } : {}),
        });
      }
    } catch (error) {
      node.peers.close();
      await storage.close();
      throw error;
    }
    node.logger.info(
      {
        directory,
        voters: config.voters.map((voter) => `${voter.nodeId}@${formatAddress(voter.host, voter.port)}`),
        port: node.server?.port,
        epoch: node.core.epoch,
        logEndOffset: node.core.logEndOffset,
        role: node.core.role,
      },
      'quorum node started',
    );
    node.tickTimer = setInterval(() => node.stepInput({ type: 'tick' }), TICK_INTERVAL_MS);
    node.drain();
    return node;
  }

  // ---- Public API ----

  get leaderId(): NodeId | undefined {
    return this.core.leaderId;
  }

  get epoch(): number {
    return this.core.epoch;
  }

  get role(): RoleName {
    return this.core.role;
  }

  get highWatermark(): number {
    return this.core.highWatermark;
  }

  /** Offset of the last entry handed to the state machine, -1 when none. */
  get lastAppliedOffset(): number {
    return this.appliedOffset;
  }

  /**
   * Epoch of the last entry handed to the state machine. A leader whose own epoch shows here has
   * applied its leader-change entry and so everything committed before its term (KIP-595).
   */
  get lastAppliedEpoch(): number {
    return this.appliedEpoch;
  }

  get isVoter(): boolean {
    return this.core.isVoter;
  }

  /** The port the QuorumService listens on (useful with port 0), if serving. */
  get port(): number | undefined {
    return this.server?.port;
  }

  /** The `host:port` of a voter, from controller.quorum.voters. */
  addressOf(nodeId: NodeId): string | undefined {
    const voter = this.voterAddresses.get(nodeId);
    return voter ? formatAddress(voter.host, voter.port) : undefined;
  }

  /**
   * Appends one atomic batch of records and resolves once it is committed and applied by the local
   * listeners. Only the leader accepts appends; elsewhere this rejects with NotLeaderError naming
   * the leader. If leadership is lost before the batch commits, it rejects with NotLeaderError too
   * (the batch may or may not commit later under the new leader: callers must tolerate that).
   */
  append(records: Uint8Array[]): Promise<{ offset: number; epoch: number }> {
    if (this.closed || this.failed !== undefined) {
      return Promise.reject(new RaftkaError('SHUTTING_DOWN', 'the quorum node is shutting down'));
    }
    if (this.pendingAppends.size >= PENDING_APPENDS_MAX) {
      return Promise.reject(
        new RaftkaError('THROTTLING_QUOTA_EXCEEDED', `${PENDING_APPENDS_MAX} appends are already waiting for commit; retry later`),
      );
    }
    const result = this.core.propose(records, nowMs());
    if (!result.ok) return Promise.reject(this.notLeader(result.leaderId, result.epoch));
    const promise = new Promise<{ offset: number; epoch: number }>((resolve, reject) => {
      this.pendingAppends.set(result.offset, { epoch: result.epoch, resolve, reject });
    });
    this.scheduleDrain();
    return promise;
  }

  onCommitted(listener: CommittedListener): void {
    this.committedListeners.push(listener);
  }

  onRoleChange(listener: RoleChangeListener): void {
    this.roleListeners.push(listener);
  }

  /**
   * Sets the state machine's snapshot hooks. Set it in the start options, or right after `start`
   * resolves (before any committed batch arrives): the snapshot found on disk is then loaded first.
   */
  setSnapshotProvider(provider: SnapshotProvider): void {
    this.snapshotProvider = provider;
    const snapshot = this.unloadedSnapshot;
    if (snapshot === undefined) return;
    this.unloadedSnapshot = undefined;
    invariant(this.appliedOffset === snapshot.endOffset - 1, 'the snapshot provider was set after committed batches were delivered');
    // On the state-machine chain, so that it precedes every committed batch.
    this.applyTail = this.applyTail.then(async () => provider.load(await this.storage.readSnapshot(snapshot), snapshot));
  }

  /**
   * Takes a snapshot now (at the last applied offset), if a provider is set and anything was
   * applied; resolves once it is durable and recorded.
   */
  async createSnapshot(): Promise<SnapshotId | undefined> {
    // On the state-machine chain, so the snapshot reflects exactly the applied prefix; after the
    // save in progress, if any, as saves go one at a time.
    const taken = this.applyTail.then(async () => {
      await this.snapshotSave;
      return this.takeSnapshot();
    });
    this.applyTail = taken.then(
      () => undefined,
      () => undefined,
    );
    return (await taken).saved;
  }

  /** The quorum as the leader sees it (forwarded there when this node is not the leader). */
  async describeQuorum(forwarded = false): Promise<DescribedQuorum> {
    const leaderId = this.core.leaderId;
    if (!forwarded && this.core.role !== 'leader' && leaderId !== undefined && leaderId !== this.nodeId && this.peers.has(leaderId)) {
      try {
        return await this.peers.get(leaderId).describeQuorum(this.config.requestTimeoutMs, true);
      } catch (error) {
        this.logger.debug({ err: error, leaderId }, 'could not forward DescribeQuorum to the leader; answering locally');
      }
    }
    return this.describeLocally();
  }

  describeLocally(): DescribedQuorum {
    const now = nowMs();
    const description: QuorumDescription = this.core.describe(now);
    return { ...description, nowMs: now, answeredBy: this.nodeId };
  }

  /**
   * Stops the node. Graceful: a leader resigns (EndQuorumEpoch, KIP-595) and waits up to
   * HANDOVER_WAIT_MS_MAX for a successor so that the quorum does not sit out a fetch timeout.
   */
  async close(options: { graceful: boolean } = { graceful: true }): Promise<void> {
    if (this.closed) return;
    if (options.graceful && this.failed === undefined) {
      const wasLeader = this.core.role === 'leader';
      const epochBefore = this.core.epoch;
      this.stepInput({ type: 'resign' });
      if (wasLeader && this.config.voters.length > 1) {
        await this.waitFor(
          () => this.core.epoch > epochBefore && this.core.leaderId !== undefined && this.core.leaderId !== this.nodeId,
          HANDOVER_WAIT_MS_MAX,
        );
      }
    }
    this.closed = true;
    clearInterval(this.tickTimer);
    await this.settled();
    // A failed save has already stopped the node through `fail`.
    await this.snapshotSave?.catch(() => undefined);
    while (this.writing) await this.writing;
    await this.server?.close();
    this.peers.close();
    const stopping = new RaftkaError('SHUTTING_DOWN', 'the quorum node is shutting down');
    for (const pending of this.pendingAppends.values()) pending.reject(stopping);
    this.pendingAppends.clear();
    for (const pending of this.pendingInbound.values()) {
      clearTimeout(pending.timer);
      pending.reject(stopping);
    }
    this.pendingInbound.clear();
    await this.storage.close();
    this.logger.info('quorum node stopped');
  }

  // ---- QuorumRpcHandler (inbound RPCs) ----

  handleRaftRequest(request: Exclude<RaftRequest, FetchSnapshotRequest>): Promise<RaftResponse> {
    if (this.closed) return Promise.reject(new RaftkaError('SHUTTING_DOWN', `node ${this.nodeId} is shutting down`));
    const correlationId = this.nextInboundCorrelationId++;
    // The core may hold a fetch for its max wait; beyond that plus a request timeout it has dropped it.
    const waitMs = this.config.requestTimeoutMs + (request.kind === 'fetch-request' ? request.maxWaitMs : 0);
    const promise = new Promise<RaftResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingInbound.delete(correlationId);
        reject(new RaftkaError('REQUEST_TIMED_OUT', `node ${this.nodeId} did not answer ${request.kind} within ${waitMs} ms`));
      }, waitMs);
      this.pendingInbound.set(correlationId, { resolve, reject, timer });
    });
    this.stepInput({ type: 'receive', from: senderOf(request), correlationId, message: request });
    return promise;
  }

  async handleFetchSnapshot(request: FetchSnapshotRequest): Promise<FetchSnapshotResponse> {
    const base = {
      kind: 'fetch-snapshot-response' as const,
      epoch: this.core.epoch,
      leaderId: this.core.leaderId,
      snapshotId: request.snapshotId,
      position: request.position,
      size: 0,
      chunk: new Uint8Array(0),
    };
    if (request.epoch < this.core.epoch) return { ...base, errorCode: 'FENCED_LEADER_EPOCH' };
    if (request.epoch > this.core.epoch) return { ...base, errorCode: 'UNKNOWN_LEADER_EPOCH' };
    if (this.core.role !== 'leader') return { ...base, errorCode: 'NOT_LEADER_OR_FOLLOWER' };
    const read = await this.storage.readSnapshotChunk(request.snapshotId, request.position, Math.min(request.maxBytes, SNAPSHOT_CHUNK_BYTES));
    if (!read) return { ...base, errorCode: 'SNAPSHOT_NOT_FOUND' };
    if (request.position > read.size) return { ...base, errorCode: 'POSITION_OUT_OF_RANGE', size: read.size };
    return { ...base, errorCode: 'NONE', size: read.size, chunk: read.chunk };
  }

  async appendRecords(records: Uint8Array[]): Promise<AppendRecordsResult> {
    try {
      const { offset, epoch } = await this.append(records);
      return { errorCode: 'NONE', offset, epoch, leaderId: this.nodeId, leaderAddress: '', errorMessage: '' };
    } catch (error) {
      if (error instanceof NotLeaderError) {
        return {
          errorCode: 'NOT_LEADER_OR_FOLLOWER',
          offset: 0,
          epoch: error.epoch,
          leaderId: error.leaderId,
          leaderAddress: error.leaderAddress ?? '',
          errorMessage: error.message,
        };
      }
      throw error;
    }
  }

  async readCommitted(fromOffset: number, maxEntries: number): Promise<ReadCommittedResult> {
    const highWatermark = this.core.highWatermark;
    const logStartOffset = this.core.logStartOffset;
    const from = Math.max(fromOffset, logStartOffset);
    const to = Math.min(highWatermark, from + Math.min(Math.max(maxEntries, 1), READ_COMMITTED_ENTRIES_MAX));
    const entries = await this.storage.readEntries(from, to, this.config.fetchMaxBytes);
    return { entries, highWatermark, logStartOffset };
  }

  // ---- The Ready loop ----

  private stepInput(input: RaftInput): void {
    if (this.closed || this.failed !== undefined) return;
    try {
      this.core.step(input, nowMs());
    } catch (error) {
      // The core asserts its invariants; a violation is a bug, and the node stops (fail-stop).
      this.fail(error);
      return;
    }
    this.scheduleDrain();
  }

  /**
   * Drains once the current burst of inputs has been stepped: RPCs that arrive together (several
   * Fetches and appends parsed from one socket read) then make one Ready, so one write, one
   * advance and one pass through the pipeline instead of one each. It runs as a microtask, before
   * any I/O or timer, so it adds no latency.
   */
  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    queueMicrotask(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  /**
   * Takes every Ready the core has and pipelines them (up to READIES_IN_FLIGHT_MAX). Three ordered
   * chains carry each Ready:
   *  - writes: strictly one after another, so the disk always holds a prefix of what was asked
   *    (LevelDB batches issued concurrently could land out of order), with the Readies queued
   *    behind a write in progress group-committed in one batch (see `enqueueWrite`);
   *  - state machine: snapshot install and committed entries, in order. Committed entries do not
   *    wait for this Ready's own write: they are already durable on a majority (the core counts the
   *    leader's own offset only after `advance`), so applying them early is safe and keeps a
   *    commit from queueing behind the next, unrelated fsync;
   *  - advance: in order, once the Ready's write and its state-machine work are done.
   * Messages leave after the Ready's write (and so after all earlier writes), except a steady
   * leader's, see `canSendBeforeWrite`.
   */
  private drain(): void {
    while (
      !this.closed &&
      this.failed === undefined &&
      this.readiesInFlight < READIES_IN_FLIGHT_MAX &&
      this.core.hasReady()
    ) {
      this.startReady(this.core.ready());
    }
  }

  private startReady(ready: Ready): void {
    this.readiesInFlight++;
    const sendBeforeWrite = this.canSendBeforeWrite(ready);
    if (sendBeforeWrite) for (const outbound of ready.messages) this.send(outbound);
    // 1–4: persist (one synced batch for quorum state, snapshot install, truncation, entries).
    const written = this.enqueueWrite({ kind: 'ready', write: ready });
    // 5: send.
    const sent = written.then(() => {
      if (!sendBeforeWrite) for (const outbound of ready.messages) this.send(outbound);
    });
    // 6: role change, snapshot install (after its write), committed entries, in order.
    const applied = (this.applyTail = this.applyTail.then(async () => {
      if (ready.roleChange) this.noteRoleChange(ready.roleChange);
      if (ready.installSnapshot) {
        await written;
        await this.installSnapshot(ready.installSnapshot);
      }
      if (ready.committed.length > 0) await this.apply(ready.committed);
    }));
    // 7–8: snapshot download, advance.
    this.advanceTail = Promise.all([this.advanceTail, sent, applied])
      .then(() => {
        if (this.failed !== undefined) return;
        if (ready.fetchSnapshot) this.startSnapshotDownload(ready.fetchSnapshot.leaderId, ready.fetchSnapshot.snapshotId);
        this.core.advance(ready);
      })
      .catch((error: unknown) => this.fail(error))
      .finally(() => {
        this.readiesInFlight--;
        this.drain();
      });
  }

  /**
   * Queues a storage write. Writes run one at a time, in order (so the disk always holds a prefix
   * of what was asked); the items queued behind a write in progress go together in the next one,
   * as one synced batch (group commit). A snapshot install runs alone.
   */
  private enqueueWrite(item: QueuedWrite): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.writeQueue.push({ ...item, resolve, reject });
      this.pumpWrites();
    });
  }

  private pumpWrites(): void {
    if (this.writing || this.writeQueue.length === 0) return;
    const alone = (item: QueuedWrite): boolean => item.kind === 'ready' && item.write.installSnapshot !== undefined;
    const group: QueuedWrite[] = [this.writeQueue.shift()!];
    let record = group[0]!.kind === 'record-snapshot' ? group[0]!.metadata : undefined;
    if (!alone(group[0]!)) {
      for (;;) {
        const next = this.writeQueue[0];
        if (next === undefined || alone(next)) break;
        if (next.kind === 'record-snapshot') {
          // One snapshot record per batch (saves go one at a time, so this rarely stops a group).
          if (record !== undefined) break;
          record = next.metadata;
        }
        group.push(this.writeQueue.shift()!);
      }
    }
    const readies: Ready[] = [];
    for (const item of group) if (item.kind === 'ready') readies.push(item.write);
    const run = this.storage.writeAll(readies, record);
    this.writing = run.then(
      () => {
        for (const item of group) item.resolve!();
      },
      (error: unknown) => {
        for (const item of group) item.reject!(error);
      },
    );
    void this.writing.finally(() => {
      this.writing = undefined;
      this.pumpWrites();
    });
  }

  /**
   * A leader that stays leader for the whole Ready may send before its own write is durable (Raft
   * paper §10.2.1: the leader writes its log in parallel with replicating it). This is safe because
   * the core counts the leader's own offset towards the high watermark only once `advance` says
   * it is durable, and such a Ready carries no vote, epoch or truncation whose durability a
   * message could claim. It takes one fsync off every commit's critical path.
   */
  private canSendBeforeWrite(ready: Ready): boolean {
    return (
      this.core.role === 'leader' &&
      ready.roleChange === undefined &&
      ready.quorumState === undefined &&
      ready.truncateFrom === undefined &&
      ready.installSnapshot === undefined
    );
  }

  /** Resolves when every Ready taken so far has been written, applied and advanced. */
  private async settled(): Promise<void> {
    for (;;) {
      const tail = this.advanceTail;
      await tail.catch(() => undefined);
      if (tail === this.advanceTail) return;
    }
  }

  private send(outbound: OutboundMessage): void {
    const { to, correlationId, message } = outbound;
    if (!isRequest(message)) {
      const pending = this.pendingInbound.get(correlationId);
      // Absent when the RPC already timed out or was cancelled: the peer will retry.
      if (!pending) return;
      this.pendingInbound.delete(correlationId);
      clearTimeout(pending.timer);
      pending.resolve(message);
      return;
    }
    if (!this.peers.has(to)) {
      queueMicrotask(() => this.stepInput({ type: 'request-failed', to, correlationId }));
      return;
    }
    const deadlineMs = this.config.requestTimeoutMs + (message.kind === 'fetch-request' ? message.maxWaitMs : 0);
    this.peers
      .get(to)
      .send(message, deadlineMs)
      .then(
        (response) => this.stepInput({ type: 'receive', from: to, correlationId, message: response }),
        (error: unknown) => {
          this.logger.trace({ err: error, to, kind: message.kind }, 'quorum request failed');
          this.stepInput({ type: 'request-failed', to, correlationId });
        },
      );
  }

  private noteRoleChange(change: NonNullable<Ready['roleChange']>): void {
    const previous = this.lastRole;
    this.lastRole = change.role;
    this.logger.info({ role: change.role, epoch: change.epoch, leaderId: change.leaderId, previousRole: previous }, 'quorum role changed');
    if (change.role !== 'leader' || change.leaderId !== this.nodeId) {
      // Appends proposed as leader cannot be confirmed any more (KIP-595: only the leader commits).
      for (const [offset, pending] of this.pendingAppends) {
        pending.reject(this.notLeader(change.leaderId, change.epoch));
        this.pendingAppends.delete(offset);
      }
    }
    for (const listener of this.roleListeners) {
      try {
        listener(change);
      } catch (error) {
        this.logger.error({ err: error }, 'a role change listener threw');
      }
    }
  }

  private async installSnapshot(snapshotId: SnapshotId): Promise<void> {
    if (this.snapshotProvider) {
      await this.snapshotProvider.load(await this.storage.readSnapshot(snapshotId), snapshotId);
    }
    this.appliedOffset = snapshotId.endOffset - 1;
    this.appliedEpoch = snapshotId.epoch;
    this.recordsSinceSnapshot = 0;
    this.recordBytesSinceSnapshot = 0;
    this.logger.info({ snapshotId }, 'installed a snapshot from the leader');
  }

  private async apply(committed: LogEntry[]): Promise<void> {
    for (const entry of committed) {
      if (entry.offset <= this.appliedOffset) continue; // Already covered by a loaded snapshot.
      invariant(entry.offset === this.appliedOffset + 1, () => `committed entry ${entry.offset} after applied ${this.appliedOffset}`);
      if (entry.payload.kind === 'data') {
        const batch: CommittedBatch = { offset: entry.offset, epoch: entry.epoch, records: entry.payload.records };
        for (const listener of this.committedListeners) await listener(batch);
        this.recordsSinceSnapshot += entry.payload.records.length;
        for (const record of entry.payload.records) this.recordBytesSinceSnapshot += record.byteLength;
      }
      this.appliedOffset = entry.offset;
      this.appliedEpoch = entry.epoch;
      const pending = this.pendingAppends.get(entry.offset);
      if (pending) {
        this.pendingAppends.delete(entry.offset);
        if (pending.epoch === entry.epoch) pending.resolve({ offset: entry.offset, epoch: entry.epoch });
        else pending.reject(this.notLeader(this.core.leaderId, this.core.epoch));
      }
    }
    const snapshotDue =
      this.recordBytesSinceSnapshot >= this.config.snapshotIntervalBytes ||
      (this.config.snapshotIntervalRecords > 0 && this.recordsSinceSnapshot >= this.config.snapshotIntervalRecords);
    // While a save is in progress the count goes on, and the next batch after it takes the snapshot.
    if (this.snapshotProvider && snapshotDue && this.snapshotSave === undefined) {
      const { saved } = await this.takeSnapshot();
      // Not awaited: the next committed batches need not wait for the snapshot's fsyncs.
      void saved.catch((error: unknown) => this.fail(error));
    }
  }

  /**
   * Takes a snapshot at the last applied offset and starts saving it. Must run between applied
   * batches (on the state-machine chain), which it holds only while the provider serializes, so
   * the bytes reflect exactly the applied prefix. The save (file write and fsyncs beside the write
   * queue, then a record in the next group-committed batch) does not hold up the chain, so a
   * snapshot adds no commit latency; `saved` resolves once the snapshot is durable and recorded.
   */
  private async takeSnapshot(): Promise<{ saved: Promise<SnapshotId | undefined> }> {
    if (!this.snapshotProvider || this.appliedOffset < 0) return { saved: Promise.resolve(undefined) };
    const snapshotId: SnapshotId = { endOffset: this.appliedOffset + 1, epoch: this.appliedEpoch };
    const latest = this.storage.latestSnapshot;
    if (latest && latest.endOffset >= snapshotId.endOffset) return { saved: Promise.resolve(latest) };
    invariant(this.snapshotSave === undefined, 'a snapshot is taken while another is being saved');
    const bytes = await this.snapshotProvider.take();
    this.recordsSinceSnapshot = 0;
    this.recordBytesSinceSnapshot = 0;
    const saved = this.saveSnapshot(snapshotId, bytes);
    this.snapshotSave = saved;
    const done = (): void => {
      this.snapshotSave = undefined;
    };
    void saved.then(done, done);
    return { saved };
  }

  private async saveSnapshot(snapshotId: SnapshotId, bytes: Uint8Array): Promise<SnapshotId> {
    const metadata = await this.storage.writeSnapshotFile(snapshotId, bytes);
    await this.enqueueWrite({ kind: 'record-snapshot', metadata });
    this.logger.info({ snapshotId, bytes: bytes.byteLength }, 'took a snapshot');
    this.stepInput({ type: 'snapshot-created', snapshotId });
    return snapshotId;
  }

  private startSnapshotDownload(leaderId: NodeId, snapshotId: SnapshotId): void {
    const key = `${snapshotId.endOffset}-${snapshotId.epoch}`;
    if (this.downloading === key) return;
    this.downloading = key;
    void this.downloadSnapshot(leaderId, snapshotId).then(
      () => {
        this.downloading = undefined;
        this.logger.info({ snapshotId, leaderId }, 'downloaded a snapshot');
        this.stepInput({ type: 'snapshot-fetched', snapshotId });
      },
      (error: unknown) => {
        this.downloading = undefined;
        this.logger.warn({ err: error, snapshotId, leaderId }, 'snapshot download failed');
        this.stepInput({ type: 'snapshot-fetch-failed', snapshotId });
      },
    );
  }

  private async downloadSnapshot(leaderId: NodeId, snapshotId: SnapshotId): Promise<void> {
    const download = await this.storage.beginSnapshotDownload(snapshotId);
    try {
      for (;;) {
        if (this.closed) throw new RaftkaError('SHUTTING_DOWN', 'stopped during a snapshot download');
        const response = await this.peers.get(leaderId).send(
          {
            kind: 'fetch-snapshot-request',
            epoch: this.core.epoch,
            replicaId: this.nodeId,
            snapshotId,
            position: download.bytesWritten,
            maxBytes: SNAPSHOT_CHUNK_BYTES,
          },
          this.config.requestTimeoutMs,
        );
        invariant(response.kind === 'fetch-snapshot-response', 'FetchSnapshot answered with another message');
        if (response.errorCode !== 'NONE') {
          throw new RaftkaError('SNAPSHOT_NOT_FOUND', `leader ${leaderId} answered FetchSnapshot with ${response.errorCode}`);
        }
        if (response.position !== download.bytesWritten) {
          throw new RaftkaError('POSITION_OUT_OF_RANGE', `asked for position ${download.bytesWritten}, got ${response.position}`);
        }
        await download.append(response.chunk);
        if (download.bytesWritten >= response.size) break;
        if (response.chunk.byteLength === 0) throw new RaftkaError('POSITION_OUT_OF_RANGE', 'the leader sent an empty snapshot chunk');
      }
      await download.finish();
    } catch (error) {
      await download.abort();
      throw error;
    }
  }

  private notLeader(leaderId: NodeId | undefined, epoch: number): NotLeaderError {
    const leaderAddress = leaderId === undefined ? undefined : this.addressOf(leaderId);
    return new NotLeaderError({ ...(leaderId === undefined ? {} : { leaderId }), ...(leaderAddress ? { leaderAddress } : {}), epoch });
  }

  private fail(error: unknown): void {
    if (this.failed !== undefined) return;
    this.failed = error;
    this.logger.fatal({ err: error }, 'the quorum node stopped on a fatal error');
    clearInterval(this.tickTimer);
    for (const pending of this.pendingAppends.values()) pending.reject(error);
    this.pendingAppends.clear();
    for (const pending of this.pendingInbound.values()) {
      clearTimeout(pending.timer);
      pending.reject(new RaftkaError('SHUTTING_DOWN', `node ${this.nodeId} stopped on a fatal error`));
    }
    this.pendingInbound.clear();
    if (this.onFatal) this.onFatal(error);
    else queueMicrotask(() => {
      throw error;
    });
  }

  private async waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() >= deadline || this.failed !== undefined) return false;
      await new Promise((resolve) => setTimeout(resolve, TICK_INTERVAL_MS));
    }
    return true;
  }
}
