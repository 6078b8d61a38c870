#!/usr/bin/env node
// `npm run chaos -- --runs N`: repeats each fault N times on one local process cluster (3
// controllers, 3 brokers, default timeouts; nodes reach each other through fault proxies, for the
// partition fault) and prints, per fault kind: runs, lost, duplicates,
// inconsistent offsets, order violations, reads above the high watermark, and the failover time
// (fault to first acknowledged write per partition) p50 and max. Exit code 1 when any check fails;
// the history files stay in the printed directory either way.
//
// Options: --runs N (default 3), --faults a,b (default all), --seed S (victim choice),
// --controllers/--brokers (default 3/3), --override key=value (server config for every node),
// --keep (keep the node logs and data of a successful run too), --retry-backoff-ms and
// --retry-backoff-max-ms (the producers' retry backoff; default 100 and 1000, the client's defaults).

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT, BROKER_SESSION_TIMEOUT_MS_DEFAULT } from '@raftka/quorum';
import { ProcessChaosCluster } from './process-chaos-cluster.js';
import { runScenario, seededRandom, type ScenarioResult } from './chaos-scenario.js';
import { FAULT_KINDS, type FaultKind } from './history.js';
import { formatMs as format, summaryTable } from './chaos-report.js';

function parseOptions(): { runs: number; faults: FaultKind[]; seed: number; controllers: number; brokers: number; overrides: Record<string, string>; keep: boolean; retryBackoffMs: number; retryBackoffMaxMs: number } {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      faults: { type: 'string', default: FAULT_KINDS.join(',') },
      seed: { type: 'string' },
      controllers: { type: 'string', default: '3' },
      brokers: { type: 'string', default: '3' },
      override: { type: 'string', multiple: true, default: [] },
      keep: { type: 'boolean', default: false },
      'retry-backoff-ms': { type: 'string', default: '100' },
      'retry-backoff-max-ms': { type: 'string', default: '1000' },
    },
  });
  const integer = (name: string, text: string, min: number): number => {
    const parsed = Number(text);
    if (!Number.isSafeInteger(parsed) || parsed < min) throw new Error(`--${name} ${text}: expected an integer >= ${min}`);
    return parsed;
  };
  const faults = values.faults.split(',').map((fault) => fault.trim()) as FaultKind[];
  for (const fault of faults) if (!FAULT_KINDS.includes(fault)) throw new Error(`--faults: unknown fault ${fault} (known: ${FAULT_KINDS.join(', ')})`);
  const overrides: Record<string, string> = {};
  for (const flag of values.override) {
    const at = flag.indexOf('=');
    if (at <= 0) throw new Error(`--override ${flag}: expected key=value`);
    overrides[flag.slice(0, at)] = flag.slice(at + 1);
  }
  return {
    runs: integer('runs', values.runs, 1),
    faults,
    seed: values.seed === undefined ? Date.now() % 1_000_000 : integer('seed', values.seed, 0),
    controllers: integer('controllers', values.controllers, 1),
    brokers: integer('brokers', values.brokers, 3),
    overrides,
    keep: values.keep,
    retryBackoffMs: integer('retry-backoff-ms', values['retry-backoff-ms'], 0),
    retryBackoffMaxMs: integer('retry-backoff-max-ms', values['retry-backoff-max-ms'], 0),
  };
}

async function main(): Promise<void> {
  const options = parseOptions();
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-chaos-'));
  const historyDirectory = path.join(root, 'histories');
  const sessionTimeoutMs = Number(options.overrides['broker.session.timeout.ms'] ?? BROKER_SESSION_TIMEOUT_MS_DEFAULT);
  const heartbeatMs = Number(options.overrides['broker.heartbeat.interval.ms'] ?? BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT);
  process.stdout.write(
    `chaos: ${options.runs} run(s) of ${options.faults.join(', ')}; seed ${options.seed}; broker.session.timeout.ms=${sessionTimeoutMs}, broker.heartbeat.interval.ms=${heartbeatMs}; producer retry.backoff.ms=${options.retryBackoffMs}, retry.backoff.max.ms=${options.retryBackoffMaxMs}\n`,
  );
  const cluster = await ProcessChaosCluster.up({
    directory: path.join(root, 'cluster'),
    controllers: options.controllers,
    brokers: options.brokers,
    properties: { 'log.level': 'warn', ...options.overrides },
  });
  // Whatever happens to this program, its cluster must not outlive it.
  process.once('exit', () => cluster.killAllNow());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  const random = seededRandom(options.seed);
  const results: ScenarioResult[] = [];
  let failed = false;
  const errors: FaultKind[] = [];
  try {
    for (let run = 0; run < options.runs; run++) {
      for (const fault of options.faults) {
        const startedMs = Date.now();
        let result: ScenarioResult;
        try {
          result = await runScenario({
            cluster,
            fault,
            topic: `chaos-${fault}-${run}`,
            historyDirectory,
            random,
            sessionTimeoutMs,
            retryBackoffMs: options.retryBackoffMs,
            retryBackoffMaxMs: options.retryBackoffMaxMs,
          });
        } catch (error) {
          // The next scenario may still run on the healed cluster; this one counts as failed.
          failed = true;
          errors.push(fault);
          process.stdout.write(`run ${run + 1} ${fault.padEnd(15)} ERROR: ${(error as Error).message}\n`);
          continue;
        }
        results.push(result);
        const failovers = result.failover.map((sample) => (sample.failoverMs === undefined ? 'none' : `${Math.round(sample.failoverMs)}`)).join('/');
        const { counts } = result.check;
        process.stdout.write(
          `run ${run + 1} ${fault.padEnd(15)} nodes ${result.victims.join(',').padEnd(11)} acked ${counts.acknowledged}, read ${counts.read}, ` +
            `failover ms per partition ${failovers} (ack p50 before ${format(result.baselineAckMsP50)}); ${result.check.ok ? 'ok' : 'FAILED'} (${Math.round((Date.now() - startedMs) / 100) / 10} s)\n`,
        );
        if (result.isrNotHealed !== undefined) process.stdout.write(`  warning: ${result.isrNotHealed}\n`);
        if (!result.check.ok) {
          failed = true;
          process.stdout.write(`  history: ${result.historyFile}\n  ${JSON.stringify({ lost: result.check.lost, duplicates: result.check.duplicates, inconsistent: result.check.inconsistent, order: result.check.orderViolations, aboveHighWatermark: result.check.aboveHighWatermark, groupMissed: result.check.groupMissed })}\n`);
        }
      }
    }
  } finally {
    // A failed run keeps the node logs and data next to the histories.
    await cluster.down({ force: true, purge: !failed && !options.keep }).catch(() => undefined);
  }
  const errorLine = errors.length === 0 ? '' : `\nscenarios that did not complete: ${errors.join(', ')}\n`;
  process.stdout.write(`\n${summaryTable(results)}\n${errorLine}\nhistories: ${historyDirectory}${failed || options.keep ? `\nnode logs: ${path.join(root, 'cluster')}` : ''}\n`);
  if (failed) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`chaos: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
