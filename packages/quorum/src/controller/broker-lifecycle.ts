// The broker's side of the controller protocol (KIP-631): register, heartbeat, get unfenced once
// caught up with the metadata log, and shut down in a controlled way.
//
//   starting --registered--> fenced --caught up, controller unfences--> active
//   active --controlledShutdown()--> shutting-down --controller moved leaders off--> stopped
//   any --STALE_BROKER_EPOCH / BROKER_ID_NOT_REGISTERED--> starting (registers again)
//
// The metadata offset it reports comes from the broker's metadata observer: the controller
// unfences a broker only once it has applied the log up to its own registration, so a broker
// never leads partitions with an image older than the one that made it a replica.
//
// Next to the heartbeats it keeps a BrokerSession call open with the active controller, so the
// controller learns of this process's death from the closed connection instead of the session
// timeout; the call is reopened at once when it breaks while the broker lives.

import { randomUUID } from 'node:crypto';
import { RaftkaError, type Logger } from '@raftka/protocol';
import type { BrokerEndpoint } from '../metadata/metadata-records.js';
import type { BrokerSessionCall, ControllerClient } from './controller-client.js';

export type BrokerLifecycleState = 'starting' | 'fenced' | 'active' | 'shutting-down' | 'stopped';

export interface BrokerLifecycleOptions {
  brokerId: number;
  endpoints: BrokerEndpoint[];
  rack?: string;
  controller: ControllerClient;
  /** The offset of the last metadata entry the broker has applied. */
  metadataOffset: () => number;
  heartbeatIntervalMs: number;
  logger: Logger;
}

export class BrokerLifecycle {
  /** A new one per process start: the controller tells restarts apart by it. */
  readonly incarnationId = randomUUID();
  private currentState: BrokerLifecycleState = 'starting';
  private epoch = -1;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly listeners: ((state: BrokerLifecycleState) => void)[] = [];
  /** Invariant: when set, opened for the current `epoch`. */
  private session: { call: BrokerSessionCall; brokerEpoch: number } | undefined;
  private readonly logger: Logger;
  private lastResponseMs: number | undefined;

  constructor(private readonly options: BrokerLifecycleOptions) {
    this.logger = options.logger.child({ component: 'broker-lifecycle', nodeId: options.brokerId });
  }

  get state(): BrokerLifecycleState {
    return this.currentState;
  }

  /** The epoch of the current registration, -1 before the first one. */
  get brokerEpoch(): number {
    return this.epoch;
  }

  /**
   * Wall-clock time of the controller's last answer to a registration or heartbeat, undefined
   * before the first. Readiness uses it: a broker that has not heard from any controller for a
   * session timeout may already be fenced without knowing it.
   */
  get lastControllerResponseMs(): number | undefined {
    return this.lastResponseMs;
  }

  onStateChange(listener: (state: BrokerLifecycleState) => void): void {
    this.listeners.push(listener);
  }

  /** Starts registering and heartbeating; returns at once (watch `state` / `onStateChange`). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops heartbeating without telling the controller, as a crash would (its session then expires). */
  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.closeSession();
  }

  /**
   * Asks the controller to move every leadership off this broker, heartbeating until it agrees
   * that the broker may stop (it is then fenced). Resolves when done or at the deadline.
   */
  async controlledShutdown(timeoutMs: number): Promise<boolean> {
    try {
      return await this.runControlledShutdown(timeoutMs);
    } finally {
      // Only now: the controller moving leaders must not see a lost connection meanwhile.
      this.closeSession();
    }
  }

  private async runControlledShutdown(timeoutMs: number): Promise<boolean> {
    this.running = false;
    clearTimeout(this.timer);
    if (this.epoch < 0) return false;
    this.setState('shutting-down');
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        const response = await this.options.controller.brokerHeartbeat({
          brokerId: this.options.brokerId,
          brokerEpoch: this.epoch,
          currentMetadataOffset: this.options.metadataOffset(),
          wantFence: false,
          wantShutDown: true,
        });
        if (response.shouldShutDown) {
          this.setState('stopped');
          return true;
        }
      } catch (error) {
        this.logger.warn({ err: error }, 'controlled shutdown heartbeat failed; retrying');
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.options.heartbeatIntervalMs, Math.max(0, deadline - Date.now()))));
    }
    this.logger.warn({ timeoutMs }, 'controlled shutdown did not finish in time; stopping anyway');
    return false;
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => void this.beat(), delayMs);
  }

  private async beat(): Promise<void> {
    try {
      if (this.currentState === 'starting') await this.register();
      else await this.heartbeat();
      this.ensureSession();
    } catch (error) {
      if (error instanceof RaftkaError && (error.code === 'STALE_BROKER_EPOCH' || error.code === 'BROKER_ID_NOT_REGISTERED')) {
        this.logger.warn({ err: error }, 'the controller no longer knows this registration; registering again');
        this.setState('starting');
      } else {
        this.logger.debug({ err: error }, 'controller request failed; retrying on the next heartbeat');
      }
    }
    this.schedule(this.options.heartbeatIntervalMs);
  }

  private async register(): Promise<void> {
    const response = await this.options.controller.registerBroker({
      brokerId: this.options.brokerId,
      incarnationId: this.incarnationId,
      endpoints: this.options.endpoints,
      ...(this.options.rack === undefined ? {} : { rack: this.options.rack }),
    });
    this.lastResponseMs = Date.now();
    if (!this.running) return;
    this.epoch = response.brokerEpoch;
    this.logger.info({ brokerEpoch: this.epoch }, 'registered with the controller');
    this.setState('fenced');
  }

  private async heartbeat(): Promise<void> {
    const response = await this.options.controller.brokerHeartbeat({
      brokerId: this.options.brokerId,
      brokerEpoch: this.epoch,
      currentMetadataOffset: this.options.metadataOffset(),
      wantFence: false,
      wantShutDown: false,
    });
    this.lastResponseMs = Date.now();
    if (!this.running) return;
    this.setState(response.isFenced ? 'fenced' : 'active');
  }

  /**
   * Opens the session call with the controller the last heartbeat reached, unless one is open
   * there for this registration already.
   */
  private ensureSession(): void {
    if (!this.running || this.epoch < 0) return;
    const active = this.options.controller.activeController;
    if (this.session !== undefined && this.session.brokerEpoch === this.epoch && this.session.call.address === active) return;
    this.closeSession();
    const call = this.options.controller.openBrokerSession({ brokerId: this.options.brokerId, brokerEpoch: this.epoch });
    const session = { call, brokerEpoch: this.epoch };
    this.session = session;
    let wasAccepted = false;
    call.accepted.then(
      () => {
        wasAccepted = true;
      },
      (error: unknown) => this.logger.debug({ err: error, controller: call.address }, 'the controller refused the broker session; retrying on the next heartbeat'),
    );
    void call.ended.then(() => {
      if (this.session !== session) return;
      this.session = undefined;
      // A session that was up broke while this broker lives: reopen before the controller's
      // grace runs out. A refused one waits for the next heartbeat (no busy loop).
      if (wasAccepted && this.running) {
        this.logger.info({ controller: call.address }, 'the broker session with the controller broke; reopening it');
        this.ensureSession();
      }
    });
  }

  private closeSession(): void {
    const session = this.session;
    this.session = undefined;
    session?.call.close();
  }

  private setState(state: BrokerLifecycleState): void {
    if (state === this.currentState) return;
    this.logger.info({ from: this.currentState, to: state }, 'broker state changed');
    this.currentState = state;
    for (const listener of this.listeners) listener(state);
  }
}
