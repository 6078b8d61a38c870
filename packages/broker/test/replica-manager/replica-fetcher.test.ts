// The replica fetcher against a scripted leader: KIP-279 reconciliation over several
// OffsetForLeaderEpoch rounds (the follower holds an epoch the leader never had, and the leader
// answers with an epoch the follower lacks), then fetching from where the logs agree.

import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeRecordBatchSync } from '@raftka/protocol';
import { PartitionLog } from '../../src/log/partition-log.js';
import { makeLogConfig } from '../../src/log/log-config.js';
import { systemClock, systemTimers } from '../../src/log/time.js';
import { Partition } from '../../src/replica-manager/partition.js';
import { ReplicaFetcher, type LeaderEndpoint } from '../../src/replica-manager/replica-fetcher.js';
import type { FetchRequest, OffsetForLeaderEpochRequest } from '../../src/replica-manager/requests.js';
import { waitFor } from './cluster-fixture.js';

/** A batch as a leader stores it: offsets and leader epoch assigned. */
function storedBatch(baseOffset: number, epoch: number, count: number, prefix: string): Buffer {
  const records = Array.from({ length: count }, (_, index) => ({ key: `${prefix}-${index}`, value: `${prefix}-${index}`, timestamp: 1_000 }));
  return encodeRecordBatchSync({ records, baseOffset, partitionLeaderEpoch: epoch, baseTimestamp: 1_000 });
}

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } as never;

let dir: string;
let log: PartitionLog;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-fetcher-'));
  log = await PartitionLog.open({ dir: path.join(dir, 't-0'), config: makeLogConfig() });
});

afterEach(async () => {
  await log.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('ReplicaFetcher', () => {
  it('asks again with an older epoch until the logs agree (KIP-279), then fetches from there', async () => {
    const partition = await Partition.open({ topic: 't', topicId: 'id', partitionId: 0, log, minInsyncReplicas: 1 });
    // Ours: epoch 0 at [0, 2), epoch 2 at [2, 4). The leader's: epoch 0 at [0, 2), epoch 1 at
    // [2, 5), epoch 3 from 5. We never had epoch 1; it never had epoch 2.
    await partition.appendAsFollower(storedBatch(0, 0, 2, 'e0'));
    await partition.appendAsFollower(storedBatch(2, 2, 2, 'e2'));
    partition.role = { kind: 'follower', leaderId: 9, leaderEpoch: 3 };
    const leaderEpochs = new Map([
      [2, { epoch: 1, endOffset: 5 }],
      [1, { epoch: 1, endOffset: 5 }],
      [0, { epoch: 0, endOffset: 2 }],
    ]);
    const asked: number[] = [];
    const fetches: FetchRequest['partitions'] = [];
    const endpoint: LeaderEndpoint = {
      offsetForLeaderEpoch: async (request: OffsetForLeaderEpochRequest) =>
        request.partitions.map((item) => {
          asked.push(item.leaderEpoch);
          const answer = leaderEpochs.get(item.leaderEpoch)!;
          return { topic: item.topic, partition: item.partition, errorCode: 'NONE', errorMessage: '', leaderEpoch: answer.epoch, endOffset: answer.endOffset };
        }),
      fetch: async (request: FetchRequest) => {
        fetches.push(...request.partitions);
        const item = request.partitions[0]!;
        const records = item.fetchOffset === 2 ? storedBatch(2, 1, 3, 'e1') : Buffer.alloc(0);
        if (records.length === 0) await new Promise((resolve) => setTimeout(resolve, 20)); // a long-poll with nothing new
        return [
          {
            topic: item.topic,
            partition: item.partition,
            errorCode: 'NONE',
            errorMessage: '',
            highWatermark: 5,
            lastStableOffset: 5,
            logStartOffset: 0,
            divergingEpoch: undefined,
            currentLeader: undefined,
            records,
          },
        ];
      },
      close: () => undefined,
    };
    const fetcher = new ReplicaFetcher({
      localBrokerId: 1,
      sourceBrokerId: 9,
      endpoint,
      config: { fetchWaitMaxMs: 20, fetchMinBytes: 1, fetchMaxBytes: 1 << 20, fetchResponseMaxBytes: 1 << 20, fetchBackoffMs: 10, requestTimeoutMs: 1_000 },
      clock: systemClock,
      timers: systemTimers,
      logger: silent,
    });
    fetcher.addPartition(partition, 3);
    await waitFor(() => log.logEndOffset === 5 && fetches.some((item) => item.fetchOffset === 5), 'the follower copies epoch 1 and fetches on');
    await fetcher.stop();
    // Asked about its own latest epoch 2, truncated to the end of its epoch 0 (the largest it has
    // below the answered epoch 1), asked again about epoch 0, and agreed at offset 2.
    expect(asked).toEqual([2, 0]);
    expect(fetches[0]).toMatchObject({ fetchOffset: 2, lastFetchedEpoch: 0, currentLeaderEpoch: 3 });
    expect(log.epochEntries).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 1, startOffset: 2 },
    ]);
    expect(log.highWatermark).toBe(5);
  });

  it('gives up a long-poll in flight when a partition is added, so the new partition is fetched at once', async () => {
    const first = await Partition.open({ topic: 't', topicId: 'id', partitionId: 0, log, minInsyncReplicas: 1 });
    first.role = { kind: 'follower', leaderId: 9, leaderEpoch: 0 };
    const secondLog = await PartitionLog.open({ dir: path.join(dir, 't-1'), config: makeLogConfig() });
    const second = await Partition.open({ topic: 't', topicId: 'id', partitionId: 1, log: secondLog, minInsyncReplicas: 1 });
    second.role = { kind: 'follower', leaderId: 9, leaderEpoch: 0 };
    const requests: number[][] = [];
    const pending = new Set<(error: Error) => void>();
    let abandoned = 0;
    const endpoint: LeaderEndpoint = {
      offsetForLeaderEpoch: async (request: OffsetForLeaderEpochRequest) =>
        request.partitions.map((item) => ({ topic: item.topic, partition: item.partition, errorCode: 'NONE', errorMessage: '', leaderEpoch: 0, endOffset: 0 })),
      // The leader has nothing new: it holds every fetch until the follower gives it up (far
      // longer than this test's deadline, so only an abandoned long-poll lets partition 1 in).
      fetch: (request: FetchRequest, _timeoutMs: number, signal?: AbortSignal) =>
        new Promise((_resolve, reject) => {
          requests.push(request.partitions.map((item) => item.partition));
          pending.add(reject);
          signal?.addEventListener('abort', () => {
            abandoned++;
            pending.delete(reject);
            reject(new Error('abandoned'));
          });
        }),
      // As the gRPC endpoint: closing cancels the calls in flight.
      close: () => {
        for (const reject of pending) reject(new Error('closed'));
        pending.clear();
      },
    };
    const fetcher = new ReplicaFetcher({
      localBrokerId: 1,
      sourceBrokerId: 9,
      endpoint,
      config: { fetchWaitMaxMs: 60_000, fetchMinBytes: 1, fetchMaxBytes: 1 << 20, fetchResponseMaxBytes: 1 << 20, fetchBackoffMs: 60_000, requestTimeoutMs: 1_000 },
      clock: systemClock,
      timers: systemTimers,
      logger: silent,
    });
    try {
      fetcher.addPartition(first, 0);
      await waitFor(() => requests.length === 1, 'the long-poll for partition 0');
      fetcher.addPartition(second, 0);
      await waitFor(() => requests.some((partitions) => partitions.includes(1)), 'a fetch that carries partition 1');
      expect(abandoned).toBe(1);
      // No backoff was taken for the abandoned call: partition 0 is fetched along with partition 1.
      expect(requests.at(-1)).toEqual([0, 1]);
    } finally {
      await fetcher.stop();
      await secondLog.close();
    }
  });

  it('retries soon, not after replica.fetch.backoff.ms, while the new leader has not applied its election yet', async () => {
    const partition = await Partition.open({ topic: 't', topicId: 'id', partitionId: 0, log, minInsyncReplicas: 1 });
    partition.role = { kind: 'follower', leaderId: 9, leaderEpoch: 1 };
    // The leader learns of its election from the metadata log after this follower did: its first
    // two answers say it does not lead epoch 1 yet.
    const answers: string[] = [];
    const endpoint: LeaderEndpoint = {
      offsetForLeaderEpoch: async (request: OffsetForLeaderEpochRequest) =>
        request.partitions.map((item) => ({ topic: item.topic, partition: item.partition, errorCode: 'NONE', errorMessage: '', leaderEpoch: 1, endOffset: 0 })),
      fetch: async (request: FetchRequest) => {
        const item = request.partitions[0]!;
        const behind = answers.length < 2;
        answers.push(behind ? 'NOT_LEADER_OR_FOLLOWER' : 'NONE');
        if (!behind && item.fetchOffset > 0) await new Promise((resolve) => setTimeout(resolve, 20)); // a long-poll with nothing new
        return [
          {
            topic: item.topic,
            partition: item.partition,
            errorCode: behind ? 'NOT_LEADER_OR_FOLLOWER' : 'NONE',
            errorMessage: '',
            highWatermark: 3,
            lastStableOffset: 3,
            logStartOffset: 0,
            divergingEpoch: undefined,
            currentLeader: undefined,
            records: behind || item.fetchOffset > 0 ? Buffer.alloc(0) : storedBatch(0, 1, 3, 'e1'),
          },
        ];
      },
      close: () => undefined,
    };
    const fetcher = new ReplicaFetcher({
      localBrokerId: 1,
      sourceBrokerId: 9,
      endpoint,
      // A backoff far beyond the test's deadline: only the short catch-up retry lets this pass.
      config: { fetchWaitMaxMs: 20, fetchMinBytes: 1, fetchMaxBytes: 1 << 20, fetchResponseMaxBytes: 1 << 20, fetchBackoffMs: 60_000, requestTimeoutMs: 1_000 },
      clock: systemClock,
      timers: systemTimers,
      logger: silent,
    });
    try {
      fetcher.addPartition(partition, 1);
      await waitFor(() => log.logEndOffset === 3, 'the follower to copy the new leader\'s records');
      expect(answers.slice(0, 3)).toEqual(['NOT_LEADER_OR_FOLLOWER', 'NOT_LEADER_OR_FOLLOWER', 'NONE']);
    } finally {
      await fetcher.stop();
    }
  });
});
