// Rebuilding a partition's producer state from its newest usable snapshot plus the log after it:
// on start-up (recovery) and after the log was truncated (a follower reconciling with a new
// leader). Snapshots above the log end offset describe records that no longer exist and are
// deleted first; a corrupt snapshot is reported, deleted and the next older one tried; with none
// left the state is rebuilt from the log start. Replay uses the same `applyBatch` as live appends,
// so the rebuilt state equals the one the live path would have built.

import { batchesIn, type Logger, type RecordBatchHeader } from '@raftka/protocol';
import type { PartitionLog } from '../log/partition-log.js';
import { ProducerStateManager } from './producer-state.js';
import { deleteSnapshotsAbove, listSnapshotOffsets, readSnapshotFile, snapshotFileName } from './snapshot.js';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Bytes per log read while replaying headers. */
export const REPLAY_READ_BYTES = 1024 * 1024;

export type RebuildLogger = Pick<Logger, 'warn' | 'info'>;

/** Headers of the batches with base offsets in [fromOffset, toOffset), in offset order. */
export type HeaderSource = (fromOffset: number, toOffset: number) => AsyncIterable<RecordBatchHeader>;

export interface RebuildOptions {
  manager: ProducerStateManager;
  /** Where the partition's snapshot files live (the partition directory). */
  snapshotDir: string;
  logStartOffset: number;
  logEndOffset: number;
  readHeaders: HeaderSource;
  logger?: RebuildLogger;
}

export interface RebuildReport {
  /** The snapshot the state started from, undefined when rebuilt from the log start. */
  snapshotOffset: number | undefined;
  corruptSnapshots: { offset: number; reason: string }[];
  deletedAboveLogEnd: number[];
  batchesReplayed: number;
}

export async function rebuildProducerState(options: RebuildOptions): Promise<RebuildReport> {
  const { manager, snapshotDir, logStartOffset, logEndOffset } = options;
  const deletedAboveLogEnd = await deleteSnapshotsAbove(snapshotDir, logEndOffset);
  const corruptSnapshots: RebuildReport['corruptSnapshots'] = [];
  let snapshotOffset: number | undefined;
  const offsets = (await listSnapshotOffsets(snapshotDir)).reverse();
  for (const offset of offsets) {
    const result = await readSnapshotFile(snapshotDir, offset);
    if (result.kind === 'corrupt') {
      corruptSnapshots.push({ offset, reason: result.reason });
      options.logger?.warn({ offset, reason: result.reason }, 'producer-state snapshot is corrupt; ignoring it and rebuilding from the log');
      await fs.rm(path.join(snapshotDir, snapshotFileName(offset)), { force: true });
      continue;
    }
    manager.restore(result.snapshot.entries, result.snapshot.offset);
    snapshotOffset = offset;
    break;
  }
  if (snapshotOffset === undefined || snapshotOffset < logStartOffset) {
    // A snapshot below the log start would need records that retention deleted; Kafka starts
    // over from the log start in that case too.
    if (snapshotOffset !== undefined && snapshotOffset < logStartOffset) snapshotOffset = undefined;
    manager.reset(logStartOffset);
  }
  let batchesReplayed = 0;
  for await (const header of options.readHeaders(manager.mapEndOffset, logEndOffset)) {
    manager.applyBatch(header);
    batchesReplayed++;
  }
  manager.truncateHead(logStartOffset);
  return { snapshotOffset, corruptSnapshots, deletedAboveLogEnd, batchesReplayed };
}

/** A HeaderSource over a PartitionLog: reads whole batches and yields their headers. */
export function logHeaderSource(log: Pick<PartitionLog, 'read'>, readBytes = REPLAY_READ_BYTES): HeaderSource {
  return async function* (fromOffset: number, toOffset: number) {
    let next = fromOffset;
    while (next < toOffset) {
      const { records } = await log.read(next, { maxBytes: readBytes, maxOffset: toOffset, minOneBatch: true });
      if (records.length === 0) return;
      for (const { header } of batchesIn(records)) {
        if (header.baseOffset >= toOffset) return;
        const lastOffset = header.baseOffset + header.lastOffsetDelta;
        if (lastOffset < next) continue;
        yield header;
        next = lastOffset + 1;
      }
    }
  };
}
