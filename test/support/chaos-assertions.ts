// What every chaos scenario must show, whichever runner (processes or containers) produced it.

import { expect } from 'vitest';
import type { ScenarioResult } from '../../packages/cli/src/cluster/chaos/chaos-scenario.js';

/**
 * Asserts a scenario's history is clean: no lost, duplicated or inconsistent records, no order
 * violations, no reads above the high watermark, nothing the consumer group missed; writes were
 * acknowledged and consumed; every partition took writes again after the fault. A replica that
 * has not rejoined the ISR is a liveness problem to see (warned), not a safety violation.
 */
export function expectCleanScenario(result: ScenarioResult, seed: number, label: string): void {
  if (result.isrNotHealed !== undefined) console.warn(`${label} ${result.fault}: ${result.isrNotHealed}`);
  const { check } = result;
  const report = {
    seed,
    victims: result.victims,
    history: result.historyFile,
    lost: check.lost,
    duplicates: check.duplicates,
    inconsistent: check.inconsistent,
    order: check.orderViolations,
    aboveHighWatermark: check.aboveHighWatermark,
    groupMissed: check.groupMissed,
  };
  expect(check.ok, `the history of ${result.fault} has violations: ${JSON.stringify(report)}`).toBe(true);
  expect(check.counts.acknowledged).toBeGreaterThan(0);
  // The consumer group read through the fault (and was handed every acknowledged record: groupMissed above).
  expect(check.counts.consumed).toBeGreaterThanOrEqual(check.counts.acknowledged);
  // Every partition took acknowledged writes again after the fault (an availability check, not a timing one).
  expect(result.failover.every((sample) => sample.failoverMs !== undefined), `a partition never recovered: ${JSON.stringify(result.failover)} (${result.historyFile})`).toBe(true);
}
