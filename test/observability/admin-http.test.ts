// The admin HTTP listener of real `raftka server` processes: liveness, readiness (a combined node
// once ready; a broker that loses its only controller stops being ready), and the Prometheus
// metrics, which count the requests and bytes a producer sends.

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { Producer } from '@raftka/client';
import { ProcessCluster, ServerProcess, freePort, waitFor } from '../support/process-cluster.js';

const closers: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
});

async function get(port: number, urlPath: string): Promise<{ status: number; body: string; contentType: string | null }> {
  const response = await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: await response.text(), contentType: response.headers.get('content-type') };
}

/** The value of one sample line of a Prometheus exposition, undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const FAMILIES = [
  'raftka_request_duration_seconds',
  'raftka_request_errors_total',
  'raftka_bytes_in_total',
  'raftka_bytes_out_total',
  'raftka_isr_shrinks_total',
  'raftka_isr_expands_total',
  'raftka_under_replicated_partitions',
  'raftka_offline_partitions',
  'raftka_active_controller',
  'raftka_quorum_epoch',
  'raftka_quorum_high_watermark',
  'raftka_quorum_replica_lag_offsets',
  'raftka_log_size_bytes',
  'raftka_partition_high_watermark',
  'raftka_broker_state',
  'raftka_consumer_group_lag',
  'raftka_process_cpu_seconds_total',
];

describe('the admin HTTP listener', () => {
  it('serves /healthz, /readyz once a combined node is ready, and /metrics counting produced requests and bytes', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-admin-http-'));
    closers.push(() => fs.rm(root, { recursive: true, force: true }));
    const [controllerPort, brokerPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    const configFile = path.join(root, 'server.properties');
    await fs.writeFile(
      configFile,
      [
        'process.roles=controller,broker',
        'node.id=1',
        `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
        `listeners=PLAINTEXT://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
        `log.dirs=${path.join(root, 'data')}`,
        `admin.http.listener=127.0.0.1:${adminPort}`,
      ].join('\n'),
    );
    const node = new ServerProcess(1, controllerPort, root, configFile);
    onTestFailed(() => void process.stderr.write(node.lines.join('\n') + '\n'));
    closers.push(() => node.stop('SIGKILL'));
    node.start();

    const health = await waitFor('/healthz', () => get(adminPort, '/healthz').catch(() => undefined));
    expect(health.status).toBe(200);
    const ready = await waitFor('/readyz 200', async () => {
      const answer = await get(adminPort, '/readyz');
      return answer.status === 200 ? answer : undefined;
    });
    expect(JSON.parse(ready.body)).toEqual({ ready: true });
    expect((await get(adminPort, '/nowhere')).status).toBe(404);

    const bootstrapServers = [`127.0.0.1:${brokerPort}`];
    const producer = new Producer({ bootstrapServers, acks: -1, requestTimeoutMs: 2_000, deliveryTimeoutMs: 10_000 });
    closers.push(() => producer.close());
    for (let i = 0; i < 10; i++) await producer.send({ topic: 'observed', messages: [{ key: `k${i}`, value: `value ${i}` }] });

    const metrics = await get(adminPort, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.contentType).toContain('text/plain');
    for (const family of FAMILIES) expect(metrics.body, `family ${family}`).toContain(`# TYPE ${family} `);
    expect(sample(metrics.body, 'raftka_active_controller')).toBe(1);
    expect(sample(metrics.body, 'raftka_broker_state{state="active"}')).toBe(1);
    expect(sample(metrics.body, 'raftka_offline_partitions')).toBe(0);
    expect(sample(metrics.body, 'raftka_bytes_in_total{topic="observed"}')).toBeGreaterThan(0);
    // The producer sends over ProduceStream (or unary Produce); each request counts once either way.
    const produceRequests = ['Produce', 'ProduceStream']
      .map((method) => sample(metrics.body, `raftka_request_duration_seconds_count{service="RaftkaClient",method="${method}"}`) ?? 0)
      .reduce((sum, count) => sum + count, 0);
    expect(produceRequests).toBeGreaterThanOrEqual(10);
    expect(sample(metrics.body, 'raftka_request_duration_seconds_count{service="ControllerService",method="BrokerHeartbeat"}')).toBeGreaterThan(0);
    expect(sample(metrics.body, 'raftka_log_size_bytes{topic="observed",partition="0"}')).toBeGreaterThan(0);
  });

  it('reports a broker whose only controller is gone as not ready, naming what is missing', async () => {
    const cluster = await ProcessCluster.create({
      voters: 1,
      brokers: 1,
      properties: { 'broker.session.timeout.ms': '1500', 'broker.heartbeat.interval.ms': '250' },
    });
    closers.push(() => cluster.destroy());
    onTestFailed(() => cluster.printLogs());
    const controller = cluster.nodes[0]!;
    const broker = cluster.brokers[0]!;
    const [controllerAdmin, brokerAdmin] = [await freePort(), await freePort()];
    controller.start({ RAFTKA_CFG_ADMIN_HTTP_LISTENER: `127.0.0.1:${controllerAdmin}` });
    broker.start({ RAFTKA_CFG_ADMIN_HTTP_LISTENER: `127.0.0.1:${brokerAdmin}` });
    for (const port of [controllerAdmin, brokerAdmin]) {
      await waitFor(`/readyz 200 on ${port}`, async () => (await get(port, '/readyz').catch(() => undefined))?.status === 200);
    }
    const brokerMetrics = (await get(brokerAdmin, '/metrics')).body;
    // A broker-only node has no controller gauges; the controller reports the broker as active.
    expect(brokerMetrics).not.toContain('raftka_active_controller');
    expect(sample((await get(controllerAdmin, '/metrics')).body, 'raftka_active_brokers')).toBe(1);

    await controller.stop('SIGKILL');
    const notReady = await waitFor('/readyz 503 on the broker', async () => {
      const answer = await get(brokerAdmin, '/readyz');
      return answer.status === 503 ? answer : undefined;
    });
    const body = JSON.parse(notReady.body) as { ready: boolean; missing: string[] };
    expect(body.ready).toBe(false);
    expect(body.missing.join('\n')).toContain('no controller has answered');
    // Still alive: liveness does not depend on the controller.
    expect((await get(brokerAdmin, '/healthz')).status).toBe(200);
  });
});
