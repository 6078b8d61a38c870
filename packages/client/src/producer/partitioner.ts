// Choosing a partition for a record, the way Kafka's Java producer does, so a keyed record lands
// on the same partition whichever client wrote it.
//
// - An explicit partition is respected as given (checked against the partition count).
// - A keyed record goes to toPositive(murmur2(key)) % numPartitions over ALL partitions, available
//   or not: a key's partition must not move when a leader is briefly unavailable.
// - A keyless record uses the sticky partitioner (KIP-480): it stays on one partition until the
//   batch there is full or sent, then picks another at random (from the available partitions when
//   any are known). Batches fill faster than with round-robin, so latency drops at low rates.
//
// Pure: randomness is injected.

import { partitionForKey, RaftkaError } from '@raftka/protocol';

/** A random number in [0, 1), as Math.random returns. Injected so tests are deterministic. */
export type RandomSource = () => number;

export interface PartitionInput {
  topic: string;
  key?: Buffer | string | null;
  /** Explicit partition, if the caller chose one. */
  partition?: number;
}

export interface TopicPartitionInfo {
  /** Number of partitions the topic has. */
  numPartitions: number;
  /** Partitions that currently have a leader; empty when unknown. */
  availablePartitions: readonly number[];
}

export class StickyPartitioner {
  readonly #random: RandomSource;
  // Invariant: a value is a partition index < the topic's partition count when it was chosen.
  readonly #stickyByTopic = new Map<string, number>();

  constructor(random: RandomSource) {
    this.#random = random;
  }

  /** The partition for a record. Throws UNKNOWN_TOPIC_OR_PARTITION for an explicit partition out of range. */
  partition(input: PartitionInput, info: TopicPartitionInfo): number {
    if (info.numPartitions <= 0) {
      throw new RaftkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${input.topic} has no partitions in the current metadata`);
    }
    if (input.partition !== undefined) {
      if (!Number.isInteger(input.partition) || input.partition < 0 || input.partition >= info.numPartitions) {
        throw new RaftkaError(
          'UNKNOWN_TOPIC_OR_PARTITION',
          `partition ${input.partition} of topic ${input.topic} does not exist: the topic has ${info.numPartitions} partitions`,
          { retriable: false },
        );
      }
      return input.partition;
    }
    if (input.key !== undefined && input.key !== null) return this.keyedPartition(input.key, info.numPartitions);
    const sticky = this.stickyPartition(input.topic, info.numPartitions);
    if (sticky >= 0) return sticky;
    return this.#pickNew(input.topic, info, undefined);
  }

  /** murmur2 placement of a keyed record over all `numPartitions` (> 0) partitions. */
  keyedPartition(key: Buffer | Uint8Array | string, numPartitions: number): number {
    return partitionForKey(typeof key === 'string' ? Buffer.from(key, 'utf8') : key, numPartitions);
  }

  /**
   * The topic's sticky partition when one is chosen and below `numPartitions`, otherwise -1 (the
   * caller then asks `partition`, which picks one). The producer's per-record path: no allocation.
   */
  stickyPartition(topic: string, numPartitions: number): number {
    const sticky = this.#stickyByTopic.get(topic);
    return sticky !== undefined && sticky < numPartitions ? sticky : -1;
  }

  /**
   * Called when a keyless record opened a new batch on `previousPartition` (the old batch was full
   * or sent): move the topic's sticky partition elsewhere. Kafka calls this `onNewBatch`.
   * Returns the new sticky partition.
   */
  onNewBatch(topic: string, previousPartition: number, info: TopicPartitionInfo): number {
    const sticky = this.#stickyByTopic.get(topic);
    // Only move when the batch that filled is the sticky one; another keyless append may already
    // have moved it, and moving twice would skip a partition for no reason.
    if (sticky !== undefined && sticky !== previousPartition) return sticky;
    return this.#pickNew(topic, info, previousPartition);
  }

  #pickNew(topic: string, info: TopicPartitionInfo, previous: number | undefined): number {
    const candidates = info.availablePartitions.length > 0 ? info.availablePartitions : rangeOf(info.numPartitions);
    let choice: number;
    if (candidates.length === 1) {
      choice = candidates[0]!;
    } else {
      // Pick uniformly among the candidates other than the previous partition.
      const others = previous === undefined ? candidates : candidates.filter((partition) => partition !== previous);
      choice = others[Math.min(others.length - 1, Math.floor(this.#random() * others.length))]!;
    }
    this.#stickyByTopic.set(topic, choice);
    return choice;
  }
}

function rangeOf(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index);
}
