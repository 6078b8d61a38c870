// What the consumer knows about each partition it reads: the position (the next offset to
// return), how it got there, whether it is paused, and the partition's marks from the last fetch.
// A pure data structure; the Consumer drives it (Kafka's SubscriptionState).
//
// A partition's fetch state is one of:
//   awaiting-reset       no usable position: a ListOffsets lookup (earliest/latest) must set one.
//                        Entered on assignment without a position (auto.offset.reset),
//                        seekToBeginning/seekToEnd, and OFFSET_OUT_OF_RANGE.
//   awaiting-validation  the leader changed since the position was last confirmed, and the log
//                        may have been truncated under it: OffsetForLeaderEpoch must confirm the
//                        position's epoch still ends at or after it (KIP-320).
//   fetching             the position is valid; fetches may be sent.
// Transitions: assign -> awaiting-reset (or fetching after seek); reset done -> fetching;
// fetching -> awaiting-validation on a newer leader epoch or FENCED_LEADER_EPOCH;
// validation done -> fetching (position possibly moved back to the divergence point);
// any -> fetching on seek(offset); any -> awaiting-reset on seekToBeginning/End.
//
// In group mode the consumer feeds `assign` from the group's assignment and seeks newly assigned
// partitions to the group's committed offsets; nothing here depends on how partitions came.

import { invariant, RaftkaError } from '@raftka/protocol';
import type { TopicPartition } from '../cluster-client.js';

export type ResetStrategy = 'earliest' | 'latest';
export type AutoOffsetReset = ResetStrategy | 'none';

export type FetchState =
  | { kind: 'awaiting-reset'; strategy: ResetStrategy | undefined }
  | { kind: 'awaiting-validation' }
  | { kind: 'fetching' };

export interface PartitionState extends TopicPartition {
  fetchState: FetchState;
  /** The next offset poll returns. Invariant: defined unless fetchState is awaiting-reset. */
  position: number | undefined;
  /** Leader epoch of the record before the position (-1 when unknown), for KIP-320 checks. */
  positionEpoch: number;
  /** The leader epoch under which the position was last confirmed. */
  validatedLeaderEpoch: number;
  paused: boolean;
  highWatermark: number | undefined;
  logStartOffset: number | undefined;
  lastStableOffset: number | undefined;
  /** Earliest time the next reset or validation attempt may run (backoff after a failure). */
  nextAttemptMs: number;
}

/** The consumer has no position for partitions and auto.offset.reset is `none` (Kafka's NoOffsetForPartitionException). */
export class NoOffsetForPartitionError extends RaftkaError {
  readonly partitions: readonly TopicPartition[];
  constructor(partitions: readonly TopicPartition[]) {
    super(
      'OFFSET_OUT_OF_RANGE',
      `no position for ${partitions.map((p) => `${p.topic}-${p.partition}`).join(', ')} and autoOffsetReset is "none": call seek, seekToBeginning or seekToEnd first`,
      { retriable: false },
    );
    this.name = 'NoOffsetForPartitionError';
    this.partitions = partitions;
  }
}

/** The position is outside the log and auto.offset.reset is `none` (Kafka's OffsetOutOfRangeException). */
export class OffsetOutOfRangeError extends RaftkaError {
  readonly offsets: ReadonlyMap<string, number>;
  constructor(partition: TopicPartition, offset: number, detail: string) {
    super('OFFSET_OUT_OF_RANGE', `offset ${offset} of ${partition.topic}-${partition.partition} is out of range (${detail}) and autoOffsetReset is "none": seek to a valid offset`, {
      retriable: false,
    });
    this.name = 'OffsetOutOfRangeError';
    this.offsets = new Map([[`${partition.topic}-${partition.partition}`, offset]]);
  }
}

/** The leader's log no longer holds the consumed records (KIP-320 truncation) and auto.offset.reset is `none`. */
export class LogTruncationError extends RaftkaError {
  readonly divergentOffset: number;
  constructor(partition: TopicPartition, position: number, divergentOffset: number) {
    super(
      'OFFSET_OUT_OF_RANGE',
      `${partition.topic}-${partition.partition} was truncated below the position ${position} to ${divergentOffset} after a leader change: records may have been lost; seek to continue`,
      { retriable: false },
    );
    this.name = 'LogTruncationError';
    this.divergentOffset = divergentOffset;
  }
}

export function partitionName(partition: TopicPartition): string {
  return `${partition.topic}-${partition.partition}`;
}

export class SubscriptionState {
  readonly autoOffsetReset: AutoOffsetReset;
  // Insertion order is the assignment order, which fetches and polls rotate over.
  #partitions = new Map<string, PartitionState>();

  constructor(autoOffsetReset: AutoOffsetReset) {
    this.autoOffsetReset = autoOffsetReset;
  }

  /** Replaces the assignment; partitions kept keep their state. */
  assign(partitions: readonly TopicPartition[]): void {
    const next = new Map<string, PartitionState>();
    for (const { topic, partition } of partitions) {
      if (typeof topic !== 'string' || topic.length === 0 || !Number.isInteger(partition) || partition < 0) {
        throw new RaftkaError('INVALID_REQUEST', `cannot assign ${JSON.stringify({ topic, partition })}: need a topic name and a partition index >= 0`, { retriable: false });
      }
      const key = keyOf(topic, partition);
      next.set(key, this.#partitions.get(key) ?? newState(topic, partition));
    }
    this.#partitions = next;
  }

  assignment(): TopicPartition[] {
    return [...this.#partitions.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  states(): PartitionState[] {
    return [...this.#partitions.values()];
  }

  get(topic: string, partition: number): PartitionState | undefined {
    return this.#partitions.get(keyOf(topic, partition));
  }

  /** The state of an assigned partition; using an unassigned one is the caller's error. */
  require(topicPartition: TopicPartition): PartitionState {
    const state = this.get(topicPartition.topic, topicPartition.partition);
    if (!state) {
      throw new RaftkaError('INVALID_REQUEST', `${partitionName(topicPartition)} is not assigned to this consumer; assign it first`, { retriable: false });
    }
    return state;
  }

  seek(topicPartition: TopicPartition, offset: number, leaderEpoch = -1): void {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RaftkaError('INVALID_REQUEST', `seek offset must be a non-negative integer, got ${offset}`, { retriable: false });
    }
    const state = this.require(topicPartition);
    state.position = offset;
    state.positionEpoch = leaderEpoch;
    state.fetchState = { kind: 'fetching' };
  }

  requestReset(topicPartition: TopicPartition, strategy: ResetStrategy | undefined): void {
    const state = this.require(topicPartition);
    state.position = undefined;
    state.fetchState = { kind: 'awaiting-reset', strategy };
    state.nextAttemptMs = 0;
  }

  /** A reset's lookup came back; applies only if the partition still waits for that reset. */
  completeReset(state: PartitionState, strategy: ResetStrategy, offset: number, leaderEpoch: number): void {
    if (state.fetchState.kind !== 'awaiting-reset' || (state.fetchState.strategy ?? this.autoOffsetReset) !== strategy) return;
    invariant(offset >= 0, 'a reset offset is never negative');
    state.position = offset;
    state.positionEpoch = -1;
    state.validatedLeaderEpoch = leaderEpoch;
    state.fetchState = { kind: 'fetching' };
  }

  /** The leader epoch moved past the one the position was confirmed under: validate (KIP-320). */
  maybeRequireValidation(state: PartitionState, currentLeaderEpoch: number): void {
    if (state.fetchState.kind !== 'fetching' || currentLeaderEpoch <= state.validatedLeaderEpoch) return;
    if (state.positionEpoch < 0) {
      // Nothing consumed under a known epoch yet: there is nothing that could have diverged.
      state.validatedLeaderEpoch = currentLeaderEpoch;
      return;
    }
    state.fetchState = { kind: 'awaiting-validation' };
    state.nextAttemptMs = 0;
  }

  /** Advances the position past returned records. */
  advance(state: PartitionState, nextOffset: number, lastEpoch: number): void {
    invariant(state.position !== undefined && nextOffset >= state.position, () => `position of ${partitionName(state)} may only move forward`);
    state.position = nextOffset;
    if (lastEpoch >= 0) state.positionEpoch = lastEpoch;
  }

  pause(topicPartition: TopicPartition): void {
    this.require(topicPartition).paused = true;
  }

  resume(topicPartition: TopicPartition): void {
    this.require(topicPartition).paused = false;
  }
}

function newState(topic: string, partition: number): PartitionState {
  return {
    topic,
    partition,
    fetchState: { kind: 'awaiting-reset', strategy: undefined },
    position: undefined,
    positionEpoch: -1,
    validatedLeaderEpoch: -1,
    paused: false,
    highWatermark: undefined,
    logStartOffset: undefined,
    lastStableOffset: undefined,
    nextAttemptMs: 0,
  };
}

function keyOf(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
