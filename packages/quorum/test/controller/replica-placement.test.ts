import { describe, it, expect } from 'vitest';
import { placeReplicas } from '../../src/controller/replica-placement.js';
import { seededRandom } from './cluster-fixture.js';

describe('placeReplicas', () => {
  it('uses distinct racks while racks remain, then distinct brokers, with uneven racks', () => {
    const brokers = [
      { brokerId: 1, rack: 'a' },
      { brokerId: 2, rack: 'a' },
      { brokerId: 3, rack: 'a' },
      { brokerId: 4, rack: 'b' },
    ];
    const assignments = placeReplicas({ brokers, partitionCount: 8, replicationFactor: 3, random: seededRandom(1) });
    for (const replicas of assignments) {
      expect(new Set(replicas).size).toBe(3);
      const racks = new Set(replicas.map((brokerId) => brokers.find((broker) => broker.brokerId === brokerId)!.rack));
      expect(racks).toEqual(new Set(['a', 'b']));
    }
  });

  it('spreads leaders and replicas evenly without racks, for any start', () => {
    for (let seed = 0; seed < 20; seed++) {
      const brokers = [1, 2, 3, 4, 5, 6].map((brokerId) => ({ brokerId, rack: undefined }));
      const assignments = placeReplicas({ brokers, partitionCount: 12, replicationFactor: 3, random: seededRandom(seed) });
      const leaders = new Map<number, number>();
      const replicas = new Map<number, number>();
      for (const list of assignments) {
        expect(new Set(list).size).toBe(3);
        leaders.set(list[0]!, (leaders.get(list[0]!) ?? 0) + 1);
        for (const brokerId of list) replicas.set(brokerId, (replicas.get(brokerId) ?? 0) + 1);
      }
      expect([...leaders.values()]).toEqual([2, 2, 2, 2, 2, 2]);
      expect([...replicas.values()]).toEqual([6, 6, 6, 6, 6, 6]);
    }
  });

  it('continues a topic from a given partition id and start index', () => {
    const brokers = [1, 2, 3].map((brokerId) => ({ brokerId, rack: undefined }));
    const whole = placeReplicas({ brokers, partitionCount: 6, replicationFactor: 2, fixedStartIndex: 1, random: () => 0 });
    const tail = placeReplicas({ brokers, partitionCount: 3, replicationFactor: 2, fixedStartIndex: 1, startPartitionId: 3, random: () => 0 });
    expect(tail).toEqual(whole.slice(3));
  });
});
