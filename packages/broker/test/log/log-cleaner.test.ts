import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RecordInput } from '@raftka/protocol';
import { LogCleaner, ManualTime, PartitionLog, makeLogConfig, type LogConfig, type LogFaultHooks, type SwapStep } from '../../src/index.js';
import { T0, makeBatch, makeTempDir, recordsOf, removeDir } from './batch-fixture.js';

const dirs: string[] = [];
const logs: PartitionLog[] = [];

afterEach(async () => {
  for (const log of logs.splice(0)) await log.abandon();
  for (const dir of dirs.splice(0)) await removeDir(dir);
});

const compacted: Partial<LogConfig> = { cleanupPolicy: { compact: true, delete: false }, segmentBytes: 1024, deleteRetentionMs: 60_000 };

async function open(dir: string, time: ManualTime, overrides: Partial<LogConfig> = {}, faultHooks?: LogFaultHooks): Promise<PartitionLog> {
  const log = await PartitionLog.open({
    dir,
    config: makeLogConfig({ ...compacted, ...overrides }),
    clock: time,
    timers: time,
    ...(faultHooks ? { faultHooks } : {}),
  });
  logs.push(log);
  return log;
}

async function newDir(): Promise<string> {
  const root = await makeTempDir();
  dirs.push(root);
  return path.join(root, 'compacted-0');
}

/** Writes `rounds` rounds of updates to keys k0..k{keys-1}; value = `<key>@<round>`. */
async function writeUpdates(log: PartitionLog, time: ManualTime, rounds: number, keys: number): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const records: RecordInput[] = Array.from({ length: keys }, (_, key) => ({ key: `k${key}`, value: `k${key}@${round}`, timestamp: time.nowMs() }));
    await log.append(makeBatch({ records, timestamp: time.nowMs() }), { leaderEpoch: 0, assignOffsets: true });
  }
}

async function readAll(log: PartitionLog): Promise<{ offset: number; key: string | null; value: string | null }[]> {
  const all: { offset: number; key: string | null; value: string | null }[] = [];
  let next = log.logStartOffset;
  while (next < log.logEndOffset) {
    const { records } = await log.read(next, { maxBytes: 1 << 20, minOneBatch: true });
    if (records.length === 0) break;
    const decoded = recordsOf(records);
    all.push(...decoded);
    next = decoded.at(-1)!.offset + 1;
  }
  return all;
}

function latestPerKey(records: { key: string | null; value: string | null }[]): Map<string | null, string | null> {
  const latest = new Map<string | null, string | null>();
  for (const record of records) latest.set(record.key, record.value);
  return latest;
}

describe('LogCleaner', () => {
  it('keeps only the newest record per key, with original offsets, and never touches the active segment', async () => {
    const time = new ManualTime(T0);
    const log = await open(await newDir(), time);
    await writeUpdates(log, time, 30, 4);
    const before = await readAll(log);
    const activeBase = log.segmentBaseOffsets.at(-1)!;
    const cleaner = new LogCleaner({ clock: time });
    expect((await cleaner.dirtyStats(log)).dirtyRatio).toBe(1);
    const result = await cleaner.clean(log);
    expect(result).toBeDefined();
    expect(result!.recordsRetained).toBeLessThan(result!.recordsRead);
    const after = await readAll(log);
    expect(latestPerKey(after)).toEqual(latestPerKey(before));
    // Offsets are preserved: every surviving record sits at its original offset.
    const byOffset = new Map(before.map((record) => [record.offset, record]));
    for (const record of after) expect(byOffset.get(record.offset)).toEqual(record);
    // Below the active segment, each key appears at most once.
    const cleaned = after.filter((record) => record.offset < activeBase);
    expect(new Set(cleaned.map((record) => record.key)).size).toBe(cleaned.length);
    // The active segment is untouched.
    expect(after.filter((record) => record.offset >= activeBase)).toEqual(before.filter((record) => record.offset >= activeBase));
    expect(log.logEndOffset).toBe(120);
    expect((await cleaner.dirtyStats(log)).dirtyBytes).toBe(0);
  });

  it('waits for min.cleanable.dirty.ratio and drops tombstones only after delete.retention.ms', async () => {
    const time = new ManualTime(T0);
    const log = await open(await newDir(), time, { minCleanableDirtyRatio: 0.9 });
    await writeUpdates(log, time, 10, 4);
    await log.append(makeBatch({ records: [{ key: 'k3', value: null, timestamp: time.nowMs() }], timestamp: time.nowMs() }), { leaderEpoch: 0, assignOffsets: true });
    await writeUpdates(log, time, 20, 2);
    const cleaner = new LogCleaner({ clock: time });
    expect(await cleaner.clean(log)).toBeDefined();
    // Right after the first cleaning the checkpoint makes most of the log clean: ratio is low.
    await writeUpdates(log, time, 1, 1);
    expect(await cleaner.clean(log)).toBeUndefined();
    let after = await readAll(log);
    expect(after.some((record) => record.key === 'k3' && record.value === null)).toBe(true);
    expect(after.some((record) => record.key === 'k3' && record.value !== null)).toBe(false);
    time.advance(60_001);
    expect(await cleaner.clean(log, { force: true })).toBeDefined();
    after = await readAll(log);
    expect(after.some((record) => record.key === 'k3')).toBe(false);
    expect(latestPerKey(after).get('k2')).toBe('k2@9');
  });

  it('leaves logs with cleanup.policy=delete alone', async () => {
    const time = new ManualTime(T0);
    const log = await open(await newDir(), time, { cleanupPolicy: { compact: false, delete: true } });
    await writeUpdates(log, time, 30, 4);
    expect(await new LogCleaner({ clock: time }).clean(log, { force: true })).toBeUndefined();
  });

  it('never cleans past the high watermark', async () => {
    const time = new ManualTime(T0);
    const log = await open(await newDir(), time);
    await writeUpdates(log, time, 30, 4);
    log.updateHighWatermark(log.segmentBaseOffsets[1]! + 1);
    const cleaner = new LogCleaner({ clock: time });
    const stats = await cleaner.dirtyStats(log);
    expect(stats.firstUncleanableOffset).toBe(log.segmentBaseOffsets[1]);
    expect(await cleaner.clean(log, { force: true })).toMatchObject({ cleanedUpTo: log.segmentBaseOffsets[1] });
    log.updateHighWatermark(0);
    expect(await cleaner.clean(log, { force: true })).toBeUndefined();
  });

  it('respects min.compaction.lag.ms', async () => {
    const time = new ManualTime(T0);
    const log = await open(await newDir(), time, { minCompactionLagMs: 10_000 });
    await writeUpdates(log, time, 30, 4);
    const cleaner = new LogCleaner({ clock: time });
    expect(await cleaner.clean(log, { force: true })).toBeUndefined();
    time.advance(10_001);
    expect(await cleaner.clean(log, { force: true })).toBeDefined();
  });

  it('readers running during a cleaning always see the newest value of every key', async () => {
    const time = new ManualTime(T0);
    const log = await open(await newDir(), time);
    await writeUpdates(log, time, 40, 5);
    const expected = latestPerKey(await readAll(log));
    let cleaning = true;
    const cleaned = new LogCleaner({ clock: time }).clean(log).finally(() => {
      cleaning = false;
    });
    let reads = 0;
    while (cleaning || reads === 0) {
      expect(latestPerKey(await readAll(log))).toEqual(expected);
      reads++;
    }
    expect(await cleaned).toBeDefined();
    expect(latestPerKey(await readAll(log))).toEqual(expected);
  });

  it('keeps the newest value of every key through a crash at any swap step', async () => {
    const steps: SwapStep[] = ['cleaned-written', 'swap-renamed', 'old-segments-deleted', 'swap-completed'];
    for (const step of steps) {
      const time = new ManualTime(T0);
      const dir = await newDir();
      let armed = false;
      const log = await open(dir, time, {}, {
        afterSwapStep: (reached) => {
          if (armed && reached === step) throw new Error(`crash after ${reached}`);
        },
      });
      await writeUpdates(log, time, 30, 4);
      const before = await readAll(log);
      armed = true;
      await expect(new LogCleaner({ clock: time }).clean(log)).rejects.toThrow(`crash after ${step}`);
      await log.abandon();
      const names = await fs.readdir(dir);
      if (step === 'cleaned-written') expect(names.some((name) => name.endsWith('.cleaned'))).toBe(true);
      if (step === 'swap-renamed' || step === 'old-segments-deleted') expect(names.some((name) => name.endsWith('.swap'))).toBe(true);

      const reopened = await open(dir, time);
      const report = reopened.recoveryReport;
      if (step === 'cleaned-written') expect(report.cleanedFilesRemoved).toBe(1);
      if (step === 'swap-renamed' || step === 'old-segments-deleted') expect(report.swapsCompleted).toEqual([0]);
      const after = await readAll(reopened);
      expect(latestPerKey(after), `after a crash at ${step}`).toEqual(latestPerKey(before));
      expect(reopened.logEndOffset).toBe(120);
      const offsets = after.map((record) => record.offset);
      expect([...offsets].sort((a, b) => a - b)).toEqual(offsets);
      const remaining = await fs.readdir(dir);
      expect(remaining.filter((name) => name.endsWith('.swap') || name.endsWith('.cleaned'))).toEqual([]);
      // A later cleaning finishes the job.
      await new LogCleaner({ clock: time }).clean(reopened, { force: true });
      expect(latestPerKey(await readAll(reopened))).toEqual(latestPerKey(before));
    }
  });
});
