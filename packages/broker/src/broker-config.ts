// The broker's configuration keys (server.properties names, as Kafka's), their documentation
// (rendered into the README's configuration table) and their typed form.
//
// Topic defaults use Kafka's broker-level names (`log.retention.ms` for the topic key
// `retention.ms`, `message.max.bytes` for `max.message.bytes`); a topic's own config wins.

import { ConfigError, type ConfigSchema, type ConfigValue } from '@raftka/protocol';
import type { BrokerEndpoint } from '@raftka/quorum';
import { REPLICA_LAG_TIME_MAX_MS_DEFAULT } from './replica/leader-replica-state.js';
import { makeReplicaManagerConfig, REPLICA_FETCHER_CONFIG_DEFAULT, type ReplicaManagerConfig } from './replica-manager/replica-manager.js';
import { GROUP_RUNTIME_CONFIG_DEFAULT as G, type GroupRuntimeConfig } from './group/group-runtime.js';

/** Broker-level key -> the topic-level key it is the default of. */
const TOPIC_DEFAULT_KEYS: Readonly<Record<string, string>> = {
  'message.max.bytes': 'max.message.bytes',
  'log.retention.ms': 'retention.ms',
  'log.retention.bytes': 'retention.bytes',
  'log.segment.bytes': 'segment.bytes',
  'log.cleanup.policy': 'cleanup.policy',
  'min.insync.replicas': 'min.insync.replicas',
};

export const brokerConfigSchema: ConfigSchema = [
  {
    key: 'advertised.listeners',
    type: 'list',
    default: [],
    doc: 'The addresses clients and other brokers use to reach this broker, as NAME://host:port; empty means the broker listeners themselves. Set it when the bind address differs from the reachable one (containers, NAT).',
    group: 'broker',
  },
  { key: 'cluster.id', type: 'string', default: 'raftka', doc: 'The name of the cluster, returned to clients in Metadata and DescribeCluster.', group: 'broker' },
  { key: 'broker.rack', type: 'string', default: '', doc: 'The rack (or zone) of this broker; replicas of a partition are spread over racks.', group: 'broker' },
  {
    key: 'replica.lag.time.max.ms',
    type: 'long',
    default: REPLICA_LAG_TIME_MAX_MS_DEFAULT,
    min: 1,
    doc: 'A follower that has not caught up with the leader for this long is removed from the ISR (and added back once caught up).',
    group: 'broker',
  },
  { key: 'replica.fetch.wait.max.ms', type: 'int', default: REPLICA_FETCHER_CONFIG_DEFAULT.fetchWaitMaxMs, min: 0, doc: 'How long a follower fetch waits at the leader for new data (long poll); must be below replica.lag.time.max.ms.', group: 'broker' },
  { key: 'replica.fetch.max.bytes', type: 'int', default: REPLICA_FETCHER_CONFIG_DEFAULT.fetchMaxBytes, min: 1, doc: 'Bytes a follower asks for per partition in one fetch (at least one batch is always returned).', group: 'broker' },
  { key: 'replica.fetch.response.max.bytes', type: 'int', default: REPLICA_FETCHER_CONFIG_DEFAULT.fetchResponseMaxBytes, min: 1, doc: 'Bytes a follower asks for in one fetch over all partitions.', group: 'broker' },
  { key: 'message.max.bytes', type: 'int', default: 1048588, min: 0, doc: 'Default of the topic key max.message.bytes: the largest record batch a partition accepts (MESSAGE_TOO_LARGE beyond).', group: 'broker' },
  { key: 'log.retention.ms', type: 'long', default: 7 * 24 * 3600 * 1000, min: -1, doc: 'Default of the topic key retention.ms; -1 keeps data forever.', group: 'broker' },
  { key: 'log.retention.bytes', type: 'long', default: -1, min: -1, doc: 'Default of the topic key retention.bytes; -1 means no size limit.', group: 'broker' },
  { key: 'log.segment.bytes', type: 'int', default: 1024 * 1024 * 1024, min: 1024, doc: 'Default of the topic key segment.bytes.', group: 'broker' },
  { key: 'log.cleanup.policy', type: 'list', default: ['delete'], doc: 'Default of the topic key cleanup.policy (delete, compact, or both).', group: 'broker' },
  // ---- consumer groups (the group coordinator on __consumer_offsets) ----
  // offsets.topic.num.partitions and offsets.topic.replication.factor are in the controller's
  // schema (it reports them in DescribeConfigs); brokerConfigFromValues reads them from there.
  { key: 'offsets.topic.segment.bytes', type: 'int', default: G.offsetsTopicSegmentBytes, min: 1024, doc: 'segment.bytes of __consumer_offsets (small, so compaction can clean old segments early).', group: 'broker' },
  { key: 'offsets.retention.ms', type: 'long', default: G.offsetsRetentionMs, min: 1, doc: 'Committed offsets of a group that has been empty this long (or, outside group management, committed this long ago) are deleted (KIP-211).', group: 'broker' },
  { key: 'offsets.retention.check.interval.ms', type: 'long', default: G.offsetsRetentionCheckIntervalMs, min: 1, doc: 'How often the coordinator looks for expired offsets.', group: 'broker' },
  { key: 'offsets.commit.timeout.ms', type: 'int', default: G.offsetsCommitTimeoutMs, min: 1, doc: 'How long a group change or offset commit waits for every in-sync replica of __consumer_offsets before REQUEST_TIMED_OUT.', group: 'broker' },
  { key: 'offset.metadata.max.bytes', type: 'int', default: G.offsetMetadataMaxBytes, min: 0, doc: 'Largest metadata string an offset commit may carry (OFFSET_METADATA_TOO_LARGE beyond).', group: 'broker' },
  { key: 'group.min.session.timeout.ms', type: 'int', default: G.groupMinSessionTimeoutMs, min: 0, doc: 'Smallest session.timeout.ms a member may join with (INVALID_SESSION_TIMEOUT below).', group: 'broker' },
  { key: 'group.max.session.timeout.ms', type: 'int', default: G.groupMaxSessionTimeoutMs, min: 0, doc: 'Largest session.timeout.ms a member may join with (INVALID_SESSION_TIMEOUT above).', group: 'broker' },
  {
    key: 'group.initial.rebalance.delay.ms',
    type: 'int',
    default: G.groupInitialRebalanceDelayMs,
    min: 0,
    doc: 'How long the first rebalance of an empty group waits for more members (extended while they keep arriving), so a starting application is not rebalanced once per member.',
    group: 'broker',
  },
  { key: 'group.max.size', type: 'int', default: G.groupMaxSize, min: 1, doc: 'Most members a group may have (GROUP_MAX_SIZE_REACHED beyond).', group: 'broker' },
];

const ENDPOINT_PATTERN = /^([A-Z][A-Z0-9_]*):\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s]+):(\d+)$/;

/** NAME://host:port entries as registration endpoints (callers validate with `endpointProblems`). */
export function parseEndpoints(items: readonly string[]): BrokerEndpoint[] {
  return items.map((item) => {
    const match = ENDPOINT_PATTERN.exec(item)!;
    return { name: match[1]!, host: match[2]!.replace(/^\[|\]$/g, ''), port: Number(match[3]), securityProtocol: 'PLAINTEXT' };
  });
}

function endpointProblems(key: string, items: readonly string[]): string[] {
  return items.filter((item) => !ENDPOINT_PATTERN.test(item)).map((item) => `${key}: '${item}' is not of the form NAME://host:port (a host clients can reach)`);
}

export interface BrokerConfig {
  clusterId: string;
  advertisedListeners: string[];
  rack: string | undefined;
  replicaManager: ReplicaManagerConfig;
  /** The group coordinator's settings (offsets.* and group.* keys). */
  groups: GroupRuntimeConfig;
}

/** Builds the broker's typed config from resolved values (the server's schema includes brokerConfigSchema). */
export function brokerConfigFromValues(values: ReadonlyMap<string, ConfigValue>): BrokerConfig {
  const topicConfigDefaults: Record<string, string> = {};
  for (const [brokerKey, topicKey] of Object.entries(TOPIC_DEFAULT_KEYS)) {
    const value = values.get(brokerKey);
    if (value !== undefined) topicConfigDefaults[topicKey] = Array.isArray(value) ? value.join(',') : String(value);
  }
  const fetchWaitMaxMs = values.get('replica.fetch.wait.max.ms') as number;
  const replicaLagTimeMaxMs = values.get('replica.lag.time.max.ms') as number;
  const advertised = values.get('advertised.listeners') as string[];
  const problems = endpointProblems('advertised.listeners', advertised);
  const groupMinSessionTimeoutMs = values.get('group.min.session.timeout.ms') as number;
  const groupMaxSessionTimeoutMs = values.get('group.max.session.timeout.ms') as number;
  if (groupMinSessionTimeoutMs > groupMaxSessionTimeoutMs) {
    problems.push(`group.min.session.timeout.ms=${groupMinSessionTimeoutMs} must not exceed group.max.session.timeout.ms=${groupMaxSessionTimeoutMs}`);
  }
  if (fetchWaitMaxMs >= replicaLagTimeMaxMs) {
    problems.push(
      `replica.fetch.wait.max.ms=${fetchWaitMaxMs} must be below replica.lag.time.max.ms=${replicaLagTimeMaxMs}, or caught-up followers waiting at the leader drop out of the ISR`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const rack = values.get('broker.rack') as string;
  return {
    clusterId: values.get('cluster.id') as string,
    advertisedListeners: advertised,
    rack: rack === '' ? undefined : rack,
    groups: {
      offsetsTopicNumPartitions: (values.get('offsets.topic.num.partitions') as number | undefined) ?? G.offsetsTopicNumPartitions,
      offsetsTopicReplicationFactor: (values.get('offsets.topic.replication.factor') as number | undefined) ?? G.offsetsTopicReplicationFactor,
      offsetsTopicSegmentBytes: values.get('offsets.topic.segment.bytes') as number,
      offsetsRetentionMs: values.get('offsets.retention.ms') as number,
      offsetsRetentionCheckIntervalMs: values.get('offsets.retention.check.interval.ms') as number,
      offsetsCommitTimeoutMs: values.get('offsets.commit.timeout.ms') as number,
      offsetMetadataMaxBytes: values.get('offset.metadata.max.bytes') as number,
      groupMinSessionTimeoutMs,
      groupMaxSessionTimeoutMs,
      groupInitialRebalanceDelayMs: values.get('group.initial.rebalance.delay.ms') as number,
      groupMaxSize: values.get('group.max.size') as number,
    },
    replicaManager: makeReplicaManagerConfig({
      replicaLagTimeMaxMs,
      topicConfigDefaults,
      fetcher: {
        fetchWaitMaxMs,
        fetchMaxBytes: values.get('replica.fetch.max.bytes') as number,
        fetchResponseMaxBytes: values.get('replica.fetch.response.max.bytes') as number,
      },
    }),
  };
}
