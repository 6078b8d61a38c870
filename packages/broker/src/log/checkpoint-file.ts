// Small text checkpoint files (leader epochs, recovery point, log start offset, cleaner offset)
// in Kafka's layout: a version line, an entry-count line, then one entry per line.
//
// They are replaced atomically: write `<name>.tmp`, fsync it, rename over the old file, fsync
// the directory. A crash leaves either the old or the new file, never a torn one; a leftover
// `.tmp` is ignored (and overwritten next time).

import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { RaftkaError } from '@raftka/protocol';

export const CHECKPOINT_VERSION = 0;

/** Fsyncs a directory so that renames and unlinks inside it survive a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `entries` (each a list of fields) atomically to `filePath`. */
export async function writeCheckpoint(filePath: string, entries: readonly (readonly (string | number)[])[]): Promise<void> {
  const text = [String(CHECKPOINT_VERSION), String(entries.length), ...entries.map((fields) => fields.join(' '))].join('\n') + '\n';
  const temporary = `${filePath}.tmp`;
  const handle = await fs.open(temporary, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temporary, filePath);
  await syncDirectory(path.dirname(filePath));
}

/**
 * Reads a checkpoint written by `writeCheckpoint`: undefined when the file does not exist,
 * STORAGE_CORRUPTED when it exists but is malformed.
 */
export async function readCheckpoint(filePath: string, fieldsPerEntry: number): Promise<number[][] | undefined> {
  let text: string;
  try {
    text = await fs.readFile(filePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const corrupt = (why: string): RaftkaError =>
    new RaftkaError('STORAGE_CORRUPTED', `checkpoint file ${filePath} is malformed (${why}); remove it to let the log rebuild it from the segments`);
  if (lines[0]?.trim() !== String(CHECKPOINT_VERSION)) throw corrupt(`version line is '${lines[0] ?? ''}'`);
  const count = Number(lines[1]);
  if (!Number.isSafeInteger(count) || count < 0 || lines.length !== count + 2) throw corrupt('entry count does not match');
  return lines.slice(2).map((line) => {
    const fields = line.trim().split(/\s+/).map(Number);
    if (fields.length !== fieldsPerEntry || fields.some((field) => !Number.isSafeInteger(field))) throw corrupt(`bad entry '${line}'`);
    return fields;
  });
}

/** Reads a single-number checkpoint (recovery point, log start offset); undefined when absent. */
export async function readOffsetCheckpoint(filePath: string): Promise<number | undefined> {
  const entries = await readCheckpoint(filePath, 1);
  return entries?.[0]?.[0];
}

export async function writeOffsetCheckpoint(filePath: string, offset: number): Promise<void> {
  await writeCheckpoint(filePath, [[offset]]);
}
