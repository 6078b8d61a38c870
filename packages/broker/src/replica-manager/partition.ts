// One partition replica hosted by this broker (Kafka's Partition): its log, its idempotent-producer
// state, and its role as the metadata log last assigned it.
//
// Role table (changed only by the replica manager, applying metadata, under `withLock`):
//   (new)    --metadata names us leader-->    leader    (a new LeaderReplicaState per leader epoch)
//   (new)    --metadata names us follower-->  follower  (the fetcher reconciles, then fetches)
//   leader   --new leader / new epoch-->      follower
//   follower --metadata names us leader-->    leader
//   follower --new leader / new epoch-->      follower  (a new FollowerReplicaState in the fetcher)
//   any      --replica removed / topic deleted--> stopped (the object is dropped)
// (Becoming leader passes through `follower` while appends of an older leadership settle.)
// The same leader epoch with a new ISR or partition epoch keeps the LeaderReplicaState and feeds
// it the committed state (KIP-497).
//
// The lock serialises what must not interleave on one replica: role changes, follower appends and
// truncations (so a fetch response from an old leader never lands after a role change), and the
// validate -> append -> apply sequence of idempotent produces (a second produce validated in
// between would be checked against stale sequences). Non-idempotent leader appends skip it so
// that concurrent produces still coalesce in the log's group commit.

import { NO_PRODUCER_ID, RaftkaError, batchesIn, invariant, type RecordBatchHeader } from '@raftka/protocol';
import type { AppendResult, PartitionLog } from '../log/partition-log.js';
import { partitionKey, type PurgatoryKey } from '../purgatory/purgatory.js';
import { ProducerStateManager } from '../producer-state/producer-state.js';
import { logHeaderSource, rebuildProducerState } from '../producer-state/rebuild.js';
import { deleteSnapshotsAbove, deleteSnapshotsExceptNewest, writeSnapshotFile } from '../producer-state/snapshot.js';
import { followerHighWatermark } from '../replica/follower-replica-state.js';
import type { LeaderReplicaState } from '../replica/leader-replica-state.js';

export type PartitionRole =
  | { kind: 'leader'; state: LeaderReplicaState }
  /** `leaderId` is NO_LEADER (-1) while the partition has no leader. */
  | { kind: 'follower'; leaderId: number; leaderEpoch: number }
  | { kind: 'stopped' };

/** Recent appends remembered for fetch.min.bytes estimates; older ones count as "plenty". */
export const APPEND_HISTORY_ENTRIES_MAX = 4096;

export class Partition {
  readonly topic: string;
  readonly topicId: string;
  readonly partitionId: number;
  readonly key: PurgatoryKey;
  readonly log: PartitionLog;
  readonly producerState = new ProducerStateManager();
  /** min.insync.replicas of the topic when this replica was opened. */
  readonly minInsyncReplicas: number;
  role: PartitionRole = { kind: 'follower', leaderId: -1, leaderEpoch: -1 };
  /** No AlterPartition for this replica before this time (set after a failed one). */
  alterPartitionNotBeforeMs = 0;
  private lockChain: Promise<void> = Promise.resolve();
  /** Leader appends taken without the lock and not yet settled (see `trackAppend`). */
  private readonly appendsInFlight = new Set<Promise<unknown>>();
  // Invariant: end offsets strictly increase; cumulative bytes never decrease; the first entry is
  // the oldest end offset whose cumulative byte count is known.
  private readonly historyEnds: number[] = [];
  private readonly historyBytes: number[] = [];

  private constructor(args: { topic: string; topicId: string; partitionId: number; log: PartitionLog; minInsyncReplicas: number }) {
    this.topic = args.topic;
    this.topicId = args.topicId;
    this.partitionId = args.partitionId;
    this.key = partitionKey(args.topic, args.partitionId);
    this.log = args.log;
    this.minInsyncReplicas = args.minInsyncReplicas;
    this.resetAppendHistory();
  }

  /**
   * Wraps an opened log: rebuilds the producer state from it and restores the high watermark
   * from its checkpoint (high-watermark-checkpoint.ts), or from the log start offset without one.
   * Never above the log end: a checkpoint older than a truncation cannot expose a missing offset.
   */
  static async open(args: {
    topic: string;
    topicId: string;
    partitionId: number;
    log: PartitionLog;
    minInsyncReplicas: number;
    checkpointedHighWatermark?: number | undefined;
  }): Promise<Partition> {
    const partition = new Partition(args);
    const { log } = args;
    log.updateHighWatermark(Math.max(log.logStartOffset, Math.min(args.checkpointedHighWatermark ?? 0, log.logEndOffset)));
    await partition.rebuildProducerState();
    return partition;
  }

  /** Runs `operation` with this replica's lock held. */
  withLock<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.lockChain.then(operation);
    this.lockChain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  // ---- leader side ----

  /** Remembers a leader append made without the lock, so that a role change can wait for it. */
  trackAppend<T>(append: Promise<T>): Promise<T> {
    this.appendsInFlight.add(append);
    const forget = (): void => {
      this.appendsInFlight.delete(append);
    };
    append.then(forget, forget);
    return append;
  }

  /**
   * Resolves once every leader append started so far has settled. A role change waits for it
   * after changing the role: the new leader epoch must start after the last batch of the old one
   * (KIP-101), and a follower must not truncate while an old leader append may still land.
   */
  async appendsSettled(): Promise<void> {
    await Promise.allSettled([...this.appendsInFlight]);
  }

  /**
   * Headers of the batches of a produce, checking the structure only (the log checks CRCs and
   * sizes when it appends). Throws CORRUPT_MESSAGE when the bytes are not whole batches.
   */
  static produceHeaders(records: Buffer): RecordBatchHeader[] {
    const headers: RecordBatchHeader[] = [];
    let end = 0;
    for (const { header, position } of batchesIn(records)) {
      headers.push(header);
      end = position + header.sizeInBytes;
    }
    if (records.length === 0) throw new RaftkaError('CORRUPT_MESSAGE', 'the request holds no record batch for this partition; send at least one');
    if (headers.length === 0 || end !== records.length) {
      throw new RaftkaError('CORRUPT_MESSAGE', `the records end in ${records.length - end} bytes that are not a whole record batch; the producer must send whole RecordBatch v2 batches`);
    }
    return headers;
  }

  static isIdempotent(headers: readonly RecordBatchHeader[]): boolean {
    return headers.some((header) => header.producerId !== NO_PRODUCER_ID);
  }

  /** After a leader append: the batches (offsets now assigned in place) enter the producer state. */
  applyLeaderAppend(records: Buffer, result: AppendResult): void {
    for (const { header } of batchesIn(records)) this.producerState.applyBatch(header);
    this.recordAppend(result.logEndOffset, records.length);
  }

  /** Non-idempotent leader appends skip the producer state; only the byte history learns of them. */
  recordAppend(endOffset: number, bytes: number): void {
    const lastEnd = this.historyEnds.at(-1);
    if (lastEnd !== undefined && endOffset <= lastEnd) return;
    this.historyEnds.push(endOffset);
    this.historyBytes.push((this.historyBytes.at(-1) ?? 0) + bytes);
    if (this.historyEnds.length > APPEND_HISTORY_ENTRIES_MAX) {
      this.historyEnds.shift();
      this.historyBytes.shift();
    }
  }

  /**
   * Bytes appended between offsets `from` and `to` (fetch.min.bytes checks, no disk access).
   * An offset older than the remembered history counts as plenty of bytes: reading it returns data.
   */
  bytesBetween(from: number, to: number): number {
    if (to <= from) return 0;
    const first = this.historyEnds[0];
    if (first === undefined || from < first) return Number.MAX_SAFE_INTEGER;
    return this.cumulativeBytesAt(to) - this.cumulativeBytesAt(from);
  }

  private cumulativeBytesAt(offset: number): number {
    // Largest remembered end offset <= offset; batch boundaries make it exact for fetch offsets.
    let low = 0;
    let high = this.historyEnds.length - 1;
    let found = 0;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.historyEnds[middle]! <= offset) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return this.historyBytes[found]!;
  }

  private resetAppendHistory(): void {
    this.historyEnds.length = 0;
    this.historyBytes.length = 0;
    this.historyEnds.push(this.log.logEndOffset);
    this.historyBytes.push(0);
  }

  // ---- follower side (called by the replica fetcher with the lock held) ----

  /** Appends batches copied from the leader; their producer metadata enters the producer state. */
  async appendAsFollower(records: Buffer): Promise<AppendResult> {
    const result = await this.log.appendAsFollower(records);
    for (const { header } of batchesIn(records)) this.producerState.applyBatch(header);
    this.recordAppend(result.logEndOffset, records.length);
    return result;
  }

  /** KIP-101/KIP-279 truncation: the log, then the producer state rebuilt from what remains. */
  async truncateTo(offset: number): Promise<void> {
    const cutsRecords = offset < this.log.logEndOffset;
    // Called even when no record goes: the log then still drops an epoch entry that starts at its
    // end (a brief leadership of ours that appended nothing). Left in place, our fetches would keep
    // naming that epoch and the leader would keep answering "diverging" (KIP-320) at our log end.
    await this.log.truncateTo(offset);
    if (!cutsRecords) return;
    await this.rebuildProducerState();
    this.resetAppendHistory();
  }

  /** The leader's log starts past ours: start over, empty, at its log start offset. */
  async truncateFullyAndStartAt(offset: number): Promise<void> {
    await this.log.truncateFullyAndStartAt(offset);
    // Every snapshot describes records that are gone now (one at `offset` too: it was taken of
    // a different history), so none may seed a later rebuild.
    await deleteSnapshotsAbove(this.log.dir, -1);
    this.producerState.reset(offset);
    this.resetAppendHistory();
  }

  /**
   * Writes the producer state as of the log end offset (clean shutdown), so that the next open
   * loads it instead of replaying every batch header. Call with no append in flight. The state
   * is exact at the LEO although the leader applies only idempotent batches: the batches it
   * skips carry no producer id and change nothing but the applied offset.
   */
  async writeSnapshot(): Promise<void> {
    const offset = this.log.logEndOffset;
    invariant(this.producerState.mapEndOffset <= offset, 'producer state never runs ahead of the log');
    await writeSnapshotFile(this.log.dir, { offset, entries: this.producerState.entries() });
    await deleteSnapshotsExceptNewest(this.log.dir, 1);
  }

  /** A follower's HW follows the leader's, bounded by what this replica holds. */
  updateFollowerHighWatermark(leaderHighWatermark: number): void {
    if (leaderHighWatermark < 0) return;
    this.log.updateHighWatermark(followerHighWatermark(leaderHighWatermark, this.log.logEndOffset));
  }

  private async rebuildProducerState(): Promise<void> {
    // From the newest snapshot at or below the log end (written at the last clean shutdown),
    // else from the log start: the rebuild then replays every batch header of the log.
    await rebuildProducerState({
      manager: this.producerState,
      snapshotDir: this.log.dir,
      logStartOffset: this.log.logStartOffset,
      logEndOffset: this.log.logEndOffset,
      readHeaders: logHeaderSource(this.log),
    });
    invariant(this.producerState.mapEndOffset <= this.log.logEndOffset, 'producer state never runs ahead of the log');
  }
}
