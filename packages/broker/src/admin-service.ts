// The RaftkaAdmin service of proto/client.proto on a broker: CreateTopics, DeleteTopics,
// CreatePartitions, DescribeConfigs and IncrementalAlterConfigs, forwarded to the active
// controller (as Kafka brokers forward admin requests since KIP-590).
//
// Clients talk to any broker; only the controller decides. After a change is committed, the broker
// waits (up to the request's timeout) until its own metadata image shows it, so a client that
// creates a topic and then asks this broker for its metadata finds it.

import * as grpc from '@grpc/grpc-js';
import { ErrorCode, RaftkaError, type ErrorCodeName, type Logger } from '@raftka/protocol';
import {
  type ConfigSourceKind,
  type ControllerClient,
  type ItemError,
  type MetadataImage,
} from '@raftka/quorum';

/** How long a broker waits for its image to show a committed admin change when the request gives no timeout. */
export const ADMIN_PROPAGATION_WAIT_MS_DEFAULT = 5_000;

export interface AdminServiceOptions {
  controller: ControllerClient;
  /** This broker's current image (live). */
  image: () => MetadataImage | undefined;
  /** Resolves once the image satisfies `condition`, or rejects at the deadline. */
  waitForImage: (condition: (image: MetadataImage) => boolean, timeoutMs: number) => Promise<unknown>;
  logger: Logger;
}

type Wire = Record<string, unknown>;

function errorFields(error: ItemError | undefined): { errorCode: number; errorMessage: string } {
  return error === undefined ? { errorCode: 0, errorMessage: '' } : { errorCode: ErrorCode[error.code], errorMessage: error.message };
}

function callError(error: unknown): { errorCode: number; errorMessage: string } {
  const code: ErrorCodeName = error instanceof RaftkaError ? error.code : 'UNKNOWN_SERVER_ERROR';
  return { errorCode: ErrorCode[code], errorMessage: error instanceof Error ? error.message : String(error) };
}

const resourceTypes = { CONFIG_RESOURCE_TOPIC: 'topic', CONFIG_RESOURCE_BROKER: 'broker' } as const;
const resourceTypeNames = { topic: 'CONFIG_RESOURCE_TOPIC', broker: 'CONFIG_RESOURCE_BROKER' } as const;
const opKinds = { ALTER_CONFIG_SET: 'set', ALTER_CONFIG_DELETE: 'delete', ALTER_CONFIG_APPEND: 'append', ALTER_CONFIG_SUBTRACT: 'subtract' } as const;
const sourceNames: Record<ConfigSourceKind, string> = {
  topic: 'CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG',
  'dynamic-broker': 'CONFIG_SOURCE_DYNAMIC_BROKER_CONFIG',
  'dynamic-default-broker': 'CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG',
  'static-broker': 'CONFIG_SOURCE_STATIC_BROKER_CONFIG',
  default: 'CONFIG_SOURCE_DEFAULT_CONFIG',
};

function resourceType(value: unknown): 'topic' | 'broker' {
  const type = resourceTypes[value as keyof typeof resourceTypes];
  if (type === undefined) throw new RaftkaError('INVALID_REQUEST', `config resource type ${String(value)} is not TOPIC or BROKER`);
  return type;
}

type UnaryHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

/**
 * Every handler answers in the response: a call-level failure (no controller reachable, a
 * malformed request) becomes the error of every item, as Kafka's brokers answer.
 */
function handler(logger: Logger, method: string, run: (request: Wire) => Promise<Wire>, onError: (request: Wire, error: unknown) => Wire): UnaryHandler {
  return (call, callback) => {
    const request = call.request as Wire;
    Promise.resolve()
      .then(() => run(request))
      .then(
        (response) => callback(null, response),
        (error: unknown) => {
          logger.debug({ err: error, method }, 'admin request failed');
          try {
            callback(null, onError(request, error));
          } catch (mappingError) {
            callback({ code: grpc.status.INVALID_ARGUMENT, details: mappingError instanceof Error ? mappingError.message : String(mappingError) });
          }
        },
      );
  };
}

function list(value: unknown): Wire[] {
  return Array.isArray(value) ? (value as Wire[]) : [];
}

/** The RaftkaAdmin implementation for a broker's gRPC server. */
export function adminServiceImplementation(options: AdminServiceOptions): grpc.UntypedServiceImplementation {
  const { controller, logger } = options;
  const propagationWait = (request: Wire): number => {
    const timeoutMs = Number(request['timeoutMs'] ?? 0);
    return timeoutMs > 0 ? timeoutMs : ADMIN_PROPAGATION_WAIT_MS_DEFAULT;
  };
  const awaitImage = async (condition: (image: MetadataImage) => boolean, timeoutMs: number): Promise<void> => {
    // The change is committed; not seeing it here yet is not an error for the caller.
    await options.waitForImage(condition, timeoutMs).catch(() => undefined);
  };

  return {
    CreateTopics: handler(
      logger,
      'CreateTopics',
      async (request) => {
        const validateOnly = request['validateOnly'] === true;
        const response = await controller.createTopics({
          validateOnly,
          topics: list(request['topics']).map((topic) => {
            const assignments = list(topic['assignments'])
              .sort((a, b) => Number(a['partitionIndex']) - Number(b['partitionIndex']))
              .map((assignment) => (assignment['brokerIds'] as number[]) ?? []);
            const configs = Object.fromEntries(list(topic['configs']).map((config) => [String(config['name']), String(config['value'])]));
            const numPartitions = Number(topic['numPartitions']);
            const replicationFactor = Number(topic['replicationFactor']);
            return {
              name: String(topic['name']),
              ...(numPartitions > 0 ? { numPartitions } : {}),
              ...(replicationFactor > 0 ? { replicationFactor } : {}),
              ...(assignments.length > 0 ? { assignments } : {}),
              ...(Object.keys(configs).length > 0 ? { configs } : {}),
            };
          }),
        });
        const created = response.topics.filter((topic) => topic.error === undefined).map((topic) => topic.name);
        if (!validateOnly && created.length > 0) {
          await awaitImage((image) => created.every((name) => image.topicByName(name) !== undefined), propagationWait(request));
        }
        return {
          throttleTimeMs: 0,
          topics: response.topics.map((topic) => ({
            name: topic.name,
            topicId: topic.topicId === undefined ? Buffer.alloc(0) : Buffer.from(topic.topicId, 'base64url'),
            numPartitions: topic.numPartitions,
            replicationFactor: topic.replicationFactor,
            ...errorFields(topic.error),
          })),
        };
      },
      (request, error) => ({
        throttleTimeMs: 0,
        topics: list(request['topics']).map((topic) => ({ name: String(topic['name']), topicId: Buffer.alloc(0), numPartitions: -1, replicationFactor: -1, ...callError(error) })),
      }),
    ),
    DeleteTopics: handler(
      logger,
      'DeleteTopics',
      async (request) => {
        const names = ((request['topicNames'] as string[]) ?? []).map(String);
        const response = await controller.deleteTopics({ names });
        const deleted = response.topics.filter((topic) => topic.error === undefined).map((topic) => topic.name);
        if (deleted.length > 0) await awaitImage((image) => deleted.every((name) => image.topicByName(name) === undefined), propagationWait(request));
        return {
          throttleTimeMs: 0,
          responses: response.topics.map((topic) => ({
            name: topic.name,
            topicId: topic.topicId === undefined ? Buffer.alloc(0) : Buffer.from(topic.topicId, 'base64url'),
            ...errorFields(topic.error),
          })),
        };
      },
      (request, error) => ({
        throttleTimeMs: 0,
        responses: ((request['topicNames'] as string[]) ?? []).map((name) => ({ name: String(name), topicId: Buffer.alloc(0), ...callError(error) })),
      }),
    ),
    CreatePartitions: handler(
      logger,
      'CreatePartitions',
      async (request) => {
        const validateOnly = request['validateOnly'] === true;
        const topics = list(request['topics']).map((topic) => {
          const assignments = list(topic['assignments']).map((assignment) => (assignment['brokerIds'] as number[]) ?? []);
          return { name: String(topic['name']), count: Number(topic['count']), ...(assignments.length > 0 ? { assignments } : {}) };
        });
        const response = await controller.createPartitions({ validateOnly, topics });
        const grown = topics.filter((topic) => response.topics.find((result) => result.name === topic.name && result.error === undefined));
        if (!validateOnly && grown.length > 0) {
          await awaitImage((image) => grown.every((topic) => (image.topicByName(topic.name)?.partitions.length ?? 0) >= topic.count), propagationWait(request));
        }
        return { throttleTimeMs: 0, results: response.topics.map((topic) => ({ name: topic.name, ...errorFields(topic.error) })) };
      },
      (request, error) => ({ throttleTimeMs: 0, results: list(request['topics']).map((topic) => ({ name: String(topic['name']), ...callError(error) })) }),
    ),
    DescribeConfigs: handler(
      logger,
      'DescribeConfigs',
      async (request) => {
        const includeDocumentation = request['includeDocumentation'] === true;
        const response = await controller.describeConfigs({
          resources: list(request['resources']).map((resource) => {
            const keys = ((resource['configurationKeys'] as string[]) ?? []).map(String);
            return { resourceType: resourceType(resource['resourceType']), resourceName: String(resource['resourceName']), ...(keys.length > 0 ? { keys } : {}) };
          }),
        });
        return {
          throttleTimeMs: 0,
          results: response.results.map((result) => ({
            ...errorFields(result.error),
            resourceType: resourceTypeNames[result.resourceType],
            resourceName: result.resourceName,
            configs: result.configs.map((config) => ({
              name: config.name,
              value: config.sensitive ? undefined : config.value,
              readOnly: config.readOnly,
              configSource: sourceNames[config.source],
              isSensitive: config.sensitive,
              synonyms: [],
              configType: '',
              documentation: includeDocumentation ? config.doc : '',
            })),
          })),
        };
      },
      (request, error) => ({
        throttleTimeMs: 0,
        results: list(request['resources']).map((resource) => ({
          ...callError(error),
          resourceType: resource['resourceType'],
          resourceName: String(resource['resourceName']),
          configs: [],
        })),
      }),
    ),
    IncrementalAlterConfigs: handler(
      logger,
      'IncrementalAlterConfigs',
      async (request) => {
        const response = await controller.incrementalAlterConfigs({
          validateOnly: request['validateOnly'] === true,
          resources: list(request['resources']).map((resource) => ({
            resourceType: resourceType(resource['resourceType']),
            resourceName: String(resource['resourceName']),
            ops: list(resource['configs']).map((config) => {
              const op = opKinds[config['configOperation'] as keyof typeof opKinds];
              if (op === undefined) throw new RaftkaError('INVALID_REQUEST', `config operation ${String(config['configOperation'])} is unknown`);
              const value = config['value'];
              return { name: String(config['name']), op, ...(typeof value === 'string' ? { value } : {}) };
            }),
          })),
        });
        return {
          throttleTimeMs: 0,
          responses: response.results.map((result) => ({
            ...errorFields(result.error),
            resourceType: resourceTypeNames[result.resourceType],
            resourceName: result.resourceName,
          })),
        };
      },
      (request, error) => ({
        throttleTimeMs: 0,
        responses: list(request['resources']).map((resource) => ({ ...callError(error), resourceType: resource['resourceType'], resourceName: String(resource['resourceName']) })),
      }),
    ),
  };
}
