// One segment of a partition log: `<baseOffset>.log` holding whole record batches back to back,
// plus its sparse `.index` and `.timeindex` (see segment-index.ts). File names carry the base
// offset as 20 zero-padded digits so that a directory listing sorts in offset order, as Kafka's.
//
// Appends happen only on the active (last) segment and only from the log's serialized append
// queue. `sizeBytes` moves forward only after a write completes, and readers never read past
// it, so a reader sees whole batches or nothing of a batch.

import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import {
  BATCH_HEADER_BYTES,
  BATCH_OFFSET_MAGIC,
  RECORD_BATCH_MAGIC,
  RaftkaError,
  invariant,
  verifyBatchCrc,
} from '@raftka/protocol';
import {
  BATCH_PREFIX_BYTES,
  batchBaseOffset,
  batchLastOffsetDelta,
  batchMaxTimestamp,
  batchPartitionLeaderEpoch,
  batchSize,
} from './batch-validation.js';
import type { FileHandlePool } from './file-pool.js';
import { SegmentFile } from './file-pool.js';
import { OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES } from './log-config.js';
import { OffsetIndex, TimeIndex, decodeOffsetEntry, decodeTimeEntry, type OffsetPosition, type TimestampOffset } from './segment-index.js';

export const LOG_FILE_SUFFIX = '.log';
export const INDEX_FILE_SUFFIX = '.index';
export const TIME_INDEX_FILE_SUFFIX = '.timeindex';
/** A compacted segment being written; deleted on open (the cleaning did not finish). */
export const CLEANED_FILE_SUFFIX = '.cleaned';
/** A complete compacted segment replacing older ones; completed on open. */
export const SWAP_FILE_SUFFIX = '.swap';
/** A segment that left the log and waits for file.delete.delay.ms before its files go. */
export const DELETED_FILE_SUFFIX = '.deleted';

/** Smallest read for a lookup with minOneBatch: covers typical batches in one syscall. */
export const READ_BYTES_MIN = 64 * 1024;

/** Chunk size for scans (recovery, index rebuild): large reads keep syscalls per GB low. */
export const SCAN_CHUNK_BYTES = 1024 * 1024;

export function segmentFileName(baseOffset: number, suffix: string): string {
  return `${String(baseOffset).padStart(20, '0')}${suffix}`;
}

/** The base offset encoded in a segment file name, or undefined for other files. */
export function parseSegmentBaseOffset(fileName: string): number | undefined {
  const match = /^(\d{20})\./.exec(fileName);
  if (!match) return undefined;
  const value = Number(match[1]);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** A stored batch met during a scan. `buffer[bufferPosition]` is its first byte. */
export interface ScannedBatch {
  position: number;
  size: number;
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
  partitionLeaderEpoch: number;
  buffer: Buffer;
  bufferPosition: number;
}

export type ScanStop =
  | { kind: 'end'; position: number }
  | { kind: 'stopped'; position: number }
  | { kind: 'invalid'; position: number; reason: string };

export interface ScanOptions {
  /** Check magic and CRC32C (reads every byte); otherwise only headers are read. */
  verify: boolean;
  /** The first batch's base offset must be at least this (offsets only grow). */
  minBaseOffset: number;
}

/**
 * Walks the batches of a segment file in [start, end), reading in SCAN_CHUNK_BYTES chunks.
 * Stops at the first batch that is torn (extends past `end`) or, with `verify`, invalid; `visit`
 * returning false stops the scan early. Used by recovery, index rebuilds and the cleaner.
 */
export async function scanBatches(
  handle: FileHandle,
  start: number,
  end: number,
  options: ScanOptions,
  visit: (batch: ScannedBatch) => boolean | void | Promise<boolean | void>,
): Promise<ScanStop> {
  let chunk = Buffer.allocUnsafe(Math.min(SCAN_CHUNK_BYTES, Math.max(BATCH_HEADER_BYTES, end - start)));
  let chunkStart = start;
  let chunkLength = 0;
  const ensure = async (position: number, bytes: number): Promise<boolean> => {
    if (position >= chunkStart && position + bytes <= chunkStart + chunkLength) return true;
    const length = Math.min(end - position, Math.max(SCAN_CHUNK_BYTES, bytes));
    if (length < bytes) return false;
    if (chunk.length < length) chunk = Buffer.allocUnsafe(length);
    const { bytesRead } = await handle.read(chunk, 0, length, position);
    chunkStart = position;
    chunkLength = bytesRead;
    return bytesRead >= bytes;
  };
  let position = start;
  let minBaseOffset = options.minBaseOffset;
  while (position < end) {
    if (!(await ensure(position, BATCH_HEADER_BYTES))) {
      return { kind: 'invalid', position, reason: `torn batch header: ${end - position} bytes left at the end of the segment` };
    }
    let at = position - chunkStart;
    const size = batchSize(chunk, at);
    if (size < BATCH_HEADER_BYTES) return { kind: 'invalid', position, reason: `batch length ${size} is shorter than a header` };
    if (position + size > end) {
      return { kind: 'invalid', position, reason: `torn batch: ${size} bytes declared, ${end - position} present` };
    }
    if (options.verify) {
      if (!(await ensure(position, size))) return { kind: 'invalid', position, reason: 'batch could not be read whole' };
      at = position - chunkStart;
      const magic = chunk.readInt8(at + BATCH_OFFSET_MAGIC);
      if (magic !== RECORD_BATCH_MAGIC) return { kind: 'invalid', position, reason: `magic ${magic} is not 2` };
      if (!verifyBatchCrc(chunk.subarray(0, at + size), at)) return { kind: 'invalid', position, reason: 'CRC32C mismatch' };
    }
    const baseOffset = batchBaseOffset(chunk, at);
    const lastOffsetDelta = batchLastOffsetDelta(chunk, at);
    if (options.verify && (lastOffsetDelta < 0 || baseOffset < minBaseOffset)) {
      return { kind: 'invalid', position, reason: `offsets [${baseOffset}, ${baseOffset + lastOffsetDelta}] do not follow ${minBaseOffset - 1}` };
    }
    const batch: ScannedBatch = {
      position,
      size,
      baseOffset,
      lastOffset: baseOffset + lastOffsetDelta,
      maxTimestamp: batchMaxTimestamp(chunk, at),
      partitionLeaderEpoch: batchPartitionLeaderEpoch(chunk, at),
      buffer: chunk,
      bufferPosition: at,
    };
    minBaseOffset = batch.lastOffset + 1;
    position += size;
    // A visitor may await (the cleaner writes output); the chunk is not refilled meanwhile.
    let verdict = visit(batch);
    if (verdict instanceof Promise) verdict = await verdict;
    if (verdict === false) return { kind: 'stopped', position };
  }
  return { kind: 'end', position };
}

/** One batch as the log appends it: its place in the segment and what the indexes need. */
export interface AppendedBatch {
  position: number;
  size: number;
  lastOffset: number;
  maxTimestamp: number;
}

export interface SegmentRecovery {
  validBytes: number;
  truncatedBytes: number;
  /** Why the tail was cut, when it was. */
  problem: string | undefined;
  /** Offset of the first dropped batch's position, for the report. */
  firstDroppedPosition: number | undefined;
}

export interface SegmentSettings {
  indexIntervalBytes: number;
  segmentIndexBytes: number;
}

export class LogSegment {
  readonly baseOffset: number;
  readonly dir: string;
  readonly file: SegmentFile;
  // The indexes of inactive segments are loaded on first use and dropped again when the pool
  // closes the segment's idle file, so memory for indexes is bounded like open files are
  // (Kafka gets the same effect from mmap). A reader keeps the objects it got from
  // `loadedIndexes()`: dropping replaces them, it never empties them in place.
  private offsetIndex: OffsetIndex;
  private timeIndex: TimeIndex;
  private indexesInMemory = true;
  private loadingIndexes: Promise<void> | undefined;
  /** Wall-clock creation (or load) time: what segment.ms counts from. */
  readonly createdMs: number;
  private readonly settings: SegmentSettings;
  // Invariant: bytes [0, sizeBytes) of the file are whole batches; readers stop here.
  private committedBytes = 0;
  // Invariant: lastOffset >= baseOffset - 1 (baseOffset - 1 means empty).
  private lastOffsetValue: number;
  private maxTimestampValue = -1;
  private offsetOfMaxTimestampValue: number;
  private bytesSinceLastIndexEntry = 0;
  /** Set once the segment's contents were truncated or removed: cleaners must not swap it. */
  changed = false;

  private constructor(dir: string, baseOffset: number, pool: FileHandlePool, settings: SegmentSettings, nowMs: number) {
    this.dir = dir;
    this.baseOffset = baseOffset;
    this.settings = settings;
    this.file = new SegmentFile(pool, path.join(dir, segmentFileName(baseOffset, LOG_FILE_SUFFIX)));
    this.offsetIndex = new OffsetIndex(settings.segmentIndexBytes);
    this.timeIndex = new TimeIndex(settings.segmentIndexBytes);
    this.file.onHandleClosed = () => this.dropIndexes();
    this.createdMs = nowMs;
    this.lastOffsetValue = baseOffset - 1;
    this.offsetOfMaxTimestampValue = baseOffset - 1;
  }

  /** Creates a new empty segment (its files must not exist). */
  static async create(dir: string, baseOffset: number, pool: FileHandlePool, settings: SegmentSettings, nowMs: number): Promise<LogSegment> {
    const segment = new LogSegment(dir, baseOffset, pool, settings, nowMs);
    const handle = await fs.open(segment.file.path, 'wx');
    await handle.close();
    await Promise.all([rmIfExists(segment.indexPath), rmIfExists(segment.timeIndexPath)]);
    return segment;
  }

  /** Opens an existing segment file without reading it; call `loadIndexSummary` or `recover` next. */
  static async open(dir: string, baseOffset: number, pool: FileHandlePool, settings: SegmentSettings, nowMs: number): Promise<LogSegment> {
    const segment = new LogSegment(dir, baseOffset, pool, settings, nowMs);
    const stat = await fs.stat(segment.file.path);
    segment.committedBytes = stat.size;
    return segment;
  }

  get indexPath(): string {
    return path.join(this.dir, segmentFileName(this.baseOffset, INDEX_FILE_SUFFIX));
  }

  get timeIndexPath(): string {
    return path.join(this.dir, segmentFileName(this.baseOffset, TIME_INDEX_FILE_SUFFIX));
  }

  get sizeBytes(): number {
    return this.committedBytes;
  }

  get lastOffset(): number {
    return this.lastOffsetValue;
  }

  /** One past the last offset stored here (baseOffset when empty). */
  get nextOffset(): number {
    return this.lastOffsetValue + 1;
  }

  get isEmpty(): boolean {
    return this.committedBytes === 0;
  }

  /** Largest batch max-timestamp in the segment, -1 when empty. */
  get maxTimestamp(): number {
    return this.maxTimestampValue;
  }

  /** Only meaningful for the active segment, whose indexes are always in memory. */
  get indexIsFull(): boolean {
    return this.offsetIndex.isFull || this.timeIndex.isFull;
  }

  /** Entries currently in memory (tests and diagnostics). */
  get indexesLoaded(): boolean {
    return this.indexesInMemory;
  }

  /** The indexes, read from their files first if they were dropped from memory. */
  async loadedIndexes(): Promise<{ offsetIndex: OffsetIndex; timeIndex: TimeIndex }> {
    if (!this.indexesInMemory) {
      this.loadingIndexes ??= this.loadFullIndexes().finally(() => {
        this.loadingIndexes = undefined;
      });
      await this.loadingIndexes;
    }
    return { offsetIndex: this.offsetIndex, timeIndex: this.timeIndex };
  }

  private async loadFullIndexes(): Promise<void> {
    const offsetIndex = new OffsetIndex(this.settings.segmentIndexBytes);
    const timeIndex = new TimeIndex(this.settings.segmentIndexBytes);
    const [offsetBytes, timeBytes] = await Promise.all([readIfExists(this.indexPath), readIfExists(this.timeIndexPath)]);
    const ok =
      offsetBytes !== undefined &&
      timeBytes !== undefined &&
      offsetIndex.load(offsetBytes, this.committedBytes) &&
      timeIndex.load(timeBytes, this.lastOffsetValue - this.baseOffset + 1);
    if (ok) {
      this.offsetIndex = offsetIndex;
      this.timeIndex = timeIndex;
      this.indexesInMemory = true;
      return;
    }
    // The files changed since open (or hold a bad entry before their last one): rebuild them.
    this.offsetIndex = offsetIndex;
    this.timeIndex = timeIndex;
    this.indexesInMemory = true;
    await this.recover(this.baseOffset, undefined, { verify: false });
    await this.persistIndexes({ sync: false, final: true });
  }

  /** Drops in-memory index entries that are safely in their files (inactive segments only). */
  dropIndexes(): void {
    if (!this.indexesInMemory || this.loadingIndexes !== undefined || this.file.isPinned) return;
    if (!this.offsetIndex.isPersisted || !this.timeIndex.isPersisted) return;
    this.offsetIndex = new OffsetIndex(this.settings.segmentIndexBytes);
    this.timeIndex = new TimeIndex(this.settings.segmentIndexBytes);
    this.indexesInMemory = false;
  }

  /** Writes `chunks` (whole, already validated batches described by `batches`) at the end. */
  async append(chunks: Buffer[], batches: readonly AppendedBatch[]): Promise<void> {
    invariant(batches.length > 0 && batches[0]!.position === this.committedBytes, 'append must start at the end of the segment');
    invariant(this.indexesInMemory, 'the active segment keeps its indexes in memory');
    let total = 0;
    for (const chunk of chunks) total += chunk.length;
    const last = batches[batches.length - 1]!;
    invariant(last.position + last.size === this.committedBytes + total, 'append chunks and batch positions disagree');
    await this.file.withHandle(async (handle) => {
      try {
        await writeFully(handle, chunks, this.committedBytes);
      } catch (error) {
        // A failed write (disk full) may leave a torn tail; cut it so the file stays whole batches.
        await handle.truncate(this.committedBytes).catch(() => undefined);
        throw new RaftkaError('KAFKA_STORAGE_ERROR', `write to ${this.file.path} failed; check the disk and free space`, { cause: error });
      }
    });
    for (const batch of batches) this.indexBatch(batch);
    // Only now may readers see the new bytes.
    this.committedBytes += total;
  }

  private indexBatch(batch: AppendedBatch): void {
    invariant(batch.lastOffset > this.lastOffsetValue, 'offsets must grow within a segment');
    if (batch.maxTimestamp > this.maxTimestampValue) {
      this.maxTimestampValue = batch.maxTimestamp;
      this.offsetOfMaxTimestampValue = batch.lastOffset;
    }
    if (this.bytesSinceLastIndexEntry > this.settings.indexIntervalBytes && !this.offsetIndex.isFull) {
      this.offsetIndex.append(batch.lastOffset - this.baseOffset, batch.position);
      this.timeIndex.maybeAppend(this.maxTimestampValue, this.offsetOfMaxTimestampValue - this.baseOffset);
      this.bytesSinceLastIndexEntry = 0;
    }
    this.bytesSinceLastIndexEntry += batch.size;
    this.lastOffsetValue = batch.lastOffset;
  }

  /**
   * Reads whole batches starting with the one that contains `offset` (or the first after it),
   * up to `maxBytes` (at least one batch with `minOneBatch`) and only batches starting below
   * `maxOffset`. Returns an empty buffer when nothing qualifies here.
   */
  async read(offset: number, maxBytes: number, maxOffset: number, minOneBatch: boolean): Promise<Buffer> {
    const end = this.committedBytes;
    const { offsetIndex } = await this.loadedIndexes();
    let scanFrom = offsetIndex.lookupPosition(offset - this.baseOffset);
    if (scanFrom >= end) return EMPTY;
    return this.file.withHandle(async (handle) => {
      // One read usually covers both the short forward scan from the index entry and the data;
      // reading at least READ_BYTES_MIN lets a small-maxBytes read with minOneBatch (a lookup)
      // get its whole batch in the same syscall.
      const slack = this.settings.indexIntervalBytes + BATCH_HEADER_BYTES;
      while (scanFrom < end) {
        const length = Math.min(end - scanFrom, Math.max(maxBytes, minOneBatch ? READ_BYTES_MIN : 0) + slack);
        const buffer = Buffer.allocUnsafe(Math.max(length, BATCH_PREFIX_BYTES));
        const { bytesRead } = await handle.read(buffer, 0, length, scanFrom);
        let at = 0;
        while (at + BATCH_PREFIX_BYTES <= bytesRead) {
          const size = batchSize(buffer, at);
          const baseOffset = batchBaseOffset(buffer, at);
          if (baseOffset + batchLastOffsetDelta(buffer, at) >= offset) {
            if (baseOffset >= maxOffset) return EMPTY;
            return this.collect(handle, buffer, bytesRead, at, scanFrom + at, maxBytes, maxOffset, minOneBatch);
          }
          at += size;
        }
        // A file shorter than committed was truncated under this read; no progress means the
        // index pointed into the middle of a batch, which a loaded index never does.
        if (bytesRead < length || at === 0) return EMPTY;
        scanFrom += at;
      }
      return EMPTY;
    });
  }

  private async collect(
    handle: FileHandle,
    buffer: Buffer,
    bytesRead: number,
    first: number,
    firstPosition: number,
    maxBytes: number,
    maxOffset: number,
    minOneBatch: boolean,
  ): Promise<Buffer> {
    let at = first;
    while (at + BATCH_PREFIX_BYTES <= bytesRead) {
      const size = batchSize(buffer, at);
      if (at + size > bytesRead || at + size - first > maxBytes) break;
      if (at > first && batchBaseOffset(buffer, at) >= maxOffset) break;
      at += size;
    }
    if (at > first) return buffer.subarray(first, at);
    if (!minOneBatch) return EMPTY;
    // The first batch alone is larger than maxBytes or than what was read: read it whole.
    const size = batchSize(buffer, first);
    const whole = Buffer.allocUnsafe(size);
    const { bytesRead: wholeRead } = await handle.read(whole, 0, size, firstPosition);
    return wholeRead === size ? whole : EMPTY;
  }

  /** Position and base offset of the first batch whose last offset is >= `offset`, if any. */
  async findBatch(offset: number): Promise<{ position: number; baseOffset: number } | undefined> {
    const { offsetIndex } = await this.loadedIndexes();
    const start = offsetIndex.lookupPosition(offset - this.baseOffset);
    let found: { position: number; baseOffset: number } | undefined;
    await this.file.withHandle((handle) =>
      scanBatches(handle, start, this.committedBytes, { verify: false, minBaseOffset: 0 }, (batch) => {
        if (batch.lastOffset < offset) return true;
        found = { position: batch.position, baseOffset: batch.baseOffset };
        return false;
      }),
    );
    return found;
  }

  /** First batch (at or after `minOffset`) whose max timestamp is >= `timestamp`. */
  async findByTimestamp(timestamp: number, minOffset: number): Promise<{ offset: number; timestamp: number } | undefined> {
    const { offsetIndex, timeIndex } = await this.loadedIndexes();
    const entry = timeIndex.lookup(timestamp);
    const fromOffset = Math.max(minOffset, entry === undefined ? this.baseOffset : this.baseOffset + entry.relativeOffset);
    const start = offsetIndex.lookupPosition(fromOffset - this.baseOffset);
    let found: { offset: number; timestamp: number } | undefined;
    await this.file.withHandle((handle) =>
      scanBatches(handle, start, this.committedBytes, { verify: false, minBaseOffset: 0 }, (batch) => {
        if (batch.lastOffset < minOffset || batch.maxTimestamp < timestamp) return true;
        found = { offset: Math.max(batch.baseOffset, minOffset), timestamp: batch.maxTimestamp };
        return false;
      }),
    );
    return found;
  }

  /**
   * Removes every batch whose last offset is >= `offset`. Returns the base offset of the first
   * removed batch (undefined when nothing was removed) and the bytes removed.
   */
  async truncateTo(offset: number): Promise<{ firstRemovedBaseOffset: number | undefined; removedBytes: number }> {
    const batch = await this.findBatch(offset);
    if (batch === undefined) return { firstRemovedBaseOffset: undefined, removedBytes: 0 };
    await this.loadedIndexes();
    const removedBytes = this.committedBytes - batch.position;
    // Readers stop at the committed size: lower it before the file shrinks.
    this.committedBytes = batch.position;
    this.changed = true;
    await this.file.withHandle((handle) => handle.truncate(batch.position));
    this.offsetIndex.truncateToPosition(batch.position);
    this.timeIndex.truncateToOffset(batch.baseOffset - this.baseOffset);
    await this.rescanTail(this.offsetIndex.last, this.timeIndex.last);
    return { firstRemovedBaseOffset: batch.baseOffset, removedBytes };
  }

  /**
   * Recomputes last offset, max timestamp and the index interval counter from the indexes plus a
   * scan of the bytes after the last offset-index entry (bounded by one index interval + batch).
   */
  private async rescanTail(lastEntry: OffsetPosition | undefined, lastTime: TimestampOffset | undefined): Promise<void> {
    this.maxTimestampValue = lastTime?.timestamp ?? -1;
    this.offsetOfMaxTimestampValue = lastTime === undefined ? this.baseOffset - 1 : this.baseOffset + lastTime.relativeOffset;
    this.lastOffsetValue = lastEntry === undefined ? this.baseOffset - 1 : this.baseOffset + lastEntry.relativeOffset;
    this.bytesSinceLastIndexEntry = 0;
    const start = lastEntry?.position ?? 0;
    if (start >= this.committedBytes) return;
    await this.file.withHandle((handle) =>
      scanBatches(handle, start, this.committedBytes, { verify: false, minBaseOffset: 0 }, (batch) => {
        if (batch.maxTimestamp > this.maxTimestampValue) {
          this.maxTimestampValue = batch.maxTimestamp;
          this.offsetOfMaxTimestampValue = batch.lastOffset;
        }
        this.lastOffsetValue = Math.max(this.lastOffsetValue, batch.lastOffset);
        this.bytesSinceLastIndexEntry += batch.size;
      }),
    );
  }

  /**
   * Checks the index files written at the last clean shutdown, roll or flush against the
   * segment, reading only their last entries (as Kafka's sanity check), and derives the last
   * offset and max timestamp from them plus a scan of the bytes after the last indexed batch.
   * The entries themselves are loaded on first use. False when an index is missing or
   * inconsistent (the caller rebuilds).
   */
  async loadIndexSummary(): Promise<boolean> {
    const [offsetLast, timeLast] = await Promise.all([
      readLastEntry(this.indexPath, OFFSET_INDEX_ENTRY_BYTES, this.offsetIndex.maxEntries),
      readLastEntry(this.timeIndexPath, TIME_INDEX_ENTRY_BYTES, this.timeIndex.maxEntries),
    ]);
    if (offsetLast === undefined || timeLast === undefined) return false;
    const last = offsetLast === 'empty' ? undefined : decodeOffsetEntry(offsetLast);
    const lastTime = timeLast === 'empty' ? undefined : decodeTimeEntry(timeLast);
    if (last !== undefined) {
      if (last.position < 0 || last.position >= this.committedBytes || last.relativeOffset < 0) return false;
      // The last entry must point at the start of a batch whose last offset is the entry's.
      const header = Buffer.alloc(BATCH_PREFIX_BYTES);
      const { bytesRead } = await this.file.withHandle(async (handle) => handle.read(header, 0, header.length, last.position));
      if (bytesRead < header.length) return false;
      if (batchBaseOffset(header, 0) + batchLastOffsetDelta(header, 0) !== this.baseOffset + last.relativeOffset) return false;
      if (last.position + batchSize(header, 0) > this.committedBytes) return false;
    }
    await this.rescanTail(last, lastTime);
    if (this.committedBytes > 0 && this.lastOffsetValue < this.baseOffset) return false;
    if (lastTime !== undefined && this.baseOffset + lastTime.relativeOffset > this.lastOffsetValue) return false;
    this.offsetIndex = new OffsetIndex(this.settings.segmentIndexBytes);
    this.timeIndex = new TimeIndex(this.settings.segmentIndexBytes);
    this.indexesInMemory = false;
    return true;
  }

  /**
   * Re-reads the whole segment, verifying every batch (structure, CRC32C, growing offsets from
   * `minBaseOffset`), rebuilds both indexes, and truncates the file at the first bad batch.
   * `onBatch` sees every valid batch (the log uses it to restore leader epochs).
   */
  async recover(
    minBaseOffset: number,
    onBatch: (batch: ScannedBatch) => void = () => undefined,
    options: { verify: boolean } = { verify: true },
  ): Promise<SegmentRecovery> {
    this.offsetIndex.clear();
    this.timeIndex.clear();
    this.indexesInMemory = true;
    this.lastOffsetValue = this.baseOffset - 1;
    this.maxTimestampValue = -1;
    this.offsetOfMaxTimestampValue = this.baseOffset - 1;
    this.bytesSinceLastIndexEntry = 0;
    const fileBytes = this.committedBytes;
    const stop = await this.file.withHandle((handle) =>
      scanBatches(handle, 0, fileBytes, { verify: options.verify, minBaseOffset: Math.max(minBaseOffset, this.baseOffset) }, (batch) => {
        this.indexBatch(batch);
        onBatch(batch);
        return true;
      }),
    );
    const validBytes = stop.position;
    const problem = stop.kind === 'invalid' ? stop.reason : undefined;
    // Readers must not see the bad tail; the file itself is cut by `truncateToValid`, which the
    // log calls only after removing the segments that followed (so a crash in between cannot
    // bring later data back behind a shortened segment).
    this.committedBytes = validBytes;
    return {
      validBytes,
      truncatedBytes: fileBytes - validBytes,
      problem,
      firstDroppedPosition: validBytes < fileBytes ? validBytes : undefined,
    };
  }

  /** Cuts the file to the bytes `recover` found valid. */
  async truncateToValid(): Promise<void> {
    this.changed = true;
    await this.file.withHandle((handle) => handle.truncate(this.committedBytes));
  }

  /**
   * Writes the indexes to their files; a segment becoming inactive (or closing) also records its
   * max timestamp as a final time-index entry so a reload knows it without a scan (as Kafka).
   */
  async persistIndexes(options: { sync: boolean; final: boolean }): Promise<void> {
    if (!this.indexesInMemory) return; // dropped only when the files were already up to date
    if (options.final && this.maxTimestampValue >= 0) {
      this.timeIndex.maybeAppend(this.maxTimestampValue, this.offsetOfMaxTimestampValue - this.baseOffset);
    }
    await Promise.all([
      writeIndexFile(this.indexPath, (handle) => this.offsetIndex.persist(handle), options.sync),
      writeIndexFile(this.timeIndexPath, (handle) => this.timeIndex.persist(handle), options.sync),
    ]);
  }

  /** Fsyncs the log file. */
  async syncLog(): Promise<void> {
    await this.file.withHandle((handle) => handle.datasync());
  }

  /** Renames all files of this segment by adding `suffix` (`.deleted`); the open handle stays valid. */
  async renameWithSuffix(suffix: string): Promise<void> {
    const logPath = this.file.path;
    await fs.rename(logPath, logPath + suffix);
    this.file.path = logPath + suffix;
    await Promise.all([renameIfExists(this.indexPath, this.indexPath + suffix), renameIfExists(this.timeIndexPath, this.timeIndexPath + suffix)]);
  }

  /** Closes the handle and removes the files, wherever a rename put them. */
  async deleteFiles(suffix = ''): Promise<void> {
    await this.file.dispose();
    await Promise.all([rmIfExists(this.file.path), rmIfExists(this.indexPath + suffix), rmIfExists(this.timeIndexPath + suffix)]);
  }

  async close(): Promise<void> {
    await this.file.dispose();
  }
}

const EMPTY = Buffer.alloc(0);

/** Buffers per writev call: Linux's IOV_MAX; libuv writes fewer and reports a short write beyond it. */
const WRITEV_BUFFERS_MAX = 1024;

/** Writes all of `chunks` at `position`, in writev calls of at most WRITEV_BUFFERS_MAX buffers. */
export async function writeFully(handle: FileHandle, chunks: readonly Buffer[], position: number): Promise<void> {
  if (chunks.length === 1) {
    // A single buffer goes through write(2): cheaper than writev(2) for one iovec in libuv.
    const chunk = chunks[0]!;
    let written = 0;
    while (written < chunk.length) {
      const { bytesWritten } = await handle.write(chunk, written, chunk.length - written, position + written);
      if (bytesWritten <= 0) throw new Error(`write wrote ${bytesWritten} of ${chunk.length - written} bytes`);
      written += bytesWritten;
    }
    return;
  }
  let index = 0;
  let at = position;
  while (index < chunks.length) {
    const slice = chunks.slice(index, index + WRITEV_BUFFERS_MAX);
    let sliceBytes = 0;
    for (const chunk of slice) sliceBytes += chunk.length;
    const { bytesWritten } = await handle.writev(slice, at);
    if (bytesWritten === sliceBytes) {
      index += slice.length;
      at += bytesWritten;
      continue;
    }
    if (bytesWritten <= 0) throw new Error(`writev wrote ${bytesWritten} of ${sliceBytes} bytes`);
    // Short write: finish the rest of this slice as one buffer.
    const rest = Buffer.concat(slice).subarray(bytesWritten);
    await writeFully(handle, [rest], at + bytesWritten);
    index += slice.length;
    at += sliceBytes;
  }
}

async function writeIndexFile(filePath: string, write: (handle: FileHandle) => Promise<void>, sync: boolean): Promise<void> {
  // Not 'a+': positional writes are ignored in append mode on Linux.
  const handle = await fs.open(filePath, 'r+').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return fs.open(filePath, 'w+');
    throw error;
  });
  try {
    await write(handle);
    if (sync) await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * The last entry of an index file, 'empty' for an empty file, undefined when the file is missing
 * or its size is not a whole number of entries within the maximum.
 */
async function readLastEntry(filePath: string, entryBytes: number, maxEntries: number): Promise<Buffer | 'empty' | undefined> {
  let handle: FileHandle;
  try {
    handle = await fs.open(filePath, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size % entryBytes !== 0 || size / entryBytes > maxEntries) return undefined;
    if (size === 0) return 'empty';
    const entry = Buffer.alloc(entryBytes);
    const { bytesRead } = await handle.read(entry, 0, entryBytes, size - entryBytes);
    return bytesRead === entryBytes ? entry : undefined;
  } finally {
    await handle.close();
  }
}

async function readIfExists(filePath: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(filePath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export async function rmIfExists(filePath: string): Promise<void> {
  await fs.rm(filePath, { force: true });
}

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await fs.rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
