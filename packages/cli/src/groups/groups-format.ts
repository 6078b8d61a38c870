// Pure formatting and flag parsing for `raftka groups`: the describe table, the reset plan and
// the reset target, kept apart from the command so they can be tested without a cluster.
//
// Layout follows kafka-consumer-groups.sh: left-aligned columns padded to the widest cell, two
// spaces apart, "-" for a value that does not exist (no committed offset, no owner).

import type { GroupDescription, OffsetResetPlanEntry, OffsetResetTarget } from '@raftka/client';
import { RaftkaError } from '@raftka/protocol';

/** Columns of `--describe`, as kafka-consumer-groups --describe prints them. */
export const DESCRIBE_COLUMNS = ['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID'] as const;
/** Columns of a reset plan. */
export const RESET_PLAN_COLUMNS = ['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'NEW-OFFSET'] as const;

const MISSING = '-';
const COLUMN_GAP = '  ';

/** Left-aligned columns padded to the widest cell; trailing spaces trimmed. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join(COLUMN_GAP)
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function text(value: number | string | undefined): string {
  return value === undefined || value === '' ? MISSING : String(value);
}

/**
 * The describe rows of one group: one per committed or assigned partition (with its owner, if
 * any), then one per member that owns no partition (topic columns "-"), as Kafka's tool does.
 */
export function describeRows(group: GroupDescription): string[][] {
  const members = new Map(group.members.map((member) => [member.memberId, member]));
  const rows: string[][] = group.partitions.map((row) => {
    const owner = row.memberId === undefined ? undefined : members.get(row.memberId);
    return [
      group.groupId,
      row.topic,
      String(row.partition),
      text(row.currentOffset),
      text(row.logEndOffset),
      text(row.lag),
      text(owner?.memberId),
      text(owner?.clientHost),
      text(owner?.clientId),
    ];
  });
  for (const member of group.members) {
    if (member.assignment.length > 0 && group.partitions.some((row) => row.memberId === member.memberId)) continue;
    rows.push([group.groupId, MISSING, MISSING, MISSING, MISSING, MISSING, member.memberId, text(member.clientHost), text(member.clientId)]);
  }
  return rows;
}

/** `--describe` output: the table for every group, preceded by a note for groups without members or offsets. */
export function formatDescribe(groups: readonly GroupDescription[]): { table: string; notes: string[] } {
  const notes: string[] = [];
  const rows: string[][] = [];
  for (const group of groups) {
    if (group.state === 'Dead' && group.members.length === 0 && group.partitions.length === 0) {
      notes.push(`Consumer group '${group.groupId}' does not exist.`);
      continue;
    }
    if (group.members.length === 0) notes.push(`Consumer group '${group.groupId}' has no active members.`);
    else if (group.state === 'PreparingRebalance' || group.state === 'CompletingRebalance') notes.push(`Consumer group '${group.groupId}' is rebalancing.`);
    rows.push(...describeRows(group));
  }
  return { table: rows.length === 0 ? '' : formatTable(DESCRIBE_COLUMNS, rows), notes };
}

/** `--describe --members`: one row per member with its partition count (kafka-consumer-groups' layout). */
export const MEMBERS_COLUMNS = ['GROUP', 'CONSUMER-ID', 'HOST', 'CLIENT-ID', '#PARTITIONS', 'ASSIGNMENT'] as const;

export function formatMembers(groups: readonly GroupDescription[]): string {
  const rows = groups.flatMap((group) =>
    group.members.map((member) => [
      group.groupId,
      member.memberId,
      text(member.clientHost),
      text(member.clientId),
      String(member.assignment.length),
      member.assignment.length === 0 ? MISSING : member.assignment.map((tp) => `${tp.topic}:${tp.partition}`).join(','),
    ]),
  );
  return rows.length === 0 ? '' : formatTable(MEMBERS_COLUMNS, rows);
}

/** `--describe --state`: one row per group. `coordinators` maps broker ids to host:port. */
export const STATE_COLUMNS = ['GROUP', 'COORDINATOR (ID)', 'ASSIGNMENT-STRATEGY', 'STATE', '#MEMBERS'] as const;

export function formatGroupStates(groups: readonly GroupDescription[], coordinators: ReadonlyMap<number, string>): string {
  return formatTable(
    STATE_COLUMNS,
    groups.map((group) => [
      group.groupId,
      `${coordinators.get(group.coordinatorId) ?? '?'} (${group.coordinatorId})`,
      text(group.protocol),
      group.state,
      String(group.members.length),
    ]),
  );
}

/** A reset plan as a table. */
export function formatResetPlan(groupId: string, plan: readonly OffsetResetPlanEntry[]): string {
  return formatTable(
    RESET_PLAN_COLUMNS,
    plan.map((entry) => [groupId, entry.topic, String(entry.partition), text(entry.currentOffset), String(entry.newOffset)]),
  );
}

/** The reset flags of one run. */
export interface ResetFlags {
  toEarliest?: boolean;
  toLatest?: boolean;
  toOffset?: number;
  shiftBy?: number;
  /** ISO 8601 date-time; without a zone it is local time, as in kafka-consumer-groups. */
  toDatetime?: string;
}

/** Parses an ISO 8601 date-time into milliseconds since the epoch. */
export function parseDatetime(value: string): number {
  // Date.parse accepts more than ISO 8601; require the ISO shape so a typo is not read as some other date.
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(value)) {
    throw new RaftkaError('INVALID_REQUEST', `--to-datetime expects an ISO 8601 date-time such as 2024-05-01T12:00:00Z, got ${JSON.stringify(value)}`, { retriable: false });
  }
  const parsed = Date.parse(value);
  if (!Number.isFinite(parsed) || parsed < 0) {
    throw new RaftkaError('INVALID_REQUEST', `--to-datetime ${JSON.stringify(value)} is not a valid date-time after 1970`, { retriable: false });
  }
  return parsed;
}

/** The one reset target the flags choose (exactly one is required). */
export function resetTarget(flags: ResetFlags): OffsetResetTarget {
  const chosen: OffsetResetTarget[] = [];
  const names: string[] = [];
  if (flags.toEarliest === true) (chosen.push({ earliest: true }), names.push('--to-earliest'));
  if (flags.toLatest === true) (chosen.push({ latest: true }), names.push('--to-latest'));
  if (flags.toOffset !== undefined) (chosen.push({ offset: flags.toOffset }), names.push('--to-offset'));
  if (flags.shiftBy !== undefined) (chosen.push({ shiftBy: flags.shiftBy }), names.push('--shift-by'));
  if (flags.toDatetime !== undefined) (chosen.push({ timestamp: parseDatetime(flags.toDatetime) }), names.push('--to-datetime'));
  if (chosen.length !== 1) {
    throw new RaftkaError(
      'INVALID_REQUEST',
      `--reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime${names.length > 1 ? `, got ${names.join(' and ')}` : ''}`,
      { retriable: false },
    );
  }
  return chosen[0]!;
}

/** `--topic T` or `--topic T:0,2` (kafka-consumer-groups' partition selection). */
export function parseTopicPartitions(value: string): { topic: string; partitions: number[] | undefined } {
  const at = value.lastIndexOf(':');
  if (at < 0) return { topic: value, partitions: undefined };
  const topic = value.slice(0, at);
  const partitions = value
    .slice(at + 1)
    .split(',')
    .map((part) => part.trim());
  if (topic === '' || partitions.some((part) => !/^\d+$/.test(part))) {
    throw new RaftkaError('INVALID_REQUEST', `--topic expects TOPIC or TOPIC:P1,P2,..., got ${JSON.stringify(value)}`, { retriable: false });
  }
  return { topic, partitions: partitions.map(Number) };
}
