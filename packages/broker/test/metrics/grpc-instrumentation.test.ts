// The gRPC wrapper on a real grpc-js server: durations per method, errors by Kafka name from
// response items and from gRPC statuses, produce/fetch bytes, and server-streaming calls.

import * as grpc from '@grpc/grpc-js';
import { ErrorCode } from '@raftka/protocol';
import { loadControllerService } from '@raftka/quorum';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeMetrics, forEachErrorCode, instrumentServer, loadRaftkaClientService } from '../../src/index.js';

type Unary = (request: unknown, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void;
type RawClient = grpc.Client & Record<string, Unary>;

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

async function serve(metrics: NodeMetrics, add: (server: grpc.Server) => void): Promise<number> {
  const server = new grpc.Server();
  instrumentServer(metrics, server);
  add(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  closers.push(() => server.forceShutdown());
  return port;
}

function call(client: RawClient, method: string, request: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => client[method]!(request, { deadline: Date.now() + 5_000 }, (error, response) => (error ? reject(error) : resolve(response))));
}

/** The value of one sample line of the exposition, 0 when absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('instrumentService', () => {
  it('measures unary calls, counts per-item errors and gRPC failures, and meters produce and fetch bytes', async () => {
    const metrics = new NodeMetrics({ collectProcessMetrics: false });
    const Service = loadRaftkaClientService();
    const port = await serve(metrics, (server) =>
      server.addService(Service.service, {
        Produce: (callUnary: grpc.ServerUnaryCall<any, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          const partitions = callUnary.request.topicData[0].partitionData;
          callback(null, {
            responses: [
              {
                name: 'orders',
                partitionResponses: partitions.map((partition: { index: number }) => ({
                  index: partition.index,
                  errorCode: partition.index === 1 ? ErrorCode.NOT_LEADER_OR_FOLLOWER : 0,
                  baseOffset: 0,
                })),
              },
            ],
          });
        },
        Fetch: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
          callback(null, { responses: [{ topic: 'orders', partitions: [{ partitionIndex: 0, errorCode: 0, records: Buffer.alloc(300) }] }] });
        },
        Metadata: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback({ code: grpc.status.INTERNAL, details: 'bug' }),
      }),
    );
    const client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as RawClient;
    closers.push(() => client.close());
    await call(client, 'Produce', {
      acks: -1,
      timeoutMs: 1_000,
      topicData: [{ name: 'orders', partitionData: [{ index: 0, records: Buffer.alloc(100) }, { index: 1, records: Buffer.alloc(40) }] }],
    });
    await call(client, 'Fetch', { replicaId: -1, topics: [] });
    await call(client, 'Fetch', { replicaId: 2, topics: [] });
    await expect(call(client, 'Metadata', {})).rejects.toMatchObject({ code: grpc.status.INTERNAL });

    const text = await metrics.render();
    expect(sample(text, 'raftka_request_duration_seconds_count{service="RaftkaClient",method="Produce"}')).toBe(1);
    expect(sample(text, 'raftka_request_duration_seconds_count{service="RaftkaClient",method="Fetch"}')).toBe(2);
    expect(sample(text, 'raftka_request_errors_total{service="RaftkaClient",method="Produce",error="NOT_LEADER_OR_FOLLOWER"}')).toBe(1);
    expect(sample(text, 'raftka_request_errors_total{service="RaftkaClient",method="Metadata",error="UNKNOWN_SERVER_ERROR"}')).toBe(1);
    // Only the accepted partition's batch counts as bytes in.
    expect(sample(text, 'raftka_bytes_in_total{topic="orders"}')).toBe(100);
    expect(sample(text, 'raftka_bytes_out_total{topic="orders",fetcher="consumer"}')).toBe(300);
    expect(sample(text, 'raftka_bytes_out_total{topic="orders",fetcher="follower"}')).toBe(300);
  });

  it('measures a server-streaming call until it ends and counts errors in streamed messages', async () => {
    const metrics = new NodeMetrics({ collectProcessMetrics: false });
    const Service = loadControllerService();
    const port = await serve(metrics, (server) =>
      server.addService(Service.service, {
        BrokerSession: (stream: grpc.ServerWritableStream<unknown, unknown>) => {
          stream.write({ error: { code: ErrorCode.STALE_BROKER_EPOCH, name: 'STALE_BROKER_EPOCH', message: 'old' } });
          stream.end();
        },
      }),
    );
    const client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      BrokerSession: (request: unknown) => grpc.ClientReadableStream<unknown>;
    };
    closers.push(() => client.close());
    const events: unknown[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = client.BrokerSession({ brokerId: 1, brokerEpoch: 1 });
      stream.on('data', (event) => events.push(event));
      stream.on('end', () => resolve());
      stream.on('error', reject);
    });
    expect(events).toHaveLength(1);
    const deadline = Date.now() + 5_000;
    let text = '';
    while (Date.now() < deadline) {
      text = await metrics.render();
      if (sample(text, 'raftka_request_duration_seconds_count{service="ControllerService",method="BrokerSession"}') === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(sample(text, 'raftka_request_duration_seconds_count{service="ControllerService",method="BrokerSession"}')).toBe(1);
    expect(sample(text, 'raftka_request_errors_total{service="ControllerService",method="BrokerSession",error="STALE_BROKER_EPOCH"}')).toBe(1);
  });
});

describe('instrumentService on ProduceStream', () => {
  it('measures each request of the stream from its arrival to its in-order answer', async () => {
    const metrics = new NodeMetrics({ collectProcessMetrics: false });
    const Service = loadRaftkaClientService();
    const port = await serve(metrics, (server) =>
      server.addService(Service.service, {
        ProduceStream: (stream: grpc.ServerDuplexStream<any, unknown>) => {
          let previous: Promise<void> = Promise.resolve();
          stream.on('data', (request: any) => {
            const index = request.topicData[0].partitionData[0].index as number;
            previous = previous
              .then(() => new Promise((resolve) => setTimeout(resolve, 1)))
              .then(() => {
                stream.write({ responses: [{ name: 'orders', partitionResponses: [{ index, errorCode: index === 2 ? ErrorCode.NOT_ENOUGH_REPLICAS : 0 }] }] });
              });
          });
          stream.on('end', () => void previous.then(() => stream.end()));
        },
      }),
    );
    const client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      ProduceStream: () => grpc.ClientDuplexStream<unknown, unknown>;
    };
    closers.push(() => client.close());
    const answers: unknown[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = client.ProduceStream();
      stream.on('data', (answer) => answers.push(answer));
      stream.on('end', () => resolve());
      stream.on('error', reject);
      for (const index of [0, 1, 2]) {
        stream.write({ acks: 1, timeoutMs: 1_000, topicData: [{ name: 'orders', partitionData: [{ index, records: Buffer.alloc(10 * (index + 1)) }] }] });
      }
      stream.end();
    });
    expect(answers).toHaveLength(3);
    const text = await metrics.render();
    expect(sample(text, 'raftka_request_duration_seconds_count{service="RaftkaClient",method="ProduceStream"}')).toBe(3);
    expect(sample(text, 'raftka_request_errors_total{service="RaftkaClient",method="ProduceStream",error="NOT_ENOUGH_REPLICAS"}')).toBe(1);
    // Partitions 0 and 1 were accepted: 10 + 20 bytes.
    expect(sample(text, 'raftka_bytes_in_total{topic="orders"}')).toBe(30);
  });
});

describe('forEachErrorCode', () => {
  it('finds errorCode fields and error objects at any nesting, skipping zero codes and byte buffers', () => {
    const codes: number[] = [];
    forEachErrorCode(
      {
        errorCode: 0,
        error: { code: 41, name: 'NOT_CONTROLLER' },
        topics: [{ partitions: [{ errorCode: 6, records: Buffer.from([1, 2, 3]) }, { errorCode: 0 }] }],
      },
      (code) => codes.push(code),
    );
    expect(codes.sort((a, b) => a - b)).toEqual([6, 41]);
  });
});
