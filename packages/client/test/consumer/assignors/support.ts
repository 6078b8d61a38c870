// Generators and checks shared by the assignor tests.

import fc from 'fast-check';
import type { TopicPartition } from '../../../src/cluster-client.js';
import type { MemberSubscription } from '../../../src/consumer/assignors/types.js';

export function tp(topic: string, partition: number): TopicPartition {
  return { topic, partition };
}

/** A compact, order-independent picture of an assignment: memberId -> "t0p1" names, sorted. */
export function names(assignment: ReadonlyMap<string, readonly TopicPartition[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [memberId, partitions] of assignment) out[memberId] = partitions.map((p) => `${p.topic}p${p.partition}`);
  return out;
}

export interface GroupScenario {
  partitionsPerTopic: Map<string, number>;
  members: MemberSubscription[];
}

/** 1-4 topics of 0-7 partitions, 1-6 members; identical subscriptions when `identical`. */
export function groupScenario(options: { identical: boolean }): fc.Arbitrary<GroupScenario> {
  return fc
    .record({
      partitionCounts: fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 4 }),
      memberCount: fc.integer({ min: 1, max: 6 }),
      seeds: fc.array(fc.integer({ min: 1, max: 15 }), { minLength: 6, maxLength: 6 }),
    })
    .map(({ partitionCounts, memberCount, seeds }) => {
      const topics = partitionCounts.map((_, index) => `t${index}`);
      const members: MemberSubscription[] = [];
      for (let i = 0; i < memberCount; i++) {
        // A bit mask over the topics picks each member's subscription (never empty).
        const mask = options.identical ? 15 : seeds[i]!;
        let chosen = topics.filter((_, index) => (mask >> index) & 1);
        if (chosen.length === 0) chosen = [topics[0]!];
        members.push({ memberId: `m${i}`, topics: chosen });
      }
      return { partitionsPerTopic: new Map(topics.map((topic, index) => [topic, partitionCounts[index]!])), members };
    });
}

/** Every partition of the group's topics, sorted. */
export function allPartitions(partitionsPerTopic: ReadonlyMap<string, number>): TopicPartition[] {
  const result: TopicPartition[] = [];
  for (const [topic, count] of [...partitionsPerTopic].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (let partition = 0; partition < count; partition++) result.push({ topic, partition });
  }
  return result;
}

export function key(p: TopicPartition): string {
  return `${p.topic}/${p.partition}`;
}

/** Partition key -> member; fails the test if a partition is given twice or to a non-subscriber. */
export function checkValidAssignment(
  scenario: GroupScenario,
  assignment: ReadonlyMap<string, readonly TopicPartition[]>,
): Map<string, string> {
  const owner = new Map<string, string>();
  const byId = new Map(scenario.members.map((member) => [member.memberId, member]));
  if (assignment.size !== scenario.members.length) throw new Error('assignment must list every member');
  for (const [memberId, partitions] of assignment) {
    const member = byId.get(memberId);
    if (member === undefined) throw new Error(`assignment names unknown member ${memberId}`);
    for (const p of partitions) {
      if (!member.topics.includes(p.topic)) throw new Error(`${memberId} got ${key(p)} without subscribing`);
      const count = scenario.partitionsPerTopic.get(p.topic) ?? 0;
      if (p.partition < 0 || p.partition >= count) throw new Error(`${key(p)} does not exist`);
      if (owner.has(key(p))) throw new Error(`${key(p)} assigned to ${owner.get(key(p))} and ${memberId}`);
      owner.set(key(p), memberId);
    }
  }
  return owner;
}

/** Partitions of topics somebody subscribes to: the ones a complete assignment must cover. */
export function subscribedPartitions(scenario: GroupScenario): TopicPartition[] {
  const subscribed = new Set(scenario.members.flatMap((member) => member.topics));
  return allPartitions(scenario.partitionsPerTopic).filter((p) => subscribed.has(p.topic));
}

/** max - min assigned count within each group of members with identical subscriptions. */
export function spreadsAmongIdenticalSubscriptions(
  scenario: GroupScenario,
  assignment: ReadonlyMap<string, readonly TopicPartition[]>,
): number[] {
  const groups = new Map<string, number[]>();
  for (const member of scenario.members) {
    const signature = [...member.topics].sort().join(',');
    const counts = groups.get(signature) ?? [];
    counts.push(assignment.get(member.memberId)!.length);
    groups.set(signature, counts);
  }
  return [...groups.values()].map((counts) => Math.max(...counts) - Math.min(...counts));
}
