// Public surface of the idempotent-producer state (re-exported by the package index).
export {
  ProducerStateManager,
  incrementSequence,
  PRODUCER_BATCHES_RETAINED_MAX,
  PRODUCER_ID_EXPIRATION_MS_DEFAULT,
  SEQUENCE_MAX,
  type BatchMetadata,
  type ProducerEntry,
  type ProducerBatch,
  type LoggedBatch,
  type AppendValidation,
  type ProducerStateOptions,
} from './producer-state.js';
export {
  encodeProducerSnapshot,
  decodeProducerSnapshot,
  snapshotFileName,
  listSnapshotOffsets,
  writeSnapshotFile,
  readSnapshotFile,
  deleteSnapshotsAbove,
  deleteSnapshotsExceptNewest,
  SNAPSHOT_MAGIC,
  SNAPSHOT_VERSION,
  SNAPSHOT_SUFFIX,
  type ProducerSnapshot,
  type SnapshotDecodeResult,
} from './snapshot.js';
export {
  rebuildProducerState,
  logHeaderSource,
  REPLAY_READ_BYTES,
  type HeaderSource,
  type RebuildOptions,
  type RebuildReport,
  type RebuildLogger,
} from './rebuild.js';
