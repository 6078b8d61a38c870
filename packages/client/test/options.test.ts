import { describe, expect, it } from 'vitest';
import { ConfigError } from '@raftka/protocol';
import { resolveAdminOptions, resolveConsumerOptions, resolveProducerOptions } from '../src/options.js';

function problemsOf(action: () => unknown): readonly string[] {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('producer options', () => {
  it('fills Kafka defaults', () => {
    const options = resolveProducerOptions({ bootstrapServers: ['127.0.0.1:9092'] });
    expect(options).toMatchObject({
      batchSize: 16_384,
      lingerMs: 5,
      bufferMemory: 32 * 1024 * 1024,
      deliveryTimeoutMs: 120_000,
      retryBackoffMs: 100,
      retryBackoffMaxMs: 1000,
      acks: -1,
      enableIdempotence: true,
      maxInFlightRequestsPerConnection: 5,
      compressionType: 'none',
    });
    expect(Object.isFrozen(options)).toBe(true);
  });

  it('rejects unknown keys with a suggestion, and reports every problem at once', () => {
    const problems = problemsOf(() => resolveProducerOptions({ bootstrapServers: ['b:1'], lingerMS: 10, batchSize: -1, acks: 2 }));
    expect(problems).toEqual(
      expect.arrayContaining([
        'unknown producer option "lingerMS" (did you mean "lingerMs"?)',
        'batchSize must be at least 0, got -1',
        'acks must be one of 0, 1, -1, got 2',
      ]),
    );
  });

  it('requires bootstrapServers and checks types', () => {
    expect(problemsOf(() => resolveProducerOptions({}))).toEqual(['producer option bootstrapServers is required (host:port of at least one broker)']);
    expect(problemsOf(() => resolveProducerOptions({ bootstrapServers: 'b:1', enableIdempotence: 'yes' }))).toEqual([
      'bootstrapServers must be a non-empty array of non-empty strings, got "b:1"',
      'enableIdempotence must be true or false, got "yes"',
    ]);
    expect(problemsOf(() => resolveProducerOptions(null))).toEqual(['producer options must be an object, got null']);
  });

  it('checks relationships between limits', () => {
    expect(problemsOf(() => resolveProducerOptions({ bootstrapServers: ['b:1'], acks: 1 }))).toEqual(['enableIdempotence requires acks = -1, got 1']);
    expect(resolveProducerOptions({ bootstrapServers: ['b:1'], acks: 1, enableIdempotence: false }).acks).toBe(1);
    expect(problemsOf(() => resolveProducerOptions({ bootstrapServers: ['b:1'], maxInFlightRequestsPerConnection: 6 }))[0]).toMatch(/at most 5 in-flight/);
    expect(problemsOf(() => resolveProducerOptions({ bootstrapServers: ['b:1'], deliveryTimeoutMs: 1000 }))[0]).toMatch(/lingerMs \+ requestTimeoutMs/);
    expect(problemsOf(() => resolveProducerOptions({ bootstrapServers: ['b:1'], retryBackoffMs: 500, retryBackoffMaxMs: 200 }))[0]).toMatch(/retryBackoffMaxMs/);
  });
});

describe('consumer and admin options', () => {
  it('validates consumer options', () => {
    expect(resolveConsumerOptions({ bootstrapServers: ['b:1'], groupId: 'g' }).isolationLevel).toBe('read_uncommitted');
    expect(problemsOf(() => resolveConsumerOptions({ bootstrapServers: ['b:1'], autoOffsetReset: 'smallest' }))).toEqual([
      'autoOffsetReset must be one of earliest, latest, none, got "smallest"',
    ]);
    expect(problemsOf(() => resolveConsumerOptions({ bootstrapServers: ['b:1'], heartbeatIntervalMs: 50_000 }))[0]).toMatch(/less than sessionTimeoutMs/);
  });

  it('refuses producer keys on an admin client', () => {
    expect(problemsOf(() => resolveAdminOptions({ bootstrapServers: ['b:1'], lingerMs: 1 }))).toEqual(['unknown admin option "lingerMs"']);
  });
});
