// Kafka's RoundRobinAssignor ("roundrobin"): every partition of every subscribed topic, sorted by
// topic then partition, is dealt out one at a time over the members in order (compareMembers),
// like cards. The dealer keeps its place between topics; a member not subscribed to the current
// partition's topic is skipped, and the deal resumes after the member that took the partition.
// With identical subscriptions the counts differ by at most one; with differing subscriptions the
// result can be unbalanced (Kafka documents the same).

import type { TopicPartition } from '../../cluster-client.js';
import {
  compareStrings,
  emptyAssignment,
  sortedMembers,
  type MemberSubscription,
  type PartitionAssignor,
} from './types.js';

export const ROUND_ROBIN_ASSIGNOR_NAME = 'roundrobin';

export function assignRoundRobin(
  members: readonly MemberSubscription[],
  partitionsPerTopic: ReadonlyMap<string, number>,
): Map<string, TopicPartition[]> {
  const assignment = emptyAssignment(members);
  const ordered = sortedMembers(members);
  if (ordered.length === 0) return assignment;
  const subscribedTopics = new Set<string>();
  for (const member of ordered) for (const topic of member.topics) subscribedTopics.add(topic);
  const subscriptions = ordered.map((member) => new Set(member.topics));

  let next = 0; // index into `ordered` of the member the dealer offers the next partition to
  for (const topic of [...subscribedTopics].sort(compareStrings)) {
    const partitionCount = partitionsPerTopic.get(topic) ?? 0;
    for (let partition = 0; partition < partitionCount; partition++) {
      // Some member subscribes to `topic` (it came from a subscription), so this stops within
      // one lap of the members.
      while (!subscriptions[next]!.has(topic)) next = (next + 1) % ordered.length;
      assignment.get(ordered[next]!.memberId)!.push({ topic, partition });
      next = (next + 1) % ordered.length;
    }
  }
  return assignment;
}

export const roundRobinAssignor: PartitionAssignor = {
  name: ROUND_ROBIN_ASSIGNOR_NAME,
  rebalanceProtocol: 'eager',
  assign: assignRoundRobin,
  subscriptionUserData: () => null,
};
