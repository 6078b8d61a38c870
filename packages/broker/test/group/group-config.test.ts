// The group coordinator's server.properties keys reach the runtime with Kafka's defaults, and
// inconsistent values stop the broker with one line naming the keys.
import { describe, expect, it } from 'vitest';
import { ConfigError, collectSources, resolveConfig } from '@raftka/protocol';
import { GROUP_RUNTIME_CONFIG_DEFAULT, brokerConfigFromValues, brokerConfigSchema } from '../../src/index.js';

function load(propertiesText: string) {
  return brokerConfigFromValues(resolveConfig(brokerConfigSchema, collectSources({ schema: brokerConfigSchema, propertiesText })));
}

describe('group config keys', () => {
  it('defaults to Kafka values', () => {
    expect(load('').groups).toEqual({
      offsetsTopicNumPartitions: 50,
      offsetsTopicReplicationFactor: 3,
      offsetsTopicSegmentBytes: 104_857_600,
      offsetsRetentionMs: 604_800_000,
      offsetsRetentionCheckIntervalMs: 600_000,
      offsetsCommitTimeoutMs: 5_000,
      offsetMetadataMaxBytes: 4_096,
      groupMinSessionTimeoutMs: 6_000,
      groupMaxSessionTimeoutMs: 1_800_000,
      groupInitialRebalanceDelayMs: 3_000,
      groupMaxSize: 2_147_483_647,
    });
    expect(load('').groups).toEqual(GROUP_RUNTIME_CONFIG_DEFAULT);
  });

  it('takes the configured values and refuses a minimum session timeout above the maximum', () => {
    const groups = load('group.initial.rebalance.delay.ms=0\noffsets.commit.timeout.ms=2000\ngroup.max.size=10\n').groups;
    expect(groups).toMatchObject({ groupInitialRebalanceDelayMs: 0, offsetsCommitTimeoutMs: 2_000, groupMaxSize: 10 });
    expect(() => load('group.min.session.timeout.ms=5000\ngroup.max.session.timeout.ms=4000\n')).toThrow(ConfigError);
    expect(() => load('group.max.size=0\n')).toThrow(/group.max.size/);
  });
});
