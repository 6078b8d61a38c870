// The log of one partition replica: a directory `<topic>-<partition>` of segments (see
// log-segment.ts) plus checkpoints, with Kafka's UnifiedLog semantics.
//
// Files in the directory:
//   <20-digit base offset>.log / .index / .timeindex   one segment each
//   leader-epoch-checkpoint                           epoch -> start offset (KIP-101)
//   recovery-point-offset-checkpoint                  everything below is fsynced
//   log-start-offset-checkpoint                       first offset visible to readers
//   cleaner-offset-checkpoint                         end of the compacted ("clean") section
//   .clean-shutdown                                   present only between close() and open()
//
// Writes (appends, truncation, retention, compaction swaps, flushes) run one at a time on a
// promise chain. Appends queued while one write (or fsync) is in progress are coalesced into the
// next writev and share its fsync (group commit). Reads run concurrently with writes and see a
// segment only up to its committed size, so never a partial batch.
//
// Appends are validated (CRC32C of every byte) in the append queue, not when they arrive: the
// queue validates the appends behind a write while that write is with the disk, so the two
// overlap (one core checksums while a thread-pool thread copies into the page cache). Validating
// on arrival serialized them, since the next append usually arrives when an earlier one
// completes: with 1 MiB batches the log wrote at about half the disk's speed. Every batch is
// still validated before it is stamped or written, and a batch that fails is refused alone.
//
// Offsets are JavaScript numbers: exact up to 2^53, far beyond what a partition reaches.
//
// Open-time recovery (Kafka's LogLoader): leftover `.deleted` and `.cleaned` files are removed,
// interrupted compaction swaps (`.swap`) are completed, and without a clean-shutdown marker every
// segment from the one holding the recovery point onwards is re-validated batch by batch (CRC32C,
// growing offsets, whole sizes); the first bad batch and everything after it are dropped and
// reported. Indexes that are missing or fail a sanity check are rebuilt.

import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  ATTRIBUTE_TIMESTAMP_TYPE_MASK,
  BATCH_HEADER_BYTES,
  BATCH_OFFSET_ATTRIBUTES,
  BATCH_OFFSET_CRC,
  BATCH_OFFSET_MAX_TIMESTAMP,
  RaftkaError,
  computeBatchCrc,
  invariant,
  setBaseOffset,
  setPartitionLeaderEpoch,
  type Logger,
} from '@raftka/protocol';
import { batchBaseOffset, batchPartitionLeaderEpoch, validateBatches, type ValidatedBatches } from './batch-validation.js';
import { readCheckpoint, readOffsetCheckpoint, syncDirectory, writeCheckpoint, writeOffsetCheckpoint } from './checkpoint-file.js';
import { FileHandlePool } from './file-pool.js';
import { LeaderEpochCache, type EpochEndOffset } from './leader-epoch-cache.js';
import { SEGMENT_BYTES_MAX, TIME_INDEX_ENTRY_BYTES, type LogConfig } from './log-config.js';
import {
  CLEANED_FILE_SUFFIX,
  DELETED_FILE_SUFFIX,
  INDEX_FILE_SUFFIX,
  LOG_FILE_SUFFIX,
  LogSegment,
  SWAP_FILE_SUFFIX,
  TIME_INDEX_FILE_SUFFIX,
  parseSegmentBaseOffset,
  rmIfExists,
  scanBatches,
  segmentFileName,
  type AppendedBatch,
} from './log-segment.js';
import { systemClock, systemTimers, type Clock, type TimerHandle, type Timers } from './time.js';

export const CLEAN_SHUTDOWN_FILE = '.clean-shutdown';
export const LEADER_EPOCH_CHECKPOINT_FILE = 'leader-epoch-checkpoint';
export const RECOVERY_POINT_CHECKPOINT_FILE = 'recovery-point-offset-checkpoint';
export const LOG_START_OFFSET_CHECKPOINT_FILE = 'log-start-offset-checkpoint';
export const CLEANER_OFFSET_CHECKPOINT_FILE = 'cleaner-offset-checkpoint';

/** ListOffsets sentinels (Kafka's): the log end offset and the log start offset. */
export const LATEST_TIMESTAMP = -1;
export const EARLIEST_TIMESTAMP = -2;

/** Bytes of queued appends taken as one group (one fsync when flushing) at most. */
export const APPEND_COALESCE_BYTES_MAX = 8 * 1024 * 1024;
/**
 * Bytes of a group written by one writev at most (a larger append goes alone). Small appends
 * gain a lot from sharing a syscall; measured here, 8 MiB writevs of 1 MiB appends were slower
 * than writing them one by one, so the bound stays at 1 MiB.
 */
export const WRITEV_BYTES_MAX = 1024 * 1024;
/** Bytes waiting in the append queue at most; beyond it appends are refused (the disk is behind). */
export const APPEND_QUEUE_BYTES_MAX = 256 * 1024 * 1024;
/** Offsets relative to a segment's base are int32 in the indexes. */
const RELATIVE_OFFSET_MAX = 2 ** 31 - 1;

export type RollStep = 'old-segment-indexes-written' | 'new-segment-created';
export type SwapStep = 'cleaned-written' | 'swap-renamed' | 'old-segments-deleted' | 'swap-completed';

/**
 * Fault-injection points for crash tests: a hook that throws stops the operation right after
 * that step, leaving the files as a crash at that moment would (then `abandon()` the log).
 */
export interface LogFaultHooks {
  afterRollStep?(step: RollStep): void | Promise<void>;
  afterSwapStep?(step: SwapStep): void | Promise<void>;
}

export type LogLogger = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

const silentLogger: LogLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
} as unknown as LogLogger;

export interface PartitionLogOptions {
  /** The partition directory, conventionally `<log.dir>/<topic>-<partition>`. */
  dir: string;
  config: LogConfig;
  clock?: Clock;
  timers?: Timers;
  logger?: LogLogger;
  /** Shared by all logs of a broker so that open file handles stay bounded. */
  filePool?: FileHandlePool;
  faultHooks?: LogFaultHooks;
}

export interface LeaderAppendOptions {
  /** The leader's current epoch, stamped into every batch (KIP-101). */
  leaderEpoch: number;
  assignOffsets: true;
}

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
  logEndOffset: number;
  /** Largest batch max-timestamp appended (after LogAppendTime stamping). */
  maxTimestamp: number;
}

export interface ReadOptions {
  maxBytes: number;
  /** Exclusive upper bound on batch base offsets served (the high watermark for consumers). */
  maxOffset?: number;
  /** Return the first batch even when it is larger than maxBytes (Kafka's fetch semantics). */
  minOneBatch?: boolean;
}

export interface LogReadResult {
  /** Whole stored batches, byte for byte; empty when nothing is readable yet. */
  records: Buffer;
  logStartOffset: number;
  logEndOffset: number;
}

export interface DroppedSegment {
  baseOffset: number;
  bytes: number;
}

/** What open() found and repaired. */
export interface RecoveryReport {
  cleanShutdown: boolean;
  /** Base offsets of segments re-validated batch by batch. */
  segmentsRecovered: number[];
  /** Base offsets of segments whose indexes were rebuilt. */
  indexesRebuilt: number[];
  /** Set when a torn or corrupt tail was cut. */
  truncation:
    | { segmentBaseOffset: number; position: number; bytes: number; reason: string; droppedFromOffset: number }
    | undefined;
  /** Whole segments removed because they followed a corrupt batch. */
  droppedSegments: DroppedSegment[];
  /** Total bytes dropped (torn tail plus dropped segments). */
  droppedBytes: number;
  /** Compaction swaps completed (base offsets) and abandoned `.cleaned` files removed. */
  swapsCompleted: number[];
  cleanedFilesRemoved: number;
}

/** Where an append stands with validation; it is stamped and written only when 'valid'. */
type AppendCheck =
  | { kind: 'unchecked' }
  | { kind: 'valid'; batches: ValidatedBatches }
  | { kind: 'invalid'; error: unknown };

interface PendingAppend {
  kind: 'leader' | 'follower';
  /** The caller's bytes, owned by the log from the call on. */
  records: Buffer;
  leaderEpoch: number;
  check: AppendCheck;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

export class PartitionLog {
  readonly dir: string;
  readonly config: LogConfig;
  readonly clock: Clock;
  readonly filePool: FileHandlePool;
  readonly faultHooks: LogFaultHooks;
  private readonly timers: Timers;
  private readonly logger: LogLogger;
  // Invariant: non-empty, sorted by base offset, ranges disjoint; the last one is active
  // (appended to) and its file is pinned open. Replaced, never mutated in place, so that a
  // reader's snapshot stays consistent.
  private segments: LogSegment[] = [];
  // Invariant: logStart <= nextOffset; nextOffset >= active segment's nextOffset.
  private nextOffset = 0;
  private logStart = 0;
  // Invariant: recoveryPointValue <= nextOffset; everything below it is fsynced.
  private recoveryPointValue = 0;
  private epochs = new LeaderEpochCache();
  private chain: Promise<void> = Promise.resolve();
  private pending: PendingAppend[] = [];
  private pendingBytes = 0;
  private drainQueued = false;
  private unflushedMessages = 0;
  private lastFlushMs: number;
  /** Bumped by every truncation so that background work started before it does not apply. */
  private truncations = 0;
  private background: Promise<void> = Promise.resolve();
  private checkpointedRecoveryPoint = -1;
  // Invariant: logStart <= highWatermarkValue <= nextOffset when set.
  private highWatermarkValue: number | undefined;
  private readonly deletionTimers = new Map<TimerHandle, LogSegment>();
  private state: 'open' | 'closed' | 'failed' = 'open';
  private failure: unknown;
  private report!: RecoveryReport;

  private constructor(options: PartitionLogOptions) {
    this.dir = options.dir;
    this.config = options.config;
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.logger = options.logger ?? silentLogger;
    this.filePool = options.filePool ?? new FileHandlePool();
    this.faultHooks = options.faultHooks ?? {};
    this.lastFlushMs = this.clock.nowMs();
    checkLogConfig(this.config);
  }

  /** Opens (creating if needed) the log in `options.dir`, recovering it after a crash. */
  static async open(options: PartitionLogOptions): Promise<PartitionLog> {
    await fs.mkdir(options.dir, { recursive: true });
    const log = new PartitionLog(options);
    await log.load();
    return log;
  }

  get logStartOffset(): number {
    return this.logStart;
  }

  /** LEO: the offset the next appended record gets. */
  get logEndOffset(): number {
    return this.nextOffset;
  }

  get recoveryPoint(): number {
    return this.recoveryPointValue;
  }

  /**
   * The high watermark as the replica manager last set it (the log end offset for a log nobody
   * replicates). The cleaner never compacts past it: records above it may still be truncated
   * away, and a record dropped in favour of one that is later truncated would be lost (as Kafka,
   * which bounds cleaning by the high watermark).
   */
  get highWatermark(): number {
    return Math.min(Math.max(this.highWatermarkValue ?? this.nextOffset, this.logStart), this.nextOffset);
  }

  /** Called by the replica manager whenever the partition's high watermark moves. */
  updateHighWatermark(offset: number): void {
    invariant(Number.isSafeInteger(offset) && offset >= 0, 'the high watermark is a non-negative offset');
    this.highWatermarkValue = Math.min(offset, this.nextOffset);
  }

  get latestEpoch(): number {
    return this.epochs.latestEpoch;
  }

  get epochEntries(): readonly { epoch: number; startOffset: number }[] {
    return this.epochs.all;
  }

  get recoveryReport(): RecoveryReport {
    return this.report;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Base offsets of the segments, oldest first. */
  get segmentBaseOffsets(): number[] {
    return this.segments.map((segment) => segment.baseOffset);
  }

  get sizeInBytes(): number {
    let total = 0;
    for (const segment of this.segments) total += segment.sizeBytes;
    return total;
  }

  /**
   * Leader append: validates every batch (structure, CRC32C, max.message.bytes; nothing is
   * appended when one fails), assigns offsets by rewriting each base offset, stamps the leader
   * epoch (and the broker time with LogAppendTime). The log takes ownership of `records` and
   * rewrites header fields in place.
   */
  append(records: Buffer, options: LeaderAppendOptions): Promise<AppendResult> {
    try {
      this.ensureWritable();
      invariant(options.assignOffsets === true && options.leaderEpoch >= 0, 'leader appends assign offsets under a valid epoch');
      this.checkAppendSize(records.length);
      return this.enqueue({ kind: 'leader', records, leaderEpoch: options.leaderEpoch, check: { kind: 'unchecked' } });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Follower append: batches come from the leader with offsets and epochs already set. They
   * must start at or after the log end offset and grow (gaps are allowed: the leader's log may
   * be compacted). The leader-epoch cache learns new epochs from the batches.
   */
  appendAsFollower(records: Buffer): Promise<AppendResult> {
    try {
      this.ensureWritable();
      this.checkAppendSize(records.length);
      return this.enqueue({ kind: 'follower', records, leaderEpoch: -1, check: { kind: 'unchecked' } });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private checkAppendSize(bytes: number): void {
    if (bytes > this.config.segmentBytes) {
      throw new RaftkaError(
        'RECORD_LIST_TOO_LARGE',
        `append of ${bytes} bytes exceeds segment.bytes=${this.config.segmentBytes}; send fewer batches per request`,
      );
    }
    if (this.pendingBytes + bytes > APPEND_QUEUE_BYTES_MAX) {
      throw new RaftkaError('KAFKA_STORAGE_ERROR', `the append queue holds ${this.pendingBytes} bytes: the disk is not keeping up; retry later`, {
        retriable: true,
      });
    }
  }

  private enqueue(request: Omit<PendingAppend, 'resolve' | 'reject'>): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      this.pending.push({ ...request, resolve, reject });
      this.pendingBytes += request.records.length;
      if (!this.drainQueued) this.queueDrain();
    });
  }

  private queueDrain(): void {
    this.drainQueued = true;
    // The drain fails as a whole only when the log closed or failed before it ran.
    this.exclusive(() => this.drain()).catch((error: unknown) => {
      this.drainQueued = false;
      this.pendingBytes = 0;
      for (const append of this.pending.splice(0)) append.reject(error);
    });
  }

  /** Runs `operation` after every write queued before it; writes never overlap. */
  private exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.chain.then(() => {
      this.ensureWritable();
      return operation();
    });
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private ensureWritable(): void {
    if (this.state === 'closed') throw new RaftkaError('SHUTTING_DOWN', `the log in ${this.dir} is closed`);
    if (this.state === 'failed') {
      throw new RaftkaError('KAFKA_STORAGE_ERROR', `the log in ${this.dir} failed on a storage error and is offline; check the disk and restart`, {
        cause: this.failure,
      });
    }
  }

  /** A storage failure mid-write leaves memory and files possibly out of step: go offline. */
  private fail(error: unknown): void {
    if (this.state !== 'open') return;
    this.state = 'failed';
    this.failure = error;
    this.logger.error({ dir: this.dir, err: error }, 'partition log failed on a storage error; it is offline until restart');
  }

  private get active(): LogSegment {
    return this.segments[this.segments.length - 1]!;
  }

  private async drain(): Promise<void> {
    this.drainQueued = false;
    const group: PendingAppend[] = [];
    let groupBytes = 0;
    while (this.pending.length > 0) {
      const next = this.pending[0]!;
      if (group.length > 0 && groupBytes + next.records.length > APPEND_COALESCE_BYTES_MAX) break;
      group.push(this.pending.shift()!);
      groupBytes += next.records.length;
    }
    this.pendingBytes -= groupBytes;
    if (this.pending.length > 0 && !this.drainQueued) this.queueDrain();
    if (group.length === 0) return;
    const accepted: { append: PendingAppend; result: AppendResult }[] = [];
    try {
      await this.writeGroup(group, accepted);
    } catch (error) {
      // Every failure here is the disk's (a batch failing validation is refused alone and
      // never throws here): memory and files may disagree now, so the log goes offline as
      // Kafka marks a log dir offline.
      this.fail(error);
      for (const append of group) append.reject(error);
      return;
    }
    for (const { append, result } of accepted) append.resolve(result);
  }

  /**
   * Writes a group of appends: per append, validate, roll if needed, assign or check offsets,
   * then write everything bound for one segment with a single writev; fsync once for the whole
   * group when the flush policy asks. Appends refused here (invalid batches, stale epoch, offsets
   * behind) are rejected alone. While each write or fsync is with the disk, the appends behind
   * it are validated (see validateAhead).
   */
  private async writeGroup(group: PendingAppend[], accepted: { append: PendingAppend; result: AppendResult }[]): Promise<void> {
    let chunks: Buffer[] = [];
    let batches: AppendedBatch[] = [];
    let writeBytes = 0;
    let nextOffset = this.nextOffset;
    let epochsChanged = false;
    let messages = 0;
    /** Writes the collected chunks; `next` is the index in `group` of the first append after them. */
    const writeOut = async (next: number): Promise<void> => {
      if (chunks.length === 0) return;
      // The segment issues the write before it returns (its file is open and pinned), so the
      // validation below runs while the disk copies the bytes.
      const writing = this.active.append(chunks, batches);
      this.validateAhead(group, next, WRITEV_BYTES_MAX);
      await writing;
      this.nextOffset = nextOffset;
      chunks = [];
      batches = [];
      writeBytes = 0;
    };
    for (let index = 0; index < group.length; index++) {
      const append = group[index]!;
      const validated = this.validate(append);
      if (validated === undefined) {
        invariant(append.check.kind === 'invalid', 'an append that is not valid was checked and refused');
        append.reject(append.check.error);
        continue;
      }
      const bytes = validated.buffer.length;
      const firstOffset = append.kind === 'leader' ? nextOffset : batchBaseOffset(validated.buffer, 0);
      const lastOffsetEstimate = append.kind === 'leader' ? nextOffset + sumLastOffsetDeltas(validated) : lastOffsetOf(validated);
      const problem = append.kind === 'leader' ? this.checkLeaderAppend(append) : this.checkFollowerAppend(validated, nextOffset);
      if (problem !== undefined) {
        append.reject(problem);
        continue;
      }
      if (this.shouldRoll(writeBytes, bytes, lastOffsetEstimate)) {
        await writeOut(index);
        await this.roll(Math.max(nextOffset, firstOffset));
      }
      if (writeBytes > 0 && writeBytes + bytes > WRITEV_BYTES_MAX) await writeOut(index);
      const position = this.active.sizeBytes + writeBytes;
      const result =
        append.kind === 'leader' ? this.stampLeaderBatches(append, validated, nextOffset, position, batches) : describeFollowerBatches(validated, position, batches);
      if (append.kind === 'leader') {
        epochsChanged = this.epochs.assign(append.leaderEpoch, result.baseOffset) || epochsChanged;
      } else {
        for (let batch = 0; batch < validated.count; batch++) {
          const at = validated.positions[batch]!;
          epochsChanged = this.epochs.assign(batchPartitionLeaderEpoch(validated.buffer, at), batchBaseOffset(validated.buffer, at)) || epochsChanged;
        }
      }
      chunks.push(validated.buffer);
      writeBytes += bytes;
      messages += validated.recordCount;
      nextOffset = result.lastOffset + 1;
      result.logEndOffset = nextOffset;
      accepted.push({ append, result });
    }
    await writeOut(group.length);
    // The data is written before the epoch checkpoint (as Kafka): recovery re-derives epochs
    // from the batches' partitionLeaderEpoch if a crash falls between the two.
    if (epochsChanged) await this.persistEpochs();
    this.unflushedMessages += messages;
    if (this.unflushedMessages >= this.config.flushMessages) {
      // The next group's first write is validated meanwhile; its later ones overlap with the
      // writes before them. Validating more here would only delay this group's answers.
      const syncing = this.syncActive();
      this.validateAhead(group, group.length, WRITEV_BYTES_MAX);
      await syncing;
    }
  }

  /**
   * Validates `append` once: structure, CRC32C and size limits of every batch (nothing of an
   * append with one bad batch is written). Returns its batches, or undefined when it failed.
   */
  private validate(append: PendingAppend): ValidatedBatches | undefined {
    if (append.check.kind === 'unchecked') {
      // A follower's leader already applied max.message.bytes; a segment is its only hard bound.
      const options =
        append.kind === 'leader'
          ? { maxBatchBytes: this.config.maxMessageBytes, requireDenseOffsets: true }
          : { maxBatchBytes: this.config.segmentBytes, requireDenseOffsets: false };
      try {
        append.check = { kind: 'valid', batches: validateBatches(append.records, options) };
      } catch (error) {
        append.check = { kind: 'invalid', error };
      }
    }
    return append.check.kind === 'valid' ? append.check.batches : undefined;
  }

  /**
   * CPU work for while the disk works: validates the appends after `group[from]` (the rest of
   * the group, then the queue) until `bytesAhead` bytes of them are checked, so the write after
   * the one in flight can start as soon as it ends. Called right after a write or fsync was
   * issued. Bounded by bytes (one writev's worth: CRC32C runs faster than the disk takes the
   * same bytes): validating much more than the write in flight takes would leave the disk idle
   * and delay the answers to the appends being written.
   */
  private validateAhead(group: readonly PendingAppend[], from: number, bytesAhead: number): void {
    let bytes = 0;
    for (const [queue, start] of [
      [group, from],
      [this.pending, 0],
    ] as const) {
      for (let index = start; index < queue.length && bytes < bytesAhead; index++) {
        const append = queue[index]!;
        this.validate(append);
        bytes += append.records.length;
      }
    }
  }

  private checkLeaderAppend(append: PendingAppend): RaftkaError | undefined {
    const latest = this.epochs.latestEpoch;
    if (append.leaderEpoch < latest) {
      return new RaftkaError(
        'FENCED_LEADER_EPOCH',
        `append in leader epoch ${append.leaderEpoch} but the log already holds epoch ${latest}; this replica is no longer the leader`,
      );
    }
    return undefined;
  }

  private checkFollowerAppend(validated: ValidatedBatches, nextOffset: number): RaftkaError | undefined {
    let expected = nextOffset;
    for (let index = 0; index < validated.count; index++) {
      const baseOffset = batchBaseOffset(validated.buffer, validated.positions[index]!);
      if (baseOffset < expected) {
        return new RaftkaError(
          'INVALID_RECORD',
          `follower append has a batch at offset ${baseOffset} but the log continues at ${expected}; truncate before appending`,
          { retriable: false },
        );
      }
      expected = baseOffset + validated.lastOffsetDeltas[index]! + 1;
    }
    return undefined;
  }

  private stampLeaderBatches(append: PendingAppend, validated: ValidatedBatches, firstOffset: number, position: number, out: AppendedBatch[]): AppendResult {
    const buffer = validated.buffer;
    const logAppendTime = this.config.messageTimestampType === 'LogAppendTime';
    const nowMs = logAppendTime ? this.clock.nowMs() : 0;
    let offset = firstOffset;
    let maxTimestamp = -1;
    for (let index = 0; index < validated.count; index++) {
      const at = validated.positions[index]!;
      setBaseOffset(buffer, at, offset);
      setPartitionLeaderEpoch(buffer, at, append.leaderEpoch);
      let batchMaxTimestamp = validated.maxTimestamps[index]!;
      if (logAppendTime) {
        // LogAppendTime changes CRC'd fields, so the checksum is recomputed (once per batch).
        buffer.writeInt16BE(buffer.readInt16BE(at + BATCH_OFFSET_ATTRIBUTES) | ATTRIBUTE_TIMESTAMP_TYPE_MASK, at + BATCH_OFFSET_ATTRIBUTES);
        buffer.writeBigInt64BE(BigInt(nowMs), at + BATCH_OFFSET_MAX_TIMESTAMP);
        buffer.writeUInt32BE(computeBatchCrc(buffer, at, validated.sizes[index]!), at + BATCH_OFFSET_CRC);
        batchMaxTimestamp = nowMs;
      }
      const lastOffset = offset + validated.lastOffsetDeltas[index]!;
      out.push({ position: position + at, size: validated.sizes[index]!, lastOffset, maxTimestamp: batchMaxTimestamp });
      if (batchMaxTimestamp > maxTimestamp) maxTimestamp = batchMaxTimestamp;
      offset = lastOffset + 1;
    }
    return { baseOffset: firstOffset, lastOffset: offset - 1, logEndOffset: offset, maxTimestamp };
  }

  private shouldRoll(pendingWriteBytes: number, appendBytes: number, lastOffset: number): boolean {
    const active = this.active;
    const used = active.sizeBytes + pendingWriteBytes;
    if (used === 0) return false;
    return (
      used + appendBytes > this.config.segmentBytes ||
      active.indexIsFull ||
      lastOffset - active.baseOffset > RELATIVE_OFFSET_MAX ||
      this.clock.nowMs() - active.createdMs >= this.config.segmentMs
    );
  }

  /**
   * Closes the active segment for appends and starts a new one at `baseOffset`. The old segment
   * is fsynced in the background (as Kafka), after which the recovery point moves past it.
   */
  private async roll(baseOffset: number): Promise<void> {
    const old = this.active;
    await old.persistIndexes({ sync: false, final: true });
    await this.faultHooks.afterRollStep?.('old-segment-indexes-written');
    const created = await LogSegment.create(this.dir, baseOffset, this.filePool, this.segmentSettings(), this.clock.nowMs());
    created.file.setPinned(true);
    this.segments = [...this.segments, created];
    old.file.setPinned(false);
    this.nextOffset = Math.max(this.nextOffset, baseOffset);
    this.logger.debug({ dir: this.dir, baseOffset }, 'rolled a new segment');
    await this.faultHooks.afterRollStep?.('new-segment-created');
    const truncations = this.truncations;
    this.background = this.background
      .then(async () => {
        await old.syncLog();
        await old.persistIndexes({ sync: true, final: false });
        if (truncations !== this.truncations || this.state !== 'open') return;
        if (baseOffset > this.recoveryPointValue) {
          this.recoveryPointValue = Math.min(baseOffset, this.nextOffset);
          await this.writeRecoveryPoint();
        }
      })
      .catch((error: unknown) => this.logger.warn({ dir: this.dir, err: error }, 'background flush of a rolled segment failed'));
  }

  private segmentSettings(): { indexIntervalBytes: number; segmentIndexBytes: number } {
    return { indexIntervalBytes: this.config.indexIntervalBytes, segmentIndexBytes: this.config.segmentIndexBytes };
  }

  private async syncActive(): Promise<void> {
    const endOffset = this.nextOffset;
    await this.active.syncLog();
    this.unflushedMessages = 0;
    this.lastFlushMs = this.clock.nowMs();
    // Segments before the active one are synced on roll; the active one now is too, but an
    // older segment's background sync may still run, so the point only moves when it is done.
    await this.background;
    this.recoveryPointValue = Math.max(this.recoveryPointValue, Math.min(endOffset, this.nextOffset));
  }

  /**
   * Reads whole batches starting with the one containing `offset`. OFFSET_OUT_OF_RANGE below the
   * log start offset or above the log end offset; an empty result at the end of the log.
   */
  async read(offset: number, options: ReadOptions): Promise<LogReadResult> {
    this.ensureWritable();
    const logEndOffset = this.nextOffset;
    const logStartOffset = this.logStart;
    if (offset < logStartOffset || offset > logEndOffset) {
      throw new RaftkaError(
        'OFFSET_OUT_OF_RANGE',
        `offset ${offset} is outside the log's range [${logStartOffset}, ${logEndOffset}]; reset the position (auto.offset.reset)`,
        { retriable: false },
      );
    }
    const maxOffset = Math.min(options.maxOffset ?? logEndOffset, logEndOffset);
    const segments = this.segments;
    let index = floorSegmentIndex(segments, offset);
    if (index < 0) index = 0;
    for (; index < segments.length; index++) {
      const segment = segments[index]!;
      const from = Math.max(offset, segment.baseOffset);
      if (from >= maxOffset) break;
      const records = await segment.read(from, Math.max(0, options.maxBytes), maxOffset, options.minOneBatch ?? false);
      if (records.length > 0) return { records, logStartOffset, logEndOffset };
      // Nothing here: the offset fell in a compaction gap at the end of this segment.
    }
    return { records: Buffer.alloc(0), logStartOffset, logEndOffset };
  }

  /**
   * The first batch whose max timestamp is >= `timestamp` (ListOffsets). Batch granularity: the
   * offset is the batch's base offset (or the log start offset), and consumers skip earlier
   * records of that batch by timestamp. LATEST_TIMESTAMP / EARLIEST_TIMESTAMP answer the log
   * end / start offsets. Undefined when every record is older.
   */
  async offsetForTimestamp(timestamp: number): Promise<{ offset: number; timestamp: number } | undefined> {
    this.ensureWritable();
    if (timestamp === LATEST_TIMESTAMP) return { offset: this.nextOffset, timestamp: -1 };
    if (timestamp === EARLIEST_TIMESTAMP) return { offset: this.logStart, timestamp: -1 };
    const logStart = this.logStart;
    for (const segment of this.segments) {
      if (segment.maxTimestamp < timestamp || segment.nextOffset <= logStart) continue;
      const found = await segment.findByTimestamp(timestamp, logStart);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** KIP-101 OffsetsForLeaderEpoch for this log: {epoch, endOffset}, -1s when unknown. */
  endOffsetForEpoch(epoch: number): EpochEndOffset {
    return this.epochs.endOffsetFor(epoch, this.nextOffset);
  }

  /**
   * Follower truncation (KIP-101/KIP-279): removes every batch whose last offset is >= `offset`
   * and the leader-epoch entries starting at or after the new end.
   */
  truncateTo(offset: number): Promise<void> {
    return this.exclusive(async () => {
      invariant(offset >= 0, 'truncation offset must be non-negative');
      if (offset >= this.nextOffset) {
        // No record to cut, but an epoch may start at the log end with no record in it: this
        // replica became leader (assignEpochStartOffset) and lost the leadership before its first
        // append. The new leader never had that epoch; kept, it stays our latest epoch, and every
        // fetch naming it is answered with a diverging epoch ending at our log end, which asks
        // for this very no-op truncation again, forever (Kafka's UnifiedLog.truncateTo drops it too).
        if (this.epochs.truncateFromEnd(this.nextOffset)) await this.persistEpochs();
        return;
      }
      this.truncations++;
      if (offset <= this.segments[0]!.baseOffset) {
        await this.replaceAllSegments(offset, Math.min(this.logStart, offset));
        this.logger.info({ dir: this.dir, offset }, 'truncated the log fully');
        return;
      }
      const keep = this.segments.filter((segment) => segment.baseOffset < offset);
      const removed = this.segments.slice(keep.length);
      const oldEnd = this.nextOffset;
      this.segments = keep;
      await this.retireSegments(removed);
      const active = this.active;
      active.file.setPinned(true);
      await active.loadedIndexes();
      const { firstRemovedBaseOffset } = await active.truncateTo(offset);
      this.nextOffset = firstRemovedBaseOffset === undefined ? offset : Math.min(offset, firstRemovedBaseOffset);
      this.recoveryPointValue = Math.min(this.recoveryPointValue, this.nextOffset);
      if (this.highWatermarkValue !== undefined) this.highWatermarkValue = Math.min(this.highWatermarkValue, this.nextOffset);
      if (this.nextOffset < this.logStart) {
        // Truncation cuts whole batches, so the end can fall below a log start inside a batch.
        this.logStart = this.nextOffset;
        await this.writeLogStart();
      }
      if (this.epochs.truncateFromEnd(this.nextOffset)) await this.persistEpochs();
      await this.writeRecoveryPoint();
      this.logger.info({ dir: this.dir, offset, oldEnd, newEnd: this.nextOffset }, 'truncated the log');
    });
  }

  /** Deletes everything and starts empty at `offset` (a follower far behind a leader's log start). */
  truncateFullyAndStartAt(offset: number): Promise<void> {
    return this.exclusive(async () => {
      invariant(offset >= 0, 'start offset must be non-negative');
      this.truncations++;
      await this.replaceAllSegments(offset, offset);
    });
  }

  private async replaceAllSegments(offset: number, logStart: number): Promise<void> {
    const removed = this.segments;
    for (const segment of removed) segment.changed = true;
    // Rename first: the new segment may reuse a base offset (and so a file name).
    await this.retireSegments(removed);
    const created = await LogSegment.create(this.dir, offset, this.filePool, this.segmentSettings(), this.clock.nowMs());
    created.file.setPinned(true);
    this.segments = [created];
    this.nextOffset = offset;
    this.logStart = logStart;
    this.recoveryPointValue = offset;
    if (this.highWatermarkValue !== undefined) this.highWatermarkValue = offset;
    this.unflushedMessages = 0;
    if (this.epochs.clear()) await this.persistEpochs();
    await Promise.all([this.writeRecoveryPoint(), this.writeLogStart()]);
  }

  /**
   * DeleteRecords: moves the log start offset up to `offset` (at most the log end offset) and
   * deletes segments that fall wholly below it. Returns the new log start offset.
   */
  deleteRecordsBefore(offset: number): Promise<number> {
    return this.exclusive(async () => {
      if (offset > this.nextOffset || offset < 0) {
        throw new RaftkaError('OFFSET_OUT_OF_RANGE', `cannot delete records before ${offset}: the log ends at ${this.nextOffset}`, {
          retriable: false,
        });
      }
      if (offset <= this.logStart) return this.logStart;
      await this.advanceLogStart(offset);
      await this.deleteSegmentPrefix(this.countSegmentsBelowLogStart(), 'log start offset moved past them');
      return this.logStart;
    });
  }

  private async advanceLogStart(offset: number): Promise<void> {
    if (offset <= this.logStart) return;
    this.logStart = offset;
    await this.writeLogStart();
    if (this.epochs.truncateFromStart(offset)) await this.persistEpochs();
  }

  private countSegmentsBelowLogStart(): number {
    let count = 0;
    while (count < this.segments.length - 1 && this.segments[count + 1]!.baseOffset <= this.logStart) count++;
    return count;
  }

  /**
   * Retention: deletes the oldest segments (never the active one) whose newest timestamp is older
   * than retention.ms, while the log is larger than retention.bytes, or that lie below the log
   * start offset. Returns how many segments were deleted.
   */
  deleteExpiredSegments(): Promise<number> {
    return this.exclusive(async () => {
      const candidates = this.segments.length - 1;
      let count = this.countSegmentsBelowLogStart();
      if (this.config.cleanupPolicy.delete) {
        const nowMs = this.clock.nowMs();
        if (this.config.retentionMs >= 0) {
          let byTime = 0;
          while (byTime < candidates && nowMs - this.segments[byTime]!.maxTimestamp > this.config.retentionMs) byTime++;
          count = Math.max(count, byTime);
        }
        if (this.config.retentionBytes >= 0) {
          let excess = this.sizeInBytes - this.config.retentionBytes;
          let bySize = 0;
          while (bySize < candidates && excess - this.segments[bySize]!.sizeBytes >= 0) {
            excess -= this.segments[bySize]!.sizeBytes;
            bySize++;
          }
          count = Math.max(count, bySize);
        }
      }
      if (count === 0) return 0;
      await this.deleteSegmentPrefix(count, 'retention');
      return count;
    });
  }

  private async deleteSegmentPrefix(count: number, reason: string): Promise<void> {
    invariant(count < this.segments.length, 'the active segment is never deleted by retention');
    if (count === 0) return;
    const removed = this.segments.slice(0, count);
    // The log start moves first: a reader never gets data from past a hole it asked into.
    await this.advanceLogStart(this.segments[count]!.baseOffset);
    this.segments = this.segments.slice(count);
    await this.retireSegments(removed);
    this.logger.info(
      { dir: this.dir, reason, segments: removed.map((segment) => segment.baseOffset), logStartOffset: this.logStart },
      'deleted segments',
    );
  }

  /**
   * Takes segments out of the log: renames their files to `.deleted` now and removes them after
   * file.delete.delay.ms, so reads already in flight on them can finish (as Kafka).
   */
  private async retireSegments(removed: readonly LogSegment[]): Promise<void> {
    for (const segment of removed) {
      segment.changed = true;
      segment.file.setPinned(false);
      await segment.renameWithSuffix(DELETED_FILE_SUFFIX);
    }
    await syncDirectory(this.dir);
    for (const segment of removed) {
      const handle = this.timers.setTimeout(() => {
        this.deletionTimers.delete(handle);
        void segment
          .deleteFiles(DELETED_FILE_SUFFIX)
          .catch((error: unknown) => this.logger.warn({ dir: this.dir, err: error }, 'could not remove a deleted segment'));
      }, this.config.fileDeleteDelayMs);
      this.deletionTimers.set(handle, segment);
    }
  }

  /** Fsyncs everything appended so far and records the recovery point. */
  flush(): Promise<void> {
    return this.exclusive(async () => {
      await this.syncActive();
      await this.writeRecoveryPoint();
    });
  }

  /** flush.ms: flushes when unflushed data is older than the configured interval. */
  async flushIfDue(): Promise<boolean> {
    if (this.unflushedMessages === 0 || this.clock.nowMs() - this.lastFlushMs < this.config.flushMs) return false;
    await this.flush();
    return true;
  }

  /** Writes the recovery point checkpoint when it moved (the log manager calls this periodically). */
  checkpointRecoveryPoint(): Promise<void> {
    return this.exclusive(async () => {
      if (this.recoveryPointValue !== this.checkpointedRecoveryPoint) await this.writeRecoveryPoint();
    });
  }

  /** Flushes, writes every checkpoint and the clean-shutdown marker, and closes all files. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    // A failed log cannot vouch for its files: no checkpoints, no clean-shutdown marker.
    if (this.state === 'failed') return this.abandon();
    await this.exclusive(async () => {
      await this.background;
      const active = this.active;
      await active.syncLog();
      await active.persistIndexes({ sync: true, final: true });
      this.recoveryPointValue = this.nextOffset;
      await Promise.all([this.writeRecoveryPoint(), this.writeLogStart(), this.persistEpochs()]);
      await this.releaseFiles();
      await writeCheckpoint(path.join(this.dir, CLEAN_SHUTDOWN_FILE), []);
      this.state = 'closed';
      this.logger.info({ dir: this.dir, logEndOffset: this.nextOffset }, 'closed the log cleanly');
    });
  }

  /**
   * Releases file handles without flushing or writing any checkpoint or marker, as a crash
   * would leave the directory. For a log that hit a storage error, and for crash tests.
   */
  async abandon(): Promise<void> {
    if (this.state === 'closed') return;
    // Background syncs already started finish first (deterministic for crash tests; a real
    // crash may stop them anywhere, which recovery handles the same way).
    await this.background.catch(() => undefined);
    this.state = 'closed';
    for (const append of this.pending.splice(0)) append.reject(new RaftkaError('SHUTTING_DOWN', `the log in ${this.dir} was abandoned`));
    await this.releaseFiles();
  }

  private async releaseFiles(): Promise<void> {
    for (const [handle, segment] of this.deletionTimers) {
      this.timers.clearTimeout(handle);
      await segment.close();
    }
    this.deletionTimers.clear();
    for (const segment of this.segments) await segment.close();
  }

  // ---- compaction support (used by LogCleaner in this folder; not part of the package API) ----

  /** @internal The segments a cleaner may rewrite: all but the active one (a snapshot). */
  inactiveSegments(): readonly LogSegment[] {
    return this.segments.slice(0, -1);
  }

  /** @internal */
  async readCleanerCheckpoint(): Promise<number | undefined> {
    return readOffsetCheckpoint(path.join(this.dir, CLEANER_OFFSET_CHECKPOINT_FILE)).catch(() => undefined);
  }

  /** @internal */
  writeCleanerCheckpoint(offset: number): Promise<void> {
    return this.exclusive(() => writeOffsetCheckpoint(path.join(this.dir, CLEANER_OFFSET_CHECKPOINT_FILE), offset));
  }

  /**
   * @internal Replaces `sources` (consecutive inactive segments) by the compacted segment
   * written and fsynced at `cleanedPath` (`<base>.log.cleaned`, base = first source's base), in
   * crash-safe steps: rename to `.swap` (the commit point: open() completes a swap from here),
   * retire the old segments, rename `.swap` to `.log`. Returns false, and removes the cleaned
   * file, when the log changed under the cleaner (truncation, retention, another swap).
   */
  swapCleanedSegment(sources: readonly LogSegment[], cleanedPath: string): Promise<boolean> {
    return this.exclusive(async () => {
      const first = sources[0]!;
      const start = this.segments.indexOf(first);
      const unchanged =
        start >= 0 &&
        start + sources.length < this.segments.length &&
        sources.every((segment, index) => this.segments[start + index] === segment && !segment.changed);
      if (!unchanged) {
        await rmIfExists(cleanedPath);
        return false;
      }
      await this.faultHooks.afterSwapStep?.('cleaned-written');
      const swapPath = path.join(this.dir, segmentFileName(first.baseOffset, LOG_FILE_SUFFIX + SWAP_FILE_SUFFIX));
      await fs.rename(cleanedPath, swapPath);
      await syncDirectory(this.dir);
      await this.faultHooks.afterSwapStep?.('swap-renamed');
      // The old segments stay in the list (readable under their `.deleted` names) until the
      // replacement is ready, so no reader ever finds a hole in the offset range.
      await this.retireSegments(sources);
      await this.faultHooks.afterSwapStep?.('old-segments-deleted');
      await fs.rename(swapPath, path.join(this.dir, segmentFileName(first.baseOffset, LOG_FILE_SUFFIX)));
      await syncDirectory(this.dir);
      const replacement = await LogSegment.open(this.dir, first.baseOffset, this.filePool, this.segmentSettings(), this.clock.nowMs());
      const rebuilt = await replacement.recover(first.baseOffset, undefined, { verify: false });
      invariant(rebuilt.truncatedBytes === 0, () => `compacted segment ${first.baseOffset} is torn after an fsynced write: ${rebuilt.problem}`);
      await replacement.persistIndexes({ sync: true, final: true });
      const current = this.segments;
      this.segments = [...current.slice(0, start), replacement, ...current.slice(start + sources.length)];
      await this.faultHooks.afterSwapStep?.('swap-completed');
      return true;
    });
  }

  // ---- checkpoints ----

  private async writeRecoveryPoint(): Promise<void> {
    const offset = this.recoveryPointValue;
    await writeOffsetCheckpoint(path.join(this.dir, RECOVERY_POINT_CHECKPOINT_FILE), offset);
    this.checkpointedRecoveryPoint = offset;
  }

  private writeLogStart(): Promise<void> {
    return writeOffsetCheckpoint(path.join(this.dir, LOG_START_OFFSET_CHECKPOINT_FILE), this.logStart);
  }

  private persistEpochs(): Promise<void> {
    return writeCheckpoint(
      path.join(this.dir, LEADER_EPOCH_CHECKPOINT_FILE),
      this.epochs.all.map((entry) => [entry.epoch, entry.startOffset]),
    );
  }

  // ---- open-time loading and recovery ----

  private async load(): Promise<void> {
    const report: RecoveryReport = {
      cleanShutdown: false,
      segmentsRecovered: [],
      indexesRebuilt: [],
      truncation: undefined,
      droppedSegments: [],
      droppedBytes: 0,
      swapsCompleted: [],
      cleanedFilesRemoved: 0,
    };
    this.report = report;
    let names = await fs.readdir(this.dir);
    report.cleanShutdown = names.includes(CLEAN_SHUTDOWN_FILE);

    // Leftovers of interrupted work: deleted segments, unfinished cleanings, temp checkpoints.
    for (const name of names) {
      if (name.endsWith(DELETED_FILE_SUFFIX) || name.endsWith('.tmp')) await rmIfExists(path.join(this.dir, name));
      if (name.endsWith(CLEANED_FILE_SUFFIX)) {
        await rmIfExists(path.join(this.dir, name));
        report.cleanedFilesRemoved++;
      }
    }
    names = await fs.readdir(this.dir);
    for (const name of names.filter((entry) => entry.endsWith(LOG_FILE_SUFFIX + SWAP_FILE_SUFFIX)).sort()) {
      await this.completeSwap(name, report);
    }
    names = await fs.readdir(this.dir);

    const baseOffsets = names
      .filter((name) => name.endsWith(LOG_FILE_SUFFIX))
      .map((name) => parseSegmentBaseOffset(name))
      .filter((base): base is number => base !== undefined)
      .sort((a, b) => a - b);
    const bases = new Set(baseOffsets);
    for (const name of names) {
      const base = parseSegmentBaseOffset(name);
      if (base !== undefined && !bases.has(base) && (name.endsWith(INDEX_FILE_SUFFIX) || name.endsWith(TIME_INDEX_FILE_SUFFIX))) {
        await rmIfExists(path.join(this.dir, name)); // an index without its segment
      }
    }

    const checkpointedRecoveryPoint = await readOffsetCheckpoint(path.join(this.dir, RECOVERY_POINT_CHECKPOINT_FILE)).catch(() => undefined);
    const checkpointedLogStart = await readOffsetCheckpoint(path.join(this.dir, LOG_START_OFFSET_CHECKPOINT_FILE)).catch(() => undefined);
    const epochEntries = await readCheckpoint(path.join(this.dir, LEADER_EPOCH_CHECKPOINT_FILE), 2);
    this.epochs = new LeaderEpochCache((epochEntries ?? []).map(([epoch, startOffset]) => ({ epoch: epoch!, startOffset: startOffset! })));

    const recoveryPoint = report.cleanShutdown ? Infinity : (checkpointedRecoveryPoint ?? 0);
    const nowMs = this.clock.nowMs();
    const loaded: LogSegment[] = [];
    for (let index = 0; index < baseOffsets.length; index++) {
      const base = baseOffsets[index]!;
      const segment = await LogSegment.open(this.dir, base, this.filePool, this.segmentSettings(), nowMs);
      const nextBase = baseOffsets[index + 1] ?? Infinity;
      // Recover the segment holding the recovery point and all after it (Kafka's rule).
      const mustRecover = nextBase > recoveryPoint;
      const indexesOk = !mustRecover && (await segment.loadIndexSummary());
      if (indexesOk) {
        loaded.push(segment);
        continue;
      }
      const minBaseOffset = loaded.at(-1)?.nextOffset ?? 0;
      const result = await segment.recover(minBaseOffset, (batch) => {
        this.epochs.assign(batch.partitionLeaderEpoch, batch.baseOffset);
      });
      if (mustRecover) report.segmentsRecovered.push(base);
      report.indexesRebuilt.push(base);
      loaded.push(segment);
      if (result.truncatedBytes === 0) {
        await segment.persistIndexes({ sync: false, final: index < baseOffsets.length - 1 });
      } else {
        report.truncation = {
          segmentBaseOffset: base,
          position: result.validBytes,
          bytes: result.truncatedBytes,
          reason: result.problem ?? 'invalid batch',
          droppedFromOffset: segment.nextOffset,
        };
        report.droppedBytes += result.truncatedBytes;
        // Nothing after a bad batch can be trusted to follow it: drop the later segments.
        for (const laterBase of baseOffsets.slice(index + 1)) {
          const later = await LogSegment.open(this.dir, laterBase, this.filePool, this.segmentSettings(), nowMs);
          report.droppedSegments.push({ baseOffset: laterBase, bytes: later.sizeBytes });
          report.droppedBytes += later.sizeBytes;
          await later.deleteFiles();
        }
        await syncDirectory(this.dir);
        await segment.truncateToValid();
        await segment.persistIndexes({ sync: false, final: false });
        break;
      }
    }
    // A new partition's directory has no segment yet: nothing was shut down, cleanly or not.
    const fresh = loaded.length === 0;
    if (fresh) {
      loaded.push(await LogSegment.create(this.dir, checkpointedLogStart ?? 0, this.filePool, this.segmentSettings(), nowMs));
    }
    this.segments = loaded;
    this.active.file.setPinned(true);
    // Appends add entries to the active segment's indexes, so they must be in memory.
    await this.active.loadedIndexes();
    const last = this.active;
    this.nextOffset = Math.max(last.nextOffset, last.baseOffset);
    this.logStart = Math.min(Math.max(checkpointedLogStart ?? 0, loaded[0]!.baseOffset), this.nextOffset);
    this.recoveryPointValue = this.nextOffset;

    if (report.segmentsRecovered.length > 0 || report.truncation !== undefined) {
      // Recovered data is now trusted: make it (and any truncation) durable before saying so.
      for (const segment of loaded) {
        if (report.segmentsRecovered.includes(segment.baseOffset)) await segment.syncLog();
      }
    }
    let epochsChanged = this.epochs.truncateFromEnd(this.nextOffset);
    epochsChanged = this.epochs.truncateFromStart(this.logStart) || epochsChanged;
    if (epochsChanged || epochEntries === undefined) await this.persistEpochs();
    await Promise.all([this.writeRecoveryPoint(), this.writeLogStart()]);
    if (report.cleanShutdown) await rmIfExists(path.join(this.dir, CLEAN_SHUTDOWN_FILE));
    await syncDirectory(this.dir);

    if (report.truncation !== undefined || report.droppedSegments.length > 0) {
      this.logger.warn(
        {
          dir: this.dir,
          truncation: report.truncation,
          droppedSegments: report.droppedSegments,
          droppedBytes: report.droppedBytes,
          logEndOffset: this.nextOffset,
        },
        'recovery dropped a torn or corrupt tail: offsets from droppedFromOffset on are gone from this replica',
      );
    }
    if (!report.cleanShutdown && !fresh) {
      this.logger.info(
        { dir: this.dir, segmentsRecovered: report.segmentsRecovered, logEndOffset: this.nextOffset },
        'recovered the log after an unclean shutdown',
      );
    }
  }

  /**
   * Completes a compaction swap interrupted by a crash (Kafka's LogLoader): the `.swap` file is
   * complete (it was fsynced before the rename that created it), so the old segments it replaces,
   * those whose base offsets fall inside its offset range, are removed and it takes its final name.
   */
  private async completeSwap(name: string, report: RecoveryReport): Promise<void> {
    const base = parseSegmentBaseOffset(name);
    const swapPath = path.join(this.dir, name);
    if (base === undefined) {
      await rmIfExists(swapPath);
      return;
    }
    const handle = await fs.open(swapPath, 'r+');
    let nextOffset = base;
    try {
      const { size } = await handle.stat();
      const stop = await scanBatches(handle, 0, size, { verify: true, minBaseOffset: base }, (batch) => {
        nextOffset = batch.lastOffset + 1;
      });
      if (stop.position < size) await handle.truncate(stop.position);
    } finally {
      await handle.close();
    }
    const names = await fs.readdir(this.dir);
    for (const other of names) {
      const otherBase = parseSegmentBaseOffset(other);
      if (otherBase === undefined || other === name) continue;
      const replaced = otherBase === base || (otherBase >= base && otherBase < nextOffset);
      if (replaced && (other.endsWith(LOG_FILE_SUFFIX) || other.endsWith(INDEX_FILE_SUFFIX) || other.endsWith(TIME_INDEX_FILE_SUFFIX))) {
        await rmIfExists(path.join(this.dir, other));
      }
    }
    await fs.rename(swapPath, path.join(this.dir, segmentFileName(base, LOG_FILE_SUFFIX)));
    await syncDirectory(this.dir);
    report.swapsCompleted.push(base);
  }

  /**
   * A replica that becomes leader in `epoch` records that the epoch starts at `offset` (its log
   * end offset) before it accepts any append (KIP-101). Followers asking where an older epoch ends
   * then learn where this leader's log diverges from theirs even before the first batch of the
   * new epoch is written. Persisted before the promise resolves; an epoch not newer than the
   * latest one is ignored.
   */
  assignEpochStartOffset(epoch: number, offset: number): Promise<void> {
    return this.exclusive(async () => {
      invariant(epoch >= 0 && offset >= this.logStart && offset <= this.nextOffset, () => `epoch ${epoch} cannot start at ${offset} in [${this.logStart}, ${this.nextOffset}]`);
      if (this.epochs.assign(epoch, offset)) await this.persistEpochs();
    });
  }
}

/** Relationships between limits the log relies on; a config breaking them is a bug upstream. */
function checkLogConfig(config: LogConfig): void {
  invariant(
    config.segmentBytes >= BATCH_HEADER_BYTES && config.segmentBytes <= SEGMENT_BYTES_MAX,
    () => `segment.bytes=${config.segmentBytes} must hold a batch header and fit int32 index positions`,
  );
  invariant(config.segmentIndexBytes >= TIME_INDEX_ENTRY_BYTES, 'segment.index.bytes must hold at least one index entry');
  invariant(config.indexIntervalBytes >= 0 && config.maxMessageBytes >= 0, 'index.interval.bytes and max.message.bytes are non-negative');
  invariant(config.flushMessages >= 1 && config.flushMs >= 0 && config.fileDeleteDelayMs >= 0, 'flush and delete delays are non-negative');
  invariant(config.retentionMs >= -1 && config.retentionBytes >= -1, 'retention limits are -1 (none) or non-negative');
  invariant(config.cleanupPolicy.delete || config.cleanupPolicy.compact, 'cleanup.policy names delete, compact or both');
}

function floorSegmentIndex(segments: readonly LogSegment[], offset: number): number {
  let low = 0;
  let high = segments.length - 1;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    if (segments[middle]!.baseOffset <= offset) {
      found = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}

function sumLastOffsetDeltas(validated: ValidatedBatches): number {
  let total = validated.count - 1;
  for (const delta of validated.lastOffsetDeltas) total += delta;
  return total;
}

function lastOffsetOf(validated: ValidatedBatches): number {
  const last = validated.count - 1;
  return batchBaseOffset(validated.buffer, validated.positions[last]!) + validated.lastOffsetDeltas[last]!;
}

function describeFollowerBatches(validated: ValidatedBatches, position: number, out: AppendedBatch[]): AppendResult {
  let maxTimestamp = -1;
  let lastOffset = -1;
  for (let index = 0; index < validated.count; index++) {
    const at = validated.positions[index]!;
    lastOffset = batchBaseOffset(validated.buffer, at) + validated.lastOffsetDeltas[index]!;
    const timestamp = validated.maxTimestamps[index]!;
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    out.push({ position: position + at, size: validated.sizes[index]!, lastOffset, maxTimestamp: timestamp });
  }
  return { baseOffset: batchBaseOffset(validated.buffer, 0), lastOffset, logEndOffset: lastOffset + 1, maxTimestamp };
}
