import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey, RaftkaError } from '@raftka/protocol';
import { StickyPartitioner } from '../../src/producer/partitioner.js';
import { seededRandom } from '../fake-timers.js';

const info = (numPartitions: number, availablePartitions: number[] = []) => ({ numPartitions, availablePartitions });

describe('StickyPartitioner', () => {
  it('puts keyed records where the Java client does (murmur2)', () => {
    const partitioner = new StickyPartitioner(() => 0);
    // Kafka's UtilsTest: murmur2("foobar") = -790332482, so toPositive(...) % 12 = 1357151166 % 12 = 6.
    expect(murmur2(Buffer.from('foobar'))).toBe(-790332482);
    expect(partitioner.partition({ topic: 't', key: 'foobar' }, info(12))).toBe(6);
    for (const key of ['key-1', 'key-2', 'order-42', '']) {
      expect(partitioner.partition({ topic: 't', key }, info(12))).toBe(partitionForKey(Buffer.from(key), 12));
    }
  });

  it('uses all partitions for keys even when some are unavailable', () => {
    const partitioner = new StickyPartitioner(() => 0);
    const expected = partitionForKey(Buffer.from('k'), 8);
    expect(partitioner.partition({ topic: 't', key: 'k' }, info(8, [expected === 0 ? 1 : 0]))).toBe(expected);
  });

  it('respects an explicit partition and rejects one out of range', () => {
    const partitioner = new StickyPartitioner(() => 0);
    expect(partitioner.partition({ topic: 't', key: 'k', partition: 3 }, info(4))).toBe(3);
    expect(() => partitioner.partition({ topic: 't', partition: 4 }, info(4))).toThrow(RaftkaError);
    expect(() => partitioner.partition({ topic: 't' }, info(0))).toThrow(/no partitions/);
  });

  it('sticks keyless records to one partition until a new batch, then moves elsewhere', () => {
    const partitioner = new StickyPartitioner(seededRandom(7));
    const first = partitioner.partition({ topic: 't' }, info(6));
    for (let i = 0; i < 20; i += 1) expect(partitioner.partition({ topic: 't', key: null }, info(6))).toBe(first);
    const second = partitioner.onNewBatch('t', first, info(6));
    expect(second).not.toBe(first);
    expect(partitioner.partition({ topic: 't' }, info(6))).toBe(second);
    // A stale onNewBatch for the old partition does not move it again.
    expect(partitioner.onNewBatch('t', first, info(6))).toBe(second);
  });

  it('picks among available partitions and spreads over them', () => {
    const partitioner = new StickyPartitioner(seededRandom(11));
    const seen = new Set<number>();
    let current = partitioner.partition({ topic: 't' }, info(10, [2, 5, 7]));
    for (let i = 0; i < 60; i += 1) {
      expect([2, 5, 7]).toContain(current);
      seen.add(current);
      current = partitioner.onNewBatch('t', current, info(10, [2, 5, 7]));
    }
    expect(seen).toEqual(new Set([2, 5, 7]));
  });

  it('keeps separate sticky partitions per topic', () => {
    const values = [0.1, 0.9];
    const partitioner = new StickyPartitioner(() => values.shift() ?? 0);
    expect(partitioner.partition({ topic: 'a' }, info(4))).toBe(0);
    expect(partitioner.partition({ topic: 'b' }, info(4))).toBe(3);
    expect(partitioner.partition({ topic: 'a' }, info(4))).toBe(0);
  });
});
