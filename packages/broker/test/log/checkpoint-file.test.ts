import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readCheckpoint, readOffsetCheckpoint, writeCheckpoint, writeOffsetCheckpoint } from '../../src/log/checkpoint-file.js';
import { makeTempDir, removeDir } from './batch-fixture.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await removeDir(dir);
});

describe('checkpoint files', () => {
  it('round-trip entries and replace the old file atomically', async () => {
    const dir = await makeTempDir();
    dirs.push(dir);
    const file = path.join(dir, 'leader-epoch-checkpoint');
    expect(await readCheckpoint(file, 2)).toBeUndefined();
    await writeCheckpoint(file, [
      [1, 0],
      [4, 100],
    ]);
    expect(await fs.readFile(file, 'utf8')).toBe('0\n2\n1 0\n4 100\n');
    await writeCheckpoint(file, [[5, 200]]);
    expect(await readCheckpoint(file, 2)).toEqual([[5, 200]]);
    expect((await fs.readdir(dir)).sort()).toEqual(['leader-epoch-checkpoint']);
    await writeOffsetCheckpoint(path.join(dir, 'recovery-point-offset-checkpoint'), 42);
    expect(await readOffsetCheckpoint(path.join(dir, 'recovery-point-offset-checkpoint'))).toBe(42);
  });

  it('reports a malformed file as STORAGE_CORRUPTED', async () => {
    const dir = await makeTempDir();
    dirs.push(dir);
    const file = path.join(dir, 'leader-epoch-checkpoint');
    for (const text of ['1\n0\n', '0\n2\n1 0\n', '0\n1\n1 x\n']) {
      await fs.writeFile(file, text);
      await expect(readCheckpoint(file, 2)).rejects.toMatchObject({ code: 'STORAGE_CORRUPTED' });
    }
  });
});
