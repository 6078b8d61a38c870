// The producer's ProduceStream against a scripted broker: answers pair with requests by
// position, requests still being prepared keep their place, a request left unanswered past
// requestTimeoutMs fails every unanswered request with REQUEST_TIMED_OUT, and a broken stream
// fails them with a retriable error; the next send opens a new stream.

import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { loadClientServices } from '../../src/network/client-proto.js';
import type { ProduceRequest, ProduceResponse } from '../../src/network/client-messages.js';
import { ProduceStream } from '../../src/network/produce-stream.js';

type Script = (request: ProduceRequest, call: grpc.ServerDuplexStream<ProduceRequest, ProduceResponse>) => void;

const servers: grpc.Server[] = [];
const clients: grpc.Client[] = [];

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) server.forceShutdown();
});

function answer(request: ProduceRequest, baseOffset: number): ProduceResponse {
  const topic = request.topicData[0]!;
  return {
    throttleTimeMs: 0,
    responses: [
      {
        name: topic.name,
        partitionResponses: [
          { index: 0, errorCode: 0, errorMessage: '', baseOffset, logAppendTimeMs: -1, logStartOffset: 0, recordErrors: [], currentLeader: null },
        ],
      },
    ],
  };
}

function request(name: string): ProduceRequest {
  return { transactionalId: '', acks: 1, timeoutMs: 1000, topicData: [{ name, partitionData: [{ index: 0, records: Buffer.from(name) }] }] };
}

/** A broker whose ProduceStream runs `script` per request; counts the streams opened. */
async function startBroker(script: Script): Promise<{ stream: (requestTimeoutMs?: number) => ProduceStream; streamsOpened: () => number }> {
  const services = loadClientServices();
  const server = new grpc.Server();
  let opened = 0;
  server.addService(services.RaftkaClient.service, {
    ProduceStream: (call: grpc.ServerDuplexStream<ProduceRequest, ProduceResponse>) => {
      opened += 1;
      call.on('data', (message: ProduceRequest) => script(message, call));
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  servers.push(server);
  const client = new services.RaftkaClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    ProduceStream: (metadata: grpc.Metadata, options: grpc.CallOptions) => grpc.ClientDuplexStream<ProduceRequest, ProduceResponse>;
  };
  clients.push(client);
  return {
    stream: (requestTimeoutMs = 5000) =>
      new ProduceStream({
        nodeId: 1,
        open: () => client.ProduceStream(new grpc.Metadata(), {}),
        maxInFlight: 5,
        requestTimeoutMs,
        clock: () => Date.now(),
        timers: { setTimeout: (callback, delayMs) => setTimeout(callback, delayMs), clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout) },
      }),
    streamsOpened: () => opened,
  };
}

const offsetOf = (response: ProduceResponse): number => response.responses[0]!.partitionResponses[0]!.baseOffset;

describe('ProduceStream', () => {
  it('writes requests in send order, also when an earlier one is still being prepared, and pairs answers by position', async () => {
    const seen: string[] = [];
    const broker = await startBroker((message, call) => {
      seen.push(message.topicData[0]!.name);
      call.write(answer(message, seen.length - 1));
    });
    const stream = broker.stream();
    let prepare!: (ready: ProduceRequest) => void;
    const slow = new Promise<ProduceRequest>((resolve) => (prepare = resolve));
    const first = stream.send(slow);
    const second = stream.send(request('second'));
    expect(stream.inFlight).toBe(2);
    expect(stream.hasCapacity()).toBe(true);
    prepare(request('first'));
    expect(offsetOf(await first)).toBe(0);
    expect(offsetOf(await second)).toBe(1);
    expect(seen).toEqual(['first', 'second']);
    expect(stream.inFlight).toBe(0);
  });

  it('fails every unanswered request with REQUEST_TIMED_OUT after requestTimeoutMs, then opens a new stream', async () => {
    let answering = false;
    const broker = await startBroker((message, call) => {
      if (answering) call.write(answer(message, 7));
    });
    const stream = broker.stream(200);
    const outcomes = await Promise.allSettled([stream.send(request('a')), stream.send(request('b'))]);
    expect(outcomes.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as { code: string }).code : 'ok'))).toEqual(['REQUEST_TIMED_OUT', 'REQUEST_TIMED_OUT']);
    answering = true;
    expect(offsetOf(await stream.send(request('c')))).toBe(7);
    expect(broker.streamsOpened()).toBe(2);
  });

  it('fails unanswered requests with a retriable NETWORK_EXCEPTION when the broker breaks the stream', async () => {
    const broker = await startBroker((message, call) => {
      if (message.topicData[0]!.name === 'boom') call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'going away' });
      else call.write(answer(message, 1));
    });
    const stream = broker.stream();
    expect(offsetOf(await stream.send(request('fine')))).toBe(1);
    const failure = await stream.send(request('boom')).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'NETWORK_EXCEPTION', retriable: true });
  });
});
