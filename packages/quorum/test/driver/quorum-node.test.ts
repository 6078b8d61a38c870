import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { NotLeaderError } from '@raftka/protocol';
import type { QuorumConfig } from '../../src/driver/quorum-config.js';
import { QuorumNode, type CommittedBatch, type SnapshotProvider } from '../../src/driver/quorum-node.js';

const logger = pino({ level: 'silent' });
const text = (records: Uint8Array[]): string[] => records.map((record) => Buffer.from(record).toString());

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(what: string, condition: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A state machine that keeps every record and snapshots as JSON. */
class ListStateMachine implements SnapshotProvider {
  records: string[] = [];
  loads = 0;
  readonly batches: CommittedBatch[] = [];
  onCommitted = (batch: CommittedBatch): void => {
    this.batches.push(batch);
    this.records.push(...text(batch.records));
  };
  async take(): Promise<Uint8Array> {
    return Buffer.from(JSON.stringify(this.records));
  }
  async load(bytes: Uint8Array): Promise<void> {
    this.records = JSON.parse(Buffer.from(bytes).toString()) as string[];
    this.loads++;
  }
}

let root: string;
const running: QuorumNode[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((node) => node.close({ graceful: false })));
  if (root) await fs.rm(root, { recursive: true, force: true });
});

async function makeConfigs(
  voterCount: number,
  extraNodeIds: number[],
  snapshotIntervalRecords = 10_000,
  snapshotIntervalBytes = 20 * 1024 * 1024,
): Promise<Map<number, QuorumConfig>> {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-node-'));
  const voters = [];
  for (let nodeId = 1; nodeId <= voterCount; nodeId++) voters.push({ nodeId, host: '127.0.0.1', port: await freePort() });
  const configs = new Map<number, QuorumConfig>();
  for (const nodeId of [...voters.map((voter) => voter.nodeId), ...extraNodeIds]) {
    const voter = voters.find((candidate) => candidate.nodeId === nodeId);
    configs.set(nodeId, {
      roles: voter ? ['controller'] : ['broker'],
      nodeId,
      voters,
      listeners: voter ? [{ name: 'CONTROLLER', host: '127.0.0.1', port: voter.port }] : [],
      logDirs: [path.join(root, `node-${nodeId}`)],
      fetchTimeoutMs: 1000,
      electionTimeoutMs: 200,
      electionBackoffMaxMs: 200,
      requestTimeoutMs: 1000,
      fetchMaxWaitMs: 100,
      fetchMaxBytes: 1 << 20,
      snapshotIntervalRecords,
      snapshotIntervalBytes,
      logLevel: 'silent',
    });
  }
  return configs;
}

async function start(config: QuorumConfig, machine?: ListStateMachine): Promise<QuorumNode> {
  const node = await QuorumNode.start({
    config,
    logger,
    ...(machine ? { onCommitted: machine.onCommitted, snapshotProvider: machine } : {}),
  });
  running.push(node);
  return node;
}

async function stop(node: QuorumNode): Promise<void> {
  running.splice(running.indexOf(node), 1);
  await node.close({ graceful: false });
}

function leaderOf(nodes: QuorumNode[]): QuorumNode | undefined {
  return nodes.find((node) => node.role === 'leader' && nodes.every((other) => other.leaderId === node.nodeId));
}

describe('QuorumNode', () => {
  it('commits appends on the leader, delivers them once and in order everywhere, and redirects followers', async () => {
    const configs = await makeConfigs(3, []);
    const machines = [1, 2, 3].map(() => new ListStateMachine());
    const nodes = await Promise.all([1, 2, 3].map((nodeId, index) => start(configs.get(nodeId)!, machines[index])));
    const leader = await waitFor('a leader', () => leaderOf(nodes));

    const results = await Promise.all(
      Array.from({ length: 20 }, (_, index) => leader.append([Buffer.from(`r${index}-a`), Buffer.from(`r${index}-b`)])),
    );
    const offsets = results.map((result) => result.offset);
    expect(new Set(offsets).size).toBe(20);
    expect(results.every((result) => result.epoch === leader.epoch)).toBe(true);
    const expected = [...results]
      .sort((a, b) => a.offset - b.offset)
      .flatMap((result) => {
        const index = results.indexOf(result);
        return [`r${index}-a`, `r${index}-b`];
      });
    // The leader applied each batch before its append resolved.
    expect(machines[nodes.indexOf(leader)]!.records).toEqual(expected);
    for (const machine of machines) {
      await waitFor('followers to apply', () => machine.records.length === expected.length);
      expect(machine.records).toEqual(expected);
      const batchOffsets = machine.batches.map((batch) => batch.offset);
      expect(batchOffsets).toEqual([...batchOffsets].sort((a, b) => a - b));
    }

    const follower = nodes.find((node) => node !== leader)!;
    const error = await follower.append([Buffer.from('nope')]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotLeaderError);
    expect((error as NotLeaderError).leaderId).toBe(leader.nodeId);
    expect((error as NotLeaderError).leaderAddress).toBe(follower.addressOf(leader.nodeId));

    const description = await follower.describeQuorum();
    expect(description.answeredBy).toBe(leader.nodeId);
    expect(description.voters.map((voter) => voter.nodeId).sort()).toEqual([1, 2, 3]);
  });

  it('snapshots every N records, compacts, and brings a wiped replica back through FetchSnapshot', async () => {
    const configs = await makeConfigs(3, [], 10);
    const machines = new Map([1, 2, 3].map((nodeId) => [nodeId, new ListStateMachine()]));
    const nodes = await Promise.all([1, 2, 3].map((nodeId) => start(configs.get(nodeId)!, machines.get(nodeId))));
    const leader = await waitFor('a leader', () => leaderOf(nodes));
    const victim = nodes.find((node) => node !== leader)!;
    await stop(victim);
    await fs.rm(configs.get(victim.nodeId)!.logDirs[0]!, { recursive: true, force: true });

    for (let batch = 0; batch < 6; batch++) await leader.append(Array.from({ length: 5 }, (_, index) => Buffer.from(`s${batch}-${index}`)));
    const expected = machines.get(leader.nodeId)!.records;
    expect(expected).toHaveLength(30);
    await waitFor('the leader to compact its log', async () => (await leader.describeQuorum()).logStartOffset > 0 || undefined);

    const fresh = new ListStateMachine();
    const restarted = await start(configs.get(victim.nodeId)!, fresh);
    await waitFor('the wiped replica to catch up', () => fresh.records.length === expected.length);
    expect(fresh.records).toEqual(expected);
    expect(fresh.loads).toBe(1);
    await leader.append([Buffer.from('after')]);
    await waitFor('the replica to follow on', () => fresh.records.at(-1) === 'after');
    expect(restarted.leaderId).toBe(leader.nodeId);
  });

  it('snapshots once enough record bytes have committed, whatever their count', async () => {
    // Kafka's trigger (metadata.log.max.record.bytes.between.snapshots): no record count is set.
    const configs = await makeConfigs(3, [], 0, 1_000);
    const nodes = await Promise.all([1, 2, 3].map((nodeId) => start(configs.get(nodeId)!, new ListStateMachine())));
    const leader = await waitFor('a leader', () => leaderOf(nodes));
    // 900 bytes: below the threshold, so no snapshot and the log keeps its start.
    await leader.append([Buffer.alloc(900, 1)]);
    expect((await leader.describeQuorum()).logStartOffset).toBe(0);
    // Two small records take it past 1,000 bytes: a snapshot, then the log below it is dropped.
    await leader.append([Buffer.alloc(60, 2), Buffer.alloc(60, 3)]);
    await waitFor('the leader to compact its log', async () => (await leader.describeQuorum()).logStartOffset > 0 || undefined);
  });

  it('runs an observer that follows the log without voting', async () => {
    const configs = await makeConfigs(1, [7]);
    const voter = await start(configs.get(1)!);
    await waitFor('the single voter to lead', () => voter.role === 'leader');
    const machine = new ListStateMachine();
    const observer = await start(configs.get(7)!, machine);
    expect(observer.isVoter).toBe(false);
    expect(observer.port).toBeUndefined();
    await voter.append([Buffer.from('one')]);
    await voter.append([Buffer.from('two')]);
    await waitFor('the observer to apply', () => machine.records.length === 2);
    expect(machine.records).toEqual(['one', 'two']);
    const error = await observer.append([Buffer.from('x')]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotLeaderError);
  });
});
