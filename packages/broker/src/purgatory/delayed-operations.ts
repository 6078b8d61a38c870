// The two delayed operations the broker parks in purgatories (Kafka's DelayedProduce and
// DelayedFetch), as pure objects: they read partition state through callbacks the replica
// manager supplies and answer through a completion callback, exactly once.
//
// Wiring (the replica manager): after an acks=all append, park a DelayedProduce keyed by each
// partition; whenever a partition's HW moves or it stops being led here, call
// `produce.checkAndComplete(key)`. After a leader append (followers may fetch more) and after a
// HW move (consumers may fetch more), call `fetch.checkAndComplete(key)`. Call `tick(nowMs)` on
// both from a timer.

import type { ErrorCodeName } from '@raftka/protocol';
import type { ProduceAckCheck } from '../replica/leader-replica-state.js';
import type { DelayedOperation, PurgatoryKey } from './purgatory.js';

// ---- produce (acks=all) ----

export interface DelayedProducePartition {
  key: PurgatoryKey;
  /** Last offset of the appended batches; acknowledged once the HW is past it. */
  lastOffset: number;
}

export type ProducePartitionCode = 'NONE' | 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' | 'NOT_LEADER_OR_FOLLOWER' | 'REQUEST_TIMED_OUT';

/**
 * How a partition stands for acks=all: `leader.checkProduceAcked(lastOffset)` while this broker
 * still leads it in the epoch of the append, `not-leader` once it does not (KIP-101: a new
 * leader may truncate the batch away, so it must not be acknowledged).
 */
export type ProducePartitionProbe = ProduceAckCheck | { kind: 'not-leader' };

export interface DelayedProduceOptions {
  partitions: readonly DelayedProducePartition[];
  /** now + request.timeout.ms (the produce request's timeout). */
  deadlineMs: number;
  probe: (partition: DelayedProducePartition) => ProducePartitionProbe;
  onComplete: (codes: ReadonlyMap<PurgatoryKey, ProducePartitionCode>) => void;
}

export class DelayedProduce implements DelayedOperation {
  readonly keys: readonly PurgatoryKey[];
  readonly deadlineMs: number;
  private readonly options: DelayedProduceOptions;
  // Invariant: a partition's code, once set, never changes.
  private readonly codes = new Map<PurgatoryKey, ProducePartitionCode>();
  private completed = false;

  constructor(options: DelayedProduceOptions) {
    this.options = options;
    this.keys = options.partitions.map((partition) => partition.key);
    this.deadlineMs = options.deadlineMs;
  }

  tryComplete(): boolean {
    if (this.completed) return true;
    for (const partition of this.options.partitions) {
      if (this.codes.has(partition.key)) continue;
      const probe = this.options.probe(partition);
      if (probe.kind === 'not-leader') this.codes.set(partition.key, 'NOT_LEADER_OR_FOLLOWER');
      else if (probe.kind === 'done') this.codes.set(partition.key, probe.code);
    }
    if (this.codes.size < this.options.partitions.length) return false;
    this.finish();
    return true;
  }

  expire(): void {
    for (const partition of this.options.partitions) {
      if (!this.codes.has(partition.key)) this.codes.set(partition.key, 'REQUEST_TIMED_OUT');
    }
    this.finish();
  }

  private finish(): void {
    if (this.completed) return;
    this.completed = true;
    this.options.onComplete(this.codes);
  }
}

// ---- fetch (fetch.min.bytes / fetch.max.wait.ms) ----

export interface DelayedFetchPartition {
  key: PurgatoryKey;
  fetchOffset: number;
}

/**
 * How much a partition could serve now: bytes between the fetch offset and the bound the
 * fetcher may read to — the HW for consumers, the LEO for followers (`fetchUpperBound`). Any
 * other state (leadership moved, the fetch offset is out of range, the log diverged) answers now.
 */
export type FetchPartitionProbe = { kind: 'bytes'; bytes: number } | { kind: 'answer-now'; code: ErrorCodeName };

export type FetchCompletion = 'min-bytes' | 'partition-error' | 'timeout';

export interface DelayedFetchOptions {
  partitions: readonly DelayedFetchPartition[];
  /** fetch.min.bytes. */
  minBytes: number;
  /** now + fetch.max.wait.ms. */
  deadlineMs: number;
  probe: (partition: DelayedFetchPartition) => FetchPartitionProbe;
  /** The caller then reads the logs and answers with whatever is there. */
  onComplete: (reason: FetchCompletion) => void;
}

/** The exclusive offset a fetcher may read up to (Kafka's FetchIsolation). */
export function fetchUpperBound(fetcher: 'consumer' | 'follower', state: { highWatermark: number; logEndOffset: number }): number {
  return fetcher === 'follower' ? state.logEndOffset : state.highWatermark;
}

export class DelayedFetch implements DelayedOperation {
  readonly keys: readonly PurgatoryKey[];
  readonly deadlineMs: number;
  private readonly options: DelayedFetchOptions;
  private completed = false;

  constructor(options: DelayedFetchOptions) {
    this.options = options;
    this.keys = options.partitions.map((partition) => partition.key);
    this.deadlineMs = options.deadlineMs;
  }

  tryComplete(): boolean {
    if (this.completed) return true;
    let bytes = 0;
    for (const partition of this.options.partitions) {
      const probe = this.options.probe(partition);
      if (probe.kind === 'answer-now') return this.finish('partition-error');
      bytes += probe.bytes;
    }
    if (bytes < this.options.minBytes) return false;
    return this.finish('min-bytes');
  }

  expire(): void {
    this.finish('timeout');
  }

  private finish(reason: FetchCompletion): true {
    if (!this.completed) {
      this.completed = true;
      this.options.onComplete(reason);
    }
    return true;
  }
}
