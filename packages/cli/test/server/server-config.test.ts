import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, renderConfigTable } from '@raftka/protocol';
import { loadServerConfig, serverConfigSchema } from '../../src/server/server-config.js';

async function withFile(text: string, action: (file: string) => Promise<void>): Promise<void> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-cli-'));
  try {
    const file = path.join(directory, 'server.properties');
    await fs.writeFile(file, text);
    await action(file);
  } finally {
    await fs.rm(directory, { recursive: true, force: true });
  }
}

async function problemsOf(promise: Promise<unknown>): Promise<readonly string[]> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).problems;
}

describe('server config', () => {
  it('loads the shipped single-node config/server.properties', async () => {
    const file = path.resolve(import.meta.dirname, '../../../../config/server.properties');
    const config = await loadServerConfig({ configFile: file, overrides: [], env: {} });
    expect(config.quorum.roles).toEqual(['controller', 'broker']);
    expect(config.quorum.voters).toEqual([{ nodeId: 1, host: '127.0.0.1', port: 9093 }]);
    expect(config.brokerListener).toEqual({ name: 'PLAINTEXT', host: '127.0.0.1', port: 9092 });
    expect(config.quorum.fetchTimeoutMs).toBeGreaterThan(2 * config.quorum.fetchMaxWaitMs);
  });

  it('lets the environment and --override win over the file', async () => {
    await withFile('node.id=1\ncontroller.quorum.voters=1@127.0.0.1:9093\n', async (file) => {
      const config = await loadServerConfig({
        configFile: file,
        overrides: ['controller.quorum.fetch.timeout.ms=1500'],
        env: { RAFTKA_CFG_LOG_LEVEL: 'debug', RAFTKA_CFG_CONTROLLER_QUORUM_FETCH_TIMEOUT_MS: '900' },
      });
      expect(config.quorum.logLevel).toBe('debug');
      expect(config.quorum.fetchTimeoutMs).toBe(1500);
    });
  });

  it('reports every problem on its own line: bad voters, broker role, listener mismatch', async () => {
    await withFile('node.id=1\ncontroller.quorum.voters=1@127.0.0.1:9093,x@host\n', async (file) => {
      const problems = await problemsOf(loadServerConfig({ configFile: file, overrides: [], env: {} }));
      expect(problems).toContainEqual(expect.stringMatching(/controller\.quorum\.voters=.*'x@host' is not of the form id@host:port/));
    });
    await withFile('node.id=1\ncontroller.quorum.voters=1@127.0.0.1:9093\nprocess.roles=controller,broker\n', async (file) => {
      const problems = await problemsOf(loadServerConfig({ configFile: file, overrides: [], env: {} }));
      expect(problems).toEqual([expect.stringMatching(/a broker needs a client listener besides CONTROLLER/)]);
    });
    await withFile('node.id=1\ncontroller.quorum.voters=1@127.0.0.1:9093\nadvertised.listeners=PLAINTEXT://\nreplica.fetch.wait.max.ms=40000\n', async (file) => {
      const problems = await problemsOf(loadServerConfig({ configFile: file, overrides: [], env: {} }));
      expect(problems).toEqual([
        expect.stringMatching(/advertised.listeners: 'PLAINTEXT:\/\/' is not of the form NAME:\/\/host:port/),
        expect.stringMatching(/replica.fetch.wait.max.ms=40000 must be below replica.lag.time.max.ms=30000/),
      ]);
    });
    await withFile('node.id=2\ncontroller.quorum.voters=1@127.0.0.1:9093\nlisteners=CONTROLLER://127.0.0.1:9094\n', async (file) => {
      const problems = await problemsOf(loadServerConfig({ configFile: file, overrides: ['bad'], env: {} }));
      expect(problems).toEqual(['--override bad: expected key=value']);
    });
    await withFile('node.id=2\ncontroller.quorum.voters=1@127.0.0.1:9093\nlisteners=CONTROLLER://127.0.0.1:9094\n', async (file) => {
      const problems = await problemsOf(loadServerConfig({ configFile: file, overrides: [], env: {} }));
      expect(problems).toEqual([expect.stringMatching(/node.id=2: a controller must be listed in controller.quorum.voters/)]);
    });
  });

  it('documents every key for the README table', () => {
    const table = renderConfigTable(serverConfigSchema);
    for (const definition of serverConfigSchema) {
      expect(definition.doc.length).toBeGreaterThan(20);
      expect(table).toContain(`\`${definition.key}\``);
    }
  });
});
