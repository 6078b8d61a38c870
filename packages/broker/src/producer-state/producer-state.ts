// Idempotent-producer state of one partition (Kafka's ProducerStateManager): for every producer
// id, its epoch and the metadata of its last 5 batches, so that the leader rejects sequence gaps
// and answers a retried batch with the offsets it got the first time instead of writing it twice.
//
// One rule keeps leader, follower and recovery in agreement: state changes ONLY through
// `applyBatch`, fed with batch headers as they sit in the log (offsets assigned), in offset order.
// The leader validates a produce with `validateAppend` (no change), appends, then applies the
// appended headers; a follower applies what it appends; recovery loads a snapshot and applies
// the log suffix after it. So "replay equals live state" holds by construction.
//
// The leader must run validateAppend -> log append -> applyBatch for one partition as one
// critical section (Kafka holds the partition lock): a second produce validated in between
// would be checked against stale sequences.
//
// Validation rules (Kafka 2.5+, KIP-360 era):
//   - newer epoch: the producer was bumped; its sequence restarts, so the first batch must be seq 0
//     (else OUT_OF_ORDER_SEQUENCE_NUMBER);
//   - older epoch: a zombie producer instance: INVALID_PRODUCER_EPOCH;
//   - same epoch: a batch identical (first and last sequence) to one of the last 5 is a DUPLICATE
//     answered with its original offsets; otherwise firstSeq must be lastSeq + 1 (with
//     wraparound after Int32 max to 0), else OUT_OF_ORDER_SEQUENCE_NUMBER;
//   - unknown producer id (never seen, expired, or its batches deleted by retention) with seq != 0:
//     UNKNOWN_PRODUCER_ID, which makes the producer reset its sequence (or bump its epoch) rather
//     than have the broker guess where the sequence stood.

import { invariant, NO_PRODUCER_ID, isControlBatch, type ErrorCodeName, type RecordBatchHeader } from '@raftka/protocol';

/** Batches remembered per producer for duplicate detection (the producer's in-flight maximum). */
export const PRODUCER_BATCHES_RETAINED_MAX = 5;
/** producer.id.expiration.ms default: one day. */
export const PRODUCER_ID_EXPIRATION_MS_DEFAULT = 86_400_000;
export const SEQUENCE_MAX = 0x7fffffff;

/** Kafka's DefaultRecordBatch.incrementSequence: sequences wrap from Int32 max to 0. */
export function incrementSequence(sequence: number, increment: number): number {
  if (sequence > SEQUENCE_MAX - increment) return increment - (SEQUENCE_MAX - sequence) - 1;
  return sequence + increment;
}

export interface BatchMetadata {
  firstSeq: number;
  lastSeq: number;
  firstOffset: number;
  lastOffset: number;
  timestampMs: number;
}

export interface ProducerEntry {
  producerId: bigint;
  producerEpoch: number;
  // Invariant: at most PRODUCER_BATCHES_RETAINED_MAX, oldest first, consecutive sequences.
  batches: BatchMetadata[];
  /** Max timestamp of the producer's latest batch; expiry counts from here. */
  lastTimestampMs: number;
}

/** The header fields producer validation reads (a RecordBatchHeader has them all). */
export type ProducerBatch = Pick<
  RecordBatchHeader,
  'producerId' | 'producerEpoch' | 'baseSequence' | 'lastOffsetDelta' | 'attributes'
>;

/** A batch as stored in the log: offsets assigned. */
export type LoggedBatch = ProducerBatch & Pick<RecordBatchHeader, 'baseOffset' | 'maxTimestamp'>;

export type AppendValidation =
  | { kind: 'append' }
  /** A retry of batches already in the log: answer with these offsets, append nothing. */
  | { kind: 'duplicate'; firstOffset: number; lastOffset: number }
  | { kind: 'error'; code: ErrorCodeName; message: string; batchIndex: number };

export interface ProducerStateOptions {
  producerIdExpirationMs?: number;
}

export class ProducerStateManager {
  readonly producerIdExpirationMs: number;
  private readonly producers = new Map<bigint, ProducerEntry>();
  // Invariant: every applied batch ends below mapEndOffset; batches are applied in offset order.
  private mapEndOffsetValue = 0;

  constructor(options: ProducerStateOptions = {}) {
    this.producerIdExpirationMs = options.producerIdExpirationMs ?? PRODUCER_ID_EXPIRATION_MS_DEFAULT;
    invariant(this.producerIdExpirationMs > 0, 'producer.id.expiration.ms is positive');
  }

  /** The offset up to which the log has been applied (exclusive). */
  get mapEndOffset(): number {
    return this.mapEndOffsetValue;
  }

  get producerCount(): number {
    return this.producers.size;
  }

  entry(producerId: bigint): Readonly<ProducerEntry> | undefined {
    return this.producers.get(producerId);
  }

  /** All entries, ordered by producer id (a canonical form for comparisons and snapshots). */
  entries(): ProducerEntry[] {
    return [...this.producers.values()]
      .sort((a, b) => (a.producerId < b.producerId ? -1 : a.producerId > b.producerId ? 1 : 0))
      .map((entry) => ({ ...entry, batches: entry.batches.map((batch) => ({ ...batch })) }));
  }

  /**
   * Checks the batches of one produce to this partition, in order, as if each earlier one had
   * been appended. Changes nothing. A duplicate answers the whole request (Kafka: a retry
   * carries the same batches it carried the first time).
   */
  validateAppend(batches: readonly ProducerBatch[]): AppendValidation {
    // Entries as they would be after the earlier batches of this request.
    // Allocated only for requests with several idempotent batches (the common case has one).
    let staged: Map<bigint, { epoch: number; lastSeq: number | undefined }> | undefined;
    for (let index = 0; index < batches.length; index++) {
      const batch = batches[index]!;
      if (batch.producerId === NO_PRODUCER_ID || isControlBatch(batch.attributes)) continue;
      const firstSeq = batch.baseSequence;
      const lastSeq = incrementSequence(firstSeq, batch.lastOffsetDelta);
      const entry = this.producers.get(batch.producerId);
      const stagedEntry = staged?.get(batch.producerId);
      const current = stagedEntry ?? (entry === undefined ? undefined : { epoch: entry.producerEpoch, lastSeq: entry.batches.at(-1)?.lastSeq });
      if (current === undefined) {
        if (firstSeq !== 0) {
          return validationError(index, 'UNKNOWN_PRODUCER_ID', `producer ${batch.producerId} is unknown to this partition (expired or its records were deleted) and sent sequence ${firstSeq}; reset the producer's sequence`);
        }
      } else if (batch.producerEpoch < current.epoch) {
        return validationError(index, 'INVALID_PRODUCER_EPOCH', `producer ${batch.producerId} epoch ${batch.producerEpoch} is older than the current epoch ${current.epoch}: a newer instance of this producer exists; close this one`);
      } else if (batch.producerEpoch > current.epoch) {
        if (firstSeq !== 0) {
          return validationError(index, 'OUT_OF_ORDER_SEQUENCE_NUMBER', `producer ${batch.producerId} started epoch ${batch.producerEpoch} with sequence ${firstSeq}; a new epoch starts at sequence 0`);
        }
      } else {
        if (stagedEntry === undefined && entry !== undefined) {
          const duplicate = entry.batches.find((meta) => meta.firstSeq === firstSeq && meta.lastSeq === lastSeq);
          if (duplicate !== undefined) return { kind: 'duplicate', firstOffset: duplicate.firstOffset, lastOffset: duplicate.lastOffset };
        }
        // An entry with no batches (its epoch came from a control batch) accepts any sequence.
        if (current.lastSeq !== undefined && firstSeq !== incrementSequence(current.lastSeq, 1)) {
          return validationError(index, 'OUT_OF_ORDER_SEQUENCE_NUMBER', `producer ${batch.producerId} sent sequence ${firstSeq} but ${incrementSequence(current.lastSeq, 1)} was expected; earlier batches were lost, so the producer must fail them and reset`);
        }
      }
      if (index < batches.length - 1) (staged ??= new Map()).set(batch.producerId, { epoch: batch.producerEpoch, lastSeq });
    }
    return { kind: 'append' };
  }

  /**
   * Applies one batch as stored in the log (leader after its append, follower after its append,
   * recovery replay). Batches below `mapEndOffset` were applied already and are skipped.
   */
  applyBatch(batch: LoggedBatch): void {
    const lastOffset = batch.baseOffset + batch.lastOffsetDelta;
    if (lastOffset < this.mapEndOffsetValue) return;
    invariant(batch.baseOffset >= this.mapEndOffsetValue, () => `batch at ${batch.baseOffset} overlaps producer state applied up to ${this.mapEndOffsetValue}`);
    this.mapEndOffsetValue = lastOffset + 1;
    if (batch.producerId === NO_PRODUCER_ID) return;
    let entry = this.producers.get(batch.producerId);
    if (entry !== undefined && batch.producerEpoch < entry.producerEpoch) return; // a fenced zombie's batch written by an old leader
    if (entry === undefined) {
      entry = { producerId: batch.producerId, producerEpoch: batch.producerEpoch, batches: [], lastTimestampMs: batch.maxTimestamp };
      this.producers.set(batch.producerId, entry);
    }
    if (batch.producerEpoch > entry.producerEpoch) {
      entry.producerEpoch = batch.producerEpoch;
      entry.batches = [];
    }
    entry.lastTimestampMs = batch.maxTimestamp;
    if (isControlBatch(batch.attributes)) return; // transaction markers carry no sequence
    entry.batches.push({
      firstSeq: batch.baseSequence,
      lastSeq: incrementSequence(batch.baseSequence, batch.lastOffsetDelta),
      firstOffset: batch.baseOffset,
      lastOffset,
      timestampMs: batch.maxTimestamp,
    });
    if (entry.batches.length > PRODUCER_BATCHES_RETAINED_MAX) entry.batches.shift();
  }

  /** Applies several batches (headers read from the log), in order. */
  applyBatches(batches: Iterable<LoggedBatch>): void {
    for (const batch of batches) this.applyBatch(batch);
  }

  /** Forgets producers idle for producer.id.expiration.ms. Returns how many. */
  removeExpiredProducers(nowMs: number): number {
    let removed = 0;
    for (const [producerId, entry] of this.producers) {
      if (nowMs - entry.lastTimestampMs >= this.producerIdExpirationMs) {
        this.producers.delete(producerId);
        removed++;
      }
    }
    return removed;
  }

  /**
   * The log start offset moved (retention, DeleteRecords): producers whose last batch is gone
   * are forgotten, as a rebuild from the remaining log would not know them either.
   */
  truncateHead(logStartOffset: number): void {
    for (const [producerId, entry] of this.producers) {
      const last = entry.batches.at(-1);
      if (last === undefined || last.lastOffset < logStartOffset) this.producers.delete(producerId);
      else entry.batches = entry.batches.filter((batch) => batch.lastOffset >= logStartOffset);
    }
    if (this.mapEndOffsetValue < logStartOffset) this.mapEndOffsetValue = logStartOffset;
  }

  /** The state as a snapshot at `mapEndOffset` (write it with writeSnapshotFile). */
  snapshot(): { offset: number; entries: ProducerEntry[] } {
    return { offset: this.mapEndOffsetValue, entries: this.entries() };
  }

  /** Replaces the whole state (loading a snapshot). */
  restore(entries: readonly ProducerEntry[], mapEndOffset: number): void {
    this.producers.clear();
    for (const entry of entries) {
      invariant(entry.batches.length <= PRODUCER_BATCHES_RETAINED_MAX, 'a snapshot entry holds at most the retained batches');
      this.producers.set(entry.producerId, { ...entry, batches: entry.batches.map((batch) => ({ ...batch })) });
    }
    this.mapEndOffsetValue = mapEndOffset;
  }

  /** Empties the state, positioned at `offset` (a rebuild from the log starts here). */
  reset(offset: number): void {
    this.producers.clear();
    this.mapEndOffsetValue = offset;
  }
}

function validationError(batchIndex: number, code: ErrorCodeName, message: string): AppendValidation {
  return { kind: 'error', code, message, batchIndex };
}
