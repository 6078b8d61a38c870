import { describe, it, expect } from 'vitest';
import { BrokerHeartbeatManager } from '../../src/controller/broker-heartbeat-manager.js';
import { TestCluster } from './cluster-fixture.js';

describe('BrokerHeartbeatManager', () => {
  it('fences an unfenced broker once it misses heartbeats for the session timeout, not before', () => {
    const cluster = new TestCluster({ config: { brokerSessionTimeoutMs: 3000 } });
    cluster.startBrokers([1, 2, 3]);
    cluster.createTopic('t', 3, 3);
    const manager = new BrokerHeartbeatManager({ sessionTimeoutMs: 3000 });
    let nowMs = 1_000_000;
    for (const brokerId of [1, 2, 3]) manager.touch(brokerId, nowMs);
    // Brokers 1 and 3 keep heartbeating every 500 ms; broker 2 goes silent.
    for (let step = 0; step < 5; step++) {
      nowMs += 500;
      manager.touch(1, nowMs);
      manager.touch(3, nowMs);
      expect(manager.brokersToFence(cluster.image, nowMs)).toEqual([]);
    }
    nowMs += 499;
    expect(manager.brokersToFence(cluster.image, nowMs)).toEqual([]);
    nowMs += 1;
    manager.touch(1, nowMs);
    manager.touch(3, nowMs);
    expect(manager.brokersToFence(cluster.image, nowMs)).toEqual([2]);
    cluster.fence(2);
    expect(manager.brokersToFence(cluster.image, nowMs)).toEqual([]);
    expect(cluster.image.topicByName('t')!.partitions.every((partition) => partition.leader !== 2 && !partition.isr.includes(2))).toBe(true);
  });

  it('gives every broker a fresh session when a controller becomes active (no mass fencing after failover)', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2]);
    const manager = new BrokerHeartbeatManager({ sessionTimeoutMs: 3000 });
    expect(manager.brokersToFence(cluster.image, 50_000)).toEqual([]);
    expect(manager.brokersToFence(cluster.image, 52_999)).toEqual([]);
    manager.touch(1, 52_999);
    expect(manager.brokersToFence(cluster.image, 53_000)).toEqual([2]);
  });

  it('ends the session of a broker whose connection was lost after the grace, unless it is heard from again', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    const manager = new BrokerHeartbeatManager({ sessionTimeoutMs: 3000 });
    for (const brokerId of [1, 2, 3]) manager.touch(brokerId, 1000);
    // Broker 2's process dies: its connection closes at 1100.
    manager.connectionLost(2, 1100, 200);
    // Broker 3's connection breaks too, but it reconnects (a new session counts as contact).
    manager.connectionLost(3, 1100, 200);
    expect(manager.brokersToFence(cluster.image, 1299)).toEqual([]);
    manager.touch(3, 1250);
    expect(manager.hasExpired(2, 1299)).toBe(false);
    expect(manager.hasExpired(2, 1300)).toBe(true);
    expect(manager.brokersToFence(cluster.image, 1300)).toEqual([2]);
    // Nothing else changed: broker 3 lives on to its normal session timeout.
    expect(manager.brokersToFence(cluster.image, 4249)).toEqual([1, 2]);
    expect(manager.brokersToFence(cluster.image, 4250)).toEqual([1, 2, 3]);
    // A connection lost of a broker never heard from does not start a session.
    const fresh = new BrokerHeartbeatManager({ sessionTimeoutMs: 3000 });
    fresh.connectionLost(1, 0, 200);
    expect(fresh.hasExpired(1, 10_000)).toBe(false);
  });

  it('orders expired brokers stalest first and forgets unregistered ones', () => {
    const cluster = new TestCluster();
    cluster.startBrokers([1, 2, 3]);
    const manager = new BrokerHeartbeatManager({ sessionTimeoutMs: 100 });
    manager.touch(3, 0);
    manager.touch(1, 10);
    manager.touch(2, 20);
    expect(manager.brokersToFence(cluster.image, 1000)).toEqual([3, 1, 2]);
    cluster.commit(cluster.logic.unregisterBroker(cluster.image, 3));
    expect(manager.brokersToFence(cluster.image, 1000)).toEqual([1, 2]);
    expect(manager.lastContact(3)).toBeUndefined();
  });
});
