// Idempotent-producer bookkeeping (KIP-98, with KIP-360's recovery): producer id and epoch, the
// next sequence per partition, and the batches in flight per partition.
//
// Why it matters: the broker keeps the sequence range of the last 5 batches per producer and
// partition, accepts only the next sequence, and answers a retried duplicate with its original
// offset. So the client must
//   - give each batch, once, a base sequence = the partition's next sequence, and never change it
//     while the batch may still be on the broker (a retry reuses it, which is what dedupes);
//   - keep at most 5 batches in flight per partition, sent in sequence order;
//   - after a failure it cannot explain, bump the epoch (InitProducerId with the current id and
//     epoch, KIP-360) and restart sequences at 0, since the broker's view is then unknown.
//
// Response handling (decideOnError):
//   DUPLICATE_SEQUENCE_NUMBER   the batch is already in the log: a success (offset unknown).
//   OUT_OF_ORDER_SEQUENCE_NUMBER
//                               if an earlier batch of the partition is still unresolved, this one
//                               was rejected only because of it: retry with the same sequence.
//                               Otherwise the sequence is unresolved: bump the epoch, then retry.
//   UNKNOWN_PRODUCER_ID         the broker lost our state (retention removed it, KIP-360): bump the
//                               epoch, then retry; sequences restart at 0.
//   INVALID_PRODUCER_EPOCH, PRODUCER_FENCED
//                               a newer producer with our id exists: fatal, the producer stops.
//   other retriable             retry with the same sequence.
//   other non-retriable         fail the batch; later in-flight batches will be rejected as out of
//                               order, so the epoch is bumped before the partition sends again.
//
// Pure state; the driver performs InitProducerId and calls `bumpEpoch` with the answer.

import { assertNever, invariant, RaftkaError, type ErrorCodeName } from '@raftka/protocol';
import { IDEMPOTENT_IN_FLIGHT_MAX } from '../options.js';
import { TopicPartitionMap } from './topic-partition-map.js';

/** Sequences are int32 and wrap to 0 after 2^31 - 1, as in Kafka's DefaultRecordBatch. */
export const SEQUENCE_MAX = 2 ** 31 - 1;

export interface SequencedBatch {
  topic: string;
  partition: number;
  recordCount: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
}

interface PartitionState {
  nextSequence: number;
  // Invariant: in base-sequence order (modulo wrap-around), at most IDEMPOTENT_IN_FLIGHT_MAX.
  inFlight: SequencedBatch[];
}

export type IdempotenceDecision =
  | { kind: 'success-duplicate' }
  | { kind: 'retry' }
  | { kind: 'bump-epoch-then-retry' }
  | { kind: 'fail-batch'; bumpEpoch: boolean }
  | { kind: 'fatal'; error: RaftkaError };

export function nextSequenceAfter(baseSequence: number, recordCount: number): number {
  const next = baseSequence + recordCount;
  return next > SEQUENCE_MAX ? next - SEQUENCE_MAX - 1 : next;
}

export class IdempotenceState {
  readonly #maxInFlight: number;
  #producerId = -1;
  #producerEpoch = -1;
  #epochBumpNeeded = false;
  readonly #partitions = new TopicPartitionMap<PartitionState>();

  constructor(maxInFlight: number = IDEMPOTENT_IN_FLIGHT_MAX) {
    invariant(maxInFlight >= 1 && maxInFlight <= IDEMPOTENT_IN_FLIGHT_MAX, `idempotent in-flight limit must be 1..${IDEMPOTENT_IN_FLIGHT_MAX}`);
    this.#maxInFlight = maxInFlight;
  }

  get producerId(): number {
    return this.#producerId;
  }

  get producerEpoch(): number {
    return this.#producerEpoch;
  }

  /** A producer id is known and no epoch bump is pending: batches may be sequenced. */
  get hasValidProducerId(): boolean {
    return this.#producerId >= 0 && !this.#epochBumpNeeded;
  }

  /** The driver should call InitProducerId (with the current id and epoch when this is a bump). */
  get needsProducerId(): boolean {
    return this.#producerId < 0 || this.#epochBumpNeeded;
  }

  /**
   * Installs the id and epoch from InitProducerId. A new id or epoch restarts every partition's
   * sequence at 0 (KIP-360); in-flight bookkeeping of the old epoch is dropped, and batches
   * still to be retried get new sequences when next sent (see sequenceFor).
   */
  setProducerId(producerId: number, producerEpoch: number): void {
    invariant(producerId >= 0 && producerEpoch >= 0, `invalid producer id ${producerId} / epoch ${producerEpoch}`);
    if (producerId !== this.#producerId || producerEpoch !== this.#producerEpoch) {
      this.#partitions.clear();
    }
    this.#producerId = producerId;
    this.#producerEpoch = producerEpoch;
    this.#epochBumpNeeded = false;
  }

  /**
   * Whether the partition may send `batch` (or, without one, a new batch) now: a producer id is
   * known, and either the batch is a retry already holding a sequence of this epoch (it keeps its
   * place among the unresolved batches) or fewer than the limit of batches are unresolved.
   */
  canSend(topic: string, partition: number, batch?: { producerId: number; producerEpoch: number; baseSequence: number }): boolean {
    if (!this.hasValidProducerId) return false;
    const state = this.#partitions.get(topic, partition);
    if (
      batch &&
      batch.baseSequence >= 0 &&
      batch.producerId === this.#producerId &&
      batch.producerEpoch === this.#producerEpoch &&
      state?.inFlight.some((other) => other.baseSequence === batch.baseSequence)
    ) {
      return true;
    }
    return (state?.inFlight.length ?? 0) < this.#maxInFlight;
  }

  /**
   * Stamps a batch about to be sent. A batch keeps the sequence it got in the current epoch (a
   * retry must reuse it so the broker can dedupe); a new batch, or one left over from an older
   * epoch, takes the partition's next sequence.
   */
  sequenceFor(batch: { topic: string; partition: number; recordCount: number; producerId: number; producerEpoch: number; baseSequence: number }): void {
    invariant(this.canSend(batch.topic, batch.partition, batch), () => `partition ${batch.topic}-${batch.partition} may not send now`);
    const state = this.#stateOf(batch.topic, batch.partition);
    const sameEpoch = batch.producerId === this.#producerId && batch.producerEpoch === this.#producerEpoch && batch.baseSequence >= 0;
    if (!sameEpoch) {
      batch.producerId = this.#producerId;
      batch.producerEpoch = this.#producerEpoch;
      batch.baseSequence = state.nextSequence;
      state.nextSequence = nextSequenceAfter(state.nextSequence, batch.recordCount);
    }
    // A retried batch goes back in sequence position; the in-flight list stays ordered.
    state.inFlight = state.inFlight.filter((other) => other.baseSequence !== batch.baseSequence);
    state.inFlight.push({ ...batch });
    state.inFlight.sort((a, b) => sequenceCompare(a.baseSequence, b.baseSequence, state.nextSequence));
  }

  /** The broker appended the batch. */
  onSuccess(batch: SequencedBatch): void {
    this.#removeInFlight(batch);
  }

  /** The batch's outcome is final (failed for good): forget it. */
  onFinalFailure(batch: SequencedBatch): void {
    this.#removeInFlight(batch);
  }

  /** What to do about a batch the broker answered with `code` (a failure). */
  decideOnError(batch: SequencedBatch, code: ErrorCodeName, retriable: boolean): IdempotenceDecision {
    if (batch.producerId !== this.#producerId || batch.producerEpoch !== this.#producerEpoch) {
      // The epoch moved on while this batch was in flight: its answer says nothing about the
      // current epoch, so the batch is simply sent again under the new one.
      return { kind: 'retry' };
    }
    switch (code) {
      case 'DUPLICATE_SEQUENCE_NUMBER':
        return { kind: 'success-duplicate' };
      case 'OUT_OF_ORDER_SEQUENCE_NUMBER': {
        const state = this.#partitions.get(batch.topic, batch.partition);
        const first = state?.inFlight[0];
        if (first && first.baseSequence !== batch.baseSequence) return { kind: 'retry' };
        this.#epochBumpNeeded = true;
        return { kind: 'bump-epoch-then-retry' };
      }
      case 'UNKNOWN_PRODUCER_ID':
        this.#epochBumpNeeded = true;
        return { kind: 'bump-epoch-then-retry' };
      case 'INVALID_PRODUCER_EPOCH':
      case 'PRODUCER_FENCED':
        return {
          kind: 'fatal',
          error: new RaftkaError(
            'PRODUCER_FENCED',
            `producer id ${this.#producerId} epoch ${this.#producerEpoch} was fenced by a newer producer with the same id (${code}); close this producer`,
            { retriable: false },
          ),
        };
      default:
        if (retriable) return { kind: 'retry' };
        // The broker did not take this sequence; every later batch now has a gap before it.
        this.#epochBumpNeeded = true;
        return { kind: 'fail-batch', bumpEpoch: true };
    }
  }

  /**
   * The outcome of a sequenced batch became unknowable to the broker's view (it expired after
   * being sent): the next batch would leave a gap, so the epoch must be bumped first (KIP-360).
   */
  requestEpochBump(): void {
    if (this.#producerId >= 0) this.#epochBumpNeeded = true;
  }

  /** Batches of the partition in flight, in sequence order (for inspection and tests). */
  inFlight(topic: string, partition: number): readonly SequencedBatch[] {
    return this.#partitions.get(topic, partition)?.inFlight ?? [];
  }

  nextSequence(topic: string, partition: number): number {
    return this.#partitions.get(topic, partition)?.nextSequence ?? 0;
  }

  #stateOf(topic: string, partition: number): PartitionState {
    let state = this.#partitions.get(topic, partition);
    if (!state) {
      state = { nextSequence: 0, inFlight: [] };
      this.#partitions.set(topic, partition, state);
    }
    return state;
  }

  #removeInFlight(batch: SequencedBatch): void {
    const state = this.#partitions.get(batch.topic, batch.partition);
    if (!state || batch.producerEpoch !== this.#producerEpoch || batch.producerId !== this.#producerId) return;
    state.inFlight = state.inFlight.filter((other) => other.baseSequence !== batch.baseSequence);
  }
}

/**
 * Orders two sequences that may straddle the wrap-around: sequences at or after `next` were
 * assigned before the wrap and come first.
 */
function sequenceCompare(a: number, b: number, next: number): number {
  const rank = (sequence: number) => (sequence >= next ? sequence - SEQUENCE_MAX - 1 : sequence);
  return rank(a) - rank(b);
}

// Keep the decision union exhaustive for callers that switch over it.
export function describeDecision(decision: IdempotenceDecision): string {
  switch (decision.kind) {
    case 'success-duplicate':
      return 'already appended (duplicate)';
    case 'retry':
      return 'retry with the same sequence';
    case 'bump-epoch-then-retry':
      return 'bump the producer epoch, then retry';
    case 'fail-batch':
      return 'fail the batch';
    case 'fatal':
      return `fatal: ${decision.error.message}`;
    default:
      return assertNever(decision, 'idempotence decision');
  }
}
