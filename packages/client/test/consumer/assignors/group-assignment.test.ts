import { InvariantViolation, RaftkaError } from '@raftka/protocol';
import { describe, expect, it } from 'vitest';
import { decodeAssignment, encodeSubscription, type Subscription } from '../../../src/consumer/assignors/consumer-protocol.js';
import { cooperativeStickyAssignor } from '../../../src/consumer/assignors/cooperative-sticky.js';
import {
  assignmentChange,
  decodeMembers,
  performGroupAssignment,
  subscribedTopics,
  validateCooperativeAssignment,
} from '../../../src/consumer/assignors/group-assignment.js';
import { rangeAssignor } from '../../../src/consumer/assignors/range.js';
import { tp } from './support.js';

function subscription(topics: string[], owned: Subscription['ownedPartitions'] = [], generationId = -1): Subscription {
  return { topics, userData: null, ownedPartitions: owned, generationId, rackId: null };
}

describe('group assignment (leader side)', () => {
  it('runs the two-round cooperative rebalance end to end through the wire format', () => {
    const partitionsPerTopic = new Map([['orders', 4]]);
    const all = [0, 1, 2, 3].map((p) => tp('orders', p));
    // Round 1: A owns everything from generation 1, B has just joined.
    const round1 = performGroupAssignment(
      cooperativeStickyAssignor,
      [
        { memberId: 'A', metadata: encodeSubscription(subscription(['orders'], all, 1)) },
        { memberId: 'B', metadata: encodeSubscription(subscription(['orders'])) },
      ],
      partitionsPerTopic,
    );
    const aRound1 = decodeAssignment(round1.get('A')!).value.partitions;
    const bRound1 = decodeAssignment(round1.get('B')!).value.partitions;
    expect(bRound1).toEqual([]);
    const aChange = assignmentChange(all, aRound1, 'cooperative');
    expect(aChange.revoked).toHaveLength(2);
    expect(aChange.rejoinNeeded).toBe(true);

    // Round 2: A rejoins owning what it kept; B now receives the revoked partitions.
    const round2 = performGroupAssignment(
      cooperativeStickyAssignor,
      [
        { memberId: 'A', metadata: encodeSubscription(subscription(['orders'], aRound1, 2)) },
        { memberId: 'B', metadata: encodeSubscription(subscription(['orders'], [], 2)) },
      ],
      partitionsPerTopic,
    );
    const bChange = assignmentChange([], decodeAssignment(round2.get('B')!).value.partitions, 'cooperative');
    expect(bChange).toEqual({ added: aChange.revoked, revoked: [], rejoinNeeded: false });
    expect(assignmentChange(aRound1, decodeAssignment(round2.get('A')!).value.partitions, 'cooperative')).toEqual({
      added: [],
      revoked: [],
      rejoinNeeded: false,
    });
  });

  it('names the member whose metadata is malformed', () => {
    let thrown: unknown;
    try {
      decodeMembers([
        { memberId: 'good', metadata: encodeSubscription(subscription(['t'])) },
        { memberId: 'bad', metadata: new Uint8Array([0, 0, 0]) },
      ]);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RaftkaError);
    expect((thrown as RaftkaError).code).toBe('INCONSISTENT_GROUP_PROTOCOL');
    expect((thrown as RaftkaError).message).toMatch(/^group member bad: malformed consumer protocol subscription/);
  });

  it('lists the topics the leader needs metadata for', () => {
    const members = decodeMembers([
      { memberId: 'a', metadata: encodeSubscription(subscription(['y', 'x'])) },
      { memberId: 'b', metadata: encodeSubscription(subscription(['x', 'z']), 0) },
    ]);
    expect(subscribedTopics(members)).toEqual(['x', 'y', 'z']);
  });

  it('encodes an eager assignor result for every member, empty ones included', () => {
    const result = performGroupAssignment(
      rangeAssignor,
      [
        { memberId: 'a', metadata: encodeSubscription(subscription(['t'])) },
        { memberId: 'b', metadata: encodeSubscription(subscription(['t'])) },
      ],
      new Map([['t', 1]]),
    );
    expect(decodeAssignment(result.get('a')!).value.partitions).toEqual([tp('t', 0)]);
    expect(decodeAssignment(result.get('b')!).value).toEqual({ partitions: [], userData: null });
  });

  it('stops on a cooperative assignment that moves an owned partition directly', () => {
    const members = [
      { memberId: 'A', topics: ['t'], ownedPartitions: [tp('t', 0)], generationId: 1 },
      { memberId: 'B', topics: ['t'], generationId: 1 },
    ];
    expect(() => validateCooperativeAssignment(members, new Map([['B', [tp('t', 0)]]]))).toThrow(InvariantViolation);
    expect(() => validateCooperativeAssignment(members, new Map([['A', [tp('t', 0)]], ['B', []]]))).not.toThrow();
  });

  it('does not protect a stale claim: a member that lost its membership reports an older generation, and its partition may move at once', () => {
    const members = [
      // A's membership was lost in generation 3; it rejoins still listing what it owned then.
      { memberId: 'A', topics: ['t'], ownedPartitions: [tp('t', 0)], generationId: 3 },
      { memberId: 'B', topics: ['t'], ownedPartitions: [tp('t', 1)], generationId: 4 },
      { memberId: 'C', topics: ['t'], generationId: 4 },
    ];
    expect(() => validateCooperativeAssignment(members, new Map([['A', []], ['B', [tp('t', 1)]], ['C', [tp('t', 0)]]]))).not.toThrow();
    // A counted claim is still protected.
    expect(() => validateCooperativeAssignment(members, new Map([['A', []], ['B', []], ['C', [tp('t', 0), tp('t', 1)]]]))).toThrow(InvariantViolation);
    // And the assignor itself hands the stale partition out in the same round.
    const assigned = cooperativeStickyAssignor.assign(members, new Map([['t', 2]]));
    expect([...assigned.values()].flat()).toContainEqual(tp('t', 0));
    expect(() => validateCooperativeAssignment(members, assigned)).not.toThrow();
  });
});

describe('assignment change (member side)', () => {
  it('treats the whole assignment as new under the eager protocol', () => {
    expect(assignmentChange([tp('t', 0)], [tp('t', 1), tp('t', 0)], 'eager')).toEqual({
      added: [tp('t', 0), tp('t', 1)],
      revoked: [],
      rejoinNeeded: false,
    });
  });
});
