import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Consumer, type ConsumerRecord } from '../../src/consumer/consumer.js';
import { LogTruncationError, NoOffsetForPartitionError, OffsetOutOfRangeError } from '../../src/consumer/subscription-state.js';
import { Producer } from '../../src/producer/producer.js';
import { InMemoryCluster, waitFor } from '../support/in-memory-cluster.js';

let cluster: InMemoryCluster;
let producer: Producer;
const consumers: Consumer[] = [];

function consumer(config: Record<string, unknown> = {}): Consumer {
  const created = new Consumer({ bootstrapServers: cluster.bootstrapServers, fetchMaxWaitMs: 100, retryBackoffMs: 10, retryBackoffMaxMs: 50, ...config });
  consumers.push(created);
  return created;
}

async function produce(topic: string, partition: number, values: string[], extra: { key?: string; headers?: Record<string, string> } = {}): Promise<void> {
  await producer.send({ topic, messages: values.map((value) => ({ value, partition, key: extra.key, headers: extra.headers })) });
}

/** Polls until `count` records arrived (or the deadline passes). */
async function pollUntil(target: Consumer, count: number, timeoutMs = 5000): Promise<ConsumerRecord[]> {
  const records: ConsumerRecord[] = [];
  const deadlineMs = Date.now() + timeoutMs;
  while (records.length < count) {
    if (Date.now() > deadlineMs) throw new Error(`only ${records.length} of ${count} records arrived`);
    records.push(...(await target.poll({ timeoutMs: 200 })));
  }
  return records;
}

const values = (records: readonly ConsumerRecord[]) => records.map((record) => record.value!.toString());
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, index) => `v${from + index}`);

beforeEach(async () => {
  cluster = await InMemoryCluster.start({ brokerCount: 2 });
  producer = new Producer({ bootstrapServers: cluster.bootstrapServers, lingerMs: 0, compressionType: 'gzip', retryBackoffMs: 10, retryBackoffMaxMs: 50 });
});

afterEach(async () => {
  await Promise.all(consumers.splice(0).map((created) => created.close()));
  await producer.close();
  await cluster.stop();
});

describe('Consumer (manual assignment)', () => {
  it('reads what was produced, with keys, headers and timestamps, and tracks position and lag', async () => {
    cluster.createTopic('t', 1);
    await produce('t', 0, range(0, 10), { key: 'k', headers: { origin: 'test' } });
    const reader = consumer({ autoOffsetReset: 'earliest' });
    reader.assign([{ topic: 't', partition: 0 }]);
    const records = await pollUntil(reader, 10);
    expect(values(records)).toEqual(range(0, 10));
    expect(records.map((record) => record.offset)).toEqual(range(0, 10).map((_, index) => index));
    expect(records[3]).toMatchObject({ topic: 't', partition: 0, leaderEpoch: 0 });
    expect(records[3]!.key!.toString()).toBe('k');
    expect(records[3]!.headers.map((header) => [header.key, header.value!.toString()])).toEqual([['origin', 'test']]);
    expect(records[3]!.timestamp).toBeGreaterThan(0);
    expect(await reader.position({ topic: 't', partition: 0 })).toBe(10);
    expect(reader.lag({ topic: 't', partition: 0 })).toBe(0);
    expect(reader.highWatermark({ topic: 't', partition: 0 })).toBe(10);
  });

  it('returns at most maxPollRecords per poll and reports lag from the high watermark', async () => {
    cluster.createTopic('t', 1);
    await produce('t', 0, range(0, 20));
    const reader = consumer({ autoOffsetReset: 'earliest', maxPollRecords: 5 });
    reader.assign([{ topic: 't', partition: 0 }]);
    const first = await pollUntil(reader, 1);
    expect(first).toHaveLength(5);
    expect(reader.lag({ topic: 't', partition: 0 })).toBe(15);
    const rest = await pollUntil(reader, 15);
    expect(values([...first, ...rest])).toEqual(range(0, 20));
    expect(reader.lag({ topic: 't', partition: 0 })).toBe(0);
  });

  it('applies autoOffsetReset: earliest, latest, and none (which raises)', async () => {
    cluster.createTopic('t', 1);
    await produce('t', 0, range(0, 3));
    const tp = { topic: 't', partition: 0 };

    const latest = consumer({ autoOffsetReset: 'latest' });
    latest.assign([tp]);
    expect(await latest.position(tp)).toBe(3);
    expect(await latest.poll({ timeoutMs: 50 })).toEqual([]);
    await produce('t', 0, ['v3']);
    expect(values(await pollUntil(latest, 1))).toEqual(['v3']);

    const none = consumer({ autoOffsetReset: 'none' });
    none.assign([tp]);
    await expect(none.poll({ timeoutMs: 50 })).rejects.toBeInstanceOf(NoOffsetForPartitionError);
    await expect(none.position(tp)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE', name: 'NoOffsetForPartitionError' });
    none.seek(tp, 1);
    expect(values(await pollUntil(none, 3))).toEqual(['v1', 'v2', 'v3']);
  });

  it('seeks to an offset, to the beginning and to the end', async () => {
    cluster.createTopic('t', 1);
    await produce('t', 0, range(0, 10));
    const tp = { topic: 't', partition: 0 };
    const reader = consumer({ autoOffsetReset: 'none' });
    reader.assign([tp]);
    reader.seek(tp, 7);
    expect(values(await pollUntil(reader, 3))).toEqual(['v7', 'v8', 'v9']);
    await reader.seekToBeginning();
    expect(await reader.position(tp)).toBe(0);
    expect(values(await pollUntil(reader, 10))).toEqual(range(0, 10));
    await reader.seekToEnd([tp]);
    expect(await reader.position(tp)).toBe(10);
    expect(() => reader.seek({ topic: 't', partition: 5 }, 0)).toThrow(/not assigned/);
  });

  it('keeps making progress when a batch exceeds maxPartitionFetchBytes (the first batch always comes back)', async () => {
    cluster.createTopic('t', 1);
    for (let index = 0; index < 6; index += 1) await produce('t', 0, [`v${index}`]);
    const reader = consumer({ autoOffsetReset: 'earliest', maxPartitionFetchBytes: 1, fetchMaxBytes: 1 });
    reader.assign([{ topic: 't', partition: 0 }]);
    const fetchesBefore = cluster.callCounts.get('Fetch') ?? 0;
    expect(values(await pollUntil(reader, 6))).toEqual(range(0, 6));
    expect((cluster.callCounts.get('Fetch') ?? 0) - fetchesBefore).toBeGreaterThanOrEqual(6);
  });

  it('does not hold a drained partition behind a long poll for caught-up ones', async () => {
    cluster.createTopic('mixed', 2, { leaders: [1, 1] });
    // One leader for both. Partition 0 stays empty; partition 1 needs many fetches (small per-partition fetch size).
    for (let round = 0; round < 10; round++) await produce('mixed', 1, range(round * 20, round * 20 + 20));
    const fetchMaxWaitMs = 3_000;
    const reader = consumer({ autoOffsetReset: 'earliest', fetchMaxWaitMs, maxPartitionFetchBytes: 1, maxPollRecords: 20 });
    reader.assign([0, 1].map((partition) => ({ topic: 'mixed', partition })));
    const started = Date.now();
    const records = await pollUntil(reader, 200, 20_000);
    expect(values(records)).toEqual(range(0, 200));
    // Ten fetches of partition 1; had each waited behind partition 0's long poll, this would take
    // ten times fetchMaxWaitMs.
    expect(Date.now() - started).toBeLessThan(3 * fetchMaxWaitMs);
  });

  it('pauses and resumes partitions without losing their position', async () => {
    cluster.createTopic('t', 2);
    await produce('t', 0, ['a0', 'a1']);
    await produce('t', 1, ['b0', 'b1']);
    const reader = consumer({ autoOffsetReset: 'earliest' });
    const p0 = { topic: 't', partition: 0 };
    const p1 = { topic: 't', partition: 1 };
    reader.assign([p0, p1]);
    reader.pause([p1]);
    expect(reader.paused()).toEqual([p1]);
    const first = await pollUntil(reader, 2);
    expect(values(first)).toEqual(['a0', 'a1']);
    expect(await reader.poll({ timeoutMs: 100 })).toEqual([]);
    reader.resume([p1]);
    expect(values(await pollUntil(reader, 2))).toEqual(['b0', 'b1']);
  });

  it('long-polls: a waiting poll returns records produced while it waits', async () => {
    cluster.createTopic('t', 1);
    const reader = consumer({ autoOffsetReset: 'latest', fetchMaxWaitMs: 2000 });
    reader.assign([{ topic: 't', partition: 0 }]);
    expect(await reader.position({ topic: 't', partition: 0 })).toBe(0);
    const polled = reader.poll({ timeoutMs: 4000 });
    await waitFor(() => (cluster.callCounts.get('Fetch') ?? 0) > 0, 2000, 'the fetch to be waiting');
    const startedMs = Date.now();
    await produce('t', 0, ['late']);
    expect(values(await polled)).toEqual(['late']);
    // Correctness bound only: the waiting fetch was answered by the append, not by its timeout.
    expect(Date.now() - startedMs).toBeLessThan(1900);
  });

  it('iterates with for await, and a break rewinds to the first record not handed out', async () => {
    cluster.createTopic('t', 1);
    await produce('t', 0, range(0, 10));
    const reader = consumer({ autoOffsetReset: 'earliest' });
    reader.assign([{ topic: 't', partition: 0 }]);
    const seen: string[] = [];
    for await (const record of reader) {
      seen.push(record.value!.toString());
      if (seen.length === 4) break;
    }
    expect(seen).toEqual(range(0, 4));
    expect(await reader.position({ topic: 't', partition: 0 })).toBe(4);
    expect(values(await pollUntil(reader, 6))).toEqual(range(4, 10));
  });

  it('follows a leader change without losing or repeating records', async () => {
    cluster = await restartWithoutHints();
    cluster.createTopic('t', 1, { leaders: [1] });
    await produce('t', 0, range(0, 5));
    const reader = consumer({ autoOffsetReset: 'earliest' });
    reader.assign([{ topic: 't', partition: 0 }]);
    const before = await pollUntil(reader, 5);
    cluster.moveLeader('t', 0, 2);
    await produce('t', 0, range(5, 10));
    const after = await pollUntil(reader, 5);
    expect(values([...before, ...after])).toEqual(range(0, 10));
    expect(after[0]!.leaderEpoch).toBe(1);
  });

  it('OFFSET_OUT_OF_RANGE resets per autoOffsetReset, or raises with none', async () => {
    cluster.createTopic('t', 1);
    for (let index = 0; index < 10; index += 1) await produce('t', 0, [`v${index}`]);
    cluster.partition('t', 0).deleteBefore(5);
    const tp = { topic: 't', partition: 0 };

    const resetting = consumer({ autoOffsetReset: 'earliest' });
    resetting.assign([tp]);
    resetting.seek(tp, 1);
    expect(values(await pollUntil(resetting, 5))).toEqual(range(5, 10));

    const strict = consumer({ autoOffsetReset: 'none' });
    strict.assign([tp]);
    strict.seek(tp, 2);
    let failure: unknown;
    const deadlineMs = Date.now() + 5000;
    while (!failure && Date.now() < deadlineMs) failure = await strict.poll({ timeoutMs: 100 }).then(() => undefined, (error: unknown) => error);
    expect(failure).toBeInstanceOf(OffsetOutOfRangeError);
    expect(failure).toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
  });

  it('detects log truncation after an unclean leader change and moves back to the divergence point (KIP-320)', async () => {
    cluster.createTopic('t', 1, { leaders: [1] });
    for (let index = 0; index < 10; index += 1) await produce('t', 0, [`v${index}`]);
    const tp = { topic: 't', partition: 0 };
    const reader = consumer({ autoOffsetReset: 'earliest' });
    const strict = consumer({ autoOffsetReset: 'none' });
    for (const target of [reader, strict]) {
      target.assign([tp]);
      target.seek(tp, 0);
      expect(await pollUntil(target, 10)).toHaveLength(10);
    }
    // The new leader had only offsets 0..5; it continues the log in epoch 1 from offset 6.
    cluster.partition('t', 0).truncateTo(6);
    cluster.moveLeader('t', 0, 2);
    await produce('t', 0, ['n6', 'n7', 'n8', 'n9', 'n10']);
    const replacement = await pollUntil(reader, 5);
    expect(replacement.map((record) => record.offset)).toEqual([6, 7, 8, 9, 10]);
    expect(values(replacement)).toEqual(['n6', 'n7', 'n8', 'n9', 'n10']);

    let failure: unknown;
    const deadlineMs = Date.now() + 5000;
    while (!failure && Date.now() < deadlineMs) failure = await strict.poll({ timeoutMs: 100 }).then(() => undefined, (error: unknown) => error);
    expect(failure).toBeInstanceOf(LogTruncationError);
    expect((failure as LogTruncationError).divergentOffset).toBe(6);
  });

  it('rejects concurrent polls and use after close', async () => {
    cluster.createTopic('t', 1);
    const reader = consumer({ autoOffsetReset: 'earliest' });
    reader.assign([{ topic: 't', partition: 0 }]);
    const waiting = reader.poll({ timeoutMs: 2000 });
    await expect(reader.poll({ timeoutMs: 10 })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    await reader.close();
    await expect(waiting).resolves.toEqual([]);
    await expect(reader.poll()).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });
});

async function restartWithoutHints(): Promise<InMemoryCluster> {
  await producer.close();
  await cluster.stop();
  const restarted = await InMemoryCluster.start({ brokerCount: 2, leaderHints: false });
  producer = new Producer({ bootstrapServers: restarted.bootstrapServers, lingerMs: 0, retryBackoffMs: 10, retryBackoffMaxMs: 50 });
  return restarted;
}
