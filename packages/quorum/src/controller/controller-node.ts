// One controller process: the quorum member, the metadata image it applies, and the controller
// that acts on it while this node is the Raft leader.
//
// Wiring (KIP-631's "active controller = quorum leader"):
//   QuorumNode --committed batches--> MetadataPublisher (image + delta; snapshots through the quorum)
//   QuorumController --appends--> QuorumNode, decides from the publisher's image
//   ControllerService (gRPC) --calls--> QuorumController, served next to QuorumService
// Activation: a new leader becomes the active controller only once it has applied its own
// epoch's leader-change entry, i.e. every entry committed before its term is in its image; before
// that its decisions could be based on a stale image. Losing leadership resigns at once.

import { performance } from 'node:perf_hooks';
import type { Logger } from '@raftka/protocol';
import { QuorumNode } from '../driver/quorum-node.js';
import type { QuorumConfig } from '../driver/quorum-config.js';
import type { MetadataImage } from '../metadata/metadata-image.js';
import type { ServiceWrapper } from '../transport/grpc-transport.js';
import { MetadataPublisher, type MetadataListener, type MetadataSource } from '../metadata/metadata-publisher.js';
import type { ControllerConfig } from './controller-config.js';
import { ControllerLogic } from './controller-logic.js';
import { controllerService } from './controller-service.js';
import { QuorumController } from './quorum-controller.js';

/** How often a new leader checks whether its image has caught up (activation latency bound). */
export const ACTIVATION_CHECK_INTERVAL_MS = 5;
/** How often the active controller runs its periodic duties (fencing expired brokers, elections). */
export const CONTROLLER_TICK_INTERVAL_MS = 100;

export interface ControllerNodeOptions {
  quorum: QuorumConfig;
  controller: ControllerConfig;
  logger: Logger;
  onFatal?: (error: unknown) => void;
  /** Wraps the served gRPC services (request metrics). */
  serviceWrapper?: ServiceWrapper;
}

export class ControllerNode {
  private activationTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private ticking = false;
  private closed = false;

  private constructor(
    readonly quorum: QuorumNode,
    readonly controller: QuorumController,
    private readonly publisher: MetadataPublisher,
    private readonly logger: Logger,
  ) {}

  static async start(options: ControllerNodeOptions): Promise<ControllerNode> {
    const logger = options.logger.child({ component: 'controller', nodeId: options.quorum.nodeId });
    const publisher = new MetadataPublisher();
    let quorum: QuorumNode | undefined;
    const controller = new QuorumController({
      // The quorum is created below; the controller only appends once it is active, long after.
      log: {
        append: (records) => quorum!.append(records),
        onCommitted: () => undefined,
        setSnapshotProvider: () => undefined,
      },
      publisher,
      logic: new ControllerLogic({ config: options.controller, random: Math.random }),
      activeController: () => {
        const leaderId = quorum?.leaderId;
        if (leaderId === undefined) return undefined;
        return { id: leaderId, address: quorum!.addressOf(leaderId) };
      },
      clock: () => performance.now(),
    });
    quorum = await QuorumNode.start({
      config: options.quorum,
      logger: options.logger,
      onCommitted: (batch) => {
        publisher.handleCommitted(batch);
      },
      snapshotProvider: publisher.snapshotProvider(),
      extraServices: [controllerService(controller, logger)],
      ...(options.onFatal ? { onFatal: options.onFatal } : {}),
      ...(options.serviceWrapper ? { serviceWrapper: options.serviceWrapper } : {}),
    });
    const node = new ControllerNode(quorum, controller, publisher, logger);
    quorum.onRoleChange((change) => node.onRoleChange(change.role === 'leader' && change.leaderId === quorum.nodeId));
    node.onRoleChange(quorum.role === 'leader');
    node.tickTimer = setInterval(() => node.runDuties(), CONTROLLER_TICK_INTERVAL_MS);
    return node;
  }

  get nodeId(): number {
    return this.quorum.nodeId;
  }

  get image(): MetadataImage {
    return this.publisher.image;
  }

  /** The controller's image as a broker in the same process (combined mode) follows it. */
  get metadata(): MetadataSource {
    const { publisher, quorum } = this;
    return {
      get image() {
        return publisher.image;
      },
      get lastAppliedOffset() {
        return quorum.lastAppliedOffset;
      },
      subscribe: (listener: MetadataListener) => publisher.subscribe(listener),
      waitFor: (condition, timeoutMs) => publisher.waitFor(condition, timeoutMs),
    };
  }

  get isActive(): boolean {
    return this.controller.isActive;
  }

  /** host:port of this controller as the voters know it. */
  get address(): string | undefined {
    return this.quorum.addressOf(this.nodeId);
  }

  async close(options: { graceful: boolean } = { graceful: true }): Promise<void> {
    this.closed = true;
    clearInterval(this.tickTimer);
    clearInterval(this.activationTimer);
    this.controller.resign();
    await this.quorum.close(options);
  }

  private onRoleChange(isLeader: boolean): void {
    clearInterval(this.activationTimer);
    this.activationTimer = undefined;
    if (!isLeader) {
      if (this.controller.isActive) {
        this.controller.resign();
        this.logger.info({ epoch: this.quorum.epoch }, 'no longer the active controller');
      }
      return;
    }
    const epoch = this.quorum.epoch;
    this.activationTimer = setInterval(() => {
      if (this.closed || this.quorum.role !== 'leader' || this.quorum.epoch !== epoch) {
        clearInterval(this.activationTimer);
        return;
      }
      // Invariant: entries are applied in order, so the leader-change entry of `epoch` being
      // applied means every entry of earlier terms is in the image (KIP-595, Raft §5.4.2).
      if (this.quorum.lastAppliedEpoch === epoch) {
        clearInterval(this.activationTimer);
        this.activationTimer = undefined;
        this.controller.becomeActive(performance.now());
        this.logger.info({ epoch, lastAppliedOffset: this.quorum.lastAppliedOffset }, 'became the active controller');
      }
    }, ACTIVATION_CHECK_INTERVAL_MS);
  }

  private runDuties(): void {
    if (this.ticking || !this.controller.isActive) return;
    this.ticking = true;
    this.controller
      .tick(performance.now())
      .then(
        (fenced) => {
          if (fenced.length > 0) this.logger.info({ fenced }, 'fenced brokers whose session expired');
        },
        (error: unknown) => this.logger.warn({ err: error }, 'periodic controller duties failed; retrying on the next tick'),
      )
      .finally(() => {
        this.ticking = false;
      });
  }
}
