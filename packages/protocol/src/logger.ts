// Raftka logs JSON through pino. The root logger is created by the process that owns stdout
// (the CLI); packages receive a logger and derive one child per component, with `nodeId` bound,
// so that every line says which node and which part of it spoke.
export type { Logger } from 'pino';
