// Retry topics and the dead-letter topic: what a consumer does with a record its handler could
// not process, without blocking the records behind it.
//
// Blocking retries (retry the same record in place) stall the whole partition for as long as the
// record keeps failing. Retry topics (the non-blocking pattern of Uber's "reliable reprocessing"
// and Spring Kafka's @RetryableTopic) move the failed record aside instead: it is produced to
// `${topic}-retry-0`, and the consumer, which subscribes to the retry topics as well, handles it
// again once its backoff has passed. A record failing in `${topic}-retry-i` moves on to
// `${topic}-retry-(i+1)`, and after the last attempt to the dead-letter topic, where it waits for
// an operator. The original partition keeps flowing the whole time.
//
// Each routed record keeps the original key, value, headers and timestamp, and carries headers
// saying why and when:
//   raftka.retry.attempt       failed handlings so far ("1" in retry-0, "2" in retry-1, ...)
//   raftka.retry.due-ms        when the record may be handled again (epoch ms; retry topics only)
//   raftka.original.topic      where the record was first consumed ...
//   raftka.original.partition  ... (kept unchanged across retries, so the dead-letter record
//   raftka.original.offset     ... points at the original)
//   raftka.error.name          the last failure's error name (Error.name, or RaftkaError's code
//   raftka.error.code          in raftka.error.code)
//   raftka.error.message       its message, cut to ERROR_MESSAGE_BYTES_MAX
// A record is routed by these headers, not by remembering anything: whichever consumer of the
// group handles it next knows where it goes.
//
// Routing rules:
//   - with `retry`: attempt i (0-based) goes to `${topic}-retry-${i}` with delay
//     min(backoffMs * multiplier^i, maxBackoffMs); after `attempts` retries, the dead-letter topic;
//   - the dead-letter topic is only what `deadLetterTopic` names: there is no implicit default,
//     because a topic the application never created would fail (or be auto-created with
//     defaults nobody chose). Without one, a record out of attempts makes `route` reject with
//     the handler's own error, so the consumer stops rather than losing the record;
//   - with only `deadLetterTopic`, a failed record goes straight to it.
// Retry and dead-letter topics must exist (create them with the topic's partition count); the
// routed record is partitioned by its key like any other record.
//
// Delivery: `route` resolves once the record is acknowledged by every in-sync replica (the
// producer must use acks=all), and only then may the consumer commit past the original, so a
// crash in between re-delivers the original rather than losing it (at-least-once).

import { RaftkaError, type RecordHeader, type RecordHeaderInput } from '@raftka/protocol';
import type { Producer } from '../producer/producer.js';
import type { ConsumerRecord } from './consumer.js';

export interface RetryPolicy {
  /** Retry topics, one per attempt (`${topic}-retry-0` .. `${topic}-retry-(attempts-1)`). */
  attempts: number;
  /** Delay before the first retry. */
  backoffMs: number;
  /** Growth of the delay per attempt (default 1: a fixed delay). */
  multiplier?: number;
  /** Upper bound of any delay (default: none). */
  maxBackoffMs?: number;
}

export interface RetryRouting {
  retry?: RetryPolicy;
  /** Where records go after the last attempt (or at once without `retry`); no default. */
  deadLetterTopic?: string;
}

/** Header names on routed records. */
export const RETRY_HEADERS = {
  attempt: 'raftka.retry.attempt',
  dueMs: 'raftka.retry.due-ms',
  originalTopic: 'raftka.original.topic',
  originalPartition: 'raftka.original.partition',
  originalOffset: 'raftka.original.offset',
  errorName: 'raftka.error.name',
  errorCode: 'raftka.error.code',
  errorMessage: 'raftka.error.message',
} as const;

/** Most retry topics one policy may ask for: each is a topic to create and a subscription to hold. */
export const RETRY_ATTEMPTS_MAX = 100;
/** Longest error message kept in a header (UTF-8 bytes); the rest is cut off. */
export const ERROR_MESSAGE_BYTES_MAX = 1024;

const ROUTING_HEADER_KEYS: ReadonlySet<string> = new Set(Object.values(RETRY_HEADERS));

/** The retry topic of `topic` for attempt `index` (0-based). */
export function retryTopicName(topic: string, index: number): string {
  return `${topic}-retry-${index}`;
}

/** Checks a routing once, where it enters (run() options); throws INVALID_CONFIG. */
export function validateRetryRouting(routing: RetryRouting): void {
  const problem = (text: string): never => {
    throw new RaftkaError('INVALID_CONFIG', `retry routing: ${text}`, { retriable: false });
  };
  const { retry, deadLetterTopic } = routing;
  if (deadLetterTopic !== undefined && (typeof deadLetterTopic !== 'string' || deadLetterTopic === '')) problem('deadLetterTopic must be a topic name');
  if (retry === undefined) return;
  if (!Number.isSafeInteger(retry.attempts) || retry.attempts < 1 || retry.attempts > RETRY_ATTEMPTS_MAX) {
    problem(`retry.attempts must be an integer from 1 to ${RETRY_ATTEMPTS_MAX}, got ${retry.attempts}`);
  }
  if (!Number.isFinite(retry.backoffMs) || retry.backoffMs < 0) problem(`retry.backoffMs must be >= 0, got ${retry.backoffMs}`);
  if (retry.multiplier !== undefined && !(Number.isFinite(retry.multiplier) && retry.multiplier >= 1)) {
    problem(`retry.multiplier must be >= 1, got ${retry.multiplier}`);
  }
  if (retry.maxBackoffMs !== undefined && !(retry.maxBackoffMs >= 0)) problem(`retry.maxBackoffMs must be >= 0, got ${retry.maxBackoffMs}`);
}

/** Delay before attempt `index` (0-based): min(backoffMs * multiplier^index, maxBackoffMs). */
export function retryDelayMs(policy: RetryPolicy, index: number): number {
  const delayMs = policy.backoffMs * (policy.multiplier ?? 1) ** index;
  return Math.round(Math.min(delayMs, policy.maxBackoffMs ?? Number.POSITIVE_INFINITY));
}

/** The topics a consumer with this routing must also subscribe to (orders -> orders-retry-0..N-1). */
export function retryTopicsFor(topics: readonly string[], routing: RetryRouting): string[] {
  validateRetryRouting(routing);
  const attempts = routing.retry?.attempts ?? 0;
  const subscribed = new Set(topics);
  // A listed topic that is itself a retry topic of another listed one gets no retry topics of
  // its own: its records move along the original topic's chain.
  const retryNames = new Set(topics.flatMap((topic) => Array.from({ length: attempts }, (_, index) => retryTopicName(topic, index))));
  const extra: string[] = [];
  for (const topic of topics.filter((candidate) => !retryNames.has(candidate))) {
    for (let index = 0; index < attempts; index += 1) {
      const name = retryTopicName(topic, index);
      if (!subscribed.has(name)) {
        subscribed.add(name);
        extra.push(name);
      }
    }
  }
  return extra;
}

/** Where a record stands in the retry chain, read from its headers. */
interface RetryPosition {
  /** The topic the record was first consumed from. */
  originalTopic: string;
  originalPartition: number;
  originalOffset: number;
  /** Failed handlings before this one (0 for a record from its original topic). */
  attempt: number;
}

function headerText(headers: readonly RecordHeader[], key: string): string | undefined {
  // The last value wins, as Kafka's Headers.lastHeader.
  for (let index = headers.length - 1; index >= 0; index -= 1) {
    const header = headers[index]!;
    if (header.key === key) return header.value === null ? undefined : header.value.toString('utf8');
  }
  return undefined;
}

function headerInteger(headers: readonly RecordHeader[], key: string): number | undefined {
  const text = headerText(headers, key);
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * The record's place in the chain. A record counts as a retry only when it sits in the retry
 * topic its own headers name (`${original}-retry-${attempt-1}`): headers copied onto some other
 * topic by an application do not make a record look like a retry.
 */
export function retryPosition(record: Pick<ConsumerRecord, 'topic' | 'partition' | 'offset' | 'headers'>): RetryPosition {
  const originalTopic = headerText(record.headers, RETRY_HEADERS.originalTopic);
  const attempt = headerInteger(record.headers, RETRY_HEADERS.attempt);
  if (originalTopic !== undefined && attempt !== undefined && attempt >= 1 && record.topic === retryTopicName(originalTopic, attempt - 1)) {
    return {
      originalTopic,
      originalPartition: headerInteger(record.headers, RETRY_HEADERS.originalPartition) ?? -1,
      originalOffset: headerInteger(record.headers, RETRY_HEADERS.originalOffset) ?? -1,
      attempt,
    };
  }
  return { originalTopic: record.topic, originalPartition: record.partition, originalOffset: record.offset, attempt: 0 };
}

function truncateUtf8(text: string, bytesMax: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= bytesMax) return text;
  // Cutting a UTF-8 sequence leaves a replacement character at the end, which is fine for a log line.
  return bytes.subarray(0, bytesMax).toString('utf8');
}

function describeError(error: unknown): { name: string; code: string | undefined; message: string } {
  if (error instanceof RaftkaError) return { name: error.name, code: error.code, message: error.message };
  if (error instanceof Error) return { name: error.name, code: undefined, message: error.message };
  return { name: typeof error, code: undefined, message: String(error) };
}

export class RetryRouter {
  readonly routing: Readonly<RetryRouting>;
  readonly #producer: Producer;
  readonly #nowMs: () => number;

  constructor(options: { producer: Producer; routing: RetryRouting; nowMs?: () => number }) {
    validateRetryRouting(options.routing);
    if (options.producer.options.acks !== -1) {
      // A record acknowledged by the leader alone can be lost in a leader change after the
      // original's offset is committed: the failed record would vanish.
      throw new RaftkaError('INVALID_CONFIG', `retry routing needs a producer with acks = -1 (all), got ${options.producer.options.acks}`, { retriable: false });
    }
    this.routing = options.routing;
    this.#producer = options.producer;
    this.#nowMs = options.nowMs ?? (() => Date.now());
  }

  /** How long to wait before a record may be handled: > 0 only for a retry-topic record not yet due. */
  delayMs(record: ConsumerRecord, nowMs: number): number {
    if (retryPosition(record).attempt === 0) return 0;
    const dueMs = headerInteger(record.headers, RETRY_HEADERS.dueMs);
    return dueMs === undefined ? 0 : Math.max(0, dueMs - nowMs);
  }

  /** The topic a record that failed now goes to, with its attempt number and due time; undefined when none is left. */
  destination(record: ConsumerRecord, nowMs: number): { topic: string; attempt: number; dueMs: number | undefined } | undefined {
    const position = retryPosition(record);
    const policy = this.routing.retry;
    if (policy !== undefined && position.attempt < policy.attempts) {
      return { topic: retryTopicName(position.originalTopic, position.attempt), attempt: position.attempt + 1, dueMs: nowMs + retryDelayMs(policy, position.attempt) };
    }
    if (this.routing.deadLetterTopic !== undefined) return { topic: this.routing.deadLetterTopic, attempt: position.attempt, dueMs: undefined };
    return undefined;
  }

  /**
   * eachMessage threw: produce the record (acks=all) to the next retry topic, or the dead-letter
   * topic after the last attempt, with headers saying why; resolves once acknowledged. Rejects
   * with `error` itself when the record has nowhere left to go (no dead-letter topic).
   */
  async route(record: ConsumerRecord, error: unknown): Promise<void> {
    const nowMs = this.#nowMs();
    const destination = this.destination(record, nowMs);
    if (destination === undefined) throw error;
    const position = retryPosition(record);
    const described = describeError(error);
    const headers: RecordHeaderInput[] = record.headers.filter((header) => !ROUTING_HEADER_KEYS.has(header.key)).map((header) => ({ key: header.key, value: header.value }));
    headers.push(
      { key: RETRY_HEADERS.attempt, value: String(destination.attempt) },
      ...(destination.dueMs === undefined ? [] : [{ key: RETRY_HEADERS.dueMs, value: String(destination.dueMs) }]),
      { key: RETRY_HEADERS.originalTopic, value: position.originalTopic },
      { key: RETRY_HEADERS.originalPartition, value: String(position.originalPartition) },
      { key: RETRY_HEADERS.originalOffset, value: String(position.originalOffset) },
      { key: RETRY_HEADERS.errorName, value: described.name },
      ...(described.code === undefined ? [] : [{ key: RETRY_HEADERS.errorCode, value: described.code }]),
      { key: RETRY_HEADERS.errorMessage, value: truncateUtf8(described.message, ERROR_MESSAGE_BYTES_MAX) },
    );
    await this.#producer.send({
      topic: destination.topic,
      messages: [{ key: record.key, value: record.value, headers, timestamp: record.timestamp }],
    });
  }
}
