import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RaftkaError } from '@raftka/protocol';
import { findProtoDirectory } from '../../src/transport/proto-path.js';

describe('findProtoDirectory', () => {
  it('finds the repository proto/ directory from the package', () => {
    const directory = findProtoDirectory('quorum.proto');
    expect(path.basename(directory)).toBe('proto');
  });

  it('walks up from a nested directory and fails clearly when there is none', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-proto-'));
    try {
      await fs.mkdir(path.join(root, 'proto'));
      await fs.writeFile(path.join(root, 'proto', 'quorum.proto'), 'syntax = "proto3";');
      const nested = path.join(root, 'packages', 'quorum', 'dist', 'transport');
      await fs.mkdir(nested, { recursive: true });
      expect(findProtoDirectory('quorum.proto', nested)).toBe(path.join(root, 'proto'));
      expect(() => findProtoDirectory('missing.proto', nested)).toThrow(RaftkaError);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
