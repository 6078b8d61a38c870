// Fault tests on real files: the log must come back with every complete batch written before
// the fault and nothing after it, and say what it dropped.

import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualTime, PartitionLog, makeLogConfig, type LogConfig, type LogFaultHooks, type LogLogger } from '../../src/index.js';
import { T0, decodeBatches, makeBatch, makeTempDir, recordsOf, removeDir } from './batch-fixture.js';

const dirs: string[] = [];
const logs: PartitionLog[] = [];

afterEach(async () => {
  for (const log of logs.splice(0)) await log.abandon();
  for (const dir of dirs.splice(0)) await removeDir(dir);
});

async function newDir(): Promise<string> {
  const root = await makeTempDir();
  dirs.push(root);
  return path.join(root, 'events-3');
}

async function open(dir: string, overrides: Partial<LogConfig> = {}, faultHooks?: LogFaultHooks): Promise<PartitionLog> {
  const time = new ManualTime(T0);
  const log = await PartitionLog.open({ dir, config: makeLogConfig(overrides), clock: time, timers: time, ...(faultHooks ? { faultHooks } : {}) });
  logs.push(log);
  return log;
}

/** Appends `count` batches of 3 records; returns the stored bytes of each batch. */
async function fill(log: PartitionLog, count: number, valueBytes = 40): Promise<void> {
  for (let index = 0; index < count; index++) await log.append(makeBatch({ count: 3, valueBytes }), { leaderEpoch: 1, assignOffsets: true });
}

async function allOffsets(log: PartitionLog): Promise<number[]> {
  const offsets: number[] = [];
  let next = log.logStartOffset;
  while (next < log.logEndOffset) {
    const { records } = await log.read(next, { maxBytes: 1 << 20, minOneBatch: true });
    if (records.length === 0) break;
    const batches = decodeBatches(records);
    offsets.push(...batches.flatMap((batch) => batch.records.map((record) => record.offset)));
    next = batches.at(-1)!.lastOffset + 1;
  }
  return offsets;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, index) => from + index);
}

function segmentPath(dir: string, base: number, suffix = '.log'): string {
  return path.join(dir, `${String(base).padStart(20, '0')}${suffix}`);
}

describe('recovery after a crash', () => {
  it('says it recovered after an unclean shutdown only when there was a log to recover', async () => {
    const dir = await newDir();
    const messages: string[] = [];
    const note = (_fields: unknown, message?: string): void => {
      if (message !== undefined) messages.push(message);
    };
    const logger = { debug: note, info: note, warn: note, error: note } as unknown as LogLogger;
    const openLogged = async (): Promise<PartitionLog> => {
      const time = new ManualTime(T0);
      const log = await PartitionLog.open({ dir, config: makeLogConfig({}), clock: time, timers: time, logger });
      logs.push(log);
      return log;
    };
    // A brand-new partition: nothing was shut down, so nothing was recovered.
    const log = await openLogged();
    expect(messages.filter((message) => message.includes('unclean shutdown'))).toEqual([]);
    await fill(log, 2);
    // Crash: no close, no clean-shutdown marker.
    await log.abandon();
    logs.splice(logs.indexOf(log), 1);
    await openLogged();
    expect(messages.filter((message) => message.includes('unclean shutdown'))).toHaveLength(1);
  });

  it('drops a truncated last batch and keeps every complete batch before it', async () => {
    const dir = await newDir();
    const log = await open(dir);
    await fill(log, 10);
    await log.abandon();
    const file = segmentPath(dir, 0);
    const { size } = await fs.stat(file);
    await fs.truncate(file, size - 7);
    const reopened = await open(dir);
    expect(reopened.recoveryReport.cleanShutdown).toBe(false);
    expect(reopened.recoveryReport.truncation).toMatchObject({ segmentBaseOffset: 0, droppedFromOffset: 27 });
    expect(reopened.recoveryReport.truncation!.bytes).toBe(makeBatch({ count: 3, valueBytes: 40 }).length - 7);
    expect(reopened.logEndOffset).toBe(27);
    expect(await allOffsets(reopened)).toEqual(range(0, 27));
    // The log keeps working where it stopped.
    expect((await reopened.append(makeBatch(), { leaderEpoch: 1, assignOffsets: true })).baseOffset).toBe(27);
  });

  it('cuts at a flipped byte in the middle of a segment and drops later segments', async () => {
    const dir = await newDir();
    const batchBytes = makeBatch({ count: 3, valueBytes: 40 }).length;
    const log = await open(dir, { segmentBytes: batchBytes * 10 });
    await fill(log, 25);
    expect(log.segmentBaseOffsets).toEqual([0, 30, 60]);
    await log.abandon();
    // A crash before any recovery point was checkpointed: everything is re-validated.
    await fs.rm(path.join(dir, 'recovery-point-offset-checkpoint'));
    // Damage a record byte of the 5th batch of the first segment.
    const file = segmentPath(dir, 0);
    const bytes = await fs.readFile(file);
    bytes[batchBytes * 4 + 70]! ^= 0xff;
    await fs.writeFile(file, bytes);
    const reopened = await open(dir, { segmentBytes: batchBytes * 10 });
    const report = reopened.recoveryReport;
    expect(report.truncation).toMatchObject({ segmentBaseOffset: 0, position: batchBytes * 4, bytes: batchBytes * 6, droppedFromOffset: 12 });
    expect(report.truncation!.reason).toContain('CRC');
    expect(report.droppedSegments).toEqual([
      { baseOffset: 30, bytes: batchBytes * 10 },
      { baseOffset: 60, bytes: batchBytes * 5 },
    ]);
    expect(report.droppedBytes).toBe(batchBytes * 21);
    expect(reopened.logEndOffset).toBe(12);
    expect(reopened.segmentBaseOffsets).toEqual([0]);
    expect(await allOffsets(reopened)).toEqual(range(0, 12));
    expect((await fs.readdir(dir)).filter((name) => name.endsWith('.log'))).toEqual([`${'0'.repeat(20)}.log`]);
  });

  it('cuts at a flipped byte in the active segment past the recovery point', async () => {
    const dir = await newDir();
    const batchBytes = makeBatch({ count: 3, valueBytes: 40 }).length;
    const log = await open(dir, { segmentBytes: batchBytes * 10 });
    await fill(log, 25);
    await log.abandon();
    const file = segmentPath(dir, 60);
    const bytes = await fs.readFile(file);
    bytes[batchBytes * 2 + 100]! ^= 0x01;
    await fs.writeFile(file, bytes);
    const reopened = await open(dir, { segmentBytes: batchBytes * 10 });
    expect(reopened.recoveryReport.segmentsRecovered).toEqual([60]);
    expect(reopened.recoveryReport.truncation).toMatchObject({ segmentBaseOffset: 60, position: batchBytes * 2, bytes: batchBytes * 3, droppedFromOffset: 66 });
    expect(await allOffsets(reopened)).toEqual(range(0, 66));
  });

  it('rebuilds a deleted index after a clean shutdown', async () => {
    const dir = await newDir();
    const log = await open(dir, { indexIntervalBytes: 256 });
    await fill(log, 50);
    await log.close();
    await fs.rm(segmentPath(dir, 0, '.index'));
    const reopened = await open(dir, { indexIntervalBytes: 256 });
    expect(reopened.recoveryReport.cleanShutdown).toBe(true);
    expect(reopened.recoveryReport.indexesRebuilt).toEqual([0]);
    expect(reopened.recoveryReport.truncation).toBeUndefined();
    expect(await allOffsets(reopened)).toEqual(range(0, 150));
    expect(decodeBatches((await reopened.read(100, { maxBytes: 1, minOneBatch: true })).records)[0]!.baseOffset).toBe(99);
    expect((await fs.stat(segmentPath(dir, 0, '.index'))).size).toBeGreaterThan(0);
  });

  it('rebuilds a garbled index', async () => {
    const dir = await newDir();
    const log = await open(dir, { indexIntervalBytes: 256 });
    await fill(log, 50);
    await log.close();
    await fs.writeFile(segmentPath(dir, 0, '.index'), Buffer.from([0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 2]));
    const reopened = await open(dir, { indexIntervalBytes: 256 });
    expect(reopened.recoveryReport.indexesRebuilt).toEqual([0]);
    expect(await allOffsets(reopened)).toEqual(range(0, 150));
  });

  it('re-validates only from the recovery point after an unclean shutdown', async () => {
    const dir = await newDir();
    const batchBytes = makeBatch({ count: 3, valueBytes: 40 }).length;
    const log = await open(dir, { segmentBytes: batchBytes * 10 });
    await fill(log, 25);
    await log.flush();
    await fill(log, 2);
    await log.abandon();
    const reopened = await open(dir, { segmentBytes: batchBytes * 10 });
    expect(reopened.recoveryReport.segmentsRecovered).toEqual([60]);
    expect(reopened.logEndOffset).toBe(81);
    expect(await allOffsets(reopened)).toEqual(range(0, 81));
  });

  it('survives a crash in the middle of a roll, at each step', async () => {
    for (const step of ['old-segment-indexes-written', 'new-segment-created'] as const) {
      const dir = await newDir();
      const batchBytes = makeBatch({ count: 3, valueBytes: 40 }).length;
      let armed = false;
      const log = await open(dir, { segmentBytes: batchBytes * 4 }, {
        afterRollStep: (reached) => {
          if (armed && reached === step) throw new Error(`crash after ${reached}`);
        },
      });
      await fill(log, 6); // rolls once at offset 12
      armed = true;
      await expect(fill(log, 3)).rejects.toThrow(`crash after ${step}`);
      // The failed write took the log offline: nothing more is accepted until it is reopened.
      await expect(log.append(makeBatch(), { leaderEpoch: 1, assignOffsets: true })).rejects.toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
      await log.close();
      expect((await fs.readdir(dir)).includes('.clean-shutdown')).toBe(false);
      const reopened = await open(dir, { segmentBytes: batchBytes * 4 });
      expect(reopened.recoveryReport.cleanShutdown).toBe(false);
      expect(reopened.recoveryReport.truncation).toBeUndefined();
      // The batches written before the crashed roll are all there, nothing else.
      expect(reopened.logEndOffset).toBe(24);
      expect(await allOffsets(reopened)).toEqual(range(0, 24));
      await fill(reopened, 5);
      expect(await allOffsets(reopened)).toEqual(range(0, 39));
    }
  });

  it('recovers the leader-epoch cache from the batches when its checkpoint lags', async () => {
    const dir = await newDir();
    const log = await open(dir);
    await log.append(makeBatch({ count: 2 }), { leaderEpoch: 1, assignOffsets: true });
    await log.append(makeBatch({ count: 2 }), { leaderEpoch: 2, assignOffsets: true });
    await log.abandon();
    // A crash between the data write and the epoch checkpoint write.
    await fs.writeFile(path.join(dir, 'leader-epoch-checkpoint'), '0\n1\n1 0\n');
    const reopened = await open(dir);
    expect(reopened.epochEntries).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 2, startOffset: 2 },
    ]);
    expect(reopened.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 2 });
  });

  it('ends the log at a torn write followed by garbage and reports it', async () => {
    const dir = await newDir();
    const log = await open(dir);
    await fill(log, 4);
    await log.abandon();
    await fs.appendFile(segmentPath(dir, 0), Buffer.alloc(100, 0x41));
    const reopened = await open(dir);
    expect(reopened.recoveryReport.truncation).toMatchObject({ bytes: 100, droppedFromOffset: 12 });
    expect(recordsOf((await reopened.read(0, { maxBytes: 1 << 20 })).records)).toHaveLength(12);
  });
});
