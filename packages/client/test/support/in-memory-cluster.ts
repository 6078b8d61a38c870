// Test support: a small in-memory Raftka cluster that serves client.proto over real gRPC on
// 127.0.0.1, so the SDK can be tested end to end before the real broker exists.
//
// It is deliberately honest rather than canned:
//   - every broker is its own gRPC server; only a partition's leader serves Produce, Fetch,
//     ListOffsets and OffsetForLeaderEpoch for it, others answer NOT_LEADER_OR_FOLLOWER;
//   - leader epochs are checked (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH, KIP-320) and a
//     moved leader bumps the epoch and records where the epoch starts in the log;
//   - produced bytes are walked, CRC-checked and fully decoded before they are accepted; offsets
//     and the leader epoch are stamped into the stored batch header, and Fetch returns the
//     stored bytes, cut at the size limits like a real broker;
//   - idempotent producers are deduplicated from their last 5 batches per partition (KIP-98);
//   - admin calls validate names, counts and topic configs with the protocol's schema.
// Replication is modelled as perfect: all replicas share one log, which is what a leader change
// after a fully replicated append looks like. Truncation helpers model unclean elections.

import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import {
  decodeRecordBatch,
  ErrorCode,
  forEachBatch,
  isControlBatch,
  RaftkaError,
  resolveTopicConfig,
  setBaseOffset,
  setPartitionLeaderEpoch,
  validateTopicConfigs,
  type DecodedRecord,
  type ErrorCodeName,
  type RecordBatchHeader,
} from '@raftka/protocol';
import { loadClientServices } from '../../src/network/client-proto.js';
import type * as M from '../../src/network/client-messages.js';

/** Kafka keeps the last 5 batches per producer and partition for deduplication. */
const PRODUCER_BATCHES_KEPT = 5;

interface StoredBatch {
  baseOffset: number;
  lastOffset: number;
  epoch: number;
  bytes: Buffer;
  maxTimestamp: number;
}

interface ProducerEntry {
  epoch: number;
  // Newest last; at most PRODUCER_BATCHES_KEPT.
  recent: { firstSequence: number; lastSequence: number; baseOffset: number }[];
}

export class PartitionLog {
  readonly batches: StoredBatch[] = [];
  logStartOffset = 0;
  logEndOffset = 0;
  leaderId: number;
  leaderEpoch = 0;
  // Epoch -> first offset written in it (KIP-101's leader epoch cache).
  readonly epochStarts: { epoch: number; startOffset: number }[] = [{ epoch: 0, startOffset: 0 }];
  readonly producers = new Map<bigint, ProducerEntry>();

  constructor(leaderId: number) {
    this.leaderId = leaderId;
  }

  /** With perfect replication the high watermark is the log end. */
  get highWatermark(): number {
    return this.logEndOffset;
  }

  /** One past the last offset of `epoch`'s largest known epoch <= it, or undefined. */
  endOffsetFor(epoch: number): { epoch: number; endOffset: number } | undefined {
    let found: number | undefined;
    for (let index = 0; index < this.epochStarts.length; index += 1) if (this.epochStarts[index]!.epoch <= epoch) found = index;
    if (found === undefined) return undefined;
    const next = this.epochStarts[found + 1];
    return { epoch: this.epochStarts[found]!.epoch, endOffset: next ? next.startOffset : this.logEndOffset };
  }

  append(bytes: Buffer, header: RecordBatchHeader): number {
    const baseOffset = this.logEndOffset;
    const stored = Buffer.from(bytes);
    setBaseOffset(stored, 0, baseOffset);
    setPartitionLeaderEpoch(stored, 0, this.leaderEpoch);
    this.batches.push({ baseOffset, lastOffset: baseOffset + header.lastOffsetDelta, epoch: this.leaderEpoch, bytes: stored, maxTimestamp: header.maxTimestamp });
    this.logEndOffset = baseOffset + header.lastOffsetDelta + 1;
    return baseOffset;
  }

  /** Removes everything at and after `offset` (a batch boundary), as an unclean new leader's shorter log would. */
  truncateTo(offset: number): void {
    while (this.batches.length > 0 && this.batches[this.batches.length - 1]!.baseOffset >= offset) this.batches.pop();
    this.logEndOffset = offset;
    while (this.epochStarts.length > 1 && this.epochStarts[this.epochStarts.length - 1]!.startOffset >= offset) this.epochStarts.pop();
  }

  /** Drops whole batches below `offset`, as retention would. */
  deleteBefore(offset: number): void {
    while (this.batches.length > 0 && this.batches[0]!.lastOffset < offset) this.batches.shift();
    this.logStartOffset = this.batches[0]?.baseOffset ?? this.logEndOffset;
  }

  /** Every record in the log, decoded (for assertions). */
  async records(): Promise<DecodedRecord[]> {
    const all: DecodedRecord[] = [];
    for (const batch of this.batches) all.push(...(await decodeRecordBatch(batch.bytes)).records);
    return all;
  }
}

interface TopicState {
  name: string;
  topicId: Buffer;
  partitions: PartitionLog[];
  configs: Map<string, string>;
}

export interface AppendedEvent {
  brokerId: number;
  topic: string;
  partition: number;
  baseOffset: number;
}

export interface InMemoryClusterOptions {
  brokerCount?: number;
  clusterId?: string;
  /** Answer NOT_LEADER_OR_FOLLOWER without the KIP-951 leader hint, forcing a metadata refresh. */
  leaderHints?: boolean;
}

interface BrokerNode {
  nodeId: number;
  port: number;
  server: grpc.Server;
}

type Handler<Request, Response> = (request: Request, brokerId: number) => Promise<Response> | Response;

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

export class InMemoryCluster {
  readonly clusterId: string;
  readonly brokers: BrokerNode[] = [];
  readonly topics = new Map<string, TopicState>();
  readonly leaderHints: boolean;
  /** Calls served, by method name, for assertions about traffic. */
  readonly callCounts = new Map<string, number>();
  /**
   * Called after a batch is appended and before the answer is sent; returning an error name
   * answers with that error instead (the append stays), as when leadership moves before acks.
   */
  afterAppend: ((event: AppendedEvent) => ErrorCodeName | undefined) | undefined;
  /**
   * Called before a batch is checked and appended; returning an error name refuses the batch
   * with that error and appends nothing, as a leader short of in-sync replicas does.
   */
  beforeAppend: ((event: { brokerId: number; topic: string; partition: number; baseSequence: number }) => ErrorCodeName | undefined) | undefined;
  /**
   * Admin requests naming these topics are answered NOT_CONTROLLER this many more times, as
   * while the active controller moves (the broker cannot forward them yet).
   */
  readonly controllerMoving = new Map<string, number>();
  #nextProducerId = 1000;
  readonly #appends = new EventEmitter();
  // Produce requests are applied one at a time: decoding is asynchronous and appends to one
  // partition must not interleave (a real broker holds the partition lock while appending).
  #produceChain: Promise<unknown> = Promise.resolve();

  private constructor(options: InMemoryClusterOptions) {
    this.clusterId = options.clusterId ?? 'in-memory-cluster';
    this.leaderHints = options.leaderHints ?? true;
    this.#appends.setMaxListeners(0);
  }

  static async start(options: InMemoryClusterOptions = {}): Promise<InMemoryCluster> {
    const cluster = new InMemoryCluster(options);
    for (let index = 0; index < (options.brokerCount ?? 1); index += 1) await cluster.#startBroker(index + 1);
    return cluster;
  }

  get bootstrapServers(): string[] {
    return this.brokers.map((broker) => `127.0.0.1:${broker.port}`);
  }

  async #startBroker(nodeId: number): Promise<void> {
    const services = loadClientServices();
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024 });
    const wrap = <Request, Response>(method: string, handler: Handler<Request, Response>): grpc.handleUnaryCall<Request, Response> => {
      return (call, callback) => {
        this.callCounts.set(method, (this.callCounts.get(method) ?? 0) + 1);
        Promise.resolve()
          .then(() => handler(call.request, nodeId))
          .then(
            (response) => callback(null, response),
            (error: unknown) => callback({ code: grpc.status.INTERNAL, details: error instanceof Error ? error.message : String(error) }),
          );
      };
    };
    server.addService(services.RaftkaClient.service, {
      Metadata: wrap('Metadata', (request: M.MetadataRequest) => this.#metadata(request)),
      DescribeCluster: wrap('DescribeCluster', () => this.#describeCluster()),
      Produce: wrap('Produce', (request: M.ProduceRequest, brokerId) => this.#serialized(() => this.#produce(request, brokerId))),
      // As a real broker: requests are applied in arrival order and answered in that order;
      // each message counts as one Produce call.
      ProduceStream: (call: grpc.ServerDuplexStream<M.ProduceRequest, M.ProduceResponse>) => {
        let previous: Promise<unknown> = Promise.resolve();
        call.on('data', (request: M.ProduceRequest) => {
          this.callCounts.set('Produce', (this.callCounts.get('Produce') ?? 0) + 1);
          const answer = this.#serialized(() => this.#produce(request, nodeId));
          previous = previous
            .then(() => answer)
            .then(
              (response) => call.write(response),
              (error: unknown) => call.emit('error', { code: grpc.status.INTERNAL, details: error instanceof Error ? error.message : String(error) }),
            );
        });
        call.on('end', () => void previous.then(() => call.end()));
        call.on('error', () => undefined);
      },
      Fetch: wrap('Fetch', (request: M.FetchRequest, brokerId) => this.#fetch(request, brokerId)),
      ListOffsets: wrap('ListOffsets', (request: M.ListOffsetsRequest, brokerId) => this.#listOffsets(request, brokerId)),
      OffsetForLeaderEpoch: wrap('OffsetForLeaderEpoch', (request: M.OffsetForLeaderEpochRequest, brokerId) => this.#offsetForLeaderEpoch(request, brokerId)),
      InitProducerId: wrap('InitProducerId', (request: M.InitProducerIdRequest) => this.#initProducerId(request)),
    });
    server.addService(services.RaftkaAdmin.service, {
      CreateTopics: wrap('CreateTopics', (request: M.CreateTopicsRequest) => this.#createTopics(request)),
      DeleteTopics: wrap('DeleteTopics', (request: M.DeleteTopicsRequest) => this.#deleteTopics(request)),
      CreatePartitions: wrap('CreatePartitions', (request: M.CreatePartitionsRequest) => this.#createPartitions(request)),
      DescribeConfigs: wrap('DescribeConfigs', (request: M.DescribeConfigsRequest) => this.#describeConfigs(request)),
      IncrementalAlterConfigs: wrap('IncrementalAlterConfigs', (request: M.IncrementalAlterConfigsRequest) => this.#incrementalAlterConfigs(request)),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, boundPort) => (error ? reject(error) : resolve(boundPort))),
    );
    this.brokers.push({ nodeId, port, server });
  }

  /**
   * Adds a further gRPC service to every broker (test support for services served elsewhere,
   * e.g. the consumer-group coordinator); `implementationFor` builds one broker's handlers.
   */
  addService(service: grpc.ServiceDefinition, implementationFor: (nodeId: number) => grpc.UntypedServiceImplementation): void {
    for (const broker of this.brokers) broker.server.addService(service, implementationFor(broker.nodeId));
  }

  async stop(): Promise<void> {
    await Promise.all(this.brokers.map((broker) => new Promise<void>((resolve) => broker.server.tryShutdown(() => resolve()))));
    for (const broker of this.brokers) broker.server.forceShutdown();
  }

  // ---- test controls -------------------------------------------------------------------------

  /** Creates a topic; partition p is led by broker (p % brokers) + 1 unless leaders are given. */
  createTopic(name: string, partitionCount: number, options: { leaders?: number[]; configs?: Record<string, string> } = {}): void {
    const partitions = Array.from({ length: partitionCount }, (_, index) => new PartitionLog(options.leaders?.[index] ?? (index % this.brokers.length) + 1));
    const topicId = Buffer.alloc(16);
    topicId.writeUInt32BE(this.topics.size + 1, 12);
    this.topics.set(name, { name, topicId, partitions, configs: new Map(Object.entries(options.configs ?? {})) });
  }

  partition(topic: string, partition: number): PartitionLog {
    const log = this.topics.get(topic)?.partitions[partition];
    if (!log) throw new Error(`no partition ${topic}-${partition}`);
    return log;
  }

  /** Moves leadership to `nodeId`, bumping the leader epoch (as the controller's election does). */
  moveLeader(topic: string, partition: number, nodeId: number): void {
    const log = this.partition(topic, partition);
    log.leaderId = nodeId;
    log.leaderEpoch += 1;
    log.epochStarts.push({ epoch: log.leaderEpoch, startOffset: log.logEndOffset });
  }

  // ---- RaftkaClient ----------------------------------------------------------------------------

  #serialized<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#produceChain.then(task);
    this.#produceChain = result.catch(() => undefined);
    return result;
  }

  #brokerAddresses(): M.BrokerAddressMessage[] {
    return this.brokers.map((broker) => ({ nodeId: broker.nodeId, host: '127.0.0.1', port: broker.port, rack: '' }));
  }

  #metadata(request: M.MetadataRequest): M.MetadataResponse {
    const names = request.allTopics ? [...this.topics.keys()] : request.topics;
    const allIds = this.brokers.map((broker) => broker.nodeId);
    const topics: M.TopicMetadataMessage[] = names.map((name) => {
      const topic = this.topics.get(name);
      if (!topic) {
        return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `topic ${name} does not exist`, name, topicId: Buffer.alloc(0), isInternal: false, partitions: [] };
      }
      return {
        errorCode: 0,
        errorMessage: '',
        name,
        topicId: topic.topicId,
        isInternal: name.startsWith('__'),
        partitions: topic.partitions.map((log, index) => ({
          errorCode: 0,
          errorMessage: '',
          partitionIndex: index,
          leaderId: log.leaderId,
          leaderEpoch: log.leaderEpoch,
          replicaNodes: allIds,
          isrNodes: allIds,
          offlineReplicas: [],
        })),
      };
    });
    return { brokers: this.#brokerAddresses(), clusterId: this.clusterId, controllerId: this.brokers[0]!.nodeId, topics };
  }

  #describeCluster(): M.DescribeClusterResponse {
    return { errorCode: 0, errorMessage: '', clusterId: this.clusterId, controllerId: this.brokers[0]!.nodeId, brokers: this.#brokerAddresses() };
  }

  /** The leader check every data-plane call makes; returns the log or an error to answer with. */
  #leaderLog(topic: string, partition: number, brokerId: number, currentLeaderEpoch = -1): PartitionLog | { error: ErrorCodeName; leader?: PartitionLog } {
    const log = this.topics.get(topic)?.partitions[partition];
    if (!log) return { error: 'UNKNOWN_TOPIC_OR_PARTITION' };
    if (log.leaderId !== brokerId) return { error: 'NOT_LEADER_OR_FOLLOWER', leader: log };
    if (currentLeaderEpoch >= 0 && currentLeaderEpoch < log.leaderEpoch) return { error: 'FENCED_LEADER_EPOCH', leader: log };
    if (currentLeaderEpoch > log.leaderEpoch) return { error: 'UNKNOWN_LEADER_EPOCH' };
    return log;
  }

  #hint(found: { leader?: PartitionLog }): M.LeaderIdAndEpochMessage {
    if (!this.leaderHints || !found.leader) return { leaderId: -1, leaderEpoch: -1 };
    return { leaderId: found.leader.leaderId, leaderEpoch: found.leader.leaderEpoch };
  }

  async #produce(request: M.ProduceRequest, brokerId: number): Promise<M.ProduceResponse> {
    if (![0, 1, -1].includes(request.acks)) {
      return {
        throttleTimeMs: 0,
        responses: request.topicData.map((topic) => ({
          name: topic.name,
          partitionResponses: topic.partitionData.map((data) => this.#produceError(data.index, 'INVALID_REQUIRED_ACKS', `acks ${request.acks}`)),
        })),
      };
    }
    const responses: M.ProduceResponse['responses'] = [];
    for (const topic of request.topicData) {
      const partitionResponses: M.PartitionProduceResponseMessage[] = [];
      for (const data of topic.partitionData) partitionResponses.push(await this.#producePartition(topic.name, data.index, data.records, brokerId));
      responses.push({ name: topic.name, partitionResponses });
    }
    // acks=0: the producer reads no answer; a real broker would send none at all.
    return request.acks === 0 ? { throttleTimeMs: 0, responses: [] } : { throttleTimeMs: 0, responses };
  }

  #produceError(index: number, code: ErrorCodeName, message: string, currentLeader: M.LeaderIdAndEpochMessage | null = null): M.PartitionProduceResponseMessage {
    return { index, errorCode: ErrorCode[code], errorMessage: message, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1, recordErrors: [], currentLeader };
  }

  async #producePartition(topic: string, partition: number, records: Buffer, brokerId: number): Promise<M.PartitionProduceResponseMessage> {
    const found = this.#leaderLog(topic, partition, brokerId);
    if (!(found instanceof PartitionLog)) return this.#produceError(partition, found.error, `broker ${brokerId} cannot append`, this.#hint(found));
    const log = found;
    const headers: RecordBatchHeader[] = [];
    try {
      const walk = forEachBatch(records, (header) => headers.push(header), 0, { verifyCrc: true });
      if (walk.batchCount === 0 || walk.incompleteTailBytes > 0) throw new RaftkaError('CORRUPT_MESSAGE', `records hold ${walk.batchCount} complete batches and ${walk.incompleteTailBytes} stray bytes`);
      let position = 0;
      for (const header of headers) {
        const decoded = await decodeRecordBatch(records, position);
        if (decoded.records.length !== header.recordCount || header.lastOffsetDelta !== header.recordCount - 1) {
          throw new RaftkaError('INVALID_RECORD', 'a produced batch must hold consecutive offset deltas from 0');
        }
        if (isControlBatch(header.attributes)) throw new RaftkaError('INVALID_RECORD', 'clients may not produce control batches');
        position += header.sizeInBytes;
      }
    } catch (error) {
      const raftkaError = error instanceof RaftkaError ? error : new RaftkaError('CORRUPT_MESSAGE', String(error));
      return this.#produceError(partition, raftkaError.code, raftkaError.message);
    }
    const idempotent = headers.some((header) => header.producerId >= 0n);
    if (idempotent && headers.length !== 1) return this.#produceError(partition, 'INVALID_RECORD', 'an idempotent producer sends one batch per partition per request');
    let firstBaseOffset = -1;
    let position = 0;
    for (const header of headers) {
      const bytes = records.subarray(position, position + header.sizeInBytes);
      position += header.sizeInBytes;
      const refused = this.beforeAppend?.({ brokerId, topic, partition, baseSequence: header.baseSequence });
      if (refused) return this.#produceError(partition, refused, 'injected before append');
      if (header.producerId >= 0n) {
        const verdict = this.#checkSequence(log, header);
        if (verdict.kind === 'duplicate') return { ...this.#produceError(partition, 'NONE', ''), errorCode: 0, baseOffset: verdict.baseOffset, logStartOffset: log.logStartOffset };
        if (verdict.kind === 'error') return this.#produceError(partition, verdict.code, verdict.message);
      }
      const baseOffset = log.append(bytes, header);
      if (firstBaseOffset < 0) firstBaseOffset = baseOffset;
      if (header.producerId >= 0n) {
        const entry = log.producers.get(header.producerId) ?? { epoch: header.producerEpoch, recent: [] };
        if (entry.epoch !== header.producerEpoch) entry.recent = [];
        entry.epoch = header.producerEpoch;
        entry.recent.push({ firstSequence: header.baseSequence, lastSequence: header.baseSequence + header.lastOffsetDelta, baseOffset });
        if (entry.recent.length > PRODUCER_BATCHES_KEPT) entry.recent.shift();
        log.producers.set(header.producerId, entry);
      }
    }
    this.#appends.emit('append');
    const injected = this.afterAppend?.({ brokerId, topic, partition, baseOffset: firstBaseOffset });
    if (injected) return this.#produceError(partition, injected, 'injected after append', this.#hint({ leader: log }));
    return { index: partition, errorCode: 0, errorMessage: '', baseOffset: firstBaseOffset, logAppendTimeMs: -1, logStartOffset: log.logStartOffset, recordErrors: [], currentLeader: null };
  }

  /** KIP-98's sequence rules for one batch of an idempotent producer. */
  #checkSequence(
    log: PartitionLog,
    header: RecordBatchHeader,
  ): { kind: 'append' } | { kind: 'duplicate'; baseOffset: number } | { kind: 'error'; code: ErrorCodeName; message: string } {
    const entry = log.producers.get(header.producerId);
    const lastSequence = header.baseSequence + header.lastOffsetDelta;
    if (!entry) {
      // No state for this producer (never seen, or removed by retention): KIP-360 asks the
      // producer to bump its epoch unless this is the first batch of the session.
      return header.baseSequence === 0
        ? { kind: 'append' }
        : { kind: 'error', code: 'UNKNOWN_PRODUCER_ID', message: `no state for producer ${header.producerId} and sequence ${header.baseSequence} is not 0` };
    }
    if (header.producerEpoch > entry.epoch) {
      return header.baseSequence === 0
        ? { kind: 'append' }
        : { kind: 'error', code: 'OUT_OF_ORDER_SEQUENCE_NUMBER', message: `a new producer epoch must start at sequence 0, got ${header.baseSequence}` };
    }
    if (header.producerEpoch < entry.epoch) return { kind: 'error', code: 'INVALID_PRODUCER_EPOCH', message: `epoch ${header.producerEpoch} is older than ${entry.epoch}` };
    const duplicate = entry.recent.find((batch) => batch.firstSequence === header.baseSequence && batch.lastSequence === lastSequence);
    if (duplicate) return { kind: 'duplicate', baseOffset: duplicate.baseOffset };
    const expected = entry.recent[entry.recent.length - 1]!.lastSequence + 1;
    if (header.baseSequence !== expected) {
      return { kind: 'error', code: 'OUT_OF_ORDER_SEQUENCE_NUMBER', message: `expected sequence ${expected}, got ${header.baseSequence}` };
    }
    return { kind: 'append' };
  }

  async #fetch(request: M.FetchRequest, brokerId: number): Promise<M.FetchResponse> {
    const deadlineMs = Date.now() + request.maxWaitMs;
    for (;;) {
      const { response, bytes } = this.#readFetch(request, brokerId);
      const waitMs = deadlineMs - Date.now();
      if (bytes >= request.minBytes || waitMs <= 0 || response.responses.some((topic) => topic.partitions.some((p) => p.errorCode !== 0))) return response;
      // Long poll: wait for an append (or the deadline), then read again.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#appends.off('append', done);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        this.#appends.on('append', done);
      });
    }
  }

  #readFetch(request: M.FetchRequest, brokerId: number): { response: M.FetchResponse; bytes: number } {
    let totalBytes = 0;
    const responses: M.FetchResponse['responses'] = [];
    const empty = { highWatermark: -1, lastStableOffset: -1, logStartOffset: -1, divergingEpoch: null, currentLeader: null, abortedTransactions: [], preferredReadReplica: -1, records: Buffer.alloc(0) };
    for (const topic of request.topics) {
      const partitions: M.PartitionDataMessage[] = [];
      for (const want of topic.partitions) {
        const found = this.#leaderLog(topic.topic, want.partition, brokerId, want.currentLeaderEpoch);
        if (!(found instanceof PartitionLog)) {
          partitions.push({ ...empty, partitionIndex: want.partition, errorCode: ErrorCode[found.error], errorMessage: found.error, currentLeader: this.#hint(found) });
          continue;
        }
        const log = found;
        const state = { highWatermark: log.highWatermark, lastStableOffset: log.highWatermark, logStartOffset: log.logStartOffset };
        if (want.lastFetchedEpoch >= 0) {
          const end = log.endOffsetFor(want.lastFetchedEpoch);
          if (!end || end.epoch < want.lastFetchedEpoch || end.endOffset < want.fetchOffset) {
            // The consumer's log diverges from ours (KIP-320): tell it where its epoch ends here.
            partitions.push({ ...empty, ...state, partitionIndex: want.partition, errorCode: 0, errorMessage: '', divergingEpoch: end ?? { epoch: -1, endOffset: -1 } });
            continue;
          }
        }
        if (want.fetchOffset < log.logStartOffset || want.fetchOffset > log.highWatermark) {
          partitions.push({ ...empty, ...state, partitionIndex: want.partition, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, errorMessage: `offset ${want.fetchOffset} is outside [${log.logStartOffset}, ${log.highWatermark}]` });
          continue;
        }
        const chunks: Buffer[] = [];
        let partitionBytes = 0;
        for (const batch of log.batches) {
          if (batch.lastOffset < want.fetchOffset || batch.baseOffset >= log.highWatermark) continue;
          const first = totalBytes === 0 && chunks.length === 0;
          if (!first && (partitionBytes + batch.bytes.length > want.partitionMaxBytes || totalBytes + batch.bytes.length > request.maxBytes)) break;
          chunks.push(batch.bytes);
          partitionBytes += batch.bytes.length;
          totalBytes += batch.bytes.length;
        }
        partitions.push({ ...empty, ...state, partitionIndex: want.partition, errorCode: 0, errorMessage: '', records: Buffer.concat(chunks) });
      }
      responses.push({ topic: topic.topic, partitions });
    }
    return { response: { errorCode: 0, errorMessage: '', throttleTimeMs: 0, sessionId: 0, responses }, bytes: totalBytes };
  }

  async #listOffsets(request: M.ListOffsetsRequest, brokerId: number): Promise<M.ListOffsetsResponse> {
    const topics: M.ListOffsetsResponse['topics'] = [];
    for (const topic of request.topics) {
      const partitions: M.ListOffsetsPartitionResponseMessage[] = [];
      for (const want of topic.partitions) {
        const found = this.#leaderLog(topic.name, want.partitionIndex, brokerId, want.currentLeaderEpoch);
        if (!(found instanceof PartitionLog)) {
          partitions.push({ partitionIndex: want.partitionIndex, errorCode: ErrorCode[found.error], errorMessage: found.error, timestamp: -1, offset: -1, leaderEpoch: -1 });
          continue;
        }
        const log = found;
        const answer = { partitionIndex: want.partitionIndex, errorCode: 0, errorMessage: '', timestamp: -1, offset: -1, leaderEpoch: log.leaderEpoch };
        if (want.timestamp === -1) answer.offset = log.highWatermark;
        else if (want.timestamp === -2) answer.offset = log.logStartOffset;
        else {
          const records = await log.records();
          const match =
            want.timestamp === -3
              ? records.reduce<DecodedRecord | undefined>((best, record) => (!best || record.timestamp > best.timestamp ? record : best), undefined)
              : records.find((record) => record.timestamp >= want.timestamp);
          if (match) Object.assign(answer, { offset: match.offset, timestamp: match.timestamp });
        }
        partitions.push(answer);
      }
      topics.push({ name: topic.name, partitions });
    }
    return { throttleTimeMs: 0, topics };
  }

  #offsetForLeaderEpoch(request: M.OffsetForLeaderEpochRequest, brokerId: number): M.OffsetForLeaderEpochResponse {
    return {
      throttleTimeMs: 0,
      topics: request.topics.map((topic) => ({
        topic: topic.topic,
        partitions: topic.partitions.map((want) => {
          const found = this.#leaderLog(topic.topic, want.partition, brokerId, want.currentLeaderEpoch);
          if (!(found instanceof PartitionLog)) return { errorCode: ErrorCode[found.error], errorMessage: found.error, partition: want.partition, leaderEpoch: -1, endOffset: -1 };
          const end = found.endOffsetFor(want.leaderEpoch);
          return { errorCode: 0, errorMessage: '', partition: want.partition, leaderEpoch: end?.epoch ?? -1, endOffset: end?.endOffset ?? -1 };
        }),
      })),
    };
  }

  #initProducerId(request: M.InitProducerIdRequest): M.InitProducerIdResponse {
    if (request.producerId >= 0) {
      return { errorCode: 0, errorMessage: '', throttleTimeMs: 0, producerId: request.producerId, producerEpoch: request.producerEpoch + 1 };
    }
    return { errorCode: 0, errorMessage: '', throttleTimeMs: 0, producerId: this.#nextProducerId++, producerEpoch: 0 };
  }

  // ---- RaftkaAdmin -----------------------------------------------------------------------------

  #controllerUnavailable(name: string): boolean {
    const left = this.controllerMoving.get(name) ?? 0;
    if (left <= 0) return false;
    this.controllerMoving.set(name, left - 1);
    return true;
  }

  #configProblem(configs: Record<string, string>): string | undefined {
    try {
      validateTopicConfigs(configs);
      return undefined;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }

  #createTopics(request: M.CreateTopicsRequest): M.CreateTopicsResponse {
    const failed = (name: string, code: ErrorCodeName, message: string) => ({ name, topicId: Buffer.alloc(0), errorCode: ErrorCode[code], errorMessage: message, numPartitions: -1, replicationFactor: -1 });
    const topics = request.topics.map((topic) => {
      if (this.#controllerUnavailable(topic.name)) return failed(topic.name, 'NOT_CONTROLLER', 'the controller is moving');
      if (!TOPIC_NAME.test(topic.name) || topic.name === '.' || topic.name === '..') return failed(topic.name, 'INVALID_TOPIC_EXCEPTION', `${JSON.stringify(topic.name)} is not a legal topic name`);
      if (this.topics.has(topic.name)) return failed(topic.name, 'TOPIC_ALREADY_EXISTS', `topic ${topic.name} already exists`);
      const numPartitions = topic.numPartitions === -1 ? 1 : topic.numPartitions;
      if (numPartitions < 1) return failed(topic.name, 'INVALID_PARTITIONS', 'the partition count must be at least 1');
      const replicationFactor = topic.replicationFactor === -1 ? 1 : topic.replicationFactor;
      if (replicationFactor < 1 || replicationFactor > this.brokers.length) {
        return failed(topic.name, 'INVALID_REPLICATION_FACTOR', `replication factor ${replicationFactor} is larger than the ${this.brokers.length} available brokers`);
      }
      const configs = Object.fromEntries(topic.configs.map((config) => [config.name, config.value]));
      const problem = this.#configProblem(configs);
      if (problem) return failed(topic.name, 'INVALID_CONFIG', problem);
      if (!request.validateOnly) this.createTopic(topic.name, numPartitions, { configs });
      return { name: topic.name, topicId: this.topics.get(topic.name)?.topicId ?? Buffer.alloc(0), errorCode: 0, errorMessage: '', numPartitions, replicationFactor };
    });
    return { throttleTimeMs: 0, topics };
  }

  #deleteTopics(request: M.DeleteTopicsRequest): M.DeleteTopicsResponse {
    return {
      throttleTimeMs: 0,
      responses: request.topicNames.map((name) => {
        const topic = this.topics.get(name);
        if (!topic) return { name, topicId: Buffer.alloc(0), errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `topic ${name} does not exist` };
        this.topics.delete(name);
        return { name, topicId: topic.topicId, errorCode: 0, errorMessage: '' };
      }),
    };
  }

  #createPartitions(request: M.CreatePartitionsRequest): M.CreatePartitionsResponse {
    return {
      throttleTimeMs: 0,
      results: request.topics.map((want) => {
        const topic = this.topics.get(want.name);
        if (!topic) return { name: want.name, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `topic ${want.name} does not exist` };
        if (want.count <= topic.partitions.length) {
          return { name: want.name, errorCode: ErrorCode.INVALID_PARTITIONS, errorMessage: `topic has ${topic.partitions.length} partitions; the new count must be larger, got ${want.count}` };
        }
        if (!request.validateOnly) {
          for (let index = topic.partitions.length; index < want.count; index += 1) topic.partitions.push(new PartitionLog((index % this.brokers.length) + 1));
        }
        return { name: want.name, errorCode: 0, errorMessage: '' };
      }),
    };
  }

  #describeConfigs(request: M.DescribeConfigsRequest): M.DescribeConfigsResponse {
    return {
      throttleTimeMs: 0,
      results: request.resources.map((resource) => {
        const base = { resourceType: resource.resourceType, resourceName: resource.resourceName };
        if (resource.resourceType !== 'CONFIG_RESOURCE_TOPIC') {
          return { ...base, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'this test cluster describes topic configs only', configs: [] };
        }
        const topic = this.topics.get(resource.resourceName);
        if (!topic) return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `topic ${resource.resourceName} does not exist`, configs: [] };
        const resolved = resolveTopicConfig(topic.configs);
        const keys = resource.configurationKeys.length > 0 ? resource.configurationKeys : [...resolved.keys()];
        const configs = keys
          .filter((key) => resolved.has(key))
          .map((key) => ({
            name: key,
            value: String(resolved.get(key)),
            readOnly: false,
            configSource: (topic.configs.has(key) ? 'CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG' : 'CONFIG_SOURCE_DEFAULT_CONFIG') as M.ConfigSourceName,
            isSensitive: false,
            synonyms: [],
            configType: '',
            documentation: '',
          }));
        return { ...base, errorCode: 0, errorMessage: '', configs };
      }),
    };
  }

  #incrementalAlterConfigs(request: M.IncrementalAlterConfigsRequest): M.IncrementalAlterConfigsResponse {
    return {
      throttleTimeMs: 0,
      responses: request.resources.map((resource) => {
        const base = { resourceType: resource.resourceType, resourceName: resource.resourceName };
        const topic = this.topics.get(resource.resourceName);
        if (this.#controllerUnavailable(resource.resourceName)) return { ...base, errorCode: ErrorCode.NOT_CONTROLLER, errorMessage: 'the controller is moving' };
        if (resource.resourceType !== 'CONFIG_RESOURCE_TOPIC') return { ...base, errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'topic configs only' };
        if (!topic) return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `topic ${resource.resourceName} does not exist` };
        const next = new Map(topic.configs);
        for (const change of resource.configs) {
          const current = (next.get(change.name) ?? String(resolveTopicConfig(new Map()).get(change.name) ?? '')).split(',').filter(Boolean);
          switch (change.configOperation) {
            case 'ALTER_CONFIG_SET':
              next.set(change.name, change.value ?? '');
              break;
            case 'ALTER_CONFIG_DELETE':
              next.delete(change.name);
              break;
            case 'ALTER_CONFIG_APPEND':
              next.set(change.name, [...new Set([...current, ...(change.value ?? '').split(',')])].join(','));
              break;
            case 'ALTER_CONFIG_SUBTRACT':
              next.set(change.name, current.filter((item) => !(change.value ?? '').split(',').includes(item)).join(','));
              break;
          }
        }
        const problem = this.#configProblem(Object.fromEntries(next));
        if (problem) return { ...base, errorCode: ErrorCode.INVALID_CONFIG, errorMessage: problem };
        if (!request.validateOnly) topic.configs = next;
        return { ...base, errorCode: 0, errorMessage: '' };
      }),
    };
  }
}

/** Polls `condition` until it holds or `timeoutMs` passes (tests never sleep a fixed time). */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadlineMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise<void>((resolve) => setTimeout(resolve, 2));
  }
}
