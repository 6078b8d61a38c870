// The leader-epoch cache: for each leader epoch, the first offset written in it (KIP-101).
//
// A follower that becomes out of sync asks the leader for the end offset of its latest epoch
// (OffsetsForLeaderEpoch) and truncates to it instead of to the high watermark, which is what
// keeps replicas from diverging after leader changes (KIP-101, KIP-279, KIP-320). This module is
// the pure in-memory structure; `PartitionLog` persists it through an atomic checkpoint file
// every time it changes, before the append that changed it is acknowledged.

import { invariant } from '@raftka/protocol';

export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1;

export interface EpochEntry {
  epoch: number;
  startOffset: number;
}

export interface EpochEndOffset {
  epoch: number;
  endOffset: number;
}

export class LeaderEpochCache {
  // Invariant: epochs strictly increase and start offsets strictly increase along the array.
  private entries: EpochEntry[];

  constructor(entries: readonly EpochEntry[] = []) {
    this.entries = entries.map((entry) => ({ ...entry }));
    this.checkInvariant();
  }

  get all(): readonly EpochEntry[] {
    return this.entries;
  }

  get latestEpoch(): number {
    return this.entries.at(-1)?.epoch ?? UNDEFINED_EPOCH;
  }

  /**
   * Records that `epoch` starts at `startOffset`. Returns true when the cache changed (and must
   * be persisted). An epoch older than the latest is ignored: batches of an old epoch arriving
   * after a newer one would mean the log was not truncated first, which the caller prevents.
   */
  assign(epoch: number, startOffset: number): boolean {
    if (epoch < 0) return false;
    const latest = this.entries.at(-1);
    if (latest !== undefined && epoch <= latest.epoch) return false;
    // Entries starting at or after the new one were written by a leader that lost its data
    // (the log was truncated below them); they no longer describe this log.
    this.entries = this.entries.filter((entry) => entry.startOffset < startOffset);
    this.entries.push({ epoch, startOffset });
    this.checkInvariant();
    return true;
  }

  /**
   * KIP-101 OffsetsForLeaderEpoch: the largest epoch <= `requestedEpoch` held here and the offset
   * where the next epoch begins (or `logEndOffset` for the latest epoch). Follows Kafka's
   * LeaderEpochFileCache.endOffsetFor: an epoch older than every entry answers with the requested
   * epoch and the first entry's start offset; an epoch newer than every entry is undefined.
   */
  endOffsetFor(requestedEpoch: number, logEndOffset: number): EpochEndOffset {
    const latest = this.entries.at(-1);
    if (requestedEpoch === UNDEFINED_EPOCH || latest === undefined) {
      return { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    }
    if (requestedEpoch === latest.epoch) return { epoch: latest.epoch, endOffset: logEndOffset };
    if (requestedEpoch > latest.epoch) return { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    // First entry with an epoch greater than the requested one: its start ends the requested range.
    const higherIndex = this.entries.findIndex((entry) => entry.epoch > requestedEpoch);
    invariant(higherIndex >= 0, 'a higher epoch exists because requestedEpoch < latest epoch');
    const higher = this.entries[higherIndex]!;
    if (higherIndex === 0) return { epoch: requestedEpoch, endOffset: higher.startOffset };
    return { epoch: this.entries[higherIndex - 1]!.epoch, endOffset: higher.startOffset };
  }

  /** Drops entries starting at or after `endOffset` (the log was truncated to it). */
  truncateFromEnd(endOffset: number): boolean {
    const before = this.entries.length;
    this.entries = this.entries.filter((entry) => entry.startOffset < endOffset);
    return before !== this.entries.length;
  }

  /**
   * The log now starts at `startOffset`: entries wholly before it go, and the last entry that
   * starts before it is moved up to it (its epoch still covers the first retained records).
   */
  truncateFromStart(startOffset: number): boolean {
    let lastBefore = -1;
    for (let index = 0; index < this.entries.length; index++) {
      if (this.entries[index]!.startOffset < startOffset) lastBefore = index;
    }
    if (lastBefore < 0) return false;
    const rest = this.entries.slice(lastBefore + 1);
    // The moved entry survives only if no later epoch already starts exactly at the new start.
    const kept = rest[0]?.startOffset === startOffset ? [] : [{ epoch: this.entries[lastBefore]!.epoch, startOffset }];
    this.entries = [...kept, ...rest];
    this.checkInvariant();
    return true;
  }

  clear(): boolean {
    const changed = this.entries.length > 0;
    this.entries = [];
    return changed;
  }

  private checkInvariant(): void {
    for (let index = 1; index < this.entries.length; index++) {
      const previous = this.entries[index - 1]!;
      const current = this.entries[index]!;
      invariant(
        current.epoch > previous.epoch && current.startOffset > previous.startOffset,
        () => `leader epoch cache out of order: ${JSON.stringify(this.entries)}`,
      );
    }
  }
}
