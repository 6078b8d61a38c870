import { describe, expect, it } from 'vitest';
import { MetadataCache, type MetadataSnapshot } from '../src/metadata-cache.js';

const brokers = [
  { nodeId: 1, host: '127.0.0.1', port: 9001, rack: 'a' },
  { nodeId: 2, host: '127.0.0.1', port: 9002, rack: 'b' },
];

function snapshot(leaderEpoch: number, leaderId: number): MetadataSnapshot {
  return {
    clusterId: 'c1',
    controllerId: 3,
    brokers,
    topics: [
      {
        name: 't',
        partitions: [
          { partition: 0, leaderId, leaderEpoch, replicas: [1, 2], isr: [1, 2], offlineReplicas: [] },
          { partition: 1, leaderId: -1, leaderEpoch: 0, replicas: [1, 2], isr: [], offlineReplicas: [] },
        ],
      },
    ],
  };
}

describe('MetadataCache', () => {
  it('answers leader, epoch, partitions and broker lookups', () => {
    const cache = new MetadataCache({ metadataMaxAgeMs: 300_000, refreshBackoffMs: 100 });
    cache.addTopics(['t']);
    cache.update(snapshot(5, 1), 0);
    expect(cache.clusterId).toBe('c1');
    expect(cache.controllerId).toBe(3);
    expect(cache.leaderFor('t', 0)).toBe(1);
    expect(cache.leaderEpoch('t', 0)).toBe(5);
    expect(cache.leaderFor('t', 1)).toBeUndefined();
    expect(cache.partitionCount('t')).toBe(2);
    expect(cache.availablePartitions('t')).toEqual([0]);
    expect(cache.broker(2)).toEqual(brokers[1]);
    expect(cache.leaderFor('missing', 0)).toBeUndefined();
  });

  it('refreshes at once when a new topic is added or after stale-metadata errors, spaced by the backoff', () => {
    const cache = new MetadataCache({ metadataMaxAgeMs: 300_000, refreshBackoffMs: 100 });
    cache.addTopics(['t']);
    expect(cache.timeToNextUpdateMs(0)).toBe(0);
    cache.update(snapshot(5, 1), 1000);
    expect(cache.timeToNextUpdateMs(1000)).toBe(300_000);
    expect(cache.onPartitionError('NOT_LEADER_OR_FOLLOWER')).toBe(true);
    expect(cache.timeToNextUpdateMs(1050)).toBe(50);
    expect(cache.timeToNextUpdateMs(1100)).toBe(0);
    cache.update(snapshot(5, 1), 1100);
    expect(cache.onPartitionError('MESSAGE_TOO_LARGE')).toBe(false);
    expect(cache.onPartitionError('UNKNOWN_TOPIC_OR_PARTITION')).toBe(true);
    cache.onRefreshFailure(1200);
    expect(cache.timeToNextUpdateMs(1250)).toBe(50);
    cache.update(snapshot(5, 1), 1300);
    cache.addTopics(['t']);
    expect(cache.timeToNextUpdateMs(1300)).toBe(300_000);
    cache.addTopics(['new']);
    expect(cache.topicsToRefresh()).toEqual(['t', 'new']);
    expect(cache.timeToNextUpdateMs(1400)).toBe(0);
  });

  it('never moves a partition back to an older leader epoch (KIP-320)', () => {
    const cache = new MetadataCache({ metadataMaxAgeMs: 300_000, refreshBackoffMs: 100 });
    cache.update(snapshot(7, 2), 0);
    cache.update(snapshot(6, 1), 10);
    expect(cache.leaderFor('t', 0)).toBe(2);
    expect(cache.leaderEpoch('t', 0)).toBe(7);
    cache.update(snapshot(8, 1), 20);
    expect(cache.leaderFor('t', 0)).toBe(1);
  });

  it('takes leader hints from produce/fetch responses only when newer (KIP-951)', () => {
    const cache = new MetadataCache({ metadataMaxAgeMs: 300_000, refreshBackoffMs: 100 });
    cache.update(snapshot(5, 1), 0);
    expect(cache.updateLeader('t', 0, 2, 5)).toBe(false);
    expect(cache.updateLeader('t', 0, 9, 6)).toBe(false); // unknown broker address
    expect(cache.updateLeader('t', 0, 2, 6)).toBe(true);
    expect([cache.leaderFor('t', 0), cache.leaderEpoch('t', 0)]).toEqual([2, 6]);
  });

  it('forgets topics the cluster reports missing', () => {
    const cache = new MetadataCache({ metadataMaxAgeMs: 300_000, refreshBackoffMs: 100 });
    cache.addTopics(['t']);
    cache.update(snapshot(5, 1), 0);
    cache.update({ ...snapshot(5, 1), topics: [], unknownTopics: ['t'] }, 10);
    expect(cache.topic('t')).toBeUndefined();
    expect(cache.isUnknownTopic('t')).toBe(true);
  });
});
