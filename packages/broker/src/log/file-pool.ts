// Bounded set of open segment file handles.
//
// A broker can hold thousands of segments; opening each one for the life of the process would
// exhaust file descriptors. Segments therefore open their `.log` file lazily through this pool,
// which closes the least recently used idle handles once more than `maxOpenFiles` are open.
// Active segments (being appended to) are pinned and never closed by the pool; a handle in use
// by a read is never closed under it (the pool may briefly exceed its maximum instead).

import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { RaftkaError, invariant } from '@raftka/protocol';

/** Default bound on open segment files per pool (one pool per broker in production). */
export const MAX_OPEN_SEGMENT_FILES_DEFAULT = 256;

export class FileHandlePool {
  readonly maxOpenFiles: number;
  // Open files, least recently used first (Map keeps insertion order; a use re-inserts).
  private readonly open = new Map<SegmentFile, true>();

  constructor(maxOpenFiles = MAX_OPEN_SEGMENT_FILES_DEFAULT) {
    invariant(maxOpenFiles >= 1, 'a file handle pool needs room for at least one file');
    this.maxOpenFiles = maxOpenFiles;
  }

  get openCount(): number {
    return this.open.size;
  }

  /** Called by a file when it is used: marks it most recent and closes idle files over budget. */
  touched(file: SegmentFile): void {
    this.open.delete(file);
    this.open.set(file, true);
    if (this.open.size <= this.maxOpenFiles) return;
    for (const candidate of this.open.keys()) {
      if (this.open.size <= this.maxOpenFiles) break;
      if (candidate.isIdle) {
        this.open.delete(candidate);
        void candidate.closeIdleHandle();
      }
    }
  }

  forget(file: SegmentFile): void {
    this.open.delete(file);
  }
}

/** One segment `.log` file whose handle the pool may close while it is idle. */
export class SegmentFile {
  /** Current path; changes when the file is renamed (swap, `.deleted`). */
  path: string;
  /** Called after the pool closed the idle handle (the segment drops its cached indexes). */
  onHandleClosed: (() => void) | undefined;
  private handle: FileHandle | undefined;
  private opening: Promise<FileHandle> | undefined;
  private users = 0;
  private pinned = false;
  private disposed = false;
  private readonly pool: FileHandlePool;

  constructor(pool: FileHandlePool, filePath: string) {
    this.pool = pool;
    this.path = filePath;
  }

  get isPinned(): boolean {
    return this.pinned;
  }

  get isIdle(): boolean {
    return this.users === 0 && !this.pinned && this.handle !== undefined && this.opening === undefined;
  }

  /** Runs `use` with an open handle; the pool cannot close it until `use` settles. */
  async withHandle<T>(use: (handle: FileHandle) => Promise<T>): Promise<T> {
    // An open handle is taken without an await, so `use` starts (and issues its syscall) before
    // withHandle returns: the log's append queue relies on this to validate the next appends
    // while a write is in flight.
    const handle = this.tryAcquire() ?? (await this.acquire());
    try {
      return await use(handle);
    } finally {
      this.release();
    }
  }

  /** The open handle, acquired synchronously; undefined when it must be opened first. */
  tryAcquire(): FileHandle | undefined {
    if (this.disposed || this.handle === undefined || this.opening !== undefined) return undefined;
    this.users++;
    this.pool.touched(this);
    return this.handle;
  }

  async acquire(): Promise<FileHandle> {
    if (this.disposed) {
      // A read that raced with the end of file.delete.delay.ms, or with close().
      throw new RaftkaError('KAFKA_STORAGE_ERROR', `segment file ${this.path} was deleted or closed; retry the request`);
    }
    this.users++;
    try {
      if (this.handle === undefined) {
        this.opening ??= fs.open(this.path, 'r+');
        const opened = await this.opening;
        this.opening = undefined;
        this.handle = opened;
      }
      this.pool.touched(this);
      return this.handle;
    } catch (error) {
      this.opening = undefined;
      this.users--;
      throw error;
    }
  }

  release(): void {
    invariant(this.users > 0, 'segment file released more often than acquired');
    this.users--;
    if (this.users === 0 && this.disposed) void this.closeIdleHandle();
  }

  /** Active segments keep their handle open (appends must not pay for opening files). */
  setPinned(pinned: boolean): void {
    this.pinned = pinned;
    if (!pinned && this.handle !== undefined) this.pool.touched(this);
  }

  async closeIdleHandle(): Promise<void> {
    const handle = this.handle;
    if (handle === undefined || this.users > 0) return;
    this.handle = undefined;
    this.pool.forget(this);
    this.onHandleClosed?.();
    await handle.close().catch(() => undefined);
  }

  /** Closes the handle once no read uses it; the file may not be used afterwards. */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.pinned = false;
    if (this.opening !== undefined) await this.opening.catch(() => undefined);
    if (this.users === 0) await this.closeIdleHandle();
  }
}
