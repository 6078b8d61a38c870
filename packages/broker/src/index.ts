// Public surface of @raftka/broker.
export * from './log/index.js';
