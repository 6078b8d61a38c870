// The Kubernetes manifests in deploy/k8s: every object is valid against the Kubernetes API schemas
// (kubernetes-models, generated from the Kubernetes OpenAPI spec), and the wiring a running
// cluster depends on holds: node ids derived from pod ordinals match the voters, every pod's
// RAFTKA_CFG_* environment is a configuration the server accepts, probes hit the admin
// listener, data lives on the claimed volume, disruption budgets select the right pods, and the
// grace period covers a controlled shutdown.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Service } from 'kubernetes-models/v1/Service';
import { StatefulSet, type IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IService } from 'kubernetes-models/v1/Service';
import { CONTROLLED_SHUTDOWN_MS_MAX } from '@raftka/broker';
import { loadServerConfig } from '@raftka/cli';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const manifestDir = path.join(root, 'deploy/k8s');

/** The models of every kind the manifests may use; an object of another kind fails the test. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Service': Service,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

interface Manifest {
  file: string;
  object: { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> } } & Record<string, unknown>;
}

function loadManifests(): Manifest[] {
  const manifests: Manifest[] = [];
  for (const file of readdirSync(manifestDir).filter((name) => /\.ya?ml$/.test(name)).sort()) {
    for (const document of parseAllDocuments(readFileSync(path.join(manifestDir, file), 'utf8'))) {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((error) => error.message).join('; ')}`);
      const object = document.toJS() as Manifest['object'] | null;
      if (object !== null) manifests.push({ file, object });
    }
  }
  return manifests;
}

const manifests = loadManifests();
const ofKind = <T>(kind: string): T[] => manifests.filter((manifest) => manifest.object.kind === kind).map((manifest) => manifest.object as T);
const statefulSets = ofKind<IStatefulSet>('StatefulSet');
const services = ofKind<IService>('Service');
const budgets = ofKind<IPodDisruptionBudget>('PodDisruptionBudget');

function statefulSet(component: string): IStatefulSet {
  const found = statefulSets.find((set) => set.spec?.template.metadata?.labels?.['app.kubernetes.io/component'] === component);
  expect(found, `a StatefulSet of ${component}s`).toBeDefined();
  return found!;
}

function raftkaContainer(set: IStatefulSet): IContainer {
  const containers = set.spec!.template.spec!.containers;
  expect(containers).toHaveLength(1);
  return containers[0]!;
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (selector === undefined || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

/** Literal env values; `$(VAR)` references expanded as the kubelet does (downward-API values given). */
function containerEnv(container: IContainer, fieldValues: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const fieldPath = variable.valueFrom?.fieldRef?.fieldPath;
    if (fieldPath !== undefined) {
      expect(fieldValues[fieldPath], `a value for ${fieldPath}`).toBeDefined();
      env[variable.name] = fieldValues[fieldPath]!;
    } else {
      env[variable.name] = (variable.value ?? '').replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (reference, name: string) => env[name] ?? reference);
    }
  }
  return env;
}

const scratch = mkdtempSync(path.join(os.tmpdir(), 'raftka-k8s-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * Runs the container's command as the pod would, with `raftka` on PATH replaced by a script that
 * prints the environment it was started with: what the real server would see.
 */
function startupEnvironment(container: IContainer, hostname: string, env: Record<string, string>): Record<string, string> {
  const bin = path.join(scratch, 'bin');
  const fake = path.join(bin, 'raftka');
  execFileSync('mkdir', ['-p', bin]);
  writeFileSync(fake, '#!/bin/sh\nenv\n');
  chmodSync(fake, 0o755);
  const argv = [...(container.command ?? []), ...(container.args ?? [])];
  expect(argv[0], 'the command runs in a shell').toBe('/bin/sh');
  const output = execFileSync(argv[0]!, argv.slice(1), { env: { ...env, HOSTNAME: hostname, PATH: `${bin}:/usr/bin:/bin` }, encoding: 'utf8' });
  return Object.fromEntries(output.split('\n').filter((line) => line.includes('=')).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

function podEnvironment(set: IStatefulSet, ordinal: number): Record<string, string> {
  const podName = `${set.metadata!.name}-${ordinal}`;
  const container = raftkaContainer(set);
  const declared = containerEnv(container, { 'metadata.name': podName, 'metadata.namespace': 'streaming' });
  const seen = startupEnvironment(container, podName, declared);
  return Object.fromEntries(Object.entries(seen).filter(([name]) => name.startsWith('RAFTKA_CFG_')));
}

describe('deploy/k8s manifests', () => {
  it('are valid Kubernetes objects of known kinds', () => {
    expect(manifests.length).toBeGreaterThan(0);
    for (const { file, object } of manifests) {
      const Model = MODELS[`${object.apiVersion}/${object.kind}`];
      expect(Model, `${file}: ${object.apiVersion} ${object.kind} is not a kind these manifests use`).toBeDefined();
      expect(() => new Model!(object as never).validate(), `${file}: ${object.kind} ${object.metadata.name}`).not.toThrow();
    }
  });

  it('run a controller and a broker StatefulSet of 3 pods each, behind matching headless Services', () => {
    for (const component of ['controller', 'broker']) {
      const set = statefulSet(component);
      expect(set.spec!.replicas).toBe(3);
      expect(selects(set.spec!.selector.matchLabels, set.spec!.template.metadata?.labels)).toBe(true);
      const headless = services.find((service) => service.metadata!.name === set.spec!.serviceName);
      expect(headless, `Service ${set.spec!.serviceName}`).toBeDefined();
      expect(headless!.spec!.clusterIP).toBe('None');
      // Peers must resolve a pod before it is ready: readiness itself depends on them.
      expect(headless!.spec!.publishNotReadyAddresses).toBe(true);
      expect(selects(headless!.spec!.selector, set.spec!.template.metadata?.labels)).toBe(true);
      // A quorum cannot become ready pod by pod.
      expect(set.spec!.podManagementPolicy).toBe('Parallel');
      const resources = raftkaContainer(set).resources;
      expect(resources?.requests?.['cpu']).toBeDefined();
      expect(resources?.requests?.['memory']).toBeDefined();
    }
  });

  it('derive node ids from pod ordinals that match controller.quorum.voters, and every pod gets a config the server accepts', async () => {
    const controllers = statefulSet('controller');
    const brokers = statefulSet('broker');
    const controllerIds: number[] = [];
    const brokerIds: number[] = [];
    for (const [set, ids] of [
      [controllers, controllerIds],
      [brokers, brokerIds],
    ] as const) {
      for (let ordinal = 0; ordinal < set.spec!.replicas!; ordinal++) {
        const env = podEnvironment(set, ordinal);
        const config = await loadServerConfig({ configFile: undefined, overrides: [], env });
        ids.push(config.quorum.nodeId);
        const podHost = `${set.metadata!.name}-${ordinal}.${set.spec!.serviceName}`;
        if (set === controllers) {
          expect(config.quorum.roles).toEqual(['controller']);
          // This pod's own voter entry names this pod's stable DNS name and its controller port.
          const voter = config.quorum.voters.find((candidate) => candidate.nodeId === config.quorum.nodeId);
          expect(voter, `voter entry for node ${config.quorum.nodeId}`).toBeDefined();
          expect(voter!.host).toBe(podHost);
          const controllerPort = raftkaContainer(set).ports!.find((port) => port.name === 'controller')!.containerPort;
          expect(voter!.port).toBe(controllerPort);
        } else {
          expect(config.quorum.roles).toEqual(['broker']);
          expect(config.broker.advertisedListeners).toEqual([`PLAINTEXT://${podHost}.streaming.svc:9092`]);
          expect(config.brokerListener?.port).toBe(raftkaContainer(set).ports!.find((port) => port.name === 'client')!.containerPort);
          expect(config.controller.minInsyncReplicas).toBe(2);
        }
        expect(config.controller.offsetsTopicReplicationFactor).toBe(3);
      }
    }
    expect(controllerIds).toEqual([1, 2, 3]);
    expect(new Set([...controllerIds, ...brokerIds]).size, 'node ids are unique across the cluster').toBe(6);
    // Every node lists the same voters: exactly the controller pods.
    const voters = podEnvironment(brokers, 0)['RAFTKA_CFG_CONTROLLER_QUORUM_VOTERS'];
    expect(podEnvironment(controllers, 0)['RAFTKA_CFG_CONTROLLER_QUORUM_VOTERS']).toBe(voters);
  });

  it('probe /healthz (liveness, startup) and /readyz (readiness) on the admin HTTP listener', () => {
    for (const component of ['controller', 'broker']) {
      const set = statefulSet(component);
      const container = raftkaContainer(set);
      const adminPort = container.ports!.find((port) => port.name === 'admin');
      expect(adminPort, `${component}: a container port named admin`).toBeDefined();
      const listener = podEnvironment(set, 0)['RAFTKA_CFG_ADMIN_HTTP_LISTENER'];
      expect(listener, `${component}: RAFTKA_CFG_ADMIN_HTTP_LISTENER`).toBe(`0.0.0.0:${adminPort!.containerPort}`);
      for (const [probe, pathExpected] of [
        [container.livenessProbe, '/healthz'],
        [container.startupProbe, '/healthz'],
        [container.readinessProbe, '/readyz'],
      ] as const) {
        expect(probe?.httpGet?.path).toBe(pathExpected);
        expect([adminPort!.name, adminPort!.containerPort]).toContain(probe!.httpGet!.port);
      }
    }
  });

  it('keep log.dirs on the persistent volume claimed per pod', () => {
    for (const component of ['controller', 'broker']) {
      const set = statefulSet(component);
      const logDirs = podEnvironment(set, 0)['RAFTKA_CFG_LOG_DIRS']!.split(',');
      const claims = set.spec!.volumeClaimTemplates!.map((claim) => claim.metadata!.name);
      for (const logDir of logDirs) {
        const mount = raftkaContainer(set).volumeMounts?.find((candidate) => candidate.mountPath === logDir);
        expect(mount, `${component}: a volume mounted at ${logDir}`).toBeDefined();
        expect(claims).toContain(mount!.name);
      }
      // The non-root user must be able to write the volume.
      expect(set.spec!.template.spec!.securityContext?.fsGroup).toBe(set.spec!.template.spec!.securityContext?.runAsUser);
    }
  });

  it('have disruption budgets that let one broker and one controller go at a time', () => {
    const brokerLabels = statefulSet('broker').spec!.template.metadata!.labels;
    const controllerLabels = statefulSet('controller').spec!.template.metadata!.labels;
    const brokerBudgets = budgets.filter((budget) => selects(budget.spec!.selector!.matchLabels, brokerLabels));
    const controllerBudgets = budgets.filter((budget) => selects(budget.spec!.selector!.matchLabels, controllerLabels));
    expect(brokerBudgets).toHaveLength(1);
    expect(controllerBudgets).toHaveLength(1);
    expect(selects(brokerBudgets[0]!.spec!.selector!.matchLabels, controllerLabels), 'the broker budget must not count controllers').toBe(false);
    expect(brokerBudgets[0]!.spec!.maxUnavailable).toBe(1);
    expect(controllerBudgets[0]!.spec!.maxUnavailable).toBe(1);
  });

  it('give pods a termination grace period that covers a controlled shutdown', () => {
    for (const component of ['controller', 'broker']) {
      const gracePeriodMs = statefulSet(component).spec!.template.spec!.terminationGracePeriodSeconds! * 1000;
      expect(gracePeriodMs).toBeGreaterThan(CONTROLLED_SHUTDOWN_MS_MAX);
    }
  });

  it('offer a client Service that bootstraps from the brokers only', () => {
    const brokers = statefulSet('broker');
    const clientPort = raftkaContainer(brokers).ports!.find((port) => port.name === 'client')!;
    const clientServices = services.filter((service) => service.spec!.clusterIP !== 'None' && selects(service.spec!.selector, brokers.spec!.template.metadata?.labels));
    expect(clientServices).toHaveLength(1);
    expect(selects(clientServices[0]!.spec!.selector, statefulSet('controller').spec!.template.metadata?.labels)).toBe(false);
    expect(clientServices[0]!.spec!.ports!.map((port) => port.targetPort)).toContain(clientPort.name);
  });
});
