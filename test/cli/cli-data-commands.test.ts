// The data commands as a user runs them: one real combined controller+broker process, and
// `raftka topics / produce / consume / perf` spawned against it with stdin and exit codes.

import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, RAFTKA_BIN, waitFor } from '../support/process-cluster.js';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A CLI run must end well within this; a hang fails the test instead of the suite timeout. */
const CLI_RUN_MS_MAX = 30_000;

let root: string;
let bootstrap: string;
let server: ReturnType<typeof spawn> | undefined;
const serverLines: string[] = [];

function raftka(args: string[], stdin = ''): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RAFTKA_BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_RUN_MS_MAX);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}

/** Runs against the test's broker. */
function client(command: string[], args: string[], stdin = ''): Promise<CliResult> {
  return raftka([...command, '--bootstrap-server', bootstrap, ...args], stdin);
}

function expectOneLineError(result: CliResult, command: string, code: string): void {
  expect(result.code, result.stderr).toBe(1);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^raftka ${command}: ${code}: `));
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-cli-'));
  const controllerPort = await freePort();
  const brokerPort = await freePort();
  bootstrap = `127.0.0.1:${brokerPort}`;
  const overrides = {
    'process.roles': 'controller,broker',
    'node.id': '1',
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    'log.dirs': path.join(root, 'data'),
  };
  server = spawn(process.execPath, [RAFTKA_BIN, 'server', ...Object.entries(overrides).flatMap(([key, value]) => ['--override', `${key}=${value}`])], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk: Buffer) => serverLines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
  server.stdout!.on('data', keep);
  server.stderr!.on('data', keep);
  // Topics can be placed once the broker is unfenced (active).
  await waitFor('the broker to become active', () => serverLines.some((line) => line.includes('"msg":"broker state changed"') && line.includes('"to":"active"')), 30_000).catch(
    (error: unknown) => {
      process.stderr.write(serverLines.join('\n') + '\n');
      throw error;
    },
  );
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once('exit', resolve));
    server.kill('SIGKILL');
    await exited;
  }
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('raftka topics', () => {
  it('creates, lists, describes, alters and deletes a topic', async () => {
    const created = await client(['topics'], ['--create', '--topic', 'orders', '--partitions', '3', '--replication-factor', '1', '--config', 'cleanup.policy=compact']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toBe('Created topic orders.\n');

    const listed = await client(['topics'], ['--list']);
    expect(listed.stdout.split('\n')).toContain('orders');

    const described = await client(['topics'], ['--describe', '--topic', 'orders']);
    expect(described.code, described.stderr).toBe(0);
    const lines = described.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^Topic: orders\tTopicId: [0-9a-f]{32}\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: cleanup.policy=compact$/);
    expect(lines.slice(1)).toEqual([0, 1, 2].map((partition) => `\tTopic: orders\tPartition: ${partition}\tLeader: 1\tReplicas: 1\tIsr: 1`));

    const altered = await client(['topics'], ['--alter', '--topic', 'orders', '--partitions', '5']);
    expect(altered.code, altered.stderr).toBe(0);
    const json = await client(['topics'], ['--describe', '--topic', 'orders', '--json']);
    const [report] = JSON.parse(json.stdout) as { topic: string; partitionCount: number; partitions: { partition: number; leader: number; isr: number[] }[] }[];
    expect(report!.topic).toBe('orders');
    expect(report!.partitionCount).toBe(5);
    expect(report!.partitions.map((partition) => [partition.partition, partition.leader, partition.isr])).toEqual([0, 1, 2, 3, 4].map((index) => [index, 1, [1]]));

    const deleted = await client(['topics'], ['--delete', '--topic', 'orders']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expectOneLineError(await client(['topics'], ['--describe', '--topic', 'orders']), 'topics', 'UNKNOWN_TOPIC_OR_PARTITION');
  });

  it('fails with one line naming the Kafka error', async () => {
    const [unknown, invalidName, replicationFactor] = await Promise.all([
      client(['topics'], ['--describe', '--topic', 'no-such-topic']),
      client(['topics'], ['--create', '--topic', 'bad name!', '--partitions', '1', '--replication-factor', '1']),
      client(['topics'], ['--create', '--topic', 'too-many-replicas', '--partitions', '1', '--replication-factor', '3']),
    ]);
    expectOneLineError(unknown, 'topics', 'UNKNOWN_TOPIC_OR_PARTITION');
    expectOneLineError(invalidName, 'topics', 'INVALID_TOPIC_EXCEPTION');
    expectOneLineError(replicationFactor, 'topics', 'INVALID_REPLICATION_FACTOR');
    // Usage errors are one line too, not the whole help text.
    expectOneLineError(await raftka(['produce', '--topic', 'orders', '--acks', '2']), 'produce', 'INVALID_REQUEST');
  });

  it('produce creates a missing topic when the cluster allows it (auto.create.topics.enable, the default)', async () => {
    const produced = await client(['produce'], ['--topic', 'made-on-first-produce'], 'hello\n');
    expect(produced.code, produced.stderr).toBe(0);
    const described = await client(['topics'], ['--describe', '--topic', 'made-on-first-produce']);
    expect(described.code, described.stderr).toBe(0);
    expect(described.stdout).toContain('made-on-first-produce');
  });
});

describe('raftka produce and consume', () => {
  it('round-trips keyed lines in order per partition, and reports a bad line by number', async () => {
    const created = await client(['topics'], ['--create', '--topic', 'events', '--partitions', '3', '--replication-factor', '1']);
    expect(created.code, created.stderr).toBe(0);
    const keys = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
    const sent = Array.from({ length: 60 }, (_, index) => ({ key: keys[index % keys.length]!, value: `value-${index}` }));
    const produced = await client(
      ['produce'],
      ['--topic', 'events', '--property', 'parse.key=true', '--property', 'key.separator=:', '--compression', 'lz4'],
      sent.map(({ key, value }) => `${key}:${value}\n`).join(''),
    );
    expect(produced.code, produced.stderr).toBe(0);
    expect(produced.stderr).toBe('');

    // A line without the separator fails alone; the lines around it are still sent.
    const partial = await client(['produce'], ['--topic', 'events', '--property', 'parse.key=true', '--property', 'key.separator=:'], 'alpha:value-60\nno separator here\nbeta:value-61\n');
    expect(partial.code).toBe(1);
    expect(partial.stderr).toMatch(/^raftka produce: line 2: INVALID_RECORD: /);
    sent.push({ key: 'alpha', value: 'value-60' }, { key: 'beta', value: 'value-61' });

    const consumed = await client(
      ['consume'],
      ['--topic', 'events', '--from-beginning', '--max-messages', String(sent.length), '--timeout-ms', '10000', '--property', 'print.key=true', '--property', 'print.partition=true', '--property', 'print.offset=true', '--property', 'key.separator=:'],
    );
    expect(consumed.code, consumed.stderr).toBe(0);
    expect(consumed.stderr).toContain(`Processed a total of ${sent.length} messages`);
    const records = consumed.stdout
      .trimEnd()
      .split('\n')
      .map((line) => {
        // Kafka's columns: Partition:<p>, Offset:<o>, key, value, here all joined by ':'.
        const [partitionLabel, partition, offsetLabel, offset, key, value, ...rest] = line.split(':');
        expect([partitionLabel, offsetLabel, rest]).toEqual(['Partition', 'Offset', []]);
        return { partition: Number(partition), offset: Number(offset), key: key!, value: value! };
      });
    expect(records.map(({ key, value }) => `${key}:${value}`).sort()).toEqual(sent.map(({ key, value }) => `${key}:${value}`).sort());
    const partitionOfKey = new Map<string, number>();
    const byPartition = new Map<number, typeof records>();
    for (const record of records) {
      // Every record of a key lands in the key's one partition...
      expect(partitionOfKey.get(record.key) ?? record.partition).toBe(record.partition);
      partitionOfKey.set(record.key, record.partition);
      byPartition.set(record.partition, [...(byPartition.get(record.partition) ?? []), record]);
    }
    for (const list of byPartition.values()) {
      // ...and a partition is printed in offset order, in the order the lines were sent.
      expect(list.map((record) => record.offset)).toEqual(list.map((_, index) => index));
      const sentOrder = list.map((record) => sent.findIndex((entry) => entry.key === record.key && entry.value === record.value));
      expect(sentOrder).toEqual([...sentOrder].sort((a, b) => a - b));
    }

    // One partition from a given offset, values only.
    const fromOffset = await client(['consume'], ['--topic', 'events', '--partition', String(records[0]!.partition), '--offset', '1', '--max-messages', '1']);
    expect(fromOffset.code, fromOffset.stderr).toBe(0);
    expect(fromOffset.stdout).toBe(`${byPartition.get(records[0]!.partition)![1]!.value}\n`);
  });
});

/**
 * 2000 records at 4000/s: the last is due 1999/4000 s after the first. The bound leaves 10% for
 * timer and clock granularity between the schedule's origin and the tool's own stopwatch; an
 * unpaced run takes a small fraction of it.
 */
const PACED_ELAPSED_MS_MIN = 0.9 * (1999 / 4000) * 1000;

describe('raftka perf', () => {
  it('produces at a fixed rate and consumes the records back, reporting JSON', async () => {
    const created = await client(['topics'], ['--create', '--topic', 'perf', '--partitions', '2', '--replication-factor', '1']);
    expect(created.code, created.stderr).toBe(0);
    const produced = await client(['perf', 'produce'], ['--topic', 'perf', '--num-records', '2000', '--record-size', '64', '--throughput', '4000', '--json']);
    expect(produced.code, produced.stderr).toBe(0);
    const result = JSON.parse(produced.stdout) as { records: number; failedRecords: number; elapsedMs: number; latency: Record<string, number> };
    expect(result.records).toBe(2000);
    expect(result.failedRecords).toBe(0);
    // Paced at 4000/s, the last record is not due before 1999/4000 s: finishing sooner would mean no pacing.
    expect(result.elapsedMs).toBeGreaterThanOrEqual(PACED_ELAPSED_MS_MIN);
    for (const key of ['avgMs', 'p50Ms', 'p95Ms', 'p99Ms', 'p999Ms', 'maxMs']) expect(result.latency[key]).toBeGreaterThan(0);
    expect(result.latency['p50Ms']).toBeLessThanOrEqual(result.latency['p99Ms']!);
    expect(result.latency['p99Ms']).toBeLessThanOrEqual(result.latency['maxMs']!);

    const consumed = await client(['perf', 'consume'], ['--topic', 'perf', '--num-records', '2000', '--throughput', '4000', '--json']);
    expect(consumed.code, consumed.stderr).toBe(0);
    const consumedResult = JSON.parse(consumed.stdout) as { records: number; bytes: number; elapsedMs: number };
    expect(consumedResult).toMatchObject({ records: 2000, bytes: 2000 * 64 });
    expect(consumedResult.elapsedMs).toBeGreaterThanOrEqual(PACED_ELAPSED_MS_MIN);
  });
});
