// Per-topic log configuration: Kafka's topic-level keys and defaults (the schema is protocol's
// `topicConfigSchema`, shared with the controller that validates CreateTopics/AlterConfigs),
// resolved into a typed `LogConfig` that the log trusts without re-checking.
//
// Kafka's `Long.MAX_VALUE` ("never") is not representable as a JavaScript number; Raftka uses
// Number.MAX_SAFE_INTEGER for the same meaning (`NEVER_MS` / `NEVER_MESSAGES`).

import { TOPIC_CONFIG_NEVER, resolveConfig, topicConfigSchema, type ConfigSchema, type ConfigSource, type ConfigValue } from '@raftka/protocol';

/** Stands for Kafka's Long.MAX_VALUE in "never" settings (flush.ms, flush.messages). */
export const NEVER_MS = TOPIC_CONFIG_NEVER;
export const NEVER_MESSAGES = TOPIC_CONFIG_NEVER;

/** Offset index entries are (int32 relative offset, int32 position): 8 bytes each. */
export const OFFSET_INDEX_ENTRY_BYTES = 8;
/** Time index entries are (int64 timestamp, int32 relative offset): 12 bytes each. */
export const TIME_INDEX_ENTRY_BYTES = 12;

/** Segment positions are stored as int32 in the offset index, which bounds a segment's size. */
export const SEGMENT_BYTES_MAX = 2 ** 31 - 1;

export type TimestampType = 'CreateTime' | 'LogAppendTime';

export interface CleanupPolicy {
  delete: boolean;
  compact: boolean;
}

export interface LogConfig {
  segmentBytes: number;
  segmentMs: number;
  segmentIndexBytes: number;
  indexIntervalBytes: number;
  /** -1 keeps data forever. */
  retentionMs: number;
  /** -1 means no size limit. */
  retentionBytes: number;
  cleanupPolicy: CleanupPolicy;
  deleteRetentionMs: number;
  minCleanableDirtyRatio: number;
  minCompactionLagMs: number;
  maxMessageBytes: number;
  flushMessages: number;
  flushMs: number;
  fileDeleteDelayMs: number;
  messageTimestampType: TimestampType;
}

/**
 * The topic-level keys, with Kafka's names and defaults. The schema itself lives in
 * @raftka/protocol (`topicConfigSchema`), shared with the controller that validates
 * CreateTopics/AlterConfigs; the log reads the subset it obeys from it.
 */
export const logConfigSchema: ConfigSchema = topicConfigSchema;

export const defaultLogConfig: Readonly<LogConfig> = Object.freeze(logConfigFromValues(resolveConfig(logConfigSchema, [])));

/** A config from defaults plus typed overrides (programmatic use and tests). */
export function makeLogConfig(overrides: Partial<LogConfig> = {}): LogConfig {
  const config = { ...defaultLogConfig, cleanupPolicy: { ...defaultLogConfig.cleanupPolicy }, ...overrides };
  return config;
}

/**
 * Resolves topic-level key/value pairs (as they come from CreateTopics or the metadata log)
 * over Kafka's defaults; throws ConfigError listing every bad key.
 */
export function logConfigFromProperties(properties: Record<string, string>, origin = 'topic config'): LogConfig {
  const sources: ConfigSource[] = Object.entries(properties).map(([key, value]) => ({ origin, key, value }));
  return logConfigFromValues(resolveConfig(logConfigSchema, sources));
}

/** The log's typed view of a resolved topic config (e.g. protocol's `resolveTopicConfig` result). */
export function logConfigFromValues(values: ReadonlyMap<string, ConfigValue>): LogConfig {
  const number = (key: string): number => values.get(key) as number;
  const policy = values.get('cleanup.policy') as string[];
  return {
    segmentBytes: number('segment.bytes'),
    segmentMs: number('segment.ms'),
    segmentIndexBytes: number('segment.index.bytes'),
    indexIntervalBytes: number('index.interval.bytes'),
    retentionMs: number('retention.ms'),
    retentionBytes: number('retention.bytes'),
    cleanupPolicy: { delete: policy.includes('delete'), compact: policy.includes('compact') },
    deleteRetentionMs: number('delete.retention.ms'),
    minCleanableDirtyRatio: number('min.cleanable.dirty.ratio'),
    minCompactionLagMs: number('min.compaction.lag.ms'),
    maxMessageBytes: number('max.message.bytes'),
    flushMessages: number('flush.messages'),
    flushMs: number('flush.ms'),
    fileDeleteDelayMs: number('file.delete.delay.ms'),
    messageTimestampType: values.get('message.timestamp.type') as TimestampType,
  };
}
