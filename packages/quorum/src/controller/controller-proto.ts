// proto/controller.proto <-> the controller's typed requests and responses (controller-types.ts).
//
// Both sides live here: the active controller's service (controller-service.ts) parses requests
// and formats responses, the ControllerClient (controller-client.ts) does the reverse. Keeping the
// two directions next to each other is what keeps them symmetric.
//
// Errors travel in the response, as Kafka's do: a call-level `ControllerError` (NOT_CONTROLLER
// with the active controller's id and address, INVALID_REQUEST, THROTTLING_QUOTA_EXCEEDED, ...)
// and an `ItemError` per topic / partition / resource. gRPC status codes are left to transport
// failures, so a client can tell "the controller said no" from "the controller was unreachable".

import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ErrorCode, RaftkaError, errorCodeName, type ErrorCodeName } from '@raftka/protocol';
import type { BrokerEndpoint, ConfigResourceType } from '../metadata/metadata-records.js';
import { findProtoDirectory } from '../transport/proto-path.js';
import { PROTO_LOADER_OPTIONS } from '../transport/quorum-proto.js';
import { NotControllerError } from './controller-errors.js';
import type {
  AllocateProducerIdsRequest,
  AllocateProducerIdsResponse,
  AlterConfigOpKind,
  AlterPartitionRequest,
  AlterPartitionResponse,
  BrokerHeartbeatRequest,
  BrokerHeartbeatResponse,
  BrokerRegistrationRequest,
  BrokerRegistrationResponse,
  ConfigSourceKind,
  CreatePartitionsRequest,
  CreatePartitionsResponse,
  CreateTopicsRequest,
  CreateTopicsResponse,
  DeleteTopicsRequest,
  DeleteTopicsResponse,
  DescribeConfigsRequest,
  DescribeConfigsResponse,
  ElectLeadersResponse,
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponse,
  ItemError,
} from './controller-types.js';

let cachedService: grpc.ServiceClientConstructor | undefined;

/** The ControllerService client constructor (whose `.service` is the server definition). */
export function loadControllerService(): grpc.ServiceClientConstructor {
  if (cachedService) return cachedService;
  const file = path.join(findProtoDirectory('controller.proto'), 'controller.proto');
  const definition = protoLoader.loadSync(file, PROTO_LOADER_OPTIONS);
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    raftka: { controller: { ControllerService: grpc.ServiceClientConstructor } };
  };
  cachedService = loaded.raftka.controller.ControllerService;
  return cachedService;
}

// ---- Shapes as @grpc/proto-loader hands them over (camelCase, longs as numbers, enums as names) ----

export interface ProtoControllerError {
  code: number;
  name: string;
  message: string;
  activeControllerId: number;
  activeControllerAddress: string;
}

export interface ProtoItemError {
  code: number;
  name: string;
  message: string;
}

type ProtoObject = Record<string, unknown>;

function invalid(what: string): RaftkaError {
  return new RaftkaError('INVALID_REQUEST', `malformed controller request: ${what}`, { retriable: false });
}

function object(value: unknown, field: string): ProtoObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${field} is not a message`);
  return value as ProtoObject;
}

function int(message: ProtoObject, field: string): number {
  const value = message[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid(`${field} is not an integer`);
  return value;
}

function str(message: ProtoObject, field: string): string {
  const value = message[field];
  if (typeof value !== 'string') throw invalid(`${field} is not a string`);
  return value;
}

function bool(message: ProtoObject, field: string): boolean {
  const value = message[field];
  if (typeof value !== 'boolean') throw invalid(`${field} is not a boolean`);
  return value;
}

function list(message: ProtoObject, field: string): unknown[] {
  const value = message[field];
  if (!Array.isArray(value)) throw invalid(`${field} is not a list`);
  return value;
}

function ints(message: ProtoObject, field: string): number[] {
  return list(message, field).map((value) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid(`${field} holds a non-integer`);
    return value;
  });
}

/** Kafka's "use the default" is -1 (and 0 is never a valid count); both mean "not given". */
function optionalCount(value: number): number | undefined {
  return value <= 0 ? undefined : value;
}

function assignments(message: ProtoObject, field: string): number[][] | undefined {
  const entries = list(message, field).map((entry) => ints(object(entry, field), 'brokerIds'));
  return entries.length === 0 ? undefined : entries;
}

function assignmentsToProto(value: number[][] | undefined): { brokerIds: number[] }[] {
  return (value ?? []).map((brokerIds) => ({ brokerIds }));
}

const resourceTypeNames: Record<ConfigResourceType, string> = { topic: 'CONFIG_RESOURCE_TOPIC', broker: 'CONFIG_RESOURCE_BROKER' };

function resourceTypeFromProto(value: unknown): ConfigResourceType {
  if (value === 'CONFIG_RESOURCE_TOPIC') return 'topic';
  if (value === 'CONFIG_RESOURCE_BROKER') return 'broker';
  throw invalid(`resource type ${String(value)} is not TOPIC or BROKER`);
}

const sourceNames: Record<ConfigSourceKind, string> = {
  topic: 'CONFIG_SOURCE_TOPIC',
  'dynamic-broker': 'CONFIG_SOURCE_DYNAMIC_BROKER',
  'dynamic-default-broker': 'CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER',
  'static-broker': 'CONFIG_SOURCE_STATIC_BROKER',
  default: 'CONFIG_SOURCE_DEFAULT',
};

const opNames: Record<AlterConfigOpKind, string> = {
  set: 'ALTER_CONFIG_OP_SET',
  delete: 'ALTER_CONFIG_OP_DELETE',
  append: 'ALTER_CONFIG_OP_APPEND',
  subtract: 'ALTER_CONFIG_OP_SUBTRACT',
};

function reverse<K extends string>(names: Record<K, string>): Map<string, K> {
  return new Map((Object.entries(names) as [K, string][]).map(([kind, name]) => [name, kind]));
}

const sourceKinds = reverse(sourceNames);
const opKinds = reverse(opNames);

// ---- Errors ----

export function itemErrorToProto(error: ItemError | undefined): ProtoItemError | null {
  return error === undefined ? null : { code: ErrorCode[error.code], name: error.code, message: error.message };
}

export function itemErrorFromProto(value: unknown): ItemError | undefined {
  if (value === null || value === undefined) return undefined;
  const message = object(value, 'error');
  const code = int(message, 'code');
  if (code === 0) return undefined;
  return { code: errorCodeName(code), message: str(message, 'message') };
}

/** A failed call as the response's ControllerError (every response type has one). */
export function controllerErrorToProto(error: unknown): ProtoControllerError {
  if (error instanceof NotControllerError) {
    return {
      code: error.errorCode,
      name: error.code,
      message: error.message,
      activeControllerId: error.activeControllerId ?? -1,
      activeControllerAddress: error.activeControllerAddress ?? '',
    };
  }
  const code: ErrorCodeName = error instanceof RaftkaError ? error.code : 'UNKNOWN_SERVER_ERROR';
  const message = error instanceof Error ? error.message : String(error);
  return { code: ErrorCode[code], name: code, message, activeControllerId: -1, activeControllerAddress: '' };
}

/** The response's ControllerError as a thrown error, or undefined when the call succeeded. */
export function controllerErrorFromProto(value: unknown): RaftkaError | undefined {
  if (value === null || value === undefined) return undefined;
  const message = object(value, 'error');
  const code = int(message, 'code');
  if (code === 0) return undefined;
  const name = errorCodeName(code);
  if (name === 'NOT_CONTROLLER') {
    const activeId = int(message, 'activeControllerId');
    const address = str(message, 'activeControllerAddress');
    return new NotControllerError({ ...(activeId >= 0 ? { activeControllerId: activeId } : {}), ...(address ? { activeControllerAddress: address } : {}) });
  }
  return new RaftkaError(name, str(message, 'message'));
}

// ---- Requests: proto -> typed (server side) and typed -> proto (client side) ----

export function brokerRegistrationFromProto(value: unknown): BrokerRegistrationRequest {
  const message = object(value, 'request');
  const endpoints: BrokerEndpoint[] = list(message, 'listeners').map((entry) => {
    const listener = object(entry, 'listeners');
    return { name: str(listener, 'name'), host: str(listener, 'host'), port: int(listener, 'port'), securityProtocol: str(listener, 'securityProtocol') };
  });
  const rack = str(message, 'rack');
  return { brokerId: int(message, 'brokerId'), incarnationId: str(message, 'incarnationId'), endpoints, ...(rack ? { rack } : {}) };
}

export function brokerRegistrationToProto(request: BrokerRegistrationRequest): unknown {
  return { brokerId: request.brokerId, incarnationId: request.incarnationId, listeners: request.endpoints, rack: request.rack ?? '' };
}

export function brokerHeartbeatFromProto(value: unknown): BrokerHeartbeatRequest {
  const message = object(value, 'request');
  return {
    brokerId: int(message, 'brokerId'),
    brokerEpoch: int(message, 'brokerEpoch'),
    currentMetadataOffset: int(message, 'currentMetadataOffset'),
    wantFence: bool(message, 'wantFence'),
    wantShutDown: bool(message, 'wantShutDown'),
  };
}

export function brokerSessionFromProto(value: unknown): { brokerId: number; brokerEpoch: number } {
  const message = object(value, 'request');
  return { brokerId: int(message, 'brokerId'), brokerEpoch: int(message, 'brokerEpoch') };
}

export function alterPartitionFromProto(value: unknown): AlterPartitionRequest {
  const message = object(value, 'request');
  return {
    brokerId: int(message, 'brokerId'),
    brokerEpoch: int(message, 'brokerEpoch'),
    topics: list(message, 'topics').map((entry) => {
      const topic = object(entry, 'topics');
      return {
        topicId: str(topic, 'topicId'),
        partitions: list(topic, 'partitions').map((item) => {
          const partition = object(item, 'partitions');
          return {
            partitionId: int(partition, 'partitionId'),
            leaderEpoch: int(partition, 'leaderEpoch'),
            partitionEpoch: int(partition, 'partitionEpoch'),
            newIsr: ints(partition, 'newIsr'),
          };
        }),
      };
    }),
  };
}

export function createTopicsFromProto(value: unknown): CreateTopicsRequest {
  const message = object(value, 'request');
  return {
    validateOnly: bool(message, 'validateOnly'),
    topics: list(message, 'topics').map((entry) => {
      const topic = object(entry, 'topics');
      const numPartitions = optionalCount(int(topic, 'numPartitions'));
      const replicationFactor = optionalCount(int(topic, 'replicationFactor'));
      const given = assignments(topic, 'assignments');
      const configs = object(topic['configs'] ?? {}, 'configs') as Record<string, string>;
      return {
        name: str(topic, 'name'),
        ...(numPartitions === undefined ? {} : { numPartitions }),
        ...(replicationFactor === undefined ? {} : { replicationFactor }),
        ...(given === undefined ? {} : { assignments: given }),
        ...(Object.keys(configs).length === 0 ? {} : { configs }),
      };
    }),
  };
}

export function createTopicsToProto(request: CreateTopicsRequest): unknown {
  return {
    validateOnly: request.validateOnly ?? false,
    topics: request.topics.map((topic) => ({
      name: topic.name,
      numPartitions: topic.numPartitions ?? -1,
      replicationFactor: topic.replicationFactor ?? -1,
      assignments: assignmentsToProto(topic.assignments),
      configs: topic.configs ?? {},
    })),
  };
}

export function deleteTopicsFromProto(value: unknown): DeleteTopicsRequest {
  const message = object(value, 'request');
  return {
    names: list(message, 'names').map((name) => {
      if (typeof name !== 'string') throw invalid('names holds a non-string');
      return name;
    }),
  };
}

export function createPartitionsFromProto(value: unknown): CreatePartitionsRequest {
  const message = object(value, 'request');
  return {
    validateOnly: bool(message, 'validateOnly'),
    topics: list(message, 'topics').map((entry) => {
      const topic = object(entry, 'topics');
      const given = assignments(topic, 'assignments');
      return { name: str(topic, 'name'), count: int(topic, 'count'), ...(given === undefined ? {} : { assignments: given }) };
    }),
  };
}

export function createPartitionsToProto(request: CreatePartitionsRequest): unknown {
  return {
    validateOnly: request.validateOnly ?? false,
    topics: request.topics.map((topic) => ({ name: topic.name, count: topic.count, assignments: assignmentsToProto(topic.assignments) })),
  };
}

export function describeConfigsFromProto(value: unknown): DescribeConfigsRequest {
  const message = object(value, 'request');
  return {
    resources: list(message, 'resources').map((entry) => {
      const resource = object(entry, 'resources');
      const keys = list(resource, 'keys').map((key) => {
        if (typeof key !== 'string') throw invalid('keys holds a non-string');
        return key;
      });
      return {
        resourceType: resourceTypeFromProto(resource['resourceType']),
        resourceName: str(resource, 'resourceName'),
        ...(keys.length === 0 ? {} : { keys }),
      };
    }),
  };
}

export function describeConfigsToProto(request: DescribeConfigsRequest): unknown {
  return {
    resources: request.resources.map((resource) => ({
      resourceType: resourceTypeNames[resource.resourceType],
      resourceName: resource.resourceName,
      keys: resource.keys ?? [],
    })),
  };
}

export function incrementalAlterConfigsFromProto(value: unknown): IncrementalAlterConfigsRequest {
  const message = object(value, 'request');
  return {
    validateOnly: bool(message, 'validateOnly'),
    resources: list(message, 'resources').map((entry) => {
      const resource = object(entry, 'resources');
      return {
        resourceType: resourceTypeFromProto(resource['resourceType']),
        resourceName: str(resource, 'resourceName'),
        ops: list(resource, 'ops').map((item) => {
          const op = object(item, 'ops');
          const kind = opKinds.get(String(op['op']));
          if (kind === undefined) throw invalid(`config op ${String(op['op'])}`);
          return { name: str(op, 'name'), op: kind, value: str(op, 'value') };
        }),
      };
    }),
  };
}

export function incrementalAlterConfigsToProto(request: IncrementalAlterConfigsRequest): unknown {
  return {
    validateOnly: request.validateOnly ?? false,
    resources: request.resources.map((resource) => ({
      resourceType: resourceTypeNames[resource.resourceType],
      resourceName: resource.resourceName,
      ops: resource.ops.map((op) => ({ name: op.name, op: opNames[op.op], value: op.value ?? '' })),
    })),
  };
}

export function allocateProducerIdsFromProto(value: unknown): AllocateProducerIdsRequest {
  const message = object(value, 'request');
  return { brokerId: int(message, 'brokerId'), brokerEpoch: int(message, 'brokerEpoch') };
}

// ---- Responses: typed -> proto (server side) and proto -> typed (client side) ----

export function createTopicsResponseToProto(response: CreateTopicsResponse): unknown {
  return {
    topics: response.topics.map((topic) => ({
      name: topic.name,
      topicId: topic.topicId ?? '',
      numPartitions: topic.numPartitions,
      replicationFactor: topic.replicationFactor,
      error: itemErrorToProto(topic.error),
    })),
  };
}

export function createTopicsResponseFromProto(message: ProtoObject): CreateTopicsResponse {
  return {
    topics: list(message, 'topics').map((entry) => {
      const topic = object(entry, 'topics');
      const error = itemErrorFromProto(topic['error']);
      const topicId = str(topic, 'topicId');
      return {
        name: str(topic, 'name'),
        ...(topicId ? { topicId } : {}),
        numPartitions: int(topic, 'numPartitions'),
        replicationFactor: int(topic, 'replicationFactor'),
        ...(error ? { error } : {}),
      };
    }),
  };
}

export function deleteTopicsResponseToProto(response: DeleteTopicsResponse): unknown {
  return { topics: response.topics.map((topic) => ({ name: topic.name, topicId: topic.topicId ?? '', error: itemErrorToProto(topic.error) })) };
}

export function deleteTopicsResponseFromProto(message: ProtoObject): DeleteTopicsResponse {
  return {
    topics: list(message, 'topics').map((entry) => {
      const topic = object(entry, 'topics');
      const error = itemErrorFromProto(topic['error']);
      const topicId = str(topic, 'topicId');
      return { name: str(topic, 'name'), ...(topicId ? { topicId } : {}), ...(error ? { error } : {}) };
    }),
  };
}

export function createPartitionsResponseToProto(response: CreatePartitionsResponse): unknown {
  return { topics: response.topics.map((topic) => ({ name: topic.name, error: itemErrorToProto(topic.error) })) };
}

export function createPartitionsResponseFromProto(message: ProtoObject): CreatePartitionsResponse {
  return {
    topics: list(message, 'topics').map((entry) => {
      const topic = object(entry, 'topics');
      const error = itemErrorFromProto(topic['error']);
      return { name: str(topic, 'name'), ...(error ? { error } : {}) };
    }),
  };
}

export function describeConfigsResponseToProto(response: DescribeConfigsResponse): unknown {
  return {
    results: response.results.map((result) => ({
      resourceType: resourceTypeNames[result.resourceType],
      resourceName: result.resourceName,
      error: itemErrorToProto(result.error),
      configs: result.configs.map((config) => ({ ...config, source: sourceNames[config.source] })),
    })),
  };
}

export function describeConfigsResponseFromProto(message: ProtoObject): DescribeConfigsResponse {
  return {
    results: list(message, 'results').map((entry) => {
      const result = object(entry, 'results');
      const error = itemErrorFromProto(result['error']);
      return {
        resourceType: resourceTypeFromProto(result['resourceType']),
        resourceName: str(result, 'resourceName'),
        ...(error ? { error } : {}),
        configs: list(result, 'configs').map((item) => {
          const config = object(item, 'configs');
          return {
            name: str(config, 'name'),
            value: str(config, 'value'),
            source: sourceKinds.get(String(config['source'])) ?? 'default',
            isDefault: bool(config, 'isDefault'),
            readOnly: bool(config, 'readOnly'),
            sensitive: bool(config, 'sensitive'),
            doc: str(config, 'doc'),
          };
        }),
      };
    }),
  };
}

export function incrementalAlterConfigsResponseToProto(response: IncrementalAlterConfigsResponse): unknown {
  return {
    results: response.results.map((result) => ({
      resourceType: resourceTypeNames[result.resourceType],
      resourceName: result.resourceName,
      error: itemErrorToProto(result.error),
    })),
  };
}

export function incrementalAlterConfigsResponseFromProto(message: ProtoObject): IncrementalAlterConfigsResponse {
  return {
    results: list(message, 'results').map((entry) => {
      const result = object(entry, 'results');
      const error = itemErrorFromProto(result['error']);
      return { resourceType: resourceTypeFromProto(result['resourceType']), resourceName: str(result, 'resourceName'), ...(error ? { error } : {}) };
    }),
  };
}

export function alterPartitionResponseToProto(response: AlterPartitionResponse): unknown {
  return {
    topics: response.topics.map((topic) => ({
      topicId: topic.topicId,
      partitions: topic.partitions.map((partition) => ({ ...partition, error: itemErrorToProto(partition.error) })),
    })),
  };
}

export function alterPartitionResponseFromProto(message: ProtoObject): AlterPartitionResponse {
  return {
    topics: list(message, 'topics').map((entry) => {
      const topic = object(entry, 'topics');
      return {
        topicId: str(topic, 'topicId'),
        partitions: list(topic, 'partitions').map((item) => {
          const partition = object(item, 'partitions');
          const error = itemErrorFromProto(partition['error']);
          return {
            partitionId: int(partition, 'partitionId'),
            ...(error ? { error } : {}),
            leader: int(partition, 'leader'),
            leaderEpoch: int(partition, 'leaderEpoch'),
            isr: ints(partition, 'isr'),
            partitionEpoch: int(partition, 'partitionEpoch'),
          };
        }),
      };
    }),
  };
}

export function brokerRegistrationResponseFromProto(message: ProtoObject): BrokerRegistrationResponse {
  return { brokerEpoch: int(message, 'brokerEpoch') };
}

export function brokerHeartbeatResponseFromProto(message: ProtoObject): BrokerHeartbeatResponse {
  return { isCaughtUp: bool(message, 'isCaughtUp'), isFenced: bool(message, 'isFenced'), shouldShutDown: bool(message, 'shouldShutDown') };
}

export function electLeadersResponseFromProto(message: ProtoObject): ElectLeadersResponse {
  return { electedCount: int(message, 'electedCount'), more: bool(message, 'more') };
}

export function allocateProducerIdsResponseFromProto(message: ProtoObject): AllocateProducerIdsResponse {
  return { firstProducerId: int(message, 'firstProducerId'), count: int(message, 'count') };
}
