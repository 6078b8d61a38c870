// Public surface of @raftka/broker.
export * from './log/index.js';
export * from './replica/index.js';
export * from './purgatory/index.js';
export * from './producer-state/index.js';
