// One combined controller+broker node, as `npm start` runs it: automatic topic creation on first
// produce (auto.create.topics.enable), its refusal when disabled, and data surviving a restart.

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { Admin, Consumer, Producer } from '@raftka/client';
import { ServerProcess, freePort, waitFor } from '../support/process-cluster.js';

let node: ServerProcess | undefined;
let root: string | undefined;
const closers: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  if (node?.running) await node.stop('SIGKILL');
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  if (root) await fs.rm(root, { recursive: true, force: true });
  node = undefined;
  root = undefined;
});

async function startCombined(): Promise<{ bootstrapServers: string[] }> {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-combined-'));
  const [controllerPort, brokerPort] = [await freePort(), await freePort()];
  const configFile = path.join(root, 'server.properties');
  await fs.writeFile(
    configFile,
    [
      'process.roles=controller,broker',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
      `log.dirs=${path.join(root, 'data')}`,
      'num.partitions=2',
    ].join('\n'),
  );
  node = new ServerProcess(1, controllerPort, root, configFile);
  const current = node;
  onTestFailed(() => void process.stderr.write(current.lines.join('\n') + '\n'));
  node.start();
  return { bootstrapServers: [`127.0.0.1:${brokerPort}`] };
}

describe('a combined controller+broker node', () => {
  it('creates a topic on first produce, keeps its data across a restart, and refuses unknown topics when auto-creation is off', async () => {
    const { bootstrapServers } = await startCombined();
    const producer = new Producer({ bootstrapServers, acks: -1, requestTimeoutMs: 2_000, deliveryTimeoutMs: 10_000 });
    closers.push(() => producer.close());
    const [sent] = await producer.send({ topic: 'fresh', messages: [{ key: 'k', value: 'first' }] });
    expect(sent!.offset).toBe(0);
    const admin = new Admin({ bootstrapServers, requestTimeoutMs: 2_000 });
    closers.push(() => admin.close());
    const [description] = await admin.describeTopics(['fresh']);
    expect(description!.partitions).toHaveLength(2); // num.partitions

    // Restart with auto-creation disabled: the data is still there, unknown topics are refused.
    await node!.stop('SIGTERM');
    node!.start({ RAFTKA_CFG_AUTO_CREATE_TOPICS_ENABLE: 'false' });
    const consumer = new Consumer({ bootstrapServers, autoOffsetReset: 'earliest', requestTimeoutMs: 2_000 });
    closers.push(() => consumer.close());
    consumer.assign([{ topic: 'fresh', partition: sent!.partition }]);
    const values: string[] = [];
    await waitFor('the record written before the restart', async () => {
      for (const record of await consumer.poll({ timeoutMs: 200 })) values.push(record.value!.toString());
      return values.length > 0;
    }, 20_000);
    expect(values).toEqual(['first']);
    const strict = new Producer({ bootstrapServers, acks: -1, maxBlockMs: 2_000, requestTimeoutMs: 1_000, deliveryTimeoutMs: 2_000 });
    closers.push(() => strict.close());
    await expect(strict.send({ topic: 'never-created', messages: [{ value: 'x' }] })).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC_OR_PARTITION' });
    expect(await admin.listTopics()).toEqual(['fresh']);
  });
});
