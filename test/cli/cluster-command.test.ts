// `raftka cluster` as a user runs it: each subcommand a separate process working from the state
// file. A small cluster (1 controller, 2 brokers) goes up, shows its status, has a broker paused,
// resumed, killed and restarted, is stopped with its data kept, comes back with that data, and is
// purged.

import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../packages/cli/src/cluster/local-cluster.js';
import { RAFTKA_BIN, waitFor } from '../support/process-cluster.js';

const run = promisify(execFile);
let directory: string | undefined;

async function raftka(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [RAFTKA_BIN, ...args], { encoding: 'utf8' });
  return stdout;
}

interface StatusJson {
  nodes: { nodeId: number; roles: string[]; pid: number; state: string }[];
  quorum: { leaderId: number; epoch: number } | undefined;
  activeControllerId: number | undefined;
  topics: { topic: string; partitions: { leader: number; isr: number[] }[] }[];
}

async function status(): Promise<StatusJson> {
  return JSON.parse(await raftka('cluster', 'status', '--dir', directory!, '--json')) as StatusJson;
}

afterAll(async () => {
  if (directory === undefined) return;
  // Whatever the test left running.
  const cluster = await LocalCluster.open(directory).catch(() => undefined);
  await cluster?.down({ force: true, purge: true });
  await fs.rm(directory, { recursive: true, force: true });
});

describe('raftka cluster', () => {
  it('starts, reports, pauses, kills, restarts, stops and purges a local cluster', async () => {
    directory = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-local-cluster-'));
    const up = await raftka('cluster', 'up', '--controllers', '1', '--brokers', '2', '--dir', directory, '--override', 'log.level=warn', '--json');
    const addresses = JSON.parse(up) as { bootstrapServers: string[]; controllers: string[] };
    expect(addresses.bootstrapServers).toHaveLength(2);
    expect(addresses.controllers).toHaveLength(1);
    const config = await fs.readFile(path.join(directory, 'node-2', 'server.properties'), 'utf8');
    expect(config).toContain('process.roles=broker');
    expect(config).toContain('offsets.topic.replication.factor=2');

    await raftka('topics', '--bootstrap-server', addresses.bootstrapServers.join(','), '--create', '--topic', 'orders', '--partitions', '2', '--replication-factor', '2');
    let current = await waitFor('the topic in the status', async () => {
      const seen = await status();
      return seen.topics.some((topic) => topic.topic === 'orders') ? seen : undefined;
    });
    expect(current.nodes.map((node) => [node.nodeId, node.roles, node.state])).toEqual([
      [1, ['controller'], 'alive'],
      [2, ['broker'], 'alive'],
      [3, ['broker'], 'alive'],
    ]);
    expect(current.quorum?.leaderId).toBe(1);
    expect(current.activeControllerId).toBe(1);
    expect(current.topics.find((topic) => topic.topic === 'orders')!.partitions).toHaveLength(2);
    expect(await raftka('cluster', 'status', '--dir', directory)).toMatch(/^3 +broker +\d+ +alive/m);

    await raftka('cluster', 'pause', '3', '--dir', directory);
    expect((await status()).nodes[2]!.state).toBe('paused');
    await raftka('cluster', 'resume', '3', '--dir', directory);
    expect((await status()).nodes[2]!.state).toBe('alive');

    const oldPid = current.nodes[1]!.pid;
    await raftka('cluster', 'kill', '2', '--dir', directory);
    expect((await status()).nodes[1]!.state).toBe('dead');
    await raftka('cluster', 'restart', '2', '--dir', directory);
    current = await status();
    expect(current.nodes[1]!.state).toBe('alive');
    expect(current.nodes[1]!.pid).not.toBe(oldPid);

    await expect(raftka('cluster', 'kill', '9', '--dir', directory)).rejects.toMatchObject({ stderr: expect.stringContaining('no node 9') });
    await expect(raftka('cluster', 'up', '--dir', directory)).rejects.toMatchObject({ stderr: expect.stringContaining('is running') });

    // Down keeps the data: up again finds the topic.
    // A node that takes longer than 5 s to stop gracefully is SIGKILLed: the data is kept either way.
    await raftka('cluster', 'down', '--dir', directory, '--timeout-ms', '5000');
    expect((await status()).nodes.every((node) => node.state === 'dead')).toBe(true);
    await raftka('cluster', 'up', '--dir', directory);
    current = await waitFor('the topic after the restart', async () => {
      const seen = await status();
      return seen.topics.some((topic) => topic.topic === 'orders') ? seen : undefined;
    });
    expect(current.nodes.every((node) => node.state === 'alive')).toBe(true);

    await raftka('cluster', 'down', '--dir', directory, '--purge', '--timeout-ms', '5000');
    await expect(fs.access(path.join(directory, 'cluster.json'))).rejects.toThrow();
    await expect(fs.access(path.join(directory, 'node-1'))).rejects.toThrow();
  }, 90_000);
});
