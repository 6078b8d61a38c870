// The glue between the assignors and the group protocol, both sides of it:
//
//  - the group leader: decode every member's JoinGroup metadata (a Subscription), run the chosen
//    assignor, check the result, and encode one Assignment per member for SyncGroup;
//  - every member: compare the Assignment it received with what it owned and decide what to
//    revoke, what to start reading, and whether it must rejoin at once (KIP-429's second round).
//
// Pure functions: the consumer's group membership loop does the I/O around them.

import { assertNever, invariant, RaftkaError } from '@raftka/protocol';
import type { TopicPartition } from '../../cluster-client.js';
import { decodeSubscription, encodeAssignment, type Subscription } from './consumer-protocol.js';
import { countedClaims } from './cooperative-sticky.js';
import {
  compareStrings,
  compareTopicPartitions,
  topicPartitionKey,
  type MemberSubscription,
  type PartitionAssignor,
  type RebalanceProtocol,
} from './types.js';

/** One entry of a JoinGroup response's member list, as the leader receives it. */
export interface JoinedMember {
  memberId: string;
  groupInstanceId?: string | undefined;
  /** The member's protocol metadata: an encoded Subscription. */
  metadata: Uint8Array;
}

export interface DecodedMember {
  memberId: string;
  groupInstanceId?: string | undefined;
  subscription: Subscription;
}

/** Decodes every member's Subscription; a malformed one names the member that sent it. */
export function decodeMembers(members: readonly JoinedMember[]): DecodedMember[] {
  return members.map((member) => {
    try {
      return { memberId: member.memberId, groupInstanceId: member.groupInstanceId, subscription: decodeSubscription(member.metadata).value };
    } catch (error) {
      if (!(error instanceof RaftkaError)) throw error;
      throw new RaftkaError(error.code, `group member ${member.memberId}: ${error.message}`, { cause: error });
    }
  });
}

/** Every topic some member subscribes to, sorted: the topics the leader needs metadata for. */
export function subscribedTopics(members: readonly DecodedMember[]): string[] {
  return [...new Set(members.flatMap((member) => member.subscription.topics))].sort(compareStrings);
}

export function toMemberSubscription(member: DecodedMember): MemberSubscription {
  const { subscription } = member;
  return {
    memberId: member.memberId,
    groupInstanceId: member.groupInstanceId,
    topics: subscription.topics,
    ownedPartitions: subscription.ownedPartitions,
    generationId: subscription.generationId,
    userData: subscription.userData,
  };
}

/**
 * Kafka's ConsumerCoordinator.validateCooperativeAssignment: in a cooperative rebalance no
 * partition may be assigned to one member while another member still owns it — it must be revoked
 * in this round and assigned in the next. Breaking this would let two members read and commit
 * one partition at once, so a violation is a bug in the assignor and stops the leader.
 *
 * Only claims that count are protected, by the same rule the sticky assignor uses
 * (`countedClaims`): a claim from an older generation than the newest reported is stale — that
 * member's membership was lost and the coordinator fences its commits — and two claims of one
 * partition in one generation cancel out. Checking stale claims too would stop the leader on every
 * rebalance after a member lost its membership (Kafka's KAFKA-13406).
 */
export function validateCooperativeAssignment(
  members: readonly MemberSubscription[],
  assignment: ReadonlyMap<string, readonly TopicPartition[]>,
): void {
  const assignedTo = new Map<string, string>();
  for (const [memberId, partitions] of assignment) {
    for (const tp of partitions) assignedTo.set(topicPartitionKey(tp), memberId);
  }
  for (const [key, owner] of countedClaims(members)) {
    const newOwner = assignedTo.get(key);
    invariant(
      newOwner === undefined || newOwner === owner,
      () => `cooperative assignment gives ${key.replace('\u0000', '-')} to ${newOwner} while ${owner} still owns it; it must be revoked first`,
    );
  }
}

/**
 * The leader's whole job between JoinGroup and SyncGroup: member id -> encoded Assignment.
 * `partitionsPerTopic` must cover subscribedTopics(decodeMembers(members)) as far as they exist.
 */
export function performGroupAssignment(
  assignor: PartitionAssignor,
  members: readonly JoinedMember[],
  partitionsPerTopic: ReadonlyMap<string, number>,
): Map<string, Uint8Array> {
  const subscriptions = decodeMembers(members).map(toMemberSubscription);
  const assignment = assignor.assign(subscriptions, partitionsPerTopic);
  switch (assignor.rebalanceProtocol) {
    case 'cooperative':
      validateCooperativeAssignment(subscriptions, assignment);
      break;
    case 'eager':
      // Eager members revoke everything before joining; nobody owns anything to protect.
      break;
    default:
      assertNever(assignor.rebalanceProtocol, 'rebalance protocol');
  }
  const encoded = new Map<string, Uint8Array>();
  for (const member of subscriptions) {
    const partitions = assignment.get(member.memberId) ?? [];
    encoded.set(member.memberId, encodeAssignment({ partitions, userData: null }));
  }
  return encoded;
}

export interface AssignmentChange {
  /** Newly assigned: start reading (onPartitionsAssigned). */
  added: TopicPartition[];
  /** Owned but no longer assigned: stop, commit, onPartitionsRevoked. Always empty when eager. */
  revoked: TopicPartition[];
  /** KIP-429: a cooperative member that revoked anything rejoins at once for the second round. */
  rejoinNeeded: boolean;
}

/**
 * What a member does with the Assignment it received. Under the eager protocol the member revoked
 * everything before joining, so all of the assignment is new; under the cooperative protocol it
 * kept its partitions across the join and only the difference changes hands.
 */
export function assignmentChange(
  owned: readonly TopicPartition[],
  assigned: readonly TopicPartition[],
  protocol: RebalanceProtocol,
): AssignmentChange {
  switch (protocol) {
    case 'eager':
      return { added: [...assigned].sort(compareTopicPartitions), revoked: [], rejoinNeeded: false };
    case 'cooperative': {
      const ownedKeys = new Set(owned.map(topicPartitionKey));
      const assignedKeys = new Set(assigned.map(topicPartitionKey));
      const added = assigned.filter((tp) => !ownedKeys.has(topicPartitionKey(tp))).sort(compareTopicPartitions);
      const revoked = owned.filter((tp) => !assignedKeys.has(topicPartitionKey(tp))).sort(compareTopicPartitions);
      return { added, revoked, rejoinNeeded: revoked.length > 0 };
    }
    default:
      return assertNever(protocol, 'rebalance protocol');
  }
}
