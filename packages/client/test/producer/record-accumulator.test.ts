import { describe, expect, it } from 'vitest';
import { BATCH_HEADER_BYTES, decodeRecordBatchSync, encodeRecordBatchSync, recordFieldsBytes, type RecordInput } from '@raftka/protocol';
import { APPEND_NEW_BATCH, estimateRecordBytes, RecordAccumulator, type RecordAccumulatorOptions } from '../../src/producer/record-accumulator.js';
import { StickyPartitioner } from '../../src/producer/partitioner.js';
import { ManualTime } from '../fake-timers.js';

function setup(overrides: Partial<RecordAccumulatorOptions> = {}) {
  const time = new ManualTime();
  const accumulator = new RecordAccumulator({
    batchSize: 16_384,
    lingerMs: 5,
    bufferMemory: 32 * 1024 * 1024,
    maxRequestSize: 1024 * 1024,
    maxBlockMs: 60_000,
    deliveryTimeoutMs: 120_000,
    clock: time.clock,
    timers: time,
    ...overrides,
  });
  return { time, accumulator };
}

const value = (bytes: number): RecordInput => ({ value: Buffer.alloc(bytes, 1) });
// Partition p of any topic is led by broker p % 2.
const leaderFor = (_topic: string, partition: number) => partition % 2;

describe('estimateRecordBytes', () => {
  it('matches the encoder exactly', () => {
    const records: RecordInput[] = [
      { key: 'k', value: 'hello', timestamp: 1000 },
      { key: null, value: Buffer.alloc(300, 7), timestamp: 1007, headers: [{ key: 'h', value: 'v' }, { key: 'n', value: null }] },
      { value: null, timestamp: 999_999 },
    ];
    const encoded = encodeRecordBatchSync({ records, baseTimestamp: 1000 });
    const estimated = records.reduce((sum, record, index) => sum + estimateRecordBytes(record, index, record.timestamp! - 1000), BATCH_HEADER_BYTES);
    expect(estimated).toBe(encoded.length);
  });
});

describe('RecordAccumulator', () => {
  it('appends into one batch per partition until batchSize, then opens another', async () => {
    const { accumulator } = setup({ batchSize: 1000 });
    const first = await accumulator.append('t', 0, value(100));
    expect(first).toMatchObject({ newBatchCreated: true, batchIsFull: false });
    let results = [];
    for (let i = 0; i < 7; i += 1) results.push(await accumulator.append('t', 0, value(100)));
    expect(results.every((result) => !result.newBatchCreated)).toBe(true);
    const overflow = await accumulator.append('t', 0, value(100));
    expect(overflow.newBatchCreated).toBe(true);
    const queued = accumulator.queuedBatches('t', 0);
    expect(queued).toHaveLength(2);
    expect(queued[0]!.closed).toBe(true);
    expect(queued[0]!.sizeBytes).toBeLessThanOrEqual(1000);
    expect(queued[0]!.recordCount).toBe(8);
  });

  it('gives a record larger than batchSize a batch of its own', async () => {
    const { accumulator } = setup({ batchSize: 100 });
    await accumulator.append('t', 0, value(10));
    const big = await accumulator.append('t', 0, value(500));
    expect(big).toMatchObject({ newBatchCreated: true, batchIsFull: true });
    expect(big.batch.recordCount).toBe(1);
  });

  it('rejects a record bigger than maxRequestSize before sending', async () => {
    const { accumulator } = setup({ maxRequestSize: 1000 });
    await expect(accumulator.append('t', 0, value(2000))).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE', retriable: false });
    expect(accumulator.hasQueuedBatches()).toBe(false);
  });

  it('makes a batch ready after lingerMs and reports when to check again', async () => {
    const { time, accumulator } = setup({ lingerMs: 5 });
    await accumulator.append('t', 1, value(10));
    let ready = accumulator.ready({ leaderFor, nowMs: time.nowMs });
    expect(ready.readyNodes.size).toBe(0);
    expect(ready.nextReadyCheckDelayMs).toBe(5);
    time.advance(5);
    ready = accumulator.ready({ leaderFor, nowMs: time.nowMs });
    expect([...ready.readyNodes]).toEqual([1]);
  });

  it('treats full batches, flushes and close as ready at once', async () => {
    const { time, accumulator } = setup({ batchSize: 200, lingerMs: 1000 });
    await accumulator.append('t', 0, value(300));
    expect([...accumulator.ready({ leaderFor, nowMs: time.nowMs }).readyNodes]).toEqual([0]);
    await accumulator.append('t', 1, value(10));
    expect(accumulator.ready({ leaderFor, nowMs: time.nowMs }).readyNodes.has(1)).toBe(false);
    accumulator.beginFlush();
    expect(accumulator.ready({ leaderFor, nowMs: time.nowMs }).readyNodes.has(1)).toBe(true);
    accumulator.endFlush();
    accumulator.close();
    expect(accumulator.ready({ leaderFor, nowMs: time.nowMs }).readyNodes.has(1)).toBe(true);
    await expect(accumulator.append('t', 1, value(1))).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });

  it('reports topics whose leader is unknown', async () => {
    const { time, accumulator } = setup({ lingerMs: 0 });
    await accumulator.append('lost', 0, value(10));
    const ready = accumulator.ready({ leaderFor: () => undefined, nowMs: time.nowMs });
    expect(ready.readyNodes.size).toBe(0);
    expect([...ready.unknownLeaderTopics]).toEqual(['lost']);
  });

  it('drains one batch per partition per leader, bounded by maxRequestSize', async () => {
    const { time, accumulator } = setup({ batchSize: 400, lingerMs: 0, maxRequestSize: 1000 });
    for (const partition of [0, 2, 4, 1]) {
      await accumulator.append('t', partition, value(300));
      await accumulator.append('t', partition, value(300));
    }
    const drained = accumulator.drain({ leaderFor, nodes: [0, 1], nowMs: time.nowMs });
    const toNode0 = drained.get(0)!;
    // Each batch is ~370 bytes: two fit in 1000, a third would not.
    expect(toNode0).toHaveLength(2);
    expect(new Set(toNode0.map((batch) => batch.partition)).size).toBe(2);
    expect(drained.get(1)!.map((batch) => batch.partition)).toEqual([1]);
    // The partition skipped this time goes first next time.
    const next = accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs }).get(0)!;
    expect(next[0]!.partition).toBe([0, 2, 4].find((p) => !toNode0.some((batch) => batch.partition === p)));
  });

  it('always drains a single batch even when it alone exceeds maxRequestSize estimate', async () => {
    const { time, accumulator } = setup({ batchSize: 16_384, lingerMs: 0, maxRequestSize: 500 });
    await accumulator.append('t', 0, value(400));
    expect(accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs }).get(0)).toHaveLength(1);
  });

  it('skips muted partitions and backs off re-enqueued batches, keeping order', async () => {
    const { time, accumulator } = setup({ batchSize: 100, lingerMs: 0 });
    await accumulator.append('t', 0, { value: 'a'.repeat(80) });
    await accumulator.append('t', 0, { value: 'b'.repeat(80) });
    expect(accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs, isMuted: () => true }).size).toBe(0);
    const [first] = accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs }).get(0)!;
    accumulator.reenqueue(first!, time.nowMs + 100);
    expect(first!.attempts).toBe(1);
    const ready = accumulator.ready({ leaderFor, nowMs: time.nowMs });
    expect(ready.readyNodes.size).toBe(0);
    expect(ready.nextReadyCheckDelayMs).toBe(100);
    expect(accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs }).size).toBe(0);
    time.advance(100);
    const retried = accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs }).get(0)!;
    expect(retried[0]).toBe(first);
    expect(decodeRecordBatchSync(accumulator.queuedBatches('t', 0)[0]!.encode()).records[0]!.value!.toString()).toBe('b'.repeat(80));
  });

  it('ends a retry backoff early when the partition has a new leader (KIP-951), and says when one waits on the old leader', async () => {
    const { time, accumulator } = setup({ lingerMs: 0 });
    await accumulator.append('t', 0, value(10));
    const [batch] = accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs }).get(0)!;
    expect(batch!.lastLeaderId).toBe(0);
    accumulator.reenqueue(batch!, time.nowMs + 1_000);
    // Still led by broker 0, which failed it: the batch backs off, and metadata should be refreshed.
    const waiting = accumulator.ready({ leaderFor, nowMs: time.nowMs });
    expect(waiting.readyNodes.size).toBe(0);
    expect(waiting.retriesAwaitLeader).toBe(true);
    expect(accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs }).size).toBe(0);
    // Metadata now names broker 7: the retry goes there at once.
    const moved = () => 7;
    const ready = accumulator.ready({ leaderFor: moved, nowMs: time.nowMs });
    expect([...ready.readyNodes]).toEqual([7]);
    expect(ready.retriesAwaitLeader).toBe(false);
    const [retried] = accumulator.drain({ leaderFor: moved, nodes: [7], nowMs: time.nowMs }).get(7)!;
    expect(retried).toBe(batch);
    expect(retried!.lastLeaderId).toBe(7);
    // Retries against the old leader do not lengthen the backoff against the new one.
    expect(retried!.attempts).toBe(1);
    expect(retried!.attemptsOnLeader).toBe(0);
    accumulator.reenqueue(retried!, time.nowMs + 100);
    expect(retried!.attemptsOnLeader).toBe(1);
  });

  it('applies backpressure: appends wait for memory freed by completed batches', async () => {
    const { time, accumulator } = setup({ batchSize: 100, lingerMs: 0, bufferMemory: 400, maxRequestSize: 300 });
    for (let i = 0; i < 3; i += 1) await accumulator.append('t', 0, value(90));
    let appended = false;
    const waiting = accumulator.append('t', 0, value(90)).then(() => (appended = true));
    await Promise.resolve();
    expect(appended).toBe(false);
    // Blocked appends make everything ready so memory frees quickly.
    const drained = accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs }).get(0)!;
    accumulator.release(drained[0]!);
    await waiting;
    expect(appended).toBe(true);
  });

  it('fails a blocked append after maxBlockMs', async () => {
    const { time, accumulator } = setup({ bufferMemory: 300, maxBlockMs: 50 });
    await accumulator.append('t', 0, value(150));
    const blocked = accumulator.append('t', 0, value(150));
    time.advance(50);
    await expect(blocked).rejects.toMatchObject({ code: 'REQUEST_TIMED_OUT' });
  });

  it('expires queued batches after deliveryTimeoutMs', async () => {
    const { time, accumulator } = setup({ deliveryTimeoutMs: 1000 });
    await accumulator.append('t', 0, value(10));
    time.advance(999);
    expect(accumulator.expire(time.nowMs)).toHaveLength(0);
    time.advance(1);
    const expired = accumulator.expire(time.nowMs);
    expect(expired).toHaveLength(1);
    accumulator.release(expired[0]!);
    expect(accumulator.hasQueuedBatches()).toBe(false);
    expect(accumulator.availableMemoryBytes).toBe(32 * 1024 * 1024);
  });

  it('lets the sticky partitioner move on before a keyless record opens a new batch (KIP-480)', async () => {
    const { accumulator } = setup({ batchSize: 330 });
    const partitioner = new StickyPartitioner((() => { let i = 0; return () => [0.1, 0.6, 0.3][i++ % 3]!; })());
    const info = { numPartitions: 4, availablePartitions: [] };
    const used: number[] = [];
    for (let i = 0; i < 9; i += 1) {
      const record = value(80);
      let partition = partitioner.partition({ topic: 't' }, info);
      if (accumulator.hasOpenBatch('t', partition) && !accumulator.fitsInOpenBatch('t', partition, record)) {
        partition = partitioner.onNewBatch('t', partition, info);
      }
      await accumulator.append('t', partition, record);
      used.push(partition);
    }
    // Three 88-byte records and the 61-byte header fill a 330-byte batch, then the partition changes.
    expect(used.slice(0, 3).every((p) => p === used[0])).toBe(true);
    expect(used[3]).not.toBe(used[0]);
    for (const partition of new Set(used)) {
      for (const batch of accumulator.queuedBatches('t', partition)) expect(batch.sizeBytes).toBeLessThanOrEqual(330);
    }
  });

  it('holds records that encode into a valid batch', async () => {
    const { time, accumulator } = setup();
    await accumulator.append('t', 0, { key: 'k1', value: 'v1' });
    time.advance(3);
    await accumulator.append('t', 0, { key: 'k2', value: 'v2', headers: [{ key: 'h', value: 'x' }] });
    const [batch] = accumulator.queuedBatches('t', 0);
    const bytes = batch!.encode();
    expect(bytes.length).toBe(batch!.sizeBytes);
    const expected = encodeRecordBatchSync({
      records: [
        { key: 'k1', value: 'v1', timestamp: 1_000_000 },
        { key: 'k2', value: 'v2', headers: [{ key: 'h', value: 'x' }], timestamp: 1_000_003 },
      ],
      baseTimestamp: batch!.baseTimestamp,
    });
    expect(bytes.equals(expected)).toBe(true);
    const decoded = decodeRecordBatchSync(bytes);
    expect(decoded.records.map((record) => record.timestamp)).toEqual([1_000_000, 1_000_003]);
  });

  it('encodes records into the batch as they are appended, with the producer fields of each attempt', async () => {
    const { accumulator } = setup({ batchSize: 1000 });
    const flags = accumulator.appendRecord('t', 0, 'k', Buffer.from('v'), [{ key: 'h', value: null }], 1_000, recordFieldsBytes('k', Buffer.from('v'), [{ key: 'h', value: null }]), undefined, 0);
    expect(flags & APPEND_NEW_BATCH).toBe(APPEND_NEW_BATCH);
    const second = accumulator.appendRecord('t', 0, null, 'w', undefined, 990, recordFieldsBytes(null, 'w', undefined), undefined, 0);
    expect(second & APPEND_NEW_BATCH).toBe(0);
    const [batch] = accumulator.queuedBatches('t', 0);
    expect(batch!.timestamps).toEqual([1_000, 990]);
    Object.assign(batch!, { producerId: 7, producerEpoch: 1, baseSequence: 40 });
    const first = Buffer.from(batch!.encode());
    expect(first.equals(encodeRecordBatchSync({
      records: [{ key: 'k', value: 'v', headers: [{ key: 'h', value: null }], timestamp: 1_000 }, { value: 'w', timestamp: 990 }],
      baseTimestamp: 1_000,
      producerId: 7,
      producerEpoch: 1,
      baseSequence: 40,
    }))).toBe(true);
    // A retry after an epoch bump re-stamps the header and keeps the records.
    batch!.producerEpoch = 2;
    const retried = decodeRecordBatchSync(batch!.encode());
    expect(retried.header.producerEpoch).toBe(2);
    expect(retried.records.map((record) => record.timestamp)).toEqual([1_000, 990]);
    expect(decodeRecordBatchSync(first).header.producerEpoch).toBe(1);
  });

  it('reuses the buffer of an answered full batch for a later batch, which still encodes its own records', async () => {
    const { time, accumulator } = setup({ batchSize: 400, lingerMs: 0 });
    for (let index = 0; index < 4; index += 1) await accumulator.append('t', 0, { value: Buffer.alloc(90, index) });
    const [full] = accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs }).get(0)!;
    expect(full!.closed).toBe(true);
    const sent = Buffer.from(full!.encode());
    accumulator.release(full!, true);
    expect(() => full!.encode()).toThrow();
    for (let index = 0; index < 4; index += 1) await accumulator.append('t', 0, { value: Buffer.alloc(90, 10 + index) });
    // Three 90-byte records fill a 400-byte batch: the fourth first record (3) waited in a second batch.
    const values: number[] = [];
    for (let drained = accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs }); drained.size > 0; drained = accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs })) {
      for (const batch of drained.get(0)!) {
        values.push(...decodeRecordBatchSync(batch.encode()).records.map((record) => record.value![0]!));
        accumulator.release(batch, true);
      }
    }
    expect(values).toEqual([3, 10, 11, 12, 13]);
    expect(decodeRecordBatchSync(sent).records.map((record) => record.value![0])).toEqual([0, 1, 2]);
    expect(accumulator.availableMemoryBytes).toBe(32 * 1024 * 1024);
  });

  it('opens a new batch for a timestamp too far from the open batch to encode as a delta', async () => {
    const { accumulator } = setup();
    await accumulator.append('t', 0, { value: 'a', timestamp: 0 });
    const far = await accumulator.append('t', 0, { value: 'b', timestamp: 2 ** 52 + 5 });
    expect(far.newBatchCreated).toBe(true);
    expect(accumulator.queuedBatches('t', 0).map((batch) => batch.recordCount)).toEqual([1, 1]);
    expect(decodeRecordBatchSync(far.batch.encode()).records[0]!.timestamp).toBe(2 ** 52 + 5);
  });

  it('re-enqueues failed sequenced batches in sequence order, ahead of unsent ones', async () => {
    const { accumulator, time } = setup({ batchSize: 100 });
    for (let index = 0; index < 3; index += 1) await accumulator.append('t', 0, value(90));
    const drained: ReturnType<typeof accumulator.drain> extends Map<number, infer B> ? B : never = [];
    for (let index = 0; index < 2; index += 1) {
      const batches = accumulator.drain({ leaderFor, nodes: [0], nowMs: time.nowMs }).get(0)!;
      drained.push(...batches);
    }
    drained.forEach((batch, index) => Object.assign(batch, { producerId: 1, producerEpoch: 0, baseSequence: index }));
    // Answers arrive in reverse order: the later batch fails first.
    accumulator.reenqueue(drained[1]!, time.nowMs);
    accumulator.reenqueue(drained[0]!, time.nowMs);
    expect(accumulator.queuedBatches('t', 0).map((batch) => batch.baseSequence)).toEqual([0, 1, -1]);
  });
});

