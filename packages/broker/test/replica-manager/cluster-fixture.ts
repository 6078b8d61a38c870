// In-process brokers for replication tests: each broker is a ReplicaManager with its RaftkaClient
// gRPC server on 127.0.0.1 (OS-assigned port) and its own log directory, fed by its own
// MetadataPublisher. The test plays the controller: it commits metadata records (RegisterBroker,
// Topic, Partition, PartitionChange) to every running broker's publisher, in one order, exactly as
// the metadata log would, and answers AlterPartition with the real controller logic.

import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ErrorCode, encodeRecordBatchSync, errorCodeName, type ErrorCodeName, type RecordInput } from '@raftka/protocol';
import {
  ControllerLogic,
  MetadataPublisher,
  generateTopicId,
  makeControllerConfig,
  type AlterPartitionRequest,
  type AlterPartitionResponse,
  type MetadataRecord,
} from '@raftka/quorum';
import { BROKER_SERVER_OPTIONS, ReplicaManager, addClientService, loadRaftkaClientService, makeReplicaManagerConfig, type ReplicaManagerConfig } from '../../src/index.js';

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

/** Polls `condition` until it holds or `timeoutMs` passes (never a fixed sleep). */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** One batch of string records `prefix-i`. */
export function batch(prefix: string, count = 1, options: { producerId?: number; producerEpoch?: number; baseSequence?: number; valueBytes?: number; timestamp?: number } = {}): Buffer {
  const timestamp = options.timestamp ?? 1_700_000_000_000;
  const records: RecordInput[] = Array.from({ length: count }, (_, index) => ({
    key: `${prefix}-${index}`,
    value: options.valueBytes === undefined ? `${prefix}-${index}` : Buffer.alloc(options.valueBytes, 7),
    timestamp,
  }));
  return encodeRecordBatchSync({
    records,
    baseTimestamp: timestamp,
    ...(options.producerId === undefined ? {} : { producerId: options.producerId, producerEpoch: options.producerEpoch ?? 0, baseSequence: options.baseSequence ?? 0 }),
  });
}

type Unary = (request: unknown, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void;
type RawClient = grpc.Client & Record<string, Unary>;

/** A thin RaftkaClient caller for assertions (responses as proto-loader decodes them). */
export class TestClient {
  private readonly client: RawClient;

  constructor(port: number) {
    const Service = loadRaftkaClientService();
    this.client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as RawClient;
  }

  call<T = any>(method: string, request: unknown, timeoutMs = 20_000): Promise<T> {
    return new Promise((resolve, reject) => {
      this.client[method]!(request, { deadline: Date.now() + timeoutMs }, (error, response) => (error ? reject(error) : resolve(response as T)));
    });
  }

  async produce(args: { topic: string; partition?: number; records: Buffer; acks: number; timeoutMs?: number }): Promise<{ code: ErrorCodeName; baseOffset: number; message: string; leaderId: number }> {
    const response = await this.call('Produce', {
      acks: args.acks,
      timeoutMs: args.timeoutMs ?? 15_000,
      topicData: [{ name: args.topic, partitionData: [{ index: args.partition ?? 0, records: args.records }] }],
    });
    const item = response.responses[0].partitionResponses[0];
    return { code: errorCodeName(item.errorCode), baseOffset: item.baseOffset, message: item.errorMessage, leaderId: item.currentLeader?.leaderId ?? -1 };
  }

  async fetch(args: {
    topic: string;
    partition?: number;
    offset: number;
    maxWaitMs?: number;
    minBytes?: number;
    replicaId?: number;
    currentLeaderEpoch?: number;
    lastFetchedEpoch?: number;
    maxBytes?: number;
  }): Promise<{ code: ErrorCodeName; highWatermark: number; records: Buffer; divergingEpoch: { epoch: number; endOffset: number } }> {
    const response = await this.call('Fetch', {
      replicaId: args.replicaId ?? -1,
      maxWaitMs: args.maxWaitMs ?? 0,
      minBytes: args.minBytes ?? 1,
      maxBytes: args.maxBytes ?? 1024 * 1024,
      topics: [
        {
          topic: args.topic,
          partitions: [
            {
              partition: args.partition ?? 0,
              currentLeaderEpoch: args.currentLeaderEpoch ?? -1,
              fetchOffset: args.offset,
              lastFetchedEpoch: args.lastFetchedEpoch ?? -1,
              partitionMaxBytes: args.maxBytes ?? 1024 * 1024,
            },
          ],
        },
      ],
    });
    const item = response.responses[0].partitions[0];
    return { code: errorCodeName(item.errorCode), highWatermark: item.highWatermark, records: item.records, divergingEpoch: item.divergingEpoch };
  }

  close(): void {
    this.client.close();
  }
}

export interface TestBroker {
  id: number;
  port: number;
  replicaManager: ReplicaManager;
  client: TestClient;
  close(): Promise<void>;
}

export class TestCluster {
  readonly root: string;
  /** The controller's view: every committed record applied in order. */
  readonly controller = new MetadataPublisher();
  readonly brokers = new Map<number, TestBroker>();
  private readonly history: MetadataRecord[] = [];
  private offset = -1;
  private brokerEpoch = 0;
  private readonly logic = new ControllerLogic({ config: makeControllerConfig(), random: seededRandom(7) });
  private readonly random = seededRandom(11);
  private readonly publishers = new Map<number, MetadataPublisher>();
  private readonly config: ReplicaManagerConfig;
  alterPartitionCalls = 0;

  private constructor(root: string, config: ReplicaManagerConfig) {
    this.root = root;
    this.config = config;
  }

  static async create(config: Parameters<typeof makeReplicaManagerConfig>[0] = {}): Promise<TestCluster> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-replication-'));
    return new TestCluster(
      root,
      makeReplicaManagerConfig({
        replicaLagTimeMaxMs: 1_000,
        ...config,
        fetcher: { fetchWaitMaxMs: 100, fetchBackoffMs: 50, requestTimeoutMs: 5_000, ...config.fetcher },
      }),
    );
  }

  broker(id: number): TestBroker {
    const broker = this.brokers.get(id);
    if (broker === undefined) throw new Error(`broker ${id} is not running`);
    return broker;
  }

  /** Commits one batch of records: the controller's image, then every running broker, in order. */
  async commit(records: MetadataRecord[]): Promise<void> {
    this.offset++;
    this.history.push(...records);
    this.controller.applyRecords(records, this.offset, 1);
    for (const publisher of this.publishers.values()) publisher.applyRecords(records, this.offset, 1);
    await Promise.all([...this.brokers.values()].map((broker) => broker.replicaManager.metadataApplied()));
  }

  /** Starts (or restarts, on the same log dir) broker `id` and registers it with a new epoch. */
  async startBroker(id: number): Promise<TestBroker> {
    const replicaManager = new ReplicaManager({
      brokerId: id,
      logDir: path.join(this.root, `broker-${id}`),
      config: this.config,
      alterPartition: (request) => this.alterPartition(request),
    });
    const server = new grpc.Server(BROKER_SERVER_OPTIONS);
    let nextProducerId = id * 1_000_000;
    addClientService(server, {
      replicaManager,
      clusterId: 'test-cluster',
      controllerId: () => 100,
      allocateProducerIds: async () => {
        const block = { firstProducerId: nextProducerId, count: 10 };
        nextProducerId += 10;
        return block;
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    replicaManager.start();
    const publisher = new MetadataPublisher();
    publisher.subscribe((update) => void replicaManager.applyMetadata(update));
    // The broker catches up with the log so far (as from a snapshot), then sees its registration.
    if (this.history.length > 0) publisher.applyRecords([...this.history], this.offset, 1);
    const client = new TestClient(port);
    const broker: TestBroker = {
      id,
      port,
      replicaManager,
      client,
      close: async () => {
        this.publishers.delete(id);
        this.brokers.delete(id);
        client.close();
        server.forceShutdown();
        await replicaManager.close();
      },
    };
    this.publishers.set(id, publisher);
    this.brokers.set(id, broker);
    await this.commit([
      {
        type: 'registerBroker',
        brokerId: id,
        incarnationId: `incarnation-${id}-${this.brokerEpoch + 1}`,
        brokerEpoch: ++this.brokerEpoch,
        endpoints: [{ name: 'CLIENT', host: '127.0.0.1', port, securityProtocol: 'PLAINTEXT' }],
        rack: undefined,
        fenced: false,
      },
    ]);
    return broker;
  }

  async stopBroker(id: number): Promise<void> {
    await this.broker(id).close();
  }

  async createTopic(name: string, assignments: number[][], configs: Record<string, string> = {}): Promise<string> {
    const topicId = generateTopicId(this.random);
    const records: MetadataRecord[] = [{ type: 'topic', name, topicId }];
    for (const [key, value] of Object.entries(configs)) records.push({ type: 'config', resourceType: 'topic', resourceName: name, name: key, value });
    assignments.forEach((replicas, partitionId) =>
      records.push({ type: 'partition', topicId, partitionId, replicas, isr: [...replicas], leader: replicas[0]!, leaderEpoch: 0, partitionEpoch: 0 }),
    );
    await this.commit(records);
    return topicId;
  }

  /** A controller-made change (election after a failure, ISR change). */
  async changePartition(topic: string, partitionId: number, change: { leader?: number; isr?: number[] }): Promise<void> {
    const topicId = this.controller.image.topicIdsByName.get(topic)!;
    await this.commit([{ type: 'partitionChange', topicId, partitionId, ...change }]);
  }

  partitionState(topic: string, partitionId = 0): { leader: number; leaderEpoch: number; isr: readonly number[]; partitionEpoch: number } {
    const state = this.controller.image.topicByName(topic)!.partitions[partitionId]!;
    return { leader: state.leader, leaderEpoch: state.leaderEpoch, isr: state.isr, partitionEpoch: state.partitionEpoch };
  }

  /** The controller's AlterPartition: decided by the real controller logic, committed to all. */
  private async alterPartition(request: AlterPartitionRequest): Promise<AlterPartitionResponse> {
    this.alterPartitionCalls++;
    const { records, response } = this.logic.alterPartition(this.controller.image, request);
    if (records.length > 0) await this.commit(records);
    return response;
  }

  async close(): Promise<void> {
    for (const broker of [...this.brokers.values()]) await broker.close();
    await fs.rm(this.root, { recursive: true, force: true });
  }
}

export function codeOf(code: number): ErrorCodeName {
  return errorCodeName(code);
}

export { ErrorCode };
