import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RaftkaError, type DecodedRecord } from '@raftka/protocol';
import { Producer } from '../../src/producer/producer.js';
import type { ConsumerRecord } from '../../src/consumer/consumer.js';
import {
  ERROR_MESSAGE_BYTES_MAX,
  RETRY_HEADERS,
  RetryRouter,
  retryDelayMs,
  retryPosition,
  retryTopicsFor,
  validateRetryRouting,
} from '../../src/consumer/retry-topics.js';
import { InMemoryCluster } from '../support/in-memory-cluster.js';

let cluster: InMemoryCluster;
let producer: Producer;

function original(overrides: Partial<ConsumerRecord> = {}): ConsumerRecord {
  return {
    topic: 'orders',
    partition: 0,
    offset: 41,
    key: Buffer.from('order-7'),
    value: Buffer.from('{"amount":3}'),
    headers: [{ key: 'trace', value: Buffer.from('t-1') }],
    timestamp: 1_700_000_000_000,
    leaderEpoch: 0,
    ...overrides,
  };
}

/** A stored record as the consumer would hand it over. */
function asConsumed(topic: string, stored: DecodedRecord): ConsumerRecord {
  return { topic, partition: 0, offset: stored.offset, key: stored.key, value: stored.value, headers: stored.headers, timestamp: stored.timestamp, leaderEpoch: 0 };
}

function headerMap(record: Pick<DecodedRecord, 'headers'>): Record<string, string | null> {
  return Object.fromEntries(record.headers.map((header) => [header.key, header.value?.toString('utf8') ?? null]));
}

async function only(topic: string): Promise<DecodedRecord> {
  const records = await cluster.partition(topic, 0).records();
  expect(records).toHaveLength(1);
  return records[0]!;
}

describe('retryTopicsFor', () => {
  it('names one retry topic per attempt for each subscribed topic, none without retry', () => {
    expect(retryTopicsFor(['orders', 'payments'], { retry: { attempts: 2, backoffMs: 10 } })).toEqual([
      'orders-retry-0',
      'orders-retry-1',
      'payments-retry-0',
      'payments-retry-1',
    ]);
    expect(retryTopicsFor(['orders', 'orders-retry-0'], { retry: { attempts: 2, backoffMs: 10 } })).toEqual(['orders-retry-1']);
    expect(retryTopicsFor(['orders'], { deadLetterTopic: 'orders-dlt' })).toEqual([]);
  });

  it('refuses policies that make no sense', () => {
    expect(() => validateRetryRouting({ retry: { attempts: 0, backoffMs: 10 } })).toThrow(/attempts/);
    expect(() => validateRetryRouting({ retry: { attempts: 1, backoffMs: -1 } })).toThrow(/backoffMs/);
    expect(() => validateRetryRouting({ retry: { attempts: 1, backoffMs: 1, multiplier: 0.5 } })).toThrow(/multiplier/);
    expect(() => validateRetryRouting({ deadLetterTopic: '' })).toThrow(RaftkaError);
  });
});

describe('retryDelayMs', () => {
  it('grows by the multiplier and stops at maxBackoffMs', () => {
    const policy = { attempts: 5, backoffMs: 100, multiplier: 3, maxBackoffMs: 1000 };
    expect([0, 1, 2, 3, 4].map((index) => retryDelayMs(policy, index))).toEqual([100, 300, 900, 1000, 1000]);
    expect([0, 1, 2].map((index) => retryDelayMs({ attempts: 3, backoffMs: 50 }, index))).toEqual([50, 50, 50]);
  });
});

describe('RetryRouter', () => {
  beforeEach(async () => {
    cluster = await InMemoryCluster.start({ brokerCount: 1 });
    for (const topic of ['orders', 'orders-retry-0', 'orders-retry-1', 'orders-dlt']) cluster.createTopic(topic, 1);
    producer = new Producer({ bootstrapServers: cluster.bootstrapServers, lingerMs: 0 });
  });

  afterEach(async () => {
    await producer.close().catch(() => undefined);
    await cluster.stop();
  });

  it('moves a failed record through every retry topic, then to the dead-letter topic, keeping key, value, headers and timestamp', async () => {
    let nowMs = 5_000;
    const router = new RetryRouter({
      producer,
      routing: { retry: { attempts: 2, backoffMs: 100, multiplier: 2 }, deadLetterTopic: 'orders-dlt' },
      nowMs: () => nowMs,
    });
    const first = original();
    expect(router.delayMs(first, nowMs)).toBe(0);

    await router.route(first, new TypeError('amount must be positive'));
    const retry0 = await only('orders-retry-0');
    expect(retry0.key!.toString()).toBe('order-7');
    expect(retry0.value!.toString()).toBe('{"amount":3}');
    expect(retry0.timestamp).toBe(1_700_000_000_000);
    expect(headerMap(retry0)).toEqual({
      trace: 't-1',
      [RETRY_HEADERS.attempt]: '1',
      [RETRY_HEADERS.dueMs]: '5100',
      [RETRY_HEADERS.originalTopic]: 'orders',
      [RETRY_HEADERS.originalPartition]: '0',
      [RETRY_HEADERS.originalOffset]: '41',
      [RETRY_HEADERS.errorName]: 'TypeError',
      [RETRY_HEADERS.errorMessage]: 'amount must be positive',
    });

    // Not due before its backoff has passed.
    const consumed0 = asConsumed('orders-retry-0', retry0);
    expect(router.delayMs(consumed0, 5_040)).toBe(60);
    expect(router.delayMs(consumed0, 5_100)).toBe(0);

    nowMs = 6_000;
    await router.route(consumed0, new RaftkaError('NOT_ENOUGH_REPLICAS', 'downstream is down'));
    const retry1 = await only('orders-retry-1');
    expect(headerMap(retry1)).toMatchObject({
      trace: 't-1',
      [RETRY_HEADERS.attempt]: '2',
      [RETRY_HEADERS.dueMs]: '6200',
      [RETRY_HEADERS.originalTopic]: 'orders',
      [RETRY_HEADERS.originalOffset]: '41',
      [RETRY_HEADERS.errorName]: 'RaftkaError',
      [RETRY_HEADERS.errorCode]: 'NOT_ENOUGH_REPLICAS',
    });
    // Routing headers are replaced, never repeated.
    expect(retry1.headers.filter((header) => header.key === RETRY_HEADERS.attempt)).toHaveLength(1);

    nowMs = 7_000;
    await router.route(asConsumed('orders-retry-1', retry1), new Error('still failing'));
    const dead = await only('orders-dlt');
    expect(dead.key!.toString()).toBe('order-7');
    expect(dead.timestamp).toBe(1_700_000_000_000);
    const deadHeaders = headerMap(dead);
    expect(deadHeaders).toMatchObject({
      trace: 't-1',
      [RETRY_HEADERS.attempt]: '2',
      [RETRY_HEADERS.originalTopic]: 'orders',
      [RETRY_HEADERS.originalPartition]: '0',
      [RETRY_HEADERS.originalOffset]: '41',
      [RETRY_HEADERS.errorMessage]: 'still failing',
    });
    expect(deadHeaders[RETRY_HEADERS.dueMs]).toBeUndefined();
    // A dead-letter record is never "not yet due".
    expect(router.delayMs(asConsumed('orders-dlt', dead), 0)).toBe(0);
  });

  it('rethrows the handler error when no attempt and no dead-letter topic is left', async () => {
    const router = new RetryRouter({ producer, routing: { retry: { attempts: 1, backoffMs: 0 } } });
    await router.route(original(), new Error('first'));
    const retry0 = await only('orders-retry-0');
    const failure = new Error('second');
    await expect(router.route(asConsumed('orders-retry-0', retry0), failure)).rejects.toBe(failure);
    expect(await cluster.partition('orders-dlt', 0).records()).toHaveLength(0);
  });

  it('sends straight to the dead-letter topic without a retry policy, and cuts long error messages', async () => {
    const router = new RetryRouter({ producer, routing: { deadLetterTopic: 'orders-dlt' } });
    await router.route(original({ key: null }), new Error('x'.repeat(5000)));
    const dead = await only('orders-dlt');
    expect(dead.key).toBeNull();
    expect(headerMap(dead)[RETRY_HEADERS.attempt]).toBe('0');
    expect(Buffer.byteLength(headerMap(dead)[RETRY_HEADERS.errorMessage]!)).toBe(ERROR_MESSAGE_BYTES_MAX);
  });

  it('treats routing headers on a non-retry topic as a fresh record', () => {
    const copied = original({
      headers: [
        { key: RETRY_HEADERS.originalTopic, value: Buffer.from('orders') },
        { key: RETRY_HEADERS.attempt, value: Buffer.from('1') },
        { key: RETRY_HEADERS.dueMs, value: Buffer.from('99999999') },
      ],
    });
    expect(retryPosition(copied)).toMatchObject({ originalTopic: 'orders', attempt: 0, originalOffset: 41 });
  });

  it('refuses a producer that does not wait for every in-sync replica', async () => {
    const leaderOnly = new Producer({ bootstrapServers: cluster.bootstrapServers, acks: 1, enableIdempotence: false });
    expect(() => new RetryRouter({ producer: leaderOnly, routing: { deadLetterTopic: 'orders-dlt' } })).toThrow(/acks/);
    await leaderOnly.close();
  });
});
