// Keeps one ReplicaFetcher per source broker (Kafka's ReplicaFetcherManager with
// num.replica.fetchers = 1): adds and removes followed partitions as leadership moves, and
// replaces a source's fetcher when that broker re-registers at a new address.

import type { LogLogger } from '../log/partition-log.js';
import type { Clock, Timers } from '../log/time.js';
import type { PurgatoryKey } from '../purgatory/purgatory.js';
import type { Partition } from './partition.js';
import { ReplicaFetcher, type LeaderEndpoint, type ReplicaFetcherConfig } from './replica-fetcher.js';

export interface ReplicaFetcherManagerOptions {
  localBrokerId: number;
  config: ReplicaFetcherConfig;
  /** Connects to a source broker; undefined when its address is unknown (not registered). */
  connect: (sourceBrokerId: number) => LeaderEndpoint | undefined;
  clock: Clock;
  timers: Timers;
  logger: LogLogger;
}

export class ReplicaFetcherManager {
  private readonly options: ReplicaFetcherManagerOptions;
  private readonly fetchers = new Map<number, ReplicaFetcher>();
  // Invariant: a partition is followed through at most one fetcher; this maps it to its source.
  private readonly sources = new Map<PurgatoryKey, number>();
  private readonly stopping = new Set<Promise<void>>();
  /** Partitions whose leader had no known address yet; added once it registers. */
  private readonly waitingForLeader = new Map<PurgatoryKey, { partition: Partition; leaderId: number; leaderEpoch: number }>();

  constructor(options: ReplicaFetcherManagerOptions) {
    this.options = options;
  }

  fetcher(sourceBrokerId: number): ReplicaFetcher | undefined {
    return this.fetchers.get(sourceBrokerId);
  }

  /** Follows `partition` from `leaderId` under `leaderEpoch`, replacing any earlier assignment. */
  addPartition(partition: Partition, leaderId: number, leaderEpoch: number): void {
    this.removePartition(partition.key);
    let fetcher = this.fetchers.get(leaderId);
    if (fetcher === undefined) {
      const endpoint = this.options.connect(leaderId);
      if (endpoint === undefined) {
        this.options.logger.warn({ partition: partition.key, leaderId }, 'the leader has no known address; the partition is not replicated until it registers');
        this.waitingForLeader.set(partition.key, { partition, leaderId, leaderEpoch });
        return;
      }
      fetcher = new ReplicaFetcher({
        localBrokerId: this.options.localBrokerId,
        sourceBrokerId: leaderId,
        endpoint,
        config: this.options.config,
        clock: this.options.clock,
        timers: this.options.timers,
        logger: this.options.logger,
      });
      this.fetchers.set(leaderId, fetcher);
    }
    fetcher.addPartition(partition, leaderEpoch);
    this.sources.set(partition.key, leaderId);
  }

  removePartition(key: PurgatoryKey): void {
    this.waitingForLeader.delete(key);
    const source = this.sources.get(key);
    if (source === undefined) return;
    this.sources.delete(key);
    const fetcher = this.fetchers.get(source);
    if (fetcher === undefined) return;
    fetcher.removePartition(key);
    if (fetcher.partitionCount === 0) this.retire(source, fetcher);
  }

  /** A source broker re-registered (new address): reconnect, restarting its partitions. */
  onBrokerChanged(brokerId: number): void {
    const entries = [...this.waitingForLeader.values()].filter((waiting) => waiting.leaderId === brokerId);
    const fetcher = this.fetchers.get(brokerId);
    if (fetcher !== undefined) {
      for (const entry of fetcher.entries()) {
        this.sources.delete(entry.partition.key);
        entries.push({ ...entry, leaderId: brokerId });
      }
      this.retire(brokerId, fetcher);
    }
    for (const { partition, leaderEpoch } of entries) this.addPartition(partition, brokerId, leaderEpoch);
  }

  private retire(source: number, fetcher: ReplicaFetcher): void {
    this.fetchers.delete(source);
    const stopped = fetcher.stop().finally(() => this.stopping.delete(stopped));
    this.stopping.add(stopped);
  }

  async close(): Promise<void> {
    for (const [source, fetcher] of [...this.fetchers]) this.retire(source, fetcher);
    this.sources.clear();
    this.waitingForLeader.clear();
    await Promise.all([...this.stopping]);
  }
}
