// When and how long to wait before retrying a failed request or batch.
//
// Backoff is exponential with jitter, as in Kafka (KIP-580): attempt n waits
// retryBackoffMs * 2^n, multiplied by a random factor in [1 - 0.2, 1 + 0.2) so that clients that
// failed together do not retry together, and capped at retryBackoffMaxMs. A batch is retried only
// if its error is retriable, it has retries left, and the retry can still finish inside
// deliveryTimeoutMs counted from the batch's creation (KIP-91): after that the user gets
// REQUEST_TIMED_OUT instead of an unbounded wait.
//
// Pure: randomness and time are passed in.

import { RaftkaError } from '@raftka/protocol';
import type { RandomSource } from './partitioner.js';

/** Kafka's CommonClientConfigs.RETRY_BACKOFF_JITTER. */
export const RETRY_BACKOFF_JITTER = 0.2;
/** Kafka's CommonClientConfigs.RETRY_BACKOFF_EXP_BASE. */
export const RETRY_BACKOFF_MULTIPLIER = 2;

export interface RetryPolicyOptions {
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  deliveryTimeoutMs: number;
  /** Retries allowed per batch. */
  retries: number;
  random: RandomSource;
}

export type RetryDecision =
  | { kind: 'retry'; delayMs: number }
  | { kind: 'fail'; error: RaftkaError; reason: 'not-retriable' | 'retries-exhausted' | 'delivery-timeout' };

export class RetryPolicy {
  readonly #options: RetryPolicyOptions;

  constructor(options: RetryPolicyOptions) {
    if (!(options.retryBackoffMs >= 0 && options.retryBackoffMaxMs >= options.retryBackoffMs)) {
      throw new RaftkaError('INVALID_CONFIG', `retryBackoffMaxMs (${options.retryBackoffMaxMs}) must be at least retryBackoffMs (${options.retryBackoffMs}) >= 0`);
    }
    this.#options = options;
  }

  /** Delay before retry number `attempt` (0 for the first retry). */
  backoffMs(attempt: number): number {
    const { retryBackoffMs, retryBackoffMaxMs, random } = this.#options;
    if (retryBackoffMs === 0) return 0;
    // Cap the exponent so 2^attempt cannot overflow to Infinity for very long retry loops.
    const exponentMax = retryBackoffMaxMs > retryBackoffMs ? Math.log(retryBackoffMaxMs / retryBackoffMs) / Math.log(RETRY_BACKOFF_MULTIPLIER) : 0;
    const term = retryBackoffMs * RETRY_BACKOFF_MULTIPLIER ** Math.min(attempt, Math.ceil(exponentMax));
    const factor = 1 - RETRY_BACKOFF_JITTER + 2 * RETRY_BACKOFF_JITTER * random();
    return Math.min(retryBackoffMaxMs, Math.floor(term * factor));
  }

  /**
   * Whether to retry after `error`.
   * @param attempts retries already made for this batch (0 after the first send failed).
   * @param createdMs when the batch was created (its first record appended).
   * @param backoffAttempt the exponent of the backoff (default `attempts`): a batch counts only the
   *   retries made against its current leader, so that failures against a dead leader do not
   *   lengthen the wait for the new one (KIP-951: the backoff protects a struggling broker).
   */
  decide(args: { error: RaftkaError; attempts: number; createdMs: number; nowMs: number; backoffAttempt?: number }): RetryDecision {
    const { error, attempts, createdMs, nowMs } = args;
    if (!error.retriable) return { kind: 'fail', error, reason: 'not-retriable' };
    if (attempts >= this.#options.retries) {
      return { kind: 'fail', error, reason: 'retries-exhausted' };
    }
    const delayMs = this.backoffMs(args.backoffAttempt ?? attempts);
    const elapsedMs = nowMs - createdMs;
    if (elapsedMs + delayMs >= this.#options.deliveryTimeoutMs) {
      return {
        kind: 'fail',
        reason: 'delivery-timeout',
        error: new RaftkaError(
          'REQUEST_TIMED_OUT',
          `batch expired: ${elapsedMs} ms since it was created plus a ${delayMs} ms backoff reaches deliveryTimeoutMs (${this.#options.deliveryTimeoutMs}); last error ${error.code}: ${error.message}`,
          { cause: error, retriable: false },
        ),
      };
    }
    return { kind: 'retry', delayMs };
  }
}
