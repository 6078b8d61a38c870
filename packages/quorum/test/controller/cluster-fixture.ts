// A controller driven by hand for tests: the pure logic, an image fed through the real codec and
// publisher, and a log of every committed batch (so a "failover" can replay it into a new image).

import { ControllerLogic } from '../../src/controller/controller-logic.js';
import type { ControllerResult } from '../../src/controller/controller-types.js';
import { makeControllerConfig, type ControllerConfig } from '../../src/controller/controller-config.js';
import type { CommittedBatch } from '../../src/metadata/metadata-log.js';
import { MetadataPublisher } from '../../src/metadata/metadata-publisher.js';
import { encodeMetadataRecord } from '../../src/metadata/metadata-records.js';
import type { MetadataImage } from '../../src/metadata/metadata-image.js';

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class TestCluster {
  readonly publisher: MetadataPublisher;
  readonly logic: ControllerLogic;
  readonly log: CommittedBatch[] = [];
  readonly brokerEpochs = new Map<number, number>();
  private nextOffset = 0;
  epoch = 1;

  constructor(options: { config?: Partial<ControllerConfig>; seed?: number; publisher?: MetadataPublisher; startOffset?: number } = {}) {
    this.publisher = options.publisher ?? new MetadataPublisher();
    this.logic = new ControllerLogic({ config: makeControllerConfig(options.config), random: seededRandom(options.seed ?? 42) });
    this.nextOffset = options.startOffset ?? this.publisher.image.lastAppliedOffset + 1;
  }

  get image(): MetadataImage {
    return this.publisher.image;
  }

  /** Commits the records (through the codec) and returns the response. */
  commit<R>(result: ControllerResult<R>): R {
    if (result.records.length > 0) {
      const batch: CommittedBatch = { offset: this.nextOffset++, epoch: this.epoch, records: result.records.map(encodeMetadataRecord) };
      this.log.push(batch);
      this.publisher.handleCommitted(batch);
    }
    return result.response;
  }

  register(brokerId: number, rack?: string, incarnationId = `incarnation-${brokerId}`): number {
    const { brokerEpoch } = this.commit(
      this.logic.registerBroker(this.image, {
        brokerId,
        incarnationId,
        endpoints: [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9000 + brokerId, securityProtocol: 'PLAINTEXT' }],
        ...(rack === undefined ? {} : { rack }),
      }),
    );
    this.brokerEpochs.set(brokerId, brokerEpoch);
    return brokerEpoch;
  }

  heartbeat(brokerId: number, options: { wantShutDown?: boolean; wantFence?: boolean; metadataOffset?: number } = {}) {
    return this.commit(
      this.logic.brokerHeartbeat(this.image, {
        brokerId,
        brokerEpoch: this.brokerEpochs.get(brokerId)!,
        currentMetadataOffset: options.metadataOffset ?? this.image.lastAppliedOffset,
        wantFence: options.wantFence ?? false,
        wantShutDown: options.wantShutDown ?? false,
      }),
    );
  }

  /** Registers and unfences brokers (each heartbeats as caught up). */
  startBrokers(brokerIds: number[], racks?: (string | undefined)[]): void {
    brokerIds.forEach((brokerId, index) => this.register(brokerId, racks?.[index]));
    for (const brokerId of brokerIds) expectUnfenced(this.heartbeat(brokerId));
  }

  createTopic(name: string, numPartitions: number, replicationFactor: number, configs?: Record<string, string>): string {
    const response = this.commit(this.logic.createTopics(this.image, { topics: [{ name, numPartitions, replicationFactor, ...(configs ? { configs } : {}) }] }));
    const result = response.topics[0]!;
    if (result.error !== undefined) throw new Error(`createTopic ${name}: ${result.error.code} ${result.error.message}`);
    return result.topicId!;
  }

  fence(brokerId: number): void {
    this.commit(this.logic.fenceBroker(this.image, brokerId));
  }

  partition(topicName: string, partitionId: number) {
    return this.image.topicByName(topicName)!.partitions[partitionId]!;
  }
}

function expectUnfenced(response: { isFenced: boolean }): void {
  if (response.isFenced) throw new Error('broker stayed fenced after a caught-up heartbeat');
}
