// Two named client listeners on real processes, as brokers in containers have them: INTERNAL (the
// network the brokers share) and EXTERNAL (published to clients), with
// inter.broker.listener.name=INTERNAL. One controller and two brokers on loopback.
//
// EXTERNAL is advertised at a port where nothing listens until the test starts a forwarder there
// (standing in for a published port). So an RF 2 topic with min.insync.replicas=2 taking acks=all
// writes before that proves the followers fetch over INTERNAL, and a client bootstrapping from
// EXTERNAL afterwards is handed EXTERNAL addresses only.

import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { Admin, Consumer, Producer, type ConsumerRecord } from '@raftka/client';
import { ServerProcess, freePort, waitFor } from '../support/process-cluster.js';

const REQUEST_TIMEOUT_MS = 2_000;
const RECORD_COUNT = 20;

let root: string | undefined;
const nodes: ServerProcess[] = [];
const closers: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  await Promise.all(nodes.filter((node) => node.running).map((node) => node.stop('SIGKILL')));
  nodes.length = 0;
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  if (root) await fs.rm(root, { recursive: true, force: true });
  root = undefined;
});

async function startNode(nodeId: number, port: number, properties: Record<string, string>): Promise<ServerProcess> {
  const directory = path.join(root!, `node-${nodeId}`);
  await fs.mkdir(directory, { recursive: true });
  const configFile = path.join(directory, 'server.properties');
  const all = { 'node.id': String(nodeId), 'log.dirs': path.join(directory, 'data'), ...properties };
  await fs.writeFile(configFile, Object.entries(all).map(([key, value]) => `${key}=${value}`).join('\n') + '\n');
  const node = new ServerProcess(nodeId, port, directory, configFile);
  nodes.push(node);
  node.start();
  return node;
}

/** A TCP forwarder on 127.0.0.1:`port` to 127.0.0.1:`targetPort` (a published container port). */
async function forward(port: number, targetPort: number): Promise<void> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(targetPort, '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  closers.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
}

describe('brokers with INTERNAL and EXTERNAL listeners', () => {
  it('replicate over INTERNAL and hand a client that bootstrapped from EXTERNAL only EXTERNAL addresses', async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-listeners-'));
    onTestFailed(() => {
      for (const node of nodes) process.stderr.write(node.lines.join('\n') + '\n');
    });
    const controllerPort = await freePort();
    const voters = `1@127.0.0.1:${controllerPort}`;
    await startNode(1, controllerPort, {
      'process.roles': 'controller',
      'controller.quorum.voters': voters,
      listeners: `CONTROLLER://127.0.0.1:${controllerPort}`,
      'offsets.topic.replication.factor': '2',
    });
    const brokers: { nodeId: number; internal: number; external: number; published: number }[] = [];
    for (const nodeId of [2, 3]) {
      const broker = { nodeId, internal: await freePort(), external: await freePort(), published: await freePort() };
      brokers.push(broker);
      await startNode(nodeId, broker.internal, {
        'process.roles': 'broker',
        'controller.quorum.voters': voters,
        listeners: `INTERNAL://127.0.0.1:${broker.internal},EXTERNAL://127.0.0.1:${broker.external}`,
        'advertised.listeners': `EXTERNAL://127.0.0.1:${broker.published}`,
        'inter.broker.listener.name': 'INTERNAL',
        'listener.security.protocol.map': 'INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
        'offsets.topic.replication.factor': '2',
        'broker.heartbeat.interval.ms': '500',
        'replica.lag.time.max.ms': '2000',
        'replica.fetch.wait.max.ms': '200',
      });
    }
    const address = (port: number) => ({ host: '127.0.0.1', port });
    const internalAdmin = new Admin({ bootstrapServers: brokers.map((broker) => `127.0.0.1:${broker.internal}`), requestTimeoutMs: REQUEST_TIMEOUT_MS });
    closers.push(() => internalAdmin.close());
    await waitFor('2 live brokers', async () => (await internalAdmin.describeCluster().catch(() => undefined))?.brokers.length === 2, 30_000);
    expect((await internalAdmin.describeCluster()).brokers.map((broker) => ({ host: broker.host, port: broker.port }))).toEqual(
      brokers.map((broker) => address(broker.internal)),
    );

    // Nothing listens at the EXTERNAL addresses yet: acks=all with min.insync.replicas=2 succeeds
    // only if followers fetch through INTERNAL.
    await internalAdmin.createTopics([{ topic: 'orders', numPartitions: 2, replicationFactor: 2, configs: { 'min.insync.replicas': '2' } }]);
    await waitFor('orders to have leaders and a full ISR', async () => {
      const [description] = await internalAdmin.describeTopics(['orders']);
      return description!.partitions.every((partition) => partition.leader >= 0 && partition.isr.length === 2);
    });
    const producer = new Producer({
      bootstrapServers: [`127.0.0.1:${brokers[0]!.internal}`],
      acks: -1,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      deliveryTimeoutMs: 15_000,
    });
    closers.push(() => producer.close());
    const messages = Array.from({ length: RECORD_COUNT }, (_, index) => ({ key: `k${index % 4}`, value: `v${index}` }));
    await producer.send({ topic: 'orders', messages });
    const [replicated] = await internalAdmin.describeTopics(['orders']);
    expect(replicated!.partitions.every((partition) => partition.isr.length === 2)).toBe(true);

    // "Publish" the EXTERNAL ports: a client bootstrapping there sees only EXTERNAL addresses.
    for (const broker of brokers) await forward(broker.published, broker.external);
    const externalBootstrap = brokers.map((broker) => `127.0.0.1:${broker.published}`);
    const externalAdmin = new Admin({ bootstrapServers: externalBootstrap, requestTimeoutMs: REQUEST_TIMEOUT_MS });
    closers.push(() => externalAdmin.close());
    expect((await externalAdmin.describeCluster()).brokers.map((broker) => ({ host: broker.host, port: broker.port }))).toEqual(
      brokers.map((broker) => address(broker.published)),
    );
    const consumer = new Consumer({ bootstrapServers: externalBootstrap, autoOffsetReset: 'earliest', requestTimeoutMs: REQUEST_TIMEOUT_MS });
    closers.push(() => consumer.close());
    consumer.assign([0, 1].map((partition) => ({ topic: 'orders', partition })));
    const records: ConsumerRecord[] = [];
    await waitFor(`${RECORD_COUNT} records through EXTERNAL`, async () => {
      records.push(...(await consumer.poll({ timeoutMs: 500 })));
      return records.length >= RECORD_COUNT;
    });
    expect(records.map((record) => record.value?.toString()).sort()).toEqual(messages.map((message) => message.value).sort());
  });
});
