// Topic-level configuration keys: Kafka's names, types and defaults, as one schema shared by the
// controller (which validates CreateTopics and IncrementalAlterConfigs input and stores the
// overrides in the metadata log) and the broker (whose partition logs obey them).
//
// It lives in protocol because both quorum and broker need it and neither may import the other.
// The metadata log stores only the overrides a user set, as strings; a reader resolves them over
// these defaults with `resolveTopicConfig`.
//
// Kafka's `Long.MAX_VALUE` ("never", for flush.messages and flush.ms) is not representable as a
// JavaScript number; Number.MAX_SAFE_INTEGER stands for it.

import { ConfigError, resolveConfig, type ConfigKeyDefinition, type ConfigSchema, type ConfigSource, type ConfigValue } from './config.js';
import { BATCH_HEADER_BYTES } from './record-batch/header.js';

/** Stands for Kafka's Long.MAX_VALUE in "never" settings. */
export const TOPIC_CONFIG_NEVER = Number.MAX_SAFE_INTEGER;

const DAY_MS = 24 * 60 * 60 * 1000;
/** The offset index stores positions as int32, which bounds a segment's size. */
const SEGMENT_BYTES_MAX = 2 ** 31 - 1;
/** One time-index entry (int64 timestamp, int32 relative offset); an index holds at least one. */
const TIME_INDEX_ENTRY_BYTES = 12;

const cleanupPolicies: readonly string[] = ['delete', 'compact'];

export const COMPRESSION_TYPES = ['uncompressed', 'zstd', 'lz4', 'snappy', 'gzip', 'producer'] as const;
export type TopicCompressionType = (typeof COMPRESSION_TYPES)[number];

/** The topic-level keys Raftka understands. */
export const topicConfigSchema: ConfigSchema = [
  {
    key: 'cleanup.policy',
    type: 'list',
    default: ['delete'],
    doc: 'delete (retention by time and size), compact (keep the newest record per key) or compact,delete.',
    validate: (value: unknown) => {
      const items = value as string[];
      if (items.length === 0) return 'allowed: delete, compact or compact,delete';
      const unknown = items.filter((item) => !cleanupPolicies.includes(item));
      return unknown.length > 0 ? `unknown policy ${unknown.join(', ')}; allowed: delete, compact or compact,delete` : undefined;
    },
    group: 'topic',
  } satisfies ConfigKeyDefinition<string[]> as ConfigKeyDefinition,
  { key: 'retention.ms', type: 'long', default: 7 * DAY_MS, min: -1, doc: 'Segments whose newest timestamp is older than this are deleted; -1 keeps data forever.', group: 'topic' },
  { key: 'retention.bytes', type: 'long', default: -1, min: -1, doc: 'Oldest segments are deleted while the partition is larger than this; -1 means no limit.', group: 'topic' },
  { key: 'segment.bytes', type: 'int', default: 1024 * 1024 * 1024, min: BATCH_HEADER_BYTES, max: SEGMENT_BYTES_MAX, doc: 'Size at which the active segment is rolled.', group: 'topic' },
  { key: 'segment.ms', type: 'long', default: 7 * DAY_MS, min: 1, doc: 'Age at which a non-empty active segment is rolled even if it is not full.', group: 'topic' },
  { key: 'segment.index.bytes', type: 'int', default: 10 * 1024 * 1024, min: TIME_INDEX_ENTRY_BYTES, doc: "Maximum size of a segment's offset and time index.", group: 'topic' },
  { key: 'index.interval.bytes', type: 'int', default: 4096, min: 0, doc: 'Bytes of batches between two sparse offset-index entries.', group: 'topic' },
  { key: 'min.insync.replicas', type: 'int', default: 1, min: 1, doc: 'With acks=all, a produce fails with NOT_ENOUGH_REPLICAS when the ISR is smaller than this.', group: 'topic' },
  { key: 'max.message.bytes', type: 'int', default: 1048588, min: 0, doc: 'Largest record batch the partition accepts (MESSAGE_TOO_LARGE beyond).', group: 'topic' },
  {
    key: 'unclean.leader.election.enable',
    type: 'boolean',
    default: false,
    doc: 'Elect an out-of-sync replica when no ISR member is alive: availability at the price of losing acknowledged records.',
    group: 'topic',
  },
  { key: 'delete.retention.ms', type: 'long', default: DAY_MS, min: 0, doc: 'How long a tombstone is kept in a compacted topic.', group: 'topic' },
  { key: 'min.cleanable.dirty.ratio', type: 'double', default: 0.5, min: 0, max: 1, doc: 'The cleaner compacts a log once dirty bytes / total bytes reaches this ratio.', group: 'topic' },
  { key: 'min.compaction.lag.ms', type: 'long', default: 0, min: 0, doc: 'Records newer than this stay uncompacted.', group: 'topic' },
  { key: 'flush.messages', type: 'long', default: TOPIC_CONFIG_NEVER, min: 1, doc: 'Fsync after this many messages; the default never forces fsync and relies on replication.', group: 'topic' },
  { key: 'flush.ms', type: 'long', default: TOPIC_CONFIG_NEVER, min: 0, doc: 'Fsync data older than this; the default never forces fsync and relies on replication.', group: 'topic' },
  {
    key: 'message.timestamp.type',
    type: 'string',
    default: 'CreateTime',
    choices: ['CreateTime', 'LogAppendTime'],
    doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the broker's clock.",
    group: 'topic',
  },
  {
    key: 'compression.type',
    type: 'string',
    default: 'producer',
    choices: COMPRESSION_TYPES,
    doc: 'producer keeps the batches as the producer compressed them; any other value recompresses on the broker.',
    group: 'topic',
  },
  { key: 'file.delete.delay.ms', type: 'long', default: 60000, min: 0, doc: 'Delay between a segment leaving the log and its files being removed.', group: 'topic' },
];

const topicConfigKeys: ReadonlyMap<string, ConfigKeyDefinition> = new Map(topicConfigSchema.map((definition) => [definition.key, definition]));

export function topicConfigDefinition(key: string): ConfigKeyDefinition | undefined {
  return topicConfigKeys.get(key);
}

/**
 * Validates topic-level overrides (as a user sends them); returns the parsed values of exactly
 * the keys given. Throws ConfigError (INVALID_CONFIG) naming every bad key, unknown keys included.
 */
export function validateTopicConfigs(overrides: Readonly<Record<string, string>> | ReadonlyMap<string, string>, origin = 'topic config'): Map<string, ConfigValue> {
  const entries = overrides instanceof Map ? [...overrides] : Object.entries(overrides as Record<string, string>);
  const sources: ConfigSource[] = entries.map(([key, value]) => ({ origin, key, value }));
  const resolved = resolveConfig(topicConfigSchema, sources);
  return new Map(entries.map(([key]) => [key, resolved.get(key) as ConfigValue]));
}

/** Every topic-level key resolved: `overrides` (already validated) over Kafka's defaults. */
export function resolveTopicConfig(overrides: ReadonlyMap<string, string> = new Map()): Map<string, ConfigValue> {
  const sources: ConfigSource[] = [...overrides].map(([key, value]) => ({ origin: 'topic config', key, value }));
  try {
    return resolveConfig(topicConfigSchema, sources);
  } catch (error) {
    // Overrides come from the committed metadata log, validated when they were written.
    if (error instanceof ConfigError) throw new ConfigError(error.problems.map((problem) => `stored ${problem}`));
    throw error;
  }
}
