import { describe, expect, it } from 'vitest';
import { LeaderEpochCache } from '../../src/log/leader-epoch-cache.js';

describe('LeaderEpochCache (KIP-101)', () => {
  it('answers endOffsetFor like Kafka', () => {
    const cache = new LeaderEpochCache();
    expect(cache.endOffsetFor(0, 10)).toEqual({ epoch: -1, endOffset: -1 });
    cache.assign(2, 0);
    cache.assign(4, 10);
    cache.assign(7, 25);
    expect(cache.endOffsetFor(7, 40)).toEqual({ epoch: 7, endOffset: 40 });
    expect(cache.endOffsetFor(4, 40)).toEqual({ epoch: 4, endOffset: 25 });
    // An epoch between entries: the largest epoch below it, ending where the next begins.
    expect(cache.endOffsetFor(5, 40)).toEqual({ epoch: 4, endOffset: 25 });
    expect(cache.endOffsetFor(3, 40)).toEqual({ epoch: 2, endOffset: 10 });
    // Older than every entry: the requested epoch, ending at the first entry's start.
    expect(cache.endOffsetFor(1, 40)).toEqual({ epoch: 1, endOffset: 0 });
    expect(cache.endOffsetFor(8, 40)).toEqual({ epoch: -1, endOffset: -1 });
    expect(cache.endOffsetFor(-1, 40)).toEqual({ epoch: -1, endOffset: -1 });
  });

  it('ignores old epochs and replaces entries a new epoch starts at or before', () => {
    const cache = new LeaderEpochCache();
    expect(cache.assign(3, 5)).toBe(true);
    expect(cache.assign(3, 9)).toBe(false);
    expect(cache.assign(2, 9)).toBe(false);
    expect(cache.assign(5, 5)).toBe(true);
    expect(cache.all).toEqual([{ epoch: 5, startOffset: 5 }]);
  });

  it('truncates from the end and from the start', () => {
    const cache = new LeaderEpochCache([
      { epoch: 1, startOffset: 0 },
      { epoch: 2, startOffset: 10 },
      { epoch: 3, startOffset: 20 },
    ]);
    expect(cache.truncateFromEnd(20)).toBe(true);
    expect(cache.latestEpoch).toBe(2);
    expect(cache.truncateFromStart(15)).toBe(true);
    expect(cache.all).toEqual([{ epoch: 2, startOffset: 15 }]);
    expect(cache.truncateFromStart(5)).toBe(false);
    const adjacent = new LeaderEpochCache([
      { epoch: 0, startOffset: 0 },
      { epoch: 1, startOffset: 1 },
    ]);
    adjacent.truncateFromStart(1);
    expect(adjacent.all).toEqual([{ epoch: 1, startOffset: 1 }]);
  });
});
