// The high watermarks of every replica in a log directory, in one checkpoint file (Kafka's
// `replication-offset-checkpoint`): a version line, an entry-count line, then `topic partition hw`
// per line, replaced atomically (write a temporary file, fsync, rename, fsync the directory).
//
// Why it exists: a restarted leader otherwise starts with its HW at the log start offset and
// hides every committed record from consumers until each ISR member has fetched again, which for
// a follower that is down lasts until it leaves the ISR (replica.lag.time.max.ms); ListOffsets
// "latest" would answer the log start meanwhile. A checkpointed HW is never above the true one
// (it was the HW when written), so restoring it exposes only committed records. One file per log
// directory keeps the cost at one fsync per interval however many partitions there are.

import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { syncDirectory } from '../log/checkpoint-file.js';
import { partitionKey, type PurgatoryKey } from '../purgatory/purgatory.js';

export const HIGH_WATERMARK_CHECKPOINT_FILE = 'replication-offset-checkpoint';
const CHECKPOINT_VERSION = '0';

export interface HighWatermarkEntry {
  topic: string;
  partition: number;
  highWatermark: number;
}

/**
 * The checkpointed high watermarks by partition key. A missing file is an empty map; a malformed
 * one is reported through `onCorrupt` and treated as empty: every HW then starts at its log start
 * offset, which is safe (only slower to expose committed records).
 */
export async function readHighWatermarks(logDir: string, onCorrupt: (reason: string) => void): Promise<Map<PurgatoryKey, number>> {
  const result = new Map<PurgatoryKey, number>();
  let text: string;
  try {
    text = await fs.readFile(path.join(logDir, HIGH_WATERMARK_CHECKPOINT_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return result;
    throw error;
  }
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const count = Number(lines[1]);
  if (lines[0]?.trim() !== CHECKPOINT_VERSION || !Number.isSafeInteger(count) || lines.length !== count + 2) {
    onCorrupt('bad version or entry count');
    return result;
  }
  for (const line of lines.slice(2)) {
    const fields = line.trim().split(/\s+/);
    const partition = Number(fields[1]);
    const highWatermark = Number(fields[2]);
    if (fields.length !== 3 || !Number.isSafeInteger(partition) || partition < 0 || !Number.isSafeInteger(highWatermark) || highWatermark < 0) {
      onCorrupt(`bad entry '${line}'`);
      return new Map();
    }
    result.set(partitionKey(fields[0]!, partition), highWatermark);
  }
  return result;
}

/** Replaces the checkpoint with `entries` (topic names never contain whitespace). */
export async function writeHighWatermarks(logDir: string, entries: readonly HighWatermarkEntry[]): Promise<void> {
  const filePath = path.join(logDir, HIGH_WATERMARK_CHECKPOINT_FILE);
  const lines = [CHECKPOINT_VERSION, String(entries.length), ...entries.map((entry) => `${entry.topic} ${entry.partition} ${entry.highWatermark}`)];
  const temporary = `${filePath}.tmp`;
  await fs.mkdir(logDir, { recursive: true });
  const handle = await fs.open(temporary, 'w');
  try {
    await handle.writeFile(lines.join('\n') + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temporary, filePath);
  await syncDirectory(logDir);
}
