// The broker's configuration keys (server.properties names, as Kafka's), their documentation
// (rendered into the README's configuration table) and their typed form.
//
// Topic defaults use Kafka's broker-level names (`log.retention.ms` for the topic key
// `retention.ms`, `message.max.bytes` for `max.message.bytes`); a topic's own config wins.

import { ConfigError, type ConfigSchema, type ConfigValue } from '@raftka/protocol';
import type { BrokerEndpoint } from '@raftka/quorum';
import { REPLICA_LAG_TIME_MAX_MS_DEFAULT } from './replica/leader-replica-state.js';
import { makeReplicaManagerConfig, REPLICA_FETCHER_CONFIG_DEFAULT, type ReplicaManagerConfig } from './replica-manager/replica-manager.js';

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
