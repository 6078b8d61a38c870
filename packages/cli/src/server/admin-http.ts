// The node's admin HTTP listener (`admin.http.listener`, off by default): what orchestrators and
// Prometheus ask a running node.
//
//   GET /healthz  200 while the process serves (liveness: nothing else is checked)
//   GET /readyz   200 once the node is ready for traffic; 503 with {"ready":false,"missing":[...]}
//                 naming each missing condition otherwise (rules in @raftka/broker readiness.ts)
//   GET /metrics  Prometheus text exposition of the node's metrics
//
// Plain node:http: three read-only endpoints need no framework. The listener is separate from
// the client and controller listeners so that it can be bound to a management network.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, RaftkaError, type ConfigSchema, type ConfigValue, type Logger } from '@raftka/protocol';
import type { NodeMetrics, Readiness } from '@raftka/broker';

export const ADMIN_HTTP_LISTENER_KEY = 'admin.http.listener';

export const adminHttpConfigSchema: ConfigSchema = [
  {
    key: ADMIN_HTTP_LISTENER_KEY,
    type: 'string',
    default: '',
    doc: 'host:port of the admin HTTP listener serving /healthz, /readyz and /metrics (Prometheus); empty disables it. Bind it to a management address: it is unauthenticated.',
    group: 'server',
  },
];

/** How long closing waits for scrapes in progress before dropping their connections. */
export const ADMIN_HTTP_CLOSE_MS_MAX = 1_000;

export interface AdminHttpAddress {
  host: string;
  port: number;
}

const LISTENER_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[^:/\s[\]]+):(\d{1,5})$/;

/** Reads `admin.http.listener` (undefined when empty); a malformed value is a config problem. */
export function adminHttpAddressFrom(values: ReadonlyMap<string, ConfigValue>): AdminHttpAddress | undefined {
  const text = (values.get(ADMIN_HTTP_LISTENER_KEY) as string | undefined)?.trim() ?? '';
  if (text === '') return undefined;
  const match = LISTENER_PATTERN.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65_535) {
    throw new ConfigError([`${ADMIN_HTTP_LISTENER_KEY}=${text}: expected host:port, e.g. 127.0.0.1:9644 (port 0 picks a free one)`]);
  }
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

export interface AdminHttpOptions {
  address: AdminHttpAddress;
  metrics: NodeMetrics;
  readiness: () => Readiness;
  logger: Logger;
}

export class AdminHttpServer {
  private constructor(
    private readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(options: AdminHttpOptions): Promise<AdminHttpServer> {
    const logger = options.logger.child({ component: 'admin-http' });
    const server = http.createServer((request, response) => {
      void handle(options, request, response).catch((error: unknown) => {
        logger.warn({ err: error, url: request.url }, 'admin HTTP request failed');
        if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', `${error instanceof Error ? error.message : String(error)}\n`);
        else response.destroy();
      });
    });
    // Scrapes are short; a client holding a connection open must not keep the node from stopping.
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new RaftkaError(
            'INVALID_CONFIG',
            `${ADMIN_HTTP_LISTENER_KEY}=${options.address.host}:${options.address.port}: cannot listen (${error.code ?? error.message}); choose a free port or leave the key empty`,
            { cause: error },
          ),
        ),
      );
      server.listen(options.address.port, options.address.host, () => {
        server.removeAllListeners('error');
        server.on('error', (error) => logger.warn({ err: error }, 'admin HTTP listener error'));
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    logger.info({ host: options.address.host, port }, 'admin HTTP listener started');
    return new AdminHttpServer(server, port);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.closeAllConnections();
        resolve();
      }, ADMIN_HTTP_CLOSE_MS_MAX);
      this.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }
}

function send(response: http.ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  response.end(body);
}

async function handle(options: AdminHttpOptions, request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    send(response, 405, 'text/plain; charset=utf-8', 'only GET is served here\n');
    return;
  }
  switch (path) {
    case '/healthz':
      send(response, 200, 'application/json', '{"status":"ok"}\n');
      return;
    case '/readyz': {
      const readiness = options.readiness();
      send(response, readiness.ready ? 200 : 503, 'application/json', `${JSON.stringify(readiness)}\n`);
      return;
    }
    case '/metrics':
      send(response, 200, options.metrics.contentType, await options.metrics.render());
      return;
    default:
      send(response, 404, 'text/plain; charset=utf-8', 'not found: the admin listener serves /healthz, /readyz and /metrics\n');
  }
}
