// Public surface of @raftka/protocol: wire and disk formats shared by every package.
export * from './errors.js';
export * from './config.js';
export * from './record-batch/header.js';
export type { Logger } from './logger.js';
