// A counting semaphore bounding requests in flight to one broker
// (`max.in.flight.requests.per.connection`). Waiters are served in arrival order, so requests
// to a broker leave in the order they were issued: with idempotence, reordering sends of one
// partition would turn into OUT_OF_ORDER_SEQUENCE_NUMBER answers.

import { invariant } from '@raftka/protocol';

export class InFlightLimiter {
  readonly limit: number;
  // Invariant: 0 <= #inFlight <= limit; waiters exist only while #inFlight === limit.
  #inFlight = 0;
  readonly #waiters: (() => void)[] = [];

  constructor(limit: number) {
    invariant(Number.isInteger(limit) && limit >= 1, `in-flight limit must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** Takes a slot, waiting for one when all are taken. */
  acquire(): Promise<void> {
    if (this.#inFlight < this.limit && this.#waiters.length === 0) {
      this.#inFlight += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Whether a slot is free now (a sender can skip a busy broker and try another). */
  hasCapacity(): boolean {
    return this.#inFlight < this.limit && this.#waiters.length === 0;
  }

  /** Returns a slot; hands it straight to the oldest waiter if there is one. */
  release(): void {
    invariant(this.#inFlight > 0, 'release without acquire');
    const next = this.#waiters.shift();
    if (next) next();
    else this.#inFlight -= 1;
  }

  /** Runs `task` holding a slot. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }
}
