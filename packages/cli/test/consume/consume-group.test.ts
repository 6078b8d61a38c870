import { describe, expect, it } from 'vitest';
import type { ConsumerRecord } from '@raftka/client';
import { checkGroupOptions, offsetsAfter } from '../../src/consume/consume-command.js';

function record(topic: string, partition: number, offset: number, leaderEpoch = 3): ConsumerRecord {
  return { topic, partition, offset, key: null, value: null, headers: [], timestamp: 0, leaderEpoch };
}

describe('raftka consume --group', () => {
  it('commits one past the last printed record of each partition, with its leader epoch', () => {
    expect(offsetsAfter([record('orders', 0, 5), record('orders', 1, 9, 4), record('orders', 0, 6), record('audit', 0, 0)])).toEqual([
      { topic: 'orders', partition: 0, offset: 7, leaderEpoch: 3 },
      { topic: 'orders', partition: 1, offset: 10, leaderEpoch: 4 },
      { topic: 'audit', partition: 0, offset: 1, leaderEpoch: 3 },
    ]);
    expect(offsetsAfter([])).toEqual([]);
  });

  it('refuses flags that a group decides', () => {
    expect(() => checkGroupOptions({ group: 'g', partition: 0 })).toThrow(/--partition or --offset/);
    expect(() => checkGroupOptions({ group: 'g', offset: 'earliest' })).toThrow(/--partition or --offset/);
    expect(() => checkGroupOptions({ group: '' })).toThrow(/group id/);
    expect(() => checkGroupOptions({ partition: 0 })).not.toThrow();
  });
});
