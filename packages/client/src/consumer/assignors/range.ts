// Kafka's RangeAssignor ("range"): each topic is handled on its own. The members subscribed to a
// topic are sorted (compareMembers) and the topic's partitions are cut into contiguous ranges, one
// per member in that order; when the count does not divide evenly, the first
// `partitions % members` members get one partition more. Because every topic is cut the same way,
// members with identical subscriptions get the same partition numbers of co-partitioned topics
// (useful for joins), at the price of imbalance across many topics: the first member gets the
// extra partition of every topic.
//
// Not carried over from the Java client: rack-aware range assignment (KIP-881), which only
// changes the result when members and partitions carry rack ids.

import type { TopicPartition } from '../../cluster-client.js';
import {
  compareStrings,
  emptyAssignment,
  sortedMembers,
  type MemberSubscription,
  type PartitionAssignor,
} from './types.js';

export const RANGE_ASSIGNOR_NAME = 'range';

export function assignRange(
  members: readonly MemberSubscription[],
  partitionsPerTopic: ReadonlyMap<string, number>,
): Map<string, TopicPartition[]> {
  const assignment = emptyAssignment(members);
  const ordered = sortedMembers(members);
  const topics = new Set<string>();
  for (const member of ordered) for (const topic of member.topics) topics.add(topic);
  // Topics in name order only fixes the order of each member's list; ranges are per topic.
  for (const topic of [...topics].sort(compareStrings)) {
    const partitionCount = partitionsPerTopic.get(topic);
    if (partitionCount === undefined) continue; // no metadata for the topic: nothing to hand out
    const consumers = ordered.filter((member) => member.topics.includes(topic));
    const perMember = Math.floor(partitionCount / consumers.length);
    const withExtra = partitionCount % consumers.length;
    consumers.forEach((member, index) => {
      const start = perMember * index + Math.min(index, withExtra);
      const length = perMember + (index < withExtra ? 1 : 0);
      const target = assignment.get(member.memberId)!;
      for (let partition = start; partition < start + length; partition++) target.push({ topic, partition });
    });
  }
  return assignment;
}

export const rangeAssignor: PartitionAssignor = {
  name: RANGE_ASSIGNOR_NAME,
  rebalanceProtocol: 'eager',
  assign: assignRange,
  subscriptionUserData: () => null,
};
