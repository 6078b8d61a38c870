// How fast the controller notices a dead broker, on real processes (1 controller, 3 brokers).
// A SIGKILLed broker's sockets are closed by the kernel, so the controller sees its BrokerSession
// call end and fences it within a short grace; a SIGSTOPped broker keeps its connection and is
// fenced only when its session times out. The session timeout here is long (10 s) so that each
// path is told apart by when the leadership moves.

import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { Admin } from '@raftka/client';
import { ProcessCluster, waitFor } from '../support/process-cluster.js';

const SESSION_TIMEOUT_MS = 10_000;

let cluster: ProcessCluster | undefined;
let admin: Admin | undefined;

afterEach(async () => {
  await cluster?.destroy();
  await admin?.close().catch(() => undefined);
  cluster = undefined;
  admin = undefined;
});

async function leaderOf(topic: string): Promise<{ leader: number; isr: readonly number[] }> {
  const [description] = await admin!.describeTopics([topic]);
  return description!.partitions[0]!;
}

describe('broker liveness on real processes', () => {
  it('fences a SIGKILLed broker on its closed connection, long before the session timeout; a SIGSTOPped one only after it', async () => {
    cluster = await ProcessCluster.create({
      voters: 1,
      brokers: 3,
      properties: { 'broker.session.timeout.ms': String(SESSION_TIMEOUT_MS), 'broker.heartbeat.interval.ms': '500' },
    });
    const current = cluster;
    onTestFailed(() => current.printLogs());
    current.startAll();
    admin = new Admin({ bootstrapServers: current.bootstrapServers, requestTimeoutMs: 2_000 });
    await waitFor('3 live brokers', async () => (await admin!.describeCluster()).brokers.length === 3, 30_000);
    await admin.createTopics([{ topic: 'liveness', numPartitions: 1, replicationFactor: 3 }]);
    await waitFor('a leader with a full ISR', async () => {
      const state = await leaderOf('liveness').catch(() => undefined);
      return state !== undefined && state.leader >= 0 && state.isr.length === 3;
    });

    const killed = (await leaderOf('liveness')).leader;
    const killedAtMs = Date.now();
    await current.broker(killed).stop('SIGKILL');
    await waitFor('the leadership to leave the killed broker', async () => {
      const state = await leaderOf('liveness').catch(() => undefined);
      return state !== undefined && state.leader >= 0 && state.leader !== killed;
    }, SESSION_TIMEOUT_MS);
    // Fenced on the lost connection: far below the 10 s session timeout (the bound leaves room
    // for a loaded machine; the figure itself is measured by the chaos benchmark).
    expect(Date.now() - killedAtMs).toBeLessThan(SESSION_TIMEOUT_MS / 2);

    const stopped = (await leaderOf('liveness')).leader;
    const stoppedAtMs = Date.now();
    current.broker(stopped).pause();
    try {
      await waitFor('the leadership to leave the paused broker', async () => {
        const state = await leaderOf('liveness').catch(() => undefined);
        return state !== undefined && state.leader !== stopped;
      }, SESSION_TIMEOUT_MS + 15_000);
      // A hung process keeps its connection: only the session timeout fences it.
      expect(Date.now() - stoppedAtMs).toBeGreaterThanOrEqual(SESSION_TIMEOUT_MS - 1_000);
    } finally {
      current.broker(stopped).resume();
    }
  }, 90_000);
});
