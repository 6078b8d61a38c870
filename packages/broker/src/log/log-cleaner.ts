// Log compaction (cleanup.policy=compact or compact,delete), after Kafka's LogCleaner.
//
// A log is split at the cleaner checkpoint into a clean section (compacted before) and a dirty
// section (appended since). When dirty bytes / (clean + dirty bytes) reaches
// min.cleanable.dirty.ratio, the cleaner:
//   1. builds an offset map key -> latest offset over the dirty section (bounded by
//      OFFSET_MAP_KEYS_MAX; a full map ends the dirty section early, at a segment boundary);
//   2. rewrites every inactive segment up to the end of the dirty section, in groups that fit in
//      segment.bytes, keeping a record only if no later record has its key; tombstones (null
//      values) also go once older than delete.retention.ms; offsets are kept (gaps allowed);
//   3. swaps each rewritten group in with PartitionLog.swapCleanedSegment (crash-safe steps),
//   4. moves the cleaner checkpoint to the end of the dirty section.
// The active segment is never touched; segments reaching past the high watermark (which may
// still be truncated) and records newer than min.compaction.lag.ms stay dirty.
//
// Safety: a record is dropped only when a record with the same key and a higher offset is kept
// (in the same rewrite or in a later, untouched segment), so the newest value of every key
// survives; a crash at any step leaves either the old segments or the complete swap (see
// PartitionLog.completeSwap).
//
// Records are decoded with @raftka/protocol's decoder (any codec). A batch that keeps all its
// records is copied byte for byte; one that loses some is re-encoded, uncompressed, keeping the
// original offsets (compaction-records.ts).
//
// Simplifications, stated: tombstone age is the tombstone's own timestamp (Kafka uses the time
// the tombstone was first cleaned); control batches are kept whole; a compressed batch that
// loses records is rewritten uncompressed (Kafka recompresses it); batches emptied by
// compaction are dropped (Kafka keeps an empty batch for idempotent producer state).

import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { BATCH_OFFSET_ATTRIBUTES, decodeRecordBatch, isControlBatch, type DecodedRecord } from '@raftka/protocol';
import { encodeCompactedBatch } from './compaction-records.js';
import { CLEANED_FILE_SUFFIX, LOG_FILE_SUFFIX, scanBatches, writeFully, segmentFileName, type LogSegment, type ScannedBatch } from './log-segment.js';
import type { PartitionLog } from './partition-log.js';
import { systemClock, type Clock } from './time.js';

/** Keys held in one cleaning's offset map at most (Kafka bounds it by log.cleaner.dedupe.buffer.size). */
export const OFFSET_MAP_KEYS_MAX = 4_000_000;
/** Bytes buffered before the cleaner writes to its output file. */
const CLEANER_WRITE_BUFFER_BYTES = 1024 * 1024;

export interface DirtyStats {
  firstDirtyOffset: number;
  /** End of the section the cleaner may touch (active segment or min.compaction.lag.ms). */
  firstUncleanableOffset: number;
  cleanBytes: number;
  dirtyBytes: number;
  dirtyRatio: number;
}

export interface CleanResult {
  segmentsRewritten: number;
  bytesRead: number;
  bytesWritten: number;
  recordsRead: number;
  recordsRetained: number;
  /** The new cleaner checkpoint: everything below is compacted. */
  cleanedUpTo: number;
}

export interface LogCleanerOptions {
  clock?: Clock;
  offsetMapKeysMax?: number;
}

export class LogCleaner {
  private readonly clock: Clock;
  private readonly offsetMapKeysMax: number;

  constructor(options: LogCleanerOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.offsetMapKeysMax = options.offsetMapKeysMax ?? OFFSET_MAP_KEYS_MAX;
  }

  async dirtyStats(log: PartitionLog): Promise<DirtyStats> {
    const segments = log.inactiveSegments();
    let checkpoint = (await log.readCleanerCheckpoint()) ?? 0;
    // A log truncated below its checkpoint holds new, uncleaned data there: start over.
    if (checkpoint > log.logEndOffset) checkpoint = 0;
    const firstDirtyOffset = Math.max(checkpoint, log.logStartOffset);
    const lagHorizonMs = this.clock.nowMs() - log.config.minCompactionLagMs;
    const highWatermark = log.highWatermark;
    // The active segment is never cleaned; a segment reaching past the high watermark or
    // holding records newer than min.compaction.lag.ms ends the cleanable section earlier.
    const activeBase = log.segmentBaseOffsets.at(-1)!;
    let firstUncleanableOffset = activeBase;
    let cleanBytes = 0;
    let dirtyBytes = 0;
    for (let index = 0; index < segments.length; index++) {
      const segment = segments[index]!;
      const segmentEnd = segments[index + 1]?.baseOffset ?? activeBase;
      if ((log.config.minCompactionLagMs > 0 && segment.maxTimestamp > lagHorizonMs) || segmentEnd > highWatermark) {
        firstUncleanableOffset = segment.baseOffset;
        break;
      }
      if (segmentEnd <= firstDirtyOffset) cleanBytes += segment.sizeBytes;
      else dirtyBytes += segment.sizeBytes;
    }
    const total = cleanBytes + dirtyBytes;
    return { firstDirtyOffset, firstUncleanableOffset, cleanBytes, dirtyBytes, dirtyRatio: total === 0 ? 0 : dirtyBytes / total };
  }

  /**
   * Compacts `log` when its policy includes compact and its dirty ratio is high enough (or
   * `force`). Returns undefined when there was nothing to do or the log changed under it.
   */
  async clean(log: PartitionLog, options: { force?: boolean } = {}): Promise<CleanResult | undefined> {
    if (!log.config.cleanupPolicy.compact) return undefined;
    const stats = await this.dirtyStats(log);
    if (stats.dirtyBytes === 0) return undefined;
    if (!options.force && stats.dirtyRatio < log.config.minCleanableDirtyRatio) return undefined;
    const segments = log.inactiveSegments().filter((segment) => segment.baseOffset < stats.firstUncleanableOffset);
    const result: CleanResult = { segmentsRewritten: 0, bytesRead: 0, bytesWritten: 0, recordsRead: 0, recordsRetained: 0, cleanedUpTo: 0 };

    // 1. Offset map over the dirty segments.
    const offsetMap = new Map<string, number>();
    let endIndex = segments.length;
    for (let index = 0; index < segments.length; index++) {
      const segment = segments[index]!;
      const segmentEnd = segments[index + 1]?.baseOffset ?? stats.firstUncleanableOffset;
      if (segmentEnd <= stats.firstDirtyOffset) continue;
      await forEachBatch(segment, async (batch) => {
        if (!isRewritable(batch)) return;
        const { records } = await decodeRecordBatch(batch.buffer, batch.bufferPosition);
        for (const record of records) {
          if (record.key !== null) offsetMap.set(record.key.toString('latin1'), record.offset);
        }
      });
      if (offsetMap.size >= this.offsetMapKeysMax) {
        endIndex = index + 1;
        break;
      }
    }
    const cleanable = segments.slice(0, endIndex);
    if (cleanable.length === 0) return undefined;
    const cleanedUpTo = segments[endIndex]?.baseOffset ?? stats.firstUncleanableOffset;

    // 2-3. Rewrite in groups that fit one segment, and swap each group in.
    const tombstoneHorizonMs = this.clock.nowMs() - log.config.deleteRetentionMs;
    const keep = (record: DecodedRecord): boolean => {
      if (record.key === null) return true;
      const latest = offsetMap.get(record.key.toString('latin1'));
      if (latest !== undefined && record.offset < latest) return false;
      return record.value !== null || record.timestamp >= tombstoneHorizonMs;
    };
    for (const group of groupSegments(cleanable, log.config.segmentBytes)) {
      const first = group[0]!;
      const cleanedPath = path.join(log.dir, segmentFileName(first.baseOffset, LOG_FILE_SUFFIX + CLEANED_FILE_SUFFIX));
      const output = await CleanedFileWriter.create(cleanedPath);
      try {
        for (const segment of group) {
          result.bytesRead += segment.sizeBytes;
          await forEachBatch(segment, async (batch) => {
            if (!isRewritable(batch)) {
              await output.write(Buffer.from(batch.buffer.subarray(batch.bufferPosition, batch.bufferPosition + batch.size)));
              return;
            }
            const { header, records } = await decodeRecordBatch(batch.buffer, batch.bufferPosition);
            const retained = records.filter(keep);
            result.recordsRead += records.length;
            result.recordsRetained += retained.length;
            if (retained.length === records.length) {
              await output.write(Buffer.from(batch.buffer.subarray(batch.bufferPosition, batch.bufferPosition + batch.size)));
            } else if (retained.length > 0) {
              await output.write(encodeCompactedBatch(retained, header));
            }
          });
        }
        await output.finish();
      } catch (error) {
        await output.abort();
        throw error;
      }
      result.bytesWritten += output.bytesWritten;
      if (!(await log.swapCleanedSegment(group, cleanedPath))) return undefined;
      result.segmentsRewritten += group.length;
    }

    // 4. Everything below cleanedUpTo is now compacted.
    await log.writeCleanerCheckpoint(cleanedUpTo);
    result.cleanedUpTo = cleanedUpTo;
    return result;
  }
}

/** Control batches (transaction markers) are kept whole: they carry no keyed user records. */
function isRewritable(batch: ScannedBatch): boolean {
  return !isControlBatch(batch.buffer.readInt16BE(batch.bufferPosition + BATCH_OFFSET_ATTRIBUTES));
}

async function forEachBatch(segment: LogSegment, visit: (batch: ScannedBatch) => void | Promise<void>): Promise<void> {
  await segment.file.withHandle((handle) =>
    scanBatches(handle, 0, segment.sizeBytes, { verify: true, minBaseOffset: segment.baseOffset }, async (batch) => {
      await visit(batch);
    }),
  );
}

/** Consecutive segments whose combined size fits in one segment (at least one per group). */
function groupSegments(segments: readonly LogSegment[], segmentBytesMax: number): LogSegment[][] {
  const groups: LogSegment[][] = [];
  let current: LogSegment[] = [];
  let currentBytes = 0;
  for (const segment of segments) {
    if (current.length > 0 && currentBytes + segment.sizeBytes > segmentBytesMax) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(segment);
    currentBytes += segment.sizeBytes;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Buffered writer for a `.cleaned` file, fsynced before the swap may use it. */
class CleanedFileWriter {
  bytesWritten = 0;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;

  private constructor(
    private readonly filePath: string,
    private readonly handle: FileHandle,
  ) {}

  static async create(filePath: string): Promise<CleanedFileWriter> {
    return new CleanedFileWriter(filePath, await fs.open(filePath, 'w'));
  }

  async write(bytes: Buffer): Promise<void> {
    this.buffered.push(bytes);
    this.bufferedBytes += bytes.length;
    if (this.bufferedBytes >= CLEANER_WRITE_BUFFER_BYTES) await this.drain();
  }

  private async drain(): Promise<void> {
    if (this.bufferedBytes === 0) return;
    await writeFully(this.handle, this.buffered, this.bytesWritten);
    this.bytesWritten += this.bufferedBytes;
    this.buffered = [];
    this.bufferedBytes = 0;
  }

  async finish(): Promise<void> {
    await this.drain();
    await this.handle.sync();
    await this.handle.close();
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await fs.rm(this.filePath, { force: true });
  }
}
