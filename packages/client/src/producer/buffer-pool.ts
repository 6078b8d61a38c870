// Producer memory accounting (`buffer.memory`): the bytes of records appended but not yet
// acknowledged. When the pool is full an append waits (backpressure) until sent batches free
// memory, and fails with a timeout after maxBlockMs, as Kafka's BufferPool does.
//
// Waiters are served first-come first-served, and a new request never overtakes a waiting one,
// so a stream of small appends cannot starve a large one and per-partition append order is kept.
// Time is injected through a Timers interface.

import { invariant, RaftkaError } from '@raftka/protocol';

/** The timer functions the pool needs; production passes the global ones, tests a fake. */
export interface Timers {
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

interface Waiter {
  bytes: number;
  resolve: () => void;
  reject: (error: Error) => void;
  timer: unknown;
  /** Timed out: left in the queue and skipped when it reaches the head (removal stays O(1)). */
  cancelled: boolean;
}

/** Served waiters are compacted out of the queue array once this many accumulate at its front. */
const QUEUE_COMPACT_THRESHOLD = 1024;

export class BufferPool {
  readonly totalBytes: number;
  readonly #timers: Timers;
  // Invariant: 0 <= #usedBytes <= totalBytes.
  #usedBytes = 0;
  // A FIFO as array + head index: with thousands of blocked appends, Array#shift per served
  // waiter made freeing memory quadratic.
  #waiters: Waiter[] = [];
  #head = 0;
  #waiting = 0;

  constructor(totalBytes: number, timers: Timers) {
    invariant(Number.isSafeInteger(totalBytes) && totalBytes > 0, `buffer pool size must be a positive integer, got ${totalBytes}`);
    this.totalBytes = totalBytes;
    this.#timers = timers;
  }

  get availableBytes(): number {
    return this.totalBytes - this.#usedBytes;
  }

  /** Appends are waiting for memory: the accumulator treats every batch as ready, to free memory fast. */
  get hasWaiters(): boolean {
    return this.#waiting > 0;
  }

  /** Takes `bytes` at once if possible (and nobody is waiting); returns whether it did. */
  tryAllocate(bytes: number): boolean {
    this.#checkSize(bytes);
    if (this.#waiting > 0 || bytes > this.availableBytes) return false;
    this.#usedBytes += bytes;
    return true;
  }

  /** Takes `bytes`, waiting up to maxBlockMs for memory to be freed. */
  allocate(bytes: number, maxBlockMs: number): Promise<void> {
    if (this.tryAllocate(bytes)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { bytes, resolve, reject, timer: undefined, cancelled: false };
      waiter.timer = this.#timers.setTimeout(() => {
        if (waiter.cancelled) return;
        waiter.cancelled = true;
        this.#waiting--;
        reject(
          new RaftkaError(
            'REQUEST_TIMED_OUT',
            `failed to allocate ${bytes} bytes of producer memory within maxBlockMs (${maxBlockMs}); bufferMemory (${this.totalBytes}) is full because records are appended faster than brokers accept them`,
            { retriable: false },
          ),
        );
        // The head may have left: the next waiter might now fit.
        this.#serveWaiters();
      }, maxBlockMs);
      this.#waiters.push(waiter);
      this.#waiting++;
    });
  }

  /** Returns memory taken by allocate/tryAllocate and wakes waiters that now fit, in order. */
  free(bytes: number): void {
    invariant(bytes >= 0 && bytes <= this.#usedBytes, () => `freeing ${bytes} bytes but only ${this.#usedBytes} are in use`);
    this.#usedBytes -= bytes;
    this.#serveWaiters();
  }

  #serveWaiters(): void {
    while (this.#head < this.#waiters.length) {
      const head = this.#waiters[this.#head]!;
      if (!head.cancelled) {
        if (head.bytes > this.availableBytes) break;
        head.cancelled = true;
        this.#waiting--;
        this.#timers.clearTimeout(head.timer);
        this.#usedBytes += head.bytes;
        head.resolve();
      }
      this.#head++;
    }
    if (this.#head === this.#waiters.length) {
      this.#waiters = [];
      this.#head = 0;
    } else if (this.#head >= QUEUE_COMPACT_THRESHOLD) {
      this.#waiters = this.#waiters.slice(this.#head);
      this.#head = 0;
    }
  }

  #checkSize(bytes: number): void {
    invariant(Number.isSafeInteger(bytes) && bytes >= 0, `allocation size must be a non-negative integer, got ${bytes}`);
    if (bytes > this.totalBytes) {
      throw new RaftkaError(
        'MESSAGE_TOO_LARGE',
        `a record of ${bytes} bytes is larger than bufferMemory (${this.totalBytes}); raise bufferMemory or send smaller records`,
        { retriable: false },
      );
    }
  }
}
