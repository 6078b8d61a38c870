import { describe, expect, it } from 'vitest';
import { ConfigError } from '@raftka/protocol';
import { defaultLogConfig, logConfigFromProperties, logConfigSchema, NEVER_MESSAGES } from '../../src/index.js';

describe('log config', () => {
  it('has Kafka defaults', () => {
    expect(defaultLogConfig).toMatchObject({
      segmentBytes: 1024 ** 3,
      segmentMs: 7 * 24 * 3600 * 1000,
      indexIntervalBytes: 4096,
      retentionMs: 7 * 24 * 3600 * 1000,
      retentionBytes: -1,
      cleanupPolicy: { delete: true, compact: false },
      deleteRetentionMs: 24 * 3600 * 1000,
      minCleanableDirtyRatio: 0.5,
      minCompactionLagMs: 0,
      maxMessageBytes: 1048588,
      flushMessages: NEVER_MESSAGES,
      fileDeleteDelayMs: 60000,
      messageTimestampType: 'CreateTime',
    });
  });

  it('resolves topic overrides and reports every bad key', () => {
    const config = logConfigFromProperties({ 'cleanup.policy': 'compact,delete', 'retention.ms': '-1', 'segment.bytes': '1048576' });
    expect(config.cleanupPolicy).toEqual({ compact: true, delete: true });
    expect(config.retentionMs).toBe(-1);
    expect(config.segmentBytes).toBe(1048576);
    let error: unknown;
    try {
      logConfigFromProperties({ 'cleanup.policy': 'shred', 'segment.bytes': '10', 'retention.msx': '1' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toHaveLength(3);
  });

  it('declares every key the log obeys in the shared schema', () => {
    const keys = new Set(logConfigSchema.map((definition) => definition.key));
    for (const key of [
      'segment.bytes', 'segment.ms', 'segment.index.bytes', 'index.interval.bytes', 'retention.ms', 'retention.bytes',
      'cleanup.policy', 'delete.retention.ms', 'min.cleanable.dirty.ratio', 'min.compaction.lag.ms', 'max.message.bytes',
      'flush.messages', 'flush.ms', 'file.delete.delay.ms', 'message.timestamp.type',
    ]) {
      expect(keys.has(key), key).toBe(true);
    }
  });
});
