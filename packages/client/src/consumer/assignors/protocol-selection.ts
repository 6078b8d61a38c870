// Which assignor a group uses, and how its members must rebalance.
//
// Each consumer lists the assignors it can run, most preferred first, as the protocols of its
// JoinGroup request. The coordinator picks one every member supports: among the protocols common to
// all members, each member votes for the first one in its own list, and the most votes win (Kafka's
// GroupMetadata.selectProtocol). Listing cooperative-sticky first therefore makes a group use it as
// soon as every member supports it, and fall back to range while, say, a rolling upgrade still has
// members that only know range.
//
// A consumer may only join without revoking (cooperative, KIP-429) when every assignor it lists is
// cooperative: the group might pick an eager one, whose result assumes nobody owns anything. This
// is Kafka's ConsumerCoordinator rule (the highest rebalance protocol common to all configured
// assignors). Cooperative assignors also work with eager members: such members report no owned
// partitions, so there is nothing to revoke first.

import { RaftkaError } from '@raftka/protocol';
import { cooperativeStickyAssignor, COOPERATIVE_STICKY_ASSIGNOR_NAME } from './cooperative-sticky.js';
import { rangeAssignor, RANGE_ASSIGNOR_NAME } from './range.js';
import { roundRobinAssignor } from './round-robin.js';
import { compareStrings, type PartitionAssignor, type RebalanceProtocol } from './types.js';

/** Every assignor Raftka ships, by protocol name. */
export const BUILT_IN_ASSIGNORS: ReadonlyMap<string, PartitionAssignor> = new Map(
  [cooperativeStickyAssignor, rangeAssignor, roundRobinAssignor].map((assignor) => [assignor.name, assignor]),
);

/**
 * The default JoinGroup protocol list: cooperative-sticky when the whole group supports it, range
 * (Kafka's historical default, which every Java consumer supports) otherwise.
 */
export const DEFAULT_ASSIGNOR_NAMES: readonly string[] = [COOPERATIVE_STICKY_ASSIGNOR_NAME, RANGE_ASSIGNOR_NAME];

/** Tie-break when two protocols get the same number of votes: cooperative first, then by name. */
const TIE_BREAK_ORDER: readonly string[] = [COOPERATIVE_STICKY_ASSIGNOR_NAME];

/** Looks up assignors by name; an unknown name is a configuration error. */
export function assignorsByName(names: readonly string[]): PartitionAssignor[] {
  return names.map((name) => {
    const assignor = BUILT_IN_ASSIGNORS.get(name);
    if (assignor === undefined) {
      throw new RaftkaError(
        'INVALID_CONFIG',
        `unknown partition assignor "${name}"; use one of: ${[...BUILT_IN_ASSIGNORS.keys()].join(', ')}`,
      );
    }
    return assignor;
  });
}

/** The protocol names a consumer sends in JoinGroup, in its order of preference, without duplicates. */
export function supportedProtocols(assignors: readonly PartitionAssignor[]): string[] {
  return [...new Set(assignors.map((assignor) => assignor.name))];
}

/** How a consumer configured with `assignors` must rebalance (see the module header). */
export function rebalanceProtocolFor(assignors: readonly PartitionAssignor[]): RebalanceProtocol {
  if (assignors.length === 0) return 'eager';
  return assignors.every((assignor) => assignor.rebalanceProtocol === 'cooperative') ? 'cooperative' : 'eager';
}

/**
 * The protocol a group uses, given each member's preference-ordered protocol list. Throws
 * INCONSISTENT_GROUP_PROTOCOL when the members have no protocol in common (the coordinator
 * refuses such a member's JoinGroup with the same code).
 */
export function selectProtocol(memberProtocols: readonly (readonly string[])[]): string {
  if (memberProtocols.length === 0) {
    throw new RaftkaError('INCONSISTENT_GROUP_PROTOCOL', 'cannot select a protocol for a group with no members');
  }
  const common = new Set(memberProtocols[0]);
  for (const protocols of memberProtocols.slice(1)) {
    const theirs = new Set(protocols);
    for (const protocol of common) if (!theirs.has(protocol)) common.delete(protocol);
  }
  if (common.size === 0) {
    throw new RaftkaError(
      'INCONSISTENT_GROUP_PROTOCOL',
      `the group's members share no partition assignor (they offer ${memberProtocols
        .map((protocols) => `[${protocols.join(', ')}]`)
        .join(', ')}); configure a common one on every member`,
    );
  }
  const votes = new Map<string, number>();
  for (const protocols of memberProtocols) {
    const choice = protocols.find((protocol) => common.has(protocol))!;
    votes.set(choice, (votes.get(choice) ?? 0) + 1);
  }
  const rankOf = (protocol: string): number => {
    const index = TIE_BREAK_ORDER.indexOf(protocol);
    return index === -1 ? TIE_BREAK_ORDER.length : index;
  };
  return [...votes.entries()].sort(
    ([a, aVotes], [b, bVotes]) => bVotes - aVotes || rankOf(a) - rankOf(b) || compareStrings(a, b),
  )[0]![0];
}
