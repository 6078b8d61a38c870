// The RaftkaClient gRPC service of a broker, called over the wire: validation at the door (nothing
// appended on a refused produce), error codes per partition, Metadata/DescribeCluster from the
// image, ListOffsets, idempotent producers and InitProducerId.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BATCH_HEADER_BYTES, batchesIn, decodeRecordBatchSync, errorCodeName } from '@raftka/protocol';
import { TestCluster, batch, waitFor } from '../replica-manager/cluster-fixture.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.create();
  await cluster.startBroker(1);
  await cluster.startBroker(2);
  await cluster.createTopic('events', [[1], [2, 1]], { 'max.message.bytes': '1024' });
  await cluster.createTopic('timed', [[1]]);
  await waitFor(() => cluster.broker(2).replicaManager.replicaStatus('events', 1)?.role === 'leader', 'broker 2 leads events-1');
});

afterAll(async () => {
  await cluster.close();
});

function leo(brokerId: number, topic: string, partition = 0): number {
  return cluster.broker(brokerId).replicaManager.replicaStatus(topic, partition)!.logEndOffset;
}

describe('Produce validation', () => {
  it('rejects a batch whose CRC does not match with CORRUPT_MESSAGE and appends nothing', async () => {
    const before = leo(1, 'events');
    const corrupt = batch('crc', 2);
    corrupt[BATCH_HEADER_BYTES + 3]! ^= 0xff; // a byte of the records, covered by the CRC
    const response = await cluster.broker(1).client.produce({ topic: 'events', records: corrupt, acks: 1 });
    expect(response).toMatchObject({ code: 'CORRUPT_MESSAGE', baseOffset: -1 });
    expect(leo(1, 'events')).toBe(before);
  });

  it('rejects bytes that are not whole batches with CORRUPT_MESSAGE', async () => {
    const before = leo(1, 'events');
    const torn = batch('torn', 2).subarray(0, 40);
    expect((await cluster.broker(1).client.produce({ topic: 'events', records: torn, acks: 1 })).code).toBe('CORRUPT_MESSAGE');
    expect(leo(1, 'events')).toBe(before);
  });

  it('rejects a batch above max.message.bytes with MESSAGE_TOO_LARGE and appends nothing', async () => {
    const before = leo(1, 'events');
    const response = await cluster.broker(1).client.produce({ topic: 'events', records: batch('big', 1, { valueBytes: 4096 }), acks: -1 });
    expect(response.code).toBe('MESSAGE_TOO_LARGE');
    expect(leo(1, 'events')).toBe(before);
  });

  it('answers UNKNOWN_TOPIC_OR_PARTITION for a topic or partition that does not exist', async () => {
    expect((await cluster.broker(1).client.produce({ topic: 'nope', records: batch('x'), acks: 1 })).code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect((await cluster.broker(1).client.produce({ topic: 'events', partition: 9, records: batch('x'), acks: 1 })).code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect((await cluster.broker(1).client.fetch({ topic: 'nope', offset: 0 })).code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
  });

  it('answers NOT_LEADER_OR_FOLLOWER on a follower, naming the leader, and appends nothing there', async () => {
    const before = leo(1, 'events', 1);
    const response = await cluster.broker(1).client.produce({ topic: 'events', partition: 1, records: batch('x'), acks: 1 });
    expect(response).toMatchObject({ code: 'NOT_LEADER_OR_FOLLOWER', leaderId: 2 });
    expect(leo(1, 'events', 1)).toBe(before);
    expect((await cluster.broker(1).client.fetch({ topic: 'events', partition: 1, offset: 0 })).code).toBe('NOT_LEADER_OR_FOLLOWER');
  });

  it('answers INVALID_REQUIRED_ACKS for acks other than 0, 1 and -1', async () => {
    expect((await cluster.broker(1).client.produce({ topic: 'events', records: batch('x'), acks: 2 })).code).toBe('INVALID_REQUIRED_ACKS');
  });

  it('checks the fetcher\'s leader epoch (KIP-320)', async () => {
    const client = cluster.broker(2).client;
    expect((await client.fetch({ topic: 'events', partition: 1, offset: 0, currentLeaderEpoch: 0 })).code).toBe('NONE');
    expect((await client.fetch({ topic: 'events', partition: 1, offset: 0, currentLeaderEpoch: 5 })).code).toBe('UNKNOWN_LEADER_EPOCH');
    const fetched = await client.fetch({ topic: 'events', partition: 1, offset: 99 });
    expect(fetched.code).toBe('OFFSET_OUT_OF_RANGE');
  });
});

describe('idempotent producer', () => {
  it('hands out producer ids, answers a retried batch with its original offset, and refuses a sequence gap', async () => {
    const client = cluster.broker(1).client;
    const init = await client.call('InitProducerId', { transactionalId: '', transactionTimeoutMs: 0, producerId: -1, producerEpoch: -1 });
    expect(init).toMatchObject({ errorCode: 0, producerEpoch: 0 });
    const again = await client.call('InitProducerId', { transactionalId: '', transactionTimeoutMs: 0, producerId: -1, producerEpoch: -1 });
    expect(again.producerId).toBe(init.producerId + 1);

    const producerId = init.producerId as number;
    const first = await client.produce({ topic: 'timed', records: batch('p', 2, { producerId, baseSequence: 0 }), acks: -1 });
    expect(first.code).toBe('NONE');
    const endAfterFirst = leo(1, 'timed');
    const retry = await client.produce({ topic: 'timed', records: batch('p', 2, { producerId, baseSequence: 0 }), acks: -1 });
    expect(retry).toMatchObject({ code: 'NONE', baseOffset: first.baseOffset });
    expect(leo(1, 'timed')).toBe(endAfterFirst);
    const gap = await client.produce({ topic: 'timed', records: batch('p', 1, { producerId, baseSequence: 5 }), acks: 1 });
    expect(gap.code).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(leo(1, 'timed')).toBe(endAfterFirst);
    const next = await client.produce({ topic: 'timed', records: batch('p', 1, { producerId, baseSequence: 2 }), acks: 1 });
    expect(next).toMatchObject({ code: 'NONE', baseOffset: endAfterFirst });
  });
});

describe('ListOffsets', () => {
  it('finds the earliest, latest and by-timestamp offsets', async () => {
    const client = cluster.broker(1).client;
    const base = await client.produce({ topic: 'events', records: batch('t100', 2, { timestamp: 100_000 }), acks: -1 });
    await client.produce({ topic: 'events', records: batch('t200', 2, { timestamp: 200_000 }), acks: -1 });
    const ask = async (timestamp: number) => {
      const response = await client.call('ListOffsets', {
        replicaId: -1,
        topics: [{ name: 'events', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp }] }],
      });
      const item = response.topics[0].partitions[0];
      return { code: errorCodeName(item.errorCode), offset: item.offset as number, leaderEpoch: item.leaderEpoch as number };
    };
    expect(await ask(-2)).toMatchObject({ code: 'NONE', offset: 0 });
    expect(await ask(-1)).toMatchObject({ code: 'NONE', offset: leo(1, 'events'), leaderEpoch: 0 });
    expect((await ask(150_000)).offset).toBe(base.baseOffset + 2);
    expect((await ask(50_000)).offset).toBeLessThanOrEqual(base.baseOffset);
    expect((await ask(999_999_999_999)).offset).toBe(-1);
  });
});

describe('Metadata and DescribeCluster', () => {
  it('describes topics, leaders, replicas, ISR and broker addresses from the image', async () => {
    const client = cluster.broker(2).client;
    const metadata = await client.call('Metadata', { topics: ['events', 'missing'], allTopics: false });
    expect(metadata.clusterId).toBe('test-cluster');
    expect(metadata.controllerId).toBe(100);
    expect(metadata.brokers.map((broker: { nodeId: number; port: number }) => [broker.nodeId, broker.port])).toEqual([
      [1, cluster.broker(1).port],
      [2, cluster.broker(2).port],
    ]);
    const [events, missing] = metadata.topics;
    expect(events).toMatchObject({ errorCode: 0, name: 'events' });
    expect(events.topicId.length).toBe(16);
    expect(events.partitions[1]).toMatchObject({ partitionIndex: 1, leaderId: 2, leaderEpoch: 0, replicaNodes: [2, 1], isrNodes: [2, 1] });
    expect(errorCodeName(missing.errorCode)).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    const all = await client.call('Metadata', { topics: [], allTopics: true });
    expect(all.topics.map((topic: { name: string }) => topic.name)).toEqual(['events', 'timed']);
    const described = await client.call('DescribeCluster', {});
    expect(described).toMatchObject({ errorCode: 0, clusterId: 'test-cluster', controllerId: 100 });
    expect(described.brokers).toHaveLength(2);
  });

  it('serves fetched records byte for byte as the leader stored them', async () => {
    const client = cluster.broker(2).client;
    const produced = await client.produce({ topic: 'events', partition: 1, records: batch('wire', 3), acks: -1 });
    expect(produced.code).toBe('NONE');
    const fetched = await client.fetch({ topic: 'events', partition: 1, offset: produced.baseOffset });
    const keys = [...batchesIn(fetched.records, 0, { verifyCrc: true })].flatMap(({ position }) =>
      decodeRecordBatchSync(fetched.records, position).records.map((record) => record.key!.toString()),
    );
    expect(keys).toEqual(['wire-0', 'wire-1', 'wire-2']);
  });
});

describe('Fetch sizes and long-poll', () => {
  it('bounds a fetch by its byte limits but always returns the first batch', async () => {
    const client = cluster.broker(1).client;
    const first = await client.produce({ topic: 'timed', records: batch('s1', 1, { valueBytes: 300 }), acks: -1 });
    await client.produce({ topic: 'timed', records: batch('s2', 1, { valueBytes: 300 }), acks: -1 });
    const small = await client.fetch({ topic: 'timed', offset: first.baseOffset, maxBytes: 10 });
    expect([...batchesIn(small.records)]).toHaveLength(1);
    const both = await client.fetch({ topic: 'timed', offset: first.baseOffset, maxBytes: 100_000 });
    expect([...batchesIn(both.records)].length).toBeGreaterThanOrEqual(2);
  });

  it('holds a fetch until min bytes are available', async () => {
    const client = cluster.broker(1).client;
    const end = leo(1, 'timed');
    const waiting = client.fetch({ topic: 'timed', offset: end, minBytes: 500, maxWaitMs: 10_000 });
    let answered = false;
    void waiting.then(() => (answered = true));
    await client.produce({ topic: 'timed', records: batch('m1', 1, { valueBytes: 100 }), acks: -1 });
    // About 170 bytes are not enough: the fetch keeps waiting.
    await waitFor(() => leo(1, 'timed') === end + 1, 'the first small batch is appended');
    await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);
    await client.produce({ topic: 'timed', records: batch('m2', 1, { valueBytes: 600 }), acks: -1 });
    const fetched = await waiting;
    expect([...batchesIn(fetched.records)]).toHaveLength(2);
  });
});
