// The image's HEALTHCHECK: GET /healthz on the admin HTTP listener of this container.
// `node healthcheck.mjs /readyz` checks readiness instead (the compose cluster uses it, so that
// "healthy" there means ready for clients).
//
// The listener comes from RAFTKA_CFG_ADMIN_HTTP_LISTENER (host:port), the same variable the
// server reads, so a container that moves the admin port (several nodes sharing one network
// namespace need distinct ports) is still checked on the right one. A wildcard bind address is
// probed on loopback. Exit 0 = healthy, 1 = unhealthy, as Docker expects.

const PROBE_TIMEOUT_MS = 2_000;

const listener = process.env.RAFTKA_CFG_ADMIN_HTTP_LISTENER ?? '';
const separator = listener.lastIndexOf(':');
if (separator < 0) {
  console.error('RAFTKA_CFG_ADMIN_HTTP_LISTENER is not host:port; the admin HTTP listener is off, nothing to check');
  process.exit(1);
}
const bindHost = listener.slice(0, separator).replace(/^\[|\]$/g, '');
const port = listener.slice(separator + 1);
const host = bindHost === '' || bindHost === '0.0.0.0' || bindHost === '::' ? '127.0.0.1' : bindHost;
const endpoint = process.argv[2] ?? '/healthz';
const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}${endpoint}`;

try {
  const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  if (!response.ok) console.error(`${url}: HTTP ${response.status}`);
  process.exit(response.ok ? 0 : 1);
} catch (error) {
  console.error(`${url}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
