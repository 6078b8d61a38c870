// The chaos history checker on hand-made histories: each kind of violation is found, named and
// counted, and an indeterminate record (failed or unanswered send) is accepted either way.

import { describe, expect, it } from 'vitest';
import { ackLatencies, checkHistory, failoverTimes, quantile } from '../../../src/cluster/chaos/history-checker.js';
import { parseHistory, recordValue, type HistoryEvent } from '../../../src/cluster/chaos/history.js';

/** A small history builder: time advances by 1 ms per event unless given. */
class Builder {
  readonly events: HistoryEvent[] = [];
  private timeMs = 0;

  at(timeMs: number): this {
    this.timeMs = timeMs;
    return this;
  }

  invoke(producer: number, seq: number, partition: number): this {
    this.events.push({ type: 'invoke', timeMs: this.timeMs++, producer, seq, partition, key: `k${seq}`, value: recordValue(producer, seq) });
    return this;
  }

  ack(producer: number, seq: number, partition: number, offset: number): this {
    this.events.push({ type: 'ack', timeMs: this.timeMs++, producer, seq, partition, offset });
    return this;
  }

  fail(producer: number, seq: number, partition: number): this {
    this.events.push({ type: 'fail', timeMs: this.timeMs++, producer, seq, partition, error: 'REQUEST_TIMED_OUT: gave up' });
    return this;
  }

  /** invoke + ack at the given offset. */
  write(producer: number, seq: number, partition: number, offset: number): this {
    return this.invoke(producer, seq, partition).ack(producer, seq, partition, offset);
  }

  read(partition: number, offset: number, value: string | null): this {
    this.events.push({ type: 'read', timeMs: this.timeMs++, partition, offset, value });
    return this;
  }

  consume(member: number, partition: number, offset: number, value: string | null): this {
    this.events.push({ type: 'consume', timeMs: this.timeMs++, member, partition, offset, value });
    return this;
  }

  highWatermark(partition: number, highWatermark: number): this {
    this.events.push({ type: 'high-watermark', timeMs: this.timeMs++, partition, highWatermark });
    return this;
  }

  /** Node 4 is hit; it led partition 1 (partition 0 was led by node 5). */
  fault(): this {
    this.events.push({ type: 'fault', timeMs: this.timeMs++, fault: 'kill-leader', phase: 'begin', nodes: [4], leaders: [5, 4] });
    return this;
  }
}

/** Two producers, two partitions, everything acknowledged and read back as written. */
function healthy(): Builder {
  return new Builder()
    .write(0, 0, 0, 0)
    .write(1, 0, 1, 0)
    .write(0, 1, 1, 1)
    .write(1, 1, 0, 1)
    .read(0, 0, 'p0-0')
    .read(0, 1, 'p1-1')
    .read(1, 0, 'p1-0')
    .read(1, 1, 'p0-1')
    .highWatermark(0, 2)
    .highWatermark(1, 2);
}

describe('checkHistory', () => {
  it('accepts a history in which every acknowledged record is read once, in order, below the high watermark', () => {
    const result = checkHistory(healthy().events);
    expect(result.ok).toBe(true);
    expect(result.counts).toEqual({ attempted: 4, acknowledged: 4, failed: 0, read: 4, consumed: 0, groupMissed: 0, lost: 0, duplicates: 0, inconsistent: 0, orderViolations: 0, aboveHighWatermark: 0 });
  });

  it('accepts a consumer group that was handed every acknowledged record, redeliveries included', () => {
    const history = healthy().consume(0, 0, 0, 'p0-0').consume(0, 0, 1, 'p1-1').consume(1, 1, 0, 'p1-0').consume(1, 1, 1, 'p0-1').consume(0, 1, 1, 'p0-1');
    const result = checkHistory(history.events);
    expect(result.ok).toBe(true);
    expect(result.counts).toMatchObject({ consumed: 5, groupMissed: 0, duplicates: 0 });
  });

  it('reports an acknowledged record the consumer group was never handed', () => {
    const history = healthy().consume(0, 0, 0, 'p0-0').consume(0, 0, 1, 'p1-1').consume(1, 1, 0, 'p1-0');
    const result = checkHistory(history.events);
    expect(result.ok).toBe(false);
    expect(result.counts.groupMissed).toBe(1);
    expect(result.groupMissed).toEqual([{ value: 'p0-1', partition: 1, offset: 1 }]);
  });

  it('reports a group consumption that differs from the final read, or lies at or above the high watermark', () => {
    const history = healthy()
      .consume(0, 0, 0, 'p0-0')
      .consume(0, 0, 1, 'p0-1')
      .consume(1, 1, 0, 'p1-0')
      .consume(1, 1, 1, 'p0-1')
      .consume(0, 0, 1, 'p1-1')
      .consume(1, 1, 2, 'p9-9');
    const result = checkHistory(history.events);
    expect(result.ok).toBe(false);
    expect(result.counts.inconsistent).toBe(1);
    expect(result.inconsistent[0]!.reason).toMatch(/member 0 consumed "p0-1" there, the final read has "p1-1"/);
    expect(result.aboveHighWatermark).toEqual([{ partition: 1, offset: 2, highWatermark: 2 }]);
  });

  it('accepts indeterminate records: a failed send that was written, and an unanswered one that was not', () => {
    const history = new Builder().write(0, 0, 0, 0).invoke(0, 1, 0).fail(0, 1, 0).invoke(0, 2, 0).read(0, 0, 'p0-0').read(0, 1, 'p0-1').highWatermark(0, 2);
    const result = checkHistory(history.events);
    expect(result.ok).toBe(true);
    expect(result.counts).toMatchObject({ attempted: 3, acknowledged: 1, failed: 1, read: 2 });
  });

  it('reports an acknowledged record that the read does not contain as lost', () => {
    const history = new Builder().write(0, 0, 0, 0).write(0, 1, 0, 1).read(0, 0, 'p0-0').highWatermark(0, 1);
    const result = checkHistory(history.events);
    expect(result.ok).toBe(false);
    expect(result.counts.lost).toBe(1);
    expect(result.lost).toEqual([{ value: 'p0-1', partition: 0, offset: 1 }]);
  });

  it('reports a value at two offsets as a duplicate', () => {
    const history = new Builder().write(0, 0, 0, 0).read(0, 0, 'p0-0').read(0, 1, 'p0-0').highWatermark(0, 2);
    const result = checkHistory(history.events);
    expect(result.ok).toBe(false);
    expect(result.counts.duplicates).toBe(1);
    expect(result.duplicates).toEqual([{ value: 'p0-0', positions: [{ partition: 0, offset: 0 }, { partition: 0, offset: 1 }] }]);
  });

  it('reports an offset read with two different values, and a record read elsewhere than acknowledged, as inconsistent', () => {
    const twoValues = new Builder().write(0, 0, 0, 0).write(0, 1, 0, 1).read(0, 0, 'p0-0').read(0, 1, 'p0-1').read(0, 1, 'p0-0').highWatermark(0, 2);
    const first = checkHistory(twoValues.events);
    expect(first.ok).toBe(false);
    expect(first.inconsistent[0]).toMatchObject({ partition: 0, offset: 1 });
    expect(first.inconsistent[0]!.reason).toContain('read as "p0-1" and as "p0-0"');

    // The broker said offset 5; the log has the record at offset 0 (and nothing at 5).
    const moved = new Builder().write(0, 0, 0, 5).read(0, 0, 'p0-0').highWatermark(0, 1);
    const second = checkHistory(moved.events);
    expect(second.counts.inconsistent).toBe(1);
    expect(second.inconsistent[0]!.reason).toContain('acknowledged at 0/5 but read at 0/0');
  });

  it('reports a value nobody wrote, or one read from another partition than it was sent to, as inconsistent', () => {
    const history = new Builder().write(0, 0, 0, 0).read(0, 0, 'p0-0').read(0, 1, 'p9-9').read(1, 0, 'p0-0').highWatermark(0, 2).highWatermark(1, 1);
    const result = checkHistory(history.events);
    expect(result.counts.inconsistent).toBe(2);
    expect(result.inconsistent.map((item) => item.reason)).toEqual(['holds "p9-9", which no producer wrote', 'holds p0-0, which was sent to partition 0']);
    // Read twice at different places: also a duplicate.
    expect(result.counts.duplicates).toBe(1);
  });

  it('reports a producer\'s records out of send order within a partition', () => {
    const history = new Builder()
      .write(0, 0, 0, 1)
      .write(0, 1, 0, 0)
      .write(1, 0, 0, 2)
      .read(0, 0, 'p0-1')
      .read(0, 1, 'p0-0')
      .read(0, 2, 'p1-0')
      .highWatermark(0, 3);
    const result = checkHistory(history.events);
    expect(result.counts.orderViolations).toBe(1);
    expect(result.orderViolations).toEqual([{ partition: 0, producer: 0, offset: 1, seq: 0, previousSeq: 1 }]);
  });

  it('does not call interleaved producers an order violation', () => {
    const history = new Builder().write(0, 0, 0, 0).write(1, 0, 0, 1).write(0, 1, 0, 2).write(1, 1, 0, 3);
    for (const [offset, value] of ['p0-0', 'p1-0', 'p0-1', 'p1-1'].entries()) history.read(0, offset, value);
    history.highWatermark(0, 4);
    expect(checkHistory(history.events).ok).toBe(true);
  });

  it('reports a read at or above the high watermark', () => {
    const history = new Builder().write(0, 0, 0, 0).invoke(0, 1, 0).read(0, 0, 'p0-0').read(0, 1, 'p0-1').highWatermark(0, 1);
    const result = checkHistory(history.events);
    expect(result.ok).toBe(false);
    expect(result.aboveHighWatermark).toEqual([{ partition: 0, offset: 1, highWatermark: 1 }]);
  });

  it('keeps exact counts but a bounded number of examples', () => {
    const history = new Builder();
    for (let seq = 0; seq < 50; seq++) history.write(0, seq, 0, seq);
    history.highWatermark(0, 50);
    const result = checkHistory(history.events);
    expect(result.counts.lost).toBe(50);
    expect(result.lost).toHaveLength(20);
  });

  it('reads a history back from its JSONL form', () => {
    const events = healthy().events;
    const text = events.map((event) => JSON.stringify(event)).join('\n') + '\n';
    expect(parseHistory(text)).toEqual(events);
    expect(checkHistory(parseHistory(text)).ok).toBe(true);
  });
});

describe('failoverTimes', () => {
  it('measures from the fault to the first acknowledgement, per partition, of a record sent after it', () => {
    const history = new Builder()
      .at(0)
      .write(0, 0, 0, 0)
      .write(0, 1, 1, 0)
      .at(100)
      .invoke(0, 2, 0) // sent before the fault, acknowledged after it: not a recovery
      .at(110)
      .fault() // t=110
      .at(120)
      .ack(0, 2, 0, 1)
      .at(200)
      .invoke(0, 3, 0)
      .invoke(0, 4, 1)
      .at(450)
      .ack(0, 4, 1, 1)
      .at(600)
      .ack(0, 3, 0, 2);
    expect(failoverTimes(history.events)).toEqual([
      { fault: 'kill-leader', partition: 0, leaderHit: false, failoverMs: 490 },
      { fault: 'kill-leader', partition: 1, leaderHit: true, failoverMs: 340 },
    ]);
  });

  it('reports a partition that never recovered as undefined', () => {
    const history = new Builder().write(0, 0, 0, 0).fault().invoke(0, 1, 0);
    expect(failoverTimes(history.events)).toEqual([{ fault: 'kill-leader', partition: 0, leaderHit: false, failoverMs: undefined }]);
  });

  it('ackLatencies and quantile give the baseline', () => {
    const history = new Builder().at(0).invoke(0, 0, 0).at(10).ack(0, 0, 0, 0).at(20).invoke(0, 1, 0).at(50).ack(0, 1, 0, 1);
    expect(ackLatencies(history.events, 0, 100)).toEqual([10, 30]);
    expect(ackLatencies(history.events, 15, 100)).toEqual([30]);
    // Unanswered at the end of the window (e.g. in flight at the fault): not part of the baseline.
    expect(ackLatencies(history.events, 0, 40)).toEqual([10]);
    expect(quantile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4], 1)).toBe(4);
    expect(quantile([], 0.5)).toBeUndefined();
  });
});
