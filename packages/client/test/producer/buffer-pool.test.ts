import { describe, expect, it } from 'vitest';
import { RaftkaError } from '@raftka/protocol';
import { BufferPool } from '../../src/producer/buffer-pool.js';
import { ManualTime } from '../fake-timers.js';

describe('BufferPool', () => {
  it('allocates at once while memory is free', async () => {
    const time = new ManualTime();
    const pool = new BufferPool(100, time);
    await pool.allocate(60, 1000);
    expect(pool.availableBytes).toBe(40);
    expect(pool.tryAllocate(50)).toBe(false);
    pool.free(60);
    expect(pool.availableBytes).toBe(100);
  });

  it('makes appends wait when full and serves waiters first-come first-served', async () => {
    const time = new ManualTime();
    const pool = new BufferPool(100, time);
    expect(pool.tryAllocate(100)).toBe(true);
    const order: string[] = [];
    const big = pool.allocate(80, 1000).then(() => order.push('big'));
    const small = pool.allocate(10, 1000).then(() => order.push('small'));
    expect(pool.hasWaiters).toBe(true);
    // A new small request must not overtake the waiting big one.
    expect(pool.tryAllocate(1)).toBe(false);
    pool.free(50);
    await Promise.resolve();
    expect(order).toEqual([]);
    pool.free(50);
    await Promise.all([big, small]);
    expect(order).toEqual(['big', 'small']);
    expect(pool.availableBytes).toBe(10);
    expect(time.pendingTimers).toBe(0);
  });

  it('serves thousands of waiters in order, skipping ones that timed out in the middle of the queue', async () => {
    const time = new ManualTime();
    const pool = new BufferPool(3_000, time);
    expect(pool.tryAllocate(3_000)).toBe(true);
    const served: number[] = [];
    const waits = Array.from({ length: 3_000 }, (_, index) =>
      pool.allocate(1, index === 1_500 ? 100 : 60_000).then(
        () => void served.push(index),
        () => void served.push(-index),
      ),
    );
    time.advance(100); // waiter 1500 times out while still queued
    pool.free(3_000);
    await Promise.all(waits);
    expect(served.filter((index) => index >= 0)).toEqual(Array.from({ length: 3_000 }, (_, index) => index).filter((index) => index !== 1_500));
    expect(served).toContain(-1_500);
    expect(pool.hasWaiters).toBe(false);
    expect(pool.availableBytes).toBe(1);
  });

  it('fails an append with a timeout after maxBlockMs and lets later waiters proceed', async () => {
    const time = new ManualTime();
    const pool = new BufferPool(100, time);
    pool.tryAllocate(95);
    const stuck = pool.allocate(50, 200);
    const later = pool.allocate(5, 10_000);
    time.advance(199);
    pool.free(0);
    time.advance(1);
    await expect(stuck).rejects.toMatchObject({ code: 'REQUEST_TIMED_OUT', retriable: false });
    await later;
    expect(pool.availableBytes).toBe(0);
  });

  it('refuses a request larger than the whole pool', () => {
    const pool = new BufferPool(100, new ManualTime());
    expect(() => pool.tryAllocate(101)).toThrow(RaftkaError);
  });
});
