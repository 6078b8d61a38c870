// Deterministic simulation of whole clusters (src/sim): election safety, log matching, leader
// completeness, state-machine safety and committed-entry durability after every event, and
// liveness after the faults heal. A failure names the seed; replay it with
// `npm run sim -- --seed <seed> --scenario <name> --trace`.
import { describe, expect, it } from 'vitest';
import { SCENARIOS, runSeed } from '../../src/sim/scenarios.js';

/** Seeds per scenario: 9 scenarios x 250 = 2,250 runs (about 20 s on one core). */
const SEEDS_PER_SCENARIO = 250;

describe('Raft simulation', () => {
  for (const [index, scenario] of SCENARIOS.entries()) {
    it(`${scenario}: ${SEEDS_PER_SCENARIO} seeds hold every invariant`, () => {
      const failures: string[] = [];
      let acknowledged = 0;
      for (let i = 0; i < SEEDS_PER_SCENARIO; i++) {
        // Scenario seeds interleave as in the CLI: seed s runs SCENARIOS[(s - 1) % 9].
        const seed = 1 + index + i * SCENARIOS.length;
        const result = runSeed({ seed, scenario });
        acknowledged += result.stats.acked;
        if (result.violation !== undefined) {
          failures.push(`seed ${seed} (${scenario}): ${result.violation}\n  replay: npm run sim -- --seed ${seed} --scenario ${scenario} --trace`);
        }
      }
      expect(failures, failures.join('\n')).toEqual([]);
      // The workload really ran: a simulation that commits nothing proves nothing.
      expect(acknowledged).toBeGreaterThan(SEEDS_PER_SCENARIO * 10);
    });
  }

  it('replays a seed exactly', () => {
    const first = runSeed({ seed: 4242, scenario: 'random-faults', trace: true });
    const second = runSeed({ seed: 4242, scenario: 'random-faults', trace: true });
    expect(second.trace).toEqual(first.trace);
    expect(second.stats).toEqual(first.stats);
  });

  it('catches a broken cluster: a snapshot-catch-up run installs snapshots', () => {
    const result = runSeed({ seed: 8, scenario: 'snapshot-catch-up' });
    expect(result.violation).toBeUndefined();
    expect(result.stats.snapshotsInstalled).toBeGreaterThan(0);
  });
});
