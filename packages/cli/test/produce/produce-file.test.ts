// `raftka produce --file` against the SDK's in-memory test cluster.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InMemoryCluster } from '../../../client/test/support/in-memory-cluster.js';
import { produceCommand } from '../../src/produce/produce-command.js';

let cluster: InMemoryCluster;
let directory: string;

beforeEach(async () => {
  cluster = await InMemoryCluster.start({ brokerCount: 1 });
  cluster.createTopic('orders', 1);
  directory = await mkdtemp(path.join(os.tmpdir(), 'raftka-produce-file-'));
});

afterEach(async () => {
  await cluster.stop();
  await rm(directory, { recursive: true, force: true });
});

describe('raftka produce --file', () => {
  it('sends every line of the file and draws the progress to 100% on a terminal', async () => {
    const file = path.join(directory, 'records.txt');
    await writeFile(file, Array.from({ length: 2500 }, (_, index) => `record-${index}`).join('\n') + '\n');
    const terminal = new PassThrough();
    let drawn = '';
    terminal.on('data', (chunk: Buffer) => (drawn += chunk.toString()));
    Object.assign(terminal, { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
    const failures: string[] = [];
    const failed = await produceCommand(
      { bootstrapServers: cluster.bootstrapServers, topic: 'orders', acks: -1, compression: 'none', properties: {}, file },
      // stdin must not be read when --file is given: an input that never ends proves it.
      { input: new PassThrough(), reportFailure: (line) => failures.push(line), progressStream: terminal as unknown as NodeJS.WriteStream },
    );
    expect(failed).toBe(0);
    expect(failures).toEqual([]);
    const stored = await cluster.partition('orders', 0).records();
    expect(stored).toHaveLength(2500);
    expect(stored[2499]!.value!.toString()).toBe('record-2499');
    expect(drawn).toMatch(/100% \| 2500 records \| [\d.]+ MB\/s/);
  });

  it('fails before connecting when the file cannot be read', async () => {
    await expect(
      produceCommand(
        { bootstrapServers: ['127.0.0.1:1'], topic: 'orders', acks: -1, compression: 'none', properties: {}, file: path.join(directory, 'missing.txt') },
        { input: new PassThrough(), reportFailure: () => undefined },
      ),
    ).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });
});
