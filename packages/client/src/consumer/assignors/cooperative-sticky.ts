// Kafka's CooperativeStickyAssignor ("cooperative-sticky", KIP-429 on top of KIP-54's sticky
// assignment). Two goals, in this order: balance (no member could take a partition from one that
// holds two more than it does), then stickiness (a member keeps the partitions it
// owned, so state and caches survive a rebalance and only the necessary minimum moves).
//
// The cooperative (incremental) rebalance protocol, KIP-429, takes two rounds when a partition
// must change hands:
//
//   Round 1. Every member joins WITHOUT revoking anything and reports, in its Subscription, the
//            partitions it owns (ownedPartitions) and the generation they were assigned in
//            (generationId; pre-v2 members carry it in userData, see subscriptionUserData). The
//            leader computes the balanced sticky target. A partition whose target member differs
//            from its current owner is left OUT of this round's assignment altogether: it is not
//            given to the new member yet, because the old owner may still be fetching from it and
//            committing offsets for it. The old owner sees the partition missing from its
//            assignment, stops fetching, commits its offsets, calls onPartitionsRevoked for just
//            that partition, and — because it revoked something — rejoins immediately.
//   Round 2. The rejoin starts a follow-up rebalance. The revoked partition now has no owner, so
//            the leader hands it to its target member. Nothing is ever owned by two members at
//            once, and members whose partitions did not move keep consuming throughout both rounds.
//
// Ownership data is generation-aware, as in Kafka's AbstractStickyAssignor: only claims made in the
// highest generation any member reports count. A member that missed a rebalance (its session
// expired, the group moved on without it) reports an older generation, and its claims lose — its
// partitions may have gone to someone else since. When two members claim one partition in the same
// generation (which a correct coordinator never produces), neither claim counts. A member that
// owns a partition of a topic it no longer subscribes to still counts as its owner for the
// revoke-first rule, but cannot keep it.
//
// Balancing is a local search over member counts (see StickyBalancer): unowned partitions go to
// the least-loaded eligible member, then partitions are passed from a member — directly, or along
// a chain of members that share topics — to a member holding at least two fewer, until no such
// move exists. Moves that revoke nothing are exhausted before any that takes a partition from its
// owner. The end state minimises the sum of squared counts, so two members with identical
// subscriptions differ by at most one partition, and a follow-up round (where the revoked
// partitions are simply unowned) reaches the same balance without revoking anything more: the
// protocol converges in two rounds. Kafka's general (non-identical subscriptions) algorithm is a
// different heuristic; results for such groups can differ from Kafka's in which member gets which
// partition, never in validity.

import { invariant } from '@raftka/protocol';
import type { TopicPartition } from '../../cluster-client.js';
import {
  compareStrings,
  compareTopicPartitions,
  DEFAULT_GENERATION,
  sortedMembers,
  topicPartitionKey,
  type MemberSubscription,
  type PartitionAssignor,
} from './types.js';

export const COOPERATIVE_STICKY_ASSIGNOR_NAME = 'cooperative-sticky';

/** Bytes of Kafka's COOPERATIVE_STICKY_ASSIGNOR_USER_DATA_V0: one big-endian int32 generation. */
const USER_DATA_BYTES = 4;

/** The generation a member's ownership data belongs to, or undefined when it carries none. */
export function memberGeneration(member: MemberSubscription): number | undefined {
  if (member.generationId !== undefined && member.generationId >= 0) return member.generationId;
  const userData = member.userData;
  if (userData === null || userData === undefined) return undefined;
  // Kafka falls back to DEFAULT_GENERATION when the userData cannot be parsed.
  if (userData.byteLength < USER_DATA_BYTES) return DEFAULT_GENERATION;
  return new DataView(userData.buffer, userData.byteOffset, userData.byteLength).getInt32(0);
}

export function encodeCooperativeStickyUserData(generationId: number): Uint8Array {
  const bytes = new Uint8Array(USER_DATA_BYTES);
  new DataView(bytes.buffer).setInt32(0, generationId);
  return bytes;
}

interface Ownership {
  /** Partition key -> member that currently holds it (revoke-first rule applies to these). */
  currentOwner: Map<string, string>;
  /** Partition key -> owner, only where the owner still subscribes to the topic (may keep it). */
  keepable: Map<string, string>;
}

function isExistingPartition(tp: TopicPartition, partitionsPerTopic: ReadonlyMap<string, number>): boolean {
  const count = partitionsPerTopic.get(tp.topic);
  return count !== undefined && Number.isInteger(tp.partition) && tp.partition >= 0 && tp.partition < count;
}

/**
 * The ownership claims that count (see the module header): partition key -> owner, from members
 * of the newest generation any member reports, without partitions two of them claim. Partitions
 * for which `exists` is false are left out.
 */
export function countedClaims(members: readonly MemberSubscription[], exists: (tp: TopicPartition) => boolean = () => true): Map<string, string> {
  let maxGeneration = DEFAULT_GENERATION;
  for (const member of members) maxGeneration = Math.max(maxGeneration, memberGeneration(member) ?? DEFAULT_GENERATION);

  const claims = new Map<string, string>();
  const disputed = new Set<string>();
  for (const member of members) {
    const generation = memberGeneration(member) ?? DEFAULT_GENERATION;
    if (generation !== maxGeneration) continue; // stale claims from an older generation lose
    for (const tp of member.ownedPartitions ?? []) {
      if (!exists(tp)) continue;
      const key = topicPartitionKey(tp);
      const other = claims.get(key);
      if (other === undefined) claims.set(key, member.memberId);
      else if (other !== member.memberId) disputed.add(key);
    }
  }
  for (const key of disputed) claims.delete(key);
  return claims;
}

function resolveOwnership(
  members: readonly MemberSubscription[],
  partitionsPerTopic: ReadonlyMap<string, number>,
): Ownership {
  const claims = countedClaims(members, (tp) => isExistingPartition(tp, partitionsPerTopic));

  const subscribed = new Map(members.map((member) => [member.memberId, new Set(member.topics)]));
  const keepable = new Map<string, string>();
  for (const [key, owner] of claims) {
    const topic = key.slice(0, key.indexOf('\u0000'));
    if (subscribed.get(owner)!.has(topic)) keepable.set(key, owner);
  }
  return { currentOwner: claims, keepable };
}

/**
 * The balanced sticky target (partition key -> member): where every partition should end up,
 * before the revoke-first rule holds some of them back for a round.
 */
function computeStickyTarget(
  members: readonly MemberSubscription[],
  partitionsPerTopic: ReadonlyMap<string, number>,
  keepable: ReadonlyMap<string, string>,
): Map<string, string> {
  const balancer = new StickyBalancer(sortedMembers(members), partitionsPerTopic, keepable);
  balancer.placeUnowned();
  balancer.balance();
  return balancer.target;
}

/** Where a path search may go: through partitions that cost no revocation only, or any. */
type MoveCost = 'free-only' | 'may-revoke';

/**
 * The mutable state of one balancing run. Every partition of a subscribed topic has exactly one
 * holder at all times; `count` and `held` mirror `target`.
 */
class StickyBalancer {
  /** Partition key -> member it is placed on. */
  readonly target = new Map<string, string>();
  /** Invariant: count.get(m) === size of held.get(m) === number of target entries naming m. */
  private readonly count = new Map<string, number>();
  /**
   * Each member's partitions, split by what giving them away costs: `free` ones it does not own
   * (moving them revokes nothing) go first, most recently placed first; `owned` ones are kept lowest (topic, partition) first
   * and given away from the end — like Kafka's constrained sticky assignment, a member keeps the
   * first of its partitions.
   */
  private readonly held = new Map<string, { free: TopicPartition[]; owned: TopicPartition[] }>();
  /** Topic -> members subscribed to it, in member order. */
  private readonly eligibleByTopic = new Map<string, string[]>();
  private readonly rank = new Map<string, number>();
  private readonly partitions: TopicPartition[] = [];
  private readonly unowned: TopicPartition[] = [];

  constructor(
    private readonly ordered: readonly MemberSubscription[],
    partitionsPerTopic: ReadonlyMap<string, number>,
    private readonly keepable: ReadonlyMap<string, string>,
  ) {
    ordered.forEach((member, index) => {
      this.rank.set(member.memberId, index);
      this.count.set(member.memberId, 0);
      this.held.set(member.memberId, { free: [], owned: [] });
      for (const topic of new Set(member.topics)) {
        if (!partitionsPerTopic.has(topic)) continue;
        const list = this.eligibleByTopic.get(topic) ?? [];
        list.push(member.memberId);
        this.eligibleByTopic.set(topic, list);
      }
    });
    for (const topic of [...this.eligibleByTopic.keys()].sort(compareStrings)) {
      for (let partition = 0; partition < partitionsPerTopic.get(topic)!; partition++) {
        this.partitions.push({ topic, partition });
      }
    }
    // Stickiness first: every partition its owner may keep stays there, for now.
    for (const tp of this.partitions) {
      const owner = this.keepable.get(topicPartitionKey(tp));
      if (owner === undefined) this.unowned.push(tp);
      else this.put(tp, owner);
    }
  }

  /**
   * Unowned partitions go to the least-loaded eligible member, hardest to place (fewest eligible
   * members) first, which keeps groups with differing subscriptions close to balance already.
   */
  placeUnowned(): void {
    const order = [...this.unowned].sort(
      (a, b) => this.eligible(a.topic).length - this.eligible(b.topic).length || compareTopicPartitions(a, b),
    );
    for (const tp of order) this.put(tp, this.leastLoaded(tp.topic));
  }

  /**
   * Moves partitions until no member could pass one on, directly or along a chain of members, to
   * a member holding at least two fewer. Moves that revoke nothing are exhausted before any move
   * that takes a partition from its owner, and a direct move is tried before a chain. Each move
   * lowers the load of one member by one and raises that of a member holding at least two fewer,
   * so the sum of squared counts strictly falls and the loop ends. At the end the counts minimise
   * that sum (the convex-cost-flow optimality condition: no improving path remains), whatever the
   * starting point. A follow-up round starts from a state where the free moves alone reach that
   * minimum, so it moves no owned partition.
   */
  balance(): void {
    for (;;) {
      const moved =
        this.directMove('free-only') ||
        this.chainMove('free-only') ||
        this.directMove('may-revoke') ||
        this.chainMove('may-revoke');
      if (!moved) return;
    }
  }

  private eligible(topic: string): readonly string[] {
    return this.eligibleByTopic.get(topic)!;
  }

  private isFree(tp: TopicPartition, holder: string): boolean {
    return this.keepable.get(topicPartitionKey(tp)) !== holder;
  }

  private put(tp: TopicPartition, memberId: string): void {
    this.target.set(topicPartitionKey(tp), memberId);
    this.count.set(memberId, this.count.get(memberId)! + 1);
    const held = this.held.get(memberId)!;
    (this.isFree(tp, memberId) ? held.free : held.owned).push(tp);
  }

  private take(tp: TopicPartition, memberId: string): void {
    const held = this.held.get(memberId)!;
    const list = this.isFree(tp, memberId) ? held.free : held.owned;
    // Moves mostly take the most recently added free or the last owned partition: search backwards.
    let index = list.length - 1;
    while (index >= 0 && (list[index]!.topic !== tp.topic || list[index]!.partition !== tp.partition)) index--;
    invariant(index >= 0, () => `${memberId} does not hold ${tp.topic}-${tp.partition}`);
    list.splice(index, 1);
    this.count.set(memberId, this.count.get(memberId)! - 1);
  }

  private leastLoaded(topic: string): string {
    let best: string | undefined;
    for (const memberId of this.eligible(topic)) {
      // eligible() lists members in member order, so `<` keeps the first on ties.
      if (best === undefined || this.count.get(memberId)! < this.count.get(best)!) best = memberId;
    }
    return best!;
  }

  /** A member's partitions in the order it gives them away (see `held`). */
  private *givingOrder(memberId: string, cost: MoveCost): Generator<TopicPartition> {
    const held = this.held.get(memberId)!;
    for (let index = held.free.length - 1; index >= 0; index--) yield held.free[index]!;
    if (cost === 'free-only') return;
    for (let index = held.owned.length - 1; index >= 0; index--) yield held.owned[index]!;
  }

  private countMin(): number {
    return Math.min(...this.count.values());
  }

  private byLoadDescending(): string[] {
    return this.ordered
      .map((member) => member.memberId)
      .sort((a, b) => this.count.get(b)! - this.count.get(a)! || this.rank.get(a)! - this.rank.get(b)!);
  }

  /** One partition from the most-loaded member able to give one to an eligible member with ≥2 fewer. */
  private directMove(cost: MoveCost): boolean {
    const countMin = this.countMin();
    for (const from of this.byLoadDescending()) {
      // Nobody holds two fewer than this member, nor than anyone after it in the order.
      if (this.count.get(from)! < countMin + 2) return false;
      const leastLoadedByTopic = new Map<string, string>();
      for (const tp of this.givingOrder(from, cost)) {
        let to = leastLoadedByTopic.get(tp.topic);
        if (to === undefined) {
          to = this.leastLoaded(tp.topic);
          leastLoadedByTopic.set(tp.topic, to);
        }
        if (this.count.get(to)! + 1 < this.count.get(from)!) {
          this.take(tp, from);
          this.put(tp, to);
          return true;
        }
      }
    }
    return false;
  }

  /**
   * A chain u -> x1 -> ... -> v where each member passes one partition to the next: u loses one,
   * v gains one, everyone between keeps their count. Needed when subscriptions differ: u may
   * share no topic with the under-loaded v. A 0-1 breadth-first search from the most-loaded
   * members finds, per source, the chain with the fewest revocations.
   */
  private chainMove(cost: MoveCost): boolean {
    const reached = new Set<string>();
    const countMin = this.countMin();
    for (const source of this.byLoadDescending()) {
      if (this.count.get(source)! < countMin + 2) return false;
      // A member reached from a source at least as loaded reaches nothing that source did not.
      if (reached.has(source)) continue;
      const sourceCount = this.count.get(source)!;
      const revocations = new Map<string, number>([[source, 0]]);
      const via = new Map<string, { from: string; tp: TopicPartition }>();
      const done = new Set<string>();
      const queue: string[] = [source];
      while (queue.length > 0) {
        const member = queue.shift()!;
        if (done.has(member)) continue;
        done.add(member);
        reached.add(member);
        const seenTopics = new Set<string>();
        for (const tp of this.givingOrder(member, cost)) {
          const free = this.isFree(tp, member);
          // Free partitions come first, so the first of a topic seen is the cheapest.
          if (seenTopics.has(tp.topic)) continue;
          seenTopics.add(tp.topic);
          const distance = revocations.get(member)! + (free ? 0 : 1);
          for (const next of this.eligible(tp.topic)) {
            const known = revocations.get(next);
            if (known !== undefined && known <= distance) continue;
            revocations.set(next, distance);
            via.set(next, { from: member, tp });
            if (free) queue.unshift(next);
            else queue.push(next);
          }
        }
      }
      let best: string | undefined;
      for (const [member, distance] of revocations) {
        if (this.count.get(member)! + 2 > sourceCount) continue;
        if (
          best === undefined ||
          distance < revocations.get(best)! ||
          (distance === revocations.get(best)! && this.count.get(member)! < this.count.get(best)!)
        ) {
          best = member;
        }
      }
      if (best === undefined) continue;
      // Walk back from the target, each member on the chain passing its partition forward.
      for (let to = best; to !== source; ) {
        const step = via.get(to)!;
        this.take(step.tp, step.from);
        this.put(step.tp, to);
        to = step.from;
      }
      return true;
    }
    return false;
  }
}

export function assignCooperativeSticky(
  members: readonly MemberSubscription[],
  partitionsPerTopic: ReadonlyMap<string, number>,
): Map<string, TopicPartition[]> {
  const ownership = resolveOwnership(members, partitionsPerTopic);
  const target = computeStickyTarget(members, partitionsPerTopic, ownership.keepable);
  const assignment = new Map(sortedMembers(members).map((member) => [member.memberId, [] as TopicPartition[]]));
  for (const [key, memberId] of target) {
    const owner = ownership.currentOwner.get(key);
    // KIP-429 revoke-first: a partition changing hands is assigned to nobody in this round; its
    // owner revokes it and rejoins, and the follow-up round gives it to its target.
    if (owner !== undefined && owner !== memberId) continue;
    const separator = key.indexOf('\u0000');
    assignment.get(memberId)!.push({ topic: key.slice(0, separator), partition: Number(key.slice(separator + 1)) });
  }
  for (const list of assignment.values()) list.sort(compareTopicPartitions);
  return assignment;
}

export const cooperativeStickyAssignor: PartitionAssignor = {
  name: COOPERATIVE_STICKY_ASSIGNOR_NAME,
  rebalanceProtocol: 'cooperative',
  assign: assignCooperativeSticky,
  subscriptionUserData: encodeCooperativeStickyUserData,
};
