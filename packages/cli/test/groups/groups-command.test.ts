// `raftka groups` and `raftka consume --group` against the SDK's in-memory test cluster with the
// real group coordinator core behind it (no broker processes: those tests live under test/cli).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Producer } from '@raftka/client';
import { InMemoryCluster } from '../../../client/test/support/in-memory-cluster.js';
import { InMemoryGroups } from '../../../client/test/support/in-memory-groups.js';
import { consumeCommand } from '../../src/consume/consume-command.js';
import { groupsCommand, type GroupsOptions } from '../../src/groups/groups-command.js';

let cluster: InMemoryCluster;
let groups: InMemoryGroups;

beforeEach(async () => {
  cluster = await InMemoryCluster.start({ brokerCount: 2 });
  groups = InMemoryGroups.attach(cluster, { coordinatorId: 2 });
  cluster.createTopic('orders', 2);
  const producer = new Producer({ bootstrapServers: cluster.bootstrapServers, lingerMs: 0 });
  await producer.send({ topic: 'orders', messages: Array.from({ length: 6 }, (_, index) => ({ value: `v${index}`, partition: index % 2 })) });
  await producer.close();
});

afterEach(async () => {
  groups.stop();
  await cluster.stop();
});

async function run(options: Omit<GroupsOptions, 'bootstrapServers'>): Promise<{ exitCode: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const exitCode = await groupsCommand(
    { bootstrapServers: cluster.bootstrapServers, ...options },
    { write: (text) => void (out += text), report: (text) => void (err += text) },
  );
  return { exitCode, out, err };
}

async function consumeInGroup(maxMessages: number): Promise<string> {
  let out = '';
  await consumeCommand(
    { bootstrapServers: cluster.bootstrapServers, topic: 'orders', group: 'billing', fromBeginning: true, maxMessages, timeoutMs: 10_000, properties: {} },
    { write: async (text) => void (out += text), report: () => undefined },
  );
  return out;
}

describe('raftka consume --group and raftka groups', () => {
  it('consumes in a group, commits what it printed, and the group tools describe, reset and delete it', async () => {
    // Four of six records printed and committed; the group is Empty once the consumer leaves.
    const printed = await consumeInGroup(4);
    expect(printed.trim().split('\n')).toHaveLength(4);
    const committed = [...groups.committed('billing').values()].reduce((sum, entry) => sum + entry.offset, 0);
    expect(committed).toBe(4);

    expect((await run({ list: true })).out).toBe('billing\n');

    const described = await run({ describe: true, group: ['billing'] });
    expect(described.exitCode).toBe(0);
    expect(described.err).toBe("Consumer group 'billing' has no active members.\n");
    const rows = described.out.trim().split('\n').map((line) => line.split(/\s+/));
    expect(rows[0]).toEqual(['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID']);
    const lagTotal = rows.slice(1).reduce((sum, row) => sum + Number(row[5]), 0);
    expect(rows.slice(1).map((row) => row.slice(0, 3))).toEqual([
      ['billing', 'orders', '0'],
      ['billing', 'orders', '1'],
    ]);
    expect(lagTotal).toBe(2);
    const json = JSON.parse((await run({ describe: true, group: ['billing'], json: true })).out) as { state: string; partitions: unknown[] }[];
    expect(json[0]).toMatchObject({ state: 'Empty' });
    expect(json[0]!.partitions).toHaveLength(2);

    // Without --execute the plan is printed and nothing changes.
    const dry = await run({ resetOffsets: true, group: ['billing'], topic: 'orders', toEarliest: true });
    expect(dry.out.trim().split('\n')[0]!.split(/\s+/)).toEqual(['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'NEW-OFFSET']);
    expect(dry.err).toMatch(/--execute/);
    expect([...groups.committed('billing').values()].map((entry) => entry.offset).reduce((a, b) => a + b, 0)).toBe(4);

    const executed = await run({ resetOffsets: true, group: ['billing'], topic: 'orders:1', toEarliest: true, execute: true });
    expect(executed.out.trim().split('\n').slice(1).map((line) => line.split(/\s+/).slice(2))).toEqual([['1', expect.any(String) as string, '0']]);
    expect(groups.committed('billing').get('orders-1')?.offset).toBe(0);

    // The group resumes from the committed offsets: partition 1's three records come again, with what partition 0 has left.
    const remaining = 3 - groups.committed('billing').get('orders-0')!.offset + 3;
    const again = (await consumeInGroup(remaining)).trim().split('\n');
    expect(again.filter((value) => ['v1', 'v3', 'v5'].includes(value))).toEqual(['v1', 'v3', 'v5']);
    expect(again).toHaveLength(remaining);

    const state = (await run({ describe: true, state: true, group: ['billing'] })).out.trim().split('\n');
    expect(state[1]!.split(/\s{2,}/)).toEqual(['billing', `127.0.0.1:${cluster.brokers[1]!.port} (2)`, '-', 'Empty', '0']);
    expect((await run({ list: true, state: true })).out).toBe('GROUP    STATE\nbilling  Empty\n');
    expect((await run({ describe: true, members: true, group: ['billing'] })).out).toBe('');

    expect((await run({ deleteOffsets: true, group: ['billing'], topic: 'orders:1' })).out).toBe('TOPIC   PARTITION  STATUS\norders  1          Successful\n');
    expect(groups.committed('billing').has('orders-1')).toBe(false);

    expect((await run({ delete: true, group: ['billing'] })).out).toBe("Deletion of requested consumer groups ('billing') was successful.\n");
    const missing = await run({ delete: true, group: ['billing'] });
    expect(missing.exitCode).toBe(1);
    expect(missing.err).toMatch(/Group 'billing' could not be deleted due to: GROUP_ID_NOT_FOUND/);
  });

  it('checks flags before connecting', async () => {
    await expect(run({ describe: true })).rejects.toThrow(/--describe needs --group/);
    await expect(run({ resetOffsets: true, group: ['g'], topic: 'orders' })).rejects.toThrow(/exactly one of --to-earliest/);
    await expect(run({ resetOffsets: true, group: ['g'], topic: 'orders', toLatest: true, execute: true, dryRun: true })).rejects.toThrow(/cannot be used together/);
  });
});
