// Time as the log sees it: a clock and one-shot timers, both injected so that tests (and the
// deterministic simulations) drive retention, segment.ms rolls, flush.ms and delayed file
// deletion without real waiting.

export interface Clock {
  nowMs(): number;
}

/** An opaque handle returned by `Timers.setTimeout`. */
export type TimerHandle = { readonly timer: unknown };

export interface Timers {
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

export const systemTimers: Timers = {
  setTimeout(callback, delayMs) {
    const timer = setTimeout(callback, delayMs);
    // Background log chores must never keep a process alive on their own.
    timer.unref();
    return { timer };
  },
  clearTimeout(handle) {
    clearTimeout(handle.timer as NodeJS.Timeout);
  },
};

/**
 * A manual clock with timers that fire only when `advance` moves time past them, in due order.
 * Used by tests and simulations; callbacks run synchronously inside `advance`.
 */
export class ManualTime implements Clock, Timers {
  private now: number;
  private nextId = 0;
  // Invariant: every pending timer is in this map until it fires or is cleared.
  private readonly pending = new Map<number, { dueMs: number; callback: () => void }>();

  constructor(startMs = 1_700_000_000_000) {
    this.now = startMs;
  }

  nowMs(): number {
    return this.now;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const id = this.nextId++;
    this.pending.set(id, { dueMs: this.now + Math.max(0, delayMs), callback });
    return { timer: id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.pending.delete(handle.timer as number);
  }

  /** Number of timers not yet fired. */
  get pendingTimers(): number {
    return this.pending.size;
  }

  /** Moves time forward by `deltaMs`, firing due timers in order of due time (then creation). */
  advance(deltaMs: number): void {
    const target = this.now + deltaMs;
    for (;;) {
      let nextId: number | undefined;
      let nextDue = Infinity;
      for (const [id, timer] of this.pending) {
        if (timer.dueMs <= target && timer.dueMs < nextDue) {
          nextDue = timer.dueMs;
          nextId = id;
        }
      }
      if (nextId === undefined) break;
      const timer = this.pending.get(nextId)!;
      this.pending.delete(nextId);
      this.now = Math.max(this.now, timer.dueMs);
      timer.callback();
    }
    this.now = target;
  }
}
