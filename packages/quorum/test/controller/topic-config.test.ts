import { describe, it, expect } from 'vitest';
import { ConfigError, TOPIC_CONFIG_NEVER, resolveTopicConfig, validateTopicConfigs } from '@raftka/protocol';

describe('topic config schema (@raftka/protocol)', () => {
  it("resolves Kafka's defaults for every topic-level key the log uses", () => {
    const config = resolveTopicConfig();
    expect(config.get('cleanup.policy')).toEqual(['delete']);
    expect(config.get('retention.ms')).toBe(604800000);
    expect(config.get('retention.bytes')).toBe(-1);
    expect(config.get('segment.bytes')).toBe(1073741824);
    expect(config.get('min.insync.replicas')).toBe(1);
    expect(config.get('max.message.bytes')).toBe(1048588);
    expect(config.get('unclean.leader.election.enable')).toBe(false);
    expect(config.get('min.cleanable.dirty.ratio')).toBe(0.5);
    expect(config.get('flush.messages')).toBe(TOPIC_CONFIG_NEVER);
    expect(config.get('message.timestamp.type')).toBe('CreateTime');
    expect(config.get('compression.type')).toBe('producer');
    expect(config.get('file.delete.delay.ms')).toBe(60000);
  });

  it('validates overrides, returning exactly the keys given, and names every bad key', () => {
    expect(validateTopicConfigs({ 'cleanup.policy': 'compact,delete', 'retention.ms': '-1' })).toEqual(
      new Map<string, unknown>([
        ['cleanup.policy', ['compact', 'delete']],
        ['retention.ms', -1],
      ]),
    );
    try {
      validateTopicConfigs({ 'retention.ms': '-2', 'cleanup.policy': 'shred', 'segmnt.bytes': '1' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems.join('\n');
      expect(problems).toMatch(/retention\.ms/);
      expect(problems).toMatch(/shred/);
      expect(problems).toMatch(/did you mean 'segment\.bytes'/);
    }
  });
});
