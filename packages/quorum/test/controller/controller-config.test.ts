import { describe, it, expect } from 'vitest';
import { ConfigError, collectSources } from '@raftka/protocol';
import {
  BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT,
  BROKER_SESSION_TIMEOUT_MS_DEFAULT,
  controllerConfigSchema,
  effectiveControllerConfig,
  parseControllerConfig,
} from '../../src/controller/controller-config.js';

describe('controller config', () => {
  it('has Kafka key names with Raftka defaults', () => {
    const config = parseControllerConfig();
    expect(config).toMatchObject({
      numPartitions: 1,
      defaultReplicationFactor: 1,
      brokerSessionTimeoutMs: BROKER_SESSION_TIMEOUT_MS_DEFAULT,
      brokerHeartbeatIntervalMs: BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT,
      uncleanLeaderElectionEnable: false,
      autoLeaderRebalanceEnable: true,
      leaderImbalanceCheckIntervalSeconds: 300,
      offsetsTopicNumPartitions: 50,
    });
  });

  it('reads properties and RAFTKA_CFG_ overrides and refuses a heartbeat interval too long for the session', () => {
    const sources = collectSources({
      schema: controllerConfigSchema,
      propertiesText: 'num.partitions=3\nbroker.session.timeout.ms=1200',
      env: { RAFTKA_CFG_BROKER_HEARTBEAT_INTERVAL_MS: '400' },
    });
    expect(parseControllerConfig(sources)).toMatchObject({ numPartitions: 3, brokerSessionTimeoutMs: 1200, brokerHeartbeatIntervalMs: 400 });
    const tooLong = collectSources({ schema: controllerConfigSchema, propertiesText: 'broker.session.timeout.ms=1000\nbroker.heartbeat.interval.ms=500' });
    expect(() => parseControllerConfig(tooLong)).toThrow(ConfigError);
  });

  it('applies dynamic cluster defaults over the static config', () => {
    const config = parseControllerConfig();
    const effective = effectiveControllerConfig(config, new Map([['unclean.leader.election.enable', 'true'], ['default.replication.factor', '3']]));
    expect(effective).toMatchObject({ uncleanLeaderElectionEnable: true, defaultReplicationFactor: 3 });
    expect(config.uncleanLeaderElectionEnable).toBe(false);
  });
});
