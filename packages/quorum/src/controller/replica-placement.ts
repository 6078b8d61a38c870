// Replica placement for new partitions: Kafka's round-robin, rack-aware assignment
// (AdminUtils.assignReplicasToBrokers), which the KRaft controller still uses for topics created
// without an explicit assignment.
//
// - The first replica (the preferred leader) of partition p is broker (p + start) mod n, so the
//   leaders of a topic's partitions are spread evenly over the brokers.
// - The other replicas follow at a shift that grows each time the partition index wraps around
//   the broker list, so followers are spread too (not always "the next broker").
// - With racks, the broker list is first arranged rack-alternated (one broker of each rack in
//   turn), and each further replica skips brokers on a rack that already holds a replica until
//   every rack does, so a partition's replicas land on distinct racks whenever that is possible.
//
// A broker without `broker.rack` counts as being on a rack of its own ('') when others have racks;
// Kafka refuses such mixed clusters, Raftka prefers to place anyway.
//
// `random` picks the start index and shift (as Kafka does) so that many topics created one after
// another do not all put their first leader on the same broker; it is injected, so placement is
// reproducible.

import { invariant } from '@raftka/protocol';

export interface PlacementBroker {
  brokerId: number;
  rack: string | undefined;
}

export interface PlacementRequest {
  /** Brokers eligible for new replicas (unfenced, not shutting down). */
  brokers: readonly PlacementBroker[];
  partitionCount: number;
  replicationFactor: number;
  /** First partition id to place (non-zero when partitions are added to an existing topic). */
  startPartitionId?: number;
  /** Fixes the start index and shift instead of drawing them (CreatePartitions keeps the topic's). */
  fixedStartIndex?: number;
  random: () => number;
}

/** Replica lists of partitions startPartitionId .. startPartitionId + partitionCount - 1. */
export function placeReplicas(request: PlacementRequest): number[][] {
  const { replicationFactor } = request;
  invariant(replicationFactor >= 1 && replicationFactor <= request.brokers.length, () => `replication factor ${replicationFactor} over ${request.brokers.length} brokers`);
  const hasRacks = request.brokers.some((broker) => broker.rack !== undefined);
  return hasRacks ? placeRackAware(request) : placePlain(request);
}

function drawIndex(request: PlacementRequest, brokerCount: number): number {
  return request.fixedStartIndex !== undefined ? request.fixedStartIndex % brokerCount : Math.floor(request.random() * brokerCount);
}

/** Index of the (replicaIndex + 2)-th replica: never the first replica's index itself. */
function replicaIndex(firstReplicaIndex: number, secondReplicaShift: number, replicaIndex: number, brokerCount: number): number {
  const shift = 1 + ((secondReplicaShift + replicaIndex) % (brokerCount - 1));
  return (firstReplicaIndex + shift) % brokerCount;
}

function placePlain(request: PlacementRequest): number[][] {
  const brokerIds = request.brokers.map((broker) => broker.brokerId).sort((a, b) => a - b);
  const brokerCount = brokerIds.length;
  const startIndex = drawIndex(request, brokerCount);
  let nextReplicaShift = drawIndex(request, brokerCount);
  let partitionId = request.startPartitionId ?? 0;
  const assignments: number[][] = [];
  for (let placed = 0; placed < request.partitionCount; placed++, partitionId++) {
    if (partitionId > 0 && partitionId % brokerCount === 0) nextReplicaShift++;
    const firstReplicaIndex = (partitionId + startIndex) % brokerCount;
    const replicas = [brokerIds[firstReplicaIndex]!];
    for (let j = 0; j < request.replicationFactor - 1; j++) {
      replicas.push(brokerIds[replicaIndex(firstReplicaIndex, nextReplicaShift, j, brokerCount)]!);
    }
    assignments.push(replicas);
  }
  return assignments;
}

/** Brokers ordered so that consecutive ones are on different racks: r1b1, r2b1, r3b1, r1b2, ... */
function rackAlternatedBrokers(brokers: readonly PlacementBroker[]): PlacementBroker[] {
  const byRack = new Map<string, PlacementBroker[]>();
  for (const broker of [...brokers].sort((a, b) => a.brokerId - b.brokerId)) {
    const rack = broker.rack ?? '';
    let list = byRack.get(rack);
    if (list === undefined) {
      list = [];
      byRack.set(rack, list);
    }
    list.push(broker);
  }
  const racks = [...byRack.keys()].sort();
  const arranged: PlacementBroker[] = [];
  for (let round = 0; arranged.length < brokers.length; round++) {
    for (const rack of racks) {
      const broker = byRack.get(rack)![round];
      if (broker !== undefined) arranged.push(broker);
    }
  }
  return arranged;
}

function placeRackAware(request: PlacementRequest): number[][] {
  const arranged = rackAlternatedBrokers(request.brokers);
  const brokerCount = arranged.length;
  const rackCount = new Set(arranged.map((broker) => broker.rack ?? '')).size;
  const startIndex = drawIndex(request, brokerCount);
  let nextReplicaShift = drawIndex(request, brokerCount);
  let partitionId = request.startPartitionId ?? 0;
  const assignments: number[][] = [];
  for (let placed = 0; placed < request.partitionCount; placed++, partitionId++) {
    if (partitionId > 0 && partitionId % brokerCount === 0) nextReplicaShift++;
    const firstReplicaIndex = (partitionId + startIndex) % brokerCount;
    const leader = arranged[firstReplicaIndex]!;
    const replicas = [leader.brokerId];
    const racksWithReplicas = new Set([leader.rack ?? '']);
    const brokersWithReplicas = new Set([leader.brokerId]);
    let k = 0;
    for (let j = 0; j < request.replicationFactor - 1; j++) {
      // Terminates: once every rack holds a replica the rack condition is always true, and a
      // broker without a replica exists because replicationFactor <= brokerCount.
      for (;;) {
        const broker = arranged[replicaIndex(firstReplicaIndex, nextReplicaShift * rackCount, k, brokerCount)]!;
        k++;
        const rack = broker.rack ?? '';
        const rackOk = !racksWithReplicas.has(rack) || racksWithReplicas.size === rackCount;
        const brokerOk = !brokersWithReplicas.has(broker.brokerId) || brokersWithReplicas.size === brokerCount;
        if (rackOk && brokerOk) {
          replicas.push(broker.brokerId);
          racksWithReplicas.add(rack);
          brokersWithReplicas.add(broker.brokerId);
          break;
        }
      }
    }
    assignments.push(replicas);
  }
  return assignments;
}
