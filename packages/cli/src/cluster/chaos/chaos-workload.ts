// The chaos workload: idempotent producers with acks=all writing uniquely numbered records
// round-robin over the partitions (several keys each), every attempt and outcome recorded in the
// history; a consumer group reading them while the faults hit (every record handed to a member
// recorded); and the final read of every partition from its start to its high watermark.
//
// The load is open loop at a fixed rate (a record every `sendIntervalMs` per producer), so a
// stalled partition does not stop the writes to the others: each partition keeps getting fresh
// records, which is what lets the failover time be measured on every partition.

import { Consumer, Producer, type Admin } from '@raftka/client';
import { RaftkaError } from '@raftka/protocol';
import { recordValue, type HistoryRecorder } from './history.js';
import { pollUntil } from '../local-cluster.js';

/** Sends awaiting their outcome, per producer; beyond it the producer skips its turn (bounded memory). */
export const WORKLOAD_IN_FLIGHT_MAX = 5_000;
/** Keys per partition: records of one partition carry several keys. */
const KEYS_PER_PARTITION = 4;

export interface WorkloadOptions {
  bootstrapServers: readonly string[];
  topic: string;
  partitions: number;
  producers: number;
  sendIntervalMs: number;
  history: HistoryRecorder;
  /**
   * Deadline of one request. It bounds how long a request to a frozen (SIGSTOPped) leader hangs
   * before the producer refreshes its metadata and tries the new leader.
   */
  requestTimeoutMs: number;
  /** Bound of one record's delivery including retries: long, so that a failover never fails a send. */
  deliveryTimeoutMs: number;
  /** The producer's retry backoff, first and largest (retry.backoff.ms, retry.backoff.max.ms). */
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
}

export class ChaosWorkload {
  private readonly producers: Producer[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly inFlightPerProducer: number[];
  private readonly nextSeq: number[];
  /** Acknowledgements per partition (for "the load is flowing" conditions). */
  readonly acksPerPartition: number[];
  private stopped = false;

  constructor(private readonly options: WorkloadOptions) {
    this.inFlightPerProducer = Array.from({ length: options.producers }, () => 0);
    this.nextSeq = Array.from({ length: options.producers }, () => 0);
    this.acksPerPartition = Array.from({ length: options.partitions }, () => 0);
  }

  start(): void {
    for (let producerIndex = 0; producerIndex < this.options.producers; producerIndex++) {
      const producer = new Producer({
        bootstrapServers: [...this.options.bootstrapServers],
        clientId: `chaos-producer-${producerIndex}`,
        acks: -1,
        enableIdempotence: true,
        lingerMs: 1,
        retryBackoffMs: this.options.retryBackoffMs,
        retryBackoffMaxMs: this.options.retryBackoffMaxMs,
        requestTimeoutMs: this.options.requestTimeoutMs,
        deliveryTimeoutMs: this.options.deliveryTimeoutMs,
      });
      this.producers.push(producer);
      this.timers.push(setInterval(() => this.sendOne(producerIndex), this.options.sendIntervalMs));
    }
  }

  private sendOne(producerIndex: number): void {
    if (this.stopped || this.inFlightPerProducer[producerIndex]! >= WORKLOAD_IN_FLIGHT_MAX) return;
    const { history, topic, partitions } = this.options;
    const producer = this.producers[producerIndex]!;
    const seq = this.nextSeq[producerIndex]!++;
    // Producers start on different partitions so that every partition gets writes of every producer.
    const partition = (seq + producerIndex) % partitions;
    const key = `key-${partition}-${Math.floor(seq / partitions) % KEYS_PER_PARTITION}`;
    const value = recordValue(producerIndex, seq);
    history.record({ type: 'invoke', producer: producerIndex, seq, partition, key, value });
    this.inFlightPerProducer[producerIndex]!++;
    const sent = producer
      .send({ topic, messages: [{ key, value, partition }] })
      .then(
        ([metadata]) => {
          history.record({ type: 'ack', producer: producerIndex, seq, partition: metadata!.partition, offset: metadata!.offset });
          this.acksPerPartition[metadata!.partition]!++;
        },
        (error: unknown) => {
          const text = error instanceof RaftkaError ? `${error.code}: ${error.message}` : String((error as Error)?.message ?? error);
          history.record({ type: 'fail', producer: producerIndex, seq, partition, error: text });
        },
      )
      .finally(() => {
        this.inFlightPerProducer[producerIndex]!--;
        this.inFlight.delete(sent);
      });
    this.inFlight.add(sent);
  }

  /** Stops issuing records and waits for every outstanding send to be acknowledged or to fail. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    await Promise.all(this.producers.map((producer) => producer.close().catch(() => undefined)));
  }
}

/** How long one poll of a group member waits; it bounds how soon `stop` is noticed. */
const GROUP_POLL_TIMEOUT_MS = 200;

/**
 * A consumer group of `members` consumers subscribed to the topic (cooperative-sticky, auto
 * commit: the SDK's defaults), each recording what it is handed. They run from the start of the
 * load through every fault, so they live through rebalances, coordinator moves and leader
 * failovers; the checker then asks that every acknowledged record reached the group.
 */
export class ChaosGroup {
  private readonly consumers: Consumer[] = [];
  private readonly loops: Promise<void>[] = [];
  /** Per partition, the next offset the group has not been handed yet (the highest seen + 1). */
  readonly positions = new Map<number, number>();
  /** The last error each member's poll threw (a failover makes some; the loop goes on). */
  readonly lastErrors: string[] = [];
  private stopped = false;

  constructor(
    private readonly options: {
      bootstrapServers: readonly string[];
      topic: string;
      groupId: string;
      members: number;
      history: HistoryRecorder;
      requestTimeoutMs: number;
    },
  ) {}

  start(): void {
    for (let member = 0; member < this.options.members; member++) {
      const consumer = new Consumer({
        bootstrapServers: [...this.options.bootstrapServers],
        clientId: `chaos-member-${member}`,
        groupId: this.options.groupId,
        autoOffsetReset: 'earliest',
        requestTimeoutMs: this.options.requestTimeoutMs,
      });
      consumer.subscribe([this.options.topic]);
      this.consumers.push(consumer);
      this.loops.push(this.run(member, consumer));
    }
  }

  private async run(member: number, consumer: Consumer): Promise<void> {
    while (!this.stopped) {
      try {
        for (const record of await consumer.poll({ timeoutMs: GROUP_POLL_TIMEOUT_MS })) {
          const value = record.value === null ? null : record.value.toString('utf8');
          this.options.history.record({ type: 'consume', member, partition: record.partition, offset: record.offset, value });
          this.positions.set(record.partition, Math.max(this.positions.get(record.partition) ?? 0, record.offset + 1));
        }
      } catch (error) {
        // Retriable trouble during a failover (a coordinator moving, a rebalance): poll again.
        this.lastErrors[member] = error instanceof RaftkaError ? `${error.code}: ${error.message}` : String((error as Error)?.message ?? error);
        if (this.stopped) break;
        await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_TIMEOUT_MS));
      }
    }
  }

  /** Waits until the group has been handed every offset below `ends` (partition -> end offset), or the deadline; false then. */
  async waitCaughtUp(ends: ReadonlyMap<number, number>, timeoutMs: number): Promise<boolean> {
    return pollUntil('the consumer group to catch up', () => [...ends].every(([partition, end]) => end === 0 || (this.positions.get(partition) ?? 0) >= end), timeoutMs).then(
      () => true,
      () => false,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    await Promise.all(this.consumers.map((consumer) => consumer.close().catch(() => undefined)));
  }
}

/**
 * Reads every partition from its log start to its high watermark with an assign-mode consumer,
 * recording each record, then records each partition's high watermark (asked afterwards, so a
 * read at or above it is a real violation, not a race).
 */
export async function readBack(options: {
  admin: Admin;
  bootstrapServers: readonly string[];
  topic: string;
  partitions: number;
  history: HistoryRecorder;
  timeoutMs: number;
  requestTimeoutMs: number;
}): Promise<Map<number, number>> {
  const { admin, topic, history } = options;
  const partitions = Array.from({ length: options.partitions }, (_, partition) => ({ topic, partition }));
  const ends = await admin.listOffsets(partitions.map((tp) => ({ ...tp, spec: 'latest' as const })));
  const target = new Map(ends.map((end) => [end.partition, end.offset]));
  const consumer = new Consumer({ bootstrapServers: [...options.bootstrapServers], autoOffsetReset: 'earliest', requestTimeoutMs: options.requestTimeoutMs });
  try {
    consumer.assign(partitions);
    const nextOffset = new Map<number, number>(partitions.map((tp) => [tp.partition, 0]));
    await pollUntil(
      `the read of ${topic} up to its high watermarks`,
      async () => {
        for (const record of await consumer.poll({ timeoutMs: 200 })) {
          history.record({ type: 'read', partition: record.partition, offset: record.offset, value: record.value === null ? null : record.value.toString('utf8') });
          nextOffset.set(record.partition, Math.max(nextOffset.get(record.partition)!, record.offset + 1));
        }
        return partitions.every((tp) => nextOffset.get(tp.partition)! >= target.get(tp.partition)!);
      },
      options.timeoutMs,
    );
    // Anything past the target that a consumer could see is read too (and checked against the high watermark).
    for (const record of await consumer.poll({ timeoutMs: 100 })) {
      history.record({ type: 'read', partition: record.partition, offset: record.offset, value: record.value === null ? null : record.value.toString('utf8') });
    }
  } finally {
    await consumer.close().catch(() => undefined);
  }
  const after = await admin.listOffsets(partitions.map((tp) => ({ ...tp, spec: 'latest' as const })));
  for (const end of after) history.record({ type: 'high-watermark', partition: end.partition, highWatermark: end.offset });
  return new Map(after.map((end) => [end.partition, end.offset]));
}
