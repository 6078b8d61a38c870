// Public surface of @raftka/cli (besides the `raftka` bin): the server's combined config schema,
// from which the README's configuration table is rendered with `renderConfigTable`.
// `pollUntil` is the deadline-bounded polling the local cluster uses; the tests poll with it too.
export { serverConfigSchema, loadServerConfig } from './server/server-config.js';
export type { ServerConfig } from './server/server-config.js';
export { pollUntil } from './cluster/local-cluster.js';
