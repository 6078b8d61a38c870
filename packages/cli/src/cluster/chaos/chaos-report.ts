// The summary of chaos scenarios as a table: per fault kind the runs, acknowledged records, each
// kind of violation, and the failover time (fault to first acknowledged write per partition)
// p50 and max over every partition of every run, and over the partitions whose leader the fault
// hit (those needed a leader election; the others only waited for their ISR to shrink).

import type { ScenarioResult } from './chaos-scenario.js';
import { quantile } from './history-checker.js';

export function formatMs(ms: number | undefined): string {
  return ms === undefined ? '-' : `${Math.round(ms)} ms`;
}

/** One row per fault kind, in the order the kinds first appear. */
export function summaryTable(results: readonly ScenarioResult[]): string {
  const rows = [['fault', 'runs', 'acked', 'lost', 'duplicates', 'inconsistent', 'order', 'above-HW', 'group missed', 'failover p50', 'failover max', 'leader-hit p50', 'leader-hit max', 'no failover', 'ISR not healed', 'ack p50 before']];
  const kinds = [...new Set(results.map((result) => result.fault))];
  for (const kind of kinds) {
    const mine = results.filter((result) => result.fault === kind);
    const sum = (pick: (result: ScenarioResult) => number) => String(mine.reduce((total, result) => total + pick(result), 0));
    const samples = mine.flatMap((result) => result.failover.map((sample) => sample.failoverMs));
    const measured = samples.filter((sample): sample is number => sample !== undefined);
    const leaderHit = mine.flatMap((result) => result.failover.filter((sample) => sample.leaderHit && sample.failoverMs !== undefined).map((sample) => sample.failoverMs!));
    rows.push([
      kind,
      String(mine.length),
      sum((result) => result.check.counts.acknowledged),
      sum((result) => result.check.counts.lost),
      sum((result) => result.check.counts.duplicates),
      sum((result) => result.check.counts.inconsistent),
      sum((result) => result.check.counts.orderViolations),
      sum((result) => result.check.counts.aboveHighWatermark),
      sum((result) => result.check.counts.groupMissed),
      formatMs(quantile(measured, 0.5)),
      formatMs(measured.length === 0 ? undefined : Math.max(...measured)),
      formatMs(quantile(leaderHit, 0.5)),
      formatMs(leaderHit.length === 0 ? undefined : Math.max(...leaderHit)),
      String(samples.length - measured.length),
      String(mine.filter((result) => result.isrNotHealed !== undefined).length),
      formatMs(quantile(mine.map((result) => result.baselineAckMsP50).filter((value): value is number => value !== undefined), 0.5)),
    ]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

