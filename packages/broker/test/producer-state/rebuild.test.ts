import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { batchesIn, encodeRecordBatchSync } from '@raftka/protocol';
import { makeLogConfig } from '../../src/log/log-config.js';
import { PartitionLog } from '../../src/log/partition-log.js';
import { ManualTime } from '../../src/log/time.js';
import { ProducerStateManager } from '../../src/producer-state/producer-state.js';
import { rebuildProducerState, logHeaderSource, type RebuildLogger } from '../../src/producer-state/rebuild.js';
import { listSnapshotOffsets, snapshotFileName, writeSnapshotFile } from '../../src/producer-state/snapshot.js';

const T0 = 1_700_000_000_000;
const dirs: string[] = [];

afterEach(async () => {
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

function idempotentBatch(producerId: number, producerEpoch: number, baseSequence: number, count: number): Buffer {
  return encodeRecordBatchSync({
    records: Array.from({ length: count }, (_, index) => ({ key: `k${index}`, value: `v${baseSequence + index}`, timestamp: T0 + baseSequence })),
    baseTimestamp: T0 + baseSequence,
    producerId,
    producerEpoch,
    baseSequence,
  });
}

/** The leader's produce path: validate, append, apply the stored headers. */
async function produce(log: PartitionLog, manager: ProducerStateManager, records: Buffer): Promise<void> {
  const headers = [...batchesIn(records)].map(({ header }) => header);
  expect(manager.validateAppend(headers)).toEqual({ kind: 'append' });
  await log.append(records, { leaderEpoch: 1, assignOffsets: true });
  // The log stamped offsets into the buffer it took over: apply the stored headers.
  for (const { header } of batchesIn(records)) manager.applyBatch(header);
}

function collectingLogger(): RebuildLogger & { warnings: unknown[] } {
  const warnings: unknown[] = [];
  return { warnings, warn: (...args: unknown[]) => warnings.push(args), info: () => undefined } as RebuildLogger & { warnings: unknown[] };
}

describe('rebuildProducerState over a real partition log', () => {
  it('recovers from the newest good snapshot plus the log suffix, skipping a corrupt snapshot with a warning', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-producer-state-'));
    dirs.push(dir);
    const time = new ManualTime(T0);
    const log = await PartitionLog.open({ dir, config: makeLogConfig({ segmentBytes: 4096 }), clock: time, timers: time });
    const live = new ProducerStateManager();
    const sequences = new Map<number, number>([[1, 0], [2, 0], [3, 0]]);
    for (let round = 0; round < 30; round++) {
      const producerId = 1 + (round % 3);
      const count = 1 + (round % 4);
      const seq = sequences.get(producerId)!;
      await produce(log, live, idempotentBatch(producerId, 0, seq, count));
      sequences.set(producerId, seq + count);
      if (round === 9 || round === 19) await writeSnapshotFile(dir, live.snapshot());
    }
    const [older, newer] = await listSnapshotOffsets(dir);
    expect(older).toBeDefined();
    // Damage the newest snapshot: the rebuild must not trust it.
    const newerFile = path.join(dir, snapshotFileName(newer!));
    const bytes = await fs.readFile(newerFile);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0xff;
    await fs.writeFile(newerFile, bytes);

    const logger = collectingLogger();
    const rebuilt = new ProducerStateManager();
    const report = await rebuildProducerState({
      manager: rebuilt,
      snapshotDir: dir,
      logStartOffset: log.logStartOffset,
      logEndOffset: log.logEndOffset,
      readHeaders: logHeaderSource(log, 256),
      logger,
    });
    expect(report.corruptSnapshots.map((entry) => entry.offset)).toEqual([newer]);
    expect(report.snapshotOffset).toBe(older);
    expect(logger.warnings).toHaveLength(1);
    expect(rebuilt.entries()).toEqual(live.entries());
    expect(rebuilt.mapEndOffset).toBe(log.logEndOffset);

    // Truncation (a follower reconciling): snapshots above the new end go, the state is the prefix's.
    const cut = older! + 3;
    await log.truncateTo(cut);
    const afterTruncation = new ProducerStateManager();
    const truncReport = await rebuildProducerState({
      manager: afterTruncation,
      snapshotDir: dir,
      logStartOffset: log.logStartOffset,
      logEndOffset: log.logEndOffset,
      readHeaders: logHeaderSource(log),
    });
    const fromScratch = new ProducerStateManager();
    for await (const header of logHeaderSource(log)(0, log.logEndOffset)) fromScratch.applyBatch(header);
    expect(afterTruncation.entries()).toEqual(fromScratch.entries());
    expect(afterTruncation.mapEndOffset).toBe(log.logEndOffset);
    expect(truncReport.snapshotOffset).toBe(older);
    await log.close();
  });

  it('with no snapshot at all, rebuilds from the log start', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-producer-state-'));
    dirs.push(dir);
    const time = new ManualTime(T0);
    const log = await PartitionLog.open({ dir, config: makeLogConfig(), clock: time, timers: time });
    const live = new ProducerStateManager();
    await produce(log, live, Buffer.concat([idempotentBatch(4, 2, 0, 3), idempotentBatch(4, 2, 3, 2)]));
    const rebuilt = new ProducerStateManager();
    const report = await rebuildProducerState({ manager: rebuilt, snapshotDir: dir, logStartOffset: 0, logEndOffset: log.logEndOffset, readHeaders: logHeaderSource(log) });
    expect(report).toMatchObject({ snapshotOffset: undefined, batchesReplayed: 2 });
    expect(rebuilt.entries()).toEqual(live.entries());
    expect(rebuilt.validateAppend([{ producerId: 4n, producerEpoch: 2, baseSequence: 0, lastOffsetDelta: 2, attributes: 0 }])).toEqual({ kind: 'duplicate', firstOffset: 0, lastOffset: 2 });
    await log.close();
  });
});
