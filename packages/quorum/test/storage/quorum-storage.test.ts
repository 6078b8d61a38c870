import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RaftkaError } from '@raftka/protocol';
import type { LogEntry } from '../../src/raft/types.js';
import { decodeEntry, encodeEntry } from '../../src/storage/entry-codec.js';
import { QuorumStorage, entryKey } from '../../src/storage/quorum-storage.js';

function data(offset: number, epoch: number, ...texts: string[]): LogEntry {
  return { offset, epoch, payload: { kind: 'data', records: texts.map((text) => new TextEncoder().encode(text)) } };
}

function leaderChange(offset: number, epoch: number, leaderId: number): LogEntry {
  return { offset, epoch, payload: { kind: 'leader-change', leaderId, voters: [1, 2, 3] } };
}

const noWrite = { quorumState: undefined, installSnapshot: undefined, truncateFrom: undefined, entries: [], compactBefore: undefined };

let directory: string;

beforeEach(async () => {
  directory = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-storage-'));
});

afterEach(async () => {
  await fs.rm(directory, { recursive: true, force: true });
});

/** Opens the raw LevelDB underneath to damage it the way a disk or a crash could. */
async function withRawDb(action: (db: ClassicLevel<string, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new ClassicLevel<string, Uint8Array>(path.join(directory, 'raft-log'), { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  try {
    await action(db);
  } finally {
    await db.close();
  }
}

async function expectCorrupted(pattern: RegExp): Promise<void> {
  const error = await QuorumStorage.open(directory).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(RaftkaError);
  expect((error as RaftkaError).code).toBe('STORAGE_CORRUPTED');
  expect((error as RaftkaError).message).toContain(directory);
  expect((error as RaftkaError).message).toMatch(pattern);
}

describe('entry codec', () => {
  it('round-trips data and leader-change entries, including empty and binary records', () => {
    const binary: LogEntry = { offset: 2 ** 40, epoch: 7, payload: { kind: 'data', records: [new Uint8Array([0, 255, 1]), new Uint8Array(0)] } };
    for (const entry of [data(0, 1, 'a', 'bc'), leaderChange(5, 3, 2), binary]) {
      expect(decodeEntry(encodeEntry(entry))).toEqual(entry);
    }
  });

  it('rejects a flipped bit and a truncated value', () => {
    const encoded = encodeEntry(data(3, 1, 'hello'));
    const flipped = Buffer.from(encoded);
    flipped[flipped.length - 1]! ^= 0x01;
    expect(() => decodeEntry(flipped)).toThrow(/checksum/);
    expect(() => decodeEntry(encoded.subarray(0, encoded.length - 2))).toThrow(/checksum|truncated/);
  });
});

describe('QuorumStorage', () => {
  it('starts empty and round-trips quorum state and entries across reopen', async () => {
    const storage = await QuorumStorage.open(directory);
    expect(storage.load()).toEqual({ quorumState: { epoch: 0, votedFor: undefined, leaderId: undefined }, snapshot: undefined, entries: [] });
    await storage.write({
      ...noWrite,
      quorumState: { epoch: 2, votedFor: 1, leaderId: 1 },
      entries: [leaderChange(0, 1, 1), data(1, 2, 'x'), data(2, 2, 'y', 'z')],
    });
    expect(await storage.readEntries(1, 3, 1 << 20)).toEqual([data(1, 2, 'x'), data(2, 2, 'y', 'z')]);
    await storage.close();

    const reopened = await QuorumStorage.open(directory);
    expect(reopened.load()).toEqual({
      quorumState: { epoch: 2, votedFor: 1, leaderId: 1 },
      snapshot: undefined,
      entries: [leaderChange(0, 1, 1), data(1, 2, 'x'), data(2, 2, 'y', 'z')],
    });
    await reopened.close();
  });

  it('truncates a diverged suffix and appends in the same write', async () => {
    const storage = await QuorumStorage.open(directory);
    await storage.write({ ...noWrite, quorumState: { epoch: 3, votedFor: undefined, leaderId: 2 }, entries: [data(0, 1, 'a'), data(1, 1, 'b'), data(2, 2, 'c')] });
    await storage.write({ ...noWrite, truncateFrom: 1, entries: [data(1, 3, 'B')] });
    await storage.close();
    const reopened = await QuorumStorage.open(directory);
    expect(reopened.load().entries).toEqual([data(0, 1, 'a'), data(1, 3, 'B')]);
    await reopened.close();
  });

  it('group-commits several Readies in one write, in order (truncation in a later one wins)', async () => {
    const storage = await QuorumStorage.open(directory);
    await storage.writeAll([
      { ...noWrite, quorumState: { epoch: 1, votedFor: 1, leaderId: 1 }, entries: [data(0, 1, 'a'), data(1, 1, 'b')] },
      { ...noWrite, entries: [data(2, 1, 'c')] },
      { ...noWrite, quorumState: { epoch: 2, votedFor: 3, leaderId: 3 }, truncateFrom: 1, entries: [data(1, 2, 'B')] },
    ]);
    await storage.close();
    const reopened = await QuorumStorage.open(directory);
    expect(reopened.load()).toEqual({
      quorumState: { epoch: 2, votedFor: 3, leaderId: 3 },
      snapshot: undefined,
      entries: [data(0, 1, 'a'), data(1, 2, 'B')],
    });
    await reopened.close();
  });

  it('keeps a snapshot and the log after it, and compacts below it', async () => {
    const storage = await QuorumStorage.open(directory);
    const entries = [data(0, 1, 'a'), data(1, 1, 'b'), data(2, 1, 'c'), data(3, 1, 'd')];
    await storage.write({ ...noWrite, quorumState: { epoch: 1, votedFor: 1, leaderId: 1 }, entries });
    await storage.saveSnapshot({ endOffset: 2, epoch: 1 }, new TextEncoder().encode('state@2'));
    await storage.close();

    // Compaction had not happened yet: the stale entries are dropped at open.
    const reopened = await QuorumStorage.open(directory);
    expect(reopened.load().snapshot).toEqual({ endOffset: 2, epoch: 1 });
    expect(reopened.load().entries).toEqual(entries.slice(2));
    expect(Buffer.from(await reopened.readSnapshot({ endOffset: 2, epoch: 1 })).toString()).toBe('state@2');
    expect(await reopened.readSnapshotChunk({ endOffset: 2, epoch: 1 }, 6, 10)).toEqual({ chunk: Buffer.from('2'), size: 7 });
    await reopened.write({ ...noWrite, compactBefore: 2 });
    await reopened.close();
  });

  it('writes a snapshot file beside the log writes and records it with a later batch', async () => {
    const storage = await QuorumStorage.open(directory);
    await storage.write({ ...noWrite, quorumState: { epoch: 1, votedFor: 1, leaderId: 1 }, entries: [data(0, 1, 'a'), data(1, 1, 'b')] });
    const metadata = await storage.writeSnapshotFile({ endOffset: 2, epoch: 1 }, Buffer.from('state@2'));
    // Written but not recorded: not the latest snapshot yet, and log writes go on meanwhile.
    expect(storage.latestSnapshot).toBeUndefined();
    await storage.write({ ...noWrite, entries: [data(2, 1, 'c')] });
    await storage.writeAll([{ ...noWrite, entries: [data(3, 1, 'd')] }], metadata);
    expect(storage.latestSnapshot).toEqual({ endOffset: 2, epoch: 1 });
    await storage.close();
    const reopened = await QuorumStorage.open(directory);
    expect(reopened.load().snapshot).toEqual({ endOffset: 2, epoch: 1 });
    expect(reopened.load().entries).toEqual([data(2, 1, 'c'), data(3, 1, 'd')]);
    expect(Buffer.from(await reopened.readSnapshot({ endOffset: 2, epoch: 1 })).toString()).toBe('state@2');
    await reopened.close();
  });

  it('keeps an unrecorded snapshot file through an install, and drops it if the install is newer', async () => {
    const storage = await QuorumStorage.open(directory);
    await storage.write({ ...noWrite, quorumState: { epoch: 2, votedFor: undefined, leaderId: 2 }, entries: [data(0, 1, 'a'), data(1, 1, 'b')] });
    const snapshots = path.join(directory, 'snapshots');
    const local = await storage.writeSnapshotFile({ endOffset: 1, epoch: 1 }, Buffer.from('local@1'));
    const download = await storage.beginSnapshotDownload({ endOffset: 5, epoch: 2 });
    await download.append(Buffer.from('leader@5'));
    await download.finish();
    await storage.write({ ...noWrite, installSnapshot: { endOffset: 5, epoch: 2 } });
    // The install's clean-up left the local file alone: it was written and not yet recorded.
    expect((await fs.readdir(snapshots)).sort()).toEqual([`${'1'.padStart(20, '0')}-1.snapshot`, `${'5'.padStart(20, '0')}-2.snapshot`]);
    // Recording it now would go backwards: it is dropped instead.
    await storage.writeAll([], local);
    expect(storage.latestSnapshot).toEqual({ endOffset: 5, epoch: 2 });
    expect(await fs.readdir(snapshots)).toEqual([`${'5'.padStart(20, '0')}-2.snapshot`]);
    await storage.close();
    const reopened = await QuorumStorage.open(directory);
    expect(reopened.load().snapshot).toEqual({ endOffset: 5, epoch: 2 });
    await reopened.close();
  });

  it('removes a written but unrecorded snapshot file at open (a crash before its record)', async () => {
    const storage = await QuorumStorage.open(directory);
    await storage.write({ ...noWrite, quorumState: { epoch: 1, votedFor: 1, leaderId: 1 }, entries: [data(0, 1, 'a')] });
    await storage.writeSnapshotFile({ endOffset: 1, epoch: 1 }, Buffer.from('state@1'));
    await storage.close();
    const reopened = await QuorumStorage.open(directory);
    expect(reopened.load().snapshot).toBeUndefined();
    expect(reopened.load().entries).toEqual([data(0, 1, 'a')]);
    expect(await fs.readdir(path.join(directory, 'snapshots'))).toEqual([]);
    await reopened.close();
  });

  it('installs a downloaded snapshot, replacing the whole log', async () => {
    const storage = await QuorumStorage.open(directory);
    await storage.write({ ...noWrite, quorumState: { epoch: 4, votedFor: undefined, leaderId: 2 }, entries: [data(0, 1, 'a'), data(1, 1, 'b')] });
    const download = await storage.beginSnapshotDownload({ endOffset: 10, epoch: 3 });
    await download.append(Buffer.from('part1-'));
    await download.append(Buffer.from('part2'));
    await download.finish();
    await storage.write({ ...noWrite, installSnapshot: { endOffset: 10, epoch: 3 }, entries: [data(10, 4, 'k')] });
    await storage.close();
    const reopened = await QuorumStorage.open(directory);
    expect(reopened.load().snapshot).toEqual({ endOffset: 10, epoch: 3 });
    expect(reopened.load().entries).toEqual([data(10, 4, 'k')]);
    expect(Buffer.from(await reopened.readSnapshot({ endOffset: 10, epoch: 3 })).toString()).toBe('part1-part2');
    await reopened.close();
  });

  it('detects a value with a bad checksum (a torn or damaged write)', async () => {
    const storage = await QuorumStorage.open(directory);
    await storage.write({ ...noWrite, quorumState: { epoch: 1, votedFor: 1, leaderId: 1 }, entries: [data(0, 1, 'a'), data(1, 1, 'b')] });
    await storage.close();
    await withRawDb(async (db) => {
      const value = Buffer.from((await db.get(entryKey(1)))!);
      await db.put(entryKey(1), value.subarray(0, value.length - 3));
    });
    await expectCorrupted(/log entry at key 0+1: checksum mismatch/);
  });

  it('detects damaged quorum state', async () => {
    const storage = await QuorumStorage.open(directory);
    await storage.write({ ...noWrite, quorumState: { epoch: 1, votedFor: 1, leaderId: 1 } });
    await storage.close();
    await withRawDb(async (db) => {
      const value = Buffer.from((await db.get('q'))!);
      value[6]! ^= 0xff;
      await db.put('q', value);
    });
    await expectCorrupted(/quorum state/);
  });

  it('detects a gap in the offsets and decreasing epochs', async () => {
    const storage = await QuorumStorage.open(directory);
    await storage.write({ ...noWrite, quorumState: { epoch: 5, votedFor: 1, leaderId: 1 }, entries: [data(0, 1, 'a'), data(1, 2, 'b'), data(2, 2, 'c')] });
    await storage.close();
    await withRawDb((db) => db.del(entryKey(1)));
    await expectCorrupted(/gap: offset 1 is missing/);

    await withRawDb((db) => db.put(entryKey(1), encodeEntry(data(1, 3, 'b'))));
    await expectCorrupted(/epoch 2, below the previous epoch 3/);
  });

  it('detects a missing or damaged snapshot file', async () => {
    const storage = await QuorumStorage.open(directory);
    await storage.write({ ...noWrite, quorumState: { epoch: 1, votedFor: 1, leaderId: 1 }, entries: [data(0, 1, 'a')] });
    await storage.saveSnapshot({ endOffset: 1, epoch: 1 }, Buffer.from('snapshot'));
    await storage.close();
    const file = path.join(directory, 'snapshots', `${'1'.padStart(20, '0')}-1.snapshot`);
    await fs.writeFile(file, 'snapshoT');
    await expectCorrupted(/checksum that does not match/);
    await fs.rm(file);
    await expectCorrupted(/snapshot file .* is missing/);
  });
});
