// Replication between in-process brokers over their RaftkaClient gRPC listeners, with metadata
// driven by committed records as the controller would write them: acks, high watermark, ISR
// shrink and expand through AlterPartition, min.insync.replicas, and leader change with KIP-101 /
// KIP-279 truncation.

import { afterEach, describe, expect, it } from 'vitest';
import { batchesIn, decodeRecordBatchSync } from '@raftka/protocol';
import { TestCluster, batch, waitFor } from './cluster-fixture.js';

function keysOf(records: Buffer): string[] {
  const keys: string[] = [];
  for (const { position } of batchesIn(records, 0, { verifyCrc: true })) {
    for (const record of decodeRecordBatchSync(records, position).records) keys.push(record.key!.toString());
  }
  return keys;
}

/** Every record of a replica's log (read straight from the log, past any HW). */
async function logKeys(cluster: TestCluster, brokerId: number, topic: string): Promise<string[]> {
  const log = cluster.broker(brokerId).replicaManager.logManager.getLog(topic, 0)!;
  const { records } = await log.read(log.logStartOffset, { maxBytes: 10 * 1024 * 1024 });
  return keysOf(records);
}

let cluster: TestCluster | undefined;

afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

async function threeBrokers(minInsyncReplicas = 2): Promise<TestCluster> {
  cluster = await TestCluster.create();
  for (const id of [1, 2, 3]) await cluster.startBroker(id);
  await cluster.createTopic('orders', [[1, 2, 3]], { 'min.insync.replicas': String(minInsyncReplicas) });
  return cluster;
}

describe('replication on RF 3', () => {
  it('answers acks=all only once every ISR member has the batch, and acks=1 after the leader append', async () => {
    const c = await threeBrokers();
    const leader = c.broker(1);
    const first = await leader.client.produce({ topic: 'orders', records: batch('a', 3), acks: -1 });
    expect(first).toMatchObject({ code: 'NONE', baseOffset: 0 });
    // The answer came after the HW passed the batch: both followers hold it already.
    for (const id of [2, 3]) expect(c.broker(id).replicaManager.replicaStatus('orders', 0)!.logEndOffset).toBeGreaterThanOrEqual(3);
    expect(leader.replicaManager.replicaStatus('orders', 0)).toMatchObject({ role: 'leader', highWatermark: 3, isr: [1, 2, 3] });

    const second = await leader.client.produce({ topic: 'orders', records: batch('b', 2), acks: 1 });
    expect(second).toMatchObject({ code: 'NONE', baseOffset: 3 });
    await waitFor(() => [1, 2, 3].every((id) => c.broker(id).replicaManager.replicaStatus('orders', 0)!.highWatermark === 5), 'HW 5 on every replica');
    for (const id of [1, 2, 3]) expect(await logKeys(c, id, 'orders')).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1']);
    // Followers stamp nothing of their own: the leader epoch of every batch is the leader's.
    const follower = c.broker(2).replicaManager.logManager.getLog('orders', 0)!;
    expect(follower.epochEntries).toEqual([{ epoch: 0, startOffset: 0 }]);
  });

  it('never lets consumers read past the HW, and a long-poll returns when data arrives or after max wait', async () => {
    const c = await threeBrokers();
    const leader = c.broker(1);
    await leader.client.produce({ topic: 'orders', records: batch('a', 2), acks: -1 });
    await c.stopBroker(2);
    await c.stopBroker(3);
    // Appended on the leader only: the ISR still names 2 and 3, so the HW stays at 2.
    expect(await leader.client.produce({ topic: 'orders', records: batch('tail', 2), acks: 1 })).toMatchObject({ code: 'NONE', baseOffset: 2 });
    expect(leader.replicaManager.replicaStatus('orders', 0)).toMatchObject({ logEndOffset: 4, highWatermark: 2 });
    const read = await leader.client.fetch({ topic: 'orders', offset: 0 });
    expect(read.highWatermark).toBe(2);
    expect(keysOf(read.records)).toEqual(['a-0', 'a-1']);
    const latest = await leader.client.call('ListOffsets', { replicaId: -1, topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1 }] }] });
    expect(latest.topics[0].partitions[0].offset).toBe(2);

    // Nothing readable at the HW: the long-poll waits its max wait, then answers empty.
    const started = Date.now();
    const empty = await leader.client.fetch({ topic: 'orders', offset: 2, maxWaitMs: 300 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(empty).toMatchObject({ code: 'NONE', highWatermark: 2 });
    expect(empty.records.length).toBe(0);

    // A consumer parked at the HW is answered as soon as the followers catch up and move it.
    const parked = leader.client.fetch({ topic: 'orders', offset: 2, maxWaitMs: 15_000 });
    const parkedAt = Date.now();
    await c.startBroker(2);
    await c.startBroker(3);
    const woken = await parked;
    expect(Date.now() - parkedAt).toBeLessThan(10_000);
    expect(keysOf(woken.records)).toEqual(['tail-0', 'tail-1']);
    expect(woken.highWatermark).toBe(4);
  });

  it('removes a stopped follower from the ISR through AlterPartition and adds it back once caught up', async () => {
    const c = await threeBrokers();
    const leader = c.broker(1);
    await leader.client.produce({ topic: 'orders', records: batch('a'), acks: -1 });
    await c.stopBroker(3);
    // A follower at the leader's end is in sync however long it is silent (Kafka's isCaughtUp):
    // it falls behind only once the leader appends more.
    expect(await leader.client.produce({ topic: 'orders', records: batch('b', 5), acks: 1 })).toMatchObject({ code: 'NONE', baseOffset: 1 });
    await waitFor(() => c.partitionState('orders').isr.length === 2, 'broker 3 leaves the ISR');
    expect(c.partitionState('orders').isr).toEqual([1, 2]);
    await waitFor(() => leader.replicaManager.replicaStatus('orders', 0)!.isr.length === 2, 'the leader sees the committed ISR');
    // acks=all now needs only 1 and 2.
    expect(await leader.client.produce({ topic: 'orders', records: batch('c'), acks: -1 })).toMatchObject({ code: 'NONE', baseOffset: 6 });

    await c.startBroker(3);
    await waitFor(() => c.partitionState('orders').isr.length === 3, 'broker 3 rejoins the ISR');
    expect([...c.partitionState('orders').isr].sort()).toEqual([1, 2, 3]);
    expect(await logKeys(c, 3, 'orders')).toEqual(['a-0', 'b-0', 'b-1', 'b-2', 'b-3', 'b-4', 'c-0']);
  });

  it('refuses acks=all with NOT_ENOUGH_REPLICAS, appending nothing, when the ISR is below min.insync.replicas', async () => {
    const c = await threeBrokers(2);
    const leader = c.broker(1);
    await leader.client.produce({ topic: 'orders', records: batch('a'), acks: -1 });
    await c.stopBroker(2);
    await c.stopBroker(3);
    await leader.client.produce({ topic: 'orders', records: batch('unreplicated'), acks: 1 });
    await waitFor(() => leader.replicaManager.replicaStatus('orders', 0)!.isr.length === 1, 'the ISR shrinks to the leader');
    const before = leader.replicaManager.replicaStatus('orders', 0)!.logEndOffset;
    const refused = await leader.client.produce({ topic: 'orders', records: batch('refused'), acks: -1 });
    expect(refused.code).toBe('NOT_ENOUGH_REPLICAS');
    expect(refused.baseOffset).toBe(-1);
    expect(leader.replicaManager.replicaStatus('orders', 0)!.logEndOffset).toBe(before);
    // acks=1 does not need the ISR.
    expect((await leader.client.produce({ topic: 'orders', records: batch('one'), acks: 1 })).code).toBe('NONE');
  });

  it('times an acks=all produce out with REQUEST_TIMED_OUT while a follower in the ISR does not fetch', async () => {
    const c = await threeBrokers();
    const leader = c.broker(1);
    await c.stopBroker(3);
    // Within replica.lag.time.max.ms broker 3 is still in the ISR, so the HW cannot pass the batch.
    const timedOut = await leader.client.produce({ topic: 'orders', records: batch('slow'), acks: -1, timeoutMs: 200 });
    expect(timedOut.code).toBe('REQUEST_TIMED_OUT');
  });
});

describe('leader change', () => {
  it('answers a waiting acks=all produce with NOT_LEADER_OR_FOLLOWER when leadership moves before it is replicated', async () => {
    const c = await threeBrokers();
    await c.stopBroker(3);
    const waiting = c.broker(1).client.produce({ topic: 'orders', records: batch('pending'), acks: -1, timeoutMs: 15_000 });
    await waitFor(() => c.broker(1).replicaManager.replicaStatus('orders', 0)!.logEndOffset === 1, 'the leader appends the batch');
    const movedAt = Date.now();
    await c.changePartition('orders', 0, { leader: 2, isr: [1, 2] });
    const answer = await waiting;
    expect(answer).toMatchObject({ code: 'NOT_LEADER_OR_FOLLOWER', leaderId: 2 });
    expect(Date.now() - movedAt).toBeLessThan(5_000);
  });

  it('truncates the old leader\'s unreplicated tail by OffsetForLeaderEpoch (KIP-101/KIP-279) and loses no acks=all record', async () => {
    const c = await threeBrokers();
    expect((await c.broker(1).client.produce({ topic: 'orders', records: batch('acked', 3), acks: -1 })).code).toBe('NONE');
    // Followers stop; the leader takes an acks=1 batch nobody else has.
    await c.stopBroker(2);
    await c.stopBroker(3);
    expect(await c.broker(1).client.produce({ topic: 'orders', records: batch('lost', 2), acks: 1 })).toMatchObject({ code: 'NONE', baseOffset: 3 });
    // The leader dies; the controller elects broker 2 from the ISR (leader epoch 1).
    await c.stopBroker(1);
    await c.changePartition('orders', 0, { leader: 2, isr: [2, 3] });
    expect(c.partitionState('orders')).toMatchObject({ leader: 2, leaderEpoch: 1 });
    await c.startBroker(2);
    await c.startBroker(3);
    await waitFor(() => c.broker(2).replicaManager.replicaStatus('orders', 0)?.role === 'leader', 'broker 2 leads');
    expect(await c.broker(2).client.produce({ topic: 'orders', records: batch('new', 2), acks: -1 })).toMatchObject({ code: 'NONE', baseOffset: 3 });

    // The old leader returns as a follower: its epoch-0 tail [3, 5) diverges from the leader's
    // epoch 1, which starts at 3, so it truncates to 3 (not to its HW) and fetches the new batch.
    await c.startBroker(1);
    await waitFor(async () => (await logKeys(c, 1, 'orders')).length === 5 && c.partitionState('orders').isr.length === 3, 'broker 1 catches up and rejoins');
    const expected = ['acked-0', 'acked-1', 'acked-2', 'new-0', 'new-1'];
    for (const id of [1, 2, 3]) expect(await logKeys(c, id, 'orders')).toEqual(expected);
    expect(c.broker(1).replicaManager.logManager.getLog('orders', 0)!.epochEntries).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 1, startOffset: 3 },
    ]);
    // The old leader now refuses produces: leadership comes from the metadata log only.
    const refused = await c.broker(1).client.produce({ topic: 'orders', records: batch('stale'), acks: 1 });
    expect(refused).toMatchObject({ code: 'NOT_LEADER_OR_FOLLOWER', leaderId: 2 });
  });

  it('reconciles a replica holding an epoch the new leader never had (KIP-279) without losing acks=all records', async () => {
    const c = await threeBrokers(1);
    expect((await c.broker(1).client.produce({ topic: 'orders', records: batch('e0', 2), acks: -1 })).code).toBe('NONE');
    // Epoch 1: broker 2 leads and writes a batch only it holds (3 is stopped, 1 is gone).
    await c.stopBroker(1);
    await c.stopBroker(3);
    await c.changePartition('orders', 0, { leader: 2, isr: [2, 3] });
    await waitFor(() => c.broker(2).replicaManager.replicaStatus('orders', 0)?.role === 'leader', 'broker 2 leads epoch 1');
    expect(await c.broker(2).client.produce({ topic: 'orders', records: batch('e1', 3), acks: 1 })).toMatchObject({ code: 'NONE', baseOffset: 2 });
    // Epoch 2: broker 2 dies, broker 3 (in the ISR, without the epoch-1 batch) is elected.
    await c.stopBroker(2);
    await c.changePartition('orders', 0, { leader: 3, isr: [3] });
    await c.startBroker(3);
    await waitFor(() => c.broker(3).replicaManager.replicaStatus('orders', 0)?.role === 'leader', 'broker 3 leads epoch 2');
    expect(await c.broker(3).client.produce({ topic: 'orders', records: batch('e2', 1), acks: -1 })).toMatchObject({ code: 'NONE', baseOffset: 2 });
    // Broker 2 asks where epoch 1 ends; the leader never had epoch 1 and answers epoch 0 ending
    // at 2, so broker 2 drops its epoch-1 batch and copies the epoch-2 one.
    await c.startBroker(2);
    await c.startBroker(1);
    const expected = ['e0-0', 'e0-1', 'e2-0'];
    await waitFor(async () => (await logKeys(c, 2, 'orders')).join() === expected.join() && (await logKeys(c, 1, 'orders')).join() === expected.join(), 'replicas converge');
    expect(c.broker(2).replicaManager.logManager.getLog('orders', 0)!.epochEntries).toEqual([
      { epoch: 0, startOffset: 0 },
      { epoch: 2, startOffset: 2 },
    ]);
    await waitFor(() => c.partitionState('orders').isr.length === 3, 'both rejoin the ISR');
  });

  it('answers a follower whose last fetched epoch diverges with the epoch end offset (KIP-320)', async () => {
    const c = await threeBrokers();
    await c.broker(1).client.produce({ topic: 'orders', records: batch('a', 2), acks: -1 });
    await c.stopBroker(1);
    await c.changePartition('orders', 0, { leader: 2, isr: [2, 3] });
    await waitFor(() => c.broker(2).replicaManager.replicaStatus('orders', 0)?.role === 'leader', 'broker 2 leads');
    await c.broker(2).client.produce({ topic: 'orders', records: batch('b', 1), acks: -1 });
    // A replica claiming epoch 0 records up to offset 4 diverges: epoch 0 ends at 2 here.
    const diverged = await c.broker(2).client.fetch({ topic: 'orders', offset: 4, replicaId: 3, lastFetchedEpoch: 0, currentLeaderEpoch: 1 });
    expect(diverged.code).toBe('NONE');
    expect(diverged.divergingEpoch).toEqual({ epoch: 0, endOffset: 2 });
    expect(diverged.records.length).toBe(0);
    const epochs = await c.broker(2).client.call('OffsetForLeaderEpoch', {
      replicaId: 3,
      topics: [{ topic: 'orders', partitions: [{ partition: 0, currentLeaderEpoch: 1, leaderEpoch: 0 }, { partition: 0, currentLeaderEpoch: 0, leaderEpoch: 0 }] }],
    });
    expect(epochs.topics[0].partitions[0]).toMatchObject({ errorCode: 0, leaderEpoch: 0, endOffset: 2 });
    expect(epochs.topics[0].partitions[1]).toMatchObject({ errorCode: 74 }); // FENCED_LEADER_EPOCH
  });
});

describe('acknowledged records survive a leader failure', () => {
  it('keeps every acks=all record, in acknowledgement order, on every replica after the leader dies under load', async () => {
    const c = await threeBrokers(2);
    const acked: string[] = [];
    let sequence = 0;
    let stop = false;
    const produceLoop = (async () => {
      while (!stop) {
        const key = `r${sequence++}`;
        const leader = c.brokers.get(c.partitionState('orders').leader);
        if (leader === undefined) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          continue;
        }
        try {
          const response = await leader.client.produce({ topic: 'orders', records: batch(key), acks: -1, timeoutMs: 2_000 });
          if (response.code === 'NONE') acked.push(`${key}-0`);
        } catch {
          // The leader went away mid-request: the record may or may not be stored, never acked.
        }
      }
    })();
    await waitFor(() => acked.length >= 20, '20 acknowledged records');
    // The leader dies; the controller elects another ISR member (what fencing would trigger).
    await c.stopBroker(1);
    const isr = c.partitionState('orders').isr.filter((id) => id !== 1);
    await c.changePartition('orders', 0, { leader: isr[0]!, isr });
    await waitFor(() => acked.length >= 40, '20 more acknowledged records from the new leader');
    await c.startBroker(1);
    await waitFor(() => acked.length >= 60 && c.partitionState('orders').isr.length === 3, 'the old leader rejoins under load');
    stop = true;
    await produceLoop;
    const leaderId = c.partitionState('orders').leader;
    const end = c.broker(leaderId).replicaManager.replicaStatus('orders', 0)!.logEndOffset;
    await waitFor(() => [1, 2, 3].every((id) => c.broker(id).replicaManager.replicaStatus('orders', 0)!.logEndOffset === end), 'replicas converge');
    const logs = await Promise.all([1, 2, 3].map((id) => logKeys(c, id, 'orders')));
    expect(logs[1]).toEqual(logs[0]);
    expect(logs[2]).toEqual(logs[0]);
    // Every acknowledged record is there, in the order it was acknowledged.
    const positions = acked.map((key) => logs[0]!.indexOf(key));
    expect(positions.every((position) => position >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });
});

describe('replica lifecycle', () => {
  it('restores the high watermark from its checkpoint when a leader restarts while a follower is down', async () => {
    const c = await threeBrokers();
    expect((await c.broker(1).client.produce({ topic: 'orders', records: batch('a', 3), acks: -1 })).code).toBe('NONE');
    await c.stopBroker(3);
    await c.stopBroker(1);
    await c.startBroker(1);
    await waitFor(() => c.broker(1).replicaManager.replicaStatus('orders', 0)?.role === 'leader', 'broker 1 leads again');
    // Broker 3 is still in the ISR and not fetching, so the HW cannot move: only the checkpoint
    // lets consumers see the committed records (and ListOffsets answer the committed end).
    expect(c.broker(1).replicaManager.replicaStatus('orders', 0)!.highWatermark).toBe(3);
    expect(keysOf((await c.broker(1).client.fetch({ topic: 'orders', offset: 0 })).records)).toEqual(['a-0', 'a-1', 'a-2']);
  });

  it('stops a follower at once even while its fetch is parked on the leader', async () => {
    cluster = await TestCluster.create({ replicaLagTimeMaxMs: 30_000, fetcher: { fetchWaitMaxMs: 20_000 } });
    const c = cluster;
    await c.startBroker(1);
    await c.startBroker(2);
    await c.createTopic('quiet', [[1, 2]]);
    expect((await c.broker(1).client.produce({ topic: 'quiet', records: batch('a'), acks: -1 })).code).toBe('NONE');
    // The follower's next fetch now waits up to 20 s on the leader for new records.
    const started = Date.now();
    await c.stopBroker(2);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('stops and deletes the replicas of a deleted topic on every broker', async () => {
    const c = await threeBrokers();
    await c.broker(1).client.produce({ topic: 'orders', records: batch('a'), acks: -1 });
    const dirs = [1, 2, 3].map((id) => c.broker(id).replicaManager.logManager.getLog('orders', 0)!.dir);
    const topicId = c.controller.image.topicIdsByName.get('orders')!;
    await c.commit([{ type: 'removeTopic', topicId }]);
    for (const id of [1, 2, 3]) expect(c.broker(id).replicaManager.replicaStatus('orders', 0)).toBeUndefined();
    const { existsSync } = await import('node:fs');
    for (const dir of dirs) expect(existsSync(dir)).toBe(false);
    expect((await c.broker(1).client.produce({ topic: 'orders', records: batch('late'), acks: 1 })).code).toBe('UNKNOWN_TOPIC_OR_PARTITION');
  });
});

describe('idempotent producer retries under acks=all', () => {
  it('answers a retry of a still uncommitted batch only once the high watermark passes it', async () => {
    // The followers are gone but still in the ISR (long lag time): nothing commits. The first
    // attempt times out; its retry is a duplicate and must not be acknowledged either, or a new
    // leader that never had the batch would drop an acknowledged record.
    cluster = await TestCluster.create({ replicaLagTimeMaxMs: 60_000 });
    const c = cluster;
    for (const id of [1, 2, 3]) await c.startBroker(id);
    await c.createTopic('orders', [[1, 2, 3]], { 'min.insync.replicas': '2' });
    const producerId = 777;
    expect(await c.broker(1).client.produce({ topic: 'orders', records: batch('a', 1, { producerId, baseSequence: 0 }), acks: -1 })).toMatchObject({ code: 'NONE', baseOffset: 0 });
    await c.stopBroker(2);
    await c.stopBroker(3);
    const retried = batch('b', 1, { producerId, baseSequence: 1 });
    expect((await c.broker(1).client.produce({ topic: 'orders', records: retried, acks: -1, timeoutMs: 200 })).code).toBe('REQUEST_TIMED_OUT');
    expect((await c.broker(1).client.produce({ topic: 'orders', records: retried, acks: -1, timeoutMs: 200 })).code).toBe('REQUEST_TIMED_OUT');
    // acks=1 asks only for the leader's copy: the duplicate is answered at once with its offset.
    expect(await c.broker(1).client.produce({ topic: 'orders', records: retried, acks: 1 })).toMatchObject({ code: 'NONE', baseOffset: 1 });
    // Once the whole ISR has fetched it, the batch is committed and the retry is acknowledged.
    await c.startBroker(2);
    await c.startBroker(3);
    expect(await c.broker(1).client.produce({ topic: 'orders', records: retried, acks: -1, timeoutMs: 10_000 })).toMatchObject({ code: 'NONE', baseOffset: 1 });
  });
});

describe('idempotent producer state across restarts', () => {
  it('remembers sequences after a clean restart (from its snapshot) and on a new leader (from replication)', async () => {
    const c = await threeBrokers(1);
    const producerId = 4242;
    const first = await c.broker(1).client.produce({ topic: 'orders', records: batch('p', 2, { producerId, baseSequence: 0 }), acks: -1 });
    expect(first).toMatchObject({ code: 'NONE', baseOffset: 0 });
    await c.broker(1).client.produce({ topic: 'orders', records: batch('plain'), acks: -1 });
    const dir = c.broker(1).replicaManager.logManager.getLog('orders', 0)!.dir;
    await c.stopBroker(1);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(dir).filter((name) => name.endsWith('.snapshot'))).toEqual(['00000000000000000003.snapshot']);
    // Meanwhile broker 2 leads: it learned the producer's sequences by replication.
    await c.changePartition('orders', 0, { leader: 2, isr: [2, 3] });
    await waitFor(() => c.broker(2).replicaManager.replicaStatus('orders', 0)?.role === 'leader', 'broker 2 leads');
    expect(await c.broker(2).client.produce({ topic: 'orders', records: batch('p', 2, { producerId, baseSequence: 0 }), acks: -1 })).toMatchObject({ code: 'NONE', baseOffset: 0 });
    expect((await c.broker(2).client.produce({ topic: 'orders', records: batch('p', 1, { producerId, baseSequence: 3 }), acks: -1 })).code).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
    // Broker 1 restarts, follows, and leads again: the retried batch is still a duplicate.
    await c.startBroker(1);
    await waitFor(() => c.partitionState('orders').isr.length === 3, 'broker 1 rejoins the ISR');
    await c.changePartition('orders', 0, { leader: 1 });
    await waitFor(() => c.broker(1).replicaManager.replicaStatus('orders', 0)?.role === 'leader', 'broker 1 leads again');
    expect(await c.broker(1).client.produce({ topic: 'orders', records: batch('p', 2, { producerId, baseSequence: 0 }), acks: -1 })).toMatchObject({ code: 'NONE', baseOffset: 0 });
    expect(await c.broker(1).client.produce({ topic: 'orders', records: batch('p', 1, { producerId, baseSequence: 2 }), acks: -1 })).toMatchObject({ code: 'NONE', baseOffset: 3 });
  });
});
