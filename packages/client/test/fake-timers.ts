// A manual clock and timer queue for driving time-dependent client code deterministically.
import type { Timers } from '../src/producer/buffer-pool.js';

export class ManualTime implements Timers {
  nowMs = 1_000_000;
  #nextId = 1;
  readonly #pending = new Map<number, { atMs: number; callback: () => void }>();

  readonly clock = (): number => this.nowMs;

  setTimeout(callback: () => void, delayMs: number): unknown {
    const id = this.#nextId++;
    this.#pending.set(id, { atMs: this.nowMs + delayMs, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.#pending.size;
  }

  /** Moves time forward, firing due timers in time order. */
  advance(ms: number): void {
    const targetMs = this.nowMs + ms;
    for (;;) {
      let next: [number, { atMs: number; callback: () => void }] | undefined;
      for (const entry of this.#pending) if (entry[1].atMs <= targetMs && (!next || entry[1].atMs < next[1].atMs)) next = entry;
      if (!next) break;
      this.#pending.delete(next[0]);
      this.nowMs = next[1].atMs;
      next[1].callback();
    }
    this.nowMs = targetMs;
  }
}

/** A seeded pseudo-random source (mulberry32) so failures replay. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
