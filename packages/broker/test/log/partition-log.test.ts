import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BATCH_OFFSET_CRC, RaftkaError, readBatchHeader, timestampTypeOf } from '@raftka/protocol';
import {
  EARLIEST_TIMESTAMP,
  FileHandlePool,
  LATEST_TIMESTAMP,
  ManualTime,
  PartitionLog,
  makeLogConfig,
  type LogConfig,
} from '../../src/index.js';
import { T0, concatBatches, decodeBatches, makeBatch, makeTempDir, recordsOf, removeDir } from './batch-fixture.js';

const dirs: string[] = [];
const logs: PartitionLog[] = [];

async function openLog(overrides: Partial<LogConfig> = {}, extra: { time?: ManualTime; dir?: string; filePool?: FileHandlePool } = {}) {
  const dir = extra.dir ?? path.join(await makeTempDir(), 'topic-0');
  if (!extra.dir) dirs.push(path.dirname(dir));
  const time = extra.time ?? new ManualTime(T0);
  const log = await PartitionLog.open({
    dir,
    config: makeLogConfig(overrides),
    clock: time,
    timers: time,
    ...(extra.filePool ? { filePool: extra.filePool } : {}),
  });
  logs.push(log);
  return { log, dir, time };
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(RaftkaError);
  expect((error as RaftkaError).code).toBe(code);
}

afterEach(async () => {
  for (const log of logs.splice(0)) await log.abandon();
  for (const dir of dirs.splice(0)) await removeDir(dir);
});

describe('PartitionLog append and read', () => {
  it('assigns offsets, stamps the leader epoch and reads back the stored bytes', async () => {
    const { log } = await openLog();
    const first = await log.append(makeBatch({ count: 3 }), { leaderEpoch: 5, assignOffsets: true });
    expect(first).toEqual({ baseOffset: 0, lastOffset: 2, logEndOffset: 3, maxTimestamp: T0 });
    const second = await log.append(concatBatches(makeBatch({ count: 2 }), makeBatch({ count: 1 })), { leaderEpoch: 5, assignOffsets: true });
    expect(second).toMatchObject({ baseOffset: 3, lastOffset: 5, logEndOffset: 6 });
    expect(log.logEndOffset).toBe(6);
    const { records } = await log.read(0, { maxBytes: 1 << 20 });
    const batches = decodeBatches(records);
    expect(batches.map((batch) => [batch.baseOffset, batch.lastOffset, batch.partitionLeaderEpoch])).toEqual([
      [0, 2, 5],
      [3, 4, 5],
      [5, 5, 5],
    ]);
    expect(recordsOf(records).map((record) => record.offset)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(log.latestEpoch).toBe(5);
  });

  it('reads from the batch containing an offset, honours maxBytes, minOneBatch and maxOffset', async () => {
    const { log } = await openLog();
    for (let index = 0; index < 10; index++) await log.append(makeBatch({ count: 2 }), { leaderEpoch: 0, assignOffsets: true });
    const batchBytes = makeBatch({ count: 2 }).length;
    const middle = await log.read(5, { maxBytes: 1 << 20 });
    expect(decodeBatches(middle.records)[0]!.baseOffset).toBe(4);
    const two = await log.read(0, { maxBytes: batchBytes * 2 + 10 });
    expect(decodeBatches(two.records)).toHaveLength(2);
    const none = await log.read(0, { maxBytes: 10 });
    expect(none.records.length).toBe(0);
    const one = await log.read(0, { maxBytes: 10, minOneBatch: true });
    expect(decodeBatches(one.records)).toHaveLength(1);
    const belowHighWatermark = await log.read(0, { maxBytes: 1 << 20, maxOffset: 6 });
    expect(decodeBatches(belowHighWatermark.records).map((batch) => batch.baseOffset)).toEqual([0, 2, 4]);
    const atEnd = await log.read(20, { maxBytes: 1000 });
    expect(atEnd.records.length).toBe(0);
    expect(atEnd.logEndOffset).toBe(20);
  });

  it('answers OFFSET_OUT_OF_RANGE below the log start and above the end', async () => {
    const { log } = await openLog();
    await log.append(makeBatch({ count: 4 }), { leaderEpoch: 0, assignOffsets: true });
    await expectCode(log.read(5, { maxBytes: 100 }), 'OFFSET_OUT_OF_RANGE');
    await log.deleteRecordsBefore(2);
    await expectCode(log.read(1, { maxBytes: 100 }), 'OFFSET_OUT_OF_RANGE');
    expect(recordsOf((await log.read(2, { maxBytes: 1000 })).records).map((record) => record.offset)).toEqual([0, 1, 2, 3]);
  });

  it('refuses a request with a corrupt batch as a whole (CORRUPT_MESSAGE)', async () => {
    const { log } = await openLog();
    const bad = makeBatch({ count: 2 });
    bad.writeUInt32BE((bad.readUInt32BE(BATCH_OFFSET_CRC) + 1) >>> 0, BATCH_OFFSET_CRC);
    await expectCode(log.append(concatBatches(makeBatch(), bad), { leaderEpoch: 0, assignOffsets: true }), 'CORRUPT_MESSAGE');
    await expectCode(log.append(makeBatch().subarray(0, 40), { leaderEpoch: 0, assignOffsets: true }), 'CORRUPT_MESSAGE');
    const truncated = makeBatch({ count: 3 });
    await expectCode(log.append(truncated.subarray(0, truncated.length - 1), { leaderEpoch: 0, assignOffsets: true }), 'CORRUPT_MESSAGE');
    expect(log.logEndOffset).toBe(0);
    expect(log.sizeInBytes).toBe(0);
  });

  it('refuses batches larger than max.message.bytes (MESSAGE_TOO_LARGE)', async () => {
    const { log } = await openLog({ maxMessageBytes: 500 });
    await expectCode(log.append(makeBatch({ count: 1, valueBytes: 600 }), { leaderEpoch: 0, assignOffsets: true }), 'MESSAGE_TOO_LARGE');
    expect(log.logEndOffset).toBe(0);
  });

  it('refuses an append from a stale leader epoch (FENCED_LEADER_EPOCH)', async () => {
    const { log } = await openLog();
    await log.append(makeBatch(), { leaderEpoch: 3, assignOffsets: true });
    await expectCode(log.append(makeBatch(), { leaderEpoch: 2, assignOffsets: true }), 'FENCED_LEADER_EPOCH');
    expect(log.logEndOffset).toBe(1);
  });

  it('serializes concurrent appends: offsets are dense and in call order', async () => {
    const { log } = await openLog({ segmentBytes: 4096 });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, index) => log.append(makeBatch({ count: 1 + (index % 3) }), { leaderEpoch: 0, assignOffsets: true })),
    );
    let expected = 0;
    for (const [index, result] of results.entries()) {
      expect(result.baseOffset).toBe(expected);
      expected += 1 + (index % 3);
    }
    expect(log.logEndOffset).toBe(expected);
    expect(log.segmentCount).toBeGreaterThan(1);
    const offsets: number[] = [];
    let next = 0;
    while (next < log.logEndOffset) {
      const { records } = await log.read(next, { maxBytes: 100_000 });
      const batch = recordsOf(records);
      offsets.push(...batch.map((record) => record.offset));
      next = batch.at(-1)!.offset + 1;
    }
    expect(offsets).toEqual(Array.from({ length: expected }, (_, index) => index));
  });

  it('refuses a bad append queued behind writes alone; the appends around it are written', async () => {
    // Batches over half of a writev each go in a write of their own, so the queue validates the
    // appends behind every write while that write is in flight (and behind the fsync).
    const big = (count: number) => makeBatch({ count, valueBytes: 300 * 1024 });
    const corrupt = big(2);
    corrupt.writeUInt32BE((corrupt.readUInt32BE(BATCH_OFFSET_CRC) + 1) >>> 0, BATCH_OFFSET_CRC);
    for (const flushMessages of [1, Number.MAX_SAFE_INTEGER]) {
      const { log } = await openLog({ flushMessages, maxMessageBytes: 1024 * 1024 });
      const requests = [big(2), corrupt, big(2), big(4), makeBatch().subarray(0, 40), big(1), big(2)];
      const outcomes = await Promise.allSettled(requests.map((records) => log.append(records, { leaderEpoch: 0, assignOffsets: true })));
      const codes = outcomes.map((outcome) => (outcome.status === 'fulfilled' ? 'ok' : (outcome.reason as RaftkaError).code));
      expect(codes).toEqual(['ok', 'CORRUPT_MESSAGE', 'ok', 'MESSAGE_TOO_LARGE', 'CORRUPT_MESSAGE', 'ok', 'ok']);
      const bases = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value.baseOffset] : []));
      expect(bases).toEqual([0, 2, 4, 5]);
      expect(log.logEndOffset).toBe(7);
      const written = [requests[0]!, requests[2]!, requests[5]!, requests[6]!].reduce((total, records) => total + records.length, 0);
      expect(log.sizeInBytes).toBe(written);
      if (flushMessages === 1) expect(log.recoveryPoint).toBe(7);
      const read: number[] = [];
      for (let next = 0; next < log.logEndOffset; ) {
        const batches = decodeBatches((await log.read(next, { maxBytes: 1, minOneBatch: true })).records);
        read.push(...batches.flatMap((batch) => batch.records.map((record) => record.offset)));
        next = batches.at(-1)!.lastOffset + 1;
      }
      expect(read).toEqual([0, 1, 2, 3, 4, 5, 6]);
    }
  });

  it('a reader racing appends sees only whole batches', async () => {
    const { log } = await openLog();
    const appends: Promise<unknown>[] = [];
    const seen: Buffer[] = [];
    for (let round = 0; round < 30; round++) {
      appends.push(log.append(makeBatch({ count: 5, valueBytes: 300 }), { leaderEpoch: 0, assignOffsets: true }));
      seen.push((await log.read(0, { maxBytes: 1 << 20 })).records);
    }
    await Promise.all(appends);
    for (const records of seen) {
      const batches = decodeBatches(records);
      expect(batches.reduce((total, batch) => total + batch.records.length, 0)).toBe(batches.length * 5);
      expect(records.length % makeBatch({ count: 5, valueBytes: 300 }).length).toBe(0);
    }
  });

  it('stamps the broker time with message.timestamp.type=LogAppendTime', async () => {
    const { log, time } = await openLog({ messageTimestampType: 'LogAppendTime' });
    time.advance(5000);
    const result = await log.append(makeBatch({ timestamp: 42 }), { leaderEpoch: 0, assignOffsets: true });
    expect(result.maxTimestamp).toBe(T0 + 5000);
    const { records } = await log.read(0, { maxBytes: 1000 });
    const header = readBatchHeader(records, 0);
    expect(timestampTypeOf(header.attributes)).toBe(1);
    expect(decodeBatches(records)[0]!.records[0]!.timestamp).toBe(T0 + 5000);
  });
});

describe('PartitionLog follower appends', () => {
  it('appends batches with offsets set by the leader, gaps allowed, and learns epochs', async () => {
    const leader = (await openLog()).log;
    await leader.append(makeBatch({ count: 3 }), { leaderEpoch: 1, assignOffsets: true });
    await leader.append(makeBatch({ count: 2 }), { leaderEpoch: 4, assignOffsets: true });
    const { log: follower } = await openLog();
    const fetched = (await leader.read(0, { maxBytes: 1 << 20 })).records;
    const result = await follower.appendAsFollower(Buffer.from(fetched));
    expect(result).toMatchObject({ baseOffset: 0, lastOffset: 4, logEndOffset: 5 });
    expect(follower.epochEntries).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 4, startOffset: 3 },
    ]);
    await expectCode(follower.appendAsFollower(Buffer.from(fetched)), 'INVALID_RECORD');
    // A gap (compacted leader): offsets jump forward.
    const gapped = makeBatch({ count: 1 });
    gapped.writeBigInt64BE(10n, 0);
    gapped.writeInt32BE(4, 12);
    await follower.appendAsFollower(gapped);
    expect(follower.logEndOffset).toBe(11);
    expect(recordsOf((await follower.read(5, { maxBytes: 1000 })).records).map((record) => record.offset)).toEqual([10]);
  });
});

describe('PartitionLog segments', () => {
  it('rolls on segment.bytes without splitting a batch and reads across segments', async () => {
    const batch = makeBatch({ count: 4, valueBytes: 100 });
    const { log } = await openLog({ segmentBytes: batch.length * 3 + 10 });
    for (let index = 0; index < 10; index++) await log.append(makeBatch({ count: 4, valueBytes: 100 }), { leaderEpoch: 0, assignOffsets: true });
    expect(log.segmentBaseOffsets).toEqual([0, 12, 24, 36]);
    for (const base of log.segmentBaseOffsets) {
      const { records } = await log.read(base, { maxBytes: 1 << 20 });
      expect(decodeBatches(records)[0]!.baseOffset).toBe(base);
    }
    const { records } = await log.read(11, { maxBytes: 1 << 20 });
    expect(decodeBatches(records).map((entry) => entry.baseOffset)).toEqual([8]);
  });

  it('rolls a non-empty segment older than segment.ms', async () => {
    const { log, time } = await openLog({ segmentMs: 60_000 });
    await log.append(makeBatch(), { leaderEpoch: 0, assignOffsets: true });
    time.advance(30_000);
    await log.append(makeBatch(), { leaderEpoch: 0, assignOffsets: true });
    expect(log.segmentCount).toBe(1);
    time.advance(30_000);
    await log.append(makeBatch(), { leaderEpoch: 0, assignOffsets: true });
    expect(log.segmentBaseOffsets).toEqual([0, 2]);
  });

  it('uses the sparse index: lookups land on the right batch in a large segment', async () => {
    const { log } = await openLog({ indexIntervalBytes: 512 });
    for (let index = 0; index < 200; index++) await log.append(makeBatch({ count: 3, valueBytes: 50 }), { leaderEpoch: 0, assignOffsets: true });
    for (const offset of [0, 1, 299, 300, 301, 599]) {
      const { records } = await log.read(offset, { maxBytes: 1 });
      expect(records.length).toBe(0);
      const one = decodeBatches((await log.read(offset, { maxBytes: 1, minOneBatch: true })).records);
      expect(one[0]!.baseOffset).toBe(offset - (offset % 3));
    }
  });

  it('keeps open file handles bounded by the pool', async () => {
    const pool = new FileHandlePool(2);
    const batch = makeBatch({ count: 1, valueBytes: 100 });
    const { log } = await openLog({ segmentBytes: batch.length }, { filePool: pool });
    for (let index = 0; index < 8; index++) await log.append(makeBatch({ count: 1, valueBytes: 100 }), { leaderEpoch: 0, assignOffsets: true });
    expect(log.segmentCount).toBe(8);
    for (let offset = 0; offset < 8; offset++) {
      expect(recordsOf((await log.read(offset, { maxBytes: 1000 })).records)[0]!.offset).toBe(offset);
    }
    expect(pool.openCount).toBeLessThanOrEqual(2);
  });
});

describe('PartitionLog index memory', () => {
  it('loads inactive segments\' indexes on demand and drops them with their idle file handles', async () => {
    const pool = new FileHandlePool(2);
    const { log, dir, time } = await openLog({ segmentBytes: 2000, indexIntervalBytes: 100 }, { filePool: pool });
    for (let index = 0; index < 60; index++) await log.append(makeBatch({ count: 2, valueBytes: 40 }), { leaderEpoch: 0, assignOffsets: true });
    await log.close();
    const reopenPool = new FileHandlePool(2);
    const { log: reopened } = await openLog({ segmentBytes: 2000, indexIntervalBytes: 100 }, { dir, time, filePool: reopenPool });
    expect(reopened.recoveryReport.indexesRebuilt).toEqual([]);
    const inactive = reopened.inactiveSegments();
    expect(inactive.length).toBeGreaterThanOrEqual(4);
    expect(inactive.every((segment) => !segment.indexesLoaded)).toBe(true);
    for (let offset = 0; offset < reopened.logEndOffset; offset += 7) {
      const first = decodeBatches((await reopened.read(offset, { maxBytes: 1, minOneBatch: true })).records)[0]!;
      expect(first.baseOffset).toBe(offset - (offset % 2));
    }
    expect(inactive.filter((segment) => segment.indexesLoaded).length).toBeLessThanOrEqual(2);
    // Appending after the reopen extends the active segment's index without clobbering it.
    await reopened.append(makeBatch({ count: 2, valueBytes: 40 }), { leaderEpoch: 0, assignOffsets: true });
    await reopened.close();
    const { log: third } = await openLog({ segmentBytes: 2000, indexIntervalBytes: 100 }, { dir, time });
    expect(third.recoveryReport.indexesRebuilt).toEqual([]);
    expect(third.logEndOffset).toBe(122);
    for (let offset = 0; offset < third.logEndOffset; offset += 5) {
      expect(decodeBatches((await third.read(offset, { maxBytes: 1, minOneBatch: true })).records)[0]!.baseOffset).toBe(offset - (offset % 2));
    }
  });
});

describe('PartitionLog timestamps, truncation and epochs', () => {
  it('finds offsets by timestamp', async () => {
    const { log } = await openLog({ segmentBytes: 400, indexIntervalBytes: 100 });
    for (let index = 0; index < 20; index++) await log.append(makeBatch({ count: 2, timestamp: T0 + index * 1000 }), { leaderEpoch: 0, assignOffsets: true });
    expect(await log.offsetForTimestamp(T0)).toEqual({ offset: 0, timestamp: T0 });
    expect(await log.offsetForTimestamp(T0 + 5500)).toEqual({ offset: 12, timestamp: T0 + 6000 });
    expect(await log.offsetForTimestamp(T0 + 19_000)).toEqual({ offset: 38, timestamp: T0 + 19_000 });
    expect(await log.offsetForTimestamp(T0 + 20_000)).toBeUndefined();
    expect(await log.offsetForTimestamp(LATEST_TIMESTAMP)).toMatchObject({ offset: 40 });
    expect(await log.offsetForTimestamp(EARLIEST_TIMESTAMP)).toMatchObject({ offset: 0 });
  });

  it('truncateTo removes batches at or above the offset across segments and trims epochs', async () => {
    const { log } = await openLog({ segmentBytes: 300 });
    for (let epoch = 1; epoch <= 3; epoch++) {
      for (let index = 0; index < 4; index++) await log.append(makeBatch({ count: 2 }), { leaderEpoch: epoch, assignOffsets: true });
    }
    expect(log.logEndOffset).toBe(24);
    expect(log.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 8 });
    expect(log.endOffsetForEpoch(3)).toEqual({ epoch: 3, endOffset: 24 });
    const segmentsBefore = log.segmentCount;
    await log.truncateTo(10);
    expect(log.logEndOffset).toBe(10);
    expect(log.segmentCount).toBeLessThan(segmentsBefore);
    expect(log.latestEpoch).toBe(2);
    expect(log.endOffsetForEpoch(2)).toEqual({ epoch: 2, endOffset: 10 });
    expect(log.endOffsetForEpoch(3)).toEqual({ epoch: -1, endOffset: -1 });
    const all = recordsOf((await log.read(0, { maxBytes: 1 << 20 })).records);
    expect(all.at(-1)!.offset).toBeLessThan(10);
    // Appends continue right after the truncation point.
    expect((await log.append(makeBatch(), { leaderEpoch: 4, assignOffsets: true })).baseOffset).toBe(10);
    // Truncating into the middle of a batch removes the whole batch.
    await log.truncateTo(5);
    expect(log.logEndOffset).toBe(4);
  });

  it('truncateFullyAndStartAt empties the log at a new offset', async () => {
    const { log } = await openLog();
    await log.append(makeBatch({ count: 5 }), { leaderEpoch: 2, assignOffsets: true });
    await log.truncateFullyAndStartAt(100);
    expect([log.logStartOffset, log.logEndOffset, log.latestEpoch]).toEqual([100, 100, -1]);
    expect((await log.append(makeBatch(), { leaderEpoch: 3, assignOffsets: true })).baseOffset).toBe(100);
    await expectCode(log.read(50, { maxBytes: 100 }), 'OFFSET_OUT_OF_RANGE');
  });

  it('deleteRecordsBefore advances the log start and deletes whole segments below it', async () => {
    const { log, time } = await openLog({ segmentBytes: 300, fileDeleteDelayMs: 1000 });
    for (let index = 0; index < 12; index++) await log.append(makeBatch({ count: 2 }), { leaderEpoch: 0, assignOffsets: true });
    const segments = log.segmentBaseOffsets;
    expect(await log.deleteRecordsBefore(segments[2]! + 1)).toBe(segments[2]! + 1);
    expect(log.segmentBaseOffsets[0]).toBe(segments[2]);
    await expectCode(log.deleteRecordsBefore(1000), 'OFFSET_OUT_OF_RANGE');
    const names = await fs.readdir(log.dir);
    expect(names.filter((name) => name.endsWith('.log.deleted'))).toHaveLength(2);
    time.advance(1000);
    await waitForNoDeleted(log.dir);
  });

  it('persists everything across a clean close and reopen', async () => {
    const { log, dir, time } = await openLog({ segmentBytes: 300 });
    for (let index = 0; index < 10; index++) await log.append(makeBatch({ count: 2 }), { leaderEpoch: index < 5 ? 1 : 2, assignOffsets: true });
    await log.deleteRecordsBefore(3);
    const before = (await log.read(3, { maxBytes: 1 << 20 })).records;
    await log.close();
    await expectCode(log.append(makeBatch(), { leaderEpoch: 2, assignOffsets: true }), 'SHUTTING_DOWN');
    const { log: reopened } = await openLog({ segmentBytes: 300 }, { dir, time });
    expect(reopened.recoveryReport.cleanShutdown).toBe(true);
    expect(reopened.recoveryReport.segmentsRecovered).toEqual([]);
    expect(reopened.recoveryReport.indexesRebuilt).toEqual([]);
    expect([reopened.logStartOffset, reopened.logEndOffset, reopened.latestEpoch, reopened.recoveryPoint]).toEqual([3, 20, 2, 20]);
    expect(reopened.epochEntries).toEqual([
      { epoch: 1, startOffset: 3 },
      { epoch: 2, startOffset: 10 },
    ]);
    expect((await reopened.read(3, { maxBytes: 1 << 20 })).records.equals(before)).toBe(true);
    // Max timestamps come back from the time indexes (retention and ListOffsets rely on them).
    expect(await reopened.offsetForTimestamp(T0)).toEqual({ offset: 3, timestamp: T0 });
  });

  it('flush.messages=1 fsyncs every append group and advances the recovery point', async () => {
    const { log } = await openLog({ flushMessages: 1 });
    await Promise.all(Array.from({ length: 20 }, () => log.append(makeBatch({ count: 2 }), { leaderEpoch: 0, assignOffsets: true })));
    expect(log.recoveryPoint).toBe(40);
    const { log: lazy } = await openLog();
    await lazy.append(makeBatch({ count: 2 }), { leaderEpoch: 0, assignOffsets: true });
    expect(lazy.recoveryPoint).toBe(0);
    await lazy.flush();
    expect(lazy.recoveryPoint).toBe(2);
  });

  it('flush.ms flushes once unflushed data is old enough', async () => {
    const { log, time } = await openLog({ flushMs: 1000 });
    await log.append(makeBatch(), { leaderEpoch: 0, assignOffsets: true });
    expect(await log.flushIfDue()).toBe(false);
    time.advance(1000);
    expect(await log.flushIfDue()).toBe(true);
    expect(log.recoveryPoint).toBe(1);
  });
});

async function waitForNoDeleted(dir: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const names = await fs.readdir(dir);
    if (!names.some((name) => name.endsWith('.deleted'))) return;
    if (Date.now() > deadline) throw new Error(`.deleted files remain: ${names.join(', ')}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
