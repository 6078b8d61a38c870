// Producer, consumer and admin options: one schema per client, validated once at construction.
//
// Options are a plain object with camelCase keys (the JavaScript idiom); each key maps to the
// Kafka client property of the same meaning (`lingerMs` = `linger.ms`). Validation happens at the
// boundary (STYLE.md rule 6): an unknown key, a wrong type or an out-of-range value is a
// `ConfigError` listing every problem at once, so a typo such as `lingerMS` never silently falls
// back to a default. Inner code then trusts the resolved values.

import { ConfigError, type ConfigKeyDefinition } from '@raftka/protocol';

type OptionType = 'int' | 'double' | 'boolean' | 'string' | 'list';

interface OptionDefinition<T> {
  type: OptionType;
  default: T | undefined;
  doc: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
}

type Schema<T> = { [K in keyof T]-?: OptionDefinition<T[K]> };

const MIB = 1024 * 1024;
/** Largest duration we accept anywhere: about 24 days, the range of a Node timer. */
const DURATION_MS_MAX = 2 ** 31 - 1;

export type Acks = 0 | 1 | -1;
export type CompressionType = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

/** Options shared by every client. */
export interface CommonOptions {
  /** `host:port` of at least one broker, used to discover the cluster. */
  bootstrapServers: string[];
  /** Free-form name sent with requests, for broker logs and quotas. */
  clientId: string;
  /** Deadline of one request to a broker (`request.timeout.ms`). */
  requestTimeoutMs: number;
  /** First retry delay (`retry.backoff.ms`). */
  retryBackoffMs: number;
  /** Ceiling on the exponential retry delay (`retry.backoff.max.ms`, KIP-580). */
  retryBackoffMaxMs: number;
  /** Metadata is refreshed at least this often even without errors (`metadata.max.age.ms`). */
  metadataMaxAgeMs: number;
  /** Largest gRPC message the client sends or accepts. */
  maxRequestSize: number;
}

export interface ProducerOptions extends CommonOptions {
  acks: Acks;
  /** Upper bound on a batch's bytes (`batch.size`); a larger record gets a batch of its own. */
  batchSize: number;
  /** How long a batch waits for more records before it is sent (`linger.ms`). */
  lingerMs: number;
  /** Bytes of records the producer may hold unsent (`buffer.memory`); appends wait when full. */
  bufferMemory: number;
  /** How long an append may wait for buffer memory or metadata (`max.block.ms`). */
  maxBlockMs: number;
  /** Upper bound on the time from append to success or failure (`delivery.timeout.ms`). */
  deliveryTimeoutMs: number;
  /** Retries of a failed batch, bounded in time by deliveryTimeoutMs (`retries`). */
  retries: number;
  compressionType: CompressionType;
  /** Exactly-once per partition within a session (`enable.idempotence`, KIP-98). */
  enableIdempotence: boolean;
  /** Requests in flight per broker (`max.in.flight.requests.per.connection`). */
  maxInFlightRequestsPerConnection: number;
  /** How long the leader waits for in-sync replicas when acks = -1. */
  ackTimeoutMs: number;
}

export interface ConsumerOptions extends CommonOptions {
  groupId: string;
  /** Static membership id (`group.instance.id`, KIP-345); empty for a dynamic member. */
  groupInstanceId: string;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /**
   * Longest gap between polls (`max.poll.interval.ms`): a member that does not poll within it
   * leaves the group. Also sent as the group's rebalance timeout, as Kafka's consumer does.
   */
  maxPollIntervalMs: number;
  /** Assignors by protocol name, most preferred first (`partition.assignment.strategy`). */
  partitionAssignmentStrategy: string[];
  /** Deadline of blocking calls without their own timeout: commitSync, close (`default.api.timeout.ms`). */
  defaultApiTimeoutMs: number;
  fetchMinBytes: number;
  fetchMaxBytes: number;
  fetchMaxWaitMs: number;
  maxPartitionFetchBytes: number;
  autoOffsetReset: 'earliest' | 'latest' | 'none';
  enableAutoCommit: boolean;
  autoCommitIntervalMs: number;
  isolationLevel: 'read_uncommitted' | 'read_committed';
  maxPollRecords: number;
}

export type AdminOptions = CommonOptions;

const commonSchema: Schema<CommonOptions> = {
  bootstrapServers: { type: 'list', default: undefined, doc: 'host:port of at least one broker' },
  clientId: { type: 'string', default: 'raftka', doc: 'client name sent with requests' },
  requestTimeoutMs: { type: 'int', default: 30_000, min: 1, max: DURATION_MS_MAX, doc: 'deadline of one request' },
  retryBackoffMs: { type: 'int', default: 100, min: 0, max: DURATION_MS_MAX, doc: 'first retry delay' },
  retryBackoffMaxMs: { type: 'int', default: 1000, min: 0, max: DURATION_MS_MAX, doc: 'largest retry delay' },
  metadataMaxAgeMs: { type: 'int', default: 300_000, min: 0, max: DURATION_MS_MAX, doc: 'forced metadata refresh period' },
  maxRequestSize: { type: 'int', default: MIB, min: 1, max: 2 ** 31 - 1, doc: 'largest request in bytes' },
};

const producerSchema: Schema<ProducerOptions> = {
  ...commonSchema,
  acks: { type: 'int', default: -1, choices: ['0', '1', '-1'], doc: '0, 1 or -1 (all in-sync replicas)' },
  batchSize: { type: 'int', default: 16_384, min: 0, max: 2 ** 31 - 1, doc: 'batch bytes bound' },
  lingerMs: { type: 'int', default: 5, min: 0, max: DURATION_MS_MAX, doc: 'wait for more records' },
  bufferMemory: { type: 'int', default: 32 * MIB, min: 1, max: Number.MAX_SAFE_INTEGER, doc: 'unsent bytes bound' },
  maxBlockMs: { type: 'int', default: 60_000, min: 0, max: DURATION_MS_MAX, doc: 'longest wait of an append' },
  deliveryTimeoutMs: { type: 'int', default: 120_000, min: 1, max: DURATION_MS_MAX, doc: 'append-to-outcome bound' },
  retries: { type: 'int', default: 2 ** 31 - 1, min: 0, max: 2 ** 31 - 1, doc: 'retries of a failed batch' },
  compressionType: { type: 'string', default: 'none', choices: ['none', 'gzip', 'snappy', 'lz4', 'zstd'], doc: 'batch codec' },
  enableIdempotence: { type: 'boolean', default: true, doc: 'per-partition exactly-once within a session' },
  maxInFlightRequestsPerConnection: { type: 'int', default: 5, min: 1, max: 1000, doc: 'requests in flight per broker' },
  ackTimeoutMs: { type: 'int', default: 30_000, min: 0, max: DURATION_MS_MAX, doc: 'leader wait for replicas' },
};

const consumerSchema: Schema<ConsumerOptions> = {
  ...commonSchema,
  groupId: { type: 'string', default: '', doc: 'consumer group id; empty for manual assignment' },
  sessionTimeoutMs: { type: 'int', default: 45_000, min: 1, max: DURATION_MS_MAX, doc: 'member liveness bound' },
  groupInstanceId: { type: 'string', default: '', doc: 'static member id (KIP-345); empty for dynamic' },
  // 1000 ms, not Kafka's 3000: members learn of a rebalance from a heartbeat answer, and a
  // cooperative rebalance takes two rounds, so a join settles in about two intervals (2 s instead
  // of 6 s). One small request per member per second costs the coordinator next to nothing.
  heartbeatIntervalMs: { type: 'int', default: 1000, min: 1, max: DURATION_MS_MAX, doc: 'heartbeat period' },
  maxPollIntervalMs: { type: 'int', default: 300_000, min: 1, max: DURATION_MS_MAX, doc: 'longest gap between polls; rebalance timeout' },
  partitionAssignmentStrategy: { type: 'list', default: ['cooperative-sticky'], doc: 'assignors, most preferred first' },
  defaultApiTimeoutMs: { type: 'int', default: 60_000, min: 1, max: DURATION_MS_MAX, doc: 'deadline of commitSync and close' },
  fetchMinBytes: { type: 'int', default: 1, min: 0, max: 2 ** 31 - 1, doc: 'bytes a fetch waits for' },
  fetchMaxBytes: { type: 'int', default: 50 * MIB, min: 0, max: 2 ** 31 - 1, doc: 'fetch response bound' },
  fetchMaxWaitMs: { type: 'int', default: 500, min: 0, max: DURATION_MS_MAX, doc: 'longest fetch wait' },
  maxPartitionFetchBytes: { type: 'int', default: MIB, min: 0, max: 2 ** 31 - 1, doc: 'per-partition fetch bound' },
  autoOffsetReset: { type: 'string', default: 'latest', choices: ['earliest', 'latest', 'none'], doc: 'start when no offset' },
  enableAutoCommit: { type: 'boolean', default: true, doc: 'commit offsets periodically' },
  autoCommitIntervalMs: { type: 'int', default: 5000, min: 0, max: DURATION_MS_MAX, doc: 'auto-commit period' },
  isolationLevel: { type: 'string', default: 'read_uncommitted', choices: ['read_uncommitted', 'read_committed'], doc: 'read bound' },
  maxPollRecords: { type: 'int', default: 500, min: 1, max: 2 ** 31 - 1, doc: 'records per poll' },
};

function checkValue(key: string, definition: OptionDefinition<unknown>, value: unknown): string | undefined {
  switch (definition.type) {
    case 'int':
    case 'double': {
      if (typeof value !== 'number' || Number.isNaN(value)) return `${key} must be a number, got ${JSON.stringify(value)}`;
      if (definition.type === 'int' && !Number.isInteger(value)) return `${key} must be an integer, got ${value}`;
      if (definition.min !== undefined && value < definition.min) return `${key} must be at least ${definition.min}, got ${value}`;
      if (definition.max !== undefined && value > definition.max) return `${key} must be at most ${definition.max}, got ${value}`;
      if (definition.choices && !definition.choices.includes(String(value))) {
        return `${key} must be one of ${definition.choices.join(', ')}, got ${value}`;
      }
      return undefined;
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `${key} must be true or false, got ${JSON.stringify(value)}`;
    case 'string':
      if (typeof value !== 'string') return `${key} must be a string, got ${JSON.stringify(value)}`;
      if (definition.choices && !definition.choices.includes(value)) {
        return `${key} must be one of ${definition.choices.join(', ')}, got ${JSON.stringify(value)}`;
      }
      return undefined;
    case 'list':
      if (!Array.isArray(value) || value.length === 0 || !value.every((item) => typeof item === 'string' && item.length > 0)) {
        return `${key} must be a non-empty array of non-empty strings, got ${JSON.stringify(value)}`;
      }
      return undefined;
  }
}

/** Short names people reach for, mapped to the option that means it. */
const KEY_SYNONYMS: Readonly<Record<string, string>> = {
  idempotence: 'enableIdempotence',
  idempotent: 'enableIdempotence',
  compression: 'compressionType',
  brokers: 'bootstrapServers',
  groupid: 'groupId',
};

/**
 * Closest known key, to suggest on a typo: a Kafka property name (`linger.ms` -> `lingerMs`), a
 * common synonym, a case-insensitive match, or a shared prefix.
 */
function suggestKey(unknownKey: string, knownKeys: readonly string[]): string | undefined {
  const camel = unknownKey.replace(/[._-]+([a-zA-Z0-9])/g, (_, next: string) => next.toUpperCase());
  const lower = camel.toLowerCase();
  const synonym = KEY_SYNONYMS[lower];
  if (synonym && knownKeys.includes(synonym)) return synonym;
  return knownKeys.find((key) => key.toLowerCase() === lower) ?? knownKeys.find((key) => lower.startsWith(key.toLowerCase().slice(0, 5)));
}

function validate<T>(schema: Schema<T>, input: unknown, what: string): T {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError([`${what} options must be an object, got ${JSON.stringify(input)}`]);
  }
  const problems: string[] = [];
  const knownKeys = Object.keys(schema);
  const supplied = input as Record<string, unknown>;
  for (const key of Object.keys(supplied)) {
    if (!Object.hasOwn(schema, key)) {
      const suggestion = suggestKey(key, knownKeys);
      problems.push(`unknown ${what} option ${JSON.stringify(key)}${suggestion ? ` (did you mean ${JSON.stringify(suggestion)}?)` : ''}`);
    }
  }
  const resolved: Record<string, unknown> = {};
  for (const key of knownKeys) {
    const definition = (schema as Record<string, OptionDefinition<unknown>>)[key]!;
    const value = supplied[key] === undefined ? definition.default : supplied[key];
    if (value === undefined) {
      problems.push(`${what} option ${key} is required (${definition.doc})`);
      continue;
    }
    const problem = checkValue(key, definition, value);
    if (problem) problems.push(problem);
    resolved[key] = Array.isArray(value) ? [...(value as unknown[])] : value;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(resolved) as T;
}

/** Resolves producer options: defaults filled in, every problem reported in one ConfigError. */
export function resolveProducerOptions(input: unknown): Readonly<ProducerOptions> {
  const options = validate(producerSchema, input, 'producer');
  const problems: string[] = [];
  // Relationships between limits are checked at start-up (STYLE.md rule 4).
  if (options.retryBackoffMaxMs < options.retryBackoffMs) {
    problems.push(`retryBackoffMaxMs (${options.retryBackoffMaxMs}) must be at least retryBackoffMs (${options.retryBackoffMs})`);
  }
  if (options.deliveryTimeoutMs < options.lingerMs + options.requestTimeoutMs) {
    // Kafka's rule: otherwise a batch could expire before it was ever given a chance to be sent.
    problems.push(
      `deliveryTimeoutMs (${options.deliveryTimeoutMs}) must be at least lingerMs + requestTimeoutMs (${options.lingerMs + options.requestTimeoutMs})`,
    );
  }
  if (options.enableIdempotence) {
    if (options.acks !== -1) problems.push(`enableIdempotence requires acks = -1, got ${options.acks}`);
    if (options.maxInFlightRequestsPerConnection > IDEMPOTENT_IN_FLIGHT_MAX) {
      problems.push(
        `enableIdempotence allows at most ${IDEMPOTENT_IN_FLIGHT_MAX} in-flight requests per connection (the broker dedupes the last ${IDEMPOTENT_IN_FLIGHT_MAX} batches), got ${options.maxInFlightRequestsPerConnection}`,
      );
    }
    if (options.retries === 0) problems.push('enableIdempotence requires retries > 0');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return options;
}

/** The broker keeps the last 5 batches per producer for deduplication (KIP-98), so no more may be in flight. */
export const IDEMPOTENT_IN_FLIGHT_MAX = 5;

export function resolveConsumerOptions(input: unknown): Readonly<ConsumerOptions> {
  const options = validate(consumerSchema, input, 'consumer');
  const problems: string[] = [];
  if (options.heartbeatIntervalMs >= options.sessionTimeoutMs) {
    problems.push(`heartbeatIntervalMs (${options.heartbeatIntervalMs}) must be less than sessionTimeoutMs (${options.sessionTimeoutMs})`);
  }
  if (options.retryBackoffMaxMs < options.retryBackoffMs) {
    problems.push(`retryBackoffMaxMs (${options.retryBackoffMaxMs}) must be at least retryBackoffMs (${options.retryBackoffMs})`);
  }
  if (options.groupInstanceId !== '' && options.groupId === '') {
    problems.push('groupInstanceId needs a groupId: static membership is membership of a group');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return options;
}

export function resolveAdminOptions(input: unknown): Readonly<AdminOptions> {
  const options = validate(commonSchema, input, 'admin');
  if (options.retryBackoffMaxMs < options.retryBackoffMs) {
    throw new ConfigError([`retryBackoffMaxMs (${options.retryBackoffMaxMs}) must be at least retryBackoffMs (${options.retryBackoffMs})`]);
  }
  return options;
}

/** The producer schema as documentation rows (for `raftka` CLI help and generated docs). */
export function producerOptionDocs(): readonly Pick<ConfigKeyDefinition, 'key' | 'doc' | 'default'>[] {
  return Object.entries(producerSchema).map(([key, definition]) => ({
    key,
    doc: (definition as OptionDefinition<unknown>).doc,
    default: (definition as OptionDefinition<unknown>).default,
  }));
}
