// Consumer groups end to end on real processes: 1 controller and 3 brokers (`raftka server`),
// group members as in-process SDK consumers, as separate processes (`raftka consume --group`, and
// an SDK consumer in a child process that can be SIGKILLed) and the `raftka groups` CLI:
//   1. three members share a 6-partition topic, each partition owned by exactly one; a fourth
//      joins and, under cooperative-sticky (KIP-429), only the partitions it takes move: a member
//      is never revoked a partition it keeps;
//   2. a member process SIGKILLed in the middle of a batch loses its partitions after its session
//      timeout; every record is processed at least once, and the only duplicates are the records
//      it had processed after its last commit;
//   3. the group survives a SIGKILL of its coordinator's broker: committed offsets intact on the
//      new coordinator, members keep consuming;
//   4. a static member (KIP-345) closed without leaving and restarted within its session timeout
//      gets its partitions back without a rebalance;
//   5. `raftka groups --describe / --reset-offsets / --delete` against a live and an empty group;
//   6. retry topics and the dead-letter topic: a record that always fails goes T -> T-retry-0 ->
//      T-retry-1 -> T-dlt with headers saying why, and does not hold back its partition.
// One cluster serves every case (each uses its own topics and group) to keep CPU time low; the
// coordinator kill runs last because it leaves the cluster one broker short.

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { Admin, Consumer, Producer, RETRY_HEADERS, type ConsumerConfig, type ConsumerRecord, type TopicPartition } from '@raftka/client';
import { ProcessCluster, RAFTKA_BIN, waitFor } from '../support/process-cluster.js';

const REPOSITORY_ROOT = path.resolve(path.dirname(RAFTKA_BIN), '..', '..', '..');
/** Short client sessions: a killed member is noticed in seconds (the broker's minimum is lowered to allow it). */
const SESSION_TIMEOUT_MS = 3_000;
const HEARTBEAT_INTERVAL_MS = 300;
/** Generous deadlines: on a loaded 2-core machine a rebalance of several members takes seconds. */
const CONDITION_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 5_000;
/** A CLI run must end well within this; a hang fails the test instead of the suite timeout. */
const CLI_RUN_MS_MAX = 30_000;
const CLOSE_WAIT_MS_MAX = 5_000;

let cluster: ProcessCluster;
let admin: Admin;
let producer: Producer;
/** Per-test cleanup (consumers, child processes), run after each test even when it failed. */
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  cluster = await ProcessCluster.create({
    voters: 1,
    brokers: 3,
    properties: {
      // A SIGKILLed broker is fenced on its closed connection; the long session timeout only
      // keeps a broker slowed down by a loaded machine from being fenced by mistake.
      'broker.session.timeout.ms': '15000',
      'broker.heartbeat.interval.ms': '500',
      'replica.lag.time.max.ms': '10000',
      'replica.fetch.wait.max.ms': '200',
      'offsets.topic.num.partitions': '3',
      'offsets.topic.replication.factor': '3',
      'offsets.commit.timeout.ms': '15000',
      'group.initial.rebalance.delay.ms': '0',
      'group.min.session.timeout.ms': '1000',
    },
  });
  cluster.startAll();
  admin = new Admin({ bootstrapServers: cluster.bootstrapServers, requestTimeoutMs: REQUEST_TIMEOUT_MS });
  await waitFor('3 live brokers', async () => (await admin.describeCluster()).brokers.length === 3, CONDITION_TIMEOUT_MS).catch((error: unknown) => {
    cluster.printLogs();
    throw error;
  });
  producer = new Producer({ bootstrapServers: cluster.bootstrapServers, acks: -1, lingerMs: 5, requestTimeoutMs: REQUEST_TIMEOUT_MS, deliveryTimeoutMs: 60_000 });
}, 60_000);

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await Promise.race([cleanup().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS_MAX).unref())]);
  }
});

afterAll(async () => {
  await cluster?.destroy();
  for (const close of [() => producer?.close(), () => admin?.close()]) {
    await Promise.race([Promise.resolve(close()).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS_MAX).unref())]);
  }
});

function printLogsOnFailure(): void {
  onTestFailed(() => cluster.printLogs());
}

async function createTopic(topic: string, partitions: number): Promise<void> {
  await admin.createTopics([{ topic, numPartitions: partitions, replicationFactor: 3 }]);
  await waitFor(`${topic} to have leaders`, async () => {
    const [description] = await admin.describeTopics([topic]);
    return description!.partitions.length === partitions && description!.partitions.every((partition) => partition.leader >= 0);
  }, CONDITION_TIMEOUT_MS);
}

/** Produces `count` records spread over the topic's partitions by key; values are `${prefix}-${i}`. */
async function produce(topic: string, prefix: string, count: number): Promise<void> {
  await producer.send({ topic, messages: Array.from({ length: count }, (_, index) => ({ key: `${prefix}-${index}`, value: `${prefix}-${index}` })) });
}

const key = (tp: { partition: number }, offset: number): string => `${tp.partition}:${offset}`;
const names = (partitions: readonly TopicPartition[]): string[] => partitions.map((tp) => `${tp.topic}-${tp.partition}`).sort();

/** An in-process group member that runs `run({ eachMessage })` and records what happens to it. */
class Member {
  readonly consumer: Consumer;
  readonly records: ConsumerRecord[] = [];
  readonly events: { kind: 'assigned' | 'revoked' | 'lost'; partitions: string[] }[] = [];
  owned = new Set<string>();
  readonly running: Promise<void>;

  constructor(groupId: string, topics: string[], extra: Partial<ConsumerConfig> = {}) {
    this.consumer = new Consumer({
      bootstrapServers: cluster.bootstrapServers,
      groupId,
      autoOffsetReset: 'earliest',
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      autoCommitIntervalMs: 200,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      defaultApiTimeoutMs: 20_000,
      ...extra,
    });
    this.consumer.subscribe(topics, {
      onPartitionsAssigned: (partitions) => {
        this.events.push({ kind: 'assigned', partitions: names(partitions) });
        for (const name of names(partitions)) this.owned.add(name);
      },
      onPartitionsRevoked: (partitions) => {
        this.events.push({ kind: 'revoked', partitions: names(partitions) });
        for (const name of names(partitions)) this.owned.delete(name);
      },
      onPartitionsLost: (partitions) => {
        this.events.push({ kind: 'lost', partitions: names(partitions) });
        for (const name of names(partitions)) this.owned.delete(name);
      },
    });
    this.running = this.consumer.run({ eachMessage: ({ message }) => void this.records.push(message), pollTimeoutMs: 200 });
    // A run that ends with an error fails the test through the assertions on what it consumed.
    this.running.catch(() => undefined);
    cleanups.push(() => this.consumer.close());
  }

  get generationId(): number | undefined {
    return this.consumer.groupMetadata()?.generationId;
  }
}

/** A process printing records as `raftka consume --property print.partition=true --property print.offset=true` does. */
class MemberProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  exited = false;

  constructor(command: string[], cwd = REPOSITORY_ROOT, env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, command, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.stdout += chunk.toString('utf8')));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    // 'close', not 'exit': only then has everything the process wrote been read.
    this.child.once('close', () => (this.exited = true));
    cleanups.push(() => this.stop('SIGKILL'));
  }

  /** `Partition:<p>\tOffset:<o>\t<value>` lines. */
  printed(): { partition: number; offset: number; value: string }[] {
    const printed: { partition: number; offset: number; value: string }[] = [];
    for (const line of this.stdout.split('\n')) {
      const match = /^Partition:(\d+)\tOffset:(\d+)\t(.*)$/.exec(line);
      if (match) printed.push({ partition: Number(match[1]), offset: Number(match[2]), value: match[3]! });
    }
    return printed;
  }

  /** `Committed:<p>\t<offset>` lines (the victim script prints them once a commit is confirmed). */
  committed(): Map<number, number> {
    const committed = new Map<number, number>();
    for (const line of this.stdout.split('\n')) {
      const match = /^Committed:(\d+)\t(\d+)$/.exec(line);
      if (match) committed.set(Number(match[1]), Math.max(committed.get(Number(match[1])) ?? 0, Number(match[2])));
    }
    return committed;
  }

  async stop(signal: NodeJS.Signals): Promise<void> {
    if (this.exited) return;
    const exit = new Promise((resolve) => this.child.once('close', resolve));
    this.child.kill(signal);
    await exit;
  }
}

/**
 * A group member in its own process, doing what `raftka consume --group` does (print a batch,
 * then commit the offsets after it) but with a short session timeout, so its SIGKILL is noticed
 * in seconds (`raftka consume` has no option for it and keeps the 45 s default); it also prints
 * each confirmed commit. After printing its `stallAfterBatches`-th
 * batch it stops before committing it (and prints `Stalled`), as a process caught mid-batch by a
 * crash: the kill then always leaves printed records without a commit (its heartbeats go on, so
 * only the kill ends its session).
 */
const VICTIM_SCRIPT = `
import { Consumer } from '@raftka/client';
const config = JSON.parse(process.env.GROUP_MEMBER_CONFIG);
const consumer = new Consumer({ ...config.options, autoOffsetReset: 'earliest', enableAutoCommit: false, maxPollRecords: 10 });
consumer.subscribe([config.topic]);
const write = (text) => new Promise((resolve) => process.stdout.write(text, resolve));
let batches = 0;
for (;;) {
  const records = await consumer.poll({ timeoutMs: 200 });
  if (records.length === 0) continue;
  await write(records.map((r) => 'Partition:' + r.partition + '\\tOffset:' + r.offset + '\\t' + r.value + '\\n').join(''));
  batches += 1;
  if (batches === config.stallAfterBatches) {
    await write('Stalled\\n');
    await new Promise(() => {});
  }
  const last = new Map();
  for (const r of records) last.set(r.partition, r);
  const offsets = [...last.values()].map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset + 1, leaderEpoch: r.leaderEpoch }));
  try {
    await consumer.commitSync(offsets);
    await write(offsets.map((o) => 'Committed:' + o.partition + '\\t' + o.offset + '\\n').join(''));
  } catch (error) {
    process.stderr.write('commit failed: ' + error.message + '\\n');
  }
}
`;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function raftkaGroups(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RAFTKA_BIN, 'groups', '--bootstrap-server', cluster.bootstrapServers.join(','), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  });
}

/** The group once Stable with `members` members whose assignments cover `partitions` partitions exactly once. */
async function stableGroup(groupId: string, members: number, partitions: number, what = `${groupId} stable with ${members} members`) {
  return waitFor(what, async () => {
    const [group] = await admin.describeGroups([groupId], { includeOffsets: false });
    if (!group || group.state !== 'Stable' || group.members.length !== members) return undefined;
    const owned = group.members.flatMap((member) => names(member.assignment));
    if (owned.length !== partitions || new Set(owned).size !== partitions) return undefined;
    return group;
  }, CONDITION_TIMEOUT_MS);
}

async function committedSum(groupId: string): Promise<number> {
  return (await admin.listGroupOffsets(groupId)).reduce((sum, entry) => sum + entry.offset, 0);
}

describe('consumer groups on real processes', () => {
  it('1: three members own each of 6 partitions exactly once; a fourth member moves only the partitions it takes', async () => {
    printLogsOnFailure();
    await createTopic('orders', 6);
    const first = [new Member('shipping', ['orders']), new Member('shipping', ['orders']), new Member('shipping', ['orders'])];
    const three = await stableGroup('shipping', 3, 6);
    expect(three.protocol).toBe('cooperative-sticky');
    expect(three.members.every((member) => member.assignment.length === 2)).toBe(true);
    // Every member's own view agrees with the coordinator's.
    await waitFor('members to apply their assignments', () => first.every((member) => member.owned.size === 2), CONDITION_TIMEOUT_MS);
    const before = new Map(first.map((member) => [member, new Set(member.owned)]));
    const eventsBefore = new Map(first.map((member) => [member, member.events.length]));

    const fourth = new Member('shipping', ['orders']);
    const four = await stableGroup('shipping', 4, 6);
    await waitFor('the fourth member to own partitions', () => fourth.owned.size > 0, CONDITION_TIMEOUT_MS);
    const taken = [...fourth.owned].sort();
    const described = four.members.find((member) => member.memberId === fourth.consumer.groupMetadata()!.memberId)!;
    expect(names(described.assignment)).toEqual(taken);
    // Balanced: 6 partitions over 4 members is 2, 2, 1, 1.
    expect(four.members.map((member) => member.assignment.length).sort()).toEqual([1, 1, 2, 2]);
    const revokedTotal: string[] = [];
    for (const member of first) {
      const later = member.events.slice(eventsBefore.get(member));
      const revoked = later.filter((event) => event.kind === 'revoked').flatMap((event) => event.partitions);
      // Cooperative: no partition the member still owns was ever revoked from it, and it gained nothing.
      for (const partition of member.owned) expect(revoked).not.toContain(partition);
      expect(later.filter((event) => event.kind === 'assigned').flatMap((event) => event.partitions)).toEqual([]);
      expect(later.filter((event) => event.kind === 'lost')).toEqual([]);
      expect([...member.owned].every((partition) => before.get(member)!.has(partition))).toBe(true);
      revokedTotal.push(...revoked);
    }
    // Only the partitions the new member took moved.
    expect(revokedTotal.sort()).toEqual(taken);

    // And all four consume: records produced now reach exactly their partition's owner.
    await produce('orders', 'o', 60);
    const everyone = [...first, fourth];
    await waitFor('60 records consumed', () => everyone.reduce((sum, member) => sum + member.records.length, 0) >= 60, CONDITION_TIMEOUT_MS);
    for (const member of everyone) {
      for (const record of member.records) expect(member.owned.has(`orders-${record.partition}`)).toBe(true);
    }
  }, 90_000);

  it('2: a SIGKILLed member process loses its partitions after the session timeout; every record is processed at least once', async () => {
    printLogsOnFailure();
    await createTopic('payments', 6);
    // The console consumer, as a healthy member (it commits after printing each batch).
    const consoleMember = new MemberProcess([
      RAFTKA_BIN, 'consume', '--bootstrap-server', cluster.bootstrapServers.join(','), '--group', 'ledger', '--topic', 'payments', '--from-beginning',
      '--property', 'print.partition=true', '--property', 'print.offset=true',
    ]);
    const inProcess = new Member('ledger', ['payments']);
    const victim = new MemberProcess(['--input-type=module', '-e', VICTIM_SCRIPT], REPOSITORY_ROOT, {
      GROUP_MEMBER_CONFIG: JSON.stringify({
        topic: 'payments',
        stallAfterBatches: 3,
        options: { bootstrapServers: cluster.bootstrapServers, groupId: 'ledger', clientId: 'victim', sessionTimeoutMs: SESSION_TIMEOUT_MS, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS },
      }),
    });
    onTestFailed(() => void process.stderr.write(`console consumer stderr:\n${consoleMember.stderr}\nvictim stderr:\n${victim.stderr}\n`));
    const three = await stableGroup('ledger', 3, 6);
    const victimMember = three.members.find((member) => member.clientId === 'victim');
    expect(victimMember?.assignment.length).toBeGreaterThan(0);
    const victimPartitions = new Set(victimMember!.assignment.map((tp) => tp.partition));

    await produce('payments', 'p', 600);
    await waitFor('the victim to stall in its third batch', () => victim.stdout.includes('Stalled\n'), CONDITION_TIMEOUT_MS);
    await victim.stop('SIGKILL');
    const victimCommitted = victim.committed();
    const killedAtMs = Date.now();
    await produce('payments', 'q', 300);

    const survivors = await stableGroup('ledger', 2, 6, 'the victim\'s partitions to move to the two others');
    expect(survivors.members.map((member) => member.clientId).sort()).not.toContain('victim');
    // Not before the session timeout (nothing told the coordinator the process died).
    expect(Date.now() - killedAtMs).toBeGreaterThanOrEqual(SESSION_TIMEOUT_MS - 500);

    const processed = () => [
      ...consoleMember.printed().map((entry) => ({ ...entry, by: 'console' })),
      ...inProcess.records.map((record) => ({ partition: record.partition, offset: record.offset, value: record.value!.toString('utf8'), by: 'sdk' })),
      ...victim.printed().map((entry) => ({ ...entry, by: 'victim' })),
    ];
    const endOffsets = await admin.listOffsets([0, 1, 2, 3, 4, 5].map((partition) => ({ topic: 'payments', partition, spec: 'latest' as const })));
    const expected = new Set<string>();
    for (const entry of endOffsets) for (let offset = 0; offset < entry.offset; offset++) expected.add(key(entry, offset));
    expect(expected.size).toBe(900);
    await waitFor('every record processed', () => {
      const seen = new Set(processed().map((entry) => key(entry, entry.offset)));
      return [...expected].every((entry) => seen.has(entry));
    }, CONDITION_TIMEOUT_MS);

    // Duplicates only where the victim had processed past its last confirmed commit.
    const counts = new Map<string, { partition: number; offset: number; by: string[] }>();
    for (const entry of processed()) {
      const id = key(entry, entry.offset);
      const seen = counts.get(id) ?? { partition: entry.partition, offset: entry.offset, by: [] };
      seen.by.push(entry.by);
      counts.set(id, seen);
    }
    const duplicates = [...counts.values()].filter((entry) => entry.by.length > 1);
    // Exactly the records the victim printed after its last commit were processed again.
    const uncommitted = victim.printed().filter((entry) => entry.offset >= (victimCommitted.get(entry.partition) ?? 0));
    expect(uncommitted.length).toBeGreaterThan(0);
    expect(duplicates.map((entry) => key(entry, entry.offset)).sort()).toEqual(uncommitted.map((entry) => key(entry, entry.offset)).sort());
    for (const duplicate of duplicates) {
      expect(victimPartitions.has(duplicate.partition), `duplicate ${duplicate.partition}:${duplicate.offset} by ${duplicate.by}`).toBe(true);
      expect(duplicate.by).toHaveLength(2);
      expect(duplicate.by.filter((by) => by === 'victim')).toHaveLength(1);
      expect(duplicate.offset).toBeGreaterThanOrEqual(victimCommitted.get(duplicate.partition) ?? 0);
    }
    // The console consumer leaves gracefully on SIGTERM and reports what it printed.
    expect(consoleMember.printed().length).toBeGreaterThan(0);
    await consoleMember.stop('SIGTERM');
    expect(consoleMember.stderr).toContain(`Processed a total of ${consoleMember.printed().length} messages`);
  }, 90_000);

  it('4: a static member closed without leaving and restarted within its session timeout gets its partitions back without a rebalance', async () => {
    printLogsOnFailure();
    await createTopic('sensors', 4);
    const staticOptions = (instance: string): Partial<ConsumerConfig> => ({ groupInstanceId: instance, sessionTimeoutMs: 20_000 });
    const one = new Member('telemetry', ['sensors'], staticOptions('reader-1'));
    const two = new Member('telemetry', ['sensors'], staticOptions('reader-2'));
    await stableGroup('telemetry', 2, 4);
    await waitFor('both members to own partitions', () => one.owned.size === 2 && two.owned.size === 2, CONDITION_TIMEOUT_MS);
    const generation = one.generationId;
    expect(generation).toBe(two.generationId);
    const ownedBefore = [...one.owned].sort();
    const twoEvents = two.events.length;

    await one.consumer.close();
    // Still a member: a static member's close sends no LeaveGroup (KIP-345).
    const [during] = await admin.describeGroups(['telemetry'], { includeOffsets: false });
    expect(during!.members.map((member) => member.groupInstanceId).sort()).toEqual(['reader-1', 'reader-2']);

    const again = new Member('telemetry', ['sensors'], staticOptions('reader-1'));
    await waitFor('the restarted member to own partitions', () => again.owned.size > 0, CONDITION_TIMEOUT_MS);
    expect([...again.owned].sort()).toEqual(ownedBefore);
    expect(again.generationId).toBe(generation);
    const after = await stableGroup('telemetry', 2, 4);
    const restarted = after.members.find((member) => member.groupInstanceId === 'reader-1')!;
    expect(names(restarted.assignment)).toEqual(ownedBefore);
    // The other member saw nothing happen, and is still at the same generation.
    expect(two.events.slice(twoEvents)).toEqual([]);
    expect(two.generationId).toBe(generation);
    // And the restarted member reads its partitions from where the group committed.
    await produce('sensors', 's', 40);
    await waitFor('40 records consumed', () => again.records.length + two.records.length >= 40, CONDITION_TIMEOUT_MS);
  }, 90_000);

  it('5: raftka groups describes, dry-runs and executes a reset of an empty group, refuses it while members are active, and deletes it', async () => {
    printLogsOnFailure();
    await createTopic('invoices', 3);
    await produce('invoices', 'i', 30);
    const member = new Member('billing', ['invoices'], { enableAutoCommit: false });
    await waitFor('30 records consumed', () => member.records.length >= 30, CONDITION_TIMEOUT_MS);
    // run() has handled what poll returned; commit it (the loop keeps polling meanwhile).
    await waitFor('a commit of everything', async () => {
      await member.consumer.commitSync();
      return (await committedSum('billing')) === 30;
    }, CONDITION_TIMEOUT_MS);

    const described = await raftkaGroups(['--describe', '--group', 'billing']);
    expect(described.code, described.stderr).toBe(0);
    const [header, ...rows] = described.stdout.trimEnd().split('\n').filter((line) => line.trim() !== '');
    expect(header!.split(/\s{2,}/)).toEqual(['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID']);
    expect(rows).toHaveLength(3);
    const memberId = member.consumer.groupMetadata()!.memberId;
    for (const row of rows) {
      const cells = row.split(/\s{2,}/);
      expect(cells[0]).toBe('billing');
      expect(cells[1]).toBe('invoices');
      expect(cells[5]).toBe('0');
      expect(cells[6]).toBe(memberId);
    }
    expect(rows.reduce((sum, row) => sum + Number(row.split(/\s{2,}/)[3]), 0)).toBe(30);

    const refused = await raftkaGroups(['--reset-offsets', '--group', 'billing', '--topic', 'invoices', '--to-earliest', '--execute']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^raftka groups: NON_EMPTY_GROUP: /);
    expect(await committedSum('billing')).toBe(30);

    await member.consumer.close();
    await waitFor('billing to be empty', async () => (await admin.describeGroups(['billing'], { includeOffsets: false }))[0]!.state === 'Empty', CONDITION_TIMEOUT_MS);
    const dryRun = await raftkaGroups(['--reset-offsets', '--group', 'billing', '--topic', 'invoices', '--to-earliest']);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(dryRun.stdout.split('\n')[0]!.split(/\s{2,}/)).toEqual(['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'NEW-OFFSET']);
    expect(dryRun.stderr).toMatch(/Dry run: no offsets were changed/);
    expect(await committedSum('billing')).toBe(30);

    const executed = await raftkaGroups(['--reset-offsets', '--group', 'billing', '--topic', 'invoices', '--to-earliest', '--execute']);
    expect(executed.code, executed.stderr).toBe(0);
    expect((await admin.listGroupOffsets('billing')).map(({ topic, partition, offset }) => ({ topic, partition, offset }))).toEqual([0, 1, 2].map((partition) => ({ topic: 'invoices', partition, offset: 0 })));

    const deleted = await raftkaGroups(['--delete', '--group', 'billing']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect((await admin.listGroups()).map((group) => group.groupId)).not.toContain('billing');
    expect(await admin.listGroupOffsets('billing')).toEqual([]);
  }, 90_000);

  it('6: a record that always fails passes through the retry topics into the dead-letter topic without holding back its partition', async () => {
    printLogsOnFailure();
    for (const topic of ['refunds', 'refunds-retry-0', 'refunds-retry-1', 'refunds-dlt']) await createTopic(topic, 1);
    const handled: { topic: string; key: string; atMs: number }[] = [];
    const consumer = new Consumer({
      bootstrapServers: cluster.bootstrapServers,
      groupId: 'refunder',
      autoOffsetReset: 'earliest',
      autoCommitIntervalMs: 200,
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    cleanups.push(() => consumer.close());
    consumer.subscribe(['refunds']);
    const running = consumer.run({
      pollTimeoutMs: 100,
      retry: { attempts: 2, backoffMs: 200 },
      deadLetterTopic: 'refunds-dlt',
      eachMessage: ({ topic, message }) => {
        const recordKey = message.key!.toString('utf8');
        handled.push({ topic, key: recordKey, atMs: Date.now() });
        if (recordKey === 'poison') throw new Error(`cannot refund ${message.value!.toString('utf8')}`);
      },
    });
    running.catch(() => undefined);
    await producer.send({ topic: 'refunds', messages: [{ key: 'poison', value: 'r-0' }, ...Array.from({ length: 5 }, (_, index) => ({ key: `ok-${index + 1}`, value: `r-${index + 1}` }))] });

    const dlt = new Consumer({ bootstrapServers: cluster.bootstrapServers, autoOffsetReset: 'earliest', requestTimeoutMs: REQUEST_TIMEOUT_MS });
    cleanups.push(() => dlt.close());
    dlt.assign([{ topic: 'refunds-dlt', partition: 0 }]);
    const deadLetters: ConsumerRecord[] = [];
    await waitFor('the record in the dead-letter topic', async () => {
      deadLetters.push(...(await dlt.poll({ timeoutMs: 200 })));
      return deadLetters.length > 0;
    }, CONDITION_TIMEOUT_MS);

    const poison = handled.filter((entry) => entry.key === 'poison');
    expect(poison.map((entry) => entry.topic)).toEqual(['refunds', 'refunds-retry-0', 'refunds-retry-1']);
    // Each retry waited its backoff; the records behind the poison one did not.
    expect(poison[1]!.atMs - poison[0]!.atMs).toBeGreaterThanOrEqual(200 - 20);
    expect(poison[2]!.atMs - poison[1]!.atMs).toBeGreaterThanOrEqual(200 - 20);
    const ok = handled.filter((entry) => entry.key !== 'poison');
    expect(ok.map((entry) => entry.key)).toEqual(['ok-1', 'ok-2', 'ok-3', 'ok-4', 'ok-5']);
    expect(ok.every((entry) => entry.topic === 'refunds' && entry.atMs <= poison[1]!.atMs)).toBe(true);

    expect(deadLetters).toHaveLength(1);
    const [dead] = deadLetters;
    expect(dead!.key!.toString('utf8')).toBe('poison');
    expect(dead!.value!.toString('utf8')).toBe('r-0');
    const header = (name: string) => dead!.headers.filter((entry) => entry.key === name).at(-1)?.value?.toString('utf8');
    expect(header(RETRY_HEADERS.attempt)).toBe('2');
    expect(header(RETRY_HEADERS.originalTopic)).toBe('refunds');
    expect(header(RETRY_HEADERS.originalPartition)).toBe('0');
    expect(header(RETRY_HEADERS.originalOffset)).toBe('0');
    expect(header(RETRY_HEADERS.errorName)).toBe('Error');
    expect(header(RETRY_HEADERS.errorMessage)).toBe('cannot refund r-0');
    // The original partition is committed past the poison record (it counts as processed).
    await waitFor('the commit past all six records', async () => {
      const offsets = await consumer.committed([{ topic: 'refunds', partition: 0 }]);
      return offsets[0]!.offset === 6;
    }, CONDITION_TIMEOUT_MS);
  }, 90_000);

  it('3: after SIGKILL of the coordinator\'s broker the group continues on a new coordinator with its committed offsets', async () => {
    printLogsOnFailure();
    await createTopic('audits', 4);
    const members = [new Member('auditors', ['audits']), new Member('auditors', ['audits'])];
    const before = await stableGroup('auditors', 2, 4);
    await produce('audits', 'a', 80);
    await waitFor('80 records consumed', () => members[0]!.records.length + members[1]!.records.length >= 80, CONDITION_TIMEOUT_MS);
    await waitFor('auto-commit of all 80', async () => (await committedSum('auditors')) === 80, CONDITION_TIMEOUT_MS);
    const offsetsBefore = await admin.listGroupOffsets('auditors');

    await cluster.broker(before.coordinatorId).stop('SIGKILL');
    const moved = await waitFor('a new coordinator with the group stable', async () => {
      const [group] = await admin.describeGroups(['auditors'], { includeOffsets: false });
      return group && group.coordinatorId !== before.coordinatorId && group.state === 'Stable' && group.members.length === 2 ? group : undefined;
    }, CONDITION_TIMEOUT_MS);
    expect(moved.members.map((member) => member.memberId).sort()).toEqual(before.members.map((member) => member.memberId).sort());
    expect(await admin.listGroupOffsets('auditors')).toEqual(offsetsBefore);

    // The members keep consuming, and commit to the new coordinator.
    const consumedBefore = members[0]!.records.length + members[1]!.records.length;
    await produce('audits', 'b', 40);
    await waitFor('40 more records consumed', () => members[0]!.records.length + members[1]!.records.length >= consumedBefore + 40, CONDITION_TIMEOUT_MS);
    await waitFor('auto-commit of all 120', async () => (await committedSum('auditors')) === 120, CONDITION_TIMEOUT_MS);
  }, 90_000);
});
