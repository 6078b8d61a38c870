// The two sparse per-segment indexes, held in memory and written to their files in bulk.
//
// `.index` maps a batch's last offset (relative to the segment's base offset) to the file
// position where the batch starts; `.timeindex` maps the largest timestamp seen so far to the
// relative offset where it was reached. Both are sparse: an entry every `index.interval.bytes`
// of appended batches. A lookup returns the nearest entry at or below the target, and the caller
// scans forward through at most one interval of batch headers.
//
// Kafka memory-maps preallocated index files. Node has no mmap, so entries live in typed arrays
// and the file is brought up to date on roll and close (`persist`); inactive segments load their
// entries on first use and drop them with their idle file handle (log-segment.ts). A crash can
// leave an index shorter than its segment, or stale: open-time recovery rebuilds the index of
// every segment past the recovery point and any index that fails its sanity check, so an index
// is never trusted beyond what was written before a clean shutdown or a roll.

import type { FileHandle } from 'node:fs/promises';
import { invariant } from '@raftka/protocol';
import { OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES } from './log-config.js';

const INITIAL_CAPACITY = 64;

export interface OffsetPosition {
  relativeOffset: number;
  position: number;
}

export class OffsetIndex {
  readonly maxEntries: number;
  // Invariant: relativeOffsets and positions both strictly increase over [0, count).
  private relativeOffsets = new Int32Array(INITIAL_CAPACITY);
  private positions = new Int32Array(INITIAL_CAPACITY);
  private count = 0;
  // Entries [0, persistedCount) are in the file as they are in memory.
  private persistedCount = 0;
  // Set when entries were dropped in memory but the file still holds them.
  private fileTooLong = false;

  constructor(maxIndexBytes: number) {
    this.maxEntries = Math.max(1, Math.floor(maxIndexBytes / OFFSET_INDEX_ENTRY_BYTES));
  }

  get entries(): number {
    return this.count;
  }

  get isFull(): boolean {
    return this.count >= this.maxEntries;
  }

  /** True when the file matches memory exactly (the in-memory copy may be dropped). */
  get isPersisted(): boolean {
    return this.persistedCount === this.count && !this.fileTooLong;
  }

  get last(): OffsetPosition | undefined {
    if (this.count === 0) return undefined;
    return { relativeOffset: this.relativeOffsets[this.count - 1]!, position: this.positions[this.count - 1]! };
  }

  entryAt(index: number): OffsetPosition {
    invariant(index >= 0 && index < this.count, 'offset index entry out of range');
    return { relativeOffset: this.relativeOffsets[index]!, position: this.positions[index]! };
  }

  append(relativeOffset: number, position: number): void {
    invariant(!this.isFull, 'offset index is full; the segment should have rolled');
    const last = this.last;
    invariant(
      last === undefined || (relativeOffset > last.relativeOffset && position > last.position),
      () => `offset index entry (${relativeOffset}, ${position}) does not follow ${JSON.stringify(last)}`,
    );
    if (this.count === this.relativeOffsets.length) {
      const capacity = Math.min(this.maxEntries, this.count * 2);
      this.relativeOffsets = grow(this.relativeOffsets, capacity);
      this.positions = grow(this.positions, capacity);
    }
    this.relativeOffsets[this.count] = relativeOffset;
    this.positions[this.count] = position;
    this.count++;
  }

  /** File position of the batch indexed nearest at or below `relativeOffset`; 0 when none is. */
  lookupPosition(relativeOffset: number): number {
    const index = floorIndex(this.relativeOffsets, this.count, relativeOffset);
    return index < 0 ? 0 : this.positions[index]!;
  }

  /** Drops entries for batches at or after `position` (the segment was truncated there). */
  truncateToPosition(position: number): void {
    let count = this.count;
    while (count > 0 && this.positions[count - 1]! >= position) count--;
    if (count < this.count) this.fileTooLong = true;
    this.count = count;
    this.persistedCount = Math.min(this.persistedCount, count);
  }

  clear(): void {
    if (this.count > 0 || this.persistedCount > 0) this.fileTooLong = true;
    this.count = 0;
    this.persistedCount = 0;
  }

  /** Brings the file up to date with memory (appends new entries, cuts dropped ones). */
  async persist(handle: FileHandle): Promise<void> {
    if (this.persistedCount < this.count) {
      const bytes = Buffer.allocUnsafe((this.count - this.persistedCount) * OFFSET_INDEX_ENTRY_BYTES);
      for (let index = this.persistedCount; index < this.count; index++) {
        const at = (index - this.persistedCount) * OFFSET_INDEX_ENTRY_BYTES;
        bytes.writeInt32BE(this.relativeOffsets[index]!, at);
        bytes.writeInt32BE(this.positions[index]!, at + 4);
      }
      await handle.write(bytes, 0, bytes.length, this.persistedCount * OFFSET_INDEX_ENTRY_BYTES);
    }
    await handle.truncate(this.count * OFFSET_INDEX_ENTRY_BYTES);
    this.persistedCount = this.count;
    this.fileTooLong = false;
  }

  /**
   * Loads entries from file bytes. Returns false (leaving the index empty) when the bytes are
   * not a well-formed index for a segment of `segmentBytes` bytes; the caller then rebuilds.
   */
  load(bytes: Buffer, segmentBytes: number): boolean {
    this.clear();
    if (bytes.length % OFFSET_INDEX_ENTRY_BYTES !== 0 || bytes.length / OFFSET_INDEX_ENTRY_BYTES > this.maxEntries) return false;
    const entries = bytes.length / OFFSET_INDEX_ENTRY_BYTES;
    this.relativeOffsets = new Int32Array(Math.max(INITIAL_CAPACITY, entries));
    this.positions = new Int32Array(Math.max(INITIAL_CAPACITY, entries));
    let previousOffset = -1;
    let previousPosition = -1;
    for (let index = 0; index < entries; index++) {
      const relativeOffset = bytes.readInt32BE(index * OFFSET_INDEX_ENTRY_BYTES);
      const position = bytes.readInt32BE(index * OFFSET_INDEX_ENTRY_BYTES + 4);
      if (relativeOffset <= previousOffset || position <= previousPosition || position >= segmentBytes) {
        this.clear();
        return false;
      }
      this.relativeOffsets[index] = relativeOffset;
      this.positions[index] = position;
      previousOffset = relativeOffset;
      previousPosition = position;
    }
    this.count = entries;
    this.persistedCount = entries;
    this.fileTooLong = false;
    return true;
  }
}

export interface TimestampOffset {
  timestamp: number;
  relativeOffset: number;
}

export class TimeIndex {
  readonly maxEntries: number;
  // Invariant: timestamps and relativeOffsets both strictly increase over [0, count).
  private timestamps = new Float64Array(INITIAL_CAPACITY);
  private relativeOffsets = new Int32Array(INITIAL_CAPACITY);
  private count = 0;
  private persistedCount = 0;
  private fileTooLong = false;

  constructor(maxIndexBytes: number) {
    this.maxEntries = Math.max(1, Math.floor(maxIndexBytes / TIME_INDEX_ENTRY_BYTES));
  }

  get entries(): number {
    return this.count;
  }

  get isFull(): boolean {
    return this.count >= this.maxEntries;
  }

  /** True when the file matches memory exactly (the in-memory copy may be dropped). */
  get isPersisted(): boolean {
    return this.persistedCount === this.count && !this.fileTooLong;
  }

  get last(): TimestampOffset | undefined {
    if (this.count === 0) return undefined;
    return { timestamp: this.timestamps[this.count - 1]!, relativeOffset: this.relativeOffsets[this.count - 1]! };
  }

  /** Adds an entry when it moves both the timestamp and the offset forward; otherwise ignores it. */
  maybeAppend(timestamp: number, relativeOffset: number): void {
    const last = this.last;
    if (last !== undefined && (timestamp <= last.timestamp || relativeOffset <= last.relativeOffset)) return;
    if (this.isFull) return;
    if (this.count === this.timestamps.length) {
      const capacity = Math.min(this.maxEntries, this.count * 2);
      this.timestamps = grow(this.timestamps, capacity);
      this.relativeOffsets = grow(this.relativeOffsets, capacity);
    }
    this.timestamps[this.count] = timestamp;
    this.relativeOffsets[this.count] = relativeOffset;
    this.count++;
  }

  /** The entry with the largest timestamp <= `timestamp`, if any. */
  lookup(timestamp: number): TimestampOffset | undefined {
    const index = floorIndex(this.timestamps, this.count, timestamp);
    if (index < 0) return undefined;
    return { timestamp: this.timestamps[index]!, relativeOffset: this.relativeOffsets[index]! };
  }

  /** Drops entries at or after `relativeOffset`. */
  truncateToOffset(relativeOffset: number): void {
    let count = this.count;
    while (count > 0 && this.relativeOffsets[count - 1]! >= relativeOffset) count--;
    if (count < this.count) this.fileTooLong = true;
    this.count = count;
    this.persistedCount = Math.min(this.persistedCount, count);
  }

  clear(): void {
    if (this.count > 0 || this.persistedCount > 0) this.fileTooLong = true;
    this.count = 0;
    this.persistedCount = 0;
  }

  async persist(handle: FileHandle): Promise<void> {
    if (this.persistedCount < this.count) {
      const bytes = Buffer.allocUnsafe((this.count - this.persistedCount) * TIME_INDEX_ENTRY_BYTES);
      for (let index = this.persistedCount; index < this.count; index++) {
        const at = (index - this.persistedCount) * TIME_INDEX_ENTRY_BYTES;
        bytes.writeBigInt64BE(BigInt(this.timestamps[index]!), at);
        bytes.writeInt32BE(this.relativeOffsets[index]!, at + 8);
      }
      await handle.write(bytes, 0, bytes.length, this.persistedCount * TIME_INDEX_ENTRY_BYTES);
    }
    await handle.truncate(this.count * TIME_INDEX_ENTRY_BYTES);
    this.persistedCount = this.count;
    this.fileTooLong = false;
  }

  /** Loads entries; false (index left empty) when malformed or pointing past `nextRelativeOffset`. */
  load(bytes: Buffer, nextRelativeOffset: number): boolean {
    this.clear();
    if (bytes.length % TIME_INDEX_ENTRY_BYTES !== 0 || bytes.length / TIME_INDEX_ENTRY_BYTES > this.maxEntries) return false;
    const entries = bytes.length / TIME_INDEX_ENTRY_BYTES;
    this.timestamps = new Float64Array(Math.max(INITIAL_CAPACITY, entries));
    this.relativeOffsets = new Int32Array(Math.max(INITIAL_CAPACITY, entries));
    let previousTimestamp = -Infinity;
    let previousOffset = -1;
    for (let index = 0; index < entries; index++) {
      const timestamp = Number(bytes.readBigInt64BE(index * TIME_INDEX_ENTRY_BYTES));
      const relativeOffset = bytes.readInt32BE(index * TIME_INDEX_ENTRY_BYTES + 8);
      if (timestamp <= previousTimestamp || relativeOffset <= previousOffset || relativeOffset >= nextRelativeOffset) {
        this.clear();
        return false;
      }
      this.timestamps[index] = timestamp;
      this.relativeOffsets[index] = relativeOffset;
      previousTimestamp = timestamp;
      previousOffset = relativeOffset;
    }
    this.count = entries;
    this.persistedCount = entries;
    this.fileTooLong = false;
    return true;
  }
}

/** Decodes one offset-index entry (as found at the end of an index file). */
export function decodeOffsetEntry(bytes: Buffer): OffsetPosition {
  return { relativeOffset: bytes.readInt32BE(0), position: bytes.readInt32BE(4) };
}

/** Decodes one time-index entry. */
export function decodeTimeEntry(bytes: Buffer): TimestampOffset {
  return { timestamp: Number(bytes.readBigInt64BE(0)), relativeOffset: bytes.readInt32BE(8) };
}

function grow<T extends Int32Array | Float64Array>(array: T, capacity: number): T {
  const next = new (array.constructor as new (length: number) => T)(capacity);
  next.set(array);
  return next;
}

/** Index of the largest value <= target in sorted values[0, count), or -1. */
function floorIndex(values: Int32Array | Float64Array, count: number, target: number): number {
  let low = 0;
  let high = count - 1;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    if (values[middle]! <= target) {
      found = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}
