// The layout rules of `raftka cluster up`: ids, roles, ports, properties, replication defaults.

import { describe, expect, it } from 'vitest';
import { consecutivePorts, planCluster, propertiesText } from '../../src/cluster/cluster-layout.js';
import { processLiveness } from '../../src/cluster/process-liveness.js';

describe('planCluster', () => {
  it('gives controllers ids 1..C and brokers C+1.., voters of the controllers, one directory each', () => {
    const plans = planCluster({ controllers: 3, brokers: 2, directory: '/c', ports: [9001, 9002, 9003, 9004, 9005] });
    expect(plans.map((plan) => [plan.nodeId, plan.role, plan.address])).toEqual([
      [1, 'controller', '127.0.0.1:9001'],
      [2, 'controller', '127.0.0.1:9002'],
      [3, 'controller', '127.0.0.1:9003'],
      [4, 'broker', '127.0.0.1:9004'],
      [5, 'broker', '127.0.0.1:9005'],
    ]);
    for (const plan of plans) {
      expect(plan.properties['controller.quorum.voters']).toBe('1@127.0.0.1:9001,2@127.0.0.1:9002,3@127.0.0.1:9003');
      expect(plan.directory).toBe(`/c/node-${plan.nodeId}`);
      expect(plan.properties['log.dirs']).toBe(`/c/node-${plan.nodeId}/data`);
    }
    expect(plans[0]!.properties.listeners).toBe('CONTROLLER://127.0.0.1:9001');
    expect(plans[3]!.properties.listeners).toBe('PLAINTEXT://127.0.0.1:9004');
    expect(plans[3]!.properties['process.roles']).toBe('broker');
  });

  it('replicates internal and default topics min(3, brokers) times; extra properties win', () => {
    const two = planCluster({ controllers: 1, brokers: 2, directory: '/c', ports: [1, 2, 3] });
    expect(two[0]!.properties['offsets.topic.replication.factor']).toBe('2');
    expect(two[0]!.properties['default.replication.factor']).toBe('2');
    const five = planCluster({ controllers: 1, brokers: 5, directory: '/c', ports: [1, 2, 3, 4, 5, 6], properties: { 'default.replication.factor': '1', 'log.level': 'warn' } });
    expect(five[2]!.properties['offsets.topic.replication.factor']).toBe('3');
    expect(five[2]!.properties['default.replication.factor']).toBe('1');
    expect(propertiesText(five[2]!)).toContain('\nlog.level=warn\n');
  });

  it('refuses impossible layouts', () => {
    expect(() => planCluster({ controllers: 0, brokers: 1, directory: '/c', ports: [1] })).toThrow(/--controllers 0/);
    expect(() => planCluster({ controllers: 1, brokers: 1, directory: '/c', ports: [1] })).toThrow(/expected 2 ports/);
    expect(() => planCluster({ controllers: 1, brokers: 1, directory: '/c', ports: [7, 7] })).toThrow(/must differ/);
    expect(consecutivePorts(19092, 3)).toEqual([19092, 19093, 19094]);
    expect(() => consecutivePorts(65_534, 3)).toThrow(/65535/);
  });
});

describe('processLiveness', () => {
  it('calls a pid dead when it is unset or runs something other than the node', () => {
    expect(processLiveness(undefined, '/c/node-1/server.properties')).toBe('dead');
    // This test process runs, but not with that config file.
    const expected = process.platform === 'linux' ? 'dead' : 'alive';
    expect(processLiveness(process.pid, '/c/node-1/server.properties')).toBe(expected);
  });
});
