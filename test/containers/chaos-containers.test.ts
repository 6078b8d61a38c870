// The chaos suite in containers: the image built from deploy/docker, one cluster of 3 controller
// and 3 broker containers on a Docker network (container-cluster.ts), and per fault kind one
// scenario of the same runScenario the process suite uses: idempotent producers with acks=all
// write uniquely numbered records to a fresh RF-3 topic (min.insync.replicas=2) while Docker
// injects the fault (docker kill, docker pause, docker network disconnect); afterwards every
// partition is read back and the history checker looks for lost writes, duplicates, offsets
// holding two values, order violations and reads above the high watermark. A failure keeps the
// history files (JSONL) and every node's log. Needs a Docker engine: `npm run test:containers`.

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { BROKER_SESSION_TIMEOUT_MS_DEFAULT } from '@raftka/quorum';
import { runScenario, seededRandom, type ScenarioResult } from '../../packages/cli/src/cluster/chaos/chaos-scenario.js';
import { summaryTable } from '../../packages/cli/src/cluster/chaos/chaos-report.js';
import { expectCleanScenario } from '../support/chaos-assertions.js';
import type { FaultKind } from '../../packages/cli/src/cluster/chaos/history.js';
import { waitFor } from '../support/process-cluster.js';
import { buildTestImage, ContainerChaosCluster } from './container-cluster.js';

/** Printed with every result so that a failing choice of victims can be repeated. */
const SEED = Number(process.env['RAFTKA_CHAOS_SEED'] ?? Date.now() % 1_000_000);
const SCENARIO_TIMEOUT_MS = 120_000;
const READY_TIMEOUT_MS = 90_000;
/** The image build from a cold cache installs every dependency from the registry. */
const SETUP_TIMEOUT_MS = 600_000;
/** A probe from inside a container that must fail: how long it may try. */
const PROBE_TIMEOUT_MS = 1_000;

let root: string;
let cluster: ContainerChaosCluster | undefined;
const results: ScenarioResult[] = [];
const timings: string[] = [];
let failures = 0;
const random = seededRandom(SEED);
/** Called first in every test: any failure (a thrown error, a failed expectation) keeps the evidence. */
const keepEvidenceOnFailure = (): void => onTestFailed(() => void failures++);

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-chaos-containers-'));
  const buildStartedMs = Date.now();
  await buildTestImage();
  const startStartedMs = Date.now();
  cluster = await ContainerChaosCluster.start({ properties: { 'log.level': 'info' } });
  const readyStartedMs = Date.now();
  await cluster.waitReady(READY_TIMEOUT_MS);
  timings.push(`image build ${startStartedMs - buildStartedMs} ms`, `containers up ${readyStartedMs - startStartedMs} ms`, `cluster ready ${Date.now() - readyStartedMs} ms`);
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  if (cluster && failures > 0) {
    await fs.mkdir(path.join(root, 'logs'), { recursive: true });
    for (const nodeId of cluster.nodeIds) {
      const text = await cluster.logs(nodeId).catch((error: unknown) => `no logs: ${(error as Error).message}`);
      await fs.writeFile(path.join(root, 'logs', `${cluster.aliasOf(nodeId)}.log`), text);
    }
  }
  if (cluster && cluster.healCatchUpMs.length > 0) timings.push(`heal to caught-up metadata ${cluster.healCatchUpMs.join(', ')} ms`);
  await cluster?.stop();
  console.log(`chaos in containers: ${timings.join(', ')}`);
  if (results.length > 0) console.log(`chaos in containers (seed ${SEED}):\n${summaryTable(results)}`);
  if (failures === 0) await fs.rm(root, { recursive: true, force: true });
  else console.log(`chaos in containers: histories and node logs kept in ${root}`);
}, SCENARIO_TIMEOUT_MS);

/** A node script that resolves `host` and connects to it: prints "reached" or the error code. */
function reachScript(host: string, port: number): string[] {
  const script =
    `const s=require('net').connect({host:${JSON.stringify(host)},port:${port},timeout:${PROBE_TIMEOUT_MS}});` +
    `s.on('connect',()=>{console.log('reached');s.destroy()});` +
    `s.on('timeout',()=>{console.log('TIMEOUT');s.destroy()});` +
    `s.on('error',(e)=>console.log(e.code))`;
  return ['node', '-e', script];
}

async function scenario(fault: FaultKind): Promise<void> {
  keepEvidenceOnFailure();
  const startedMs = Date.now();
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
    throw new Error(`${fault} (seed ${SEED}) did not complete; histories and node logs in ${root}: ${(error as Error).message}`, { cause: error });
  } finally {
    timings.push(`${fault} ${Date.now() - startedMs} ms`);
  }
  results.push(result);
  expectCleanScenario(result, SEED, 'chaos in containers');
}

describe('chaos on a container cluster (acks=all, RF 3, min.insync.replicas=2)', () => {
  it('isolation cuts a node off from its peers and from the host, and the heal restores both', async () => {
    keepEvidenceOnFailure();
    const [victim, peer] = cluster!.brokerIds;
    const victimAlias = cluster!.aliasOf(victim!);
    const addressOf = async (from: number, alias: string): Promise<string> => {
      const lookup = await cluster!.exec(from, ['node', '-e', `require('dns').lookup(${JSON.stringify(alias)},(e,a)=>console.log(e?e.code:a))`]);
      return lookup.output.trim();
    };
    // Addresses on the cluster network, for the check that a remembered address does not help either.
    const victimAddress = await addressOf(peer!, victimAlias);
    const peerAddress = await addressOf(victim!, cluster!.aliasOf(peer!));
    expect(victimAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(peerAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    await cluster!.isolate(victim!);
    try {
      expect((await cluster!.exec(peer!, reachScript(victimAlias, 9092))).output.trim()).toBe('ENOTFOUND');
      expect((await cluster!.exec(peer!, reachScript(victimAddress, 9092))).output.trim()).not.toBe('reached');
      expect((await cluster!.exec(victim!, reachScript(peerAddress, 9092))).output.trim()).toBe('ENETUNREACH');
      // The published ports go with the network: the host does not reach the node either.
      await expect(fetch(`${cluster!.adminUrl(victim!)}/healthz`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })).rejects.toThrow();
    } finally {
      await cluster!.heal();
    }
    expect((await fetch(`${cluster!.adminUrl(victim!)}/healthz`)).status).toBe(200);
    expect((await cluster!.exec(peer!, reachScript(victimAlias, 9092))).output.trim()).toBe('reached');
    expect(await addressOf(peer!, victimAlias)).toBe(victimAddress);
    await cluster!.waitReady(READY_TIMEOUT_MS);
  }, SCENARIO_TIMEOUT_MS);

  it('docker kill of a random broker loses nothing', () => scenario('kill-broker'), SCENARIO_TIMEOUT_MS);
  it('docker kill of a partition leader loses nothing', () => scenario('kill-leader'), SCENARIO_TIMEOUT_MS);
  it('docker kill of the active controller loses nothing', () => scenario('kill-controller'), SCENARIO_TIMEOUT_MS);
  it('docker pause of a partition leader beyond the session timeout, then unpause, loses nothing', () => scenario('pause-broker'), SCENARIO_TIMEOUT_MS);
  it('docker kill and start of every container at once loses nothing', () => scenario('restart-all'), SCENARIO_TIMEOUT_MS);
  it('a partition leader disconnected from the cluster network, then connected again, loses nothing', () => scenario('partition-leader'), SCENARIO_TIMEOUT_MS);
});
