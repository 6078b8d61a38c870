import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileHandlePool, SegmentFile } from '../../src/log/file-pool.js';
import { makeTempDir, removeDir } from './batch-fixture.js';

const dirs: string[] = [];

afterEach(async () => {
  for (const dir of dirs.splice(0)) await removeDir(dir);
});

async function segmentFiles(count: number, pool: FileHandlePool): Promise<SegmentFile[]> {
  const dir = await makeTempDir();
  dirs.push(dir);
  const files: SegmentFile[] = [];
  for (let index = 0; index < count; index++) {
    const filePath = path.join(dir, `${index}.log`);
    await fs.writeFile(filePath, Buffer.alloc(0));
    files.push(new SegmentFile(pool, filePath));
  }
  return files;
}

describe('SegmentFile', () => {
  it('runs work on an open handle before withHandle returns (the append queue overlaps on it)', async () => {
    const [file] = await segmentFiles(1, new FileHandlePool());
    await file!.withHandle(async () => undefined); // opens the file
    let started = false;
    const use = file!.withHandle(async (handle) => {
      started = true;
      return handle.write(Buffer.from('batch'), 0, 5, 0);
    });
    expect(started).toBe(true);
    expect((await use).bytesWritten).toBe(5);
    await file!.dispose();
  });

  it('keeps open handles within the pool bound, never closing one in use, and refuses use after dispose', async () => {
    const pool = new FileHandlePool(2);
    const files = await segmentFiles(4, pool);
    let release!: () => void;
    const held = files[0]!.withHandle(() => new Promise<void>((resolve) => (release = resolve)));
    for (const file of files.slice(1)) await file.withHandle(async () => undefined);
    // The held file is over budget but in use, so only idle ones were closed.
    expect(pool.openCount).toBeLessThanOrEqual(3);
    expect(files[0]!.isIdle).toBe(false);
    release();
    await held;
    await files[1]!.withHandle(async () => undefined);
    expect(pool.openCount).toBeLessThanOrEqual(2);
    await files[3]!.dispose();
    await expect(files[3]!.withHandle(async () => undefined)).rejects.toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
    for (const file of files) await file.dispose();
  });
});
