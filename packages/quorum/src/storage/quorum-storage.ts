// Durable storage of one node's share of the quorum: the quorum state (epoch, vote, leader), the
// Raft log and the latest snapshot.
//
// Layout of the directory (`<log.dirs>/__cluster_metadata-0/`):
//   raft-log/                  classic-level (LevelDB) database
//     key "q"                  quorum state
//     key "s"                  metadata of the latest snapshot (id, size, crc32c of the file)
//     key "e" + 20 digits      one log entry per offset; the fixed width keeps iteration in offset order
//   snapshots/<endOffset 20 digits>-<epoch>.snapshot   the state machine's snapshot bytes
//
// Durability (KIP-595 / Raft paper §5.2, §5.4): the quorum state and appended entries are written
// in ONE LevelDB batch with `sync: true` before any message of the same Ready leaves, so a vote is
// never granted twice in an epoch and a follower never claims an offset it could lose. Truncation
// is in the same synced batch because a replica that forgets a truncation could later claim a
// diverged entry as matching. Compaction below a snapshot needs no sync: replaying it is harmless.
//
// A snapshot taken here is written in two steps so that its slow file work (write, fsync, rename,
// fsync the directory) never holds up the log's writes: `writeSnapshotFile` runs beside them, and
// the small metadata record that makes it the latest snapshot rides in a later `writeAll` batch.
//
// Validation on open (STYLE.md "boundaries validate"): every value is framed with a format version
// and a CRC32C (entry-codec.ts); offsets must be contiguous, epochs non-decreasing and not above
// the persisted epoch, the log must start at the snapshot's end offset (or 0) and the snapshot file
// must match its recorded size and checksum. Anything else is STORAGE_CORRUPTED naming the
// directory and the problem: a damaged store is never used silently.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { ClassicLevel } from 'classic-level';
import { RaftkaError, invariant } from '@raftka/protocol';
import type { LogEntry, QuorumStateRecord, RestoredState, SnapshotId } from '../raft/types.js';
import {
  decodeEntry,
  decodeQuorumState,
  decodeSnapshotMetadata,
  encodeEntry,
  encodeQuorumState,
  encodeSnapshotMetadata,
  encodedEntrySize,
  type SnapshotMetadata,
} from './entry-codec.js';

const QUORUM_STATE_KEY = 'q';
const SNAPSHOT_KEY = 's';
const ENTRY_KEY_PREFIX = 'e';
const OFFSET_DIGITS = 20;
const DATABASE_DIR = 'raft-log';
const SNAPSHOT_DIR = 'snapshots';
const SNAPSHOT_SUFFIX = '.snapshot';
const PARTIAL_SUFFIX = '.partial';
const WRITE_BUFFER_BYTES = 16 * 1024 * 1024;

export function entryKey(offset: number): string {
  return ENTRY_KEY_PREFIX + String(offset).padStart(OFFSET_DIGITS, '0');
}

const ENTRY_KEY_END = ENTRY_KEY_PREFIX + '\uffff';

/** What one Ready asks the storage to do (steps 1–4 of the Ready order in raft/types.ts). */
export interface StorageWrite {
  quorumState: QuorumStateRecord | undefined;
  installSnapshot: SnapshotId | undefined;
  truncateFrom: number | undefined;
  entries: readonly LogEntry[];
  compactBefore: number | undefined;
}

type BatchOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

export class QuorumStorage {
  readonly directory: string;
  private readonly db: ClassicLevel<string, Uint8Array>;
  private restored: RestoredState;
  private snapshotMetadata: SnapshotMetadata | undefined;
  // Invariant: the stored entries are exactly the offsets [firstStoredOffset, logEndOffset).
  private firstStoredOffset: number;
  private logEndOffset: number;
  private closed = false;
  /**
   * Snapshot files written (or being written) by `writeSnapshotFile` and not yet recorded: the
   * clean-up of unreferenced snapshot files must leave them alone.
   */
  private readonly unrecordedSnapshots = new Set<string>();

  private constructor(
    directory: string,
    db: ClassicLevel<string, Uint8Array>,
    restored: RestoredState,
    snapshotMetadata: SnapshotMetadata | undefined,
  ) {
    this.directory = directory;
    this.db = db;
    this.restored = restored;
    this.snapshotMetadata = snapshotMetadata;
    const start = restored.snapshot?.endOffset ?? 0;
    this.firstStoredOffset = start;
    this.logEndOffset = start + restored.entries.length;
  }

  /** Opens (creating if needed) and validates the storage in `directory`. */
  static async open(directory: string): Promise<QuorumStorage> {
    await fs.mkdir(path.join(directory, SNAPSHOT_DIR), { recursive: true });
    const db = new ClassicLevel<string, Uint8Array>(path.join(directory, DATABASE_DIR), {
      keyEncoding: 'utf8',
      valueEncoding: 'view',
      // A larger memtable than LevelDB's 4 MiB default means fewer flushes and level-0
      // compactions under a burst of appends, which otherwise show up as commit-latency spikes.
      writeBufferSize: WRITE_BUFFER_BYTES,
    });
    try {
      await db.open();
    } catch (error) {
      throw new RaftkaError('STORAGE_CORRUPTED', `cannot open the quorum log database in ${directory}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    try {
      const { restored, snapshotMetadata, staleBelow } = await readAndValidate(directory, db);
      if (staleBelow !== undefined) {
        // Entries a snapshot already covers whose deletion was lost in a crash: finish the job.
        await db.clear({ gte: entryKey(0), lt: entryKey(staleBelow) });
      }
      await removeUnreferencedSnapshots(directory, snapshotMetadata?.snapshotId, { includePartial: true });
      return new QuorumStorage(directory, db, restored, snapshotMetadata);
    } catch (error) {
      await db.close();
      throw error;
    }
  }

  /** The state found at open, to hand to the Raft core. */
  load(): RestoredState {
    return this.restored;
  }

  get latestSnapshot(): SnapshotId | undefined {
    return this.snapshotMetadata?.snapshotId;
  }

  /**
   * Applies a Ready's storage effects. The quorum state, truncation and appended entries go in one
   * synced batch; snapshot installation is in it too (its file was synced when downloaded).
   * Callers must not start a write before the previous one has resolved (the driver queues them).
   */
  async write(write: StorageWrite): Promise<void> {
    await this.writeAll([write]);
  }

  /**
   * Group commit: applies several Readies' effects, in order, as ONE synced LevelDB batch, so a
   * burst of Readies costs one fsync (DESIGN.md: pay for fsync per batch, never per record). A
   * write with `installSnapshot` must come alone. `recordSnapshot` (from `writeSnapshotFile`)
   * joins the same batch and makes that snapshot the latest one, unless a newer one got there
   * first (then its file is dropped).
   */
  async writeAll(writes: readonly StorageWrite[], recordSnapshot?: SnapshotMetadata): Promise<void> {
    invariant(!this.closed, 'write to a closed quorum storage');
    const install = writes.find((write) => write.installSnapshot !== undefined);
    invariant(install === undefined || (writes.length === 1 && recordSnapshot === undefined), 'a snapshot installation is written on its own');
    const newSnapshot = install?.installSnapshot ? await this.describeSnapshotFile(install.installSnapshot) : undefined;
    const ops: BatchOp[] = [];
    let sync = false;
    let recorded: SnapshotMetadata | undefined;
    let staleFile: SnapshotId | undefined;
    if (recordSnapshot) {
      this.unrecordedSnapshots.delete(snapshotFileName(recordSnapshot.snapshotId));
      const latestEndOffset = this.snapshotMetadata?.snapshotId.endOffset ?? 0;
      if (recordSnapshot.snapshotId.endOffset > latestEndOffset) {
        ops.push({ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshotMetadata(recordSnapshot) });
        sync = true;
        recorded = recordSnapshot;
      } else if (!sameSnapshot(recordSnapshot.snapshotId, this.snapshotMetadata?.snapshotId)) {
        staleFile = recordSnapshot.snapshotId;
      }
    }
    const compactRanges: { gte: string; lt: string }[] = [];
    for (const write of writes) {
      const planned = this.plan(write, newSnapshot, ops);
      sync ||= planned.sync;
      if (planned.compactRange) compactRanges.push(planned.compactRange);
    }
    if (ops.length > 0) await this.db.batch(ops, { sync });
    const latest = newSnapshot ?? recorded;
    if (latest) {
      this.snapshotMetadata = latest;
      await removeUnreferencedSnapshots(this.directory, latest.snapshotId, { keepAlso: this.unrecordedSnapshots });
    }
    if (staleFile) await fs.rm(this.snapshotPath(staleFile), { force: true });
    // No sync: if a deletion is lost, open() finds the entries below the snapshot and drops them.
    for (const range of compactRanges) await this.db.clear(range);
  }

  /** Adds one write's operations to `ops` and moves the in-memory bounds past it. */
  private plan(
    write: StorageWrite,
    newSnapshot: SnapshotMetadata | undefined,
    ops: BatchOp[],
  ): { sync: boolean; compactRange: { gte: string; lt: string } | undefined } {
    let sync = false;
    let firstStored = this.firstStoredOffset;
    let logEnd = this.logEndOffset;
    if (write.quorumState) {
      ops.push({ type: 'put', key: QUORUM_STATE_KEY, value: encodeQuorumState(write.quorumState) });
      sync = true;
    }
    if (newSnapshot) {
      ops.push({ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshotMetadata(newSnapshot) });
      for (let offset = firstStored; offset < logEnd; offset++) ops.push({ type: 'del', key: entryKey(offset) });
      firstStored = newSnapshot.snapshotId.endOffset;
      logEnd = newSnapshot.snapshotId.endOffset;
      sync = true;
    }
    if (write.truncateFrom !== undefined && write.truncateFrom < logEnd) {
      invariant(write.truncateFrom >= firstStored, () => `truncation to ${write.truncateFrom} below the log start ${firstStored}`);
      for (let offset = write.truncateFrom; offset < logEnd; offset++) ops.push({ type: 'del', key: entryKey(offset) });
      logEnd = write.truncateFrom;
      sync = true;
    }
    for (const entry of write.entries) {
      invariant(entry.offset === logEnd, () => `append at offset ${entry.offset} but the log ends at ${logEnd}`);
      ops.push({ type: 'put', key: entryKey(entry.offset), value: encodeEntry(entry) });
      logEnd++;
      sync = true;
    }
    let compactRange: { gte: string; lt: string } | undefined;
    if (write.compactBefore !== undefined && write.compactBefore > firstStored) {
      const before = Math.min(write.compactBefore, logEnd);
      compactRange = { gte: entryKey(firstStored), lt: entryKey(before) };
      firstStored = before;
    }
    this.firstStoredOffset = firstStored;
    this.logEndOffset = logEnd;
    return { sync, compactRange };
  }

  /** Reads stored entries in [fromOffset, toOffset), at most `maxBytes` (but always one entry). */
  async readEntries(fromOffset: number, toOffset: number, maxBytes: number): Promise<LogEntry[]> {
    const entries: LogEntry[] = [];
    if (fromOffset >= toOffset) return entries;
    let bytes = 0;
    for await (const [key, value] of this.db.iterator({ gte: entryKey(fromOffset), lt: entryKey(toOffset) })) {
      const entry = this.decodeStoredEntry(key, value);
      bytes += encodedEntrySize(entry);
      if (entries.length > 0 && bytes > maxBytes) break;
      entries.push(entry);
    }
    return entries;
  }

  snapshotPath(snapshotId: SnapshotId): string {
    return path.join(this.directory, SNAPSHOT_DIR, snapshotFileName(snapshotId));
  }

  /**
   * Writes a snapshot taken by the state machine durably (tmp file, fsync, rename, fsync the
   * directory) and returns its metadata. It becomes the latest snapshot only once a later
   * `writeAll(..., metadata)` records it; a crash before that leaves an unreferenced file, which
   * `open` removes. May run while other writes are in progress.
   */
  async writeSnapshotFile(snapshotId: SnapshotId, bytes: Uint8Array): Promise<SnapshotMetadata> {
    const name = snapshotFileName(snapshotId);
    this.unrecordedSnapshots.add(name);
    let download: SnapshotDownload | undefined;
    try {
      download = await this.beginSnapshotDownload(snapshotId);
      await download.append(bytes);
      await download.finish();
    } catch (error) {
      this.unrecordedSnapshots.delete(name);
      await download?.abort();
      throw error;
    }
    return { snapshotId, sizeBytes: bytes.byteLength, crc32c: crc32c(bytes) >>> 0 };
  }

  /**
   * Writes a snapshot and records it as the latest one in one go (`writeSnapshotFile` then a
   * `writeAll` of nothing else). Like `write`, not to be called while another write is in progress.
   */
  async saveSnapshot(snapshotId: SnapshotId, bytes: Uint8Array): Promise<void> {
    await this.writeAll([], await this.writeSnapshotFile(snapshotId, bytes));
  }

  /** Reads the whole snapshot file (for loading it into the state machine). */
  async readSnapshot(snapshotId: SnapshotId): Promise<Uint8Array> {
    return fs.readFile(this.snapshotPath(snapshotId));
  }

  /** Reads a chunk of a snapshot file for FetchSnapshot; `undefined` when the file is not there. */
  async readSnapshotChunk(
    snapshotId: SnapshotId,
    position: number,
    maxBytes: number,
  ): Promise<{ chunk: Uint8Array; size: number } | undefined> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.snapshotPath(snapshotId), 'r');
    } catch {
      return undefined;
    }
    try {
      const { size } = await handle.stat();
      const length = Math.max(0, Math.min(maxBytes, size - position));
      const chunk = Buffer.alloc(length);
      if (length > 0) await handle.read(chunk, 0, length, position);
      return { chunk, size };
    } finally {
      await handle.close();
    }
  }

  /** Starts writing a snapshot file; it becomes visible under its final name only on `finish`. */
  async beginSnapshotDownload(snapshotId: SnapshotId): Promise<SnapshotDownload> {
    const finalPath = this.snapshotPath(snapshotId);
    const partialPath = finalPath + PARTIAL_SUFFIX;
    const handle = await fs.open(partialPath, 'w');
    let written = 0;
    return {
      get bytesWritten() {
        return written;
      },
      append: async (chunk: Uint8Array) => {
        await handle.write(chunk, 0, chunk.byteLength, written);
        written += chunk.byteLength;
      },
      finish: async () => {
        await handle.sync();
        await handle.close();
        await fs.rename(partialPath, finalPath);
        await syncDirectory(path.dirname(finalPath));
      },
      abort: async () => {
        await handle.close().catch(() => undefined);
        await fs.rm(partialPath, { force: true });
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }

  private async describeSnapshotFile(snapshotId: SnapshotId): Promise<SnapshotMetadata> {
    const bytes = await fs.readFile(this.snapshotPath(snapshotId));
    return { snapshotId, sizeBytes: bytes.length, crc32c: crc32c(bytes) >>> 0 };
  }

  private decodeStoredEntry(key: string, value: Uint8Array): LogEntry {
    try {
      return decodeEntry(value);
    } catch (error) {
      throw corrupted(this.directory, `log entry ${key.slice(1)}: ${(error as Error).message}`);
    }
  }
}

export interface SnapshotDownload {
  readonly bytesWritten: number;
  append(chunk: Uint8Array): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

function snapshotFileName(snapshotId: SnapshotId): string {
  return `${String(snapshotId.endOffset).padStart(OFFSET_DIGITS, '0')}-${snapshotId.epoch}${SNAPSHOT_SUFFIX}`;
}

function corrupted(directory: string, problem: string): RaftkaError {
  return new RaftkaError(
    'STORAGE_CORRUPTED',
    `quorum storage in ${directory} is corrupted: ${problem}. Refusing to start: restore the directory from a replica ` +
      `(delete it to let this node catch up from the leader, if the rest of the quorum is healthy).`,
    { retriable: false },
  );
}

async function readAndValidate(
  directory: string,
  db: ClassicLevel<string, Uint8Array>,
): Promise<{ restored: RestoredState; snapshotMetadata: SnapshotMetadata | undefined; staleBelow: number | undefined }> {
  let quorumState: QuorumStateRecord = { epoch: 0, votedFor: undefined, leaderId: undefined };
  const rawState = await db.get(QUORUM_STATE_KEY);
  if (rawState !== undefined) {
    try {
      quorumState = decodeQuorumState(rawState);
    } catch (error) {
      throw corrupted(directory, `quorum state: ${(error as Error).message}`);
    }
  }
  let snapshotMetadata: SnapshotMetadata | undefined;
  const rawSnapshot = await db.get(SNAPSHOT_KEY);
  if (rawSnapshot !== undefined) {
    try {
      snapshotMetadata = decodeSnapshotMetadata(rawSnapshot);
    } catch (error) {
      throw corrupted(directory, `snapshot metadata: ${(error as Error).message}`);
    }
    const file = path.join(directory, SNAPSHOT_DIR, snapshotFileName(snapshotMetadata.snapshotId));
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(file);
    } catch {
      throw corrupted(directory, `snapshot file ${path.basename(file)} is missing`);
    }
    if (bytes.length !== snapshotMetadata.sizeBytes || (crc32c(bytes) >>> 0) !== snapshotMetadata.crc32c) {
      throw corrupted(
        directory,
        `snapshot file ${path.basename(file)} has ${bytes.length} bytes or a checksum that does not match its metadata ` +
          `(${snapshotMetadata.sizeBytes} bytes expected)`,
      );
    }
  }
  const snapshot = snapshotMetadata?.snapshotId;
  const startOffset = snapshot?.endOffset ?? 0;
  const entries: LogEntry[] = [];
  let staleBelow: number | undefined;
  let previousEpoch = snapshot?.epoch ?? 0;
  for await (const [key, value] of db.iterator({ gte: entryKey(0), lt: ENTRY_KEY_END })) {
    let entry: LogEntry;
    try {
      entry = decodeEntry(value);
    } catch (error) {
      throw corrupted(directory, `log entry at key ${key.slice(1)}: ${(error as Error).message}`);
    }
    if (key !== entryKey(entry.offset)) {
      throw corrupted(directory, `log entry stored under offset ${Number(key.slice(1))} says it is offset ${entry.offset}`);
    }
    if (entry.offset < startOffset) {
      // Covered by the snapshot; its epoch must agree where the snapshot names it.
      if (snapshot && entry.offset === startOffset - 1 && entry.epoch !== snapshot.epoch) {
        throw corrupted(directory, `entry ${entry.offset} has epoch ${entry.epoch} but the snapshot says ${snapshot.epoch}`);
      }
      staleBelow = startOffset;
      continue;
    }
    const expected = startOffset + entries.length;
    if (entry.offset !== expected) {
      throw corrupted(
        directory,
        entries.length === 0 && snapshot
          ? `the log starts at offset ${entry.offset} but the snapshot ends at ${startOffset}`
          : `the log has a gap: offset ${expected} is missing before ${entry.offset}`,
      );
    }
    if (entry.epoch < previousEpoch) {
      throw corrupted(directory, `entry ${entry.offset} has epoch ${entry.epoch}, below the previous epoch ${previousEpoch}`);
    }
    if (entry.epoch > quorumState.epoch) {
      throw corrupted(directory, `entry ${entry.offset} has epoch ${entry.epoch}, above the stored quorum epoch ${quorumState.epoch}`);
    }
    previousEpoch = entry.epoch;
    entries.push(entry);
  }
  return { restored: { quorumState, snapshot, entries }, snapshotMetadata, staleBelow };
}

function sameSnapshot(a: SnapshotId, b: SnapshotId | undefined): boolean {
  return b !== undefined && a.endOffset === b.endOffset && a.epoch === b.epoch;
}

async function removeUnreferencedSnapshots(
  directory: string,
  keep: SnapshotId | undefined,
  options: { includePartial?: boolean; keepAlso?: ReadonlySet<string> } = {},
): Promise<void> {
  const keepName = keep ? snapshotFileName(keep) : undefined;
  const snapshotDir = path.join(directory, SNAPSHOT_DIR);
  for (const name of await fs.readdir(snapshotDir)) {
    if (name === keepName || options.keepAlso?.has(name)) continue;
    // A partial file is removed only at open (a crash interrupted its download); at run time a
    // download may be in progress and finishes or aborts itself.
    if (name.endsWith(PARTIAL_SUFFIX)) {
      if (options.includePartial === true) await fs.rm(path.join(snapshotDir, name), { force: true });
      continue;
    }
    if (name.endsWith(SNAPSHOT_SUFFIX)) await fs.rm(path.join(snapshotDir, name), { force: true });
  }
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await fs.open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
