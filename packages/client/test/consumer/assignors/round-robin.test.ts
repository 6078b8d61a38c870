import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignRoundRobin, roundRobinAssignor } from '../../../src/consumer/assignors/round-robin.js';
import {
  checkValidAssignment,
  groupScenario,
  names,
  spreadsAmongIdenticalSubscriptions,
  subscribedPartitions,
} from './support.js';

describe('roundrobin assignor', () => {
  it("interleaves as in Kafka's documented example: 2 consumers, 2 topics of 3 partitions", () => {
    const result = assignRoundRobin(
      [
        { memberId: 'C0', topics: ['t0', 't1'] },
        { memberId: 'C1', topics: ['t0', 't1'] },
      ],
      new Map([
        ['t0', 3],
        ['t1', 3],
      ]),
    );
    expect(names(result)).toEqual({ C0: ['t0p0', 't0p2', 't1p1'], C1: ['t0p1', 't1p0', 't1p2'] });
  });

  it("skips members not subscribed to a topic (Kafka's documented unequal-subscription example)", () => {
    const result = assignRoundRobin(
      [
        { memberId: 'C0', topics: ['t0'] },
        { memberId: 'C1', topics: ['t0', 't1'] },
        { memberId: 'C2', topics: ['t0', 't1', 't2'] },
      ],
      new Map([
        ['t0', 1],
        ['t1', 2],
        ['t2', 3],
      ]),
    );
    expect(names(result)).toEqual({ C0: ['t0p0'], C1: ['t1p0'], C2: ['t1p1', 't2p0', 't2p1', 't2p2'] });
  });

  it('assigns every subscribed partition once, balanced when subscriptions are identical', () => {
    fc.assert(
      fc.property(groupScenario({ identical: false }), (scenario) => {
        const result = roundRobinAssignor.assign(scenario.members, scenario.partitionsPerTopic);
        expect(checkValidAssignment(scenario, result).size).toBe(subscribedPartitions(scenario).length);
      }),
    );
    fc.assert(
      fc.property(groupScenario({ identical: true }), (scenario) => {
        const result = roundRobinAssignor.assign(scenario.members, scenario.partitionsPerTopic);
        expect(Math.max(...spreadsAmongIdenticalSubscriptions(scenario, result))).toBeLessThanOrEqual(1);
      }),
    );
  });
});
