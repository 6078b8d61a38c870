// RaftStream: the Raft RPCs between nodes as messages on one long-lived stream per peer. These
// tests run a real QuorumServer and QuorumClient on loopback with a scripted handler standing in
// for the node.

import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftkaError } from '@raftka/protocol';
import type { FetchRequest, FetchResponse, RaftRequest, RaftResponse, VoteRequest, VoteResponse } from '../../src/raft/types.js';
import { QuorumClient, QuorumServer, type QuorumRpcHandler } from '../../src/transport/grpc-transport.js';
import { loadQuorumService } from '../../src/transport/quorum-proto.js';

const logger = pino({ level: 'silent' });

const vote: VoteRequest = { kind: 'vote-request', epoch: 3, candidateId: 2, lastOffsetEpoch: 2, lastOffset: 40, preVote: false };
const fetch = (fetchOffset: number): FetchRequest => ({
  kind: 'fetch-request',
  epoch: 3,
  replicaId: 2,
  fetchOffset,
  lastFetchedEpoch: 3,
  maxWaitMs: 500,
  maxBytes: 1 << 20,
});
const voteGranted: VoteResponse = { kind: 'vote-response', epoch: 3, errorCode: 'NONE', voteGranted: true, preVote: false, leaderId: undefined };
const fetched = (highWatermark: number): FetchResponse => ({
  kind: 'fetch-response',
  epoch: 3,
  errorCode: 'NONE',
  leaderId: 1,
  highWatermark,
  logStartOffset: 0,
  entries: [{ offset: highWatermark - 1, epoch: 3, payload: { kind: 'data', records: [Buffer.from([1, 2, 3])] } }],
  divergingEpoch: undefined,
  snapshotId: undefined,
});

/** A handler whose Raft answers the test gives by hand, in any order. */
class ScriptedHandler implements QuorumRpcHandler {
  readonly received: { request: RaftRequest; answer: (response: RaftResponse) => void; fail: (error: unknown) => void }[] = [];

  handleRaftRequest(request: Exclude<RaftRequest, { kind: 'fetch-snapshot-request' }>): Promise<RaftResponse> {
    return new Promise((resolve, reject) => this.received.push({ request, answer: resolve, fail: reject }));
  }
  handleFetchSnapshot(): never {
    throw new Error('not used');
  }
  describeQuorum(): never {
    throw new Error('not used');
  }
  appendRecords(): never {
    throw new Error('not used');
  }
  readCommitted(): never {
    throw new Error('not used');
  }
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function rejection(promise: Promise<unknown>): Promise<RaftkaError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(RaftkaError);
  return error as RaftkaError;
}

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function serve(handler: QuorumRpcHandler, port = 0): Promise<QuorumServer> {
  const server = await QuorumServer.start({ host: '127.0.0.1', port, handler, logger });
  closers.push(() => server.close(0));
  return server;
}

function connect(port: number): QuorumClient {
  const client = new QuorumClient(`127.0.0.1:${port}`);
  closers.push(() => client.close());
  return client;
}

describe('RaftStream', () => {
  it('answers each request under its own correlation id, in whatever order the node answers', async () => {
    const handler = new ScriptedHandler();
    const server = await serve(handler);
    const client = connect(server.port);
    // A held Fetch (the leader long-polls it) must not hold up a Vote sent after it.
    const fetchAnswer = client.send(fetch(7), 5_000);
    const voteAnswer = client.send(vote, 5_000);
    await until('both requests', () => (handler.received.length === 2 ? true : undefined));
    expect(handler.received.map((entry) => entry.request)).toEqual([fetch(7), vote]);
    handler.received[1]!.answer(voteGranted);
    expect(await voteAnswer).toEqual(voteGranted);
    handler.received[0]!.answer(fetched(8));
    expect(await fetchAnswer).toEqual(fetched(8));
  });

  it('carries many requests over one stream', async () => {
    const handler = new ScriptedHandler();
    let streams = 0;
    const server = await QuorumServer.start({
      host: '127.0.0.1',
      port: 0,
      handler,
      logger,
      serviceWrapper: (_definition, implementation) => ({
        ...implementation,
        RaftStream: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
          streams++;
          (implementation.RaftStream as (call: grpc.ServerDuplexStream<unknown, unknown>) => void)(call);
        },
      }),
    });
    closers.push(() => server.close(0));
    const client = connect(server.port);
    for (let offset = 1; offset <= 20; offset++) {
      const answer = client.send(fetch(offset), 5_000);
      const received = await until('the fetch', () => handler.received[offset - 1]);
      received.answer(fetched(offset + 1));
      expect((await answer).kind).toBe('fetch-response');
    }
    expect(streams).toBe(1);
  });

  it('fails only the request the node fails, and keeps the stream', async () => {
    const handler = new ScriptedHandler();
    const server = await serve(handler);
    const client = connect(server.port);
    const first = client.send(vote, 5_000);
    await until('the vote', () => handler.received[0]);
    handler.received[0]!.fail(new RaftkaError('SHUTTING_DOWN', 'node 1 is shutting down'));
    const error = await rejection(first);
    expect(error.code).toBe('SHUTTING_DOWN');
    expect(error.message).toMatch(/node 1 is shutting down/);
    const second = client.send(vote, 5_000);
    await until('the second vote', () => handler.received[1]);
    handler.received[1]!.answer(voteGranted);
    expect(await second).toEqual(voteGranted);
  });

  it('answers a malformed request with INVALID_REQUEST for its id and keeps serving the stream', async () => {
    const handler = new ScriptedHandler();
    const server = await serve(handler);
    const Service = loadQuorumService();
    const raw = new Service(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      RaftStream: () => grpc.ClientDuplexStream<unknown, Record<string, unknown>>;
    };
    closers.push(() => raw.close());
    const stream = raw.RaftStream();
    closers.push(() => stream.cancel());
    const answers: Record<string, unknown>[] = [];
    stream.on('data', (answer: Record<string, unknown>) => answers.push(answer));
    stream.on('error', () => undefined);
    // A vote from a negative candidate id, then an envelope with no request at all, then a good one.
    stream.write({ correlationId: 5, vote: { epoch: 3, candidateId: -4, lastOffsetEpoch: 0, lastOffset: 0, preVote: false } });
    stream.write({ correlationId: 6 });
    stream.write({ correlationId: 7, vote: { epoch: 3, candidateId: 2, lastOffsetEpoch: 2, lastOffset: 40, preVote: false } });
    await until('two error answers', () => (answers.length === 2 ? true : undefined));
    expect(answers.map((answer) => [answer.correlationId, answer.response, (answer.error as { code: string }).code])).toEqual([
      [5, 'error', 'INVALID_REQUEST'],
      [6, 'error', 'INVALID_REQUEST'],
    ]);
    const received = await until('the good vote', () => handler.received[0]);
    expect(handler.received).toHaveLength(1);
    received.answer(voteGranted);
    await until('its answer', () => (answers.length === 3 ? true : undefined));
    expect(answers[2]).toMatchObject({ correlationId: 7, response: 'vote', vote: { voteGranted: true } });
  });

  it('times a request out at its deadline and opens a fresh stream for the next one', async () => {
    const handler = new ScriptedHandler();
    const server = await serve(handler);
    const client = connect(server.port);
    const unanswered = client.send(vote, 200);
    const error = await rejection(unanswered);
    expect(error.code).toBe('REQUEST_TIMED_OUT');
    expect(error.retriable).toBe(true);
    // The late answer to the timed-out request goes nowhere; the next request is answered.
    handler.received[0]!.answer(voteGranted);
    const next = client.send(fetch(3), 5_000);
    await until('the fetch', () => handler.received[1]);
    handler.received[1]!.answer(fetched(4));
    expect(await next).toEqual(fetched(4));
  });

  it('fails what waits when the peer goes away, and reconnects once it is back', async () => {
    const handler = new ScriptedHandler();
    const first = await QuorumServer.start({ host: '127.0.0.1', port: 0, handler, logger });
    const port = first.port;
    const client = connect(port);
    const waiting = client.send(fetch(9), 10_000);
    await until('the fetch', () => handler.received[0]);
    await first.close(0);
    const error = await rejection(waiting);
    expect(error.code).toBe('NETWORK_EXCEPTION');
    expect(error.retriable).toBe(true);
    expect(error.message).toMatch(/RaftStream/);

    const restarted = await serve(handler, port);
    expect(restarted.port).toBe(port);
    // The channel reconnects with a short backoff; until then a send fails fast (the core retries).
    const answered = handler.received.length;
    const deadline = Date.now() + 10_000;
    let response: RaftResponse | undefined;
    while (response === undefined && Date.now() < deadline) {
      const attempt = client.send(vote, 1_000);
      const served = until('the vote', () => handler.received[answered], 1_000).then(
        (entry) => entry.answer(voteGranted),
        () => undefined,
      );
      response = await attempt.catch(() => undefined);
      await served;
      if (response === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(response).toEqual(voteGranted);
  });
});
