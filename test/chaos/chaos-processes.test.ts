// The chaos suite on real processes: one `raftka cluster`-style cluster (3 controllers, 3
// brokers, the server's default timeouts) and, per fault kind, one scenario: idempotent
// producers with acks=all write uniquely numbered records to a fresh RF-3 topic
// (min.insync.replicas=2) while the fault hits; afterwards every partition is read back and the
// history checker looks for lost writes, duplicates, offsets holding two values, order violations
// and reads above the high watermark. A failure prints the history file (JSONL) to replay it.
// Each fault also yields its failover time (fault to first acknowledged write per partition);
// the suite prints p50/max per fault kind. `npm run chaos -- --runs N` repeats all of this N times.

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { BROKER_SESSION_TIMEOUT_MS_DEFAULT } from '@raftka/quorum';
import { ProcessChaosCluster } from '../../packages/cli/src/cluster/chaos/process-chaos-cluster.js';
import { runScenario, seededRandom, type ScenarioResult } from '../../packages/cli/src/cluster/chaos/chaos-scenario.js';
import { summaryTable } from '../../packages/cli/src/cluster/chaos/chaos-report.js';
import { expectCleanScenario } from '../support/chaos-assertions.js';
import type { FaultKind } from '../../packages/cli/src/cluster/chaos/history.js';

/** Printed with every result so that a failing choice of victims can be repeated. */
const SEED = Number(process.env['RAFTKA_CHAOS_SEED'] ?? Date.now() % 1_000_000);
const SCENARIO_TIMEOUT_MS = 90_000;

let root: string;
let cluster: ProcessChaosCluster | undefined;
const results: ScenarioResult[] = [];
let failures = 0;
const random = seededRandom(SEED);
const killOnExit = (): void => cluster?.killAllNow();

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-chaos-'));
  // Detached server processes must not outlive a crashed test worker.
  process.once('exit', killOnExit);
  cluster = await ProcessChaosCluster.up({ directory: path.join(root, 'cluster'), controllers: 3, brokers: 3, properties: { 'log.level': 'warn' } });
}, SCENARIO_TIMEOUT_MS);

afterAll(async () => {
  await cluster?.down({ force: true, purge: failures === 0 });
  process.removeListener('exit', killOnExit);
  if (results.length > 0) console.log(`chaos (seed ${SEED}):\n${summaryTable(results)}`);
  if (failures === 0) await fs.rm(root, { recursive: true, force: true });
  else console.log(`chaos: histories and node logs kept in ${root}`);
}, SCENARIO_TIMEOUT_MS);

async function scenario(fault: FaultKind): Promise<void> {
  let result: ScenarioResult;
  try {
    result = await runScenario({
      cluster: cluster!,
      fault,
      topic: `chaos-${fault}`,
      historyDirectory: path.join(root, 'histories'),
      random,
      sessionTimeoutMs: BROKER_SESSION_TIMEOUT_MS_DEFAULT,
    });
  } catch (error) {
    failures++;
    throw new Error(`${fault} (seed ${SEED}) did not complete; history and node logs in ${root}: ${(error as Error).message}`, { cause: error });
  }
  results.push(result);
  if (!result.check.ok) failures++;
  expectCleanScenario(result, SEED, 'chaos');
}

describe('chaos on a process cluster (acks=all, RF 3, min.insync.replicas=2)', () => {
  it('SIGKILL of a random broker loses nothing', () => scenario('kill-broker'), SCENARIO_TIMEOUT_MS);
  it('SIGKILL of a partition leader loses nothing', () => scenario('kill-leader'), SCENARIO_TIMEOUT_MS);
  it('SIGKILL of the active controller loses nothing', () => scenario('kill-controller'), SCENARIO_TIMEOUT_MS);
  it('SIGSTOP of a partition leader beyond the session timeout, then SIGCONT, loses nothing', () => scenario('pause-broker'), SCENARIO_TIMEOUT_MS);
  it('SIGKILL and restart of every node at once loses nothing', () => scenario('restart-all'), SCENARIO_TIMEOUT_MS);
  it('a network partition cutting a partition leader off from every other node loses nothing', () => scenario('partition-leader'), SCENARIO_TIMEOUT_MS);
});
