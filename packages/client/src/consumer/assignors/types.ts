// The contract every consumer-group partition assignor fulfils, and the small helpers they share.
//
// An assignor runs on the group leader only (Kafka's client-side assignment): the coordinator hands
// the leader every member's Subscription, the leader calls `assign`, and sends the result back in
// SyncGroup, one Assignment per member. Assignors are pure functions of their input — no clock, no
// randomness, no I/O — so every member that became leader would compute the same result, and tests
// can drive them exhaustively. The ordering rules (member order, topic-partition order) follow
// Kafka's Java client so that a group mixing Raftka and Kafka consumers agrees on what each
// assignor means.

import { invariant } from '@raftka/protocol';
import type { TopicPartition } from '../../cluster-client.js';

/** Kafka's "no generation known" marker (ConsumerProtocolSubscription.GenerationId default). */
export const DEFAULT_GENERATION = -1;

/** One group member as the leader sees it: its identity and its decoded subscription. */
export interface MemberSubscription {
  memberId: string;
  /** KIP-345 static membership id; Kafka orders static members by it ahead of dynamic ones. */
  groupInstanceId?: string | undefined;
  /** Topics the member wants to read; partitions of other topics are never assigned to it. */
  topics: readonly string[];
  /** Partitions the member held after the last rebalance it completed (subscription v1+). */
  ownedPartitions?: readonly TopicPartition[] | undefined;
  /** The generation in which `ownedPartitions` were assigned (subscription v2+); -1 when unknown. */
  generationId?: number | undefined;
  /** Assignor-specific bytes; cooperative-sticky reads a generation from it for pre-v2 members. */
  userData?: Uint8Array | null | undefined;
}

/** How a member must react to an assignment produced by this assignor (KIP-429). */
export type RebalanceProtocol = 'eager' | 'cooperative';

export interface PartitionAssignor {
  /** The protocol name sent in JoinGroup; identical to the Java client's so mixed groups agree. */
  readonly name: string;
  /**
   * The most incremental protocol the assignor supports. eager: every member revokes everything
   * before joining. cooperative: members keep their partitions across the join and revoke only
   * what the new assignment takes away; a cooperative assignor also works with eager members.
   */
  readonly rebalanceProtocol: RebalanceProtocol;
  /**
   * The assignment for every member (each member has an entry, possibly empty). `partitionsPerTopic`
   * holds the partition count of each topic known to exist; subscribed topics missing from it get
   * no partitions. Members must have distinct ids.
   */
  assign(
    members: readonly MemberSubscription[],
    partitionsPerTopic: ReadonlyMap<string, number>,
  ): Map<string, TopicPartition[]>;
  /** The userData a member running this assignor puts in its Subscription (null for none). */
  subscriptionUserData(generationId: number): Uint8Array | null;
}

/**
 * Kafka's member order (AbstractPartitionAssignor.MemberInfo.compareTo): members with a
 * group.instance.id first, ordered by it, then dynamic members ordered by member id. Strings
 * compare by UTF-16 code unit, as Java's String.compareTo does (not localeCompare).
 */
export function compareMembers(a: MemberSubscription, b: MemberSubscription): number {
  if (a.groupInstanceId !== undefined && b.groupInstanceId !== undefined) {
    return compareStrings(a.groupInstanceId, b.groupInstanceId);
  }
  if (a.groupInstanceId !== undefined) return -1;
  if (b.groupInstanceId !== undefined) return 1;
  return compareStrings(a.memberId, b.memberId);
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Topic first, then partition number: the order Kafka uses when it lists all partitions. */
export function compareTopicPartitions(a: TopicPartition, b: TopicPartition): number {
  return compareStrings(a.topic, b.topic) || a.partition - b.partition;
}

export function topicPartitionKey(tp: TopicPartition): string {
  // A NUL cannot appear in a topic name (legal characters are [a-zA-Z0-9._-]), so the key is unique.
  return `${tp.topic}\u0000${tp.partition}`;
}

/** Members sorted in Kafka's order. Two members with one id would be a coordinator bug. */
export function sortedMembers(members: readonly MemberSubscription[]): MemberSubscription[] {
  const seen = new Set<string>();
  for (const member of members) {
    invariant(!seen.has(member.memberId), () => `assignor input lists member ${member.memberId} twice`);
    seen.add(member.memberId);
  }
  return [...members].sort(compareMembers);
}

/** An empty assignment entry for every member, so callers can rely on `get(memberId)`. */
export function emptyAssignment(members: readonly MemberSubscription[]): Map<string, TopicPartition[]> {
  return new Map(members.map((member) => [member.memberId, [] as TopicPartition[]]));
}
