// Replication on real processes: 3 controllers + 3 brokers (`raftka server`) on loopback, driven
// through the SDK as an application would. A topic with RF 3 and min.insync.replicas=2:
//   - acks=all survives a SIGKILLed partition leader: every acknowledged record is read back
//     exactly once and in order (the idempotent producer's retries add no duplicates);
//   - with two brokers down, acks=all is refused with NOT_ENOUGH_REPLICAS and nothing is
//     appended; writes resume when they return;
//   - a SIGSTOPped follower leaves the ISR after replica.lag.time.max.ms and rejoins after SIGCONT;
//   - acks=1 has a window in which acknowledged records are lost (shown, not hidden), and the
//     old leader returning with that diverged tail truncates it;
//   - consumers never see an offset at or above the high watermark.

import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { Admin, Consumer, Producer, type ConsumerRecord } from '@raftka/client';
import { ProcessCluster, waitFor } from '../support/process-cluster.js';

const SESSION_TIMEOUT_MS = 3_000;
const LAG_TIME_MAX_MS = 2_000;

let cluster: ProcessCluster | undefined;
const closers: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  // Servers first: clients then fail fast instead of waiting on a paused broker.
  await cluster?.destroy();
  cluster = undefined;
  // A client still holding records for a dead cluster must not keep the suite waiting.
  for (const close of closers.splice(0).reverse()) {
    await Promise.race([close().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS_MAX).unref())]);
  }
});

const CLOSE_WAIT_MS_MAX = 5_000;

/** Short request deadlines: a paused broker must cost the clients seconds, not the default 30 s. */
const REQUEST_TIMEOUT_MS = 2_000;

async function startCluster(): Promise<{ current: ProcessCluster; admin: Admin }> {
  cluster = await ProcessCluster.create({
    voters: 3,
    brokers: 3,
    properties: {
      'broker.session.timeout.ms': String(SESSION_TIMEOUT_MS),
      'broker.heartbeat.interval.ms': '500',
      'replica.lag.time.max.ms': String(LAG_TIME_MAX_MS),
      'replica.fetch.wait.max.ms': '200',
    },
  });
  const current = cluster;
  onTestFailed(() => current.printLogs());
  current.startAll();
  const admin = new Admin({ bootstrapServers: current.bootstrapServers, requestTimeoutMs: REQUEST_TIMEOUT_MS });
  closers.push(() => admin.close());
  await waitFor('3 live brokers', async () => (await admin.describeCluster()).brokers.length === 3, 30_000);
  return { current, admin };
}

async function createTopic(admin: Admin, topic: string, partitions = 1): Promise<void> {
  await admin.createTopics([{ topic, numPartitions: partitions, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } }]);
  await waitFor(`${topic} to have leaders and a full ISR`, async () => {
    const [description] = await admin.describeTopics([topic]);
    return description!.partitions.every((partition) => partition.leader >= 0 && partition.isr.length === 3);
  });
}

async function partitionState(admin: Admin, topic: string, partition = 0): Promise<{ leader: number; isr: readonly number[]; leaderEpoch: number }> {
  const [description] = await admin.describeTopics([topic]);
  return description!.partitions.find((candidate) => candidate.partition === partition)!;
}

async function readAll(
  current: ProcessCluster,
  topic: string,
  expected: number | ((records: ConsumerRecord[]) => boolean),
  partitions = [0],
): Promise<ConsumerRecord[]> {
  const consumer = new Consumer({ bootstrapServers: current.bootstrapServers, autoOffsetReset: 'earliest', requestTimeoutMs: REQUEST_TIMEOUT_MS });
  closers.push(() => consumer.close());
  consumer.assign(partitions.map((partition) => ({ topic, partition })));
  const records: ConsumerRecord[] = [];
  const done = typeof expected === 'number' ? (read: ConsumerRecord[]) => read.length >= expected : expected;
  await waitFor(`the expected records of ${topic}`, async () => {
    records.push(...(await consumer.poll({ timeoutMs: 200 })));
    return done(records);
  }, 30_000);
  // Nothing beyond: poll once more briefly.
  records.push(...(await consumer.poll({ timeoutMs: 300 })));
  await consumer.close();
  return records;
}

describe('replication of real processes', () => {
  it('acks=all keeps every acknowledged record, exactly once and in order, while the leader is SIGKILLed', async () => {
    const { current, admin } = await startCluster();
    await createTopic(admin, 'orders');
    const producer = new Producer({ bootstrapServers: current.bootstrapServers, acks: -1, lingerMs: 2, requestTimeoutMs: REQUEST_TIMEOUT_MS, deliveryTimeoutMs: 60_000, retryBackoffMs: 50 });
    closers.push(() => producer.close());
    const before = await partitionState(admin, 'orders');
    const acknowledged: number[] = [];
    const failures: string[] = [];
    let killed = false;
    const total = 600;
    const inFlight = new Set<Promise<void>>();
    for (let sequence = 0; sequence < total; sequence++) {
      const sent = producer
        .send({ topic: 'orders', messages: [{ key: 'order', value: String(sequence) }] })
        .then(
          () => void acknowledged.push(sequence),
          (error: Error) => void failures.push(`${sequence}: ${error.message}`),
        )
        .finally(() => inFlight.delete(sent));
      inFlight.add(sent);
      if (inFlight.size >= 20) await Promise.race(inFlight);
      if (sequence === total / 3 && !killed) {
        killed = true;
        await current.broker(before.leader).stop('SIGKILL');
      }
    }
    await Promise.all(inFlight);
    expect(failures).toEqual([]);
    const after = await partitionState(admin, 'orders');
    expect(after.leader).not.toBe(before.leader);
    expect(before.isr).toContain(after.leader);
    expect(after.leaderEpoch).toBeGreaterThan(before.leaderEpoch);

    const records = await readAll(current, 'orders', total);
    const values = records.map((record) => Number(record.value!.toString()));
    // Exactly once (no duplicates from retries) and in the order sent (one key, one partition).
    expect(values).toEqual(Array.from({ length: total }, (_, index) => index));
    expect(new Set(acknowledged).size).toBe(total);
    const offsets = records.map((record) => record.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  });

  it('refuses acks=all with NOT_ENOUGH_REPLICAS when two brokers are down, appends nothing, and resumes when they return', async () => {
    const { current, admin } = await startCluster();
    await createTopic(admin, 'payments');
    const producer = new Producer({ bootstrapServers: current.bootstrapServers, acks: -1, requestTimeoutMs: REQUEST_TIMEOUT_MS, deliveryTimeoutMs: 3_000, retryBackoffMs: 100 });
    closers.push(() => producer.close());
    await producer.send({ topic: 'payments', messages: [{ value: 'before' }] });
    const { leader } = await partitionState(admin, 'payments');
    const followers = current.brokers.filter((broker) => broker.nodeId !== leader);
    for (const follower of followers) await follower.stop('SIGKILL');
    // The controller fences them after the session timeout and shrinks the ISR to the leader.
    await waitFor('the ISR to shrink to the leader', async () => (await partitionState(admin, 'payments')).isr.length === 1, SESSION_TIMEOUT_MS + 15_000);
    // Without retries the broker's own answer reaches the caller (with retries, the producer
    // keeps trying until delivery.timeout.ms and then reports the timeout, as Kafka's does).
    const impatient = new Producer({ bootstrapServers: current.bootstrapServers, acks: -1, retries: 0, enableIdempotence: false, requestTimeoutMs: REQUEST_TIMEOUT_MS, deliveryTimeoutMs: 3_000 });
    closers.push(() => impatient.close());
    await expect(impatient.send({ topic: 'payments', messages: [{ value: 'refused' }] })).rejects.toMatchObject({ code: 'NOT_ENOUGH_REPLICAS' });
    const [end] = await admin.listOffsets([{ topic: 'payments', partition: 0, spec: 'latest' }]);
    expect(end!.offset).toBe(1);

    for (const follower of followers) follower.start();
    await waitFor('the followers to rejoin the ISR', async () => (await partitionState(admin, 'payments')).isr.length >= 2, 30_000);
    await producer.send({ topic: 'payments', messages: [{ value: 'after' }] });
    const records = await readAll(current, 'payments', 2);
    expect(records.map((record) => record.value!.toString())).toEqual(['before', 'after']);
  });

  it('drops a SIGSTOPped follower from the ISR after replica.lag.time.max.ms and takes it back after SIGCONT; consumers stay below the high watermark', async () => {
    const { current, admin } = await startCluster();
    await createTopic(admin, 'events');
    const producer = new Producer({ bootstrapServers: current.bootstrapServers, acks: -1, requestTimeoutMs: REQUEST_TIMEOUT_MS, deliveryTimeoutMs: 30_000 });
    closers.push(() => producer.close());
    const { leader } = await partitionState(admin, 'events');
    const follower = current.brokers.find((broker) => broker.nodeId !== leader)!;
    follower.pause();
    const pausedAt = Date.now();
    // Writes continue (min.insync.replicas=2 is met by the other follower once the paused one is out).
    const writes = Array.from({ length: 50 }, (_, index) => producer.send({ topic: 'events', messages: [{ value: `e${index}` }] }));
    await waitFor('the paused follower to leave the ISR', async () => !(await partitionState(admin, 'events')).isr.includes(follower.nodeId), LAG_TIME_MAX_MS + 10_000);
    expect(Date.now() - pausedAt).toBeGreaterThanOrEqual(LAG_TIME_MAX_MS - 500);
    await Promise.all(writes);
    follower.resume();
    await waitFor('the resumed follower to rejoin the ISR', async () => (await partitionState(admin, 'events')).isr.includes(follower.nodeId), 30_000);

    const records = await readAll(current, 'events', 50);
    const [highWatermark] = await admin.listOffsets([{ topic: 'events', partition: 0, spec: 'latest' }]);
    expect(records).toHaveLength(50);
    for (const record of records) expect(record.offset).toBeLessThan(highWatermark!.offset);
  });

  it('acks=1 can lose acknowledged records when the leader dies first; the returning old leader truncates its diverged tail', async () => {
    const { current, admin } = await startCluster();
    await createTopic(admin, 'clicks');
    const { leader } = await partitionState(admin, 'clicks');
    const followers = current.brokers.filter((broker) => broker.nodeId !== leader);
    const producer = new Producer({ bootstrapServers: current.bootstrapServers, acks: 1, enableIdempotence: false, requestTimeoutMs: REQUEST_TIMEOUT_MS, deliveryTimeoutMs: 20_000 });
    closers.push(() => producer.close());
    await producer.send({ topic: 'clicks', messages: [{ value: 'replicated' }] });
    await waitFor('the first record on every replica', async () => (await admin.listOffsets([{ topic: 'clicks', partition: 0, spec: 'latest' }]))[0]!.offset === 1);
    // The window: followers frozen (still in the ISR until replica.lag.time.max.ms), the leader
    // acknowledges acks=1 writes alone, then dies.
    for (const follower of followers) follower.pause();
    // A follower may have a fetch parked at the leader when it is frozen: the first append
    // completes it, and the frozen follower finds that response in its socket when it resumes.
    // It cannot ask again while frozen, so everything after that first append stays on the leader.
    await producer.send({ topic: 'clicks', messages: [{ value: 'maybe-in-flight' }] });
    const acknowledged = await producer.send({ topic: 'clicks', messages: Array.from({ length: 5 }, (_, index) => ({ value: `only-on-leader-${index}` })) });
    expect(acknowledged.every((metadata) => metadata.offset >= 1)).toBe(true);
    await current.broker(leader).stop('SIGKILL');
    for (const follower of followers) follower.resume();
    await waitFor('a new leader', async () => {
      const state = await partitionState(admin, 'clicks');
      return state.leader >= 0 && state.leader !== leader;
    }, SESSION_TIMEOUT_MS + 15_000);
    const records = await readAll(current, 'clicks', 1);
    // The acknowledged acks=1 records are gone: the new leader never had them.
    const values = records.map((record) => record.value!.toString());
    expect(values[0]).toBe('replicated');
    expect(values.filter((value) => value.startsWith('only-on-leader'))).toEqual([]);

    // The old leader comes back with that diverged tail: it must truncate it (to the new leader's
    // end offset for its epoch, KIP-279), catch up and rejoin the ISR. Made leader again, it serves
    // the agreed history, not its lost records.
    current.broker(leader).start();
    await waitFor('the old leader to rejoin the ISR', async () => (await partitionState(admin, 'clicks')).isr.includes(leader), 30_000);
    const safe = new Producer({ bootstrapServers: current.bootstrapServers, acks: -1, requestTimeoutMs: REQUEST_TIMEOUT_MS, deliveryTimeoutMs: 20_000 });
    closers.push(() => safe.close());
    await safe.send({ topic: 'clicks', messages: [{ value: 'after-rejoin' }] });
    for (const follower of followers) await follower.stop('SIGKILL');
    await waitFor('the old leader to lead again', async () => (await partitionState(admin, 'clicks')).leader === leader, SESSION_TIMEOUT_MS + 15_000);
    const history = (await readAll(current, 'clicks', (read) => read.at(-1)?.value?.toString() === 'after-rejoin')).map((record) => record.value!.toString());
    // 'maybe-in-flight' may or may not have reached the new leader (and becomes visible only once
    // its high watermark passes it); the lost records never come back.
    expect(history.filter((value) => value !== 'maybe-in-flight')).toEqual(['replicated', 'after-rejoin']);
  });
});
