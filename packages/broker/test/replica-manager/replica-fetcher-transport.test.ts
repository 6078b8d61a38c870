// The replica fetcher's transport over the wire: fetches ride one FetchStream per leader, answers
// pair up with fetches in order, and a fetch given up (deadline, abort: a partition added while a
// long-poll waits) fails at once without leaving a later fetch to be paired with its answer.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RaftkaError } from '@raftka/protocol';
import { GrpcLeaderEndpoint } from '../../src/replica-manager/replica-fetcher-transport.js';
import type { FetchRequest } from '../../src/replica-manager/requests.js';
import { TestCluster, batch } from './cluster-fixture.js';

let cluster: TestCluster;
let endpoint: GrpcLeaderEndpoint;

beforeAll(async () => {
  cluster = await TestCluster.create();
  await cluster.startBroker(1);
  await cluster.createTopic('streamed', [[1]]);
  endpoint = new GrpcLeaderEndpoint(`127.0.0.1:${cluster.broker(1).port}`);
});

afterAll(async () => {
  endpoint.close();
  await cluster.close();
});

/** A consumer-style fetch (replica id -1) of partition 0 from `fetchOffset`. */
function fetchFrom(fetchOffset: number, maxWaitMs: number): FetchRequest {
  return {
    replicaId: -1,
    maxWaitMs,
    minBytes: 1,
    maxBytes: 1 << 20,
    isolationLevel: 'READ_UNCOMMITTED',
    partitions: [{ topic: 'streamed', partition: 0, currentLeaderEpoch: -1, fetchOffset, lastFetchedEpoch: -1, partitionMaxBytes: 1 << 20 }],
  };
}

async function produce(prefix: string): Promise<number> {
  const answer = await cluster.broker(1).client.produce({ topic: 'streamed', records: batch(prefix, 1), acks: 1 });
  expect(answer.code).toBe('NONE');
  return answer.baseOffset;
}

async function rejection(promise: Promise<unknown>): Promise<RaftkaError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(RaftkaError);
  return error as RaftkaError;
}

describe('GrpcLeaderEndpoint (FetchStream)', () => {
  it('answers fetch after fetch over the stream, each with its own records', async () => {
    for (let index = 0; index < 5; index++) {
      const offset = await produce(`r${index}`);
      const [partition] = await endpoint.fetch(fetchFrom(offset, 0), 5_000);
      expect(partition!.errorCode).toBe('NONE');
      expect(partition!.highWatermark).toBe(offset + 1);
      expect(partition!.records.length).toBeGreaterThan(0);
    }
  });

  it('gives up a held fetch on abort at once, and the next fetch gets its own answer', async () => {
    const end = (await endpoint.fetch(fetchFrom(0, 0), 5_000))[0]!.highWatermark;
    // Nothing to read at the end: the leader holds this fetch for its max wait.
    const controller = new AbortController();
    const held = endpoint.fetch(fetchFrom(end, 10_000), 20_000, controller.signal);
    const abortedAt = Date.now();
    controller.abort();
    const error = await rejection(held);
    expect(error.code).toBe('REQUEST_TIMED_OUT');
    expect(error.retriable).toBe(true);
    expect(Date.now() - abortedAt).toBeLessThan(5_000);
    // Had the held fetch stayed paired on the stream, the next fetch would receive its answer
    // (the new record only, once produced) instead of its own (the whole log from offset 0).
    const offset = await produce('after-abort');
    const [partition] = await endpoint.fetch(fetchFrom(0, 0), 5_000);
    const reference = new GrpcLeaderEndpoint(`127.0.0.1:${cluster.broker(1).port}`);
    try {
      const [expected] = await reference.fetch(fetchFrom(0, 0), 5_000);
      expect(partition!.highWatermark).toBe(offset + 1);
      expect(partition!.records.equals(expected!.records)).toBe(true);
    } finally {
      reference.close();
    }
  });

  it('times out a fetch the leader holds past the deadline, and recovers', async () => {
    const end = (await endpoint.fetch(fetchFrom(0, 0), 5_000))[0]!.highWatermark;
    const error = await rejection(endpoint.fetch(fetchFrom(end, 10_000), 300));
    expect(error.code).toBe('REQUEST_TIMED_OUT');
    const offset = await produce('after-timeout');
    const [partition] = await endpoint.fetch(fetchFrom(offset, 0), 5_000);
    expect(partition!.highWatermark).toBe(offset + 1);
  });

  it('fails fetches after close with a retriable error', async () => {
    const closed = new GrpcLeaderEndpoint(`127.0.0.1:${cluster.broker(1).port}`);
    await closed.fetch(fetchFrom(0, 0), 5_000);
    closed.close();
    const error = await rejection(closed.fetch(fetchFrom(0, 0), 5_000));
    expect(error.code).toBe('NETWORK_EXCEPTION');
    expect(error.retriable).toBe(true);
  });
});
