import { promises as fs } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { LogManager, ManualTime, makeLogConfig, parsePartitionDirName, partitionDirName, type PartitionLog } from '../../src/index.js';
import { T0, makeBatch, makeTempDir, removeDir, waitFor } from './batch-fixture.js';

const dirs: string[] = [];
const managers: LogManager[] = [];

afterEach(async () => {
  for (const manager of managers.splice(0)) await manager.shutdown();
  for (const dir of dirs.splice(0)) await removeDir(dir);
});

async function setUp(retentionCheckIntervalMs = 1000) {
  const logDir = await makeTempDir();
  dirs.push(logDir);
  const time = new ManualTime(T0);
  const manager = new LogManager({ logDir, clock: time, timers: time, retentionCheckIntervalMs, cleanerBackoffMs: 500 });
  managers.push(manager);
  return { logDir, time, manager };
}

async function appendAt(log: PartitionLog, timestamp: number, count = 1): Promise<void> {
  for (let index = 0; index < count; index++) {
    await log.append(makeBatch({ count: 2, timestamp, valueBytes: 50 }), { leaderEpoch: 0, assignOffsets: true });
  }
}

describe('LogManager retention', () => {
  it('deletes segments older than retention.ms on its schedule, never the active one', async () => {
    const { time, manager } = await setUp();
    const batchBytes = makeBatch({ count: 2, valueBytes: 50 }).length;
    const log = await manager.openLog({
      topic: 'events',
      partition: 0,
      config: makeLogConfig({ segmentBytes: batchBytes * 2, retentionMs: 60_000, fileDeleteDelayMs: 5000 }),
    });
    expect(log.dir.endsWith(partitionDirName('events', 0))).toBe(true);
    await appendAt(log, T0, 4); // two full segments
    await appendAt(log, T0 + 50_000, 2); // a third
    await appendAt(log, T0, 1); // the active segment, holding an old timestamp
    expect(log.segmentBaseOffsets).toEqual([0, 4, 8, 12]);
    manager.start();
    time.advance(61_000); // now - T0 > retention.ms: the first two go; the third is newer
    await manager.idle();
    expect(log.segmentBaseOffsets).toEqual([8, 12]);
    expect(log.logStartOffset).toBe(8);
    const names = await fs.readdir(log.dir);
    expect(names.filter((name) => name.endsWith('.log.deleted'))).toHaveLength(2);
    time.advance(5000);
    await waitFor(async () => !(await fs.readdir(log.dir)).some((name) => name.endsWith('.deleted')));
    time.advance(60_000); // the third is old too now; the active one stays even though it is old
    await manager.idle();
    expect(log.segmentBaseOffsets).toEqual([12]);
  });

  it('deletes the oldest segments while the log exceeds retention.bytes', async () => {
    const { manager } = await setUp();
    const batchBytes = makeBatch({ count: 2, valueBytes: 50 }).length;
    const log = await manager.openLog({
      topic: 'sized',
      partition: 2,
      config: makeLogConfig({ segmentBytes: batchBytes * 2, retentionMs: -1, retentionBytes: batchBytes * 5 }),
    });
    await appendAt(log, T0, 9);
    expect(log.segmentCount).toBe(5);
    expect(await manager.runRetentionOnce()).toBe(2);
    expect(log.sizeInBytes).toBeLessThanOrEqual(batchBytes * 5);
    expect(log.logStartOffset).toBe(8);
    expect(await manager.runRetentionOnce()).toBe(0);
  });

  it('keeps everything with retention.ms=-1 and compact-only topics', async () => {
    const { time, manager } = await setUp();
    const batchBytes = makeBatch({ count: 2, valueBytes: 50 }).length;
    const forever = await manager.openLog({ topic: 'forever', partition: 0, config: makeLogConfig({ segmentBytes: batchBytes, retentionMs: -1 }) });
    const compacted = await manager.openLog({
      topic: 'compacted',
      partition: 0,
      config: makeLogConfig({ segmentBytes: batchBytes, retentionMs: 1, cleanupPolicy: { compact: true, delete: false } }),
    });
    await appendAt(forever, T0, 3);
    await appendAt(compacted, T0, 3);
    time.advance(10 * 24 * 3600 * 1000);
    expect(await manager.runRetentionOnce()).toBe(0);
  });

  it('flushes logs whose unflushed data is older than flush.ms, and checkpoints recovery points', async () => {
    const { time, manager } = await setUp();
    const log = await manager.openLog({ topic: 'flushed', partition: 0, config: makeLogConfig({ flushMs: 3000 }) });
    await appendAt(log, T0, 2);
    manager.start();
    time.advance(1000); // flush check runs, nothing due yet
    await manager.idle();
    expect(log.recoveryPoint).toBe(0);
    // Chores reschedule themselves when they finish, so time moves one check interval at a time.
    for (let step = 0; step < 3; step++) {
      time.advance(1000);
      await manager.idle();
    }
    expect(log.recoveryPoint).toBe(4);
    for (let step = 0; step < 60; step++) {
      time.advance(1000); // up to the recovery-point checkpoint chore
      await manager.idle();
    }
    const text = await fs.readFile(`${log.dir}/recovery-point-offset-checkpoint`, 'utf8');
    expect(text.split('\n')[2]).toBe('4');
  });

  it('finds the partitions that have directories on disk', async () => {
    const { logDir, manager } = await setUp();
    await manager.openLog({ topic: 'my-topic', partition: 12, config: makeLogConfig() });
    await manager.openLog({ topic: 'other', partition: 0, config: makeLogConfig() });
    await fs.mkdir(`${logDir}/not-a-partition-dir-x`);
    await fs.mkdir(`${logDir}/__cluster_metadata-0`);
    const found = await manager.listPartitionsOnDisk();
    expect(found.sort((a, b) => a.topic.localeCompare(b.topic))).toEqual([
      { topic: 'my-topic', partition: 12 },
      { topic: 'other', partition: 0 },
    ]);
    expect(parsePartitionDirName('a-b-c-7')).toEqual({ topic: 'a-b-c', partition: 7 });
  });

  it('runs the cleaner on its schedule and closes logs cleanly on shutdown', async () => {
    const { logDir, time, manager } = await setUp();
    const log = await manager.openLog({
      topic: 'compacted',
      partition: 1,
      config: makeLogConfig({ segmentBytes: 512, cleanupPolicy: { compact: true, delete: false } }),
    });
    for (let round = 0; round < 20; round++) {
      await log.append(makeBatch({ records: [{ key: 'a', value: `a${round}`, timestamp: T0 }, { key: 'b', value: `b${round}`, timestamp: T0 }] }), {
        leaderEpoch: 0,
        assignOffsets: true,
      });
    }
    const sizeBefore = log.sizeInBytes;
    manager.start();
    time.advance(500);
    await manager.idle();
    expect(log.sizeInBytes).toBeLessThan(sizeBefore);
    await manager.shutdown();
    const names = await fs.readdir(`${logDir}/${partitionDirName('compacted', 1)}`);
    expect(names).toContain('.clean-shutdown');
  });
});
