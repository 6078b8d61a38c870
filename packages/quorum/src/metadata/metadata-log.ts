// The metadata log as the controller and the metadata publisher see it: the contract the quorum
// driver offers above Raft. Kept here as an interface so the controller logic and the publisher
// are written and tested without a running quorum; the driver implements it.

import type { MetadataSnapshotId } from './metadata-snapshot.js';

/** One committed Raft entry of the metadata log: an atomic batch of encoded MetadataRecords. */
export interface CommittedBatch {
  offset: number;
  epoch: number;
  records: Uint8Array[];
}

export interface MetadataSnapshotProvider {
  /** Serializes the state machine as of the last batch it was handed. */
  take(): Promise<Uint8Array>;
  /** Replaces the state machine with a snapshot covering every entry below `snapshotId.endOffset`. */
  load(bytes: Uint8Array, snapshotId: MetadataSnapshotId): Promise<void>;
}

export interface MetadataLog {
  /**
   * Appends records as one atomic entry; resolves once it is committed. Only the quorum leader
   * may append; elsewhere it rejects with NotLeaderError (@raftka/protocol).
   */
  append(records: Uint8Array[]): Promise<{ offset: number; epoch: number }>;
  /** Called for every committed entry carrying records, in offset order. */
  onCommitted(listener: (batch: CommittedBatch) => void | Promise<void>): void;
  setSnapshotProvider(provider: MetadataSnapshotProvider): void;
}
