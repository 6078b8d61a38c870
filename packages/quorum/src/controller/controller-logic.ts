// The controller's decisions, as pure functions of the committed metadata image.
//
// Each operation takes the image (and the time, and the injected random source) and returns the
// records that carry out the decision plus the response to send once they are committed. Nothing
// here appends, waits or mutates the image: the caller (QuorumController) appends the records as
// one atomic Raft entry, waits until the entry is committed and applied to the image, and only then
// answers. In KRaft the metadata log is the single source of truth, so a decision becomes true only
// when its records commit; a controller that loses leadership before that simply loses the write.
//
// Invariant (the caller's duty): operations are computed one at a time against an image that
// includes the records of every earlier operation. Each decision reads state that earlier records
// change (broker epochs, partition epochs, the next producer id), so two decisions computed from
// the same image could contradict each other.
//
// Errors: a request that cannot be served at all throws a RaftkaError (STALE_BROKER_EPOCH,
// BROKER_ID_NOT_REGISTERED, INVALID_REQUEST, ...); requests covering several items (topics,
// partitions, config resources) answer each item with its own error, as Kafka does.

import {
  RaftkaError,
  ConfigError,
  invariant,
  resolveConfig,
  topicConfigSchema,
  validateTopicConfigs,
  type ConfigKeyDefinition,
  type ConfigValue,
  type ErrorCodeName,
} from '@raftka/protocol';
import { MetadataImage, NO_LEADER, collisionName, type BrokerRegistration, type PartitionState } from '../metadata/metadata-image.js';
import type { ConfigRecord, MetadataRecord, PartitionChangeRecord } from '../metadata/metadata-records.js';
import { generateTopicId } from '../metadata/topic-id.js';
import {
  DYNAMIC_BROKER_CONFIG_KEYS,
  controllerConfigSchema,
  effectiveControllerConfig,
  type ControllerConfig,
} from './controller-config.js';
import type {
  AllocateProducerIdsRequest,
  AllocateProducerIdsResponse,
  AlterConfigOp,
  AlterConfigsResult,
  AlterPartitionItemResult,
  AlterPartitionRequest,
  AlterPartitionResponse,
  BrokerHeartbeatRequest,
  BrokerHeartbeatResponse,
  BrokerRegistrationRequest,
  BrokerRegistrationResponse,
  ConfigResource,
  CreatableTopic,
  CreatePartitionsRequest,
  CreatePartitionsResponse,
  CreatePartitionsResult,
  CreateTopicResult,
  CreateTopicsRequest,
  CreateTopicsResponse,
  ControllerResult,
  DeleteTopicResult,
  DeleteTopicsRequest,
  DeleteTopicsResponse,
  DescribeConfigsRequest,
  DescribeConfigsResponse,
  DescribeConfigsResult,
  DescribedConfig,
  ElectLeadersResponse,
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponse,
  ItemError,
} from './controller-types.js';
import { buildPartitionChange } from './partition-change.js';
import { placeReplicas } from './replica-placement.js';
import { topicNameProblem } from './topic-validation.js';

/** Kafka's PRODUCER_ID_BLOCK_SIZE: ids handed to a broker per AllocateProducerIds. */
export const PRODUCER_ID_BLOCK_SIZE = 1000;
/**
 * Partitions one CreateTopics or CreatePartitions request may create (Kafka's
 * MAX_PARTITIONS_PER_BATCH, KAFKA-14996/KAFKA-17870: POLICY_VIOLATION beyond it). Every partition
 * is one record of the same atomic Raft entry, which every controller and broker decodes and
 * applies in one go; at 100,000 records that blocked each process for about a second on a 2-core
 * machine, long enough to miss fetches and lose the quorum's leadership.
 */
export const PARTITIONS_PER_REQUEST_MAX = 10_000;
/** Leadership moves one election pass (preferred or leaderless) may put into one Raft entry. */
export const PREFERRED_ELECTIONS_PER_PASS_MAX = 10_000;
/** Bound of broker ids (Kafka's are int32). */
const BROKER_ID_MAX = 2 ** 31 - 1;

export interface ControllerLogicOptions {
  /** This controller's static configuration (dynamic cluster defaults in the image override it). */
  config: ControllerConfig;
  /** Uniform in [0, 1); injected so topic ids and placement are reproducible. */
  random: () => number;
}

function itemError(code: ErrorCodeName, message: string): ItemError {
  return { code, message };
}

function formatConfigValue(value: ConfigValue): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

const controllerKeyDefinitions: ReadonlyMap<string, ConfigKeyDefinition> = new Map(controllerConfigSchema.map((definition) => [definition.key, definition]));
const dynamicBrokerSchema = controllerConfigSchema.filter((definition) => DYNAMIC_BROKER_CONFIG_KEYS.has(definition.key));
/** Topic keys whose cluster default is a controller (broker) key of the same name. */
const topicKeysWithBrokerDefault: ReadonlySet<string> = new Set(['unclean.leader.election.enable', 'min.insync.replicas']);

export class ControllerLogic {
  private readonly staticConfig: ControllerConfig;
  private readonly random: () => number;

  constructor(options: ControllerLogicOptions) {
    this.staticConfig = options.config;
    this.random = options.random;
  }

  /** The static config with the cluster-wide dynamic overrides of the image applied. */
  effectiveConfig(image: MetadataImage): ControllerConfig {
    return effectiveControllerConfig(this.staticConfig, image.configsOf('broker', ''));
  }

  // ---------------------------------------------------------------- broker lifecycle

  /**
   * Registers a broker. A retry with the same incarnation returns the current epoch unchanged. A
   * new incarnation means the old process is gone: its leaderships and ISR memberships are taken
   * away at once (no waiting for its session to expire), and the new registration starts fenced
   * until the broker has caught up with the metadata log (KIP-631).
   */
  registerBroker(image: MetadataImage, request: BrokerRegistrationRequest): ControllerResult<BrokerRegistrationResponse> {
    if (!Number.isInteger(request.brokerId) || request.brokerId < 0 || request.brokerId > BROKER_ID_MAX) {
      throw new RaftkaError('INVALID_REQUEST', `broker id ${request.brokerId} is not a non-negative 32-bit integer; check node.id`);
    }
    if (request.incarnationId === '') throw new RaftkaError('INVALID_REQUEST', 'broker registration without an incarnation id');
    const existing = image.brokers.get(request.brokerId);
    if (existing !== undefined && existing.incarnationId === request.incarnationId) {
      return { records: [], response: { brokerEpoch: existing.brokerEpoch } };
    }
    const records: MetadataRecord[] = [];
    if (existing !== undefined && !existing.fenced) {
      records.push(...this.moveReplicasOff(image, existing.brokerId));
    }
    const brokerEpoch = image.highestBrokerEpoch + 1;
    records.push({
      type: 'registerBroker',
      brokerId: request.brokerId,
      incarnationId: request.incarnationId,
      brokerEpoch,
      endpoints: request.endpoints.map((endpoint) => ({ ...endpoint })),
      rack: request.rack === '' ? undefined : request.rack,
      fenced: true,
    });
    return { records, response: { brokerEpoch } };
  }

  /**
   * Handles a heartbeat (the caller also tells its BrokerHeartbeatManager). It unfences a broker
   * that has caught up, fences one that asks for it, and drives a controlled shutdown: the first
   * heartbeat that wants shutdown moves every leadership off the broker and takes it out of the
   * ISRs; a later heartbeat, once those records are committed and the broker leads nothing, fences
   * it and answers shouldShutDown. The heartbeat interval between the two gives the new leaders'
   * followers time to learn of the change before the old leader stops.
   */
  brokerHeartbeat(image: MetadataImage, request: BrokerHeartbeatRequest): ControllerResult<BrokerHeartbeatResponse> {
    const broker = this.registeredBroker(image, request.brokerId, request.brokerEpoch);
    // Caught up: it has applied its own registration and, if it was fenced since (a session that
    // expired while it was cut off or frozen), the fencing too (see BrokerRegistration.fencedAtOffset).
    const isCaughtUp = request.currentMetadataOffset >= Math.max(broker.registeredAtOffset, broker.fencedAtOffset ?? -1);
    const records: MetadataRecord[] = [];
    if (request.wantShutDown) {
      if (broker.fenced) return { records, response: { isCaughtUp, isFenced: true, shouldShutDown: true } };
      if (!broker.inControlledShutdown) {
        records.push({ type: 'brokerRegistrationChange', brokerId: broker.brokerId, brokerEpoch: broker.brokerEpoch, inControlledShutdown: true });
        records.push(...this.moveReplicasOff(image, broker.brokerId));
        return { records, response: { isCaughtUp, isFenced: false, shouldShutDown: false } };
      }
      if (this.leaderCount(image, broker.brokerId) > 0) {
        // A leadership came back to it (it was the only live ISR member when it started): try again.
        records.push(...this.moveReplicasOff(image, broker.brokerId));
        return { records, response: { isCaughtUp, isFenced: false, shouldShutDown: false } };
      }
      records.push({ type: 'fenceBroker', brokerId: broker.brokerId, brokerEpoch: broker.brokerEpoch });
      return { records, response: { isCaughtUp, isFenced: true, shouldShutDown: true } };
    }
    if (request.wantFence) {
      if (!broker.fenced) records.push(...this.fenceRecords(image, broker));
      return { records, response: { isCaughtUp, isFenced: true, shouldShutDown: false } };
    }
    if (broker.fenced && isCaughtUp) {
      records.push({ type: 'unfenceBroker', brokerId: broker.brokerId, brokerEpoch: broker.brokerEpoch });
      records.push(...this.electLeaderlessOn(image, broker.brokerId));
      return { records, response: { isCaughtUp, isFenced: false, shouldShutDown: false } };
    }
    return { records, response: { isCaughtUp, isFenced: broker.fenced, shouldShutDown: false } };
  }

  /**
   * Fences a broker whose session expired (BrokerHeartbeatManager.brokersToFence): new leaders for
   * the partitions it led, out of every ISR it was in, then the fence record. Fence one broker per
   * call: the next call must see this one's records applied.
   */
  fenceBroker(image: MetadataImage, brokerId: number): ControllerResult<{ fenced: boolean }> {
    const broker = image.brokers.get(brokerId);
    if (broker === undefined || broker.fenced) return { records: [], response: { fenced: false } };
    return { records: this.fenceRecords(image, broker), response: { fenced: true } };
  }

  /** Removes a broker's registration for good (it is fenced first when it is not). */
  unregisterBroker(image: MetadataImage, brokerId: number): ControllerResult<{ unregistered: boolean }> {
    const broker = image.brokers.get(brokerId);
    if (broker === undefined) throw new RaftkaError('BROKER_ID_NOT_REGISTERED', `broker ${brokerId} is not registered`);
    const records: MetadataRecord[] = broker.fenced ? [] : this.moveReplicasOff(image, brokerId);
    records.push({ type: 'unregisterBroker', brokerId, brokerEpoch: broker.brokerEpoch });
    return { records, response: { unregistered: true } };
  }

  // ---------------------------------------------------------------- topics

  createTopics(image: MetadataImage, request: CreateTopicsRequest): ControllerResult<CreateTopicsResponse> {
    const config = this.effectiveConfig(image);
    const records: MetadataRecord[] = [];
    const results: CreateTopicResult[] = [];
    const counts = new Map<string, number>();
    for (const topic of request.topics) counts.set(topic.name, (counts.get(topic.name) ?? 0) + 1);
    const activeBrokers = this.activeBrokers(image);
    const createdTopicIds = new Set<string>();
    const createdCollisionNames = new Set<string>();
    let partitionsInRequest = 0;
    for (const topic of request.topics) {
      const fail = (code: ErrorCodeName, message: string): void => {
        results.push({ name: topic.name, numPartitions: -1, replicationFactor: -1, error: itemError(code, message) });
      };
      if ((counts.get(topic.name) ?? 0) > 1) {
        fail('INVALID_REQUEST', `topic ${topic.name} appears more than once in the request`);
        continue;
      }
      const nameProblem = topicNameProblem(topic.name);
      if (nameProblem !== undefined) {
        fail('INVALID_TOPIC_EXCEPTION', nameProblem);
        continue;
      }
      if (image.topicIdsByName.has(topic.name)) {
        fail('TOPIC_ALREADY_EXISTS', `topic ${topic.name} already exists`);
        continue;
      }
      const collision = collisionName(topic.name);
      const collidingId = image.topicIdsByCollisionName.get(collision);
      if (collidingId !== undefined || createdCollisionNames.has(collision)) {
        const other = collidingId === undefined ? 'another topic in this request' : `topic ${image.topicsById.get(collidingId)?.name}`;
        fail('INVALID_TOPIC_EXCEPTION', `topic ${topic.name} collides with ${other}: names may not differ only in '.' versus '_'`);
        continue;
      }
      const placement = this.planNewTopic(topic, config, activeBrokers, image);
      if ('error' in placement) {
        fail(placement.error.code, placement.error.message);
        continue;
      }
      const configs = topic.configs ?? {};
      try {
        validateTopicConfigs(configs, `topic ${topic.name}`);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        fail('INVALID_CONFIG', error.problems.join('; '));
        continue;
      }
      if (partitionsInRequest + placement.assignments.length > PARTITIONS_PER_REQUEST_MAX) {
        fail('POLICY_VIOLATION', `a request may create at most ${PARTITIONS_PER_REQUEST_MAX} partitions; split it into several requests`);
        continue;
      }
      partitionsInRequest += placement.assignments.length;
      const topicId = generateTopicId(this.random, (candidate) => image.topicsById.has(candidate) || createdTopicIds.has(candidate));
      createdTopicIds.add(topicId);
      createdCollisionNames.add(collision);
      results.push({ name: topic.name, topicId, numPartitions: placement.assignments.length, replicationFactor: placement.replicationFactor });
      if (request.validateOnly) continue;
      records.push({ type: 'topic', name: topic.name, topicId });
      for (const name of Object.keys(configs).sort()) {
        records.push({ type: 'config', resourceType: 'topic', resourceName: topic.name, name, value: configs[name]! });
      }
      placement.assignments.forEach((replicas, partitionId) => records.push(newPartitionRecord(image, topicId, partitionId, replicas)));
    }
    return { records, response: { topics: results } };
  }

  deleteTopics(image: MetadataImage, request: DeleteTopicsRequest): ControllerResult<DeleteTopicsResponse> {
    const records: MetadataRecord[] = [];
    const results: DeleteTopicResult[] = [];
    const seen = new Set<string>();
    for (const name of request.names) {
      if (seen.has(name)) {
        results.push({ name, error: itemError('INVALID_REQUEST', `topic ${name} appears more than once in the request`) });
        continue;
      }
      seen.add(name);
      const topicId = image.topicIdsByName.get(name);
      if (topicId === undefined) {
        results.push({ name, error: itemError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist`) });
        continue;
      }
      records.push({ type: 'removeTopic', topicId });
      results.push({ name, topicId });
    }
    return { records, response: { topics: results } };
  }

  createPartitions(image: MetadataImage, request: CreatePartitionsRequest): ControllerResult<CreatePartitionsResponse> {
    const records: MetadataRecord[] = [];
    const results: CreatePartitionsResult[] = [];
    const activeBrokers = this.activeBrokers(image);
    const seen = new Set<string>();
    let partitionsInRequest = 0;
    for (const item of request.topics) {
      const fail = (code: ErrorCodeName, message: string): void => {
        results.push({ name: item.name, error: itemError(code, message) });
      };
      if (seen.has(item.name)) {
        fail('INVALID_REQUEST', `topic ${item.name} appears more than once in the request`);
        continue;
      }
      seen.add(item.name);
      const topic = image.topicByName(item.name);
      if (topic === undefined) {
        fail('UNKNOWN_TOPIC_OR_PARTITION', `topic ${item.name} does not exist`);
        continue;
      }
      const current = topic.partitions.length;
      if (!Number.isInteger(item.count) || item.count <= current) {
        fail('INVALID_PARTITIONS', `topic ${item.name} has ${current} partitions; the new count must be larger (got ${item.count})`);
        continue;
      }
      const added = item.count - current;
      if (partitionsInRequest + added > PARTITIONS_PER_REQUEST_MAX) {
        fail('POLICY_VIOLATION', `a request may create at most ${PARTITIONS_PER_REQUEST_MAX} partitions; split it into several requests`);
        continue;
      }
      const replicationFactor = topic.partitions[0]!.replicas.length;
      let assignments: number[][];
      if (item.assignments !== undefined) {
        if (item.assignments.length !== added) {
          fail('INVALID_REPLICA_ASSIGNMENT', `${item.assignments.length} replica lists given for ${added} new partitions`);
          continue;
        }
        const problem = this.assignmentProblem(image, item.assignments, replicationFactor);
        if (problem !== undefined) {
          fail('INVALID_REPLICA_ASSIGNMENT', problem);
          continue;
        }
        assignments = item.assignments.map((replicas) => [...replicas]);
      } else {
        if (replicationFactor > activeBrokers.length) {
          fail('INVALID_REPLICATION_FACTOR', `topic ${item.name} has replication factor ${replicationFactor} but only ${activeBrokers.length} brokers are available`);
          continue;
        }
        // Continue the topic's round-robin where it left off, as Kafka does, so leaders stay even.
        const sortedIds = activeBrokers.map((broker) => broker.brokerId).sort((a, b) => a - b);
        const firstIndex = sortedIds.indexOf(topic.partitions[0]!.replicas[0]!);
        assignments = placeReplicas({
          brokers: activeBrokers,
          partitionCount: added,
          replicationFactor,
          startPartitionId: current,
          ...(firstIndex >= 0 && activeBrokers.every((broker) => broker.rack === undefined) ? { fixedStartIndex: firstIndex } : {}),
          random: this.random,
        });
      }
      partitionsInRequest += added;
      results.push({ name: item.name });
      if (request.validateOnly) continue;
      assignments.forEach((replicas, index) => records.push(newPartitionRecord(image, topic.topicId, current + index, replicas)));
    }
    return { records, response: { topics: results } };
  }

  // ---------------------------------------------------------------- configs

  describeConfigs(image: MetadataImage, request: DescribeConfigsRequest): DescribeConfigsResponse {
    const results: DescribeConfigsResult[] = [];
    for (const resource of request.resources) {
      const wanted = resource.keys === undefined || resource.keys.length === 0 ? undefined : new Set(resource.keys);
      const base = { resourceType: resource.resourceType, resourceName: resource.resourceName };
      const problem = this.resourceProblem(image, resource);
      if (problem !== undefined) {
        results.push({ ...base, configs: [], error: problem });
        continue;
      }
      const configs: DescribedConfig[] = [];
      if (resource.resourceType === 'topic') {
        const overrides = image.configsOf('topic', resource.resourceName);
        const clusterDefaults = image.configsOf('broker', '');
        for (const definition of topicConfigSchema) {
          if (wanted !== undefined && !wanted.has(definition.key)) continue;
          const override = overrides.get(definition.key);
          let value: string;
          let source: DescribedConfig['source'];
          if (override !== undefined) {
            value = override;
            source = 'topic';
          } else if (topicKeysWithBrokerDefault.has(definition.key) && clusterDefaults.has(definition.key)) {
            value = clusterDefaults.get(definition.key)!;
            source = 'dynamic-default-broker';
          } else if (topicKeysWithBrokerDefault.has(definition.key)) {
            value = String(definition.key === 'min.insync.replicas' ? this.staticConfig.minInsyncReplicas : this.staticConfig.uncleanLeaderElectionEnable);
            source = 'static-broker';
          } else {
            value = formatConfigValue(definition.default as ConfigValue);
            source = 'default';
          }
          configs.push({ name: definition.key, value, source, isDefault: source === 'default', readOnly: false, sensitive: definition.type === 'password', doc: definition.doc });
        }
      } else {
        const perBroker = resource.resourceName === '' ? new Map<string, string>() : image.configsOf('broker', resource.resourceName);
        const clusterDefaults = image.configsOf('broker', '');
        const staticValues = staticConfigValues(this.staticConfig);
        for (const definition of controllerConfigSchema) {
          if (wanted !== undefined && !wanted.has(definition.key)) continue;
          const dynamic = DYNAMIC_BROKER_CONFIG_KEYS.has(definition.key);
          let value: string;
          let source: DescribedConfig['source'];
          if (perBroker.has(definition.key)) {
            value = perBroker.get(definition.key)!;
            source = 'dynamic-broker';
          } else if (clusterDefaults.has(definition.key)) {
            value = clusterDefaults.get(definition.key)!;
            source = 'dynamic-default-broker';
          } else {
            value = staticValues.get(definition.key)!;
            source = value === formatConfigValue(definition.default as ConfigValue) ? 'default' : 'static-broker';
          }
          configs.push({ name: definition.key, value, source, isDefault: source === 'default', readOnly: !dynamic, sensitive: definition.type === 'password', doc: definition.doc });
        }
      }
      results.push({ ...base, configs });
    }
    return { results };
  }

  incrementalAlterConfigs(image: MetadataImage, request: IncrementalAlterConfigsRequest): ControllerResult<IncrementalAlterConfigsResponse> {
    const records: MetadataRecord[] = [];
    const results: AlterConfigsResult[] = [];
    const seen = new Set<string>();
    for (const resource of request.resources) {
      const base = { resourceType: resource.resourceType, resourceName: resource.resourceName };
      const resourceKey = `${resource.resourceType}:${resource.resourceName}`;
      if (seen.has(resourceKey)) {
        results.push({ ...base, error: itemError('INVALID_REQUEST', `resource ${resourceKey} appears more than once in the request`) });
        continue;
      }
      seen.add(resourceKey);
      const problem = this.resourceProblem(image, resource);
      if (problem !== undefined) {
        results.push({ ...base, error: problem });
        continue;
      }
      const planned = this.planConfigChanges(image, resource, resource.ops);
      if ('error' in planned) {
        results.push({ ...base, error: planned.error });
        continue;
      }
      results.push(base);
      if (!request.validateOnly) records.push(...planned.records);
    }
    return { records, response: { results } };
  }

  // ---------------------------------------------------------------- partitions

  /**
   * A partition leader proposes a new ISR (KIP-497). Accepted only from the current leader quoting
   * the current leader epoch (else FENCED_LEADER_EPOCH) and partition epoch (else
   * INVALID_UPDATE_VERSION): a proposal built on a stale view must not undo a change the leader
   * has not seen, such as a fenced broker's removal (KIP-841).
   */
  alterPartition(image: MetadataImage, request: AlterPartitionRequest): ControllerResult<AlterPartitionResponse> {
    this.registeredBroker(image, request.brokerId, request.brokerEpoch);
    const records: MetadataRecord[] = [];
    const topics: AlterPartitionResponse['topics'] = [];
    for (const topicRequest of request.topics) {
      const topic = image.topicsById.get(topicRequest.topicId);
      const partitions: AlterPartitionItemResult[] = [];
      const seen = new Set<number>();
      for (const item of topicRequest.partitions) {
        const partition = topic?.partitions[item.partitionId];
        const fail = (code: ErrorCodeName, message: string): void => {
          partitions.push({
            partitionId: item.partitionId,
            error: itemError(code, message),
            leader: partition?.leader ?? NO_LEADER,
            leaderEpoch: partition?.leaderEpoch ?? -1,
            isr: partition === undefined ? [] : [...partition.isr],
            partitionEpoch: partition?.partitionEpoch ?? -1,
          });
        };
        const where = `${topic?.name ?? topicRequest.topicId}-${item.partitionId}`;
        if (partition === undefined) {
          fail('UNKNOWN_TOPIC_OR_PARTITION', `partition ${where} does not exist`);
          continue;
        }
        if (seen.has(item.partitionId)) {
          fail('INVALID_REQUEST', `partition ${where} appears more than once in the request`);
          continue;
        }
        seen.add(item.partitionId);
        if (partition.leader !== request.brokerId) {
          fail('NOT_LEADER_OR_FOLLOWER', `broker ${request.brokerId} is not the leader of ${where} (the leader is ${partition.leader})`);
          continue;
        }
        if (item.leaderEpoch !== partition.leaderEpoch) {
          fail('FENCED_LEADER_EPOCH', `leader epoch ${item.leaderEpoch} of ${where} is stale; the current one is ${partition.leaderEpoch}`);
          continue;
        }
        if (item.partitionEpoch !== partition.partitionEpoch) {
          fail('INVALID_UPDATE_VERSION', `partition epoch ${item.partitionEpoch} of ${where} is stale; the current one is ${partition.partitionEpoch}; refresh metadata and retry`);
          continue;
        }
        const isrProblem = this.isrProblem(image, partition, item.newIsr);
        if (isrProblem !== undefined) {
          fail(isrProblem.code, `${isrProblem.message} (partition ${where})`);
          continue;
        }
        const change = buildPartitionChange(partition, {
          targetIsr: item.newIsr,
          election: 'online',
          isActive: (brokerId) => image.isBrokerActive(brokerId),
          uncleanElectionAllowed: false,
        });
        if (change !== undefined) records.push(change);
        partitions.push({
          partitionId: item.partitionId,
          leader: partition.leader,
          leaderEpoch: partition.leaderEpoch,
          isr: [...(change?.isr ?? partition.isr)],
          partitionEpoch: change === undefined ? partition.partitionEpoch : partition.partitionEpoch + 1,
        });
      }
      topics.push({ topicId: topicRequest.topicId, partitions });
    }
    return { records, response: { topics } };
  }

  /**
   * Moves leadership back to each partition's preferred replica (replicas[0]) where that replica
   * is active, in the ISR, and not the leader. `auto.leader.rebalance.enable` gates the periodic
   * pass (`periodic: true`); an explicit request (ElectLeaders) runs regardless. At most
   * PREFERRED_ELECTIONS_PER_PASS_MAX moves per call; `more` says to call again.
   */
  electPreferredLeaders(image: MetadataImage, options: { periodic: boolean }): ControllerResult<ElectLeadersResponse> {
    if (options.periodic && !this.effectiveConfig(image).autoLeaderRebalanceEnable) {
      return { records: [], response: { electedCount: 0, more: false } };
    }
    const records: PartitionChangeRecord[] = [];
    const isActive = (brokerId: number): boolean => image.isBrokerActive(brokerId);
    for (const topic of image.topicsById.values()) {
      for (const partition of topic.partitions) {
        const preferred = partition.replicas[0]!;
        if (partition.leader === preferred || !partition.isr.includes(preferred) || !isActive(preferred)) continue;
        if (records.length === PREFERRED_ELECTIONS_PER_PASS_MAX) return { records, response: { electedCount: records.length, more: true } };
        const change = buildPartitionChange(partition, { election: 'preferred', isActive, uncleanElectionAllowed: false });
        if (change !== undefined) records.push(change);
      }
    }
    return { records, response: { electedCount: records.length, more: false } };
  }

  /**
   * Elects leaders for leaderless partitions where that is now possible: an ISR member came back
   * without the broker's unfence electing it, or unclean election was enabled (per topic or
   * cluster-wide) after the partition went offline. Kafka runs the same check periodically.
   * Visits every partition, so it belongs on a slow timer, not on a hot path.
   */
  electLeaderlessPartitions(image: MetadataImage): ControllerResult<ElectLeadersResponse> {
    const records: PartitionChangeRecord[] = [];
    const isActive = (brokerId: number): boolean => image.isBrokerActive(brokerId);
    const uncleanCache = new Map<string, boolean>();
    for (const topic of image.topicsById.values()) {
      for (const partition of topic.partitions) {
        if (partition.leader !== NO_LEADER) continue;
        if (records.length === PREFERRED_ELECTIONS_PER_PASS_MAX) return { records, response: { electedCount: records.length, more: true } };
        const change = buildPartitionChange(partition, {
          election: 'online',
          isActive,
          uncleanElectionAllowed: this.uncleanAllowed(image, partition.topicId, uncleanCache),
        });
        if (change !== undefined && change.leader !== undefined) records.push(change);
      }
    }
    return { records, response: { electedCount: records.length, more: false } };
  }

  // ---------------------------------------------------------------- producer ids

  /**
   * Hands a block of PRODUCER_ID_BLOCK_SIZE ids to a broker. The block is taken from the image's
   * next producer id and the record moves it forward, so a block is handed out at most once: a
   * controller elected later has applied every committed ProducerIdsRecord before it serves.
   */
  allocateProducerIds(image: MetadataImage, request: AllocateProducerIdsRequest): ControllerResult<AllocateProducerIdsResponse> {
    const broker = this.registeredBroker(image, request.brokerId, request.brokerEpoch);
    const firstProducerId = image.nextProducerId;
    const nextProducerId = firstProducerId + PRODUCER_ID_BLOCK_SIZE;
    if (!Number.isSafeInteger(nextProducerId)) {
      throw new RaftkaError('UNKNOWN_SERVER_ERROR', 'all producer ids have been handed out', { retriable: false });
    }
    return {
      records: [{ type: 'producerIds', brokerId: broker.brokerId, brokerEpoch: broker.brokerEpoch, nextProducerId }],
      response: { firstProducerId, count: PRODUCER_ID_BLOCK_SIZE },
    };
  }

  // ---------------------------------------------------------------- helpers

  private registeredBroker(image: MetadataImage, brokerId: number, brokerEpoch: number): BrokerRegistration {
    const broker = image.brokers.get(brokerId);
    if (broker === undefined) {
      throw new RaftkaError('BROKER_ID_NOT_REGISTERED', `broker ${brokerId} is not registered; it must register before it heartbeats`, { retriable: false });
    }
    if (broker.brokerEpoch !== brokerEpoch) {
      throw new RaftkaError('STALE_BROKER_EPOCH', `broker ${brokerId} sent epoch ${brokerEpoch} but its registration has epoch ${broker.brokerEpoch}; it must register again`, {
        retriable: false,
      });
    }
    return broker;
  }

  private activeBrokers(image: MetadataImage): { brokerId: number; rack: string | undefined }[] {
    const brokers: { brokerId: number; rack: string | undefined }[] = [];
    for (const broker of image.brokers.values()) {
      if (!broker.fenced && !broker.inControlledShutdown) brokers.push({ brokerId: broker.brokerId, rack: broker.rack });
    }
    return brokers;
  }

  private leaderCount(image: MetadataImage, brokerId: number): number {
    let count = 0;
    for (const partition of image.partitionsOnBroker(brokerId)) if (partition.leader === brokerId) count++;
    return count;
  }

  /** Is unclean election allowed for this topic (topic override, cluster default, static)? */
  private uncleanAllowed(image: MetadataImage, topicId: string, cache: Map<string, boolean>): boolean {
    let allowed = cache.get(topicId);
    if (allowed === undefined) {
      const topic = image.topicsById.get(topicId);
      invariant(topic !== undefined, () => `partition of unknown topic ${topicId}`);
      const override = image.configsOf('topic', topic.name).get('unclean.leader.election.enable');
      allowed = override !== undefined ? override === 'true' : this.effectiveConfig(image).uncleanLeaderElectionEnable;
      cache.set(topicId, allowed);
    }
    return allowed;
  }

  /**
   * Leadership and ISR changes that take `brokerId` out of service: new leaders for what it led
   * (first active ISR member in assignment order), and it leaves every ISR unless it is the last
   * member. Visits only the broker's own partitions (the image's replica index).
   */
  private moveReplicasOff(image: MetadataImage, brokerId: number): PartitionChangeRecord[] {
    const records: PartitionChangeRecord[] = [];
    const isActive = (candidate: number): boolean => candidate !== brokerId && image.isBrokerActive(candidate);
    const uncleanCache = new Map<string, boolean>();
    for (const partition of image.partitionsOnBroker(brokerId)) {
      if (partition.leader !== brokerId && !partition.isr.includes(brokerId)) continue;
      const change = buildPartitionChange(partition, {
        removeFromIsr: brokerId,
        election: 'online',
        isActive,
        uncleanElectionAllowed: this.uncleanAllowed(image, partition.topicId, uncleanCache),
      });
      if (change !== undefined) records.push(change);
    }
    return records;
  }

  private fenceRecords(image: MetadataImage, broker: BrokerRegistration): MetadataRecord[] {
    const records: MetadataRecord[] = this.moveReplicasOff(image, broker.brokerId);
    records.push({ type: 'fenceBroker', brokerId: broker.brokerId, brokerEpoch: broker.brokerEpoch });
    return records;
  }

  /** Elections for leaderless partitions of a broker that is being unfenced. */
  private electLeaderlessOn(image: MetadataImage, brokerId: number): PartitionChangeRecord[] {
    const records: PartitionChangeRecord[] = [];
    const isActive = (candidate: number): boolean => candidate === brokerId || image.isBrokerActive(candidate);
    const uncleanCache = new Map<string, boolean>();
    for (const partition of image.partitionsOnBroker(brokerId)) {
      if (partition.leader !== NO_LEADER) continue;
      const change = buildPartitionChange(partition, {
        election: 'online',
        isActive,
        uncleanElectionAllowed: this.uncleanAllowed(image, partition.topicId, uncleanCache),
      });
      if (change !== undefined) records.push(change);
    }
    return records;
  }

  private planNewTopic(
    topic: CreatableTopic,
    config: ControllerConfig,
    activeBrokers: { brokerId: number; rack: string | undefined }[],
    image: MetadataImage,
  ): { assignments: number[][]; replicationFactor: number } | { error: ItemError } {
    if (topic.assignments !== undefined) {
      if (topic.assignments.length === 0) return { error: itemError('INVALID_PARTITIONS', 'an explicit assignment needs at least one partition') };
      const replicationFactor = topic.assignments[0]!.length;
      const problem = this.assignmentProblem(image, topic.assignments, replicationFactor);
      if (problem !== undefined) return { error: itemError('INVALID_REPLICA_ASSIGNMENT', problem) };
      if (topic.assignments.length > PARTITIONS_PER_REQUEST_MAX) {
        return { error: itemError('INVALID_PARTITIONS', `at most ${PARTITIONS_PER_REQUEST_MAX} partitions per topic and request`) };
      }
      return { assignments: topic.assignments.map((replicas) => [...replicas]), replicationFactor };
    }
    const numPartitions = topic.numPartitions === undefined || topic.numPartitions === -1 ? config.numPartitions : topic.numPartitions;
    const replicationFactor = topic.replicationFactor === undefined || topic.replicationFactor === -1 ? config.defaultReplicationFactor : topic.replicationFactor;
    if (!Number.isInteger(numPartitions) || numPartitions <= 0) {
      return { error: itemError('INVALID_PARTITIONS', `number of partitions must be at least 1 (got ${numPartitions})`) };
    }
    if (numPartitions > PARTITIONS_PER_REQUEST_MAX) {
      return { error: itemError('INVALID_PARTITIONS', `at most ${PARTITIONS_PER_REQUEST_MAX} partitions per topic and request (got ${numPartitions})`) };
    }
    if (!Number.isInteger(replicationFactor) || replicationFactor <= 0) {
      return { error: itemError('INVALID_REPLICATION_FACTOR', `replication factor must be at least 1 (got ${replicationFactor})`) };
    }
    if (replicationFactor > activeBrokers.length) {
      return {
        error: itemError('INVALID_REPLICATION_FACTOR', `replication factor ${replicationFactor} is larger than the ${activeBrokers.length} available (unfenced) brokers`),
      };
    }
    return { assignments: placeReplicas({ brokers: activeBrokers, partitionCount: numPartitions, replicationFactor, random: this.random }), replicationFactor };
  }

  private assignmentProblem(image: MetadataImage, assignments: readonly number[][], replicationFactor: number): string | undefined {
    for (const [index, replicas] of assignments.entries()) {
      if (replicas.length !== replicationFactor) return `replica list ${index} has ${replicas.length} replicas, expected ${replicationFactor}`;
      if (new Set(replicas).size !== replicas.length) return `replica list ${index} names a broker twice: [${replicas.join(',')}]`;
      const unknown = replicas.filter((brokerId) => !image.brokers.has(brokerId));
      if (unknown.length > 0) return `replica list ${index} names unregistered brokers ${unknown.join(', ')}`;
      if (!replicas.some((brokerId) => image.isBrokerActive(brokerId))) return `every broker of replica list ${index} is fenced or shutting down`;
    }
    return undefined;
  }

  private isrProblem(image: MetadataImage, partition: PartitionState, newIsr: readonly number[]): ItemError | undefined {
    if (newIsr.length === 0) return itemError('INVALID_REQUEST', 'the proposed ISR is empty');
    if (new Set(newIsr).size !== newIsr.length) return itemError('INVALID_REQUEST', `the proposed ISR [${newIsr.join(',')}] names a broker twice`);
    if (!newIsr.includes(partition.leader)) return itemError('INVALID_REQUEST', `the proposed ISR [${newIsr.join(',')}] does not contain the leader ${partition.leader}`);
    const strangers = newIsr.filter((brokerId) => !partition.replicas.includes(brokerId));
    if (strangers.length > 0) return itemError('INVALID_REQUEST', `brokers ${strangers.join(', ')} of the proposed ISR are not replicas`);
    const ineligible = newIsr.filter((brokerId) => !image.isBrokerActive(brokerId));
    if (ineligible.length > 0) {
      return itemError('INELIGIBLE_REPLICA', `brokers ${ineligible.join(', ')} are fenced or shutting down and cannot join the ISR`);
    }
    return undefined;
  }

  private resourceProblem(image: MetadataImage, resource: ConfigResource): ItemError | undefined {
    if (resource.resourceType === 'topic') {
      return image.topicIdsByName.has(resource.resourceName)
        ? undefined
        : itemError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${resource.resourceName} does not exist`);
    }
    if (resource.resourceName !== '' && !/^\d+$/.test(resource.resourceName)) {
      return itemError('INVALID_REQUEST', `broker config resource '${resource.resourceName}' must be a broker id or '' (the cluster default)`);
    }
    return undefined;
  }

  /** The config records for one resource's operations, validated as a whole. */
  private planConfigChanges(image: MetadataImage, resource: ConfigResource, ops: readonly AlterConfigOp[]): { records: ConfigRecord[] } | { error: ItemError } {
    const current = image.configsOf(resource.resourceType, resource.resourceName);
    const definitions: ReadonlyMap<string, ConfigKeyDefinition> =
      resource.resourceType === 'topic' ? new Map(topicConfigSchema.map((definition) => [definition.key, definition])) : controllerKeyDefinitions;
    const next = new Map<string, string | undefined>();
    for (const op of ops) {
      if (next.has(op.name)) return { error: itemError('INVALID_REQUEST', `config key ${op.name} appears more than once`) };
      const definition = definitions.get(op.name);
      if (definition === undefined || (resource.resourceType === 'broker' && !DYNAMIC_BROKER_CONFIG_KEYS.has(op.name))) {
        const allowed = resource.resourceType === 'topic' ? 'a topic-level key' : `one of ${[...DYNAMIC_BROKER_CONFIG_KEYS].join(', ')}`;
        return { error: itemError('INVALID_CONFIG', `${op.name} cannot be set on a ${resource.resourceType}; expected ${allowed}`) };
      }
      switch (op.op) {
        case 'set':
          if (op.value === undefined) return { error: itemError('INVALID_CONFIG', `set of ${op.name} without a value`) };
          next.set(op.name, op.value);
          break;
        case 'delete':
          next.set(op.name, undefined);
          break;
        case 'append':
        case 'subtract': {
          if (definition.type !== 'list') return { error: itemError('INVALID_CONFIG', `${op.op} works only on list keys; ${op.name} is of type ${definition.type}`) };
          if (op.value === undefined) return { error: itemError('INVALID_CONFIG', `${op.op} of ${op.name} without a value`) };
          const base = current.get(op.name) ?? formatConfigValue(definition.default as ConfigValue);
          const items = base === '' ? [] : base.split(',').map((item) => item.trim());
          const operand = op.value.split(',').map((item) => item.trim()).filter((item) => item !== '');
          const result = op.op === 'append' ? [...items, ...operand.filter((item) => !items.includes(item))] : items.filter((item) => !operand.includes(item));
          next.set(op.name, result.join(','));
          break;
        }
        default:
          return { error: itemError('INVALID_REQUEST', `unknown config operation ${(op as { op: string }).op}`) };
      }
    }
    const toValidate = new Map([...next].filter((entry): entry is [string, string] => entry[1] !== undefined));
    try {
      if (resource.resourceType === 'topic') {
        validateTopicConfigs(toValidate, `topic ${resource.resourceName}`);
      } else {
        resolveConfig(
          dynamicBrokerSchema,
          [...toValidate].map(([key, value]) => ({ origin: `broker ${resource.resourceName === '' ? '(cluster default)' : resource.resourceName}`, key, value })),
        );
      }
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return { error: itemError('INVALID_CONFIG', error.problems.join('; ')) };
    }
    const records: ConfigRecord[] = [];
    for (const [name, value] of next) {
      if (current.get(name) === value) continue;
      records.push({ type: 'config', resourceType: resource.resourceType, resourceName: resource.resourceName, name, value });
    }
    return { records };
  }
}

/**
 * A new partition: every active replica starts in the ISR (it has the empty log, so it is in sync)
 * and the first of them in assignment order leads. Placement picks only active brokers; an
 * explicit assignment may name fenced ones, which join the ISR later through AlterPartition.
 */
function newPartitionRecord(image: MetadataImage, topicId: string, partitionId: number, replicas: number[]): MetadataRecord {
  const isr = replicas.filter((brokerId) => image.isBrokerActive(brokerId));
  invariant(isr.length > 0, 'a new partition has an active replica (checked by validation)');
  return { type: 'partition', topicId, partitionId, replicas, isr, leader: isr[0]!, leaderEpoch: 0, partitionEpoch: 0 };
}

function staticConfigValues(config: ControllerConfig): Map<string, string> {
  return new Map([
    ['num.partitions', String(config.numPartitions)],
    ['default.replication.factor', String(config.defaultReplicationFactor)],
    ['broker.session.timeout.ms', String(config.brokerSessionTimeoutMs)],
    ['broker.heartbeat.interval.ms', String(config.brokerHeartbeatIntervalMs)],
    ['unclean.leader.election.enable', String(config.uncleanLeaderElectionEnable)],
    ['auto.leader.rebalance.enable', String(config.autoLeaderRebalanceEnable)],
    ['leader.imbalance.check.interval.seconds', String(config.leaderImbalanceCheckIntervalSeconds)],
    ['auto.create.topics.enable', String(config.autoCreateTopicsEnable)],
    ['min.insync.replicas', String(config.minInsyncReplicas)],
    ['offsets.topic.num.partitions', String(config.offsetsTopicNumPartitions)],
    ['offsets.topic.replication.factor', String(config.offsetsTopicReplicationFactor)],
  ]);
}
