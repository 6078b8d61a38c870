// The metadata quorum on real `raftka server` processes over gRPC on loopback: elections,
// failover after SIGKILL, catch-up after restart, graceful handover, durability of committed
// records, and start-up refusal on corrupted storage or bad configuration.

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { ProcessCluster, ServerProcess, freePort, waitFor } from '../support/process-cluster.js';

const records = (prefix: string, count: number): Uint8Array[] =>
  Array.from({ length: count }, (_, index) => Buffer.from(`${prefix}-${index}`));

let cluster: ProcessCluster | undefined;

async function startCluster(voters: number, properties?: Record<string, string>): Promise<ProcessCluster> {
  cluster = await ProcessCluster.create({ voters, ...(properties ? { properties } : {}) });
  const current = cluster;
  onTestFailed(() => current.printLogs());
  current.startAll();
  return current;
}

afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

async function expectAllHave(current: ProcessCluster, expected: string[]): Promise<void> {
  for (const node of current.nodes.filter((candidate) => candidate.running)) {
    await waitFor(`node ${node.nodeId} to hold all ${expected.length} committed records`, async () => {
      const held = await current.committedRecords(node);
      return held.length === expected.length && held.every((record, index) => record === expected[index]);
    });
  }
}

describe('metadata quorum of real processes', () => {
  it('3 voters: elect a leader, fail over after SIGKILL, catch up a restarted node, keep every committed record', async () => {
    const current = await startCluster(3);
    const first = await current.leaderStatus();
    expect(first.replicas.filter((replica) => replica.role === 'leader').map((replica) => replica.nodeId)).toEqual([first.leaderId]);

    const expected: string[] = [];
    for (let batch = 0; batch < 5; batch++) {
      const batchRecords = records(`a${batch}`, 20);
      await current.append(batchRecords);
      expected.push(...batchRecords.map((record) => Buffer.from(record).toString()));
    }
    await expectAllHave(current, expected);

    // SIGKILL the leader: the two others elect a new one in a higher epoch, which commits.
    const oldLeader = current.node(first.leaderId);
    await oldLeader.stop('SIGKILL');
    const second = await current.leaderStatus(10_000, first.leaderId, first.epoch + 1);
    expect(second.leaderId).not.toBe(first.leaderId);
    const afterFailover = records('b', 30);
    await current.append(afterFailover);
    expected.push(...afterFailover.map((record) => Buffer.from(record).toString()));

    // The killed node restarts from its storage and catches up with what it missed.
    oldLeader.start();
    await expectAllHave(current, expected);

    // A follower killed and restarted also catches up, and everything survives the restarts.
    const follower = current.nodes.find((node) => node.running && node.nodeId !== second.leaderId)!;
    await follower.stop('SIGKILL');
    const whileDown = records('c', 10);
    await current.append(whileDown);
    expected.push(...whileDown.map((record) => Buffer.from(record).toString()));
    follower.start();
    await expectAllHave(current, expected);
    const status = await current.leaderStatus();
    expect(status.replicas.every((replica) => replica.lag === 0 || replica.role === 'observer')).toBe(true);
  });

  it('a gracefully stopped leader hands over through EndQuorumEpoch faster than a fetch timeout', async () => {
    // A long fetch timeout: without the handover, followers would wait this long to notice.
    const fetchTimeoutMs = 8_000;
    const current = await startCluster(3, {
      'controller.quorum.fetch.timeout.ms': String(fetchTimeoutMs),
      'controller.quorum.fetch.max.wait.ms': '500',
    });
    const first = await current.leaderStatus();
    await current.append(records('before', 5));
    const leader = current.node(first.leaderId);
    const stoppedAt = Date.now();
    const exit = await leader.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    const next = await current.leaderStatus(fetchTimeoutMs, first.leaderId, first.epoch + 1);
    const handoverMs = Date.now() - stoppedAt;
    expect(handoverMs).toBeLessThan(fetchTimeoutMs);
    expect(leader.lines.some((line) => line.includes('"role":"resigned"'))).toBe(true);
    await current.append(records('after', 5));
    expect(next.leaderId).not.toBe(first.leaderId);
  });

  it('5 voters survive two failures, including the leader', async () => {
    const current = await startCluster(5);
    const first = await current.leaderStatus();
    await current.append(records('x', 10));
    await current.node(first.leaderId).stop('SIGKILL');
    const other = current.nodes.find((node) => node.running && node.nodeId !== first.leaderId)!;
    await other.stop('SIGKILL');
    await current.leaderStatus(10_000, first.leaderId, first.epoch + 1);
    await current.append(records('y', 10));
    const expected = [...records('x', 10), ...records('y', 10)].map((record) => Buffer.from(record).toString());
    await expectAllHave(current, expected);
  });

  it('refuses to start on corrupted storage, naming the problem and the directory', async () => {
    const current = await startCluster(1);
    await current.leaderStatus();
    await current.append(records('z', 3));
    const node = current.node(1);
    expect(await node.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    // Damage the stored entry at offset 1 the way a bad disk would: flip its last byte.
    const db = new ClassicLevel<string, Uint8Array>(path.join(node.dataDirectory, 'raft-log'), { keyEncoding: 'utf8', valueEncoding: 'view' });
    await db.open();
    const key = 'e' + '1'.padStart(20, '0');
    const value = Buffer.from((await db.get(key))!);
    value[value.length - 1]! ^= 0xff;
    await db.put(key, value);
    await db.close();

    node.start();
    const exit = await node.exited();
    expect(exit.code).toBe(1);
    expect(node.stderr()).toContain('STORAGE_CORRUPTED');
    expect(node.stderr()).toContain(node.dataDirectory);
    expect(node.stderr()).toMatch(/checksum mismatch/);
  });

  it('stops on a bad config key with one line naming it', async () => {
    const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-config-'));
    try {
      const port = await freePort();
      const configFile = path.join(directory, 'server.properties');
      await fs.writeFile(
        configFile,
        [`node.id=1`, `controller.quorum.voters=1@127.0.0.1:${port}`, `listeners=CONTROLLER://127.0.0.1:${port}`, 'controller.quorum.fetch.timout.ms=100'].join('\n'),
      );
      const node = new ServerProcess(1, port, directory, configFile);
      node.start();
      const exit = await node.exited();
      expect(exit.code).toBe(1);
      const lines = node.stderr().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain("unknown config key 'controller.quorum.fetch.timout.ms'");
      expect(lines[0]).toContain("did you mean 'controller.quorum.fetch.timeout.ms'");
    } finally {
      await fs.rm(directory, { recursive: true, force: true });
    }
  });
});
