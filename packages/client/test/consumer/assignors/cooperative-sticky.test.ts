import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { TopicPartition } from '../../../src/cluster-client.js';
import {
  assignCooperativeSticky,
  cooperativeStickyAssignor,
  encodeCooperativeStickyUserData,
  memberGeneration,
} from '../../../src/consumer/assignors/cooperative-sticky.js';
import type { MemberSubscription } from '../../../src/consumer/assignors/types.js';
import {
  allPartitions,
  checkValidAssignment,
  groupScenario,
  key,
  names,
  spreadsAmongIdenticalSubscriptions,
  subscribedPartitions,
  tp,
  type GroupScenario,
} from './support.js';

const fourTopicsOfTwo = new Map([
  ['t0', 2],
  ['t1', 2],
  ['t2', 2],
  ['t3', 2],
]);

/** The members as they rejoin after `assignment`, owning exactly what it gave them. */
function rejoin(
  members: readonly MemberSubscription[],
  assignment: ReadonlyMap<string, readonly TopicPartition[]>,
  generationId: number,
): MemberSubscription[] {
  return members.map((member) => ({
    ...member,
    ownedPartitions: assignment.get(member.memberId) ?? [],
    generationId,
  }));
}

/** Checks the KIP-429 rule for one round: nothing moves straight from one owner to another. */
function checkRevokeFirst(
  previousOwner: ReadonlyMap<string, string>,
  assignment: ReadonlyMap<string, readonly TopicPartition[]>,
): void {
  for (const [memberId, partitions] of assignment) {
    for (const p of partitions) {
      const owner = previousOwner.get(key(p));
      if (owner !== undefined && owner !== memberId) {
        throw new Error(`${key(p)} went from ${owner} to ${memberId} without being revoked first`);
      }
    }
  }
}

/**
 * The balance criterion the assignor promises for any subscriptions: no member could take a
 * partition from a member that holds at least two more.
 */
function checkNoImprovingMove(scenario: GroupScenario, assignment: ReadonlyMap<string, readonly TopicPartition[]>): void {
  const count = new Map([...assignment].map(([memberId, partitions]) => [memberId, partitions.length]));
  for (const [holder, partitions] of assignment) {
    for (const p of partitions) {
      for (const member of scenario.members) {
        if (member.topics.includes(p.topic) && count.get(member.memberId)! + 1 < count.get(holder)!) {
          throw new Error(`${member.memberId} could take ${key(p)} from ${holder} to improve balance`);
        }
      }
    }
  }
}

function sumOfSquares(assignment: ReadonlyMap<string, readonly TopicPartition[]>): number {
  return [...assignment.values()].reduce((sum, partitions) => sum + partitions.length ** 2, 0);
}

/** A scenario plus a consistent previous ownership: each partition owned by one member or none. */
const scenarioWithOwners = (identical: boolean) =>
  groupScenario({ identical }).chain((scenario) =>
    fc
      .array(fc.integer({ min: -1, max: scenario.members.length - 1 }), {
        minLength: allPartitions(scenario.partitionsPerTopic).length,
        maxLength: allPartitions(scenario.partitionsPerTopic).length,
      })
      .map((ownerIndexes) => {
        const owned = new Map<string, TopicPartition[]>(scenario.members.map((m) => [m.memberId, []]));
        allPartitions(scenario.partitionsPerTopic).forEach((p, index) => {
          const ownerIndex = ownerIndexes[index]!;
          // Owners may hold partitions of topics they no longer subscribe to: a subscription change.
          if (ownerIndex >= 0) owned.get(scenario.members[ownerIndex]!.memberId)!.push(p);
        });
        return { scenario, members: rejoin(scenario.members, owned, 4), owned };
      }),
  );

function ownerMap(owned: ReadonlyMap<string, readonly TopicPartition[]>): Map<string, string> {
  const result = new Map<string, string>();
  for (const [memberId, partitions] of owned) for (const p of partitions) result.set(key(p), memberId);
  return result;
}

describe('cooperative-sticky assignor', () => {
  it("balances a fresh group like Kafka's StickyAssignor example, and stays sticky when a member leaves", () => {
    const members = ['C0', 'C1', 'C2'].map((memberId) => ({ memberId, topics: ['t0', 't1', 't2', 't3'] }));
    const first = assignCooperativeSticky(members, fourTopicsOfTwo);
    expect(names(first)).toEqual({
      C0: ['t0p0', 't1p1', 't3p0'],
      C1: ['t0p1', 't2p0', 't3p1'],
      C2: ['t1p0', 't2p1'],
    });
    // C1 leaves. Its partitions have no owner any more, so they move in this very round; C0 and
    // C2 keep everything they had (Kafka's documented sticky result).
    const remaining = rejoin(members, first, 1).filter((member) => member.memberId !== 'C1');
    expect(names(assignCooperativeSticky(remaining, fourTopicsOfTwo))).toEqual({
      C0: ['t0p0', 't1p1', 't2p0', 't3p0'],
      C2: ['t0p1', 't1p0', 't2p1', 't3p1'],
    });
  });

  it("matches Kafka's unequal-subscription sticky example", () => {
    const partitionsPerTopic = new Map([
      ['t0', 1],
      ['t1', 2],
      ['t2', 3],
    ]);
    const members = [
      { memberId: 'C0', topics: ['t0'] },
      { memberId: 'C1', topics: ['t0', 't1'] },
      { memberId: 'C2', topics: ['t0', 't1', 't2'] },
    ];
    const first = assignCooperativeSticky(members, partitionsPerTopic);
    expect(names(first)).toEqual({ C0: ['t0p0'], C1: ['t1p0', 't1p1'], C2: ['t2p0', 't2p1', 't2p2'] });
    const withoutC0 = rejoin(members, first, 1).filter((member) => member.memberId !== 'C0');
    expect(names(assignCooperativeSticky(withoutC0, partitionsPerTopic))).toEqual({
      C1: ['t0p0', 't1p0', 't1p1'],
      C2: ['t2p0', 't2p1', 't2p2'],
    });
  });

  it('revokes first and assigns in the follow-up round when a member joins (KIP-429)', () => {
    const partitionsPerTopic = new Map([['t', 4]]);
    const owner = { memberId: 'A', topics: ['t'], ownedPartitions: [0, 1, 2, 3].map((p) => tp('t', p)), generationId: 1 };
    const joiner = { memberId: 'B', topics: ['t'], ownedPartitions: [], generationId: -1 };
    const round1 = assignCooperativeSticky([owner, joiner], partitionsPerTopic);
    // Two of A's partitions must go to B: they are taken from A and given to nobody yet.
    expect(round1.get('A')).toHaveLength(2);
    expect(round1.get('B')).toEqual([]);
    const round2 = assignCooperativeSticky(rejoin([owner, joiner], round1, 2), partitionsPerTopic);
    expect(round2.get('A')).toEqual(round1.get('A'));
    expect(round2.get('B')).toHaveLength(2);
    expect(new Set([...round2.get('A')!, ...round2.get('B')!].map(key)).size).toBe(4);
  });

  it('lets claims from an older generation lose, whatever they claim', () => {
    const partitionsPerTopic = new Map([['t', 4]]);
    const current = { memberId: 'A', topics: ['t'], ownedPartitions: [tp('t', 0), tp('t', 1)], generationId: 5 };
    // B missed generation 5: its claim on t/1 conflicts with A's, its claim on t/2 is simply stale.
    const stale = { memberId: 'B', topics: ['t'], ownedPartitions: [tp('t', 1), tp('t', 2), tp('t', 3)], generationId: 4 };
    const result = assignCooperativeSticky([current, stale], partitionsPerTopic);
    expect(names(result)).toEqual({ A: ['tp0', 'tp1'], B: ['tp2', 'tp3'] });
    // B's stale claims do not make B an owner: had they counted, A would have to wait a round
    // (revoke-first) for its share; instead A gets it at once.
    const lonely = { memberId: 'A', topics: ['t'], ownedPartitions: [], generationId: 5 };
    const greedy = { memberId: 'B', topics: ['t'], ownedPartitions: [0, 1, 2, 3].map((p) => tp('t', p)), generationId: 4 };
    const rebalanced = assignCooperativeSticky([lonely, greedy], partitionsPerTopic);
    expect(rebalanced.get('A')).toHaveLength(2);
    expect(rebalanced.get('B')).toHaveLength(2);
  });

  it('ignores both claims when two members claim one partition in the same generation', () => {
    const partitionsPerTopic = new Map([['t', 3]]);
    const a = { memberId: 'A', topics: ['t'], ownedPartitions: [tp('t', 0), tp('t', 2)], generationId: 3 };
    const b = { memberId: 'B', topics: ['t'], ownedPartitions: [tp('t', 1), tp('t', 2)], generationId: 3 };
    const c = { memberId: 'C', topics: ['t'], ownedPartitions: [], generationId: 3 };
    // t/2 has no undisputed owner, so it goes straight to the empty member C.
    expect(names(assignCooperativeSticky([a, b, c], partitionsPerTopic))).toEqual({ A: ['tp0'], B: ['tp1'], C: ['tp2'] });
  });

  it('reads the generation from userData for members that send subscription v0/v1', () => {
    const viaUserData = { memberId: 'old', topics: ['t'], userData: encodeCooperativeStickyUserData(7) };
    expect(memberGeneration(viaUserData)).toBe(7);
    expect(memberGeneration({ memberId: 'x', topics: [], generationId: 3, userData: encodeCooperativeStickyUserData(7) })).toBe(3);
    expect(memberGeneration({ memberId: 'x', topics: [], userData: new Uint8Array([1]) })).toBe(-1);
    expect(memberGeneration({ memberId: 'x', topics: [] })).toBeUndefined();
    expect(cooperativeStickyAssignor.subscriptionUserData(7)).toEqual(new Uint8Array([0, 0, 0, 7]));
    // The v0/v1 member in generation 7 beats a v2 member that still reports generation 6.
    const partitionsPerTopic = new Map([['t', 2]]);
    const old = { ...viaUserData, ownedPartitions: [tp('t', 0), tp('t', 1)] };
    const behind = { memberId: 'new', topics: ['t'], ownedPartitions: [tp('t', 0)], generationId: 6 };
    const result = assignCooperativeSticky([old, behind], partitionsPerTopic);
    expect(names(result)).toEqual({ new: [], old: ['tp0'] }); // t/1 revoked from old first
  });

  it('does not hand a partition to a new member while an unsubscribed owner still holds it', () => {
    const partitionsPerTopic = new Map([['t', 1]]);
    const leaving = { memberId: 'A', topics: ['other'], ownedPartitions: [tp('t', 0)], generationId: 2 };
    const taker = { memberId: 'B', topics: ['t'], ownedPartitions: [], generationId: 2 };
    const round1 = assignCooperativeSticky([leaving, taker], partitionsPerTopic);
    expect(names(round1)).toEqual({ A: [], B: [] });
    expect(names(assignCooperativeSticky(rejoin([leaving, taker], round1, 3), partitionsPerTopic))).toEqual({ A: [], B: ['tp0'] });
  });

  it('assigns every subscribed partition of a fresh group, balanced among identical subscriptions', () => {
    fc.assert(
      fc.property(groupScenario({ identical: false }), (scenario) => {
        const result = assignCooperativeSticky(scenario.members, scenario.partitionsPerTopic);
        expect(checkValidAssignment(scenario, result).size).toBe(subscribedPartitions(scenario).length);
        expect(Math.max(...spreadsAmongIdenticalSubscriptions(scenario, result))).toBeLessThanOrEqual(1);
        checkNoImprovingMove(scenario, result);
      }),
    );
  });

  it('moves nothing when re-run with its own assignment as ownedPartitions', () => {
    fc.assert(
      fc.property(scenarioWithOwners(false), ({ scenario, members }) => {
        const round1 = assignCooperativeSticky(members, scenario.partitionsPerTopic);
        const settled = assignCooperativeSticky(rejoin(scenario.members, round1, 5), scenario.partitionsPerTopic);
        const again = assignCooperativeSticky(rejoin(scenario.members, settled, 6), scenario.partitionsPerTopic);
        expect(names(again)).toEqual(names(settled));
      }),
    );
  });

  it('never assigns an owned partition to another member in the same round, and balances in the follow-up', () => {
    for (const identical of [true, false]) {
      fc.assert(
        fc.property(scenarioWithOwners(identical), ({ scenario, members, owned }) => {
          const round1 = assignCooperativeSticky(members, scenario.partitionsPerTopic);
          checkValidAssignment(scenario, round1);
          checkRevokeFirst(ownerMap(owned), round1);

          const round2 = assignCooperativeSticky(rejoin(scenario.members, round1, 5), scenario.partitionsPerTopic);
          checkValidAssignment(scenario, round2);
          checkRevokeFirst(ownerMap(round1), round2);
          // After the follow-up round everything is assigned, balanced, and nothing revoked in
          // round 1 is still waiting: the protocol converges in two rounds.
          expect(ownerMap(round2).size).toBe(subscribedPartitions(scenario).length);
          expect(Math.max(...spreadsAmongIdenticalSubscriptions(scenario, round2))).toBeLessThanOrEqual(1);
          checkNoImprovingMove(scenario, round2);
          // As balanced as a fresh assignment: the same (minimal) sum of squared counts.
          expect(sumOfSquares(round2)).toBe(sumOfSquares(assignCooperativeSticky(scenario.members, scenario.partitionsPerTopic)));
          for (const [memberId, partitions] of round1) {
            expect(round2.get(memberId)).toEqual(expect.arrayContaining(partitions));
          }
        }),
      );
    }
  });

  it('keeps as many owned partitions as balance allows when subscriptions are identical', () => {
    fc.assert(
      fc.property(scenarioWithOwners(true), ({ scenario, members, owned }) => {
        const round1 = assignCooperativeSticky(members, scenario.partitionsPerTopic);
        const total = allPartitions(scenario.partitionsPerTopic).length;
        const floorQuota = Math.floor(total / scenario.members.length);
        // A member only has to give up what it holds beyond the lower quota.
        let mustKeep = 0;
        for (const partitions of owned.values()) mustKeep += Math.min(partitions.length, floorQuota);
        const kept = [...round1].reduce(
          (sum, [memberId, partitions]) =>
            sum + partitions.filter((p) => ownerMap(owned).get(key(p)) === memberId).length,
          0,
        );
        expect(kept).toBeGreaterThanOrEqual(mustKeep);
      }),
    );
  });
});
