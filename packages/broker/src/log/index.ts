// Public surface of the partition log (re-exported by the package index).
export {
  PartitionLog,
  LATEST_TIMESTAMP,
  EARLIEST_TIMESTAMP,
  APPEND_COALESCE_BYTES_MAX,
  APPEND_QUEUE_BYTES_MAX,
  type PartitionLogOptions,
  type LeaderAppendOptions,
  type AppendResult,
  type ReadOptions,
  type LogReadResult,
  type RecoveryReport,
  type DroppedSegment,
  type LogFaultHooks,
  type RollStep,
  type SwapStep,
  type LogLogger,
} from './partition-log.js';
export {
  logConfigSchema,
  defaultLogConfig,
  makeLogConfig,
  logConfigFromProperties,
  logConfigFromValues,
  NEVER_MS,
  NEVER_MESSAGES,
  type LogConfig,
  type CleanupPolicy,
  type TimestampType,
} from './log-config.js';
export {
  LogManager,
  partitionDirName,
  parsePartitionDirName,
  RETENTION_CHECK_INTERVAL_MS_DEFAULT,
  CLEANER_BACKOFF_MS_DEFAULT,
  FLUSH_CHECK_INTERVAL_MS_DEFAULT,
  RECOVERY_POINT_CHECKPOINT_INTERVAL_MS_DEFAULT,
  type LogManagerOptions,
} from './log-manager.js';
export { LogCleaner, OFFSET_MAP_KEYS_MAX, type CleanResult, type DirtyStats, type LogCleanerOptions } from './log-cleaner.js';
export { FileHandlePool, MAX_OPEN_SEGMENT_FILES_DEFAULT } from './file-pool.js';
export { UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET, type EpochEndOffset, type EpochEntry } from './leader-epoch-cache.js';
export { ManualTime, systemClock, systemTimers, type Clock, type Timers, type TimerHandle } from './time.js';
