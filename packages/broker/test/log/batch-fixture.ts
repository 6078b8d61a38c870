// Test helpers for the partition log: batches built with @raftka/protocol's encoder, decoding
// of what the log returns, and temporary directories.

import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { batchesIn, decodeRecordBatchSync, encodeRecordBatchSync, type DecodedRecord, type RecordInput } from '@raftka/protocol';

export const T0 = 1_700_000_000_000;

/** One uncompressed batch of `count` records `key-i` / `value-i` (or the given records). */
export function makeBatch(options: { count?: number; records?: RecordInput[]; timestamp?: number; valueBytes?: number; keyPrefix?: string } = {}): Buffer {
  const timestamp = options.timestamp ?? T0;
  const records =
    options.records ??
    Array.from({ length: options.count ?? 1 }, (_, index) => ({
      key: `${options.keyPrefix ?? 'key'}-${index}`,
      value: options.valueBytes === undefined ? `value-${index}` : Buffer.alloc(options.valueBytes, index % 251),
      timestamp,
    }));
  return encodeRecordBatchSync({ records, baseTimestamp: timestamp });
}

/** Several batches concatenated, as a produce request carries them. */
export function concatBatches(...batches: Buffer[]): Buffer {
  return Buffer.concat(batches);
}

export interface ReadBatch {
  baseOffset: number;
  lastOffset: number;
  partitionLeaderEpoch: number;
  maxTimestamp: number;
  records: DecodedRecord[];
}

/** Decodes every batch of a read result (checking CRCs), for assertions. */
export function decodeBatches(buffer: Buffer): ReadBatch[] {
  const batches: ReadBatch[] = [];
  for (const { position, header } of batchesIn(buffer, 0, { verifyCrc: true })) {
    batches.push({
      baseOffset: header.baseOffset,
      lastOffset: header.baseOffset + header.lastOffsetDelta,
      partitionLeaderEpoch: header.partitionLeaderEpoch,
      maxTimestamp: header.maxTimestamp,
      records: decodeRecordBatchSync(buffer, position).records,
    });
  }
  return batches;
}

export function recordsOf(buffer: Buffer): { offset: number; key: string | null; value: string | null }[] {
  return decodeBatches(buffer).flatMap((batch) =>
    batch.records.map((record) => ({ offset: record.offset, key: record.key?.toString() ?? null, value: record.value?.toString() ?? null })),
  );
}

export async function makeTempDir(prefix = 'raftka-log-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
}

/** Polls `condition` until it holds or `timeoutMs` passes (never a blind sleep). */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met before the deadline');
    await new Promise((resolve) => setImmediate(resolve));
  }
}
