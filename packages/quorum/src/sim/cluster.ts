// A deterministic simulated cluster of Raft cores: fake clock, fake network, fake storage.
//
// Everything runs on one thread from one seed (as in TigerBeetle's VOPR and Kafka's
// RaftEventSimulationTest), so any failure replays exactly. The pieces:
//
// - Clock and events: a priority queue of closures ordered by (time, insertion order).
// - Network: every request is an RPC that ends in exactly one of: a response, or `request-failed`
//   (connection refused/reset when the peer is down or crashes, or the RPC deadline when the
//   request or the response was lost). Messages are dropped, delayed at random (so reordered),
//   duplicated, and cut by partitions. Like a TCP connection, nothing reaches a node incarnation
//   other than the one it was meant for: responses to a crashed node's requests die with it.
// - Storage: one per node, modelling fsync at Ready granularity. A Ready is applied after a random
//   fsync delay; a crash before that loses it entirely (nothing of it was sent, so that is legal),
//   and a crash never loses anything that was applied.
// - State machine: each node folds delivered committed entries into a hash chain; snapshots carry
//   the hash, so a snapshot install is checked like a replay.
//
// After every event the cluster checks the safety invariants (see checkInvariants). The HW is
// not persisted by the core, so it is checked for monotonicity per node incarnation only.

import { InvariantViolation } from '@raftka/protocol';
import { RaftCore } from '../raft/raft-core.js';
import type {
  LogEntry,
  NodeId,
  OutboundMessage,
  QuorumStateRecord,
  RaftMessage,
  RaftTimingOptions,
  Ready,
  SnapshotId,
} from '../raft/types.js';
import { Prng } from './prng.js';

export class SimViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimViolation';
  }
}

export interface NetworkFaults {
  dropRate: number;
  duplicateRate: number;
  minDelayMs: number;
  maxDelayMs: number;
}

export interface SimConfig {
  voters: number;
  observers: number;
  timing: RaftTimingOptions;
  tickMs: number;
  network: NetworkFaults;
  /** Deadline of an RPC (a Fetch gets fetchMaxWaitMs on top). */
  rpcTimeoutMs: number;
  fsyncMaxMs: number;
  /** A node snapshots its state machine every this many applied entries. */
  snapshotEveryEntries: number;
}

interface SmState {
  endOffset: number;
  hash: number;
}

interface StoredSnapshot {
  id: SnapshotId;
  state: SmState;
}

interface NodeStorage {
  quorumState: QuorumStateRecord;
  snapshot: StoredSnapshot | undefined;
  /** Invariant: entries[i].offset === entriesStart + i. */
  entries: LogEntry[];
  entriesStart: number;
}

export interface SimNode {
  readonly id: NodeId;
  readonly isVoter: boolean;
  up: boolean;
  incarnation: number;
  core: RaftCore | undefined;
  /** The Ready being "fsynced"; lost if the node crashes first. */
  applying: Ready | undefined;
  storage: NodeStorage;
  sm: SmState;
  lastAppliedEpoch: number;
  downloaded: StoredSnapshot | undefined;
  // Per-incarnation monotonicity checks.
  seenEpoch: number;
  seenHw: number;
  seenRole: string;
  checkedUpTo: number;
  snapshotsInstalled: number;
}

interface Rpc {
  from: NodeId;
  fromIncarnation: number;
  to: NodeId;
  toIncarnation: number;
  status: 'pending' | 'responded' | 'failed';
}

interface Proposal {
  id: number;
  node: NodeId;
  incarnation: number;
  offset: number;
  epoch: number;
  acked: boolean;
}

interface SimEvent {
  timeMs: number;
  seq: number;
  run: () => void;
}

/** Binary min-heap of events by (time, seq). */
class EventQueue {
  private readonly heap: SimEvent[] = [];
  get size(): number {
    return this.heap.length;
  }
  push(event: SimEvent): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }
  pop(): SimEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
      if (m === i) break;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.seq < b.seq);
}

function entryKey(entry: LogEntry): string {
  const payload = entry.payload;
  if (payload.kind === 'leader-change') return `${entry.epoch}:lc:${payload.leaderId}`;
  const record = payload.records[0];
  return `${entry.epoch}:d:${record === undefined ? -1 : decodeId(record)}`;
}

function encodeId(id: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setUint32(0, id);
  return bytes;
}

function decodeId(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
}

function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function chain(hash: number, key: string): number {
  return Math.imul(hash ^ hashString(key), 0x9e3779b1) >>> 0;
}

const INITIAL_HASH = 0x12345678;

export class SimCluster {
  readonly config: SimConfig;
  readonly rng: Prng;
  readonly nodes: SimNode[] = [];
  readonly voterIds: NodeId[];
  nowMs = 0;
  /** Nodes that cannot talk to each other: key "a>b". */
  private readonly cut = new Set<string>();
  private readonly queue = new EventQueue();
  private seq = 0;
  private readonly rpcs = new Map<string, Rpc>();
  readonly trace: string[] | undefined;

  // Global truth for the invariants.
  private readonly leaderOfEpoch = new Map<number, NodeId>();
  private readonly committedKeys = new Map<number, string>();
  private readonly hashAfter = new Map<number, number>();
  private committedEnd = 0;
  readonly proposals = new Map<number, Proposal>();
  /** Set by the snapshot-catch-up scenario: a node that can only catch up through a snapshot. */
  laggingNode: SimNode | undefined;
  private nextProposalId = 1;
  stats = { events: 0, messages: 0, elections: 0, committed: 0, snapshotsInstalled: 0, acked: 0 };

  constructor(config: SimConfig, seed: number, trace: boolean) {
    this.config = config;
    this.rng = new Prng(seed);
    this.trace = trace ? [] : undefined;
    this.voterIds = [];
    for (let i = 0; i < config.voters; i++) this.voterIds.push(i + 1);
    const total = config.voters + config.observers;
    for (let id = 1; id <= total; id++) {
      this.nodes.push({
        id,
        isVoter: id <= config.voters,
        up: false,
        incarnation: 0,
        core: undefined,
        applying: undefined,
        storage: {
          quorumState: { epoch: 0, votedFor: undefined, leaderId: undefined },
          snapshot: undefined,
          entries: [],
          entriesStart: 0,
        },
        sm: { endOffset: 0, hash: INITIAL_HASH },
        lastAppliedEpoch: 0,
        downloaded: undefined,
        seenEpoch: 0,
        seenHw: 0,
        seenRole: 'none',
        checkedUpTo: 0,
        snapshotsInstalled: 0,
      });
    }
    for (const node of this.nodes) this.start(node);
  }

  log(line: string | (() => string)): void {
    if (this.trace !== undefined) this.trace.push(`${String(this.nowMs).padStart(6)} ${typeof line === 'string' ? line : line()}`);
  }

  node(id: NodeId): SimNode {
    const node = this.nodes[id - 1];
    if (node === undefined) throw new SimViolation(`no node ${id}`);
    return node;
  }

  // ---------------------------------------------------------------- events

  schedule(delayMs: number, run: () => void): void {
    this.queue.push({ timeMs: this.nowMs + Math.max(0, delayMs), seq: this.seq++, run });
  }

  /** Runs events until `untilMs` or until `stop` returns true (checked after each event). */
  runUntil(untilMs: number, stop?: () => boolean): boolean {
    for (;;) {
      const event = this.queue.pop();
      if (event === undefined) return false;
      if (event.timeMs > untilMs) {
        this.queue.push(event);
        this.nowMs = untilMs;
        return false;
      }
      this.nowMs = event.timeMs;
      this.stats.events++;
      try {
        event.run();
      } catch (error) {
        if (error instanceof InvariantViolation) throw new SimViolation(`core invariant at ${this.nowMs}ms: ${error.message}`);
        throw error;
      }
      this.checkInvariants();
      if (stop?.()) return true;
    }
  }

  // ---------------------------------------------------------------- node lifecycle

  private start(node: SimNode): void {
    node.up = true;
    node.incarnation++;
    const snapshot = node.storage.snapshot;
    const snapshotEnd = snapshot?.id.endOffset ?? 0;
    const entries = node.storage.entries.filter((entry) => entry.offset >= snapshotEnd);
    const random = this.rng.fork();
    node.core = new RaftCore(
      { ...this.config.timing, nodeId: node.id, voters: this.voterIds, random: () => random.next() },
      { quorumState: { ...node.storage.quorumState }, snapshot: snapshot?.id, entries },
      this.nowMs,
    );
    node.applying = undefined;
    node.sm = snapshot === undefined ? { endOffset: 0, hash: INITIAL_HASH } : { ...snapshot.state };
    node.lastAppliedEpoch = snapshot?.id.epoch ?? 0;
    node.downloaded = undefined;
    node.seenEpoch = node.core.epoch;
    node.seenHw = node.core.highWatermark;
    node.seenRole = 'none';
    node.checkedUpTo = node.core.logStartOffset;
    this.log(`n${node.id} start (incarnation ${node.incarnation}, epoch ${node.core.epoch}, log ${node.core.logStartOffset}..${node.core.logEndOffset})`);
    const incarnation = node.incarnation;
    const tick = (): void => {
      if (!node.up || node.incarnation !== incarnation) return;
      node.core!.step({ type: 'tick' }, this.nowMs);
      this.drive(node);
      this.schedule(this.config.tickMs, tick);
    };
    this.schedule(this.rng.int(0, this.config.tickMs), tick);
    this.drive(node);
  }

  crash(id: NodeId): void {
    const node = this.node(id);
    if (!node.up) return;
    this.log(`n${id} CRASH${node.applying ? ' (losing an un-synced Ready)' : ''}`);
    node.up = false;
    node.core = undefined;
    node.applying = undefined;
    node.incarnation++;
    // Connections to the dead process are reset: its peers see their RPCs fail quickly.
    for (const [key, rpc] of this.rpcs) {
      if (rpc.to === id && rpc.status === 'pending') this.failRpc(key, rpc, this.rng.int(1, 5));
    }
  }

  restart(id: NodeId): void {
    const node = this.node(id);
    if (node.up) return;
    this.start(node);
  }

  resign(id: NodeId): void {
    const node = this.node(id);
    if (!node.up) return;
    this.log(`n${id} RESIGN`);
    node.core!.step({ type: 'resign' }, this.nowMs);
    this.drive(node);
  }

  /** Cuts all links between the two groups (both directions). */
  partition(groupA: readonly NodeId[], groupB: readonly NodeId[]): void {
    this.log(`PARTITION [${groupA.join(',')}] | [${groupB.join(',')}]`);
    for (const a of groupA) {
      for (const b of groupB) {
        this.cut.add(`${a}>${b}`);
        this.cut.add(`${b}>${a}`);
      }
    }
  }

  heal(): void {
    this.log('HEAL network');
    this.cut.clear();
  }

  setNetwork(faults: NetworkFaults): void {
    this.config.network = faults;
  }

  upNodes(): SimNode[] {
    return this.nodes.filter((node) => node.up);
  }

  /** The up node that believes it leads the highest epoch, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const node of this.nodes) {
      if (node.up && node.core!.role === 'leader' && (best === undefined || node.core!.epoch > best.core!.epoch)) best = node;
    }
    return best;
  }

  // ---------------------------------------------------------------- the driver loop of one node

  private drive(node: SimNode): void {
    if (!node.up || node.applying !== undefined) return;
    const core = node.core!;
    if (!core.hasReady()) return;
    const ready = core.ready();
    node.applying = ready;
    const incarnation = node.incarnation;
    this.schedule(this.rng.int(0, this.config.fsyncMaxMs), () => {
      if (!node.up || node.incarnation !== incarnation) return;
      this.apply(node, ready);
    });
  }

  /** Applies a Ready in the order types.ts prescribes. */
  private apply(node: SimNode, ready: Ready): void {
    const storage = node.storage;
    if (ready.roleChange !== undefined) {
      const change = ready.roleChange;
      this.log(`n${node.id} role ${change.role} epoch ${change.epoch} leader ${change.leaderId ?? '-'}`);
    }
    // 1. quorum state
    if (ready.quorumState !== undefined) {
      const next = ready.quorumState;
      const previous = storage.quorumState;
      if (next.epoch < previous.epoch) throw new SimViolation(`n${node.id} persisted epoch went back ${previous.epoch} -> ${next.epoch}`);
      if (next.epoch === previous.epoch && previous.votedFor !== undefined && next.votedFor !== previous.votedFor) {
        throw new SimViolation(`n${node.id} changed its vote in epoch ${next.epoch}: ${previous.votedFor} -> ${next.votedFor}`);
      }
      storage.quorumState = { ...next };
    }
    // 2. snapshot install
    if (ready.installSnapshot !== undefined) {
      const id = ready.installSnapshot;
      const downloaded = node.downloaded;
      if (downloaded === undefined || downloaded.id.endOffset !== id.endOffset || downloaded.id.epoch !== id.epoch) {
        throw new SimViolation(`n${node.id} installs snapshot ${id.endOffset} it never downloaded`);
      }
      storage.snapshot = downloaded;
      storage.entries = [];
      storage.entriesStart = id.endOffset;
      node.snapshotsInstalled++;
      this.stats.snapshotsInstalled++;
      this.log(`n${node.id} install snapshot end ${id.endOffset} epoch ${id.epoch}`);
    }
    // 3. truncate, append
    if (ready.truncateFrom !== undefined) {
      const from = ready.truncateFrom;
      const storageEnd = storage.entriesStart + storage.entries.length;
      for (let offset = Math.max(from, storage.entriesStart); offset < Math.min(storageEnd, this.committedEnd); offset++) {
        const entry = storage.entries[offset - storage.entriesStart]!;
        if (this.committedKeys.get(offset) === entryKey(entry)) {
          throw new SimViolation(`n${node.id} truncated committed entry ${offset} (${entryKey(entry)})`);
        }
      }
      if (from < storage.entriesStart) throw new SimViolation(`n${node.id} truncates below its log start`);
      storage.entries.length = Math.max(0, from - storage.entriesStart);
      this.log(`n${node.id} truncate from ${from}`);
    }
    for (const entry of ready.entries) {
      const end = storage.entriesStart + storage.entries.length;
      if (entry.offset !== end) throw new SimViolation(`n${node.id} appends ${entry.offset} to a log ending at ${end}`);
      storage.entries.push(entry);
    }
    // 4. compaction
    if (ready.compactBefore !== undefined) {
      const before = ready.compactBefore;
      if (storage.snapshot === undefined || storage.snapshot.id.endOffset < before) {
        throw new SimViolation(`n${node.id} compacts below ${before} without a snapshot covering it`);
      }
      if (before > storage.entriesStart) {
        storage.entries = storage.entries.slice(before - storage.entriesStart);
        storage.entriesStart = before;
      }
    }
    // 5. messages
    for (const message of ready.messages) this.send(node, message);
    // 6. state machine
    if (ready.installSnapshot !== undefined) {
      node.sm = { ...node.downloaded!.state };
      node.lastAppliedEpoch = ready.installSnapshot.epoch;
      const expected = this.hashAfter.get(node.sm.endOffset - 1);
      if (expected !== undefined && expected !== node.sm.hash) {
        throw new SimViolation(`n${node.id} installed a snapshot at ${node.sm.endOffset} whose state differs`);
      }
    }
    for (const entry of ready.committed) this.applyCommitted(node, entry);
    // 7. snapshot download
    if (ready.fetchSnapshot !== undefined) this.downloadSnapshot(node, ready.fetchSnapshot.leaderId, ready.fetchSnapshot.snapshotId);
    // 8. advance
    node.applying = undefined;
    node.core!.advance(ready);
    this.maybeSnapshot(node);
    this.drive(node);
  }

  private applyCommitted(node: SimNode, entry: LogEntry): void {
    if (entry.offset !== node.sm.endOffset) {
      throw new SimViolation(`n${node.id} delivered offset ${entry.offset} but expected ${node.sm.endOffset}`);
    }
    const key = entryKey(entry);
    this.registerCommitted(entry.offset, key, `n${node.id} delivery`);
    node.sm.hash = chain(node.sm.hash, key);
    node.sm.endOffset++;
    node.lastAppliedEpoch = entry.epoch;
    const expected = this.hashAfter.get(entry.offset);
    if (expected === undefined) this.hashAfter.set(entry.offset, node.sm.hash);
    else if (expected !== node.sm.hash) throw new SimViolation(`n${node.id} state machine diverged at offset ${entry.offset}`);
    if (entry.payload.kind === 'data') {
      const record = entry.payload.records[0];
      const proposal = record === undefined ? undefined : this.proposals.get(decodeId(record));
      if (
        proposal !== undefined &&
        !proposal.acked &&
        proposal.node === node.id &&
        proposal.incarnation === node.incarnation &&
        proposal.offset === entry.offset &&
        proposal.epoch === entry.epoch
      ) {
        proposal.acked = true;
        this.stats.acked++;
      }
    }
  }

  private registerCommitted(offset: number, key: string, who: string): void {
    const known = this.committedKeys.get(offset);
    if (known === undefined) {
      this.committedKeys.set(offset, key);
      if (offset >= this.committedEnd) {
        this.committedEnd = offset + 1;
        this.stats.committed = this.committedEnd;
      }
    } else if (known !== key) {
      throw new SimViolation(`${who}: offset ${offset} committed as ${known} elsewhere but ${key} here`);
    }
  }

  private maybeSnapshot(node: SimNode): void {
    const core = node.core!;
    const every = this.config.snapshotEveryEntries;
    const currentEnd = node.storage.snapshot?.id.endOffset ?? 0;
    if (every <= 0 || node.sm.endOffset - currentEnd < every || node.sm.endOffset <= core.logStartOffset) return;
    const id: SnapshotId = { endOffset: node.sm.endOffset, epoch: node.lastAppliedEpoch };
    node.storage.snapshot = { id, state: { ...node.sm } };
    this.log(`n${node.id} snapshot at ${id.endOffset}`);
    core.step({ type: 'snapshot-created', snapshotId: id }, this.nowMs);
  }

  private downloadSnapshot(node: SimNode, leaderId: NodeId, snapshotId: SnapshotId): void {
    const incarnation = node.incarnation;
    this.schedule(this.rng.int(2, 20), () => {
      if (!node.up || node.incarnation !== incarnation) return;
      const leader = this.node(leaderId);
      const stored = leader.storage.snapshot;
      const reachable = leader.up && !this.cut.has(`${node.id}>${leaderId}`) && !this.cut.has(`${leaderId}>${node.id}`);
      if (reachable && stored !== undefined && stored.id.endOffset === snapshotId.endOffset && stored.id.epoch === snapshotId.epoch) {
        node.downloaded = { id: { ...stored.id }, state: { ...stored.state } };
        node.core!.step({ type: 'snapshot-fetched', snapshotId }, this.nowMs);
      } else {
        this.log(`n${node.id} snapshot download of ${snapshotId.endOffset} from n${leaderId} failed`);
        node.core!.step({ type: 'snapshot-fetch-failed', snapshotId }, this.nowMs);
      }
      this.drive(node);
    });
  }

  // ---------------------------------------------------------------- network

  private delayMs(): number {
    return this.rng.int(this.config.network.minDelayMs, this.config.network.maxDelayMs);
  }

  private lost(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}>${to}`) || this.rng.chance(this.config.network.dropRate);
  }

  private send(node: SimNode, outbound: OutboundMessage): void {
    this.stats.messages++;
    const message = outbound.message;
    const to = outbound.to;
    if (this.trace !== undefined) this.log(`n${node.id} -> n${to} #${outbound.correlationId} ${describeMessage(message)}`);
    if (message.kind.endsWith('-request')) {
      const key = `${node.id}:${outbound.correlationId}`;
      const target = this.node(to);
      const rpc: Rpc = {
        from: node.id,
        fromIncarnation: node.incarnation,
        to,
        toIncarnation: target.incarnation,
        status: 'pending',
      };
      this.rpcs.set(key, rpc);
      if (!target.up) {
        this.failRpc(key, rpc, this.rng.int(1, 5)); // connection refused
        return;
      }
      const timeoutMs =
        this.config.rpcTimeoutMs + (message.kind === 'fetch-request' ? this.config.timing.fetchMaxWaitMs : 0);
      this.schedule(timeoutMs, () => {
        if (rpc.status === 'pending') this.failRpc(key, rpc, 0);
      });
      const copies = this.rng.chance(this.config.network.duplicateRate) ? 2 : 1;
      for (let i = 0; i < copies; i++) {
        if (this.lost(node.id, to)) continue;
        this.schedule(this.delayMs(), () => {
          if (!target.up || target.incarnation !== rpc.toIncarnation) return;
          target.core!.step({ type: 'receive', from: node.id, correlationId: outbound.correlationId, message }, this.nowMs);
          this.drive(target);
        });
      }
    } else {
      const key = `${to}:${outbound.correlationId}`;
      const rpc = this.rpcs.get(key);
      if (rpc === undefined || rpc.status === 'failed' || rpc.to !== node.id) return;
      const requester = this.node(to);
      const copies = this.rng.chance(this.config.network.duplicateRate) ? 2 : 1;
      for (let i = 0; i < copies; i++) {
        if (this.lost(node.id, to)) continue;
        this.schedule(this.delayMs(), () => {
          if (rpc.status === 'failed' || !requester.up || requester.incarnation !== rpc.fromIncarnation) return;
          rpc.status = 'responded';
          this.rpcs.delete(key);
          requester.core!.step({ type: 'receive', from: node.id, correlationId: outbound.correlationId, message }, this.nowMs);
          this.drive(requester);
        });
      }
    }
  }

  private failRpc(key: string, rpc: Rpc, delayMs: number): void {
    rpc.status = 'failed';
    this.rpcs.delete(key);
    const correlationId = Number(key.slice(key.indexOf(':') + 1));
    this.schedule(delayMs, () => {
      const requester = this.node(rpc.from);
      if (!requester.up || requester.incarnation !== rpc.fromIncarnation) return;
      requester.core!.step({ type: 'request-failed', to: rpc.to, correlationId }, this.nowMs);
      this.drive(requester);
    });
  }

  // ---------------------------------------------------------------- workload

  /** Proposes one batch on a random node that believes it is the leader. */
  proposeOnLeader(): void {
    const leaders = this.nodes.filter((node) => node.up && node.core!.role === 'leader');
    if (leaders.length === 0) return;
    const node = this.rng.pick(leaders);
    const id = this.nextProposalId++;
    const records = [encodeId(id)];
    for (let i = this.rng.int(0, 3); i > 0; i--) records.push(new Uint8Array(this.rng.int(1, 300)));
    const result = node.core!.propose(records, this.nowMs);
    if (!result.ok) return;
    this.proposals.set(id, {
      id,
      node: node.id,
      incarnation: node.incarnation,
      offset: result.offset,
      epoch: result.epoch,
      acked: false,
    });
    this.drive(node);
  }

  // ---------------------------------------------------------------- invariants

  /** Safety, checked after every event. Throws SimViolation. */
  checkInvariants(): void {
    for (const node of this.nodes) {
      if (!node.up) continue;
      const core = node.core!;
      const id = node.id;
      // Epochs and HWs move forward (the HW may restart lower after a crash: it is not persisted).
      if (core.epoch < node.seenEpoch) throw new SimViolation(`n${id} epoch went back ${node.seenEpoch} -> ${core.epoch}`);
      node.seenEpoch = core.epoch;
      if (core.highWatermark < node.seenHw) throw new SimViolation(`n${id} HW went back ${node.seenHw} -> ${core.highWatermark}`);
      if (core.highWatermark > core.logEndOffset) throw new SimViolation(`n${id} HW ${core.highWatermark} above its log end`);
      // Election safety: at most one leader per epoch.
      if (core.role === 'leader') {
        const known = this.leaderOfEpoch.get(core.epoch);
        if (known === undefined) {
          this.leaderOfEpoch.set(core.epoch, id);
          this.stats.elections++;
        } else if (known !== id) {
          throw new SimViolation(`two leaders in epoch ${core.epoch}: n${known} and n${id}`);
        }
        if (node.seenRole !== `leader@${core.epoch}`) this.checkLeaderCompleteness(node);
      }
      node.seenRole = `${core.role}@${core.epoch}`;
      // Log matching below the HW: every node agrees on every committed offset.
      if (core.highWatermark > node.checkedUpTo) {
        const from = Math.max(node.checkedUpTo, core.logStartOffset);
        if (from < core.highWatermark) {
          for (const entry of core.entriesFrom(from, Number.MAX_SAFE_INTEGER)) {
            if (entry.offset >= core.highWatermark) break;
            this.registerCommitted(entry.offset, entryKey(entry), `n${id} below HW`);
          }
        }
        node.checkedUpTo = core.highWatermark;
        if (core.role === 'leader') this.checkMajorityHolds(node);
      }
      node.seenHw = core.highWatermark;
    }
  }

  /** Raft §5.4: a new leader's log holds every committed entry (those not in its snapshot). */
  private checkLeaderCompleteness(node: SimNode): void {
    const core = node.core!;
    if (core.logEndOffset < this.committedEnd) {
      throw new SimViolation(`leader n${node.id} of epoch ${core.epoch} ends at ${core.logEndOffset}, below committed ${this.committedEnd}`);
    }
    const from = Math.max(core.logStartOffset, 0);
    if (from >= this.committedEnd) return;
    for (const entry of core.entriesFrom(from, Number.MAX_SAFE_INTEGER)) {
      if (entry.offset >= this.committedEnd) break;
      const known = this.committedKeys.get(entry.offset);
      if (known !== undefined && known !== entryKey(entry)) {
        throw new SimViolation(`leader n${node.id} of epoch ${core.epoch} lacks committed entry ${entry.offset}`);
      }
    }
  }

  /** Everything below the leader's HW is durable on a majority of voters. */
  private checkMajorityHolds(node: SimNode): void {
    const hw = node.core!.highWatermark;
    if (hw === 0) return;
    const key = this.committedKeys.get(hw - 1);
    let holders = 0;
    for (const voterId of this.voterIds) {
      const storage = this.node(voterId).storage;
      if ((storage.snapshot?.id.endOffset ?? 0) >= hw) {
        holders++;
        continue;
      }
      const entry = storage.entries[hw - 1 - storage.entriesStart];
      if (hw - 1 >= storage.entriesStart && entry !== undefined && entryKey(entry) === key) holders++;
    }
    if (holders < Math.floor(this.voterIds.length / 2) + 1) {
      throw new SimViolation(`leader n${node.id} HW ${hw} but only ${holders} voters hold offset ${hw - 1} durably`);
    }
  }

  // ---------------------------------------------------------------- liveness

  /** True when a leader exists and every node has applied everything up to its HW, covering all acks. */
  converged(): boolean {
    const leader = this.leader();
    if (leader === undefined) return false;
    const hw = leader.core!.highWatermark;
    if (hw === 0 || this.committedKeys.get(hw - 1)?.startsWith(`${leader.core!.epoch}:`) !== true) return false;
    for (const proposal of this.proposals.values()) if (proposal.acked && proposal.offset >= hw) return false;
    // Observers (brokers) must catch up too: they follow the same log.
    for (const node of this.nodes) {
      if (!node.up || node.sm.endOffset < hw) return false;
    }
    return true;
  }

  /** After convergence: every acknowledged proposal is committed where it was acknowledged. */
  checkAcknowledged(): void {
    for (const proposal of this.proposals.values()) {
      if (!proposal.acked) continue;
      const key = this.committedKeys.get(proposal.offset);
      if (key !== `${proposal.epoch}:d:${proposal.id}`) {
        throw new SimViolation(`acknowledged proposal ${proposal.id} at ${proposal.offset} is committed as ${key ?? 'nothing'}`);
      }
    }
  }
}

function describeMessage(message: RaftMessage): string {
  switch (message.kind) {
    case 'vote-request':
      return `${message.preVote ? 'pre-vote' : 'vote'} req e${message.epoch} cand ${message.candidateId} last ${message.lastOffsetEpoch}/${message.lastOffset}`;
    case 'vote-response':
      return `${message.preVote ? 'pre-vote' : 'vote'} resp e${message.epoch} ${message.errorCode} granted=${message.voteGranted} leader ${message.leaderId ?? '-'}`;
    case 'fetch-request':
      return `fetch req e${message.epoch} off ${message.fetchOffset} lastEpoch ${message.lastFetchedEpoch}`;
    case 'fetch-response':
      return `fetch resp e${message.epoch} ${message.errorCode} leader ${message.leaderId ?? '-'} hw ${message.highWatermark} entries ${message.entries.length}${message.entries[0] ? ` from ${message.entries[0].offset}` : ''}${message.divergingEpoch ? ` diverging ${message.divergingEpoch.epoch}/${message.divergingEpoch.endOffset}` : ''}${message.snapshotId ? ` snapshot ${message.snapshotId.endOffset}` : ''}`;
    case 'begin-quorum-epoch-request':
    case 'end-quorum-epoch-request':
      return `${message.kind} e${message.epoch} leader ${message.leaderId}`;
    case 'begin-quorum-epoch-response':
    case 'end-quorum-epoch-response':
      return `${message.kind} e${message.epoch} ${message.errorCode}`;
    case 'fetch-snapshot-request':
    case 'fetch-snapshot-response':
      return message.kind;
    default:
      return 'unknown';
  }
}
