// One broker: the replica manager driven by the metadata image, the client-facing gRPC services
// (RaftkaClient, RaftkaAdmin, and RaftkaGroups backed by the group coordinator) on the broker
// listener, and the broker's lifecycle with the controller (register, heartbeat, unfence once
// caught up, controlled shutdown).
//
// Start order matters for safety: the replica manager follows the image before the broker
// registers, so by the time the controller unfences it (it has applied the log up to its own
// registration, KIP-631) it already leads or follows what the image says. Shutdown reverses it:
// controlled shutdown moves leadership away while the broker still serves, then it stops.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from '@raftka/protocol';
import {
  BrokerLifecycle,
  MetadataDelta,
  MetadataImage,
  type ControllerClient,
  type MetadataSource,
  type MetadataUpdate,
} from '@raftka/quorum';
import { adminServiceImplementation } from './admin-service.js';
import { parseEndpoints, type BrokerConfig } from './broker-config.js';
import { ReplicaManager } from './replica-manager/replica-manager.js';
import { clientServiceImplementation } from './server/client-service.js';
import { BROKER_SERVER_OPTIONS, loadRaftkaAdminService, loadRaftkaClientService, loadRaftkaGroupsService } from './server/client-proto.js';
import { GroupRuntime } from './group/group-runtime.js';
import { groupServiceImplementation } from './group/group-service.js';
import { committedOffsetsOf, countIsrChanges, registerBrokerCollectors } from './metrics/broker-collectors.js';
import { instrumentServer } from './metrics/grpc-instrumentation.js';
import type { NodeMetrics } from './metrics/node-metrics.js';

/** Controlled shutdown gets at most this long before the broker stops anyway. */
export const CONTROLLED_SHUTDOWN_MS_MAX = 10_000;


export interface BrokerServerOptions {
  brokerId: number;
  /** Where the client-facing services bind. */
  listener: { name: string; host: string; port: number };
  config: BrokerConfig;
  /** Root directory of the partition logs. */
  logDir: string;
  clusterId: string;
  controller: ControllerClient;
  metadata: MetadataSource;
  heartbeatIntervalMs: number;
  /** auto.create.topics.enable: Metadata requests that allow it create unknown topics with the cluster defaults. */
  autoCreateTopicsEnable: boolean;
  logger: Logger;
  /** The node's metrics: the services are measured and the broker's gauges registered there. */
  metrics?: NodeMetrics;
}

/**
 * Creates topics with the cluster's num.partitions and default.replication.factor. A topic already
 * being created by an earlier request is not asked for again until that one has answered.
 */
function autoCreator(controller: ControllerClient): (names: string[]) => Promise<void> {
  const pending = new Set<string>();
  return async (names) => {
    const fresh = names.filter((name) => !pending.has(name));
    if (fresh.length === 0) return;
    for (const name of fresh) pending.add(name);
    try {
      const response = await controller.createTopics({ topics: fresh.map((name) => ({ name })) });
      const failed = response.topics.filter((topic) => topic.error && topic.error.code !== 'TOPIC_ALREADY_EXISTS');
      if (failed.length > 0) throw new Error(failed.map((topic) => `${topic.name}: ${topic.error!.code} ${topic.error!.message}`).join('; '));
    } finally {
      for (const name of fresh) pending.delete(name);
    }
  };
}

export class BrokerServer {
  private unsubscribe: (() => void) | undefined;
  private closed = false;

  private constructor(
    readonly replicaManager: ReplicaManager,
    readonly lifecycle: BrokerLifecycle,
    private readonly server: grpc.Server,
    readonly port: number,
    private readonly logger: Logger,
    /** The group coordinator of the `__consumer_offsets` partitions this broker leads. */
    readonly groups: GroupRuntime,
  ) {}

  static async start(options: BrokerServerOptions): Promise<BrokerServer> {
    const logger = options.logger.child({ component: 'broker', nodeId: options.brokerId });
    const { controller, metadata } = options;
    const replicaManager = new ReplicaManager({
      brokerId: options.brokerId,
      logDir: options.logDir,
      config: { ...options.config.replicaManager, listenerName: options.listener.name },
      alterPartition: options.metrics
        ? countIsrChanges(options.metrics, () => metadata.image, (request) => controller.alterPartition(request))
        : (request) => controller.alterPartition(request),
      logger,
    });
    replicaManager.start();
    // Follows __consumer_offsets leadership from the first metadata update on (subscribed below).
    const groups = new GroupRuntime({
      replicaManager,
      config: options.config.groups,
      listenerName: options.listener.name,
      createTopics: (request) => controller.createTopics(request),
      logger,
    });
    groups.start();
    const server = new grpc.Server(BROKER_SERVER_OPTIONS);
    if (options.metrics) instrumentServer(options.metrics, server);
    let lifecycle: BrokerLifecycle | undefined;
    server.addService(
      loadRaftkaClientService().service,
      clientServiceImplementation({
        replicaManager,
        clusterId: options.clusterId,
        listenerName: options.listener.name,
        ...(options.autoCreateTopicsEnable ? { autoCreateTopics: autoCreator(controller) } : {}),
        // Blocks are asked for under the current registration (the controller checks the epoch).
        allocateProducerIds: () => controller.allocateProducerIds({ brokerId: options.brokerId, brokerEpoch: lifecycle?.brokerEpoch ?? -1 }),
        logger,
      }),
    );
    server.addService(
      loadRaftkaAdminService().service,
      adminServiceImplementation({ controller, image: () => metadata.image, waitForImage: (condition, timeoutMs) => metadata.waitFor(condition, timeoutMs), logger }),
    );
    server.addService(loadRaftkaGroupsService().service, groupServiceImplementation({ runtime: groups, logger }));
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${options.listener.host}:${options.listener.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      );
    });
    const advertised =
      options.config.advertisedListeners.length > 0
        ? parseEndpoints(options.config.advertisedListeners)
        : [{ name: options.listener.name, host: options.listener.host, port, securityProtocol: 'PLAINTEXT' }];
    lifecycle = new BrokerLifecycle({
      brokerId: options.brokerId,
      endpoints: advertised,
      ...(options.config.rack === undefined ? {} : { rack: options.config.rack }),
      controller,
      metadataOffset: () => metadata.lastAppliedOffset,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      logger,
    });
    if (options.metrics) {
      const registered = lifecycle;
      registerBrokerCollectors(options.metrics, {
        brokerId: options.brokerId,
        image: () => replicaManager.image,
        log: (topic, partition) => replicaManager.logManager.getLog(topic, partition),
        lifecycleState: () => registered.state,
        committedOffsets: () => committedOffsetsOf(groups),
      });
    }
    const broker = new BrokerServer(replicaManager, lifecycle, server, port, logger, groups);
    // Subscribe and replay what is already applied in one synchronous step: nothing is missed or
    // seen twice (updates are delivered on later turns of the event loop).
    broker.unsubscribe = metadata.subscribe((update) => void replicaManager.applyMetadata(update));
    const image = metadata.image;
    if (image.lastAppliedOffset >= 0) {
      const initial: MetadataUpdate = {
        image,
        delta: MetadataDelta.between(new MetadataImage(), image),
        offset: image.lastAppliedOffset,
        epoch: image.lastAppliedEpoch,
        cause: 'snapshot',
      };
      void replicaManager.applyMetadata(initial);
    }
    lifecycle.start();
    logger.info({ port, advertised }, 'broker started');
    return broker;
  }

  /**
   * Stops the broker. Graceful: controlled shutdown first (leadership moves to other ISR
   * members while this broker still serves their fetches), then the services and logs close.
   */
  async close(options: { graceful: boolean } = { graceful: true }): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (options.graceful) await this.lifecycle.controlledShutdown(CONTROLLED_SHUTDOWN_MS_MAX);
    else this.lifecycle.stop();
    this.unsubscribe?.();
    // Parked joins and syncs are answered NOT_COORDINATOR now, so the server's calls can finish.
    this.groups.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1_000);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await this.replicaManager.close();
    this.logger.info('broker stopped');
  }
}
