// The checker of a chaos history, after Jepsen's queue/total-queue checkers, for a log.
//
// Pure: it reads events, never the cluster. The final read covers every partition from its start
// to its high watermark, so what it saw is the log as consumers see it. Against that it reports:
//   - lost: acknowledged (acks=all) records that the read does not contain. With min.insync.replicas
//     replicas holding every acknowledged record and no unclean election, there must be none.
//   - duplicates: one value at more than one offset (an idempotent producer's retries must not
//     append twice; KIP-98 sequence numbers).
//   - inconsistent: an offset read with two different values, a record read at another offset or
//     partition than its acknowledgement said, or a value nobody wrote.
//   - order violations: within one partition, one producer's records out of their send order
//     (the idempotent producer keeps per-partition order even with 5 requests in flight).
//   - above the high watermark: a consumer saw an offset at or beyond the partition's high
//     watermark, i.e. a record not yet committed, which a leader change could still remove.
//   - group missed: the workload's consumer group (when it ran) was never handed an
//     acknowledged record (at-least-once delivery through rebalances, coordinator moves and
//     failovers). What the group consumed must also match the final read offset by offset
//     (else: inconsistent) and lie below the high watermark. Redeliveries are not duplicates.
// A record that was sent but neither acknowledged nor failed, or that failed, may or may not be
// in the log (indeterminate); either is correct.
//
// It also computes failover times: from each fault to the first acknowledged write, issued after
// the fault, on each partition.

import { assertNever } from '@raftka/protocol';
import type { FaultKind, HistoryEvent } from './history.js';

/** Violations of one kind kept in full; the counts stay exact beyond it. */
export const EXAMPLES_MAX = 20;

export interface LostRecord {
  value: string;
  partition: number;
  offset: number;
}

export interface DuplicateRecord {
  value: string;
  positions: { partition: number; offset: number }[];
}

export interface InconsistentOffset {
  partition: number;
  offset: number;
  reason: string;
}

export interface OrderViolation {
  partition: number;
  producer: number;
  offset: number;
  seq: number;
  previousSeq: number;
}

export interface AboveHighWatermark {
  partition: number;
  offset: number;
  highWatermark: number;
}

export interface GroupMissed {
  value: string;
  partition: number;
  offset: number;
}

export interface CheckCounts {
  attempted: number;
  acknowledged: number;
  failed: number;
  read: number;
  /** Records handed to the consumer group, redeliveries included (0: no group ran). */
  consumed: number;
  groupMissed: number;
  lost: number;
  duplicates: number;
  inconsistent: number;
  orderViolations: number;
  aboveHighWatermark: number;
}

export interface CheckResult {
  ok: boolean;
  counts: CheckCounts;
  /** Up to EXAMPLES_MAX of each kind. */
  lost: LostRecord[];
  duplicates: DuplicateRecord[];
  inconsistent: InconsistentOffset[];
  orderViolations: OrderViolation[];
  aboveHighWatermark: AboveHighWatermark[];
  groupMissed: GroupMissed[];
}

interface Invocation {
  producer: number;
  seq: number;
  partition: number;
}

function pushBounded<T>(list: T[], item: T): void {
  if (list.length < EXAMPLES_MAX) list.push(item);
}

export function checkHistory(events: readonly HistoryEvent[]): CheckResult {
  const invocations = new Map<string, Invocation>();
  const byProducerSeq = new Map<string, string>();
  const acknowledged = new Map<string, { partition: number; offset: number }>();
  let failed = 0;
  const reads: Extract<HistoryEvent, { type: 'read' }>[] = [];
  const consumes: Extract<HistoryEvent, { type: 'consume' }>[] = [];
  const highWatermarks = new Map<number, number>();
  for (const event of events) {
    switch (event.type) {
      case 'invoke':
        invocations.set(event.value, { producer: event.producer, seq: event.seq, partition: event.partition });
        byProducerSeq.set(`${event.producer}/${event.seq}`, event.value);
        break;
      case 'ack': {
        const value = byProducerSeq.get(`${event.producer}/${event.seq}`);
        if (value !== undefined) acknowledged.set(value, { partition: event.partition, offset: event.offset });
        break;
      }
      case 'fail':
        failed++;
        break;
      case 'read':
        reads.push(event);
        break;
      case 'consume':
        consumes.push(event);
        break;
      case 'high-watermark':
        // The last answer counts: high watermarks only grow.
        highWatermarks.set(event.partition, event.highWatermark);
        break;
      case 'fault':
        break;
      default:
        assertNever(event, 'history event');
    }
  }

  const counts: CheckCounts = {
    attempted: invocations.size,
    acknowledged: acknowledged.size,
    failed,
    read: 0,
    consumed: consumes.length,
    groupMissed: 0,
    lost: 0,
    duplicates: 0,
    inconsistent: 0,
    orderViolations: 0,
    aboveHighWatermark: 0,
  };
  const result: CheckResult = { ok: true, counts, lost: [], duplicates: [], inconsistent: [], orderViolations: [], aboveHighWatermark: [], groupMissed: [] };
  const inconsistent = (item: InconsistentOffset): void => {
    counts.inconsistent++;
    pushBounded(result.inconsistent, item);
  };

  // One value per offset: the first read of an offset fixes it; a different value later is a violation.
  const valueAt = new Map<string, string | null>();
  const positionsOf = new Map<string, { partition: number; offset: number }[]>();
  for (const read of reads) {
    const position = `${read.partition}/${read.offset}`;
    const seen = valueAt.get(position);
    if (seen !== undefined) {
      if (seen !== read.value) inconsistent({ partition: read.partition, offset: read.offset, reason: `read as ${JSON.stringify(seen)} and as ${JSON.stringify(read.value)}` });
      continue;
    }
    valueAt.set(position, read.value);
    counts.read++;
    const highWatermark = highWatermarks.get(read.partition);
    if (highWatermark !== undefined && read.offset >= highWatermark) {
      counts.aboveHighWatermark++;
      pushBounded(result.aboveHighWatermark, { partition: read.partition, offset: read.offset, highWatermark });
    }
    if (read.value === null || !invocations.has(read.value)) {
      inconsistent({ partition: read.partition, offset: read.offset, reason: `holds ${JSON.stringify(read.value)}, which no producer wrote` });
      continue;
    }
    const invocation = invocations.get(read.value)!;
    if (invocation.partition !== read.partition) {
      inconsistent({ partition: read.partition, offset: read.offset, reason: `holds ${read.value}, which was sent to partition ${invocation.partition}` });
    }
    const positions = positionsOf.get(read.value) ?? [];
    positions.push({ partition: read.partition, offset: read.offset });
    positionsOf.set(read.value, positions);
  }

  for (const [value, positions] of positionsOf) {
    if (positions.length < 2) continue;
    counts.duplicates++;
    pushBounded(result.duplicates, { value, positions });
  }

  for (const [value, ack] of acknowledged) {
    const positions = positionsOf.get(value);
    if (positions === undefined) {
      counts.lost++;
      pushBounded(result.lost, { value, partition: ack.partition, offset: ack.offset });
      continue;
    }
    // The acknowledgement named the offset; the log must hold this record exactly there.
    if (ack.offset >= 0 && !positions.some((position) => position.partition === ack.partition && position.offset === ack.offset)) {
      const found = positions.map((position) => `${position.partition}/${position.offset}`).join(', ');
      inconsistent({ partition: ack.partition, offset: ack.offset, reason: `${value} was acknowledged at ${ack.partition}/${ack.offset} but read at ${found}` });
    }
  }

  // Per partition, in offset order: each producer's sequence numbers only grow.
  const partitions = new Map<number, { offset: number; value: string }[]>();
  for (const [position, value] of valueAt) {
    if (value === null || !invocations.has(value)) continue;
    const [partition, offset] = position.split('/').map(Number) as [number, number];
    const list = partitions.get(partition) ?? [];
    list.push({ offset, value });
    partitions.set(partition, list);
  }
  for (const [partition, records] of partitions) {
    records.sort((a, b) => a.offset - b.offset);
    const lastSeq = new Map<number, number>();
    for (const record of records) {
      const { producer, seq } = invocations.get(record.value)!;
      const previousSeq = lastSeq.get(producer);
      if (previousSeq !== undefined && seq < previousSeq) {
        counts.orderViolations++;
        pushBounded(result.orderViolations, { partition, producer, offset: record.offset, seq, previousSeq });
      }
      lastSeq.set(producer, Math.max(seq, previousSeq ?? seq));
    }
  }

  // The consumer group: what it was handed is the final log (below the high watermark), and it
  // was handed every acknowledged record at least once.
  if (consumes.length > 0) {
    const consumedValues = new Set<string>();
    for (const consume of consumes) {
      if (consume.value !== null) consumedValues.add(consume.value);
      const highWatermark = highWatermarks.get(consume.partition);
      if (highWatermark !== undefined && consume.offset >= highWatermark) {
        counts.aboveHighWatermark++;
        pushBounded(result.aboveHighWatermark, { partition: consume.partition, offset: consume.offset, highWatermark });
        continue;
      }
      const position = `${consume.partition}/${consume.offset}`;
      if (!valueAt.has(position)) {
        inconsistent({ partition: consume.partition, offset: consume.offset, reason: `member ${consume.member} consumed ${JSON.stringify(consume.value)} there, which the final read does not have` });
      } else if (valueAt.get(position) !== consume.value) {
        inconsistent({ partition: consume.partition, offset: consume.offset, reason: `member ${consume.member} consumed ${JSON.stringify(consume.value)} there, the final read has ${JSON.stringify(valueAt.get(position))}` });
      }
    }
    for (const [value, ack] of acknowledged) {
      if (consumedValues.has(value)) continue;
      counts.groupMissed++;
      pushBounded(result.groupMissed, { value, partition: ack.partition, offset: ack.offset });
    }
  }

  result.ok = counts.lost + counts.duplicates + counts.inconsistent + counts.orderViolations + counts.aboveHighWatermark + counts.groupMissed === 0;
  return result;
}

export interface FailoverSample {
  fault: FaultKind;
  partition: number;
  /** The fault hit this partition's leader: the write had to wait for a leader election. */
  leaderHit: boolean;
  /** Undefined when no write issued after the fault was acknowledged on this partition. */
  failoverMs: number | undefined;
}

/**
 * For each fault and each partition written in the run: the time from the fault to the first
 * acknowledgement of a record sent after it. Records sent before the fault are left out, so
 * that a response already on its way when the fault hit does not count as a recovery.
 */
export function failoverTimes(events: readonly HistoryEvent[]): FailoverSample[] {
  const sentAt = new Map<string, number>();
  const partitions = new Set<number>();
  const acks: { timeMs: number; partition: number; sentAtMs: number }[] = [];
  const faults: Extract<HistoryEvent, { type: 'fault' }>[] = [];
  for (const event of events) {
    if (event.type === 'invoke') {
      sentAt.set(`${event.producer}/${event.seq}`, event.timeMs);
      partitions.add(event.partition);
    } else if (event.type === 'ack') {
      const sentAtMs = sentAt.get(`${event.producer}/${event.seq}`);
      if (sentAtMs !== undefined) acks.push({ timeMs: event.timeMs, partition: event.partition, sentAtMs });
    } else if (event.type === 'fault' && event.phase === 'begin') {
      faults.push(event);
    }
  }
  const samples: FailoverSample[] = [];
  for (const fault of faults) {
    for (const partition of [...partitions].sort((a, b) => a - b)) {
      let first: number | undefined;
      for (const ack of acks) {
        if (ack.partition !== partition || ack.sentAtMs < fault.timeMs) continue;
        if (first === undefined || ack.timeMs < first) first = ack.timeMs;
      }
      const leader = fault.leaders?.[partition];
      samples.push({ fault: fault.fault, partition, leaderHit: leader !== undefined && fault.nodes.includes(leader), failoverMs: first === undefined ? undefined : first - fault.timeMs });
    }
  }
  return samples;
}

/** The q-quantile (0..1) of `values` by the nearest-rank method; undefined for none. */
export function quantile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1];
}

/**
 * Send-to-acknowledgement latencies of the records sent and acknowledged within [fromMs, toMs):
 * the baseline against which a failover time is read (a failover never looks shorter than one
 * acknowledgement). Records still unanswered at `toMs` (the fault) are left out.
 */
export function ackLatencies(events: readonly HistoryEvent[], fromMs: number, toMs: number): number[] {
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  for (const event of events) {
    if (event.type === 'invoke' && event.timeMs >= fromMs && event.timeMs < toMs) sentAt.set(`${event.producer}/${event.seq}`, event.timeMs);
    else if (event.type === 'ack') {
      const sentAtMs = sentAt.get(`${event.producer}/${event.seq}`);
      if (sentAtMs !== undefined && event.timeMs < toMs) latencies.push(event.timeMs - sentAtMs);
    }
  }
  return latencies;
}
