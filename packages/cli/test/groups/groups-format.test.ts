import { describe, expect, it } from 'vitest';
import type { GroupDescription } from '@raftka/client';
import { selectGroupsAction } from '../../src/groups/groups-command.js';
import {
  DESCRIBE_COLUMNS,
  formatDescribe,
  formatGroupStates,
  formatMembers,
  formatResetPlan,
  formatTable,
  parseDatetime,
  parseTopicPartitions,
  resetTarget,
} from '../../src/groups/groups-format.js';

const billing: GroupDescription = {
  groupId: 'billing',
  state: 'Stable',
  protocolType: 'consumer',
  protocol: 'range',
  coordinatorId: 2,
  members: [
    { memberId: 'raftka-member-1', groupInstanceId: undefined, clientId: 'raftka', clientHost: '/127.0.0.1', assignment: [{ topic: 'orders', partition: 0 }], subscribedTopics: ['orders'] },
    { memberId: 'raftka-member-2', groupInstanceId: undefined, clientId: 'worker', clientHost: '/10.0.0.7', assignment: [], subscribedTopics: ['orders'] },
  ],
  partitions: [
    { topic: 'orders', partition: 0, currentOffset: 2, logEndOffset: 5, lag: 3, memberId: 'raftka-member-1' },
    { topic: 'orders', partition: 1, currentOffset: undefined, logEndOffset: 1234567, lag: undefined, memberId: undefined },
  ],
};

describe('groups formatting', () => {
  it('pads columns to the widest cell and trims line ends', () => {
    expect(formatTable(['A', 'LONG-TITLE'], [['wide-cell', 'x'], ['b', '']])).toBe('A          LONG-TITLE\nwide-cell  x\nb\n');
  });

  it('prints kafka-consumer-groups --describe rows with "-" for what does not exist and members without partitions last', () => {
    const { table, notes } = formatDescribe([billing]);
    const lines = table.trimEnd().split('\n');
    expect(lines[0]!.split(/\s+/)).toEqual([...DESCRIBE_COLUMNS]);
    expect(lines.slice(1).map((line) => line.split(/\s+/))).toEqual([
      ['billing', 'orders', '0', '2', '5', '3', 'raftka-member-1', '/127.0.0.1', 'raftka'],
      ['billing', 'orders', '1', '-', '1234567', '-', '-', '-', '-'],
      ['billing', '-', '-', '-', '-', '-', 'raftka-member-2', '/10.0.0.7', 'worker'],
    ]);
    // Every column starts at the same position on every line.
    const starts = (line: string) => [...line.matchAll(/\S+/g)].map((match) => match.index);
    expect(new Set(lines.map((line) => JSON.stringify(starts(line)))).size).toBe(1);
    expect(notes).toEqual([]);
  });

  it('notes groups without members and groups that do not exist', () => {
    const empty: GroupDescription = { ...billing, groupId: 'audit', state: 'Empty', members: [], partitions: [{ ...billing.partitions[0]!, memberId: undefined }] };
    const dead: GroupDescription = { ...billing, groupId: 'nobody', state: 'Dead', members: [], partitions: [] };
    const { table, notes } = formatDescribe([empty, dead]);
    expect(notes).toEqual(["Consumer group 'audit' has no active members.", "Consumer group 'nobody' does not exist."]);
    expect(table.trimEnd().split('\n')).toHaveLength(2);
    expect(formatDescribe([dead]).table).toBe('');
  });

  it('prints one row per member with --members and one row per group with --state', () => {
    expect(formatMembers([billing])).toBe(
      [
        'GROUP    CONSUMER-ID      HOST        CLIENT-ID  #PARTITIONS  ASSIGNMENT',
        'billing  raftka-member-1  /127.0.0.1  raftka     1            orders:0',
        'billing  raftka-member-2  /10.0.0.7   worker     0            -',
        '',
      ].join('\n'),
    );
    expect(formatGroupStates([billing], new Map([[2, '127.0.0.1:9092']]))).toBe(
      ['GROUP    COORDINATOR (ID)    ASSIGNMENT-STRATEGY  STATE   #MEMBERS', 'billing  127.0.0.1:9092 (2)  range                Stable  2', ''].join('\n'),
    );
  });

  it('prints a reset plan', () => {
    expect(
      formatResetPlan('audit', [
        { topic: 'orders', partition: 0, currentOffset: 15, newOffset: 0 },
        { topic: 'orders', partition: 1, currentOffset: undefined, newOffset: 4 },
      ]),
    ).toBe('GROUP  TOPIC   PARTITION  CURRENT-OFFSET  NEW-OFFSET\naudit  orders  0          15              0\naudit  orders  1          -               4\n');
  });
});

describe('groups flags', () => {
  it('chooses exactly one action', () => {
    expect(selectGroupsAction({ bootstrapServers: [], describe: true })).toBe('describe');
    expect(() => selectGroupsAction({ bootstrapServers: [] })).toThrow(/exactly one of --list, --describe, --reset-offsets, --delete/);
    expect(() => selectGroupsAction({ bootstrapServers: [], list: true, delete: true })).toThrow(/got --list and --delete/);
  });

  it('turns reset flags into one target', () => {
    expect(resetTarget({ toEarliest: true })).toEqual({ earliest: true });
    expect(resetTarget({ toLatest: true })).toEqual({ latest: true });
    expect(resetTarget({ toOffset: 7 })).toEqual({ offset: 7 });
    expect(resetTarget({ shiftBy: -3 })).toEqual({ shiftBy: -3 });
    expect(resetTarget({ toDatetime: '2024-05-01T12:00:00Z' })).toEqual({ timestamp: Date.UTC(2024, 4, 1, 12) });
    expect(() => resetTarget({})).toThrow(/exactly one/);
    expect(() => resetTarget({ toEarliest: true, shiftBy: 1 })).toThrow(/--to-earliest and --shift-by/);
  });

  it('reads ISO date-times and refuses anything else', () => {
    expect(parseDatetime('2024-05-01T12:00:00.250+02:00')).toBe(Date.UTC(2024, 4, 1, 10, 0, 0, 250));
    expect(parseDatetime('2024-05-01')).toBe(Date.UTC(2024, 4, 1));
    expect(() => parseDatetime('May 1 2024')).toThrow(/ISO 8601/);
    expect(() => parseDatetime('2024-13-45T00:00:00Z')).toThrow(/not a valid/);
  });

  it('reads --topic with an optional partition list', () => {
    expect(parseTopicPartitions('orders')).toEqual({ topic: 'orders', partitions: undefined });
    expect(parseTopicPartitions('orders:0,2')).toEqual({ topic: 'orders', partitions: [0, 2] });
    expect(() => parseTopicPartitions('orders:x')).toThrow(/TOPIC:P1,P2/);
  });
});
