import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { partitionForKey, RaftkaError } from '@raftka/protocol';
import { Producer, ProducerSendError } from '../../src/producer/producer.js';
import { InMemoryCluster, waitFor } from '../support/in-memory-cluster.js';

let cluster: InMemoryCluster;
const producers: Producer[] = [];

function producer(config: Record<string, unknown> = {}): Producer {
  const created = new Producer({ bootstrapServers: cluster.bootstrapServers, lingerMs: 1, retryBackoffMs: 10, retryBackoffMaxMs: 50, ...config });
  producers.push(created);
  return created;
}

beforeEach(async () => {
  cluster = await InMemoryCluster.start({ brokerCount: 3 });
});

afterEach(async () => {
  await Promise.all(producers.splice(0).map((created) => created.close().catch(() => undefined)));
  await cluster.stop();
});

describe('Producer', () => {
  it('round-trips keys, values, headers and timestamps, with every compression codec', async () => {
    cluster.createTopic('events', 1);
    let expectedOffset = 0;
    for (const compressionType of ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const) {
      const sender = producer({ compressionType });
      const sent = await sender.send({
        topic: 'events',
        messages: [
          { key: 'k1', value: `hello ${compressionType}`, headers: { trace: 'abc', empty: null }, timestamp: 1_700_000_000_000 },
          { key: Buffer.from([0, 1, 2]), value: Buffer.alloc(2000, 7), headers: [{ key: 'dup', value: '1' }, { key: 'dup', value: '2' }] },
          { value: null },
        ],
      });
      expect(sent.map((metadata) => metadata.offset)).toEqual([expectedOffset, expectedOffset + 1, expectedOffset + 2]);
      expect(sent[0]).toMatchObject({ topic: 'events', partition: 0, timestamp: 1_700_000_000_000 });
      expectedOffset += 3;
      await sender.close();
    }
    const stored = await cluster.partition('events', 0).records();
    expect(stored).toHaveLength(15);
    for (let index = 0; index < 15; index += 3) {
      const [first, second, third] = stored.slice(index, index + 3);
      expect(first!.key!.toString()).toBe('k1');
      expect(first!.value!.toString()).toMatch(/^hello /);
      expect(first!.timestamp).toBe(1_700_000_000_000);
      expect(first!.headers.map((header) => [header.key, header.value?.toString() ?? null])).toEqual([
        ['trace', 'abc'],
        ['empty', null],
      ]);
      expect([...second!.key!]).toEqual([0, 1, 2]);
      expect(second!.value!.equals(Buffer.alloc(2000, 7))).toBe(true);
      expect(second!.headers.map((header) => header.value!.toString())).toEqual(['1', '2']);
      expect(third!.key).toBeNull();
      expect(third!.value).toBeNull();
    }
  });

  it('places keyed records by murmur2 and keeps per-key order', async () => {
    cluster.createTopic('keyed', 6);
    const sender = producer();
    const keys = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
    const sends = [];
    for (let round = 0; round < 5; round += 1) {
      for (const key of keys) sends.push(sender.send({ topic: 'keyed', messages: [{ key, value: `${key}-${round}` }] }));
    }
    const results = (await Promise.all(sends)).flat();
    for (const result of results) expect(result.offset).toBeGreaterThanOrEqual(0);
    for (const key of keys) {
      const partition = partitionForKey(Buffer.from(key), 6);
      const values = (await cluster.partition('keyed', partition).records()).filter((record) => record.key!.toString() === key).map((record) => record.value!.toString());
      expect(values).toEqual([0, 1, 2, 3, 4].map((round) => `${key}-${round}`));
    }
    // Records go where they were reported to go.
    const first = results[0]!;
    expect(first.partition).toBe(partitionForKey(Buffer.from('alpha'), 6));
  });

  it('batches records sent within lingerMs into few Produce requests', async () => {
    cluster.createTopic('batched', 1);
    const sender = producer({ lingerMs: 50 });
    await sender.connect();
    const before = cluster.callCounts.get('Produce') ?? 0;
    const results = await Promise.all(Array.from({ length: 100 }, (_, index) => sender.send({ topic: 'batched', messages: [{ value: `v${index}` }] })));
    expect(results.map((result) => result[0]!.offset)).toEqual(Array.from({ length: 100 }, (_, index) => index));
    expect((cluster.callCounts.get('Produce') ?? 0) - before).toBeLessThanOrEqual(3);
  });

  it('acks=1 resolves with offsets after the leader appended; acks=0 resolves at once with offset -1', async () => {
    cluster.createTopic('acks', 1);
    const leaderAcked = producer({ acks: 1, enableIdempotence: false });
    const [metadata] = await leaderAcked.send({ topic: 'acks', messages: [{ value: 'one' }] });
    expect(metadata).toMatchObject({ partition: 0, offset: 0 });
    expect(cluster.partition('acks', 0).logEndOffset).toBe(1);

    const fireAndForget = producer({ acks: 0, enableIdempotence: false });
    const sent = await fireAndForget.send({ topic: 'acks', messages: [{ value: 'two' }, { value: 'three' }] });
    expect(sent.map((record) => record.offset)).toEqual([-1, -1]);
    await waitFor(() => cluster.partition('acks', 0).logEndOffset === 3, 5000, 'acks=0 records to land');
    const values = (await cluster.partition('acks', 0).records()).map((record) => record.value!.toString());
    expect(values).toEqual(['one', 'two', 'three']);
  });

  it('retries after a leader move without duplicating records (idempotent sequences)', async () => {
    await cluster.stop();
    // No KIP-951 leader hints: the producer must refresh metadata to find the new leader.
    cluster = await InMemoryCluster.start({ brokerCount: 3, leaderHints: false });
    cluster.createTopic('moving', 1, { leaders: [1] });
    let moved = false;
    cluster.afterAppend = (event) => {
      if (moved) return undefined;
      moved = true;
      // The append stays in the (replicated) log, but leadership moves before the answer.
      cluster.moveLeader(event.topic, event.partition, 2);
      return 'NOT_LEADER_OR_FOLLOWER';
    };
    const sender = producer();
    const first = await sender.send({ topic: 'moving', messages: [{ key: 'a', value: 'first' }, { key: 'a', value: 'second' }] });
    expect(moved).toBe(true);
    // The retry reached the new leader, which recognised the sequence and returned the original offsets.
    expect(first.map((record) => record.offset)).toEqual([0, 1]);
    const more = await sender.send({ topic: 'moving', messages: [{ key: 'a', value: 'third' }] });
    expect(more[0]!.offset).toBe(2);
    const values = (await cluster.partition('moving', 0).records()).map((record) => record.value!.toString());
    expect(values).toEqual(['first', 'second', 'third']);
    expect(cluster.callCounts.get('Metadata')).toBeGreaterThanOrEqual(2);
  });

  it('without idempotence a lost answer is retried and duplicates the record, as in Kafka', async () => {
    cluster.createTopic('dup', 1);
    let failed = false;
    cluster.afterAppend = () => {
      if (failed) return undefined;
      failed = true;
      return 'NOT_ENOUGH_REPLICAS_AFTER_APPEND';
    };
    const sender = producer({ enableIdempotence: false, acks: -1 });
    const [metadata] = await sender.send({ topic: 'dup', messages: [{ value: 'x' }] });
    expect(metadata!.offset).toBe(1);
    expect(cluster.partition('dup', 0).logEndOffset).toBe(2);
  });

  it('surfaces per-message errors with Kafka error names', async () => {
    cluster.createTopic('errors', 2);
    const sender = producer({ enableIdempotence: false, acks: 1, retries: 0 });
    cluster.afterAppend = (event) => (event.partition === 1 ? 'NOT_LEADER_OR_FOLLOWER' : undefined);
    const failure = await sender
      .send({ topic: 'errors', messages: [{ value: 'ok', partition: 0 }, { value: 'refused', partition: 1 }] })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ProducerSendError);
    const sendError = failure as ProducerSendError;
    expect(sendError.code).toBe('NOT_LEADER_OR_FOLLOWER');
    expect(sendError.outcomes[0]).toMatchObject({ ok: true, metadata: { partition: 0, offset: 0 } });
    expect(sendError.outcomes[1]).toMatchObject({ ok: false, error: { code: 'NOT_LEADER_OR_FOLLOWER' } });

    await expect(sender.send({ topic: 'errors', messages: [{ value: 'x', partition: 7 }] })).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC_OR_PARTITION' });
    await expect(producer({ maxBlockMs: 200 }).send({ topic: 'missing', messages: [{ value: 'x' }] })).rejects.toMatchObject({
      code: 'UNKNOWN_TOPIC_OR_PARTITION',
    });
    const small = producer({ maxRequestSize: 1000 });
    await expect(small.send({ topic: 'errors', messages: [{ value: Buffer.alloc(5000) }] })).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    await expect(sender.send({ topic: 'errors', messages: [{ value: 'ok' }, { value: 42 as never }] })).rejects.toMatchObject({
      code: 'INVALID_RECORD',
      message: expect.stringMatching(/message 1: value/),
    });
    await expect(sender.send({ topic: 'errors', messages: [{ value: 'x', headers: { h: 7 as never } }] })).rejects.toMatchObject({ code: 'INVALID_RECORD' });
    await sender.close();
    await expect(sender.send({ topic: 'errors', messages: [{ value: 'late' }] })).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    // Port 1 on loopback refuses connections.
    await expect(producer({ bootstrapServers: ['127.0.0.1:1'], maxBlockMs: 300 }).connect()).rejects.toMatchObject({ code: 'NETWORK_EXCEPTION' });
  });

  it('rejects unknown options with a suggestion, and turns idempotence off only when it was not asked for', () => {
    expect(() => new Producer({ bootstrapServers: ['127.0.0.1:1'], lingerMS: 5 } as never)).toThrow(/did you mean "lingerMs"/);
    expect(() => new Producer({ bootstrapServers: ['127.0.0.1:1'], 'linger.ms': 5 } as never)).toThrow(/did you mean "lingerMs"/);
    expect(() => new Producer({ bootstrapServers: ['127.0.0.1:1'], idempotence: false } as never)).toThrow(/did you mean "enableIdempotence"/);
    expect(() => new Producer({ bootstrapServers: ['127.0.0.1:1'], compression: 'gzip' } as never)).toThrow(/did you mean "compressionType"/);
    expect(new Producer({ bootstrapServers: ['127.0.0.1:1'], acks: 1 }).options.enableIdempotence).toBe(false);
    expect(new Producer({ bootstrapServers: ['127.0.0.1:1'] }).options.enableIdempotence).toBe(true);
    expect(() => new Producer({ bootstrapServers: ['127.0.0.1:1'], acks: 1, enableIdempotence: true })).toThrow(RaftkaError);
  });

  it.each([true, false])('keeps order and sends each record once when in-flight batches fail behind a leader move (leader hints: %s)', async (leaderHints) => {
    await cluster.stop();
    cluster = await InMemoryCluster.start({ brokerCount: 2, leaderHints });
    cluster.createTopic('ordered', 1, { leaders: [1] });
    let appends = 0;
    cluster.afterAppend = (event) => {
      appends += 1;
      if (appends !== 3) return undefined;
      cluster.moveLeader(event.topic, event.partition, 2);
      return 'NOT_LEADER_OR_FOLLOWER';
    };
    // Small batches and no linger: many batches of one partition are in flight at once.
    const sender = producer({ lingerMs: 0, batchSize: 120, maxInFlightRequestsPerConnection: 5 });
    await sender.connect();
    const count = 60;
    const results = await Promise.all(Array.from({ length: count }, (_, index) => sender.send({ topic: 'ordered', messages: [{ key: 'same', value: `v${index}` }] })));
    const values = (await cluster.partition('ordered', 0).records()).map((record) => record.value!.toString());
    expect(values).toEqual(Array.from({ length: count }, (_, index) => `v${index}`));
    // Every acknowledged offset points at its own record.
    results.forEach((result, index) => {
      if (result[0]!.offset >= 0) expect(values[result[0]!.offset]).toBe(`v${index}`);
    });
    expect(appends).toBeGreaterThan(3);
  });

  it('keeps per-partition order without idempotence even with several requests in flight per broker', async () => {
    cluster.createTopic('plain', 2, { leaders: [1, 1] });
    const sender = producer({ enableIdempotence: false, acks: 1, lingerMs: 0, batchSize: 300, maxInFlightRequestsPerConnection: 5 });
    await sender.connect();
    // Large and small batches alternate: a later, smaller request would overtake an earlier, larger
    // one on the wire if two batches of one partition were in flight together.
    await Promise.all(
      Array.from({ length: 80 }, (_, index) =>
        sender.send({ topic: 'plain', messages: [{ value: Buffer.alloc(Math.floor(index / 2) % 2 === 0 ? 20_000 : 10, index), partition: index % 2 }] }),
      ),
    );
    for (const partition of [0, 1]) {
      const firstBytes = (await cluster.partition('plain', partition).records()).map((record) => record.value![0]);
      expect(firstBytes).toEqual(Array.from({ length: 40 }, (_, index) => index * 2 + partition));
    }
  });

  it('pipelines several batches of one partition and, after a refused batch, resends in order exactly once (idempotent)', async () => {
    cluster.createTopic('piped', 1);
    const sender = producer({ lingerMs: 0, batchSize: 1 });
    await sender.connect();
    const seen: number[] = [];
    let refused = false;
    cluster.beforeAppend = (event) => {
      seen.push(event.baseSequence);
      if (event.baseSequence === 3 && !refused) {
        refused = true;
        // Nothing is appended: the batches behind it that are already in flight meet a gap.
        return 'NOT_ENOUGH_REPLICAS';
      }
      return undefined;
    };
    const results = await Promise.all(Array.from({ length: 30 }, (_, index) => sender.send({ topic: 'piped', messages: [{ value: `v${index}` }] })));
    expect(results.map((result) => result[0]!.offset)).toEqual(Array.from({ length: 30 }, (_, index) => index));
    const values = (await cluster.partition('piped', 0).records()).map((record) => record.value!.toString());
    expect(values).toEqual(Array.from({ length: 30 }, (_, index) => `v${index}`));
    // Pipelined: a batch after the refused one reached the broker before the refused one's retry.
    const retryAt = seen.indexOf(3, seen.indexOf(3) + 1);
    expect(seen.slice(seen.indexOf(3) + 1, retryAt).some((sequence) => sequence > 3)).toBe(true);
  });

  it('settles one promise per send call with every record, also when appends wait for bufferMemory', async () => {
    cluster.createTopic('calls', 3);
    const sender = producer({ bufferMemory: 2048, batchSize: 512, lingerMs: 0 });
    const calls = Array.from({ length: 24 }, (_, call) =>
      sender.send({ topic: 'calls', messages: Array.from({ length: 5 }, (_, index) => ({ key: `k${(call + index) % 4}`, value: Buffer.alloc(90, call) })) }),
    );
    const results = await Promise.all(calls);
    expect(results.every((result) => result.length === 5 && result.every((metadata) => metadata.offset >= 0))).toBe(true);
    // Per key, records keep the order of the calls.
    const byKey = new Map<string, number[]>();
    for (const partition of [0, 1, 2]) {
      for (const record of await cluster.partition('calls', partition).records()) {
        const key = record.key!.toString();
        byKey.set(key, [...(byKey.get(key) ?? []), record.value![0]!]);
      }
    }
    expect([...byKey.values()].flat()).toHaveLength(120);
    for (const values of byKey.values()) expect(values).toEqual([...values].sort((a, b) => a - b));
  });

  it('bumps the producer epoch when the broker lost its state (UNKNOWN_PRODUCER_ID, KIP-360)', async () => {
    cluster.createTopic('epochs', 1);
    const sender = producer();
    await sender.send({ topic: 'epochs', messages: [{ value: 'a' }, { value: 'b' }] });
    const before = sender.producerIdAndEpoch;
    expect(before.producerEpoch).toBe(0);
    cluster.partition('epochs', 0).producers.clear();
    const [metadata] = await sender.send({ topic: 'epochs', messages: [{ value: 'c' }] });
    expect(metadata!.offset).toBe(2);
    expect(sender.producerIdAndEpoch).toEqual({ producerId: before.producerId, producerEpoch: 1 });
    const values = (await cluster.partition('epochs', 0).records()).map((record) => record.value!.toString());
    expect(values).toEqual(['a', 'b', 'c']);
  });

  it('fails records that cannot be delivered within deliveryTimeoutMs with REQUEST_TIMED_OUT', async () => {
    // Broker 9 does not exist: the partition has no reachable leader.
    cluster.createTopic('stuck', 1, { leaders: [9] });
    const sender = producer({ requestTimeoutMs: 200, deliveryTimeoutMs: 300 });
    const failure = await sender.send({ topic: 'stuck', messages: [{ value: 'x' }] }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ProducerSendError);
    expect((failure as ProducerSendError).code).toBe('REQUEST_TIMED_OUT');
  });

  it('recycles bufferMemory: more records than fit at once all get through', async () => {
    cluster.createTopic('memory', 2);
    const sender = producer({ bufferMemory: 4096, batchSize: 1024, lingerMs: 0 });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, index) => sender.send({ topic: 'memory', messages: [{ key: `k${index % 7}`, value: Buffer.alloc(100, index) }] })),
    );
    expect(results.every((result) => result[0]!.offset >= 0)).toBe(true);
    const stored = (await cluster.partition('memory', 0).records()).length + (await cluster.partition('memory', 1).records()).length;
    expect(stored).toBe(200);
  });

  it('gives every single-record send its own offset and timestamp across recycled batch buffers', async () => {
    cluster.createTopic('single', 1);
    const sender = producer({ batchSize: 600, lingerMs: 0 });
    const sends = Array.from({ length: 120 }, (_, index) =>
      sender.send({ topic: 'single', messages: [{ key: Buffer.from([index]), value: Buffer.alloc(100, index), timestamp: 1_700_000_000_000 + index }] }),
    );
    const results = await Promise.all(sends);
    expect(results.map((result) => result[0]!.offset)).toEqual(Array.from({ length: 120 }, (_, index) => index));
    expect(results.map((result) => result[0]!.timestamp)).toEqual(Array.from({ length: 120 }, (_, index) => 1_700_000_000_000 + index));
    const stored = await cluster.partition('single', 0).records();
    expect(stored.map((record) => [record.key![0], record.value![99], record.timestamp])).toEqual(
      Array.from({ length: 120 }, (_, index) => [index, index, 1_700_000_000_000 + index]),
    );
  });

  it('flush waits for the sends made before it, not for later ones', async () => {
    cluster.createTopic('flush-order', 1);
    const sender = producer({ lingerMs: 60_000 });
    await sender.connect();
    const before = sender.send({ topic: 'flush-order', messages: [{ value: 'a' }, { value: 'b' }] });
    let beforeSettled = false;
    void before.then(() => (beforeSettled = true));
    const flushed = sender.flush();
    // Sent after the flush began: it rides along (the flush makes every batch ready) but the
    // flush does not wait for it.
    const after = sender.send({ topic: 'flush-order', messages: [{ value: 'c' }] });
    await flushed;
    expect(beforeSettled).toBe(true);
    await expect(before).resolves.toMatchObject([{ offset: 0 }, { offset: 1 }]);
    await sender.flush();
    await expect(after).resolves.toMatchObject([{ offset: 2 }]);
  });

  it('flush sends lingering batches at once and close waits for them', async () => {
    cluster.createTopic('flush', 1);
    const sender = producer({ lingerMs: 60_000 });
    await sender.connect();
    const pending = sender.send({ topic: 'flush', messages: [{ value: 'a' }] });
    await sender.flush();
    await expect(pending).resolves.toMatchObject([{ offset: 0 }]);
    const lingering = sender.send({ topic: 'flush', messages: [{ value: 'b' }] });
    await sender.close();
    await expect(lingering).resolves.toMatchObject([{ offset: 1 }]);
  });
});
