// Command line for the Raft simulation.
//
//   npm run sim -- --seeds 500            runs seeds 1..500 across all scenarios
//   npm run sim -- --seeds 500 --start 1000
//   npm run sim -- --seed 42 --trace      replays one seed and prints its event trace
//   npm run sim -- --seed 42 --scenario leader-kill
//
// Ends with the line "N runs, V violations" and exits with 1 when V > 0.

import { SCENARIOS, runSeed, type RunResult, type ScenarioName } from './scenarios.js';

interface CliArgs {
  seeds: number | undefined;
  start: number;
  seed: number | undefined;
  scenario: ScenarioName | undefined;
  trace: boolean;
}

function parseArgs(argv: readonly string[]): CliArgs {
  const args: CliArgs = { seeds: undefined, start: 1, seed: undefined, scenario: undefined, trace: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    const integer = (): number => {
      const text = value();
      const parsed = Number(text);
      if (!Number.isSafeInteger(parsed) || parsed < 0) throw new Error(`${flag} needs a non-negative integer, got ${text}`);
      return parsed;
    };
    switch (flag) {
      case '--seeds':
        args.seeds = integer();
        break;
      case '--start':
        args.start = integer();
        break;
      case '--seed':
        args.seed = integer();
        break;
      case '--scenario': {
        const name = value();
        if (!(SCENARIOS as readonly string[]).includes(name)) {
          throw new Error(`unknown scenario ${name}; one of: ${SCENARIOS.join(', ')}`);
        }
        args.scenario = name as ScenarioName;
        break;
      }
      case '--trace':
        args.trace = true;
        break;
      default:
        throw new Error(`unknown argument ${flag}; usage: --seeds N [--start S] | --seed S [--scenario NAME] [--trace]`);
    }
  }
  return args;
}

function describe(result: RunResult): string {
  return `seed ${result.seed} (${result.scenario})`;
}

function main(): number {
  let args: CliArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const seeds: number[] = [];
  if (args.seed !== undefined) seeds.push(args.seed);
  else for (let i = 0; i < (args.seeds ?? 100); i++) seeds.push(args.start + i);
  const startedMs = performance.now();
  let violations = 0;
  let simulatedMs = 0;
  for (const seed of seeds) {
    const result = runSeed({ seed, scenario: args.scenario, trace: args.trace });
    simulatedMs += result.simulatedMs;
    if (result.trace !== undefined) console.log(result.trace.join('\n'));
    if (args.seed !== undefined) {
      console.log(
        `${describe(result)}: ${result.stats.events} events, ${result.stats.messages} messages, ` +
          `${result.stats.elections} elections, ${result.stats.committed} committed, ${result.stats.acked} acknowledged, ` +
          `${result.stats.snapshotsInstalled} snapshots installed, ${result.simulatedMs} ms simulated`,
      );
    }
    if (result.violation !== undefined) {
      violations++;
      console.log(`FAIL ${describe(result)}: ${result.violation}`);
      console.log(`  replay: npm run sim -- --seed ${result.seed} --scenario ${result.scenario} --trace`);
    }
  }
  const elapsedS = (performance.now() - startedMs) / 1000;
  console.log(
    `${(seeds.length / elapsedS).toFixed(1)} seeds/s, ${(simulatedMs / 1000 / elapsedS).toFixed(0)}x real time`,
  );
  console.log(`${seeds.length} runs, ${violations} violations`);
  return violations > 0 ? 1 : 0;
}

process.exitCode = main();
