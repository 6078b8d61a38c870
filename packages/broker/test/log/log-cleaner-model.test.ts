// Model-based test of compaction: random keyed appends (tombstones included), cleanings, and
// crashes at random swap steps followed by recovery. After every step the log must hold the
// newest value of every key ever written, offsets must only grow, and nothing appended may
// disappear from above the cleaned section. A failure prints the fast-check seed.

import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LogCleaner, ManualTime, PartitionLog, makeLogConfig, type SwapStep } from '../../src/index.js';
import { T0, makeBatch, makeTempDir, recordsOf, removeDir } from './batch-fixture.js';

type Command =
  | { kind: 'append'; keys: number[]; tombstone: boolean }
  | { kind: 'clean'; crashAt: SwapStep | undefined }
  | { kind: 'reopen'; crash: boolean };

const swapSteps: SwapStep[] = ['cleaned-written', 'swap-renamed', 'old-segments-deleted', 'swap-completed'];
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      keys: fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 5 }),
      tombstone: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('clean' as const), crashAt: fc.option(fc.constantFrom(...swapSteps), { nil: undefined }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const), crash: fc.boolean() }) },
);

async function readAll(log: PartitionLog): Promise<{ offset: number; key: string | null; value: string | null }[]> {
  const all: { offset: number; key: string | null; value: string | null }[] = [];
  let next = log.logStartOffset;
  while (next < log.logEndOffset) {
    const { records } = await log.read(next, { maxBytes: 500, minOneBatch: true });
    if (records.length === 0) break;
    const decoded = recordsOf(records);
    all.push(...decoded);
    next = decoded.at(-1)!.offset + 1;
  }
  return all;
}

describe('LogCleaner against a model', () => {
  it('keeps the newest value of every key through cleanings and crashes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 5, maxLength: 25 }), async (commands) => {
        const root = await makeTempDir();
        const dir = path.join(root, 'compacted-0');
        const time = new ManualTime(T0);
        let crashAt: SwapStep | undefined;
        const openLog = () =>
          PartitionLog.open({
            dir,
            // Tombstones are kept (long delete.retention.ms): the model's newest value may be null.
            config: makeLogConfig({ segmentBytes: 400, cleanupPolicy: { compact: true, delete: false }, deleteRetentionMs: 10 ** 12 }),
            clock: time,
            timers: time,
            faultHooks: {
              afterSwapStep: (step) => {
                if (step === crashAt) throw new Error(`crash after ${step}`);
              },
            },
          });
        let log = await openLog();
        const latest = new Map<string, string | null>();
        let logEnd = 0;
        let sequence = 0;
        try {
          for (const step of commands) {
            switch (step.kind) {
              case 'append': {
                const records = step.keys.map((key, index) => ({
                  key: `k${key}`,
                  value: step.tombstone && index === 0 ? null : `v${sequence++}`,
                  timestamp: T0,
                }));
                await log.append(makeBatch({ records }), { leaderEpoch: 0, assignOffsets: true });
                for (const record of records) latest.set(record.key, record.value);
                logEnd += records.length;
                break;
              }
              case 'clean': {
                crashAt = step.crashAt;
                const cleaning = new LogCleaner({ clock: time }).clean(log, { force: true });
                const outcome = await cleaning.then(
                  () => 'done',
                  (error: unknown) => (String(error).includes('crash after') ? 'crashed' : Promise.reject(error)),
                );
                crashAt = undefined;
                if (outcome === 'crashed') {
                  await log.abandon();
                  log = await openLog();
                }
                break;
              }
              case 'reopen': {
                if (step.crash) await log.abandon();
                else await log.close();
                log = await openLog();
                break;
              }
            }
            expect(log.logEndOffset).toBe(logEnd);
            const records = await readAll(log);
            const offsets = records.map((record) => record.offset);
            for (let index = 1; index < offsets.length; index++) expect(offsets[index]!).toBeGreaterThan(offsets[index - 1]!);
            const seen = new Map<string, string | null>();
            for (const record of records) seen.set(record.key!, record.value);
            expect(seen).toEqual(latest);
          }
        } finally {
          await log.abandon();
          await removeDir(root);
        }
      }),
      { numRuns: 25 },
    );
  });
});
