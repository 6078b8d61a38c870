// Public surface of @raftka/quorum: the KRaft metadata quorum.
export type * from './raft/types.js';
