// A follower's replication state for one partition: first reconcile its log with the leader's
// by leader epochs, then fetch. Pure logic over a read-only view of the local log; the fetcher
// performs the truncations and requests this module decides.
//
// Why epochs and never the high watermark (KIP-101): a follower's HW may lag the leader's, so
// truncating to it can drop records that are committed (acknowledged to producers) and, if this
// replica is then elected, lose them; while keeping a suffix the leader never had lets replicas
// diverge. The follower asks the leader for the end offset of its own latest epoch
// (OffsetsForLeaderEpoch, or the diverging epoch of a KIP-320 fetch response) and truncates to
// where the logs agree. KIP-279: when the leader answers with an *older* epoch than we asked
// for, our log may contain epochs the leader never knew, so we truncate to the end of our own
// copy of that older epoch and ask again with our (now older) latest epoch, until the epochs match.
//
// State table:
//   reconciling --answer with the same epoch--> fetching (truncated to min(leader end, own end))
//   reconciling --answer with an older epoch we lack--> reconciling (intermediate truncation, ask again)
//   fetching --fetch response names a diverging epoch--> reconciling

import { invariant, assertNever } from '@raftka/protocol';
import { UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET, type EpochEndOffset } from '../log/leader-epoch-cache.js';

/** What the truncation logic reads from the local log (PartitionLog satisfies it). */
export interface FollowerLogView {
  readonly logEndOffset: number;
  readonly latestEpoch: number;
  endOffsetForEpoch(epoch: number): EpochEndOffset;
}

export type TruncationDecision =
  /** Truncate to `offset` (no-op when it is the LEO); the logs then agree: start fetching. */
  | { kind: 'truncate-and-fetch'; offset: number }
  /** Truncate to `offset`, then ask the leader again about the new latest epoch (KIP-279). */
  | { kind: 'truncate-and-ask-again'; offset: number }
  /**
   * The leader has no epoch information to compare with. Do not truncate (and never to the HW):
   * back off and ask again. A leader assigns its epoch's start offset when it takes leadership, so
   * this is transient.
   */
  | { kind: 'retry-later' };

/**
 * KIP-101/KIP-279 truncation offset for the leader's answer `leader` = {epoch, endOffset} to the
 * question "where does your copy of epoch E end?", E being our latest epoch (Kafka's
 * AbstractFetcherThread.getOffsetTruncationState).
 */
export function decideTruncation(log: FollowerLogView, leader: EpochEndOffset): TruncationDecision {
  const ownEnd = log.logEndOffset;
  if (leader.endOffset === UNDEFINED_EPOCH_OFFSET) return { kind: 'retry-later' };
  if (leader.epoch === UNDEFINED_EPOCH) {
    // The leader knows the offset but not the epoch (an answer from an old protocol version).
    return { kind: 'truncate-and-fetch', offset: Math.min(leader.endOffset, ownEnd) };
  }
  const own = log.endOffsetForEpoch(leader.epoch);
  if (own.endOffset === UNDEFINED_EPOCH_OFFSET) {
    // We hold no epoch <= the leader's: everything we have is newer than anything the leader
    // vouches for beyond its end offset, so the logs agree at most up to that offset.
    return { kind: 'truncate-and-fetch', offset: Math.min(leader.endOffset, ownEnd) };
  }
  if (own.epoch !== leader.epoch) {
    // We never had the leader's epoch: cut to the end of our largest epoch below it and ask
    // again about that one (KIP-279), since our copy of it may itself diverge.
    return { kind: 'truncate-and-ask-again', offset: Math.min(own.endOffset, ownEnd) };
  }
  return { kind: 'truncate-and-fetch', offset: Math.min(own.endOffset, leader.endOffset, ownEnd) };
}

/** A follower's HW: the leader's, but never past what this replica holds. */
export function followerHighWatermark(leaderHighWatermark: number, logEndOffset: number): number {
  return Math.min(leaderHighWatermark, logEndOffset);
}

/** Round trips of KIP-279 "ask again" per reconciliation before the follower gives up and resets. */
export const TRUNCATION_ROUNDS_MAX = 1_000;

export type FollowerPhase =
  | { kind: 'reconciling'; askedEpoch: number; rounds: number }
  | { kind: 'fetching'; fetchOffset: number };

export type FollowerNextStep =
  | { kind: 'ask-epoch'; epoch: number }
  | { kind: 'fetch'; fetchOffset: number; lastFetchedEpoch: number };

/**
 * One follower's replication of one partition under one leader epoch. Build a new one on every
 * leadership change (the leader or its epoch changed).
 */
export class FollowerReplicaState {
  readonly leaderId: number;
  readonly leaderEpoch: number;
  private phase: FollowerPhase;

  constructor(args: { leaderId: number; leaderEpoch: number; log: FollowerLogView }) {
    this.leaderId = args.leaderId;
    this.leaderEpoch = args.leaderEpoch;
    this.phase = initialPhase(args.log);
  }

  get state(): FollowerPhase {
    return this.phase;
  }

  /** What to send the leader next. */
  nextStep(log: FollowerLogView): FollowerNextStep {
    const phase = this.phase;
    switch (phase.kind) {
      case 'reconciling':
        return { kind: 'ask-epoch', epoch: phase.askedEpoch };
      case 'fetching':
        return { kind: 'fetch', fetchOffset: phase.fetchOffset, lastFetchedEpoch: log.latestEpoch };
      default:
        return assertNever(phase, 'follower phase');
    }
  }

  /**
   * The leader's answer for `askedEpoch`. Returns the truncation to perform; once the caller has
   * truncated the log, it calls `onTruncated(log)`.
   */
  onEpochAnswer(log: FollowerLogView, answer: EpochEndOffset): TruncationDecision {
    invariant(this.phase.kind === 'reconciling', 'an epoch answer arrives only while reconciling');
    return decideTruncation(log, answer);
  }

  /** The caller truncated the log per `decision`. */
  onTruncated(log: FollowerLogView, decision: TruncationDecision): void {
    const phase = this.phase;
    invariant(phase.kind === 'reconciling', 'truncation happens only while reconciling');
    switch (decision.kind) {
      case 'truncate-and-fetch':
        invariant(log.logEndOffset <= decision.offset, 'the log was truncated as decided');
        this.phase = { kind: 'fetching', fetchOffset: log.logEndOffset };
        return;
      case 'truncate-and-ask-again': {
        invariant(log.logEndOffset <= decision.offset, 'the log was truncated as decided');
        const rounds = phase.rounds + 1;
        invariant(rounds <= TRUNCATION_ROUNDS_MAX, 'KIP-279 reconciliation ends: each round asks about a strictly older epoch');
        this.phase = log.latestEpoch === UNDEFINED_EPOCH ? { kind: 'fetching', fetchOffset: log.logEndOffset } : { kind: 'reconciling', askedEpoch: log.latestEpoch, rounds };
        return;
      }
      case 'retry-later':
        return;
      default:
        assertNever(decision, 'truncation decision');
    }
  }

  /** Records were appended from a fetch response: fetch on from the new LEO. */
  onAppended(log: FollowerLogView): void {
    invariant(this.phase.kind === 'fetching', 'appends happen only while fetching');
    this.phase = { kind: 'fetching', fetchOffset: log.logEndOffset };
  }

  /** A fetch response named a diverging epoch (KIP-320): reconcile again from that answer. */
  onDivergence(log: FollowerLogView, diverging: EpochEndOffset): TruncationDecision {
    this.phase = { kind: 'reconciling', askedEpoch: log.latestEpoch, rounds: 0 };
    return decideTruncation(log, diverging);
  }
}

function initialPhase(log: FollowerLogView): FollowerPhase {
  // A log without epochs has nothing written under any leader: nothing can diverge.
  if (log.latestEpoch === UNDEFINED_EPOCH) return { kind: 'fetching', fetchOffset: log.logEndOffset };
  return { kind: 'reconciling', askedEpoch: log.latestEpoch, rounds: 0 };
}
