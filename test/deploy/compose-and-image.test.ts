// The image definition (deploy/docker/Dockerfile) and the compose cluster
// (deploy/compose/docker-compose.yml), checked without Docker: each node's environment -- the
// image's ENV defaults overlaid with the service's -- is a configuration the server accepts, and
// the EXTERNAL addresses brokers advertise are the ones published to the host. (test/containers builds
// and runs the image itself.)
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadServerConfig } from '@raftka/cli';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dockerfile = readFileSync(path.join(root, 'deploy/docker/Dockerfile'), 'utf8');

/** The runtime stage's instructions, continuation lines joined, comments dropped. */
function runtimeInstructions(): string[] {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  const stageStart = lines.findIndex((line) => /^FROM\s.*\sAS\s+runtime$/i.test(line));
  expect(stageStart, 'a stage named runtime').toBeGreaterThanOrEqual(0);
  return lines.slice(stageStart);
}

function instruction(name: string): string[] {
  return runtimeInstructions()
    .filter((line) => line.toUpperCase().startsWith(`${name} `))
    .map((line) => line.slice(name.length).trim());
}

/** ENV KEY=VALUE pairs of the runtime stage (values without spaces or quotes, as written there). */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const args of instruction('ENV')) {
    for (const pair of args.split(/\s+/)) {
      const at = pair.indexOf('=');
      expect(at, `ENV ${pair} is KEY=VALUE`).toBeGreaterThan(0);
      env[pair.slice(0, at)] = pair.slice(at + 1);
    }
  }
  return env;
}

interface ComposeService {
  image?: string;
  healthcheck?: { test?: string[]; disable?: boolean };
  hostname?: string;
  entrypoint?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
  network_mode?: string;
}

const compose = parse(readFileSync(path.join(root, 'deploy/compose/docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};
const nodeServices = Object.entries(compose.services).filter(([, service]) => service.entrypoint === undefined);

function serviceEnv(service: ComposeService): Record<string, string> {
  return { ...imageEnv(), ...Object.fromEntries(Object.entries(service.environment ?? {}).map(([key, value]) => [key, String(value)])) };
}

/** host ports published by a service: "127.0.0.1:19092-19094:19092-19094" -> 19092..19094 mapped to themselves. */
function publishedPorts(service: ComposeService): Map<number, number> {
  const published = new Map<number, number>();
  for (const entry of service.ports ?? []) {
    const match = /^(?:[\d.]+:)?(\d+)(?:-(\d+))?:(\d+)(?:-(\d+))?$/.exec(entry);
    expect(match, `port mapping ${entry}`).not.toBeNull();
    const hostFirst = Number(match![1]);
    const containerFirst = Number(match![3]);
    const count = Number(match![2] ?? match![1]) - hostFirst + 1;
    for (let index = 0; index < count; index++) published.set(containerFirst + index, hostFirst + index);
  }
  return published;
}

describe('deploy/docker/Dockerfile', () => {
  it('runs as a non-root user with data in a volume where log.dirs points', () => {
    const users = instruction('USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    const logDirs = imageEnv()['RAFTKA_CFG_LOG_DIRS'];
    expect(instruction('VOLUME').join(' ')).toContain(`"${logDirs}"`);
  });

  it('defaults to a single combined node the server accepts, with the admin listener exposed and health-checked', async () => {
    const env = imageEnv();
    const config = await loadServerConfig({ configFile: undefined, overrides: [], env });
    expect(config.quorum.roles).toEqual(['controller', 'broker']);
    expect(config.adminHttp).toBeDefined();
    const exposed = instruction('EXPOSE').join(' ').split(/\s+/).map(Number);
    expect(exposed).toContain(config.adminHttp!.port);
    expect(exposed).toContain(config.brokerListener!.port);
    expect(instruction('HEALTHCHECK').join(' ')).toContain('healthcheck.mjs');
    expect(readFileSync(path.join(root, 'deploy/docker/healthcheck.mjs'), 'utf8')).toContain('/healthz');
  });
});

describe('deploy/compose/docker-compose.yml', () => {
  it('runs 3 controllers and 3 brokers whose configurations the server accepts', async () => {
    const roles: string[] = [];
    const nodeIds = new Set<number>();
    for (const [name, service] of nodeServices) {
      const config = await loadServerConfig({ configFile: undefined, overrides: [], env: serviceEnv(service) });
      roles.push(config.quorum.roles.join(','));
      nodeIds.add(config.quorum.nodeId);
      expect(config.controller.offsetsTopicReplicationFactor, name).toBe(3);
      expect(config.controller.minInsyncReplicas, name).toBe(2);
      if (config.quorum.roles.includes('controller')) {
        // A controller's voter entry names its own compose host name.
        const voter = config.quorum.voters.find((candidate) => candidate.nodeId === config.quorum.nodeId);
        expect(voter?.host, name).toBe(service.hostname ?? name);
      }
    }
    expect(roles.sort()).toEqual(['broker', 'broker', 'broker', 'controller', 'controller', 'controller']);
    // "healthy" in `docker-compose ps` is what the README waits for before using the cluster.
    for (const [name, service] of nodeServices) expect(service.healthcheck?.test?.join(' '), name).toContain('healthcheck.mjs /readyz');
    expect(nodeIds.size, 'node ids are unique').toBe(6);
  });

  it('gives every node its own named volume at log.dirs', () => {
    const volumes = new Set<string>();
    for (const [name, service] of nodeServices) {
      const logDirs = serviceEnv(service)['RAFTKA_CFG_LOG_DIRS']!;
      const mount = (service.volumes ?? []).find((volume) => volume.endsWith(`:${logDirs}`));
      expect(mount, `${name}: a volume at ${logDirs}`).toBeDefined();
      const volume = mount!.slice(0, mount!.indexOf(':'));
      expect(Object.keys(compose.volumes), `${name}: ${volume} is a named volume`).toContain(volume);
      volumes.add(volume);
    }
    expect(volumes.size).toBe(nodeServices.length);
  });

  it('advertises an EXTERNAL address the host reaches through a published port, and an INTERNAL one the brokers replicate over', async () => {
    for (const [name, service] of nodeServices) {
      const config = await loadServerConfig({ configFile: undefined, overrides: [], env: serviceEnv(service) });
      if (!config.quorum.roles.includes('broker')) continue;
      expect(service.network_mode, `${name}: its own network namespace (a partition can cut one broker off)`).toBeUndefined();
      const published = publishedPorts(service);
      const listeners = config.brokerListeners!;
      expect(listeners.interBrokerListenerName, name).toBe('INTERNAL');
      const byName = new Map(listeners.clientListeners.map((listener) => [listener.name, listener]));
      const internal = byName.get('INTERNAL');
      expect(internal?.advertised?.host, `${name}: INTERNAL is advertised by its compose host name`).toBe(service.hostname ?? name);
      expect(published.has(internal!.port), `${name}: INTERNAL stays on the compose network`).toBe(false);
      const external = byName.get('EXTERNAL');
      expect(external?.advertised?.host, `${name}: EXTERNAL advertises the host's loopback`).toBe('127.0.0.1');
      const port = external!.advertised!.port;
      expect(external!.port, `${name}: EXTERNAL listens where it advertises`).toBe(port);
      expect(published.get(port), `${name}: port ${port} is published on the same host port`).toBe(port);
      expect(published.has(config.adminHttp!.port), `${name}: admin port published`).toBe(true);
      for (const entry of service.ports ?? []) expect(entry, `${name}: published on loopback only`).toMatch(/^127\.0\.0\.1:/);
    }
  });
});
