// The pure parts of the data commands: the open-loop send schedule, the line reader of
// `raftka produce`, the record formatter of `raftka consume`, the describe layout of
// `raftka topics` and the perf latency summary.

import { describe, expect, it } from 'vitest';
import { formatRecord, formatterSettings, startOffset } from '../../packages/cli/src/consume/consume-command.js';
import { OpenLoopSchedule, UNLIMITED_THROUGHPUT } from '../../packages/cli/src/perf/open-loop-schedule.js';
import { LatencyHistogram } from '../../packages/cli/src/perf/perf-stats.js';
import { lineReaderSettings, parseLine } from '../../packages/cli/src/produce/produce-command.js';
import { filterPartitions, formatTopicReport, selectTopicsAction, type TopicReport } from '../../packages/cli/src/topics/topics-command.js';

describe('OpenLoopSchedule', () => {
  it('makes record i due at start + i / rate, independent of when earlier records went out', () => {
    const schedule = new OpenLoopSchedule(1_000, 4_000);
    expect(schedule.dueMs(0, 5_000)).toBe(1_000);
    expect(schedule.dueMs(4_000, 5_000)).toBe(2_000);
    // A late sender gets no credit: the due time does not move with the clock.
    expect(schedule.dueMs(4_000, 9_999)).toBe(2_000);
    expect(schedule.waitMs(4_000, 1_500)).toBe(500);
    expect(schedule.waitMs(4_000, 2_500)).toBe(0);
  });

  it('counts due records after a stall, so the backlog is sent at once and measured from its due times', () => {
    const schedule = new OpenLoopSchedule(0, 1_000);
    expect(schedule.dueCount(-1, 10)).toBe(0);
    expect(schedule.dueCount(0, 10)).toBe(1);
    expect(schedule.dueCount(5.5, 10_000)).toBe(6);
    expect(schedule.dueCount(1_000_000, 10)).toBe(10);
  });

  it('does not drift over many records', () => {
    const schedule = new OpenLoopSchedule(0, 3);
    expect(schedule.dueMs(3_000_000, 0)).toBeCloseTo(1_000_000_000, 3);
  });

  it('does not pace at -1 and rejects other non-positive rates', () => {
    const unlimited = new OpenLoopSchedule(0, UNLIMITED_THROUGHPUT);
    expect(unlimited.paced).toBe(false);
    expect(unlimited.dueMs(1_000, 42)).toBe(42);
    expect(unlimited.waitMs(1_000, 42)).toBe(0);
    for (const rate of [0, -2, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => new OpenLoopSchedule(0, rate)).toThrow(/throughput/);
  });
});

describe('LatencyHistogram', () => {
  it('summarizes in milliseconds with percentiles never above the maximum', () => {
    const histogram = new LatencyHistogram();
    expect(histogram.summary().maxMs).toBe(0);
    for (let value = 1; value <= 1_000; value++) histogram.recordMs(value / 10);
    const summary = histogram.summary();
    expect(histogram.count).toBe(1_000);
    expect(summary.avgMs).toBeCloseTo(50.05, 1);
    expect(summary.p50Ms).toBeCloseTo(50, 0);
    expect(summary.p99Ms).toBeCloseTo(99, 0);
    expect(summary.maxMs).toBeCloseTo(100, 1);
    expect(summary.p999Ms).toBeLessThanOrEqual(summary.maxMs);
  });
});

describe('produce line reader', () => {
  it('splits the key at the first separator when parse.key is set', () => {
    const settings = lineReaderSettings({ 'parse.key': 'true', 'key.separator': '::' });
    expect(parseLine('user-1::{"a":1}::x', 1, settings)).toEqual({ key: 'user-1', value: '{"a":1}::x' });
    expect(parseLine('::empty key', 2, settings)).toEqual({ key: '', value: 'empty key' });
    expect(() => parseLine('no separator', 3, settings)).toThrow(/INVALID_RECORD|line 3/);
  });

  it('keeps the whole line as the value by default, and maps null.marker to null', () => {
    expect(parseLine('a\tb', 1, lineReaderSettings({}))).toEqual({ key: null, value: 'a\tb' });
    const settings = lineReaderSettings({ 'parse.key': 'true', 'key.separator': ':', 'null.marker': 'NULL' });
    expect(parseLine('k:NULL', 1, settings)).toEqual({ key: 'k', value: null });
  });

  it('rejects unknown or malformed properties', () => {
    expect(() => lineReaderSettings({ 'parse.keys': 'true' })).toThrow(/unknown property parse.keys/);
    expect(() => lineReaderSettings({ 'parse.key': 'yes' })).toThrow(/true or false/);
  });
});

describe('consume formatter', () => {
  const record = {
    topic: 't',
    partition: 2,
    offset: 7,
    key: Buffer.from('k'),
    value: Buffer.from('v'),
    headers: [{ key: 'h', value: Buffer.from('1') }],
    timestamp: 1_700_000_000_000,
    leaderEpoch: 0,
  };

  it('prints the value alone by default', () => {
    expect(formatRecord(record, formatterSettings({}))).toBe('v\n');
  });

  it("prints Kafka's columns in Kafka's order with the key separator between them", () => {
    const settings = formatterSettings({
      'print.timestamp': 'true',
      'print.partition': 'true',
      'print.offset': 'true',
      'print.headers': 'true',
      'print.key': 'true',
      'key.separator': '|',
    });
    expect(formatRecord(record, settings)).toBe('CreateTime:1700000000000|Partition:2|Offset:7|h:1|k|v\n');
    expect(formatRecord({ ...record, key: null, value: null, headers: [] }, settings)).toBe('CreateTime:1700000000000|Partition:2|Offset:7|NO_HEADERS|null|null\n');
  });

  it('rejects unknown properties and contradictory start flags', () => {
    expect(() => formatterSettings({ 'print.keys': 'true' })).toThrow(/unknown property print.keys/);
    expect(() => startOffset({ fromBeginning: true, offset: 'latest' })).toThrow(/cannot be used together/);
    expect(() => startOffset({ offset: 5 })).toThrow(/needs --partition/);
    expect(startOffset({ offset: 5, partition: 0 })).toBe(5);
    expect(startOffset({ fromBeginning: true })).toBe('earliest');
    expect(startOffset({})).toBe('latest');
  });
});

describe('topics describe layout', () => {
  const report: TopicReport = {
    topic: 'orders',
    topicId: 'ab'.repeat(16),
    isInternal: false,
    partitionCount: 2,
    replicationFactor: 3,
    configs: { 'retention.ms': '1000' },
    partitions: [
      { partition: 0, leader: 1, leaderEpoch: 0, replicas: [1, 2, 3], isr: [1, 2, 3], offlineReplicas: [] },
      { partition: 1, leader: -1, leaderEpoch: 3, replicas: [2, 3, 1], isr: [2], offlineReplicas: [3] },
    ],
  };

  it('matches kafka-topics --describe', () => {
    expect(formatTopicReport(report).split('\n')).toEqual([
      `Topic: orders\tTopicId: ${'ab'.repeat(16)}\tPartitionCount: 2\tReplicationFactor: 3\tConfigs: retention.ms=1000`,
      '\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,2,3',
      '\tTopic: orders\tPartition: 1\tLeader: none\tReplicas: 2,3,1\tIsr: 2\tOffline: 3',
    ]);
  });

  it('filters under-replicated and unavailable partitions', () => {
    expect(filterPartitions(report, { underReplicatedPartitions: true }).partitions.map((partition) => partition.partition)).toEqual([1]);
    expect(filterPartitions(report, { unavailablePartitions: true }).partitions.map((partition) => partition.partition)).toEqual([1]);
    expect(filterPartitions(report, {}).partitions).toHaveLength(2);
  });

  it('needs exactly one action', () => {
    expect(selectTopicsAction({ bootstrapServers: [], config: {}, list: true })).toBe('list');
    expect(() => selectTopicsAction({ bootstrapServers: [], config: {} })).toThrow(/exactly one of/);
    expect(() => selectTopicsAction({ bootstrapServers: [], config: {}, list: true, delete: true })).toThrow(/--list and --delete/);
  });
});
