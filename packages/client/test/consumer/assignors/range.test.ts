import fc from 'fast-check';
import { InvariantViolation } from '@raftka/protocol';
import { describe, expect, it } from 'vitest';
import { cooperativeStickyAssignor } from '../../../src/consumer/assignors/cooperative-sticky.js';
import { assignRange, rangeAssignor } from '../../../src/consumer/assignors/range.js';
import { roundRobinAssignor } from '../../../src/consumer/assignors/round-robin.js';
import { checkValidAssignment, groupScenario, names, subscribedPartitions } from './support.js';

describe('range assignor', () => {
  it("matches Kafka's documented example: 2 consumers, 2 topics of 3 partitions", () => {
    const result = assignRange(
      [
        { memberId: 'C1', topics: ['t0', 't1'] },
        { memberId: 'C0', topics: ['t0', 't1'] },
      ],
      new Map([
        ['t0', 3],
        ['t1', 3],
      ]),
    );
    expect(names(result)).toEqual({ C0: ['t0p0', 't0p1', 't1p0', 't1p1'], C1: ['t0p2', 't1p2'] });
  });

  it('gives the first partitions%members members one more, per topic, only among subscribers', () => {
    const result = assignRange(
      [
        { memberId: 'a', topics: ['x', 'y'] },
        { memberId: 'b', topics: ['x'] },
        { memberId: 'c', topics: ['x', 'y', 'missing'] },
      ],
      new Map([
        ['x', 7],
        ['y', 3],
      ]),
    );
    expect(names(result)).toEqual({
      a: ['xp0', 'xp1', 'xp2', 'yp0', 'yp1'],
      b: ['xp3', 'xp4'],
      c: ['xp5', 'xp6', 'yp2'],
    });
  });

  it('orders static members (group.instance.id) before dynamic ones, as Kafka does', () => {
    const result = assignRange(
      [
        { memberId: 'a-dynamic', topics: ['t'] },
        { memberId: 'z-static', groupInstanceId: 'instance-1', topics: ['t'] },
      ],
      new Map([['t', 2]]),
    );
    expect(names(result)).toEqual({ 'a-dynamic': ['tp1'], 'z-static': ['tp0'] });
  });

  it('assigns every subscribed partition exactly once, only to subscribers', () => {
    fc.assert(
      fc.property(groupScenario({ identical: false }), (scenario) => {
        const owner = checkValidAssignment(scenario, rangeAssignor.assign(scenario.members, scenario.partitionsPerTopic));
        expect(owner.size).toBe(subscribedPartitions(scenario).length);
      }),
    );
  });

  it('every assignor handles an empty group and refuses a duplicated member id as a bug', () => {
    for (const assignor of [rangeAssignor, roundRobinAssignor, cooperativeStickyAssignor]) {
      expect(assignor.assign([], new Map([['t', 3]]))).toEqual(new Map());
      const twice = [
        { memberId: 'm', topics: ['t'] },
        { memberId: 'm', topics: ['t'] },
      ];
      expect(() => assignor.assign(twice, new Map([['t', 3]]))).toThrow(InvariantViolation);
    }
  });
});
