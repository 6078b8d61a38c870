// The RaftkaClient gRPC service (proto/client.proto) of a broker: Metadata and DescribeCluster
// from the metadata image, Produce, Fetch, ListOffsets and OffsetForLeaderEpoch through the
// replica manager, and InitProducerId from producer-id blocks the controller hands out.
//
// This module only translates: every outcome a client can act on, including a malformed request,
// is a normal response carrying Kafka's error codes per item; gRPC status codes are left to
// transport failures and to bugs (INTERNAL), so a client can tell "the broker said no" from "the
// broker was unreachable". Admin APIs and consumer groups are other services.
//
// gRPC unary calls always answer, so acks=0 is answered too (after the leader's append, as
// acks=1); a client that asked for acks=0 may ignore the answer.

import * as grpc from '@grpc/grpc-js';
import { ErrorCode, invariant, type ErrorCodeName } from '@raftka/protocol';
import { NO_LEADER, type AllocateProducerIdsResponse, type BrokerRegistration, type MetadataImage, type TopicImage } from '@raftka/quorum';
import type { LogLogger } from '../log/partition-log.js';
import { describeError, type ReplicaManager } from '../replica-manager/replica-manager.js';
import { GROUP_METADATA_TOPIC_NAME } from '../group/group-runtime.js';
import {
  fetchRequestFromProto,
  fetchResponseToProto,
  listOffsetsRequestFromProto,
  listOffsetsResponseToProto,
  offsetForLeaderEpochRequestFromProto,
  offsetForLeaderEpochResponseToProto,
  produceRequestFromProto,
  produceResponseToProto,
} from './client-mapping.js';
import {
  loadRaftkaClientService,
  type ProtoBrokerAddress,
  type ProtoDescribeClusterResponse,
  type ProtoFetchRequest,
  type ProtoInitProducerIdRequest,
  type ProtoInitProducerIdResponse,
  type ProtoListOffsetsRequest,
  type ProtoMetadataRequest,
  type ProtoMetadataResponse,
  type ProtoOffsetForLeaderEpochRequest,
  type ProtoProduceRequest,
  type ProtoTopicMetadata,
} from './client-proto.js';

/** Kafka's "authorized operations not requested" sentinel. */
const AUTHORIZED_OPERATIONS_OMITTED = -(2 ** 31);

export interface ClientServiceOptions {
  replicaManager: ReplicaManager;
  clusterId: string;
  /** The active controller's node id, -1 when unknown. */
  controllerId?: () => number;
  /**
   * The listener this service is bound to: Metadata and DescribeCluster answer each broker's
   * endpoint of that name (its first endpoint when it has none); default: each broker's first endpoint.
   */
  listenerName?: string;
  /**
   * Creates topics a Metadata request names when it allows automatic creation
   * (`auto.create.topics.enable`); absent: never. Names are validated by the controller.
   */
  autoCreateTopics?: (names: string[]) => Promise<void>;
  /** The controller's AllocateProducerIds for this broker (a block of ids per call). */
  allocateProducerIds: () => Promise<AllocateProducerIdsResponse>;
  /**
   * The allocator to hand ids out from, when the services of several listeners share one (so
   * one block is used up before the next is asked for); default: a new one over allocateProducerIds.
   */
  producerIdAllocator?: ProducerIdAllocator;
  logger?: LogLogger;
}

/**
 * Hands out producer ids one at a time from blocks the controller allocates (Kafka's
 * ProducerIdManager). Calls are served in order; a new block is asked for only when one runs out.
 */
export class ProducerIdAllocator {
  private next = 0;
  private end = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly allocateBlock: () => Promise<AllocateProducerIdsResponse>) {}

  allocate(): Promise<number> {
    const run = this.chain.then(async () => {
      if (this.next >= this.end) {
        const block = await this.allocateBlock();
        invariant(block.count > 0 && block.firstProducerId >= 0, 'the controller hands out non-empty blocks of non-negative ids');
        this.next = block.firstProducerId;
        this.end = block.firstProducerId + block.count;
      }
      return this.next++;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}

type UnaryHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

function unary<Request>(logger: LogLogger, method: string, run: (request: Request) => Promise<unknown> | unknown): UnaryHandler {
  return (call, callback) => {
    Promise.resolve()
      .then(() => run(call.request as Request))
      .then(
        (response) => callback(null, response),
        (error: unknown) => {
          // The replica manager answers operational failures inside the response; reaching
          // here means a bug or a malformed message protobuf accepted.
          logger.error({ err: error, method }, 'client request failed unexpectedly');
          callback({ code: grpc.status.INTERNAL, details: error instanceof Error ? error.message : String(error) });
        },
      );
  };
}

/**
 * Requests of one paired stream that may wait for their answer before the broker stops reading
 * the stream: a client that sends without reading answers is held back by HTTP/2 flow control
 * instead of growing the broker's queue. Well above a producer's in-flight limit (5 per broker).
 */
const PAIRED_STREAM_PENDING_MAX = 64;

/**
 * A paired stream (ProduceStream, FetchStream): every request is handed to `run` as soon as it
 * arrives, so requests start in arrival order (the replica manager then appends to each
 * partition in that order), and the answers are written in the same order, each after all
 * earlier ones. A failure that is not an answer (a bug) ends the stream with INTERNAL; requests
 * after it are not answered.
 */
function pairedStream<Request>(logger: LogLogger, method: string, run: (request: Request) => Promise<unknown>): grpc.handleBidiStreamingCall<unknown, unknown> {
  return (call) => {
    // Invariant: answers leave in request order; `pending` counts requests not yet answered.
    let previous: Promise<void> = Promise.resolve();
    let pending = 0;
    let paused = false;
    let inputEnded = false;
    let finished = false;
    const finishIfDrained = (): void => {
      if (inputEnded && pending === 0 && !finished) {
        finished = true;
        call.end();
      }
    };
    call.on('data', (request: Request) => {
      pending += 1;
      if (pending >= PAIRED_STREAM_PENDING_MAX && !paused) {
        paused = true;
        call.pause();
      }
      let answer: Promise<unknown>;
      try {
        answer = run(request);
      } catch (error) {
        answer = Promise.reject(error);
      }
      previous = previous
        .then(() => answer)
        .then(
          (response) => {
            pending -= 1;
            if (finished) return;
            call.write(response);
            if (paused && pending < PAIRED_STREAM_PENDING_MAX / 2) {
              paused = false;
              call.resume();
            }
            finishIfDrained();
          },
          (error: unknown) => {
            pending -= 1;
            if (finished) return;
            finished = true;
            logger.error({ err: error, method }, 'client request failed unexpectedly');
            call.emit('error', { code: grpc.status.INTERNAL, details: error instanceof Error ? error.message : String(error) });
          },
        );
    });
    call.on('end', () => {
      inputEnded = true;
      void previous.then(finishIfDrained);
    });
    call.on('cancelled', () => {
      // The client went away: answers still being worked out are dropped.
      finished = true;
    });
    call.on('error', () => {
      finished = true;
    });
  };
}

function brokerAddress(broker: BrokerRegistration, listenerName: string | undefined): ProtoBrokerAddress | undefined {
  const endpoint = (listenerName === undefined ? undefined : broker.endpoints.find((candidate) => candidate.name === listenerName)) ?? broker.endpoints[0];
  if (endpoint === undefined) return undefined;
  return { nodeId: broker.brokerId, host: endpoint.host, port: endpoint.port, rack: broker.rack ?? '' };
}

function liveBrokers(image: MetadataImage | undefined, listenerName: string | undefined): ProtoBrokerAddress[] {
  if (image === undefined) return [];
  const addresses: ProtoBrokerAddress[] = [];
  for (const broker of image.brokers.values()) {
    if (broker.fenced) continue;
    const address = brokerAddress(broker, listenerName);
    if (address !== undefined) addresses.push(address);
  }
  return addresses.sort((a, b) => a.nodeId - b.nodeId);
}

function topicMetadata(topic: TopicImage): ProtoTopicMetadata {
  return {
    errorCode: 0,
    errorMessage: '',
    name: topic.name,
    topicId: Buffer.from(topic.topicId, 'base64url'),
    isInternal: topic.name.startsWith('__'),
    partitions: topic.partitions.map((partition) => {
      const leaderless = partition.leader === NO_LEADER;
      return {
        errorCode: leaderless ? ErrorCode.LEADER_NOT_AVAILABLE : 0,
        errorMessage: leaderless ? `partition ${topic.name}-${partition.partitionId} has no leader; retry after an election` : '',
        partitionIndex: partition.partitionId,
        leaderId: partition.leader,
        leaderEpoch: partition.leaderEpoch,
        replicaNodes: [...partition.replicas],
        isrNodes: [...partition.isr],
        offlineReplicas: [],
      };
    }),
  };
}

function missingTopic(name: string, code: ErrorCodeName, message: string): ProtoTopicMetadata {
  return { errorCode: ErrorCode[code], errorMessage: message, name, topicId: Buffer.alloc(0), isInternal: false, partitions: [] };
}

/** The RaftkaClient implementation (for servers that assemble services themselves). */
export function clientServiceImplementation(options: ClientServiceOptions): grpc.UntypedServiceImplementation {
  const { replicaManager, listenerName } = options;
  const logger = options.logger ?? replicaManagerLogger;
  const controllerId = options.controllerId ?? (() => -1);
  const producerIds = options.producerIdAllocator ?? new ProducerIdAllocator(options.allocateProducerIds);
  // Shared by Produce and ProduceStream. Reaches the replica manager synchronously, so calls
  // made in arrival order append in that order.
  const produce = async (request: ProtoProduceRequest): Promise<unknown> => {
    if (request.transactionalId) {
      const failed = produceRequestFromProto(request).partitions.map((item) => ({
        topic: item.topic,
        partition: item.partition,
        errorCode: 'INVALID_REQUEST' as ErrorCodeName,
        errorMessage: 'transactional produce is not supported yet; use an idempotent producer without transactional.id',
        baseOffset: -1,
        logAppendTimeMs: -1,
        logStartOffset: -1,
        currentLeader: undefined,
      }));
      return produceResponseToProto(failed);
    }
    const produceRequest = produceRequestFromProto(request);
    // Only the group coordinator writes __consumer_offsets, through the replica manager directly;
    // a client append there is refused as Kafka refuses it.
    if (!produceRequest.partitions.some((item) => item.topic === GROUP_METADATA_TOPIC_NAME)) {
      return produceResponseToProto(await replicaManager.produce(produceRequest));
    }
    const allowed = produceRequest.partitions.filter((item) => item.topic !== GROUP_METADATA_TOPIC_NAME);
    const appended = replicaManager.produce({ ...produceRequest, partitions: allowed });
    const answers = [...(await appended)];
    return produceResponseToProto(
      produceRequest.partitions.map((item) =>
        item.topic === GROUP_METADATA_TOPIC_NAME
          ? {
              topic: item.topic,
              partition: item.partition,
              errorCode: 'INVALID_TOPIC_EXCEPTION' as ErrorCodeName,
              errorMessage: `Cannot append to internal topic ${GROUP_METADATA_TOPIC_NAME}`,
              baseOffset: -1,
              logAppendTimeMs: -1,
              logStartOffset: -1,
              currentLeader: undefined,
            }
          : answers.shift()!,
      ),
    );
  };
  return {
    Metadata: unary<ProtoMetadataRequest>(logger, 'Metadata', (request): ProtoMetadataResponse => {
      const image = replicaManager.image;
      const topics: ProtoTopicMetadata[] = [];
      if (request.allTopics) {
        for (const topic of image?.topicsById.values() ?? []) topics.push(topicMetadata(topic));
        topics.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      } else {
        const toCreate: string[] = [];
        for (const name of request.topics ?? []) {
          const topic = image?.topicByName(name);
          if (topic !== undefined) {
            topics.push(topicMetadata(topic));
          } else if (request.allowAutoTopicCreation && options.autoCreateTopics !== undefined) {
            // As Kafka: answer "not available yet" and create it; the client's retry finds it.
            toCreate.push(name);
            topics.push(missingTopic(name, 'LEADER_NOT_AVAILABLE', `topic ${name} is being created (auto.create.topics.enable); retry shortly`));
          } else {
            topics.push(missingTopic(name, 'UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist; create it first`));
          }
        }
        if (toCreate.length > 0) {
          options.autoCreateTopics!(toCreate).catch((error: unknown) => logger.warn({ err: error, topics: toCreate }, 'automatic topic creation failed'));
        }
      }
      return { brokers: liveBrokers(image, listenerName), clusterId: options.clusterId, controllerId: controllerId(), topics };
    }),
    DescribeCluster: unary<unknown>(logger, 'DescribeCluster', (): ProtoDescribeClusterResponse => ({
      errorCode: 0,
      errorMessage: '',
      clusterId: options.clusterId,
      controllerId: controllerId(),
      brokers: liveBrokers(replicaManager.image, listenerName),
      clusterAuthorizedOperations: AUTHORIZED_OPERATIONS_OMITTED,
    })),
    Produce: unary<ProtoProduceRequest>(logger, 'Produce', (request) => produce(request)),
    ProduceStream: pairedStream<ProtoProduceRequest>(logger, 'ProduceStream', (request) => produce(request)),
    Fetch: unary<ProtoFetchRequest>(logger, 'Fetch', async (request) => fetchResponseToProto(await replicaManager.fetch(fetchRequestFromProto(request)))),
    FetchStream: pairedStream<ProtoFetchRequest>(logger, 'FetchStream', async (request) =>
      fetchResponseToProto(await replicaManager.fetch(fetchRequestFromProto(request))),
    ),
    ListOffsets: unary<ProtoListOffsetsRequest>(logger, 'ListOffsets', async (request) =>
      listOffsetsResponseToProto(await replicaManager.listOffsets(listOffsetsRequestFromProto(request))),
    ),
    OffsetForLeaderEpoch: unary<ProtoOffsetForLeaderEpochRequest>(logger, 'OffsetForLeaderEpoch', async (request) =>
      offsetForLeaderEpochResponseToProto(await replicaManager.offsetForLeaderEpoch(offsetForLeaderEpochRequestFromProto(request))),
    ),
    InitProducerId: unary<ProtoInitProducerIdRequest>(logger, 'InitProducerId', async (request): Promise<ProtoInitProducerIdResponse> => {
      const failed = (code: ErrorCodeName, message: string): ProtoInitProducerIdResponse => ({
        errorCode: ErrorCode[code],
        errorMessage: message,
        throttleTimeMs: 0,
        producerId: -1,
        producerEpoch: -1,
      });
      if (request.transactionalId) return failed('INVALID_REQUEST', 'transactions are not supported yet; omit transactional.id for an idempotent producer');
      try {
        // Without transactions every (re-)initialisation gets a fresh id at epoch 0: sequences of
        // a fresh id start over, which is what a KIP-360 re-initialisation needs too.
        return { errorCode: 0, errorMessage: '', throttleTimeMs: 0, producerId: await producerIds.allocate(), producerEpoch: 0 };
      } catch (error) {
        const { code, message } = describeError(error);
        // Whatever kept the controller from handing out ids (unreachable, NOT_CONTROLLER during an
        // election, a stale broker epoch), the producer's answer is the retriable one: try again.
        return failed('COORDINATOR_NOT_AVAILABLE', `could not allocate a producer id (${code}: ${message}); retry shortly`);
      }
    }),
  };
}

const replicaManagerLogger: LogLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
} as unknown as LogLogger;

/** Adds the RaftkaClient service to `server` (which the process binds and starts). */
export function addClientService(server: grpc.Server, options: ClientServiceOptions): void {
  server.addService(loadRaftkaClientService().service, clientServiceImplementation(options));
}
