// The server image (deploy/docker/Dockerfile), built and run: a single combined node configured
// only through RAFTKA_CFG_* variables answers /healthz and /readyz on its admin listener, serves
// produce and fetch through its published client port, and Docker's HEALTHCHECK reports it
// healthy. Needs a Docker engine: run with `npm run test:containers`, not part of `npm test`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenericContainer, getContainerRuntimeClient, Wait, type StartedTestContainer } from 'testcontainers';
import { Admin, Consumer, Producer, type ConsumerRecord } from '@raftka/client';
import { freePort, waitFor } from '../support/process-cluster.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGE = 'raftka:container-test';
const ADMIN_PORT = 9644;
const READY_WAIT_MS_MAX = 60_000;
const CONSUME_WAIT_MS_MAX = 30_000;
/** The image's HEALTHCHECK runs every 10 s; the first probe decides once the node is up. */
const HEALTHY_WAIT_MS_MAX = 45_000;

/**
 * Publishes ports on the loopback interface only (Docker's default is every interface), so the
 * node under test is not reachable from the network.
 */
class LoopbackContainer extends GenericContainer {
  override withExposedPorts(...ports: Parameters<GenericContainer['withExposedPorts']>): this {
    super.withExposedPorts(...ports);
    for (const bindings of Object.values(this.hostConfig.PortBindings ?? {}) as { HostIp?: string }[][]) {
      for (const binding of bindings) binding.HostIp = '127.0.0.1';
    }
    return this;
  }
}

describe('the raftka image', () => {
  let container: StartedTestContainer;
  let bootstrap: string;
  let adminUrl: string;

  beforeAll(async () => {
    const buildStartedMs = Date.now();
    await GenericContainer.fromDockerfile(root, 'deploy/docker/Dockerfile').build(IMAGE, { deleteOnExit: false });
    const startStartedMs = Date.now();
    const clientPort = await freePort();
    container = await new LoopbackContainer(IMAGE)
      .withEnvironment({
        RAFTKA_CFG_NODE_ID: '1',
        RAFTKA_CFG_PROCESS_ROLES: 'controller,broker',
        RAFTKA_CFG_CONTROLLER_QUORUM_VOTERS: '1@127.0.0.1:9093',
        RAFTKA_CFG_LISTENERS: `PLAINTEXT://0.0.0.0:${clientPort},CONTROLLER://0.0.0.0:9093`,
        RAFTKA_CFG_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${clientPort}`,
        RAFTKA_CFG_ADMIN_HTTP_LISTENER: `0.0.0.0:${ADMIN_PORT}`,
        RAFTKA_CFG_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      })
      .withExposedPorts({ container: clientPort, host: clientPort }, ADMIN_PORT)
      .withWaitStrategy(Wait.forHttp('/healthz', ADMIN_PORT).forStatusCode(200))
      .withStartupTimeout(READY_WAIT_MS_MAX)
      .start();
    bootstrap = `127.0.0.1:${clientPort}`;
    adminUrl = `http://127.0.0.1:${container.getMappedPort(ADMIN_PORT)}`;
    console.log(`image build ${startStartedMs - buildStartedMs} ms, container start to /healthz ${Date.now() - startStartedMs} ms`);
  });

  afterAll(async () => {
    await container?.stop();
  });

  it('becomes ready: /readyz answers 200 once the broker is registered and unfenced', async () => {
    const body = await waitFor('/readyz 200', async () => {
      const response = await fetch(`${adminUrl}/readyz`);
      return response.status === 200 ? ((await response.json()) as { ready: boolean }) : undefined;
    }, READY_WAIT_MS_MAX);
    expect(body.ready).toBe(true);
    const metrics = await fetch(`${adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
  });

  it('serves produce and fetch through the published client port', async () => {
    const topic = 'container-smoke';
    const admin = new Admin({ bootstrapServers: [bootstrap] });
    try {
      await admin.createTopics([{ topic, numPartitions: 2, replicationFactor: 1 }]);
    } finally {
      await admin.close();
    }
    const values = Array.from({ length: 20 }, (_, index) => `record-${index}`);
    const producer = new Producer({ bootstrapServers: [bootstrap], acks: -1 });
    try {
      const sent = await producer.send({ topic, messages: values.map((value, index) => ({ key: `key-${index % 5}`, value })) });
      expect(sent).toHaveLength(values.length);
    } finally {
      await producer.close();
    }
    const consumer = new Consumer({ bootstrapServers: [bootstrap], autoOffsetReset: 'earliest' });
    try {
      consumer.assign([
        { topic, partition: 0 },
        { topic, partition: 1 },
      ]);
      const received: ConsumerRecord[] = [];
      await waitFor(`${values.length} records`, async () => {
        received.push(...(await consumer.poll({ timeoutMs: 500 })));
        return received.length >= values.length ? received : undefined;
      }, CONSUME_WAIT_MS_MAX);
      expect(received.map((record) => record.value!.toString()).sort()).toEqual([...values].sort());
    } finally {
      await consumer.close();
    }
  });

  it("is reported healthy by the image's HEALTHCHECK", async () => {
    const client = await getContainerRuntimeClient();
    const status = await waitFor('health status healthy', async () => {
      const info = await client.container.inspect(client.container.getById(container.getId()));
      const health = info.State.Health?.Status ?? 'no HEALTHCHECK in the image';
      // 'starting' until the first probe; 'healthy' and 'unhealthy' are answers.
      return health === 'starting' ? undefined : health;
    }, HEALTHY_WAIT_MS_MAX);
    expect(status).toBe('healthy');
  });
});
