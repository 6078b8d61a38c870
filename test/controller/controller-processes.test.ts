// The controller on real processes: 3 `raftka server` controllers on loopback, and test brokers
// speaking the broker's side of the controller API exactly as brokers do — a BrokerLifecycle
// (register, heartbeat, unfence once caught up) over a ControllerClient, and a MetadataObserver
// following the metadata log. Placement, fencing and re-election, controller failover, error
// answers that change nothing, producer-id blocks across failover, snapshots for observers.

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import {
  BrokerLifecycle,
  ControllerClient,
  MetadataObserver,
  loadControllerService,
  quorumConfigFrom,
  quorumConfigSchema,
  type MetadataImage,
  type PartitionState,
} from '@raftka/quorum';
import { collectSources, resolveConfig } from '@raftka/protocol';
import { ProcessCluster, waitFor } from '../support/process-cluster.js';

const SESSION_TIMEOUT_MS = 1_500;
const HEARTBEAT_INTERVAL_MS = 250;
const logger = pino({ level: 'silent' });

let cluster: ProcessCluster | undefined;
let scratch: string | undefined;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await cluster?.destroy();
  cluster = undefined;
  if (scratch) await fs.rm(scratch, { recursive: true, force: true });
  scratch = undefined;
});

interface TestBroker {
  brokerId: number;
  lifecycle: BrokerLifecycle;
  observer: MetadataObserver;
}

function votersOf(current: ProcessCluster): string {
  return current.nodes.map((node) => `${node.nodeId}@${node.address}`).join(',');
}

async function startObserver(current: ProcessCluster, nodeId: number): Promise<MetadataObserver> {
  const overrides = {
    'process.roles': 'broker',
    'node.id': String(nodeId),
    'controller.quorum.voters': votersOf(current),
    listeners: 'CLIENT://127.0.0.1:0',
    'log.dirs': path.join(scratch!, `observer-${nodeId}`),
  };
  const values = resolveConfig(quorumConfigSchema, collectSources({ schema: quorumConfigSchema, env: {}, overrides }));
  const observer = await MetadataObserver.start({ config: quorumConfigFrom(values), logger });
  cleanups.push(() => observer.close());
  return observer;
}

async function startBroker(current: ProcessCluster, controller: ControllerClient, brokerId: number): Promise<TestBroker> {
  const observer = await startObserver(current, brokerId);
  const lifecycle = new BrokerLifecycle({
    brokerId,
    endpoints: [{ name: 'CLIENT', host: '127.0.0.1', port: 19_000 + brokerId, securityProtocol: 'PLAINTEXT' }],
    controller,
    metadataOffset: () => observer.lastAppliedOffset,
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    logger,
  });
  lifecycle.start();
  cleanups.push(() => lifecycle.stop());
  return { brokerId, lifecycle, observer };
}

/** Everything about a topic's partitions that every image must agree on. */
function partitionsOf(image: MetadataImage, topic: string): PartitionState[] | undefined {
  return image.topicByName(topic)?.partitions.map((partition) => ({ ...partition }));
}

async function startCluster(): Promise<{ current: ProcessCluster; controller: ControllerClient }> {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-controller-test-'));
  cluster = await ProcessCluster.create({
    voters: 3,
    properties: {
      'broker.session.timeout.ms': String(SESSION_TIMEOUT_MS),
      'broker.heartbeat.interval.ms': String(HEARTBEAT_INTERVAL_MS),
      'metadata.log.snapshot.interval.records': '50',
    },
  });
  const current = cluster;
  onTestFailed(() => current.printLogs());
  current.startAll();
  const controller = new ControllerClient({ controllers: current.nodes.map((node) => node.address), requestTimeoutMs: 10_000 });
  cleanups.push(() => controller.close());
  return { current, controller };
}

/** Calls a controller directly (no redirect following) and returns the raw response. */
function rawCall(address: string, method: string, request: unknown): Promise<Record<string, unknown>> {
  const Service = loadControllerService();
  const client = new Service(address, grpc.credentials.createInsecure()) as unknown as Record<string, (...args: unknown[]) => void> & grpc.Client;
  return new Promise((resolve, reject) => {
    client[method]!(request, { deadline: Date.now() + 5_000 }, (error: Error | null, response: Record<string, unknown>) => {
      client.close();
      if (error) reject(error);
      else resolve(response);
    });
  });
}

describe('controller of real processes', () => {
  it('places, fences, re-elects and fails over; every observer holds the same image', async () => {
    const { current, controller } = await startCluster();
    const brokers = [await startBroker(current, controller, 11), await startBroker(current, controller, 12), await startBroker(current, controller, 13)];
    const watcher = await startObserver(current, 21);
    await waitFor('all three brokers to be registered and unfenced', () => brokers.every((broker) => broker.lifecycle.state === 'active'), 20_000);

    // Create: 6 partitions, RF 3, over 3 brokers.
    const created = await controller.createTopics({ topics: [{ name: 'orders', numPartitions: 6, replicationFactor: 3 }] });
    expect(created.topics[0]!.error).toBeUndefined();
    const observers = [...brokers.map((broker) => broker.observer), watcher];
    for (const observer of observers) await observer.waitFor((image) => image.topicByName('orders')?.partitions.length === 6, 10_000);
    const placed = partitionsOf(watcher.image, 'orders')!;
    for (const partition of placed) {
      expect(new Set(partition.replicas).size).toBe(3);
      expect([...partition.isr].sort()).toEqual([11, 12, 13]);
      expect(partition.leader).toBe(partition.replicas[0]);
    }
    const leadersPerBroker = new Map<number, number>();
    for (const partition of placed) leadersPerBroker.set(partition.leader, (leadersPerBroker.get(partition.leader) ?? 0) + 1);
    expect([...leadersPerBroker.values()]).toEqual([2, 2, 2]);
    for (const observer of observers) expect(partitionsOf(observer.image, 'orders')).toEqual(placed);

    // A standby answers NOT_CONTROLLER naming the active controller.
    const activeAddress = controller.activeController!;
    const standby = current.nodes.find((node) => node.address !== activeAddress)!;
    const redirected = await rawCall(standby.address, 'DescribeConfigs', { resources: [] });
    expect((redirected['error'] as { name: string }).name).toBe('NOT_CONTROLLER');
    expect((redirected['error'] as { activeControllerAddress: string }).activeControllerAddress).toBe(activeAddress);

    // Broker 12 stops heartbeating: fenced within the session timeout, its leaderships move
    // to the next ISR member with a higher leader epoch, and it leaves every ISR.
    const stoppedAt = Date.now();
    brokers[1]!.lifecycle.stop();
    await watcher.waitFor((image) => image.brokers.get(12)?.fenced === true, SESSION_TIMEOUT_MS + 5_000);
    expect(Date.now() - stoppedAt).toBeLessThan(SESSION_TIMEOUT_MS + 2_000);
    const afterFence = partitionsOf(watcher.image, 'orders')!;
    for (const [index, partition] of afterFence.entries()) {
      const before = placed[index]!;
      expect(partition.isr).not.toContain(12);
      if (before.leader === 12) {
        // The first live ISR member in assignment order.
        expect(partition.leader).toBe(before.replicas.find((replica) => replica !== 12 && before.isr.includes(replica)));
        expect(partition.leaderEpoch).toBeGreaterThan(before.leaderEpoch);
      } else {
        expect(partition.leader).toBe(before.leader);
      }
    }
    for (const observer of [brokers[0]!.observer, brokers[2]!.observer]) {
      await observer.waitFor((image) => JSON.stringify(partitionsOf(image, 'orders')) === JSON.stringify(afterFence), 5_000);
    }

    // Producer ids before the failover.
    const firstBlock = await controller.allocateProducerIds({ brokerId: 11, brokerEpoch: brokers[0]!.lifecycle.brokerEpoch });

    // SIGKILL the active controller: another takes over with the same image and keeps working.
    const activeNode = current.nodes.find((node) => node.address === activeAddress)!;
    await activeNode.stop('SIGKILL');
    const secondBlock = await controller.allocateProducerIds({ brokerId: 11, brokerEpoch: brokers[0]!.lifecycle.brokerEpoch });
    expect(controller.activeController).not.toBe(activeAddress);
    expect(secondBlock.firstProducerId).toBeGreaterThanOrEqual(firstBlock.firstProducerId + firstBlock.count);
    const payments = await controller.createTopics({ topics: [{ name: 'payments', numPartitions: 2, replicationFactor: 2 }] });
    expect(payments.topics[0]!.error).toBeUndefined();

    // The new controller keeps fencing: broker 13 stops, and broker 11 ends up leading everything.
    brokers[2]!.lifecycle.stop();
    await watcher.waitFor((image) => image.brokers.get(13)?.fenced === true, SESSION_TIMEOUT_MS + 10_000);
    await watcher.waitFor((image) => image.topicByName('orders')!.partitions.every((partition) => partition.leader === 11), 5_000);
    for (const partition of watcher.image.topicByName('orders')!.partitions) expect(partition.isr).toEqual([11]);
    const finalPartitions = JSON.stringify(partitionsOf(watcher.image, 'orders'));
    await brokers[0]!.observer.waitFor((image) => JSON.stringify(partitionsOf(image, 'orders')) === finalPartitions, 5_000);

    // Broker 12 comes back (a new incarnation): unfenced once caught up, and with
    // unclean.leader.election.enable=false it is not made leader of partitions it is not in sync for.
    const returned = await startBrokerAgain(current, controller, brokers[1]!);
    await waitFor('broker 12 to be active again', () => returned.lifecycle.state === 'active', 15_000);
    await watcher.waitFor((image) => image.brokers.get(12)?.fenced === false, 5_000);
    for (const partition of watcher.image.topicByName('orders')!.partitions) expect(partition.leader).toBe(11);

    // A restarted observer comes back from its snapshot with the same image.
    await watcher.close();
    const restarted = await startObserver(current, 21);
    await restarted.waitFor((image) => JSON.stringify(partitionsOf(image, 'orders')) === JSON.stringify(partitionsOf(brokers[0]!.observer.image, 'orders')) && image.topicByName('payments') !== undefined, 10_000);
    const snapshots = await fs.readdir(path.join(scratch!, 'observer-21', '__cluster_metadata-0'));
    expect(snapshots.length).toBeGreaterThan(0);
  });

  it('bad topic names, impossible replication factors and stale AlterPartition requests get their errors and change nothing', async () => {
    const { current, controller } = await startCluster();
    const brokers = [await startBroker(current, controller, 11), await startBroker(current, controller, 12)];
    await waitFor('both brokers to be active', () => brokers.every((broker) => broker.lifecycle.state === 'active'), 20_000);
    const response = await controller.createTopics({
      topics: [
        { name: 'has space', numPartitions: 1, replicationFactor: 1 },
        { name: '..', numPartitions: 1, replicationFactor: 1 },
        { name: 'x'.repeat(250), numPartitions: 1, replicationFactor: 1 },
        { name: 'too-replicated', numPartitions: 1, replicationFactor: 3 },
        { name: 'good', numPartitions: 2, replicationFactor: 2 },
      ],
    });
    expect(response.topics.map((topic) => topic.error?.code ?? 'NONE')).toEqual([
      'INVALID_TOPIC_EXCEPTION',
      'INVALID_TOPIC_EXCEPTION',
      'INVALID_TOPIC_EXCEPTION',
      'INVALID_REPLICATION_FACTOR',
      'NONE',
    ]);
    const observer = brokers[0]!.observer;
    const image = await observer.waitFor((candidate) => candidate.topicByName('good') !== undefined, 10_000);
    expect(image.topicsById.size).toBe(1);
    const topic = image.topicByName('good')!;
    const partition = { ...topic.partitions[0]! };
    const leader = brokers.find((broker) => broker.brokerId === partition.leader)!;

    // A stale leader epoch and a stale partition epoch are refused and change nothing.
    const stale = await controller.alterPartition({
      brokerId: leader.brokerId,
      brokerEpoch: leader.lifecycle.brokerEpoch,
      topics: [
        {
          topicId: topic.topicId,
          partitions: [
            { partitionId: 0, leaderEpoch: partition.leaderEpoch - 1, partitionEpoch: partition.partitionEpoch, newIsr: [partition.leader] },
            { partitionId: 1, leaderEpoch: topic.partitions[1]!.leaderEpoch, partitionEpoch: topic.partitions[1]!.partitionEpoch + 7, newIsr: [topic.partitions[1]!.leader] },
          ],
        },
      ],
    });
    const errors = stale.topics[0]!.partitions.map((item) => item.error?.code);
    expect(errors[0]).toBe('FENCED_LEADER_EPOCH');
    expect(['INVALID_UPDATE_VERSION', 'NOT_LEADER_OR_FOLLOWER']).toContain(errors[1]);
    // A fresh AlterPartition is applied; then the image must show exactly that change and nothing from the stale ones.
    const valid = await controller.alterPartition({
      brokerId: leader.brokerId,
      brokerEpoch: leader.lifecycle.brokerEpoch,
      topics: [{ topicId: topic.topicId, partitions: [{ partitionId: 0, leaderEpoch: partition.leaderEpoch, partitionEpoch: partition.partitionEpoch, newIsr: [partition.leader] }] }],
    });
    expect(valid.topics[0]!.partitions[0]!.error).toBeUndefined();
    const after = await observer.waitFor((candidate) => candidate.topicByName('good')!.partitions[0]!.isr.length === 1, 5_000);
    expect(after.topicByName('good')!.partitions[0]!.partitionEpoch).toBe(partition.partitionEpoch + 1);
    expect(after.topicByName('good')!.partitions[1]!.isr.length).toBe(2);

    // Topic configs: validated, stored in the metadata log, described with their source.
    const refused = await controller.incrementalAlterConfigs({ resources: [{ resourceType: 'topic', resourceName: 'good', ops: [{ name: 'retention.bananas', op: 'set', value: '1' }] }] });
    expect(refused.results[0]!.error?.code).toBe('INVALID_CONFIG');
    const altered = await controller.incrementalAlterConfigs({ resources: [{ resourceType: 'topic', resourceName: 'good', ops: [{ name: 'retention.ms', op: 'set', value: '60000' }] }] });
    expect(altered.results[0]!.error).toBeUndefined();
    const described = await controller.describeConfigs({ resources: [{ resourceType: 'topic', resourceName: 'good', keys: ['retention.ms', 'cleanup.policy'] }] });
    expect(described.results[0]!.configs.map((config) => [config.name, config.value, config.source]).sort()).toEqual([
      ['cleanup.policy', 'delete', 'default'],
      ['retention.ms', '60000', 'topic'],
    ]);

    // More partitions, then deletion; an unknown topic is named in its own result.
    const grown = await controller.createPartitions({ topics: [{ name: 'good', count: 4 }, { name: 'missing', count: 2 }] });
    expect(grown.topics.map((result) => result.error?.code)).toEqual([undefined, 'UNKNOWN_TOPIC_OR_PARTITION']);
    await observer.waitFor((candidate) => candidate.topicByName('good')?.partitions.length === 4, 5_000);
    await controller.createTopics({ topics: [{ name: 'short-lived', numPartitions: 1, replicationFactor: 1 }] });
    const deleted = await controller.deleteTopics({ names: ['short-lived', 'never-was'] });
    expect(deleted.topics.map((result) => result.error?.code)).toEqual([undefined, 'UNKNOWN_TOPIC_OR_PARTITION']);
    await observer.waitFor((candidate) => candidate.topicByName('short-lived') === undefined && candidate.topicsById.size === 1, 5_000);

    // A heartbeat with a stale broker epoch is refused by name.
    await expect(
      controller.brokerHeartbeat({ brokerId: 11, brokerEpoch: brokers[0]!.lifecycle.brokerEpoch - 1, currentMetadataOffset: 0, wantFence: false, wantShutDown: false }),
    ).rejects.toMatchObject({ code: 'STALE_BROKER_EPOCH' });

    // Controlled shutdown moves leadership off the broker before it stops.
    const shutdownBroker = brokers.find((broker) => broker.brokerId === topic.partitions[1]!.leader)!;
    expect(await shutdownBroker.lifecycle.controlledShutdown(10_000)).toBe(true);
    const moved = await observer.waitFor((candidate) => candidate.brokers.get(shutdownBroker.brokerId)?.fenced === true, 5_000);
    for (const item of moved.topicByName('good')!.partitions) expect(item.leader).not.toBe(shutdownBroker.brokerId);
  });
});

async function startBrokerAgain(current: ProcessCluster, controller: ControllerClient, previous: TestBroker): Promise<TestBroker> {
  const lifecycle = new BrokerLifecycle({
    brokerId: previous.brokerId,
    endpoints: [{ name: 'CLIENT', host: '127.0.0.1', port: 19_000 + previous.brokerId, securityProtocol: 'PLAINTEXT' }],
    controller,
    metadataOffset: () => previous.observer.lastAppliedOffset,
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    logger,
  });
  lifecycle.start();
  cleanups.push(() => lifecycle.stop());
  void current;
  return { brokerId: previous.brokerId, lifecycle, observer: previous.observer };
}
