// A broker with two client listeners (as INTERNAL and EXTERNAL in a container), in one process
// with its controller (combined mode): each listener is served, the broker registers both
// advertised endpoints, and Metadata, DescribeCluster and FindCoordinator answer the addresses of
// the listener the request arrived on.

import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectSources, resolveConfig, type ConfigSchema } from '@raftka/protocol';
import { ControllerClient, ControllerNode, controllerConfigFromValues, controllerConfigSchema, quorumConfigFrom, quorumConfigSchema } from '@raftka/quorum';
import { BrokerServer, brokerConfigFromValues, brokerConfigSchema, loadRaftkaClientService, loadRaftkaGroupsService } from '../src/index.js';
import { waitFor } from './replica-manager/cluster-fixture.js';

const schema: ConfigSchema = [...quorumConfigSchema, ...controllerConfigSchema, ...brokerConfigSchema];
const logger = pino({ level: 'silent' });

/** A free loopback port (bind to 0, read it, release it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

type Unary = (request: unknown, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void;

/** Calls `method` of a service at 127.0.0.1:`port` (responses as proto-loader decodes them). */
function call<T = any>(service: grpc.ServiceClientConstructor, port: number, method: string, request: unknown): Promise<T> {
  const client = new service(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, Unary>;
  return new Promise<T>((resolve, reject) => {
    client[method]!(request, { deadline: Date.now() + 5_000 }, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response as T);
    });
  });
}

let root: string;
let startOptions: Parameters<typeof BrokerServer.start>[0];
let controllerNode: ControllerNode | undefined;
let controllerClient: ControllerClient | undefined;
let broker: BrokerServer | undefined;
let internalPort: number;
let externalPort: number;
/** Where EXTERNAL is advertised: a host name of the same machine, so it differs from INTERNAL's. */
let externalAdvertised: { host: string; port: number };

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-listeners-'));
  const [controllerPort, internal, external] = [await freePort(), await freePort(), await freePort()];
  internalPort = internal;
  externalPort = external;
  externalAdvertised = { host: 'localhost', port: externalPort };
  const overrides: Record<string, string> = {
    'process.roles': 'controller,broker',
    'node.id': '1',
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `INTERNAL://127.0.0.1:${internalPort},EXTERNAL://127.0.0.1:${externalPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    // INTERNAL has no entry: it advertises its own address.
    'advertised.listeners': `EXTERNAL://${externalAdvertised.host}:${externalAdvertised.port}`,
    'inter.broker.listener.name': 'INTERNAL',
    'listener.security.protocol.map': 'INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': path.join(root, 'data'),
    'offsets.topic.replication.factor': '1',
    'offsets.topic.num.partitions': '2',
  };
  const values = resolveConfig(schema, collectSources({ schema, overrides }));
  const quorum = quorumConfigFrom(values);
  controllerNode = await ControllerNode.start({ quorum, controller: controllerConfigFromValues(values), logger });
  controllerClient = new ControllerClient({ controllers: [`127.0.0.1:${controllerPort}`] });
  const metadata = controllerNode.metadata;
  startOptions = {
    brokerId: 1,
    listeners: quorum.listeners,
    config: brokerConfigFromValues(values),
    logDir: path.join(root, 'data'),
    clusterId: 'listeners-test',
    controller: controllerClient,
    metadata,
    heartbeatIntervalMs: 100,
    autoCreateTopicsEnable: false,
    logger,
  };
  broker = await BrokerServer.start(startOptions);
  await waitFor(() => metadata.image.brokers.get(1)?.fenced === false, 'broker 1 registered and unfenced');
});

afterAll(async () => {
  await broker?.close({ graceful: false });
  controllerClient?.close();
  await controllerNode?.close({ graceful: false });
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('a broker with INTERNAL and EXTERNAL listeners', () => {
  it('binds both and registers both advertised endpoints', () => {
    expect(broker!.listenerPorts).toEqual(new Map([['INTERNAL', internalPort], ['EXTERNAL', externalPort]]));
    expect(broker!.port).toBe(internalPort);
    expect(controllerNode!.metadata.image.brokers.get(1)?.endpoints).toEqual([
      { name: 'INTERNAL', host: '127.0.0.1', port: internalPort, securityProtocol: 'PLAINTEXT' },
      { name: 'EXTERNAL', host: externalAdvertised.host, port: externalAdvertised.port, securityProtocol: 'PLAINTEXT' },
    ]);
  });

  it('answers Metadata and DescribeCluster with the addresses of the listener the request came in on', async () => {
    const client = loadRaftkaClientService();
    const internal = { nodeId: 1, host: '127.0.0.1', port: internalPort };
    const external = { nodeId: 1, ...externalAdvertised };
    expect((await call(client, internalPort, 'Metadata', { allTopics: true })).brokers).toEqual([expect.objectContaining(internal)]);
    expect((await call(client, externalPort, 'Metadata', { allTopics: true })).brokers).toEqual([expect.objectContaining(external)]);
    expect((await call(client, internalPort, 'DescribeCluster', {})).brokers).toEqual([expect.objectContaining(internal)]);
    expect((await call(client, externalPort, 'DescribeCluster', {})).brokers).toEqual([expect.objectContaining(external)]);
  });

  it('answers FindCoordinator with the coordinator endpoint of the listener the request came in on', async () => {
    const groups = loadRaftkaGroupsService();
    const find = async (port: number) => {
      const response = await call(groups, port, 'FindCoordinator', { keyType: 'COORDINATOR_GROUP', coordinatorKeys: ['orders'] });
      return response.coordinators[0] as { errorCode: number; nodeId: number; host: string; port: number };
    };
    // The first asks create __consumer_offsets; it is answered once its partitions have a leader.
    let viaInternal: Awaited<ReturnType<typeof find>> | undefined;
    await waitFor(async () => {
      viaInternal = await find(internalPort);
      return viaInternal.errorCode === 0;
    }, 'a group coordinator');
    expect(viaInternal).toMatchObject({ nodeId: 1, host: '127.0.0.1', port: internalPort });
    expect(await find(externalPort)).toMatchObject({ errorCode: 0, nodeId: 1, ...externalAdvertised });
  });

  it('refuses to start when a listener cannot bind, naming it', async () => {
    const second = BrokerServer.start({
      ...startOptions,
      brokerId: 2,
      logDir: path.join(root, 'data-2'),
      listeners: [
        { name: 'INTERNAL', host: '127.0.0.1', port: 0 },
        { name: 'EXTERNAL', host: '127.0.0.1', port: externalPort },
      ],
    });
    await expect(second).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringMatching(/^listeners: EXTERNAL:\/\/127\.0\.0\.1:\d+: cannot listen/) });
  });
});
