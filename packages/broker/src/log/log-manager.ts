// The broker's set of partition logs and their background chores, after Kafka's LogManager:
// retention every log.retention.check.interval.ms, compaction every log.cleaner.backoff.ms,
// flush.ms checks every log.flush.scheduler.interval.ms, and recovery-point checkpoints every
// log.flush.offset.checkpoint.interval.ms. Timers and clock are injected, so tests drive the
// schedule with ManualTime; each chore can also be run once directly.
//
// One chore of a kind runs at a time; the next is scheduled only after it finished, so a slow
// disk stretches the period instead of piling up work.

import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { RaftkaError, invariant } from '@raftka/protocol';
import { FileHandlePool, MAX_OPEN_SEGMENT_FILES_DEFAULT } from './file-pool.js';
import { LogCleaner } from './log-cleaner.js';
import type { LogConfig } from './log-config.js';
import { PartitionLog, type LogFaultHooks, type LogLogger } from './partition-log.js';
import { systemClock, systemTimers, type Clock, type TimerHandle, type Timers } from './time.js';

export const RETENTION_CHECK_INTERVAL_MS_DEFAULT = 5 * 60 * 1000;
export const CLEANER_BACKOFF_MS_DEFAULT = 15 * 1000;
export const FLUSH_CHECK_INTERVAL_MS_DEFAULT = 1000;
export const RECOVERY_POINT_CHECKPOINT_INTERVAL_MS_DEFAULT = 60 * 1000;

export interface LogManagerOptions {
  /** Root directory holding one `<topic>-<partition>` directory per log. */
  logDir: string;
  clock?: Clock;
  timers?: Timers;
  logger?: LogLogger;
  retentionCheckIntervalMs?: number;
  cleanerBackoffMs?: number;
  flushCheckIntervalMs?: number;
  recoveryPointCheckpointIntervalMs?: number;
  maxOpenFiles?: number;
}

/** The quorum's metadata log directory under the same log dir (see @raftka/quorum). */
const METADATA_LOG_DIRECTORY_NAME = '__cluster_metadata-0';

/** Kafka's partition directory name. Topic names cannot contain '/', so it is unambiguous. */
export function partitionDirName(topic: string, partition: number): string {
  invariant(Number.isInteger(partition) && partition >= 0, 'partition numbers are non-negative integers');
  return `${topic}-${partition}`;
}

/** The topic and partition a directory name stands for, or undefined for other names. */
export function parsePartitionDirName(name: string): { topic: string; partition: number } | undefined {
  // Topic names may contain '-': the partition is what follows the last one.
  const match = /^(.+)-(\d+)$/.exec(name);
  if (!match) return undefined;
  const partition = Number(match[2]);
  return Number.isSafeInteger(partition) ? { topic: match[1]!, partition } : undefined;
}

type Chore = 'retention' | 'cleaner' | 'flush' | 'checkpoint';

export class LogManager {
  readonly logDir: string;
  readonly filePool: FileHandlePool;
  readonly cleaner: LogCleaner;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly logger: LogLogger | undefined;
  private readonly intervalsMs: Record<Chore, number>;
  private readonly logs = new Map<string, PartitionLog>();
  private readonly scheduled = new Map<Chore, TimerHandle>();
  private readonly running = new Set<Promise<unknown>>();
  private started = false;

  constructor(options: LogManagerOptions) {
    this.logDir = options.logDir;
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.logger = options.logger;
    this.filePool = new FileHandlePool(options.maxOpenFiles ?? MAX_OPEN_SEGMENT_FILES_DEFAULT);
    this.cleaner = new LogCleaner({ clock: this.clock });
    this.intervalsMs = {
      retention: options.retentionCheckIntervalMs ?? RETENTION_CHECK_INTERVAL_MS_DEFAULT,
      cleaner: options.cleanerBackoffMs ?? CLEANER_BACKOFF_MS_DEFAULT,
      flush: options.flushCheckIntervalMs ?? FLUSH_CHECK_INTERVAL_MS_DEFAULT,
      checkpoint: options.recoveryPointCheckpointIntervalMs ?? RECOVERY_POINT_CHECKPOINT_INTERVAL_MS_DEFAULT,
    };
    for (const [chore, intervalMs] of Object.entries(this.intervalsMs)) {
      invariant(intervalMs > 0, () => `${chore} interval must be positive`);
    }
  }

  /** Opens (or creates) the log of `topic`-`partition` and manages it from now on. */
  async openLog(args: { topic: string; partition: number; config: LogConfig; faultHooks?: LogFaultHooks }): Promise<PartitionLog> {
    const name = partitionDirName(args.topic, args.partition);
    if (this.logs.has(name)) throw new RaftkaError('INVALID_REQUEST', `the log ${name} is already open`);
    const log = await PartitionLog.open({
      dir: path.join(this.logDir, name),
      config: args.config,
      clock: this.clock,
      timers: this.timers,
      filePool: this.filePool,
      ...(this.logger ? { logger: this.logger } : {}),
      ...(args.faultHooks ? { faultHooks: args.faultHooks } : {}),
    });
    this.logs.set(name, log);
    return log;
  }

  /**
   * Partitions that have a directory under the log dir (what a restarting broker holds). The
   * metadata log's directory (`__cluster_metadata-0`, next to the partition logs as in Kafka) is
   * the quorum's, never a partition log.
   */
  async listPartitionsOnDisk(): Promise<{ topic: string; partition: number }[]> {
    await fs.mkdir(this.logDir, { recursive: true });
    const entries = await fs.readdir(this.logDir, { withFileTypes: true });
    return entries
      .filter((entry) => entry.isDirectory() && entry.name !== METADATA_LOG_DIRECTORY_NAME)
      .map((entry) => parsePartitionDirName(entry.name))
      .filter((parsed): parsed is { topic: string; partition: number } => parsed !== undefined);
  }

  getLog(topic: string, partition: number): PartitionLog | undefined {
    return this.logs.get(partitionDirName(topic, partition));
  }

  /** Stops managing a log and closes it. */
  async closeLog(topic: string, partition: number): Promise<void> {
    const name = partitionDirName(topic, partition);
    const log = this.logs.get(name);
    if (log === undefined) return;
    this.logs.delete(name);
    await log.close();
  }

  /** Starts the periodic chores. */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const chore of Object.keys(this.intervalsMs) as Chore[]) this.schedule(chore);
  }

  private schedule(chore: Chore): void {
    const handle = this.timers.setTimeout(() => {
      this.scheduled.delete(chore);
      const run = this.runChore(chore)
        .catch((error: unknown) => this.logger?.error({ chore, err: error }, 'log chore failed'))
        .finally(() => {
          this.running.delete(run);
          if (this.started) this.schedule(chore);
        });
      this.running.add(run);
    }, this.intervalsMs[chore]);
    this.scheduled.set(chore, handle);
  }

  private runChore(chore: Chore): Promise<unknown> {
    switch (chore) {
      case 'retention':
        return this.runRetentionOnce();
      case 'cleaner':
        return this.runCleanerOnce();
      case 'flush':
        return this.forEachLog((log) => log.flushIfDue());
      case 'checkpoint':
        return this.forEachLog((log) => log.checkpointRecoveryPoint());
    }
  }

  /** One retention pass over every log; returns the number of segments deleted. */
  async runRetentionOnce(): Promise<number> {
    let deleted = 0;
    await this.forEachLog(async (log) => {
      deleted += await log.deleteExpiredSegments();
    });
    return deleted;
  }

  /** One cleaner pass over every compacted log; returns how many logs were compacted. */
  async runCleanerOnce(): Promise<number> {
    let cleaned = 0;
    await this.forEachLog(async (log) => {
      if ((await this.cleaner.clean(log)) !== undefined) cleaned++;
    });
    return cleaned;
  }

  private async forEachLog(work: (log: PartitionLog) => Promise<unknown>): Promise<void> {
    for (const [name, log] of [...this.logs]) {
      try {
        await work(log);
      } catch (error) {
        // One log's failure (e.g. closed meanwhile, offline disk) must not stop the others.
        this.logger?.warn({ log: name, err: error }, 'log chore failed for one log');
      }
    }
  }

  /** Stops the chores, waits for running ones, and closes every log cleanly. */
  async shutdown(): Promise<void> {
    this.started = false;
    for (const handle of this.scheduled.values()) this.timers.clearTimeout(handle);
    this.scheduled.clear();
    await Promise.all([...this.running]);
    for (const [name, log] of [...this.logs]) {
      this.logs.delete(name);
      try {
        await log.close();
      } catch (error) {
        // The others still deserve a clean shutdown; this one recovers on its next open.
        this.logger?.error({ log: name, err: error }, 'closing a log failed');
        await log.abandon();
      }
    }
  }

  /** Chores in progress (tests wait for them to settle after advancing a manual clock). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }
}
