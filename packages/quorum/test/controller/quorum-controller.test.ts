import { describe, it, expect } from 'vitest';
import { NotLeaderError } from '@raftka/protocol';
import { QuorumController } from '../../src/controller/quorum-controller.js';
import { ControllerLogic } from '../../src/controller/controller-logic.js';
import { makeControllerConfig } from '../../src/controller/controller-config.js';
import { NotControllerError } from '../../src/controller/controller-errors.js';
import type { CommittedBatch, MetadataLog, MetadataSnapshotProvider } from '../../src/metadata/metadata-log.js';
import { MetadataPublisher } from '../../src/metadata/metadata-publisher.js';
import { seededRandom } from './cluster-fixture.js';

/** An in-memory metadata log: commits every append at once, delivering it asynchronously. */
class FakeMetadataLog implements MetadataLog {
  readonly entries: CommittedBatch[] = [];
  private readonly listeners: ((batch: CommittedBatch) => void | Promise<void>)[] = [];
  leader = true;
  snapshotProvider: MetadataSnapshotProvider | undefined;

  async append(records: Uint8Array[]): Promise<{ offset: number; epoch: number }> {
    if (!this.leader) throw new NotLeaderError({ leaderId: 2, leaderAddress: '127.0.0.1:9093', epoch: 5 });
    const batch = { offset: this.entries.length, epoch: 1, records };
    this.entries.push(batch);
    // Deliver after the append resolves, to exercise the controller's wait for the applied image.
    setImmediate(() => {
      for (const listener of this.listeners) void listener(batch);
    });
    return { offset: batch.offset, epoch: batch.epoch };
  }

  onCommitted(listener: (batch: CommittedBatch) => void | Promise<void>): void {
    this.listeners.push(listener);
  }

  setSnapshotProvider(provider: MetadataSnapshotProvider): void {
    this.snapshotProvider = provider;
  }
}

function setup() {
  const log = new FakeMetadataLog();
  const publisher = new MetadataPublisher();
  publisher.attach(log);
  let nowMs = 10_000;
  const controller = new QuorumController({
    log,
    publisher,
    logic: new ControllerLogic({ config: makeControllerConfig(), random: seededRandom(11) }),
    activeController: () => ({ id: 2, address: '127.0.0.1:9093' }),
    clock: () => nowMs,
  });
  controller.becomeActive(nowMs);
  const advance = (ms: number) => {
    nowMs += ms;
    return nowMs;
  };
  const register = (brokerId: number) =>
    controller.registerBroker({ brokerId, incarnationId: `i-${brokerId}`, endpoints: [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9000 + brokerId, securityProtocol: 'PLAINTEXT' }] });
  return { log, publisher, controller, advance, register };
}

describe('QuorumController', () => {
  it('serializes concurrent operations so each decision sees the previous one', async () => {
    const { controller, publisher, register, log } = setup();
    const epochs = await Promise.all([1, 2, 3].map((brokerId) => register(brokerId)));
    expect(new Set(epochs.map((response) => response.brokerEpoch)).size).toBe(3);
    for (const [index, brokerId] of [1, 2, 3].entries()) {
      await controller.brokerHeartbeat({ brokerId, brokerEpoch: epochs[index]!.brokerEpoch, currentMetadataOffset: publisher.image.lastAppliedOffset, wantFence: false, wantShutDown: false });
    }
    const [first, second] = await Promise.all([
      controller.createTopics({ topics: [{ name: 'same', numPartitions: 3, replicationFactor: 3 }] }),
      controller.createTopics({ topics: [{ name: 'same', numPartitions: 3, replicationFactor: 3 }] }),
    ]);
    expect(first.topics[0]!.error).toBeUndefined();
    expect(second.topics[0]!.error?.code).toBe('TOPIC_ALREADY_EXISTS');
    // The answer comes after the records are applied: the image already has the topic.
    expect(publisher.image.topicByName('same')!.partitions).toHaveLength(3);
    const blocks = await Promise.all([1, 2, 1].map((brokerId) => controller.allocateProducerIds({ brokerId, brokerEpoch: epochs[brokerId - 1]!.brokerEpoch })));
    expect(blocks.map((block) => block.firstProducerId)).toEqual([0, 1000, 2000]);
    expect(log.snapshotProvider).toBeDefined();
  });

  it('fences brokers whose session expired on tick, and keeps those that heartbeat', async () => {
    const { controller, publisher, register, advance } = setup();
    const epochs = new Map<number, number>();
    for (const brokerId of [1, 2]) epochs.set(brokerId, (await register(brokerId)).brokerEpoch);
    const heartbeat = (brokerId: number) =>
      controller.brokerHeartbeat({ brokerId, brokerEpoch: epochs.get(brokerId)!, currentMetadataOffset: publisher.image.lastAppliedOffset, wantFence: false, wantShutDown: false });
    await heartbeat(1);
    await heartbeat(2);
    await controller.createTopics({ topics: [{ name: 't', numPartitions: 2, replicationFactor: 2 }] });
    for (let step = 0; step < 8; step++) {
      const nowMs = advance(500);
      await heartbeat(1);
      const fenced = await controller.tick(nowMs);
      if (step < 5) expect(fenced).toEqual([]);
    }
    expect(publisher.image.brokers.get(2)!.fenced).toBe(true);
    expect(publisher.image.brokers.get(1)!.fenced).toBe(false);
    expect(publisher.image.topicByName('t')!.partitions.every((partition) => partition.leader === 1 && partition.isr.join() === '1')).toBe(true);
  });

  it('answers NOT_CONTROLLER when not active or when leadership is lost mid-write', async () => {
    const { controller, log, register } = setup();
    log.leader = false;
    const lost = await register(1).catch((error: unknown) => error);
    expect(lost).toBeInstanceOf(NotControllerError);
    expect((lost as NotControllerError).activeControllerId).toBe(2);
    expect(controller.isActive).toBe(false);
    const inactive = await controller.createTopics({ topics: [] }).catch((error: unknown) => error);
    expect(inactive).toBeInstanceOf(NotControllerError);
    expect((inactive as NotControllerError).activeControllerAddress).toBe('127.0.0.1:9093');
    expect(() => controller.describeConfigs({ resources: [] })).toThrow(NotControllerError);
  });
});
