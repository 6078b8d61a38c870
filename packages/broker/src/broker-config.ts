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

/** How listener names are spelled in `listeners`, `advertised.listeners` and the keys that name them. */
const LISTENER_NAME_PATTERN = /^[A-Z][A-Z0-9_]*$/;

/** The only security protocol Raftka speaks today (no TLS, no SASL yet). */
export const SECURITY_PROTOCOL_PLAINTEXT = 'PLAINTEXT';

/** Kafka's security protocol names: recognised so a Kafka configuration gets a precise refusal. */
const KAFKA_SECURITY_PROTOCOLS: readonly string[] = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'];

/**
 * The default of listener.security.protocol.map: the listener names Kafka deployments commonly
 * use, all PLAINTEXT. Any other name is PLAINTEXT too (see the key's doc), so the default only
 * documents the convention.
 */
export const LISTENER_SECURITY_PROTOCOL_MAP_DEFAULT: readonly string[] = ['CONTROLLER:PLAINTEXT', 'PLAINTEXT:PLAINTEXT', 'INTERNAL:PLAINTEXT', 'EXTERNAL:PLAINTEXT'];

function securityProtocolMapProblem(entries: readonly string[]): string | undefined {
  const names = new Set<string>();
  for (const entry of entries) {
    const separator = entry.indexOf(':');
    const name = entry.slice(0, separator).trim();
    const protocol = entry.slice(separator + 1).trim();
    if (separator <= 0 || !LISTENER_NAME_PATTERN.test(name)) return `'${entry}' is not of the form NAME:PROTOCOL (e.g. INTERNAL:PLAINTEXT)`;
    if (names.has(name)) return `the listener ${name} is mapped twice`;
    names.add(name);
    if (protocol !== SECURITY_PROTOCOL_PLAINTEXT) {
      return KAFKA_SECURITY_PROTOCOLS.includes(protocol)
        ? `${name}:${protocol}: only PLAINTEXT is supported (Raftka has no TLS or SASL yet); map ${name} to PLAINTEXT`
        : `${name}:${protocol}: '${protocol}' is not a security protocol; only PLAINTEXT is supported`;
    }
  }
  return undefined;
}

export const brokerConfigSchema: ConfigSchema = [
  {
    key: 'advertised.listeners',
    type: 'list',
    default: [],
    doc: 'The addresses clients and other brokers use to reach this broker, as NAME://host:port, one per client listener and matched to listeners by NAME; a listener without an entry advertises its own host:port. Set it when the bind address differs from the reachable one (containers, NAT); 0.0.0.0 is never reachable.',
    group: 'broker',
  },
  {
    key: 'inter.broker.listener.name',
    type: 'string',
    default: '',
    doc: 'The client listener whose advertised address followers use to fetch from leaders (replication traffic between brokers); empty means the first client listener in listeners.',
    group: 'broker',
    validate: (value) => (value === '' || LISTENER_NAME_PATTERN.test(value as string) ? undefined : 'expected a listener name such as INTERNAL'),
  },
  {
    key: 'listener.security.protocol.map',
    type: 'list',
    default: [...LISTENER_SECURITY_PROTOCOL_MAP_DEFAULT],
    doc: 'The security protocol of each listener, as NAME:PROTOCOL,...; accepted so Kafka configurations carry over. Only PLAINTEXT is supported, and a listener not named here is PLAINTEXT.',
    group: 'broker',
    validate: (value) => securityProtocolMapProblem(value as string[]),
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

const PORT_MAX = 65_535;
const ENDPOINT_PATTERN = /^([A-Z][A-Z0-9_]*):\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s]+):(\d+)$/;

/** NAME://host:port entries as registration endpoints (callers validate with `endpointProblems`). */
export function parseEndpoints(items: readonly string[]): BrokerEndpoint[] {
  return items.map((item) => {
    const match = ENDPOINT_PATTERN.exec(item)!;
    return { name: match[1]!, host: match[2]!.replace(/^\[|\]$/g, ''), port: Number(match[3]), securityProtocol: 'PLAINTEXT' };
  });
}

/**
 * Hosts that mean "every interface" when bound to and nothing when connected to: a client given
 * one cannot reach the broker (Kafka refuses them in advertised.listeners for the same reason).
 */
export const WILDCARD_HOSTS: readonly string[] = ['', '0.0.0.0', '::', '0:0:0:0:0:0:0:0'];

function endpointProblems(key: string, items: readonly string[]): string[] {
  const problems: string[] = [];
  for (const item of items) {
    const match = ENDPOINT_PATTERN.exec(item);
    if (match === null) {
      problems.push(`${key}: '${item}' is not of the form NAME://host:port (a host clients can reach)`);
      continue;
    }
    const host = match[2]!.replace(/^\[|\]$/g, '');
    if (WILDCARD_HOSTS.includes(host)) {
      problems.push(`${key}: '${item}' advertises ${host}, which clients cannot connect to; advertise a host name or address they reach`);
    }
    const port = Number(match[3]);
    if (port < 1 || port > PORT_MAX) problems.push(`${key}: '${item}' advertises port ${port}, outside 1..${PORT_MAX}`);
  }
  const names = parseEndpoints(items.filter((item) => ENDPOINT_PATTERN.test(item))).map((endpoint) => endpoint.name);
  for (const name of new Set(names.filter((candidate, index) => names.indexOf(candidate) !== index))) {
    problems.push(`${key}: the listener ${name} is advertised twice; give each listener one address`);
  }
  return problems;
}

function securityProtocolMapFrom(entries: readonly string[]): ReadonlyMap<string, typeof SECURITY_PROTOCOL_PLAINTEXT> {
  // Validated by the key's `validate`: every entry is NAME:PLAINTEXT.
  return new Map(entries.map((entry) => [entry.slice(0, entry.indexOf(':')).trim(), SECURITY_PROTOCOL_PLAINTEXT]));
}

export interface BrokerConfig {
  clusterId: string;
  /** advertised.listeners as given (NAME://host:port); matched to listeners by name in `resolveBrokerListeners`. */
  advertisedListeners: string[];
  /** inter.broker.listener.name; undefined = the first client listener. */
  interBrokerListenerName?: string | undefined;
  /** listener.security.protocol.map (every value PLAINTEXT; a listener absent here is PLAINTEXT too). */
  listenerSecurityProtocolMap?: ReadonlyMap<string, typeof SECURITY_PROTOCOL_PLAINTEXT>;
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
  const interBrokerListenerName = values.get('inter.broker.listener.name') as string;
  return {
    clusterId: values.get('cluster.id') as string,
    advertisedListeners: advertised,
    interBrokerListenerName: interBrokerListenerName === '' ? undefined : interBrokerListenerName,
    listenerSecurityProtocolMap: securityProtocolMapFrom(values.get('listener.security.protocol.map') as string[]),
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
