// Configuration of the controller's duties: Kafka's key names, with defaults chosen for Raftka.
//
// The schema plugs into @raftka/protocol's config machinery (properties file + RAFTKA_CFG_ env
// overrides, one error line per bad key). Keys that Kafka also allows as dynamic cluster-wide
// broker configs (unclean.leader.election.enable, auto.leader.rebalance.enable, num.partitions,
// default.replication.factor, min.insync.replicas) can be overridden at run time through
// IncrementalAlterConfigs on the broker resource '' (the cluster default); the controller reads
// the effective value with `effectiveControllerConfig`.

import { ConfigError, resolveConfig, type ConfigSchema, type ConfigSource, type ConfigValue } from '@raftka/protocol';

/**
 * Session timeout 3000 ms with heartbeats every 500 ms. Why not Kafka's 9000/2000: the session
 * timeout is what fences a broker that hangs (a long GC pause, SIGSTOP, a network partition) and
 * Raftka aims for failover within a few seconds then. A broker that dies is not waiting on it: its
 * closed connection ends its BrokerSession call and the controller fences it after
 * BROKER_CONNECTION_LOSS_GRACE_MS (a restarted broker's re-registration fences its old incarnation
 * at once too). Six heartbeats per
 * session let a broker lose or delay five in a row (a GC pause, a slow RPC, a controller failover)
 * before it is fenced, so the fast timeout does not cause flapping. Lower both for faster failover;
 * the interval must stay at most a third of the timeout (asserted below).
 */
export const BROKER_SESSION_TIMEOUT_MS_DEFAULT = 3000;
export const BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT = 500;
/** At least this many heartbeats must fit into one session timeout. */
export const HEARTBEATS_PER_SESSION_MIN = 3;

export interface ControllerConfig {
  numPartitions: number;
  defaultReplicationFactor: number;
  brokerSessionTimeoutMs: number;
  brokerHeartbeatIntervalMs: number;
  uncleanLeaderElectionEnable: boolean;
  autoLeaderRebalanceEnable: boolean;
  leaderImbalanceCheckIntervalSeconds: number;
  autoCreateTopicsEnable: boolean;
  minInsyncReplicas: number;
  offsetsTopicNumPartitions: number;
  offsetsTopicReplicationFactor: number;
}

export const controllerConfigSchema: ConfigSchema = [
  { key: 'num.partitions', type: 'int', default: 1, min: 1, doc: 'Partitions of a topic created without an explicit count.', group: 'controller' },
  { key: 'default.replication.factor', type: 'int', default: 1, min: 1, doc: 'Replication factor of a topic created without an explicit one.', group: 'controller' },
  {
    key: 'broker.session.timeout.ms',
    type: 'int',
    default: BROKER_SESSION_TIMEOUT_MS_DEFAULT,
    min: 1,
    doc: 'A broker that sends no heartbeat for this long is fenced and loses its partition leaderships.',
    group: 'controller',
  },
  {
    key: 'broker.heartbeat.interval.ms',
    type: 'int',
    default: BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT,
    min: 1,
    doc: `Interval between broker heartbeats; at most broker.session.timeout.ms / ${HEARTBEATS_PER_SESSION_MIN}.`,
    group: 'controller',
  },
  {
    key: 'unclean.leader.election.enable',
    type: 'boolean',
    default: false,
    doc: 'Elect an out-of-sync replica when no ISR member is alive (may lose acknowledged records); a topic may override it.',
    group: 'controller',
  },
  { key: 'auto.leader.rebalance.enable', type: 'boolean', default: true, doc: 'Periodically move leadership back to the preferred (first) replica when it is healthy.', group: 'controller' },
  { key: 'leader.imbalance.check.interval.seconds', type: 'long', default: 300, min: 1, doc: 'How often the preferred-leader rebalance runs.', group: 'controller' },
  { key: 'auto.create.topics.enable', type: 'boolean', default: true, doc: 'Create a topic on first metadata request or produce to it.', group: 'controller' },
  { key: 'min.insync.replicas', type: 'int', default: 1, min: 1, doc: 'Cluster default of the topic key min.insync.replicas.', group: 'controller' },
  { key: 'offsets.topic.num.partitions', type: 'int', default: 50, min: 1, doc: 'Partitions of __consumer_offsets.', group: 'controller' },
  { key: 'offsets.topic.replication.factor', type: 'int', default: 3, min: 1, doc: 'Replication factor of __consumer_offsets.', group: 'controller' },
];

/** Keys that IncrementalAlterConfigs may set on the broker resource ('' = cluster default, or a broker id). */
export const DYNAMIC_BROKER_CONFIG_KEYS: ReadonlySet<string> = new Set([
  'unclean.leader.election.enable',
  'auto.leader.rebalance.enable',
  'num.partitions',
  'default.replication.factor',
  'min.insync.replicas',
]);

/** Converts resolved values into the typed config, checking relationships between keys. */
export function controllerConfigFromValues(values: ReadonlyMap<string, ConfigValue>): ControllerConfig {
  const number = (key: string): number => values.get(key) as number;
  const boolean = (key: string): boolean => values.get(key) as boolean;
  const config: ControllerConfig = {
    numPartitions: number('num.partitions'),
    defaultReplicationFactor: number('default.replication.factor'),
    brokerSessionTimeoutMs: number('broker.session.timeout.ms'),
    brokerHeartbeatIntervalMs: number('broker.heartbeat.interval.ms'),
    uncleanLeaderElectionEnable: boolean('unclean.leader.election.enable'),
    autoLeaderRebalanceEnable: boolean('auto.leader.rebalance.enable'),
    leaderImbalanceCheckIntervalSeconds: number('leader.imbalance.check.interval.seconds'),
    autoCreateTopicsEnable: boolean('auto.create.topics.enable'),
    minInsyncReplicas: number('min.insync.replicas'),
    offsetsTopicNumPartitions: number('offsets.topic.num.partitions'),
    offsetsTopicReplicationFactor: number('offsets.topic.replication.factor'),
  };
  if (config.brokerHeartbeatIntervalMs * HEARTBEATS_PER_SESSION_MIN > config.brokerSessionTimeoutMs) {
    throw new ConfigError([
      `broker.heartbeat.interval.ms=${config.brokerHeartbeatIntervalMs} is too long for broker.session.timeout.ms=${config.brokerSessionTimeoutMs}; at least ${HEARTBEATS_PER_SESSION_MIN} heartbeats must fit into one session`,
    ]);
  }
  return config;
}

/** Parses controller keys from config sources (properties file, env, overrides). */
export function parseControllerConfig(sources: readonly ConfigSource[] = []): ControllerConfig {
  return controllerConfigFromValues(resolveConfig(controllerConfigSchema, sources));
}

/** The defaults, with typed overrides (programmatic use and tests). */
export function makeControllerConfig(overrides: Partial<ControllerConfig> = {}): ControllerConfig {
  return { ...parseControllerConfig(), ...overrides };
}

/**
 * The static config with the dynamic cluster-wide overrides of the metadata log applied
 * (`clusterDefaults` = configs of broker resource ''). Values were validated when written.
 */
export function effectiveControllerConfig(config: ControllerConfig, clusterDefaults: ReadonlyMap<string, string>): ControllerConfig {
  if (clusterDefaults.size === 0) return config;
  const effective = { ...config };
  for (const [key, value] of clusterDefaults) {
    switch (key) {
      case 'unclean.leader.election.enable':
        effective.uncleanLeaderElectionEnable = value === 'true';
        break;
      case 'auto.leader.rebalance.enable':
        effective.autoLeaderRebalanceEnable = value === 'true';
        break;
      case 'num.partitions':
        effective.numPartitions = Number(value);
        break;
      case 'default.replication.factor':
        effective.defaultReplicationFactor = Number(value);
        break;
      case 'min.insync.replicas':
        effective.minInsyncReplicas = Number(value);
        break;
      default:
        break;
    }
  }
  return effective;
}
