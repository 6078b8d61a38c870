// A hand-driven cluster of Raft cores for focused unit tests: messages queue up in an outbox and
// are delivered only when a test says so, so each test can script one protocol exchange.

import { RaftCore } from '../../src/raft/raft-core.js';
import type {
  LogEntry,
  NodeId,
  OutboundMessage,
  RaftInput,
  RaftMessage,
  RaftTimingOptions,
  Ready,
  RestoredState,
} from '../../src/raft/types.js';

export const TIMING: RaftTimingOptions = {
  fetchTimeoutMs: 1000,
  electionTimeoutMs: 500,
  electionBackoffMaxMs: 200,
  fetchMaxWaitMs: 300,
  fetchMaxBytes: 1 << 20,
};

export interface Sent {
  from: NodeId;
  to: NodeId;
  correlationId: number;
  message: RaftMessage;
}

export function emptyState(): RestoredState {
  return { quorumState: { epoch: 0, votedFor: undefined, leaderId: undefined }, snapshot: undefined, entries: [] };
}

export function dataEntry(offset: number, epoch: number, id = offset): LogEntry {
  return { offset, epoch, payload: { kind: 'data', records: [new Uint8Array([id & 0xff])] } };
}

/** A deterministic stand-in for Math.random. */
export function fixedRandom(value = 0): () => number {
  return () => value;
}

export class Harness {
  nowMs = 0;
  readonly cores = new Map<NodeId, RaftCore>();
  outbox: Sent[] = [];
  /** Every Ready each node produced, in order. */
  readonly readys = new Map<NodeId, Ready[]>();
  readonly committed = new Map<NodeId, LogEntry[]>();

  constructor(
    readonly voters: NodeId[],
    readonly timing: RaftTimingOptions = TIMING,
  ) {}

  add(nodeId: NodeId, restored: RestoredState = emptyState(), random: () => number = fixedRandom()): RaftCore {
    const core = new RaftCore({ ...this.timing, nodeId, voters: this.voters, random }, restored, this.nowMs);
    this.cores.set(nodeId, core);
    this.readys.set(nodeId, []);
    this.committed.set(nodeId, []);
    this.flush(nodeId);
    return core;
  }

  core(nodeId: NodeId): RaftCore {
    const core = this.cores.get(nodeId);
    if (core === undefined) throw new Error(`no node ${nodeId}`);
    return core;
  }

  /** Applies every pending Ready of the node as a driver would (instantly durable). */
  flush(nodeId: NodeId): Ready[] {
    const core = this.core(nodeId);
    const out: Ready[] = [];
    while (core.hasReady()) {
      const ready = core.ready();
      out.push(ready);
      this.readys.get(nodeId)!.push(ready);
      for (const m of ready.messages) this.outbox.push({ from: nodeId, ...(m as OutboundMessage) });
      this.committed.get(nodeId)!.push(...ready.committed);
      core.advance(ready);
    }
    return out;
  }

  step(nodeId: NodeId, input: RaftInput): Ready[] {
    this.core(nodeId).step(input, this.nowMs);
    return this.flush(nodeId);
  }

  tick(nodeId: NodeId, advanceMs = 0): Ready[] {
    this.nowMs += advanceMs;
    return this.step(nodeId, { type: 'tick' });
  }

  /** Removes and returns the queued messages that match. */
  take(match: (sent: Sent) => boolean): Sent[] {
    const taken = this.outbox.filter(match);
    this.outbox = this.outbox.filter((sent) => !match(sent));
    return taken;
  }

  deliverOne(sent: Sent): Ready[] {
    if (!this.cores.has(sent.to)) return [];
    return this.step(sent.to, { type: 'receive', from: sent.from, correlationId: sent.correlationId, message: sent.message });
  }

  /** Delivers matching messages (and what they cause) until none match, or `maxRounds` passes. */
  deliver(match: (sent: Sent) => boolean = () => true, maxRounds = 50): void {
    for (let round = 0; round < maxRounds; round++) {
      const batch = this.take(match);
      if (batch.length === 0) return;
      for (const sent of batch) this.deliverOne(sent);
    }
  }

  /** Elects `nodeId` leader through pre-vote and vote, delivering everything. */
  elect(nodeId: NodeId): void {
    this.tick(nodeId, 2 * this.timing.electionTimeoutMs);
    this.deliver((sent) => sent.message.kind !== 'fetch-request' || sent.to !== nodeId, 20);
  }
}

export const kind =
  (k: RaftMessage['kind'], to?: NodeId) =>
  (sent: Sent): boolean =>
    sent.message.kind === k && (to === undefined || sent.to === to);
