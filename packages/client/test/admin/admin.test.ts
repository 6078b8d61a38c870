import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Admin, AdminOperationError } from '../../src/admin/admin.js';
import { Producer } from '../../src/producer/producer.js';
import { InMemoryCluster } from '../support/in-memory-cluster.js';

let cluster: InMemoryCluster;
let admin: Admin;

beforeEach(async () => {
  cluster = await InMemoryCluster.start({ brokerCount: 3, clusterId: 'admin-test' });
  admin = new Admin({ bootstrapServers: cluster.bootstrapServers, retryBackoffMs: 10, retryBackoffMaxMs: 50 });
});

afterEach(async () => {
  await admin.close();
  await cluster.stop();
});

async function failureOf(promise: Promise<unknown>): Promise<AdminOperationError<unknown>> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(AdminOperationError);
  return error as AdminOperationError<unknown>;
}

describe('Admin', () => {
  it('creates, lists, describes and deletes topics', async () => {
    const created = await admin.createTopics([
      { topic: 'orders', numPartitions: 3, replicationFactor: 2, configs: { 'cleanup.policy': 'compact' } },
      { topic: 'audit' },
    ]);
    expect(created.map((topic) => [topic.topic, topic.numPartitions, topic.replicationFactor])).toEqual([
      ['orders', 3, 2],
      ['audit', 1, 1],
    ]);
    expect(created[0]!.topicId).toMatch(/^[0-9a-f]{32}$/);
    cluster.createTopic('__consumer_offsets', 1);
    expect(await admin.listTopics()).toEqual(['audit', 'orders']);
    expect(await admin.listTopics({ includeInternal: true })).toEqual(['__consumer_offsets', 'audit', 'orders']);

    const [orders] = await admin.describeTopics(['orders']);
    expect(orders!.partitions.map((partition) => partition.partition)).toEqual([0, 1, 2]);
    expect(orders!.partitions.map((partition) => partition.leader)).toEqual([1, 2, 3]);
    expect(orders!.isInternal).toBe(false);

    await admin.deleteTopics(['audit']);
    expect(await admin.listTopics()).toEqual(['orders']);
  });

  it('surfaces per-topic errors with Kafka names and keeps the successes', async () => {
    await admin.createTopics([{ topic: 'exists', numPartitions: 1 }]);
    const failure = await failureOf(
      admin.createTopics([
        { topic: 'exists' },
        { topic: 'bad name!' },
        { topic: 'too-replicated', replicationFactor: 9 },
        { topic: 'no-partitions', numPartitions: 0 },
        { topic: 'bad-config', configs: { 'retention.mss': '5' } },
        { topic: 'fine', numPartitions: 2 },
      ]),
    );
    expect(failure.code).toBe('TOPIC_ALREADY_EXISTS');
    expect(Object.fromEntries([...failure.failures].map(([topic, error]) => [topic, error.code]))).toEqual({
      exists: 'TOPIC_ALREADY_EXISTS',
      'bad name!': 'INVALID_TOPIC_EXCEPTION',
      'too-replicated': 'INVALID_REPLICATION_FACTOR',
      'no-partitions': 'INVALID_PARTITIONS',
      'bad-config': 'INVALID_CONFIG',
    });
    expect(failure.results).toMatchObject([{ topic: 'fine', numPartitions: 2 }]);

    expect((await failureOf(admin.deleteTopics(['missing']))).failures.get('missing')?.code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect((await failureOf(admin.describeTopics(['fine', 'missing']))).results).toMatchObject([{ topic: 'fine' }]);
  });

  it('re-sends only the items refused with NOT_CONTROLLER while the controller moves', async () => {
    cluster.controllerMoving.set('late', 2);
    const created = await admin.createTopics([{ topic: 'early' }, { topic: 'late', numPartitions: 2 }]);
    expect(created.map((topic) => topic.topic)).toEqual(['early', 'late']);
    expect(cluster.callCounts.get('CreateTopics')).toBe(3);
    await admin.createTopics([{ topic: 'cfg-late' }]);
    cluster.controllerMoving.set('cfg-late', 1);
    await admin.incrementalAlterConfigs([{ resource: { type: 'topic', name: 'cfg-late' }, operations: [{ name: 'retention.ms', op: 'set', value: '5000' }] }]);
    const [described] = await admin.describeConfigs([{ type: 'topic', name: 'cfg-late', configNames: ['retention.ms'] }]);
    expect(described!.entries[0]).toMatchObject({ value: '5000' });
    expect(cluster.callCounts.get('IncrementalAlterConfigs')).toBe(2);
    await expect(
      admin.incrementalAlterConfigs([{ resource: { type: 'topic', name: 'cfg-late' }, operations: [{ name: 'retention.ms', op: 'set' }] }]),
    ).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('validateOnly checks without creating', async () => {
    await admin.createTopics([{ topic: 'dry', numPartitions: 4 }], { validateOnly: true });
    expect(await admin.listTopics()).toEqual([]);
  });

  it('adds partitions, refusing to shrink', async () => {
    await admin.createTopics([{ topic: 'grow', numPartitions: 2 }]);
    await admin.createPartitions([{ topic: 'grow', count: 5 }]);
    const [grown] = await admin.describeTopics(['grow']);
    expect(grown!.partitions).toHaveLength(5);
    const failure = await failureOf(admin.createPartitions([{ topic: 'grow', count: 3 }, { topic: 'nope', count: 2 }]));
    expect(failure.failures.get('grow')?.code).toBe('INVALID_PARTITIONS');
    expect(failure.failures.get('nope')?.code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
  });

  it('describes and incrementally alters topic configs', async () => {
    await admin.createTopics([{ topic: 'cfg', configs: { 'retention.ms': '1000' } }]);
    const [described] = await admin.describeConfigs([{ type: 'topic', name: 'cfg', configNames: ['retention.ms', 'cleanup.policy'] }]);
    expect(described!.entries).toEqual([
      expect.objectContaining({ name: 'retention.ms', value: '1000', source: 'dynamic-topic-config' }),
      expect.objectContaining({ name: 'cleanup.policy', value: 'delete', source: 'default-config' }),
    ]);
    await admin.incrementalAlterConfigs([
      {
        resource: { type: 'topic', name: 'cfg' },
        operations: [
          { name: 'retention.ms', op: 'delete' },
          { name: 'cleanup.policy', op: 'append', value: 'compact' },
        ],
      },
    ]);
    const [after] = await admin.describeConfigs([{ type: 'topic', name: 'cfg', configNames: ['retention.ms', 'cleanup.policy'] }]);
    expect(after!.entries.map((entry) => [entry.name, entry.value, entry.source])).toEqual([
      ['retention.ms', '604800000', 'default-config'],
      ['cleanup.policy', 'delete,compact', 'dynamic-topic-config'],
    ]);
    const failure = await failureOf(
      admin.incrementalAlterConfigs([
        { resource: { type: 'topic', name: 'cfg' }, operations: [{ name: 'cleanup.policy', op: 'set', value: 'shred' }] },
        { resource: { type: 'topic', name: 'ghost' }, operations: [{ name: 'retention.ms', op: 'set', value: '1' }] },
      ]),
    );
    expect(failure.failures.get('topic:cfg')?.code).toBe('INVALID_CONFIG');
    expect(failure.failures.get('topic:ghost')?.code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect((await failureOf(admin.describeConfigs([{ type: 'topic', name: 'ghost' }]))).code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
  });

  it('describes the cluster', async () => {
    const description = await admin.describeCluster();
    expect(description.clusterId).toBe('admin-test');
    expect(description.controllerId).toBe(1);
    expect(description.brokers.map((broker) => broker.nodeId)).toEqual([1, 2, 3]);
    expect(description.brokers[0]!.port).toBe(cluster.brokers[0]!.port);
  });

  it('lists offsets by earliest, latest, max-timestamp and timestamp, following leader moves', async () => {
    await admin.createTopics([{ topic: 'offsets', numPartitions: 2 }]);
    const producer = new Producer({ bootstrapServers: cluster.bootstrapServers, lingerMs: 0 });
    try {
      await producer.send({ topic: 'offsets', messages: [0, 1, 2, 3].map((index) => ({ value: `v${index}`, partition: 0, timestamp: 1000 + index * 100 })) });
    } finally {
      await producer.close();
    }
    cluster.partition('offsets', 0).deleteBefore(0);
    const p0 = { topic: 'offsets', partition: 0 };
    const listed = await admin.listOffsets([
      { ...p0, spec: 'earliest' },
      { topic: 'offsets', partition: 1, spec: 'latest' },
    ]);
    expect(listed.map((entry) => entry.offset)).toEqual([0, 0]);
    expect((await admin.listOffsets([{ ...p0, spec: 'latest' }]))[0]!.offset).toBe(4);
    expect((await admin.listOffsets([{ ...p0, spec: { timestamp: 1150 } }]))[0]).toMatchObject({ offset: 2, timestamp: 1200 });
    expect((await admin.listOffsets([{ ...p0, spec: 'max-timestamp' }]))[0]).toMatchObject({ offset: 3, timestamp: 1300 });
    expect((await admin.listOffsets([{ ...p0, spec: { timestamp: 9999 } }]))[0]!.offset).toBe(-1);

    cluster.moveLeader('offsets', 0, 3);
    expect((await admin.listOffsets([{ ...p0, spec: 'latest' }]))[0]).toMatchObject({ offset: 4, leaderEpoch: 1 });
    const failure = await failureOf(admin.listOffsets([{ topic: 'offsets', partition: 9, spec: 'latest' }]));
    expect(failure.code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    const unknown = await failureOf(admin.listOffsets([{ topic: 'ghost', partition: 0, spec: 'latest' }, { ...p0, spec: 'earliest' }]));
    expect(unknown.failures.get('ghost-0')?.code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(unknown.results).toMatchObject([{ topic: 'offsets', partition: 0, offset: 0 }]);
  });
});
