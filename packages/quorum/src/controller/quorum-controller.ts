// The active controller's event loop: runs ControllerLogic decisions one at a time against the
// committed image and writes them through the metadata log.
//
// Every write operation goes through one queue: compute the records from the image, append them
// as one atomic entry, wait until the entry is committed *and applied* to the image, then answer.
// Serializing is what makes the pure logic correct (see the invariant in controller-logic.ts):
// the next decision sees the previous one's effect. The controller's write rate is small (admin
// calls, heartbeats that change state, ISR changes), so the simplicity is worth more than
// pipelining, and a heartbeat that changes nothing appends nothing.
//
// Roles: the wiring calls `becomeActive` when this node becomes the Raft leader (after the image
// has caught up with everything committed before its term, which the quorum guarantees by
// committing its leader-change entry first) and `resign` when it stops being leader. A
// non-active controller answers every call with NOT_CONTROLLER naming the active one.
//
// Time is injected (`nowMs` arguments, the `clock` option), so tests drive it.

import { NotLeaderError, RaftkaError, invariant } from '@raftka/protocol';
import type { MetadataLog } from '../metadata/metadata-log.js';
import type { MetadataImage } from '../metadata/metadata-image.js';
import type { MetadataPublisher } from '../metadata/metadata-publisher.js';
import { encodeMetadataRecord } from '../metadata/metadata-records.js';
import { BrokerHeartbeatManager } from './broker-heartbeat-manager.js';
import { NotControllerError } from './controller-errors.js';
import type { ControllerLogic } from './controller-logic.js';
import type {
  AllocateProducerIdsRequest,
  AllocateProducerIdsResponse,
  AlterPartitionRequest,
  AlterPartitionResponse,
  BrokerHeartbeatRequest,
  BrokerHeartbeatResponse,
  BrokerRegistrationRequest,
  BrokerRegistrationResponse,
  ControllerResult,
  CreatePartitionsRequest,
  CreatePartitionsResponse,
  CreateTopicsRequest,
  CreateTopicsResponse,
  DeleteTopicsRequest,
  DeleteTopicsResponse,
  DescribeConfigsRequest,
  DescribeConfigsResponse,
  ElectLeadersResponse,
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponse,
} from './controller-types.js';

/** Operations waiting in the queue at once; beyond this callers are pushed back. */
export const PENDING_OPERATIONS_MAX = 1000;

export interface ActiveControllerInfo {
  id: number;
  address: string | undefined;
}

export interface QuorumControllerOptions {
  log: MetadataLog;
  /** Holds the image; must already receive the log's committed batches (publisher.attach(log)). */
  publisher: MetadataPublisher;
  logic: ControllerLogic;
  /** Who the active controller is, for NOT_CONTROLLER answers while this node is not. */
  activeController: () => ActiveControllerInfo | undefined;
  clock: () => number;
}

/**
 * How long a broker whose BrokerSession call ended has to be heard from again before it is fenced.
 * A killed broker's connection closes at once and it never comes back; a live broker whose
 * connection merely broke notices at the same moment and reopens the session within milliseconds.
 */
export const BROKER_CONNECTION_LOSS_GRACE_MS = 200;

interface BrokerSessionHandle {
  brokerEpoch: number;
  end: () => void;
}

export class QuorumController {
  private readonly log: MetadataLog;
  private readonly publisher: MetadataPublisher;
  private readonly logic: ControllerLogic;
  private readonly activeController: () => ActiveControllerInfo | undefined;
  private readonly clock: () => number;
  readonly heartbeats: BrokerHeartbeatManager;
  private active = false;
  /** The queue: every operation chains onto the previous one. */
  private tail: Promise<unknown> = Promise.resolve();
  private pendingCount = 0;
  private lastRebalanceMs: number | undefined;
  /** Broker id -> its newest open BrokerSession call (older ones of the broker are ignored). */
  private readonly sessions = new Map<number, BrokerSessionHandle>();

  constructor(options: QuorumControllerOptions) {
    this.log = options.log;
    this.publisher = options.publisher;
    this.logic = options.logic;
    this.activeController = options.activeController;
    this.clock = options.clock;
    this.heartbeats = new BrokerHeartbeatManager({ sessionTimeoutMs: this.logic.effectiveConfig(this.publisher.image).brokerSessionTimeoutMs });
  }

  get isActive(): boolean {
    return this.active;
  }

  /** This node became the Raft leader: brokers get a fresh session from now (no mass fencing). */
  becomeActive(nowMs: number): void {
    this.active = true;
    this.heartbeats.reset();
    this.lastRebalanceMs = nowMs;
  }

  resign(): void {
    this.active = false;
    this.heartbeats.reset();
    // Brokers reopen their sessions with the new active controller.
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const session of sessions) session.end();
  }

  /**
   * Accepts a broker's BrokerSession call (see proto/controller.proto): throws NOT_CONTROLLER, or
   * the heartbeat's errors for an unknown or stale registration. `end` finishes the call from this
   * side (when this controller resigns). Call the returned `lost` when the broker's side ends it.
   */
  openBrokerSession(brokerId: number, brokerEpoch: number, end: () => void): { lost: () => void } {
    this.requireActive();
    const broker = this.publisher.image.brokers.get(brokerId);
    if (broker === undefined) {
      throw new RaftkaError('BROKER_ID_NOT_REGISTERED', `broker ${brokerId} is not registered; it must register before it opens a session`, { retriable: false });
    }
    if (broker.brokerEpoch !== brokerEpoch) {
      throw new RaftkaError('STALE_BROKER_EPOCH', `broker ${brokerId} opened a session with epoch ${brokerEpoch} but its registration has epoch ${broker.brokerEpoch}`, { retriable: false });
    }
    const handle: BrokerSessionHandle = { brokerEpoch, end };
    this.sessions.set(brokerId, handle);
    this.heartbeats.touch(brokerId, this.clock());
    return {
      lost: () => {
        if (this.sessions.get(brokerId) !== handle) return;
        this.sessions.delete(brokerId);
        if (!this.active || this.publisher.image.brokers.get(brokerId)?.brokerEpoch !== brokerEpoch) return;
        this.heartbeats.connectionLost(brokerId, this.clock(), BROKER_CONNECTION_LOSS_GRACE_MS);
      },
    };
  }

  registerBroker(request: BrokerRegistrationRequest): Promise<BrokerRegistrationResponse> {
    return this.write((image) => this.logic.registerBroker(image, request)).then((response) => {
      this.heartbeats.touch(request.brokerId, this.clock());
      return response;
    });
  }

  brokerHeartbeat(request: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse> {
    return this.write((image) => {
      const result = this.logic.brokerHeartbeat(image, request);
      // Only a heartbeat with a valid epoch (no throw above) renews the session.
      this.heartbeats.touch(request.brokerId, this.clock());
      return result;
    });
  }

  alterPartition(request: AlterPartitionRequest): Promise<AlterPartitionResponse> {
    return this.write((image) => this.logic.alterPartition(image, request));
  }

  createTopics(request: CreateTopicsRequest): Promise<CreateTopicsResponse> {
    return this.write((image) => this.logic.createTopics(image, request));
  }

  deleteTopics(request: DeleteTopicsRequest): Promise<DeleteTopicsResponse> {
    return this.write((image) => this.logic.deleteTopics(image, request));
  }

  createPartitions(request: CreatePartitionsRequest): Promise<CreatePartitionsResponse> {
    return this.write((image) => this.logic.createPartitions(image, request));
  }

  incrementalAlterConfigs(request: IncrementalAlterConfigsRequest): Promise<IncrementalAlterConfigsResponse> {
    return this.write((image) => this.logic.incrementalAlterConfigs(image, request));
  }

  allocateProducerIds(request: AllocateProducerIdsRequest): Promise<AllocateProducerIdsResponse> {
    return this.write((image) => this.logic.allocateProducerIds(image, request));
  }

  electPreferredLeaders(): Promise<ElectLeadersResponse> {
    return this.write((image) => this.logic.electPreferredLeaders(image, { periodic: false }));
  }

  /** Reads the committed image; served by the active controller only, like every call. */
  describeConfigs(request: DescribeConfigsRequest): DescribeConfigsResponse {
    this.requireActive();
    return this.logic.describeConfigs(this.publisher.image, request);
  }

  /**
   * Periodic duties, called by the driver every heartbeat interval or so: fences brokers whose
   * session expired (one per queued operation, stalest first), and every
   * leader.imbalance.check.interval.seconds elects leaders for leaderless partitions that can have
   * one again and runs the preferred-leader rebalance. Returns the brokers it fenced.
   */
  async tick(nowMs: number): Promise<number[]> {
    if (!this.active) return [];
    const fenced: number[] = [];
    for (const brokerId of this.heartbeats.brokersToFence(this.publisher.image, nowMs)) {
      // Re-checked when the operation runs: a heartbeat queued before it may have renewed the session.
      const { fenced: didFence } = await this.write((image) =>
        this.heartbeats.hasExpired(brokerId, this.clock()) ? this.logic.fenceBroker(image, brokerId) : { records: [], response: { fenced: false } },
      );
      if (didFence) fenced.push(brokerId);
    }
    const config = this.logic.effectiveConfig(this.publisher.image);
    const intervalMs = config.leaderImbalanceCheckIntervalSeconds * 1000;
    if (this.lastRebalanceMs === undefined || nowMs - this.lastRebalanceMs >= intervalMs) {
      this.lastRebalanceMs = nowMs;
      let more = true;
      while (more && this.active) {
        more = (await this.write((image) => this.logic.electLeaderlessPartitions(image))).more;
      }
      more = true;
      while (more && this.active) {
        more = (await this.write((image) => this.logic.electPreferredLeaders(image, { periodic: true }))).more;
      }
    }
    return fenced;
  }

  private requireActive(): void {
    if (!this.active) {
      const activeController = this.activeController();
      throw new NotControllerError(activeController === undefined ? {} : { activeControllerId: activeController.id, ...(activeController.address ? { activeControllerAddress: activeController.address } : {}) });
    }
  }

  /** Queues one decision: compute from the image, append, wait until applied, answer. */
  private write<R>(decide: (image: MetadataImage) => ControllerResult<R>): Promise<R> {
    try {
      this.requireActive();
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.pendingCount >= PENDING_OPERATIONS_MAX) {
      return Promise.reject(new RaftkaError('THROTTLING_QUOTA_EXCEEDED', `${PENDING_OPERATIONS_MAX} controller operations are queued; retry later`));
    }
    this.pendingCount++;
    const run = async (): Promise<R> => {
      try {
        this.requireActive();
        const result = decide(this.publisher.image);
        if (result.records.length === 0) return result.response;
        let appended: { offset: number; epoch: number };
        try {
          appended = await this.log.append(result.records.map(encodeMetadataRecord));
        } catch (error) {
          if (error instanceof NotLeaderError) {
            this.resign();
            throw new NotControllerError({
              ...(error.leaderId === undefined ? {} : { activeControllerId: error.leaderId }),
              ...(error.leaderAddress === undefined ? {} : { activeControllerAddress: error.leaderAddress }),
            });
          }
          throw error;
        }
        await this.appliedThrough(appended.offset);
        return result.response;
      } finally {
        this.pendingCount--;
      }
    };
    const operation = this.tail.then(run, run);
    this.tail = operation.catch(() => undefined);
    return operation;
  }

  /** Resolves once the image includes the entry at `offset` (the log may apply it after append resolves). */
  private appliedThrough(offset: number): Promise<void> {
    if (this.publisher.image.lastAppliedOffset >= offset) return Promise.resolve();
    return new Promise((resolve) => {
      const unsubscribe = this.publisher.subscribe((update) => {
        if (update.offset >= offset) {
          unsubscribe();
          invariant(this.publisher.image.lastAppliedOffset >= offset, 'the published image includes the awaited offset');
          resolve();
        }
      });
    });
  }
}
