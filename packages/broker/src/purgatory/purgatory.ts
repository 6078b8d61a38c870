// A purgatory holds requests that cannot be answered yet (Kafka's DelayedOperationPurgatory):
// an acks=all produce waiting for the high watermark, a fetch waiting for fetch.min.bytes. Each
// operation watches one or more keys (partitions); an event on a key (HW moved, records
// appended, leadership lost) calls `checkAndComplete(key)`, and `tick(nowMs)` expires operations
// whose deadline passed. Pure: time comes in through `tick`, nothing is scheduled here.
//
// Bounded (DESIGN.md, "everything that queues has a maximum"): a full purgatory refuses new
// operations with a retriable PurgatoryFullError instead of growing without limit.
//
// Invariant: every operation completes exactly once — by `tryComplete` returning true, or by
// `expire` — and is then forgotten by every key it watched.

import { invariant, RaftkaError } from '@raftka/protocol';

export type PurgatoryKey = string;

/** The key of a topic partition in every purgatory. */
export function partitionKey(topic: string, partition: number): PurgatoryKey {
  return `${topic}-${partition}`;
}

export interface DelayedOperation {
  readonly keys: readonly PurgatoryKey[];
  readonly deadlineMs: number;
  /**
   * Completes the operation (answers its request) if it can complete now and returns true;
   * returns false and changes nothing otherwise.
   */
  tryComplete(): boolean;
  /** The deadline passed: complete with whatever the operation's timeout answer is. */
  expire(): void;
}

export class PurgatoryFullError extends RaftkaError {
  constructor(name: string, operationsMax: number) {
    super(
      'REQUEST_TIMED_OUT',
      `the ${name} purgatory holds ${operationsMax} waiting requests, its maximum; the broker is overloaded, retry after a backoff`,
      { retriable: true },
    );
    this.name = 'PurgatoryFullError';
  }
}

export interface PurgatoryOptions {
  /** Names the purgatory in errors and metrics ("produce", "fetch"). */
  name: string;
  /** Most operations waiting at once. */
  operationsMax: number;
}

export const PURGATORY_OPERATIONS_MAX_DEFAULT = 10_000;

interface Entry<Op extends DelayedOperation> {
  op: Op;
  done: boolean;
  /** Insertion order: expiry of equal deadlines follows it. */
  seq: number;
}

export type WatchResult = 'completed' | 'watching';

export class DelayedOperationPurgatory<Op extends DelayedOperation = DelayedOperation> {
  readonly name: string;
  readonly operationsMax: number;
  // Invariant: holds exactly the entries not done; each is in the set of every key it watches.
  private readonly watchers = new Map<PurgatoryKey, Set<Entry<Op>>>();
  private waiting = 0;
  // Min-heap by (deadlineMs, seq); done entries are dropped lazily when they reach the top.
  private readonly deadlines: Entry<Op>[] = [];
  private nextSeq = 0;

  constructor(options: PurgatoryOptions) {
    invariant(Number.isInteger(options.operationsMax) && options.operationsMax > 0, 'a purgatory holds at least one operation');
    this.name = options.name;
    this.operationsMax = options.operationsMax;
  }

  /** Operations waiting now. */
  get size(): number {
    return this.waiting;
  }

  /** Operations waiting on `key`. */
  watcherCount(key: PurgatoryKey): number {
    return this.watchers.get(key)?.size ?? 0;
  }

  /**
   * Completes `op` now if it can; otherwise watches it on its keys until an event or its
   * deadline. Throws PurgatoryFullError (and leaves `op` untouched) when full.
   */
  tryCompleteElseWatch(op: Op): WatchResult {
    invariant(op.keys.length > 0, 'a delayed operation watches at least one key');
    if (op.tryComplete()) return 'completed';
    if (this.waiting >= this.operationsMax) throw new PurgatoryFullError(this.name, this.operationsMax);
    const entry: Entry<Op> = { op, done: false, seq: this.nextSeq++ };
    for (const key of new Set(op.keys)) {
      let set = this.watchers.get(key);
      if (set === undefined) this.watchers.set(key, (set = new Set()));
      set.add(entry);
    }
    this.waiting++;
    this.maybeCompactDeadlines();
    this.heapPush(entry);
    return 'watching';
  }

  /** Something changed for `key`: completes every operation watching it that can complete. */
  checkAndComplete(key: PurgatoryKey): number {
    const set = this.watchers.get(key);
    if (set === undefined) return 0;
    let completed = 0;
    for (const entry of [...set]) {
      if (entry.done) continue;
      // A completion callback may re-enter the purgatory (and complete this entry there).
      if (entry.op.tryComplete() && !entry.done) {
        this.forget(entry);
        completed++;
      }
    }
    return completed;
  }

  /** Expires every operation whose deadline is at or before `nowMs`. Returns how many. */
  tick(nowMs: number): number {
    let expired = 0;
    for (;;) {
      const top = this.deadlines[0];
      if (top === undefined) break;
      if (top.done) {
        this.heapPop();
        continue;
      }
      if (top.op.deadlineMs > nowMs) break;
      this.heapPop();
      this.forget(top);
      top.op.expire();
      expired++;
    }
    return expired;
  }

  /** Expires every waiting operation now (shutdown): each gives its timeout answer. */
  expireAll(): number {
    let expired = 0;
    for (const entry of this.deadlines.splice(0)) {
      if (entry.done) continue;
      this.forget(entry);
      entry.op.expire();
      expired++;
    }
    return expired;
  }

  // Operations completed by events stay in the heap until their deadline; drop them once they
  // outnumber the waiting ones, so the heap stays O(operationsMax) under a high completion rate.
  private maybeCompactDeadlines(): void {
    if (this.deadlines.length <= 2 * this.waiting + 64) return;
    const live = this.deadlines.filter((entry) => !entry.done);
    this.deadlines.length = 0;
    for (const entry of live) this.heapPush(entry);
  }

  /** Size of the deadline heap, including completed entries not yet dropped (for tests). */
  get deadlineHeapSize(): number {
    return this.deadlines.length;
  }

  private forget(entry: Entry<Op>): void {
    invariant(!entry.done, 'an operation completes once');
    entry.done = true;
    this.waiting--;
    for (const key of entry.op.keys) {
      const set = this.watchers.get(key);
      if (set === undefined) continue;
      set.delete(entry);
      if (set.size === 0) this.watchers.delete(key);
    }
  }

  private before(a: Entry<Op>, b: Entry<Op>): boolean {
    return a.op.deadlineMs < b.op.deadlineMs || (a.op.deadlineMs === b.op.deadlineMs && a.seq < b.seq);
  }

  private heapPush(entry: Entry<Op>): void {
    const heap = this.deadlines;
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.before(heap[index]!, heap[parent]!)) break;
      [heap[index], heap[parent]] = [heap[parent]!, heap[index]!];
      index = parent;
    }
  }

  private heapPop(): void {
    const heap = this.deadlines;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    heap[0] = last;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && this.before(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && this.before(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === index) break;
      [heap[index], heap[smallest]] = [heap[smallest]!, heap[index]!];
      index = smallest;
    }
  }
}
