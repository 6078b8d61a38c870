// Tracks when each broker last heartbeated and decides which brokers to fence.
//
// Heartbeat times are soft state of the active controller, never written to the metadata log
// (writing one record per heartbeat would flood it): a newly active controller starts every
// registered broker's session at the moment it first looks at it, so a controller failover never
// fences healthy brokers en masse; they have a full session to reach the new controller
// (Kafka's BrokerHeartbeatManager does the same).
//
// A broker's session also ends early when the controller loses its connection to it (the
// BrokerSession call is cancelled, which is what a killed process's closed sockets look like):
// unless the broker is heard from again within a short grace, it expires then, not a whole
// session timeout later.
//
// Pure: the clock arrives as `nowMs` arguments.

import type { MetadataImage } from '../metadata/metadata-image.js';

export class BrokerHeartbeatManager {
  private readonly sessionTimeoutMs: number;
  /** Broker id -> last contact (ms). Invariant: only ever moves forward for a broker. */
  private readonly lastContactMs = new Map<number, number>();
  /**
   * Broker id -> when its session ends because its connection was lost. Invariant: an entry
   * exists only while no contact has been recorded since the loss.
   */
  private readonly connectionLostDeadlineMs = new Map<number, number>();

  constructor(options: { sessionTimeoutMs: number }) {
    this.sessionTimeoutMs = options.sessionTimeoutMs;
  }

  /** Records a heartbeat or registration of `brokerId` at `nowMs`. */
  touch(brokerId: number, nowMs: number): void {
    const previous = this.lastContactMs.get(brokerId);
    this.lastContactMs.set(brokerId, previous === undefined ? nowMs : Math.max(previous, nowMs));
    this.connectionLostDeadlineMs.delete(brokerId);
  }

  /**
   * The controller's connection to `brokerId` closed at `nowMs`: its session ends at
   * `nowMs + graceMs` unless it is heard from (heartbeat, registration, a new session) before.
   */
  connectionLost(brokerId: number, nowMs: number, graceMs: number): void {
    if (!this.lastContactMs.has(brokerId)) return;
    const deadlineMs = nowMs + graceMs;
    const previous = this.connectionLostDeadlineMs.get(brokerId);
    this.connectionLostDeadlineMs.set(brokerId, previous === undefined ? deadlineMs : Math.min(previous, deadlineMs));
  }

  /** Forgets a broker (unregistered). */
  remove(brokerId: number): void {
    this.lastContactMs.delete(brokerId);
    this.connectionLostDeadlineMs.delete(brokerId);
  }

  /** Forgets everything: called when this controller stops being active. */
  reset(): void {
    this.lastContactMs.clear();
    this.connectionLostDeadlineMs.clear();
  }

  /** Has `brokerId`'s session expired at `nowMs`? (A broker never seen has not.) */
  hasExpired(brokerId: number, nowMs: number): boolean {
    const lastContactMs = this.lastContactMs.get(brokerId);
    return lastContactMs !== undefined && nowMs >= this.expiryMs(brokerId, lastContactMs);
  }

  /** When the session of a broker last heard from at `lastContactMs` ends. */
  private expiryMs(brokerId: number, lastContactMs: number): number {
    const timeoutExpiryMs = lastContactMs + this.sessionTimeoutMs;
    const lostDeadlineMs = this.connectionLostDeadlineMs.get(brokerId);
    return lostDeadlineMs === undefined ? timeoutExpiryMs : Math.min(timeoutExpiryMs, lostDeadlineMs);
  }

  lastContact(brokerId: number): number | undefined {
    return this.lastContactMs.get(brokerId);
  }

  /**
   * Unfenced brokers whose session expired, in order of expiry (the stalest first). Brokers the
   * manager has not seen yet start their session now. Brokers no longer registered are forgotten.
   */
  brokersToFence(image: MetadataImage, nowMs: number): number[] {
    const expired: { brokerId: number; lastContactMs: number }[] = [];
    for (const brokerId of this.lastContactMs.keys()) {
      if (!image.brokers.has(brokerId)) this.remove(brokerId);
    }
    for (const broker of image.brokers.values()) {
      if (broker.fenced) continue;
      let lastContactMs = this.lastContactMs.get(broker.brokerId);
      if (lastContactMs === undefined) {
        lastContactMs = nowMs;
        this.lastContactMs.set(broker.brokerId, nowMs);
      }
      if (nowMs >= this.expiryMs(broker.brokerId, lastContactMs)) expired.push({ brokerId: broker.brokerId, lastContactMs });
    }
    return expired.sort((a, b) => a.lastContactMs - b.lastContactMs || a.brokerId - b.brokerId).map((entry) => entry.brokerId);
  }
}
