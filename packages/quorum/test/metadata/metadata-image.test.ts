import { describe, it, expect } from 'vitest';
import { TestCluster } from '../controller/cluster-fixture.js';
import { MetadataImage } from '../../src/metadata/metadata-image.js';
import { MetadataPublisher, type MetadataUpdate } from '../../src/metadata/metadata-publisher.js';
import {
  METADATA_SNAPSHOT_VERSION,
  SNAPSHOT_RECORDS_PER_SLICE,
  decodeMetadataSnapshot,
  encodeMetadataSnapshot,
  encodeMetadataSnapshotYielding,
  imageToRecords,
} from '../../src/metadata/metadata-snapshot.js';
import { metadataProtoTypes } from '../../src/metadata/metadata-records.js';

/** A cluster with some history: brokers restarted and fenced, topics created, altered, deleted. */
function busyCluster(): TestCluster {
  const cluster = new TestCluster({ seed: 3 });
  cluster.startBrokers([1, 2, 3, 4], ['a', 'b', 'a', 'b']);
  cluster.createTopic('orders', 8, 3, { 'retention.ms': '60000' });
  cluster.createTopic('gone', 2, 2);
  cluster.createTopic('logs', 3, 2);
  cluster.commit(cluster.logic.deleteTopics(cluster.image, { names: ['gone'] }));
  cluster.fence(2);
  cluster.register(3, 'a', 'second-life');
  cluster.heartbeat(4, { wantShutDown: true });
  cluster.commit(cluster.logic.allocateProducerIds(cluster.image, { brokerId: 1, brokerEpoch: cluster.brokerEpochs.get(1)! }));
  cluster.commit(
    cluster.logic.incrementalAlterConfigs(cluster.image, {
      resources: [{ resourceType: 'broker', resourceName: '', ops: [{ name: 'auto.leader.rebalance.enable', op: 'set', value: 'false' }] }],
    }),
  );
  cluster.commit(cluster.logic.createPartitions(cluster.image, { topics: [{ name: 'logs', count: 5 }] }));
  return cluster;
}

function describeImage(image: MetadataImage) {
  return {
    records: imageToRecords(image),
    brokers: [...image.brokers.values()].sort((a, b) => a.brokerId - b.brokerId),
    highestBrokerEpoch: image.highestBrokerEpoch,
    nextProducerId: image.nextProducerId,
    lastAppliedOffset: image.lastAppliedOffset,
    lastAppliedEpoch: image.lastAppliedEpoch,
    partitionCount: image.partitionCount,
    replicaIndex: [1, 2, 3, 4].map((brokerId) => [...image.partitionsOnBroker(brokerId)].map((partition) => `${partition.topicId}-${partition.partitionId}`).sort()),
  };
}

describe('MetadataImage', () => {
  it('is identical whether rebuilt by replaying the log or by loading a snapshot', () => {
    const cluster = busyCluster();
    const replayed = new MetadataPublisher();
    for (const batch of cluster.log) replayed.handleCommitted(batch);
    const bytes = encodeMetadataSnapshot(cluster.image);
    const loaded = decodeMetadataSnapshot(bytes, { endOffset: cluster.image.lastAppliedOffset + 1, epoch: cluster.image.lastAppliedEpoch });
    expect(describeImage(replayed.image)).toEqual(describeImage(cluster.image));
    expect(describeImage(loaded)).toEqual(describeImage(cluster.image));
    expect(loaded.topicConfigs).toEqual(cluster.image.topicConfigs);
    expect(loaded.brokerConfigs).toEqual(cluster.image.brokerConfigs);
    // A snapshot of the loaded image is byte-identical: the encoding is deterministic.
    expect(Buffer.from(encodeMetadataSnapshot(loaded)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('takes the same snapshot bytes when it yields to the event loop between slices', async () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    cluster.createTopic('wide', SNAPSHOT_RECORDS_PER_SLICE + 10, 3);
    const yielded = await encodeMetadataSnapshotYielding(cluster.image);
    expect(Buffer.from(yielded).equals(Buffer.from(encodeMetadataSnapshot(cluster.image)))).toBe(true);
  });

  it('writes snapshots that are MetadataSnapshot messages of proto/metadata.proto, and rejects damaged ones', () => {
    const cluster = busyCluster();
    const bytes = encodeMetadataSnapshot(cluster.image);
    const type = metadataProtoTypes().snapshot;
    const message = type.toObject(type.decode(bytes), { longs: Number }) as { version: number; lastAppliedOffset: number; records: unknown[] };
    expect(message.version).toBe(METADATA_SNAPSHOT_VERSION);
    expect(message.lastAppliedOffset).toBe(cluster.image.lastAppliedOffset);
    expect(message.records).toHaveLength(imageToRecords(cluster.image).length);
    expect(() => decodeMetadataSnapshot(bytes.subarray(0, bytes.length - 5))).toThrow(/damaged/);
    const future = type.encode({ version: METADATA_SNAPSHOT_VERSION + 1, records: [] }).finish();
    expect(() => decodeMetadataSnapshot(future)).toThrow(/version/);
  });

  it('keeps the broker -> partitions index in step with replica changes and topic removal', () => {
    const cluster = busyCluster();
    for (const brokerId of [1, 2, 3, 4]) {
      const expected = [...cluster.image.topicsById.values()].flatMap((topic) => topic.partitions.filter((partition) => partition.replicas.includes(brokerId)));
      expect(new Set(cluster.image.partitionsOnBroker(brokerId))).toEqual(new Set(expected));
    }
  });

  it('continues the log after a snapshot load: later batches apply on top', () => {
    const cluster = busyCluster();
    const endOffset = cluster.image.lastAppliedOffset + 1;
    const follower = new MetadataPublisher();
    follower.loadSnapshot(encodeMetadataSnapshot(cluster.image), { endOffset, epoch: 1 });
    cluster.createTopic('later', 2, 1);
    cluster.heartbeat(3);
    for (const batch of cluster.log.filter((entry) => entry.offset >= endOffset)) follower.handleCommitted(batch);
    // Redelivered old batches are ignored.
    expect(follower.handleCommitted(cluster.log[0]!)).toBeUndefined();
    expect(describeImage(follower.image)).toEqual(describeImage(cluster.image));
  });
});

describe('MetadataDelta', () => {
  it('tells a broker which partitions it now leads, follows, or stopped replicating', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    const updates: MetadataUpdate[] = [];
    cluster.publisher.subscribe((update) => updates.push(update));
    cluster.commit(cluster.logic.createTopics(cluster.image, { topics: [{ name: 't', assignments: [[1, 2], [2, 3], [3, 1]] }] }));
    let local = updates.at(-1)!.delta.localChanges(1);
    expect(local.leaders.map((entry) => entry.partition.partitionId)).toEqual([0]);
    expect(local.followers.map((entry) => entry.partition.partitionId)).toEqual([2]);
    expect(local.leaders[0]!.isNew && local.followers[0]!.isNew).toBe(true);
    expect(updates.at(-1)!.delta.createdTopics().map((topic) => topic.name)).toEqual(['t']);

    // Broker 3 dies: broker 1 takes over partition 2; partition 1's leader changes to 2 (no news for broker 1).
    cluster.fence(3);
    local = updates.at(-1)!.delta.localChanges(1);
    expect(local.leaders.map((entry) => [entry.partition.partitionId, entry.partition.leaderEpoch, entry.isNew])).toEqual([[2, 1, false]]);
    expect(local.followers).toEqual([]);
    const local2 = updates.at(-1)!.delta.localChanges(2);
    expect(local2.leaders.map((entry) => entry.partition.partitionId)).toEqual([1]);
    expect(updates.at(-1)!.delta.brokerChanges()).toMatchObject([{ brokerId: 3, before: { fenced: false }, after: { fenced: true } }]);

    // An ISR change: the leader hears of it, followers whose leader did not change do not.
    const p0 = cluster.partition('t', 0);
    cluster.commit(
      cluster.logic.alterPartition(cluster.image, {
        brokerId: 1,
        brokerEpoch: cluster.brokerEpochs.get(1)!,
        topics: [{ topicId: p0.topicId, partitions: [{ partitionId: 0, leaderEpoch: p0.leaderEpoch, partitionEpoch: p0.partitionEpoch, newIsr: [1] }] }],
      }),
    );
    expect(updates.at(-1)!.delta.localChanges(1).leaders.map((entry) => entry.partition.isr)).toEqual([[1]]);
    expect(updates.at(-1)!.delta.localChanges(2)).toEqual({ leaders: [], followers: [], stopped: [] });

    cluster.commit(cluster.logic.deleteTopics(cluster.image, { names: ['t'] }));
    local = updates.at(-1)!.delta.localChanges(1);
    expect(local.stopped.map((entry) => [entry.topicName, entry.partitionId, entry.reason])).toEqual([
      ['t', 0, 'topic-deleted'],
      ['t', 2, 'topic-deleted'],
    ]);
    expect(updates.at(-1)!.delta.removedTopicsList().map((topic) => topic.name)).toEqual(['t']);
  });

  it('after a snapshot load, publishes the difference between the old and the new image', () => {
    const cluster = busyCluster();
    const observer = new MetadataPublisher();
    const updates: MetadataUpdate[] = [];
    observer.subscribe((update) => updates.push(update));
    observer.loadSnapshot(encodeMetadataSnapshot(cluster.image), { endOffset: cluster.image.lastAppliedOffset + 1, epoch: 1 });
    expect(updates).toHaveLength(1);
    expect(updates[0]!.cause).toBe('snapshot');
    const local = updates[0]!.delta.localChanges(1);
    const expectedLeaders = [...cluster.image.partitionsOnBroker(1)].filter((partition) => partition.leader === 1).length;
    expect(local.leaders).toHaveLength(expectedLeaders);
    expect(local.leaders.length + local.followers.length).toBe(cluster.image.partitionsOnBroker(1).size);
    expect(updates[0]!.delta.producerIdsAdvanced).toBe(true);

    // A second snapshot from a later state: only the change shows up.
    cluster.fence(1);
    observer.loadSnapshot(encodeMetadataSnapshot(cluster.image), { endOffset: cluster.image.lastAppliedOffset + 1, epoch: 1 });
    const second = updates[1]!.delta;
    expect(second.brokerChanges().map((change) => change.brokerId)).toEqual([1]);
    expect(second.localChanges(1).leaders).toEqual([]);
    expect(second.partitionChanges().every((change) => change.before !== undefined && change.after !== undefined)).toBe(true);
  });
});
