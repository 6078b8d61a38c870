// Simulation scenarios (after Kafka's RaftEventSimulationTest) and the runner of one seed.
//
// A run: build a cluster from the seed (3 or 5 voters, 0..2 observers, random network quality),
// run a random workload while the scenario injects faults for `faultPhaseMs`, then heal everything
// (restart all nodes, mend the network) and require that within `healDeadlineMs` a leader exists
// and every voter has applied everything acknowledged (liveness). Safety is checked after every
// event by the cluster. Any failure names the seed, which replays it exactly.

import type { RaftTimingOptions } from '../raft/types.js';
import { SimCluster, SimViolation, type NetworkFaults, type SimConfig } from './cluster.js';
import type { Prng } from './prng.js';

export const SCENARIOS = [
  'random-faults',
  'leader-kill',
  'graceful-resign',
  'all-killed-majority-restart',
  'leader-partitioned',
  'split-two-three',
  'back-to-back-leader-failures',
  'snapshot-catch-up',
  'rapid-leader-churn',
] as const;

export type ScenarioName = (typeof SCENARIOS)[number];

export interface RunOptions {
  seed: number;
  scenario?: ScenarioName;
  trace?: boolean;
  faultPhaseMs?: number;
  healDeadlineMs?: number;
}

export interface RunResult {
  seed: number;
  scenario: ScenarioName;
  violation: string | undefined;
  simulatedMs: number;
  stats: SimCluster['stats'];
  trace: string[] | undefined;
}

export const SIM_TIMING: RaftTimingOptions = {
  fetchTimeoutMs: 400,
  electionTimeoutMs: 200,
  electionBackoffMaxMs: 100,
  fetchMaxWaitMs: 100,
  fetchMaxBytes: 2048,
};

const DEFAULT_FAULT_PHASE_MS = 3000;
const DEFAULT_HEAL_DEADLINE_MS = 10_000;
const WORKLOAD_INTERVAL_MAX_MS = 30;

export function scenarioForSeed(seed: number): ScenarioName {
  return SCENARIOS[(seed - 1) % SCENARIOS.length]!;
}

function randomNetwork(rng: Prng): NetworkFaults {
  return {
    dropRate: rng.pick([0, 0.01, 0.05, 0.1]),
    duplicateRate: rng.pick([0, 0.02, 0.05]),
    minDelayMs: 1,
    maxDelayMs: rng.pick([5, 15, 40]),
  };
}

export function runSeed(options: RunOptions): RunResult {
  const seed = options.seed;
  const scenario = options.scenario ?? scenarioForSeed(seed);
  const faultPhaseMs = options.faultPhaseMs ?? DEFAULT_FAULT_PHASE_MS;
  const healDeadlineMs = options.healDeadlineMs ?? DEFAULT_HEAL_DEADLINE_MS;
  // Derive the cluster shape from the seed with its own generator so it does not depend on events.
  const shapeSeed = (seed * 2654435761) >>> 0;
  const voters = scenario === 'split-two-three' ? 5 : shapeSeed % 3 === 0 ? 5 : 3;
  const observers = (shapeSeed >>> 3) % 3;
  const config: SimConfig = {
    voters,
    observers,
    // Small fetches make replication trickle, which widens the windows where logs differ.
    timing: { ...SIM_TIMING, fetchMaxBytes: [1024, 4096, 1 << 20][(shapeSeed >>> 5) % 3]! },
    tickMs: 10,
    network: { dropRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 10 },
    // Well below fetchTimeoutMs, as a driver's request deadline should be: a lost fetch is
    // retried long before the follower gives up on its leader.
    rpcTimeoutMs: 100,
    fsyncMaxMs: 3,
    snapshotEveryEntries: scenario === 'snapshot-catch-up' ? 15 : 40,
  };
  const cluster = new SimCluster(config, seed, options.trace === true);
  const rng = cluster.rng;
  cluster.setNetwork(randomNetwork(rng));
  let violation: string | undefined;
  try {
    // Workload for the whole fault phase.
    const workload = (): void => {
      if (cluster.nowMs >= faultPhaseMs) return;
      cluster.proposeOnLeader();
      cluster.schedule(rng.int(1, WORKLOAD_INTERVAL_MAX_MS), workload);
    };
    cluster.schedule(rng.int(1, WORKLOAD_INTERVAL_MAX_MS), workload);
    SCENARIO_FAULTS[scenario](cluster, faultPhaseMs);
    cluster.runUntil(faultPhaseMs);

    // Heal: mend the network, restart everyone, and require convergence.
    cluster.heal();
    cluster.setNetwork({ ...cluster.config.network, dropRate: Math.min(cluster.config.network.dropRate, 0.01) });
    for (const node of cluster.nodes) cluster.restart(node.id);
    const converged = cluster.runUntil(faultPhaseMs + healDeadlineMs, () => cluster.converged());
    if (!converged) {
      const leader = cluster.leader();
      throw new SimViolation(
        `liveness: no convergence ${healDeadlineMs}ms after healing (leader ${leader ? `n${leader.id} epoch ${leader.core!.epoch} hw ${leader.core!.highWatermark}` : 'none'}; ` +
          cluster.nodes
            .map((n) => `n${n.id} ${n.up ? `${n.core!.role}@${n.core!.epoch} leo ${n.core!.logEndOffset} hw ${n.core!.highWatermark} applied ${n.sm.endOffset}` : 'down'}`)
            .join(', ') +
          ')',
      );
    }
    cluster.checkAcknowledged();
    const lagging = cluster.laggingNode;
    if (lagging !== undefined && lagging.snapshotsInstalled === 0) {
      throw new SimViolation(`snapshot-catch-up: n${lagging.id} came back below the leader's log start but never installed a snapshot`);
    }
  } catch (error) {
    if (!(error instanceof SimViolation)) throw error;
    violation = error.message;
    cluster.log(`VIOLATION ${error.message}`);
  }
  return { seed, scenario, violation, simulatedMs: cluster.nowMs, stats: cluster.stats, trace: cluster.trace };
}

type FaultPlan = (cluster: SimCluster, faultPhaseMs: number) => void;

/** Runs `step` every `minMs..maxMs` during the fault phase. */
function every(cluster: SimCluster, faultPhaseMs: number, minMs: number, maxMs: number, step: () => void): void {
  const loop = (): void => {
    if (cluster.nowMs >= faultPhaseMs) return;
    step();
    cluster.schedule(cluster.rng.int(minMs, maxMs), loop);
  };
  cluster.schedule(cluster.rng.int(minMs, maxMs), loop);
}

function downVoters(cluster: SimCluster): number {
  return cluster.voterIds.filter((id) => !cluster.node(id).up).length;
}

const SCENARIO_FAULTS: Record<ScenarioName, FaultPlan> = {
  'random-faults': (cluster, faultPhaseMs) => {
    const rng = cluster.rng;
    every(cluster, faultPhaseMs, 50, 400, () => {
      const ids = cluster.nodes.map((node) => node.id);
      switch (rng.int(0, 5)) {
        case 0:
          cluster.crash(rng.pick(ids));
          break;
        case 1:
        case 2: {
          const down = cluster.nodes.filter((node) => !node.up);
          if (down.length > 0) cluster.restart(rng.pick(down).id);
          break;
        }
        case 3: {
          const shuffled = rng.shuffle(ids);
          const cutAt = rng.int(1, shuffled.length - 1);
          cluster.partition(shuffled.slice(0, cutAt), shuffled.slice(cutAt));
          break;
        }
        case 4:
          cluster.heal();
          break;
        default:
          cluster.setNetwork(randomNetwork(rng));
      }
    });
  },
  'leader-kill': (cluster, faultPhaseMs) => {
    every(cluster, faultPhaseMs, 300, 800, () => {
      const leader = cluster.leader();
      if (leader === undefined) return;
      cluster.crash(leader.id);
      cluster.schedule(cluster.rng.int(100, 600), () => cluster.restart(leader.id));
    });
  },
  'graceful-resign': (cluster, faultPhaseMs) => {
    every(cluster, faultPhaseMs, 400, 900, () => {
      const leader = cluster.leader();
      if (leader === undefined) return;
      cluster.resign(leader.id);
      cluster.schedule(cluster.rng.int(20, 200), () => cluster.crash(leader.id));
      cluster.schedule(cluster.rng.int(300, 600), () => cluster.restart(leader.id));
    });
  },
  'all-killed-majority-restart': (cluster, faultPhaseMs) => {
    const rng = cluster.rng;
    const killAtMs = rng.int(faultPhaseMs / 4, faultPhaseMs / 2);
    cluster.schedule(killAtMs, () => {
      for (const node of cluster.nodes) cluster.crash(node.id);
    });
    cluster.schedule(killAtMs + rng.int(50, 300), () => {
      const majority = Math.floor(cluster.voterIds.length / 2) + 1;
      for (const id of rng.shuffle(cluster.voterIds).slice(0, majority)) cluster.restart(id);
      for (const node of cluster.nodes) if (!node.isVoter) cluster.restart(node.id);
    });
    // The rest come back only at the heal.
  },
  'leader-partitioned': (cluster, faultPhaseMs) => {
    every(cluster, faultPhaseMs, 600, 1200, () => {
      cluster.heal();
      const leader = cluster.leader();
      if (leader === undefined) return;
      const others = cluster.nodes.filter((node) => node.id !== leader.id).map((node) => node.id);
      cluster.partition([leader.id], others);
    });
  },
  'split-two-three': (cluster, faultPhaseMs) => {
    every(cluster, faultPhaseMs, 400, 900, () => {
      cluster.heal();
      const voters = cluster.rng.shuffle(cluster.voterIds);
      const minority = voters.slice(0, 2);
      const majority = voters.slice(2);
      // Observers land on either side.
      for (const node of cluster.nodes) {
        if (!node.isVoter) (cluster.rng.chance(0.5) ? minority : majority).push(node.id);
      }
      cluster.partition(minority, majority);
    });
  },
  'back-to-back-leader-failures': (cluster, faultPhaseMs) => {
    const rng = cluster.rng;
    const tolerated = Math.floor((cluster.voterIds.length - 1) / 2);
    every(cluster, faultPhaseMs, 500, 900, () => {
      // Kill the leader, then each next leader as soon as it is elected, up to what the quorum tolerates.
      let killed = 0;
      const victims: number[] = [];
      const killNext = (): void => {
        if (cluster.nowMs >= faultPhaseMs) return;
        const leader = cluster.leader();
        if (leader !== undefined && killed < tolerated && downVoters(cluster) < tolerated) {
          cluster.crash(leader.id);
          victims.push(leader.id);
          killed++;
        }
        if (killed < tolerated) cluster.schedule(5, killNext);
        else cluster.schedule(rng.int(100, 300), () => victims.forEach((id) => cluster.restart(id)));
      };
      killNext();
    });
  },
  'rapid-leader-churn': (cluster, faultPhaseMs) => {
    // Leaders die moments after appending, before their entries reach everyone, and come back
    // quickly: the setting of Raft's Figure 8 (committing an older epoch's entries by counting).
    every(cluster, faultPhaseMs, 60, 250, () => {
      const leader = cluster.leader();
      if (leader === undefined) return;
      cluster.crash(leader.id);
      cluster.schedule(cluster.rng.int(10, 150), () => cluster.restart(leader.id));
    });
    every(cluster, faultPhaseMs, 200, 600, () => {
      const down = cluster.nodes.filter((node) => !node.up);
      if (down.length === 0 && cluster.rng.chance(0.3)) cluster.crash(cluster.rng.pick(cluster.voterIds));
      else if (down.length > 0) cluster.restart(cluster.rng.pick(down).id);
    });
  },
  'snapshot-catch-up': (cluster, faultPhaseMs) => {
    const rng = cluster.rng;
    // One node (voter or observer) is away for most of the run while the others snapshot and
    // compact; when it returns it can only catch up by fetching a snapshot.
    const lagging = rng.pick(cluster.nodes.slice(1)).id;
    cluster.schedule(rng.int(50, 200), () => cluster.crash(lagging));
    cluster.schedule(rng.int((faultPhaseMs * 3) / 4, faultPhaseMs - 50), () => {
      const node = cluster.node(lagging);
      const leader = cluster.leader();
      const logEnd = node.storage.entriesStart + node.storage.entries.length;
      // Only when the leader has compacted past the node's log is a snapshot the only way back.
      if (leader !== undefined && leader.core!.logStartOffset > logEnd) cluster.laggingNode = node;
      cluster.restart(lagging);
    });
    every(cluster, faultPhaseMs, 300, 700, () => cluster.setNetwork(randomNetwork(rng)));
  },
};
