// Public surface of @raftka/cli (besides the `raftka` bin): the server's combined config schema,
// from which the README's configuration table is rendered with `renderConfigTable`.
export { serverConfigSchema, loadServerConfig } from './server/server-config.js';
export type { ServerConfig } from './server/server-config.js';
