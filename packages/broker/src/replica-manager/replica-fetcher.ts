// The follower side of replication (Kafka's ReplicaFetcherThread): one fetcher per source broker
// replicates every partition this broker follows whose leader is that broker, with one long-poll
// Fetch request for all of them at a time.
//
// Per partition, a FollowerReplicaState (replica/follower-replica-state.ts) decides what to send:
//   reconciling: OffsetForLeaderEpoch for our latest epoch, then truncate to where our log and the
//     leader's agree (KIP-101; KIP-279 asks again when the leader answers with an older epoch).
//     Never to the high watermark: a follower's HW may lag, and truncating to it can drop
//     records that were acknowledged with acks=all, which a later election could then lose.
//   fetching: Fetch at our log end offset with our latest epoch (KIP-320); a diverging-epoch
//     answer sends the partition back to reconciling.
// Records are appended as they are (offsets and epochs assigned by the leader) and the HW follows
// the leader's, bounded by our log end offset.
//
// Every step on a partition runs under the partition's lock and first checks that the partition
// is still followed under the same leader epoch, so a late response from an old leader is dropped.
// Failures back the partition (or, for transport failures, the whole fetcher) off for
// `fetchBackoffMs`; the metadata log brings leadership changes, which restart the partition.

import { assertNever, forEachBatch, type ErrorCodeName } from '@raftka/protocol';
import type { LogLogger } from '../log/partition-log.js';
import type { Clock, TimerHandle, Timers } from '../log/time.js';
import type { PurgatoryKey } from '../purgatory/purgatory.js';
import { FollowerReplicaState, type TruncationDecision } from '../replica/follower-replica-state.js';
import type { Partition } from './partition.js';
import type {
  FetchPartitionResponse,
  FetchRequest,
  OffsetForLeaderEpochPartitionResponse,
  OffsetForLeaderEpochRequest,
} from './requests.js';

/** How a fetcher reaches its source broker (gRPC in production, see replica-fetcher-transport.ts). */
export interface LeaderEndpoint {
  /** `signal` aborts the call (the promise then rejects); the leader's answer, if any, is dropped. */
  fetch(request: FetchRequest, timeoutMs: number, signal?: AbortSignal): Promise<FetchPartitionResponse[]>;
  offsetForLeaderEpoch(request: OffsetForLeaderEpochRequest, timeoutMs: number): Promise<OffsetForLeaderEpochPartitionResponse[]>;
  close(): void;
}

export interface ReplicaFetcherConfig {
  /** replica.fetch.wait.max.ms: how long the leader may hold a fetch. */
  fetchWaitMaxMs: number;
  /** replica.fetch.min.bytes. */
  fetchMinBytes: number;
  /** replica.fetch.max.bytes: per partition. */
  fetchMaxBytes: number;
  /** replica.fetch.response.max.bytes: per request. */
  fetchResponseMaxBytes: number;
  /** replica.fetch.backoff.ms: pause after an error. */
  fetchBackoffMs: number;
  /** Added to fetchWaitMaxMs for the whole round trip before it counts as failed. */
  requestTimeoutMs: number;
}

interface FetcherPartition {
  readonly partition: Partition;
  readonly leaderEpoch: number;
  state: FollowerReplicaState;
  /** Not before this time (after an error). */
  delayUntilMs: number;
  /** Answers in a row saying the leader does not lead our epoch yet (see LEADER_CATCH_UP_RETRY_MS). */
  leaderBehindAnswers: number;
}

/**
 * First retry after the leader answered that it does not lead our epoch yet. Right after a
 * leader change the follower often learns of it from the metadata log a few milliseconds before
 * the new leader does; waiting out replica.fetch.backoff.ms (1 s) then would hold up the new
 * leader's high watermark, and every acks=all write, for that second. The retry doubles on
 * every such answer in a row, up to replica.fetch.backoff.ms.
 */
export const LEADER_CATCH_UP_RETRY_MS = 25;

/** Errors that mean one side's view of leadership is behind: wait for the metadata log to catch up. */
const METADATA_LAG_ERRORS: ReadonlySet<ErrorCodeName> = new Set<ErrorCodeName>([
  'NOT_LEADER_OR_FOLLOWER',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
]);

export class ReplicaFetcher {
  readonly sourceBrokerId: number;
  private readonly localBrokerId: number;
  private readonly endpoint: LeaderEndpoint;
  private readonly config: ReplicaFetcherConfig;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly logger: LogLogger;
  // Invariant: an entry is replaced (never mutated into another leadership) when the partition's
  // leader epoch changes; a step that finds its entry replaced drops its result.
  private readonly partitions = new Map<PurgatoryKey, FetcherPartition>();
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;
  private wakeTimer: TimerHandle | undefined;
  /** Aborts the fetch in flight (see addPartition). */
  private longPoll: AbortController | undefined;

  constructor(args: {
    localBrokerId: number;
    sourceBrokerId: number;
    endpoint: LeaderEndpoint;
    config: ReplicaFetcherConfig;
    clock: Clock;
    timers: Timers;
    logger: LogLogger;
  }) {
    this.localBrokerId = args.localBrokerId;
    this.sourceBrokerId = args.sourceBrokerId;
    this.endpoint = args.endpoint;
    this.config = args.config;
    this.clock = args.clock;
    this.timers = args.timers;
    this.logger = args.logger;
  }

  get partitionCount(): number {
    return this.partitions.size;
  }

  /** Partitions this fetcher replicates, with their phase (for inspection and tests). */
  describe(): { key: PurgatoryKey; leaderEpoch: number; phase: FollowerReplicaState['state'] }[] {
    return [...this.partitions.values()].map((entry) => ({ key: entry.partition.key, leaderEpoch: entry.leaderEpoch, phase: entry.state.state }));
  }

  /** Starts (or restarts) replicating `partition` from this fetcher's source under `leaderEpoch`. */
  addPartition(partition: Partition, leaderEpoch: number): void {
    this.partitions.set(partition.key, {
      partition,
      leaderEpoch,
      state: new FollowerReplicaState({ leaderId: this.sourceBrokerId, leaderEpoch, log: partition.log }),
      delayUntilMs: 0,
      leaderBehindAnswers: 0,
    });
    // A long-poll in flight does not carry this partition and may be held at the leader for
    // replica.fetch.wait.max.ms. Right after a leader change that wait is on the critical path:
    // the new leader's high watermark (and every acks=all write) waits for this follower's
    // first fetch. So the long-poll is given up and the next request, with this partition in
    // it, goes at once. The abandoned answer is never applied; its data is simply fetched again.
    this.longPoll?.abort();
    this.start();
    this.notify();
  }

  removePartition(key: PurgatoryKey): boolean {
    return this.partitions.delete(key);
  }

  /** Partitions replicated here (so that a replaced fetcher can hand them over). */
  entries(): { partition: Partition; leaderEpoch: number }[] {
    return [...this.partitions.values()].map((entry) => ({ partition: entry.partition, leaderEpoch: entry.leaderEpoch }));
  }

  private start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops the loop after the request in flight and closes the connection. */
  async stop(): Promise<void> {
    this.running = false;
    // Responses still in flight find their partitions gone and are dropped: a replacement
    // fetcher may follow the same partitions already.
    this.partitions.clear();
    this.notify();
    // Closing the endpoint cancels the call in flight, so stopping never waits out a long-poll.
    this.endpoint.close();
    await this.loop;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    if (this.wakeTimer !== undefined) {
      this.timers.clearTimeout(this.wakeTimer);
      this.wakeTimer = undefined;
    }
    wake?.();
  }

  private waitForWork(untilMs: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      if (untilMs !== Infinity) this.wakeTimer = this.timers.setTimeout(() => this.notify(), Math.max(1, untilMs - this.clock.nowMs()));
    });
  }

  private async run(): Promise<void> {
    while (this.running) {
      const nowMs = this.clock.nowMs();
      const ready: FetcherPartition[] = [];
      let nextDelayMs = Infinity;
      for (const entry of this.partitions.values()) {
        if (entry.delayUntilMs <= nowMs) ready.push(entry);
        else nextDelayMs = Math.min(nextDelayMs, entry.delayUntilMs);
      }
      if (ready.length === 0) {
        await this.waitForWork(nextDelayMs);
        continue;
      }
      const asking = ready.filter((entry) => entry.state.state.kind === 'reconciling');
      try {
        if (asking.length > 0) await this.reconcile(asking);
        // Chosen after the reconcile: a partition that just agreed with the leader goes into
        // this fetch rather than waiting out the next long-poll.
        const fetching = ready.filter((entry) => entry.state.state.kind === 'fetching' && entry.delayUntilMs <= this.clock.nowMs());
        if (fetching.length > 0 && this.running) await this.fetch(fetching);
      } catch (error) {
        // Transport failure (leader down, connection refused): every partition waits, then retries.
        this.logger.debug({ sourceBrokerId: this.sourceBrokerId, err: error }, 'replica fetch failed; backing off');
        const untilMs = this.clock.nowMs() + this.config.fetchBackoffMs;
        for (const entry of ready) entry.delayUntilMs = untilMs;
      }
    }
  }

  private isCurrent(entry: FetcherPartition): boolean {
    const role = entry.partition.role;
    return this.partitions.get(entry.partition.key) === entry && role.kind === 'follower' && role.leaderEpoch === entry.leaderEpoch;
  }

  private backOff(entry: FetcherPartition): void {
    entry.delayUntilMs = this.clock.nowMs() + this.config.fetchBackoffMs;
  }

  /** OffsetForLeaderEpoch for every partition that must reconcile, then truncate each. */
  private async reconcile(entries: FetcherPartition[]): Promise<void> {
    const asked = entries.flatMap((entry) => {
      const step = entry.state.nextStep(entry.partition.log);
      // The phase may have moved since the entries were picked; such a partition waits a round.
      return step.kind === 'ask-epoch' ? [{ entry, epoch: step.epoch }] : [];
    });
    if (asked.length === 0) return;
    const responses = await this.endpoint.offsetForLeaderEpoch(
      {
        replicaId: this.localBrokerId,
        partitions: asked.map(({ entry, epoch }) => ({
          topic: entry.partition.topic,
          partition: entry.partition.partitionId,
          currentLeaderEpoch: entry.leaderEpoch,
          leaderEpoch: epoch,
        })),
      },
      this.config.requestTimeoutMs,
    );
    const byKey = new Map(responses.map((response) => [`${response.topic}-${response.partition}`, response]));
    for (const { entry } of asked) {
      const response = byKey.get(entry.partition.key);
      if (response === undefined || !this.isCurrent(entry)) continue;
      if (response.errorCode !== 'NONE') {
        this.onPartitionError(entry, response.errorCode, response.errorMessage);
        continue;
      }
      entry.leaderBehindAnswers = 0;
      await this.onPartition(entry, async () => {
        if (!this.isCurrent(entry) || entry.state.state.kind !== 'reconciling') return;
        const decision = entry.state.onEpochAnswer(entry.partition.log, { epoch: response.leaderEpoch, endOffset: response.endOffset });
        await this.applyTruncation(entry, decision);
      });
    }
  }

  /** Carries out a truncation decision (with the partition lock held). */
  private async applyTruncation(entry: FetcherPartition, decision: TruncationDecision): Promise<void> {
    switch (decision.kind) {
      case 'truncate-and-fetch':
      case 'truncate-and-ask-again':
        if (decision.offset < entry.partition.log.logEndOffset) {
          this.logger.info(
            { partition: entry.partition.key, leaderEpoch: entry.leaderEpoch, from: entry.partition.log.logEndOffset, to: decision.offset },
            'truncating the follower log to where it agrees with the leader (KIP-101)',
          );
        }
        await entry.partition.truncateTo(decision.offset);
        entry.state.onTruncated(entry.partition.log, decision);
        return;
      case 'retry-later':
        this.backOff(entry);
        return;
      default:
        assertNever(decision, 'truncation decision');
    }
  }

  /** One long-poll Fetch for every fetching partition; appends what comes back. */
  private async fetch(entries: FetcherPartition[]): Promise<void> {
    const asked = entries.flatMap((entry) => {
      const step = entry.state.nextStep(entry.partition.log);
      return step.kind === 'fetch' ? [{ entry, step }] : [];
    });
    if (asked.length === 0) return;
    const request: FetchRequest = {
      replicaId: this.localBrokerId,
      maxWaitMs: this.config.fetchWaitMaxMs,
      minBytes: this.config.fetchMinBytes,
      maxBytes: this.config.fetchResponseMaxBytes,
      isolationLevel: 'READ_UNCOMMITTED',
      partitions: asked.map(({ entry, step }) => ({
        topic: entry.partition.topic,
        partition: entry.partition.partitionId,
        currentLeaderEpoch: entry.leaderEpoch,
        fetchOffset: step.fetchOffset,
        lastFetchedEpoch: step.lastFetchedEpoch,
        partitionMaxBytes: this.config.fetchMaxBytes,
      })),
    };
    const longPoll = new AbortController();
    this.longPoll = longPoll;
    let responses: FetchPartitionResponse[];
    try {
      responses = await this.endpoint.fetch(request, this.config.fetchWaitMaxMs + this.config.requestTimeoutMs, longPoll.signal);
    } catch (error) {
      // Given up for a partition added meanwhile (addPartition): not a failure, no backoff.
      if (longPoll.signal.aborted) return;
      throw error;
    } finally {
      if (this.longPoll === longPoll) this.longPoll = undefined;
    }
    const byKey = new Map(responses.map((response) => [`${response.topic}-${response.partition}`, response]));
    for (const { entry, step } of asked) {
      const response = byKey.get(entry.partition.key);
      if (response === undefined || !this.isCurrent(entry)) continue;
      if (response.errorCode === 'NONE') {
        await this.onPartition(entry, () => this.onFetched(entry, step.fetchOffset, response));
      } else if (response.errorCode === 'OFFSET_OUT_OF_RANGE') {
        await this.onPartition(entry, () => this.onOutOfRange(entry, step.fetchOffset, response));
      } else {
        this.onPartitionError(entry, response.errorCode, response.errorMessage);
      }
    }
  }

  private async onFetched(entry: FetcherPartition, fetchOffset: number, response: FetchPartitionResponse): Promise<void> {
    const { partition } = entry;
    // The state may have moved on while the response was in flight (a truncation, another append).
    if (!this.isCurrent(entry) || entry.state.state.kind !== 'fetching' || entry.state.state.fetchOffset !== fetchOffset) return;
    entry.leaderBehindAnswers = 0;
    if (response.divergingEpoch !== undefined && response.divergingEpoch.epoch >= 0) {
      // KIP-320: the leader says our log diverges; truncate as OffsetForLeaderEpoch would have us.
      this.logger.debug({ partition: partition.key, leaderEpoch: entry.leaderEpoch, fetchOffset, divergingEpoch: response.divergingEpoch }, 'the leader reports a diverging epoch (KIP-320)');
      const decision = entry.state.onDivergence(partition.log, response.divergingEpoch);
      await this.applyTruncation(entry, decision);
      return;
    }
    // Fetch responses may end in a partial batch (a size limit); only whole batches are appended.
    const whole = forEachBatch(response.records, () => undefined);
    if (whole.batchCount > 0) {
      const records = whole.endPosition === response.records.length ? response.records : response.records.subarray(0, whole.endPosition);
      await partition.appendAsFollower(records);
      entry.state.onAppended(partition.log);
    }
    partition.updateFollowerHighWatermark(response.highWatermark);
  }

  private async onOutOfRange(entry: FetcherPartition, fetchOffset: number, response: FetchPartitionResponse): Promise<void> {
    const { partition } = entry;
    if (!this.isCurrent(entry)) return;
    if (response.logStartOffset > fetchOffset) {
      // The leader deleted what we would fetch next (retention): start over at its log start.
      this.logger.warn({ partition: partition.key, fetchOffset, leaderLogStartOffset: response.logStartOffset }, 'the leader no longer holds our fetch offset; restarting the replica at its log start');
      await partition.truncateFullyAndStartAt(response.logStartOffset);
    } else {
      this.backOff(entry);
    }
    // Either way, reconcile from scratch: a new state derived from what the log now holds.
    entry.state = new FollowerReplicaState({ leaderId: this.sourceBrokerId, leaderEpoch: entry.leaderEpoch, log: partition.log });
  }

  /**
   * Runs one partition's step under its lock. A failure (a batch the log refuses, a storage
   * error) stops only that partition: it backs off and reconciles again from what its log holds.
   */
  private async onPartition(entry: FetcherPartition, step: () => Promise<void>): Promise<void> {
    try {
      await entry.partition.withLock(step);
    } catch (error) {
      this.logger.warn({ partition: entry.partition.key, err: error }, 'replicating a partition failed; it backs off and reconciles again');
      this.backOff(entry);
      if (this.partitions.get(entry.partition.key) === entry) {
        entry.state = new FollowerReplicaState({ leaderId: this.sourceBrokerId, leaderEpoch: entry.leaderEpoch, log: entry.partition.log });
      }
    }
  }

  private onPartitionError(entry: FetcherPartition, code: ErrorCodeName, message: string): void {
    if (!METADATA_LAG_ERRORS.has(code)) {
      this.logger.warn({ partition: entry.partition.key, code, message }, 'replica fetch for a partition failed');
    } else {
      this.logger.debug({ partition: entry.partition.key, code }, 'the leader does not lead this epoch yet (or any more); backing off');
    }
    // The leader is behind our epoch (it has not applied its own election yet): it will shortly.
    // Any other error, or our own epoch being the stale one (FENCED_LEADER_EPOCH: a metadata
    // update restarts the partition anyway), waits the full backoff.
    if (code === 'UNKNOWN_LEADER_EPOCH' || code === 'NOT_LEADER_OR_FOLLOWER') {
      const retryMs = Math.min(this.config.fetchBackoffMs, LEADER_CATCH_UP_RETRY_MS * 2 ** entry.leaderBehindAnswers);
      entry.leaderBehindAnswers++;
      entry.delayUntilMs = this.clock.nowMs() + retryMs;
      return;
    }
    this.backOff(entry);
  }
}
