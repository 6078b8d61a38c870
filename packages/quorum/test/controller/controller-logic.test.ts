import { describe, it, expect } from 'vitest';
import { RaftkaError } from '@raftka/protocol';
import { TestCluster } from './cluster-fixture.js';
import { NO_LEADER } from '../../src/metadata/metadata-image.js';
import { MetadataPublisher } from '../../src/metadata/metadata-publisher.js';
import { decodeMetadataSnapshot, encodeMetadataSnapshot } from '../../src/metadata/metadata-snapshot.js';
import { PRODUCER_ID_BLOCK_SIZE } from '../../src/controller/controller-logic.js';

function thrownCode(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    if (error instanceof RaftkaError) return error.code;
    throw error;
  }
  return undefined;
}

describe('placement', () => {
  it('spreads 6 partitions of RF 3 over 3 brokers: each leads 2 and holds 6 replicas', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    cluster.createTopic('orders', 6, 3);
    const leaders = new Map<number, number>();
    const replicas = new Map<number, number>();
    for (const partition of cluster.image.topicByName('orders')!.partitions) {
      expect(new Set(partition.replicas).size).toBe(3);
      expect(partition.leader).toBe(partition.replicas[0]);
      expect(partition.isr).toEqual(partition.replicas);
      leaders.set(partition.leader, (leaders.get(partition.leader) ?? 0) + 1);
      for (const brokerId of partition.replicas) replicas.set(brokerId, (replicas.get(brokerId) ?? 0) + 1);
    }
    expect([...leaders.entries()].sort()).toEqual([[1, 2], [2, 2], [3, 2]]);
    expect([...replicas.entries()].sort()).toEqual([[1, 6], [2, 6], [3, 6]]);
  });

  it('puts the replicas of a partition on distinct racks and spreads leaders evenly', () => {
    const cluster = new TestCluster({ seed: 7 });
    cluster.startBrokers([1, 2, 3, 4, 5, 6], ['a', 'a', 'b', 'b', 'c', 'c']);
    cluster.createTopic('events', 12, 3);
    const rackOf = (brokerId: number) => cluster.image.brokers.get(brokerId)!.rack;
    const leaders = new Map<number, number>();
    for (const partition of cluster.image.topicByName('events')!.partitions) {
      expect(new Set(partition.replicas.map(rackOf)).size).toBe(3);
      leaders.set(partition.leader, (leaders.get(partition.leader) ?? 0) + 1);
    }
    expect([...leaders.values()]).toEqual([2, 2, 2, 2, 2, 2]);
  });

  it('is reproducible for the same injected random source', () => {
    const assignments = [1, 2].map(() => {
      const cluster = new TestCluster({ seed: 99 });
      cluster.startBrokers([1, 2, 3, 4]);
      const topicId = cluster.createTopic('t', 5, 2);
      return { topicId, replicas: cluster.image.topicByName('t')!.partitions.map((partition) => partition.replicas) };
    });
    expect(assignments[0]).toEqual(assignments[1]);
  });
});

describe('topic validation', () => {
  const cluster = new TestCluster();
  cluster.startBrokers([1, 2, 3]);
  cluster.createTopic('existing.topic', 1, 1);
  const errorOf = (topic: Parameters<typeof cluster.logic.createTopics>[1]['topics'][number]) =>
    cluster.logic.createTopics(cluster.image, { topics: [topic] }).response.topics[0]!.error?.code;

  it('rejects illegal names as Kafka does', () => {
    for (const name of ['', '.', '..', 'a'.repeat(250), 'has space', 'slash/name', 'ünïcode']) {
      expect(errorOf({ name })).toBe('INVALID_TOPIC_EXCEPTION');
    }
    expect(errorOf({ name: 'a'.repeat(249) })).toBeUndefined();
    expect(errorOf({ name: 'Valid_name-1.2' })).toBeUndefined();
    expect(errorOf({ name: 'existing_topic' })).toBe('INVALID_TOPIC_EXCEPTION');
    expect(errorOf({ name: 'existing.topic' })).toBe('TOPIC_ALREADY_EXISTS');
  });

  it('refuses duplicate and colliding names within one request', () => {
    const response = cluster.logic.createTopics(cluster.image, {
      topics: [{ name: 'dup' }, { name: 'dup' }, { name: 'col.lide' }, { name: 'col_lide' }],
    }).response.topics;
    expect(response.map((topic) => topic.error?.code)).toEqual(['INVALID_REQUEST', 'INVALID_REQUEST', undefined, 'INVALID_TOPIC_EXCEPTION']);
  });

  it('checks partitions, replication factor and configs', () => {
    expect(errorOf({ name: 'p0', numPartitions: 0 })).toBe('INVALID_PARTITIONS');
    expect(errorOf({ name: 'rf4', replicationFactor: 4 })).toBe('INVALID_REPLICATION_FACTOR');
    expect(errorOf({ name: 'rf0', replicationFactor: 0 })).toBe('INVALID_REPLICATION_FACTOR');
    expect(errorOf({ name: 'cfg', configs: { 'retention.ms': 'soon' } })).toBe('INVALID_CONFIG');
    expect(errorOf({ name: 'cfg', configs: { 'no.such.key': '1' } })).toBe('INVALID_CONFIG');
    expect(errorOf({ name: 'cfg', configs: { 'cleanup.policy': 'compact,delete', 'min.insync.replicas': '2' } })).toBeUndefined();
    expect(errorOf({ name: 'asg', assignments: [[1, 1]] })).toBe('INVALID_REPLICA_ASSIGNMENT');
    expect(errorOf({ name: 'asg', assignments: [[1, 9]] })).toBe('INVALID_REPLICA_ASSIGNMENT');
  });

  it('refuses a request creating more than 10,000 partitions with POLICY_VIOLATION, as Kafka does', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    const response = cluster.logic.createTopics(cluster.image, {
      topics: [
        { name: 'big-a', numPartitions: 6_000, replicationFactor: 1 },
        { name: 'big-b', numPartitions: 6_000, replicationFactor: 1 },
      ],
    });
    expect(response.response.topics.map((topic) => topic.error?.code)).toEqual([undefined, 'POLICY_VIOLATION']);
    expect(response.records.filter((record) => record.type === 'partition')).toHaveLength(6_000);
  });

  it('uses num.partitions and default.replication.factor, and writes nothing when validating only', () => {
    const defaults = new TestCluster({ config: { numPartitions: 4, defaultReplicationFactor: 2 } });
    defaults.startBrokers([1, 2]);
    const dry = defaults.logic.createTopics(defaults.image, { topics: [{ name: 'd' }], validateOnly: true });
    expect(dry.records).toEqual([]);
    expect(dry.response.topics[0]).toMatchObject({ numPartitions: 4, replicationFactor: 2 });
    defaults.createTopic('d', -1, -1);
    expect(defaults.image.topicByName('d')!.partitions.map((partition) => partition.replicas.length)).toEqual([2, 2, 2, 2]);
  });

  it('leaves fenced brokers of an explicit assignment out of the new ISR and leadership', () => {
    const fenced = new TestCluster();
    fenced.startBrokers([1, 2, 3]);
    fenced.fence(1);
    fenced.commit(fenced.logic.createTopics(fenced.image, { topics: [{ name: 'a', assignments: [[1, 2, 3]] }] }));
    expect(fenced.partition('a', 0)).toMatchObject({ replicas: [1, 2, 3], isr: [2, 3], leader: 2 });
    fenced.fence(2);
    fenced.fence(3);
    expect(fenced.logic.createTopics(fenced.image, { topics: [{ name: 'b', assignments: [[1, 2]] }] }).response.topics[0]!.error?.code).toBe('INVALID_REPLICA_ASSIGNMENT');
  });

  it('counts only unfenced brokers for the replication factor', () => {
    const small = new TestCluster();
    small.startBrokers([1, 2, 3]);
    small.fence(3);
    expect(small.logic.createTopics(small.image, { topics: [{ name: 'x', replicationFactor: 3 }] }).response.topics[0]!.error?.code).toBe('INVALID_REPLICATION_FACTOR');
  });
});

describe('topics and partitions', () => {
  it('deletes topics and answers unknown names per topic', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1]);
    cluster.createTopic('gone', 2, 1, { 'retention.ms': '1000' });
    const response = cluster.commit(cluster.logic.deleteTopics(cluster.image, { names: ['gone', 'never'] }));
    expect(response.topics[0]!.error).toBeUndefined();
    expect(response.topics[1]!.error?.code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(cluster.image.topicByName('gone')).toBeUndefined();
    expect(cluster.image.partitionsOnBroker(1).size).toBe(0);
    expect(cluster.image.topicConfigs.has('gone')).toBe(false);
    cluster.createTopic('gone', 1, 1);
  });

  it('adds partitions with the topic replication factor and refuses to shrink', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    cluster.createTopic('grow', 3, 2);
    const response = cluster.commit(cluster.logic.createPartitions(cluster.image, { topics: [{ name: 'grow', count: 6 }, { name: 'missing', count: 2 }] }));
    expect(response.topics[0]!.error).toBeUndefined();
    expect(response.topics[1]!.error?.code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    const partitions = cluster.image.topicByName('grow')!.partitions;
    expect(partitions).toHaveLength(6);
    const leaders = partitions.map((partition) => partition.leader).sort();
    expect(leaders).toEqual([1, 1, 2, 2, 3, 3]);
    expect(partitions.every((partition) => partition.replicas.length === 2)).toBe(true);
    const shrink = cluster.logic.createPartitions(cluster.image, { topics: [{ name: 'grow', count: 6 }] });
    expect(shrink.response.topics[0]!.error?.code).toBe('INVALID_PARTITIONS');
  });
});

describe('broker registration and heartbeats', () => {
  it('starts fenced, unfences once caught up with its own registration', () => {
    const cluster = new TestCluster();
    cluster.register(1);
    const registeredAt = cluster.image.brokers.get(1)!.registeredAtOffset;
    expect(cluster.image.brokers.get(1)!.fenced).toBe(true);
    expect(cluster.heartbeat(1, { metadataOffset: registeredAt - 1 })).toMatchObject({ isCaughtUp: false, isFenced: true });
    expect(cluster.image.brokers.get(1)!.fenced).toBe(true);
    expect(cluster.heartbeat(1, { metadataOffset: registeredAt })).toMatchObject({ isCaughtUp: true, isFenced: false });
    expect(cluster.image.brokers.get(1)!.fenced).toBe(false);
  });

  it('keeps a broker fenced by session expiry fenced until it has applied its own fencing', () => {
    // The broker was cut off (or frozen) past its session: it still holds the metadata from
    // before, in which it leads partitions that now have other leaders. Unfencing it on the
    // strength of its registration alone would let it serve that stale leadership.
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    cluster.createTopic('t', 3, 3);
    const before = cluster.image.lastAppliedOffset;
    cluster.fence(1);
    const fencedAt = cluster.image.brokers.get(1)!.fencedAtOffset!;
    expect(fencedAt).toBeGreaterThan(before);
    expect(cluster.heartbeat(1, { metadataOffset: before })).toMatchObject({ isCaughtUp: false, isFenced: true });
    expect(cluster.image.brokers.get(1)!.fenced).toBe(true);
    expect(cluster.heartbeat(1, { metadataOffset: fencedAt })).toMatchObject({ isCaughtUp: true, isFenced: false });
    expect(cluster.image.brokers.get(1)!.fenced).toBe(false);
    // A snapshot keeps the offset (through proto/metadata.proto), so a controller that starts from one decides the same.
    cluster.fence(1);
    const refencedAt = cluster.image.brokers.get(1)!.fencedAtOffset!;
    const restored = decodeMetadataSnapshot(encodeMetadataSnapshot(cluster.image));
    expect(restored.brokers.get(1)!.fencedAtOffset).toBe(refencedAt);
  });

  it('treats a retry with the same incarnation as idempotent and a new incarnation as a restart', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    cluster.createTopic('t', 3, 3);
    const oldEpoch = cluster.brokerEpochs.get(1)!;
    expect(cluster.logic.registerBroker(cluster.image, { brokerId: 1, incarnationId: 'incarnation-1', endpoints: [] })).toEqual({
      records: [],
      response: { brokerEpoch: oldEpoch },
    });
    const led = cluster.image.topicByName('t')!.partitions.filter((partition) => partition.leader === 1);
    expect(led.length).toBe(1);
    const newEpoch = cluster.register(1, undefined, 'incarnation-1b');
    expect(newEpoch).toBeGreaterThan(cluster.image.brokers.get(3)!.brokerEpoch);
    expect(cluster.image.brokers.get(1)).toMatchObject({ fenced: true, incarnationId: 'incarnation-1b', brokerEpoch: newEpoch });
    for (const partition of cluster.image.topicByName('t')!.partitions) {
      expect(partition.leader).not.toBe(1);
      expect(partition.isr).not.toContain(1);
    }
    expect(thrownCode(() => cluster.logic.brokerHeartbeat(cluster.image, { brokerId: 1, brokerEpoch: oldEpoch, currentMetadataOffset: 99, wantFence: false, wantShutDown: false }))).toBe(
      'STALE_BROKER_EPOCH',
    );
    expect(thrownCode(() => cluster.logic.brokerHeartbeat(cluster.image, { brokerId: 7, brokerEpoch: 1, currentMetadataOffset: 0, wantFence: false, wantShutDown: false }))).toBe(
      'BROKER_ID_NOT_REGISTERED',
    );
  });

  it('performs a controlled shutdown: leadership moves first, then the broker is fenced and told to stop', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    cluster.createTopic('t', 6, 3);
    const first = cluster.heartbeat(2, { wantShutDown: true });
    expect(first).toMatchObject({ isFenced: false, shouldShutDown: false });
    expect(cluster.image.brokers.get(2)!.inControlledShutdown).toBe(true);
    for (const partition of cluster.image.topicByName('t')!.partitions) {
      expect(partition.leader).not.toBe(2);
      expect(partition.isr).not.toContain(2);
    }
    // A shutting-down broker gets no new replicas.
    expect(cluster.logic.createTopics(cluster.image, { topics: [{ name: 'x', replicationFactor: 3 }] }).response.topics[0]!.error?.code).toBe('INVALID_REPLICATION_FACTOR');
    const second = cluster.heartbeat(2, { wantShutDown: true });
    expect(second).toMatchObject({ isFenced: true, shouldShutDown: true });
    expect(cluster.image.brokers.get(2)).toMatchObject({ fenced: true, inControlledShutdown: false });
  });

  it('fences a broker that asks for it', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2]);
    cluster.createTopic('t', 2, 2);
    expect(cluster.heartbeat(1, { wantFence: true }).isFenced).toBe(true);
    expect(cluster.image.brokers.get(1)!.fenced).toBe(true);
    expect(cluster.image.topicByName('t')!.partitions.every((partition) => partition.leader === 2)).toBe(true);
  });
});

describe('leader election', () => {
  it('elects the first live ISR member in assignment order, bumps the leader epoch and drops the dead broker from the ISR', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    cluster.commit(cluster.logic.createTopics(cluster.image, { topics: [{ name: 't', assignments: [[1, 3, 2]] }] }));
    const before = { ...cluster.partition('t', 0) };
    cluster.fence(1);
    const after = cluster.partition('t', 0);
    expect(after.leader).toBe(3);
    expect(after.leaderEpoch).toBe(before.leaderEpoch + 1);
    expect(after.partitionEpoch).toBe(before.partitionEpoch + 1);
    expect(after.isr).toEqual([3, 2]);
    // Fencing a follower changes the ISR but not the leader epoch.
    cluster.fence(2);
    expect(cluster.partition('t', 0)).toMatchObject({ leader: 3, leaderEpoch: before.leaderEpoch + 1, isr: [3] });
  });

  it('keeps a partition without live ISR member leaderless until that member returns (clean election)', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2]);
    cluster.commit(cluster.logic.createTopics(cluster.image, { topics: [{ name: 't', assignments: [[1, 2]] }] }));
    cluster.fence(2);
    cluster.fence(1);
    expect(cluster.partition('t', 0)).toMatchObject({ leader: NO_LEADER, isr: [1] });
    // Broker 2 comes back but is out of sync: it must not be elected.
    cluster.heartbeat(2);
    expect(cluster.partition('t', 0)).toMatchObject({ leader: NO_LEADER, isr: [1] });
    cluster.heartbeat(1);
    expect(cluster.partition('t', 0)).toMatchObject({ leader: 1, isr: [1] });
  });

  it('elects a live out-of-sync replica when unclean.leader.election.enable=true for the topic', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2]);
    cluster.commit(
      cluster.logic.createTopics(cluster.image, {
        topics: [{ name: 't', assignments: [[1, 2]], configs: { 'unclean.leader.election.enable': 'true' } }],
      }),
    );
    cluster.fence(2);
    cluster.fence(1);
    cluster.heartbeat(2);
    expect(cluster.partition('t', 0)).toMatchObject({ leader: 2, isr: [2] });
  });

  it('elects leaderless partitions once unclean election is enabled later', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2]);
    cluster.commit(cluster.logic.createTopics(cluster.image, { topics: [{ name: 't', assignments: [[1, 2]] }] }));
    cluster.fence(2);
    cluster.fence(1);
    cluster.heartbeat(2);
    expect(cluster.logic.electLeaderlessPartitions(cluster.image).records).toEqual([]);
    cluster.commit(
      cluster.logic.incrementalAlterConfigs(cluster.image, {
        resources: [{ resourceType: 'topic', resourceName: 't', ops: [{ name: 'unclean.leader.election.enable', op: 'set', value: 'true' }] }],
      }),
    );
    expect(cluster.commit(cluster.logic.electLeaderlessPartitions(cluster.image))).toEqual({ electedCount: 1, more: false });
    expect(cluster.partition('t', 0)).toMatchObject({ leader: 2, isr: [2], leaderEpoch: 2 });
  });

  it('follows the cluster-wide dynamic unclean.leader.election.enable', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2]);
    cluster.commit(cluster.logic.createTopics(cluster.image, { topics: [{ name: 't', assignments: [[1, 2]] }] }));
    cluster.commit(
      cluster.logic.incrementalAlterConfigs(cluster.image, {
        resources: [{ resourceType: 'broker', resourceName: '', ops: [{ name: 'unclean.leader.election.enable', op: 'set', value: 'true' }] }],
      }),
    );
    cluster.fence(2);
    cluster.fence(1);
    cluster.heartbeat(2);
    expect(cluster.partition('t', 0).leader).toBe(2);
  });

  it('moves leadership back to the preferred replica when it is healthy and in the ISR', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    cluster.createTopic('t', 3, 3);
    cluster.fence(1);
    cluster.heartbeat(1);
    // Broker 1 is back but out of the ISRs: no preferred election yet.
    expect(cluster.logic.electPreferredLeaders(cluster.image, { periodic: true }).records).toEqual([]);
    for (const partition of cluster.image.topicByName('t')!.partitions) {
      cluster.commit(
        cluster.logic.alterPartition(cluster.image, {
          brokerId: partition.leader,
          brokerEpoch: cluster.brokerEpochs.get(partition.leader)!,
          topics: [{ topicId: partition.topicId, partitions: [{ partitionId: partition.partitionId, leaderEpoch: partition.leaderEpoch, partitionEpoch: partition.partitionEpoch, newIsr: [...partition.isr, 1] }] }],
        }),
      );
    }
    const disabled = new TestCluster({ config: { autoLeaderRebalanceEnable: false }, publisher: cluster.publisher });
    expect(disabled.logic.electPreferredLeaders(cluster.image, { periodic: true }).records).toEqual([]);
    const result = cluster.logic.electPreferredLeaders(cluster.image, { periodic: true });
    expect(result.response).toEqual({ electedCount: 1, more: false });
    cluster.commit(result);
    for (const partition of cluster.image.topicByName('t')!.partitions) expect(partition.leader).toBe(partition.replicas[0]);
  });
});

describe('AlterPartition', () => {
  function setup() {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    cluster.commit(cluster.logic.createTopics(cluster.image, { topics: [{ name: 't', assignments: [[1, 2, 3]] }] }));
    const partition = cluster.partition('t', 0);
    const request = (newIsr: number[], overrides: { brokerId?: number; leaderEpoch?: number; partitionEpoch?: number } = {}) => {
      const brokerId = overrides.brokerId ?? 1;
      return {
        brokerId,
        brokerEpoch: cluster.brokerEpochs.get(brokerId)!,
        topics: [{ topicId: partition.topicId, partitions: [{ partitionId: 0, leaderEpoch: overrides.leaderEpoch ?? partition.leaderEpoch, partitionEpoch: overrides.partitionEpoch ?? partition.partitionEpoch, newIsr }] }],
      };
    };
    return { cluster, partition, request };
  }
  const codeOf = (response: { topics: { partitions: { error?: { code: string } }[] }[] }) => response.topics[0]!.partitions[0]!.error?.code;

  it('accepts an ISR change from the leader with current epochs and bumps the partition epoch', () => {
    const { cluster, partition, request } = setup();
    const response = cluster.commit(cluster.logic.alterPartition(cluster.image, request([1, 2])));
    expect(codeOf(response)).toBeUndefined();
    expect(response.topics[0]!.partitions[0]).toMatchObject({ leader: 1, leaderEpoch: 0, isr: [1, 2], partitionEpoch: 1 });
    expect(partition).toMatchObject({ isr: [1, 2], partitionEpoch: 1, leaderEpoch: 0 });
  });

  it('rejects stale partition epochs, stale leader epochs, non-leaders and ineligible members', () => {
    const { cluster, request } = setup();
    cluster.commit(cluster.logic.alterPartition(cluster.image, request([1, 2])));
    expect(codeOf(cluster.logic.alterPartition(cluster.image, request([1], { partitionEpoch: 0 })).response)).toBe('INVALID_UPDATE_VERSION');
    expect(codeOf(cluster.logic.alterPartition(cluster.image, request([1], { leaderEpoch: 5 })).response)).toBe('FENCED_LEADER_EPOCH');
    expect(codeOf(cluster.logic.alterPartition(cluster.image, request([2], { brokerId: 2 })).response)).toBe('NOT_LEADER_OR_FOLLOWER');
    expect(codeOf(cluster.logic.alterPartition(cluster.image, request([2, 3])).response)).toBe('INVALID_REQUEST');
    expect(codeOf(cluster.logic.alterPartition(cluster.image, request([1, 4])).response)).toBe('INVALID_REQUEST');
    cluster.fence(3);
    expect(codeOf(cluster.logic.alterPartition(cluster.image, request([1, 2, 3])).response)).toBe('INELIGIBLE_REPLICA');
    expect(thrownCode(() => cluster.logic.alterPartition(cluster.image, { ...request([1]), brokerEpoch: 12345 }))).toBe('STALE_BROKER_EPOCH');
  });

  it('refuses an ISR expansion computed before a fence (the leader epoch moved on)', () => {
    const { cluster, partition, request } = setup();
    const stale = request([1, 2, 3]);
    cluster.fence(1);
    expect(partition.leader).toBe(2);
    expect(codeOf(cluster.logic.alterPartition(cluster.image, stale).response)).toBe('NOT_LEADER_OR_FOLLOWER');
  });
});

describe('configs', () => {
  it('describes defaults and overrides and alters topic configs incrementally', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1]);
    cluster.createTopic('t', 1, 1, { 'retention.ms': '1000' });
    const describe = () => {
      const configs = cluster.logic.describeConfigs(cluster.image, { resources: [{ resourceType: 'topic', resourceName: 't' }] }).results[0]!.configs;
      return new Map(configs.map((config) => [config.name, config]));
    };
    expect(describe().get('retention.ms')).toMatchObject({ value: '1000', source: 'topic' });
    expect(describe().get('cleanup.policy')).toMatchObject({ value: 'delete', source: 'default', isDefault: true });
    expect(describe().get('min.insync.replicas')).toMatchObject({ value: '1', source: 'static-broker' });
    const response = cluster.commit(
      cluster.logic.incrementalAlterConfigs(cluster.image, {
        resources: [
          {
            resourceType: 'topic',
            resourceName: 't',
            ops: [
              { name: 'retention.ms', op: 'delete' },
              { name: 'cleanup.policy', op: 'append', value: 'compact' },
              { name: 'max.message.bytes', op: 'set', value: '2000000' },
            ],
          },
          { resourceType: 'topic', resourceName: 'missing', ops: [{ name: 'retention.ms', op: 'set', value: '1' }] },
        ],
      }),
    );
    expect(response.results[0]!.error).toBeUndefined();
    expect(response.results[1]!.error?.code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(describe().get('retention.ms')).toMatchObject({ source: 'default', value: String(7 * 24 * 3600 * 1000) });
    expect(describe().get('cleanup.policy')).toMatchObject({ value: 'delete,compact', source: 'topic' });
    cluster.commit(
      cluster.logic.incrementalAlterConfigs(cluster.image, {
        resources: [{ resourceType: 'topic', resourceName: 't', ops: [{ name: 'cleanup.policy', op: 'subtract', value: 'delete' }] }],
      }),
    );
    expect(cluster.image.configsOf('topic', 't').get('cleanup.policy')).toBe('compact');
  });

  it('rejects invalid values, unknown keys and list operations on scalar keys', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1]);
    cluster.createTopic('t', 1, 1);
    const errorOf = (resourceType: 'topic' | 'broker', resourceName: string, ops: { name: string; op: 'set' | 'delete' | 'append' | 'subtract'; value?: string }[]) =>
      cluster.logic.incrementalAlterConfigs(cluster.image, { resources: [{ resourceType, resourceName, ops }] }).response.results[0]!.error?.code;
    expect(errorOf('topic', 't', [{ name: 'min.cleanable.dirty.ratio', op: 'set', value: '2' }])).toBe('INVALID_CONFIG');
    expect(errorOf('topic', 't', [{ name: 'compression.type', op: 'set', value: 'brotli' }])).toBe('INVALID_CONFIG');
    expect(errorOf('topic', 't', [{ name: 'bogus', op: 'set', value: '1' }])).toBe('INVALID_CONFIG');
    expect(errorOf('topic', 't', [{ name: 'retention.ms', op: 'append', value: '1' }])).toBe('INVALID_CONFIG');
    expect(errorOf('topic', 't', [{ name: 'cleanup.policy', op: 'append', value: 'shred' }])).toBe('INVALID_CONFIG');
    expect(errorOf('broker', '', [{ name: 'broker.session.timeout.ms', op: 'set', value: '1' }])).toBe('INVALID_CONFIG');
    expect(errorOf('broker', '', [{ name: 'num.partitions', op: 'set', value: '0' }])).toBe('INVALID_CONFIG');
    expect(errorOf('broker', 'x', [{ name: 'num.partitions', op: 'set', value: '3' }])).toBe('INVALID_REQUEST');
    expect(errorOf('broker', '1', [{ name: 'num.partitions', op: 'set', value: '3' }])).toBeUndefined();
  });

  it('applies dynamic cluster defaults to topic creation and describes broker configs', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2]);
    cluster.commit(
      cluster.logic.incrementalAlterConfigs(cluster.image, {
        resources: [{ resourceType: 'broker', resourceName: '', ops: [{ name: 'num.partitions', op: 'set', value: '5' }] }],
      }),
    );
    cluster.createTopic('d', -1, -1);
    expect(cluster.image.topicByName('d')!.partitions).toHaveLength(5);
    const configs = cluster.logic.describeConfigs(cluster.image, { resources: [{ resourceType: 'broker', resourceName: '1', keys: ['num.partitions', 'broker.session.timeout.ms'] }] })
      .results[0]!.configs;
    expect(configs).toHaveLength(2);
    expect(configs.find((config) => config.name === 'num.partitions')).toMatchObject({ value: '5', source: 'dynamic-default-broker', readOnly: false });
    expect(configs.find((config) => config.name === 'broker.session.timeout.ms')).toMatchObject({ value: '3000', readOnly: true });
  });
});

describe('producer ids', () => {
  it('hands out blocks that never overlap, even across a controller failover', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2]);
    const blocks: number[] = [];
    const allocate = (target: TestCluster, brokerId: number) =>
      target.commit(target.logic.allocateProducerIds(target.image, { brokerId, brokerEpoch: target.brokerEpochs.get(brokerId)! }));
    for (let i = 0; i < 3; i++) blocks.push(allocate(cluster, 1 + (i % 2)).firstProducerId);
    // An allocation computed but never committed (the old leader died before commit) hands out nothing.
    cluster.logic.allocateProducerIds(cluster.image, { brokerId: 1, brokerEpoch: cluster.brokerEpochs.get(1)! });

    // Failover: a new controller replays the committed log into a fresh image.
    const replayed = new MetadataPublisher();
    for (const batch of cluster.log) replayed.handleCommitted(batch);
    const successor = new TestCluster({ publisher: replayed, seed: 1 });
    for (const [brokerId, brokerEpoch] of cluster.brokerEpochs) successor.brokerEpochs.set(brokerId, brokerEpoch);
    for (let i = 0; i < 3; i++) blocks.push(allocate(successor, 1).firstProducerId);

    const sorted = [...blocks].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]! - sorted[i - 1]!).toBeGreaterThanOrEqual(PRODUCER_ID_BLOCK_SIZE);
    expect(new Set(blocks).size).toBe(6);
    expect(thrownCode(() => successor.logic.allocateProducerIds(successor.image, { brokerId: 1, brokerEpoch: 999 }))).toBe('STALE_BROKER_EPOCH');
  });
});
