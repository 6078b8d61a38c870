// Builds the PartitionChangeRecord that moves a partition to a new ISR and, when needed, a new
// leader (Kafka's PartitionChangeBuilder, simplified).
//
// Election rules (KIP-631, Kafka's ReplicationControlManager):
// - "online" election keeps the current leader while it is active and in the ISR; otherwise the
//   new leader is the first replica *in assignment order* that is in the ISR and active. Choosing
//   from the ISR is what makes a committed (acknowledged with acks=all) record survive: every ISR
//   member has it.
// - When no ISR member is active, an unclean election (unclean.leader.election.enable=true) picks
//   the first active replica in assignment order and resets the ISR to it alone, trading
//   acknowledged records for availability. Without it the partition stays leaderless (-1) until
//   an ISR member returns.
// - "preferred" election moves leadership to replicas[0] when it is active and in the ISR.
// - Invariant: the ISR never becomes empty. When the last ISR member is removed (fenced), it stays
//   in the ISR and the partition becomes leaderless, so that member, which holds every committed
//   record, is elected again when it comes back (Kafka does the same).
//
// A leader change bumps the leader epoch when the record is applied (see MetadataImage); any change
// bumps the partition epoch.

import type { PartitionChangeRecord } from '../metadata/metadata-records.js';
import { NO_LEADER, type PartitionState } from '../metadata/metadata-image.js';

export type ElectionKind = 'online' | 'preferred';

export interface PartitionChangeOptions {
  /** Broker to take out of the ISR (fenced or shutting down). */
  removeFromIsr?: number;
  /** A new ISR proposed as a whole (AlterPartition); applied before the election. */
  targetIsr?: readonly number[];
  election: ElectionKind;
  /** May this broker lead or join the ISR? (unfenced and not shutting down, pending changes included) */
  isActive: (brokerId: number) => boolean;
  uncleanElectionAllowed: boolean;
}

/** The change to apply, or `undefined` when the partition already has the wanted state. */
export function buildPartitionChange(partition: PartitionState, options: PartitionChangeOptions): PartitionChangeRecord | undefined {
  let isr: readonly number[] = options.targetIsr ?? partition.isr;
  if (options.removeFromIsr !== undefined && isr.includes(options.removeFromIsr)) {
    const remaining = isr.filter((brokerId) => brokerId !== options.removeFromIsr);
    if (remaining.length > 0) isr = remaining;
  }

  let leader = partition.leader;
  const leaderAcceptable = leader !== NO_LEADER && isr.includes(leader) && options.isActive(leader);
  const preferred = partition.replicas[0]!;
  if (options.election === 'preferred' && preferred !== leader && isr.includes(preferred) && options.isActive(preferred)) {
    leader = preferred;
  } else if (!leaderAcceptable) {
    leader = partition.replicas.find((brokerId) => isr.includes(brokerId) && options.isActive(brokerId)) ?? NO_LEADER;
    if (leader === NO_LEADER && options.uncleanElectionAllowed) {
      const unclean = partition.replicas.find((brokerId) => options.isActive(brokerId));
      if (unclean !== undefined) {
        leader = unclean;
        isr = [unclean];
      }
    }
  }

  const isrChanged = !sameMembers(isr, partition.isr);
  const leaderChanged = leader !== partition.leader;
  if (!isrChanged && !leaderChanged) return undefined;
  const change: PartitionChangeRecord = { type: 'partitionChange', topicId: partition.topicId, partitionId: partition.partitionId };
  if (leaderChanged) change.leader = leader;
  if (isrChanged) change.isr = [...isr];
  return change;
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}
