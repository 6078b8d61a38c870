import { describe, expect, it } from 'vitest';
import { TopicPartitionMap } from '../../src/producer/topic-partition-map.js';

describe('TopicPartitionMap', () => {
  it('keeps values per topic and partition and counts them', () => {
    const map = new TopicPartitionMap<number>();
    map.set('a', 0, 1);
    map.set('a', 3, 2);
    map.set('b', 0, 3);
    map.set('a', 3, 4);
    expect([map.get('a', 0), map.get('a', 3), map.get('b', 0), map.get('a', 1), map.get('c', 0)]).toEqual([1, 4, 3, undefined, undefined]);
    expect(map.size).toBe(3);
    map.delete('a', 3);
    map.delete('a', 3);
    map.delete('z', 9);
    expect(map.size).toBe(2);
    expect(map.get('a', 3)).toBeUndefined();
    map.clear();
    expect(map.size).toBe(0);
    expect(map.get('a', 0)).toBeUndefined();
  });
});
