// Model-based test: random sequences of appends, truncations (partial and full), log-start
// moves, retention and reopen (clean and after a crash) against a plain in-memory model of which
// offsets the log holds. A failure prints the fast-check seed and the shrunk command list.

import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualTime, PartitionLog, makeLogConfig, type LogConfig } from '../../src/index.js';
import { T0, decodeBatches, makeBatch, makeTempDir, removeDir } from './batch-fixture.js';

type Command =
  | { kind: 'append'; records: number; epochBump: boolean }
  | { kind: 'truncate'; fraction: number }
  | { kind: 'delete-before'; fraction: number }
  | { kind: 'reopen'; crash: boolean }
  | { kind: 'truncate-fully'; skip: number }
  | { kind: 'retention' };

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('append' as const), records: fc.integer({ min: 1, max: 6 }), epochBump: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete-before' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const), crash: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retention' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate-fully' as const), skip: fc.integer({ min: 0, max: 5 }) }) },
);

const config: Partial<LogConfig> = { segmentBytes: 700, indexIntervalBytes: 150, retentionBytes: 2500, retentionMs: -1 };

async function readEverything(log: PartitionLog): Promise<{ offsets: number[]; epochs: number[] }> {
  const offsets: number[] = [];
  const epochs: number[] = [];
  let next = log.logStartOffset;
  while (next < log.logEndOffset) {
    const { records } = await log.read(next, { maxBytes: 300, minOneBatch: true });
    if (records.length === 0) break;
    for (const batch of decodeBatches(records)) {
      for (const record of batch.records) {
        if (record.offset >= log.logStartOffset) {
          offsets.push(record.offset);
          epochs.push(batch.partitionLeaderEpoch);
        }
      }
      next = batch.lastOffset + 1;
    }
  }
  return { offsets, epochs };
}

describe('PartitionLog against a model', () => {
  it('holds exactly the offsets the model says, across truncation, retention and reopen', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 5, maxLength: 30 }), async (commands) => {
        const root = await makeTempDir();
        const dir = path.join(root, 'model-0');
        const time = new ManualTime(T0);
        const openLog = () => PartitionLog.open({ dir, config: makeLogConfig(config), clock: time, timers: time });
        let log = await openLog();
        // Model: offset -> epoch of the records the log must hold, plus start/end offsets.
        let model = new Map<number, number>();
        let logStart = 0;
        let logEnd = 0;
        let epoch = 0;
        try {
          for (const step of commands) {
            switch (step.kind) {
              case 'append': {
                if (step.epochBump) epoch++;
                const result = await log.append(makeBatch({ count: step.records, valueBytes: 20 }), { leaderEpoch: epoch, assignOffsets: true });
                expect(result.baseOffset).toBe(logEnd);
                for (let offset = logEnd; offset < logEnd + step.records; offset++) model.set(offset, epoch);
                logEnd += step.records;
                break;
              }
              case 'truncate': {
                const target = logStart + Math.floor(step.fraction * (logEnd - logStart));
                await log.truncateTo(target);
                // Truncation removes whole batches: the log may end below the target.
                expect(log.logEndOffset).toBeLessThanOrEqual(target);
                logEnd = log.logEndOffset;
                model = new Map([...model].filter(([offset]) => offset < logEnd));
                if (logEnd < logStart) logStart = logEnd;
                break;
              }
              case 'delete-before': {
                const target = logStart + Math.floor(step.fraction * (logEnd - logStart));
                expect(await log.deleteRecordsBefore(target)).toBe(Math.max(target, logStart));
                logStart = Math.max(target, logStart);
                break;
              }
              case 'retention': {
                await log.deleteExpiredSegments();
                expect(log.logStartOffset).toBeGreaterThanOrEqual(logStart);
                logStart = log.logStartOffset;
                break;
              }
              case 'truncate-fully': {
                await log.truncateFullyAndStartAt(logEnd + step.skip);
                logEnd += step.skip;
                logStart = logEnd;
                model = new Map();
                epoch++;
                break;
              }
              case 'reopen': {
                if (step.crash) await log.abandon();
                else await log.close();
                log = await openLog();
                expect(log.recoveryReport.truncation).toBeUndefined();
                break;
              }
            }
            expect([log.logStartOffset, log.logEndOffset]).toEqual([logStart, logEnd]);
          }
          const { offsets, epochs } = await readEverything(log);
          const expected = [...model.keys()].filter((offset) => offset >= logStart).sort((a, b) => a - b);
          expect(offsets).toEqual(expected);
          expect(epochs).toEqual(expected.map((offset) => model.get(offset)));
          // KIP-101: the end offset of each epoch is where the next epoch's records begin.
          const latest = model.get(logEnd - 1);
          if (latest !== undefined && logEnd > logStart) expect(log.endOffsetForEpoch(latest)).toEqual({ epoch: latest, endOffset: logEnd });
        } finally {
          await log.abandon();
          await removeDir(root);
        }
      }),
      { numRuns: 40 },
    );
  });
});
