import { describe, expect, it } from 'vitest';
import { InFlightLimiter } from '../../src/network/in-flight-limiter.js';

describe('InFlightLimiter', () => {
  it('admits up to the limit and hands slots to waiters in arrival order', async () => {
    const limiter = new InFlightLimiter(2);
    await limiter.acquire();
    await limiter.acquire();
    expect(limiter.hasCapacity()).toBe(false);
    const order: number[] = [];
    const waiting = [1, 2, 3].map((id) => limiter.acquire().then(() => order.push(id)));
    expect(limiter.waiting).toBe(3);
    limiter.release();
    limiter.release();
    await Promise.all(waiting.slice(0, 2));
    expect(order).toEqual([1, 2]);
    expect(limiter.inFlight).toBe(2);
    limiter.release();
    await waiting[2];
    expect(order).toEqual([1, 2, 3]);
  });

  it('never runs more than the limit of tasks at once', async () => {
    const limiter = new InFlightLimiter(5);
    let running = 0;
    let peak = 0;
    const gates: (() => void)[] = [];
    const tasks = Array.from({ length: 12 }, () =>
      limiter.run(async () => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => gates.push(resolve));
        running -= 1;
      }),
    );
    while (gates.length > 0 || limiter.inFlight > 0) {
      await new Promise((resolve) => setImmediate(resolve));
      gates.shift()?.();
    }
    await Promise.all(tasks);
    expect(peak).toBe(5);
    expect(limiter.inFlight).toBe(0);
  });
});
