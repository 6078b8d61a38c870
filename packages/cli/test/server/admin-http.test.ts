// admin.http.listener as the server reads it, and the listener's answers for unknown paths and
// methods (the endpoints themselves are exercised on real processes in test/observability).

import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeMetrics } from '@raftka/broker';
import { ConfigError } from '@raftka/protocol';
import { pino } from 'pino';
import { AdminHttpServer, adminHttpAddressFrom } from '../../src/server/admin-http.js';
import { loadServerConfig } from '../../src/server/server-config.js';

const values = (listener: string) => new Map([['admin.http.listener', listener]]);
const servers: AdminHttpServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

describe('admin.http.listener', () => {
  it('is on in the shipped config, off by default, and settable from the environment', async () => {
    const file = path.resolve(import.meta.dirname, '../../../../config/server.properties');
    expect((await loadServerConfig({ configFile: file, overrides: [], env: {} })).adminHttp).toEqual({ host: '127.0.0.1', port: 9644 });
    const base = ['node.id=1', 'controller.quorum.voters=1@127.0.0.1:9093'];
    expect((await loadServerConfig({ configFile: undefined, overrides: base, env: {} })).adminHttp).toBeUndefined();
    const fromEnv = await loadServerConfig({ configFile: undefined, overrides: base, env: { RAFTKA_CFG_ADMIN_HTTP_LISTENER: '[::1]:0' } });
    expect(fromEnv.adminHttp).toEqual({ host: '::1', port: 0 });
  });

  it('refuses a value that is not host:port with one line naming the key', () => {
    for (const bad of ['9644', 'localhost:', 'localhost:99999', 'http://x:1']) {
      expect(() => adminHttpAddressFrom(values(bad))).toThrow(ConfigError);
    }
    expect(() => adminHttpAddressFrom(values('9644'))).toThrow(/admin\.http\.listener=9644: expected host:port/);
  });

  it('answers 404 for unknown paths and 405 for other methods, and reports a port in use', async () => {
    const metrics = new NodeMetrics({ collectProcessMetrics: false });
    const logger = pino({ level: 'silent' });
    const server = await AdminHttpServer.start({ address: { host: '127.0.0.1', port: 0 }, metrics, readiness: () => ({ ready: false, missing: ['x'] }), logger });
    servers.push(server);
    const base = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    const readyz = await fetch(`${base}/readyz`);
    expect(readyz.status).toBe(503);
    expect(await readyz.json()).toEqual({ ready: false, missing: ['x'] });
    await expect(AdminHttpServer.start({ address: { host: '127.0.0.1', port: server.port }, metrics, readiness: () => ({ ready: true }), logger })).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
      message: expect.stringContaining('EADDRINUSE'),
    });
  });
});
