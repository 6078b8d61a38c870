// One broker: the replica manager driven by the metadata image, the client-facing gRPC services
// (RaftkaClient, RaftkaAdmin, and RaftkaGroups backed by the group coordinator) on each client
// listener, and the broker's lifecycle with the controller (register, heartbeat, unfence once
// caught up, controlled shutdown).
//
// Every client listener (INTERNAL, EXTERNAL, ...) is its own gRPC server, so the services know
// which listener a request arrived on and answer broker addresses of that listener; the broker
// registers one endpoint per client listener (broker-listeners.ts).
//
// Start order matters for safety: the replica manager follows the image before the broker
// registers, so by the time the controller unfences it (it has applied the log up to its own
// registration, KIP-631) it already leads or follows what the image says. Shutdown reverses it:
// controlled shutdown moves leadership away while the broker still serves, then it stops.

import * as grpc from '@grpc/grpc-js';
import { RaftkaError, invariant, type Logger } from '@raftka/protocol';
import {
  BrokerLifecycle,
  MetadataDelta,
  MetadataImage,
  formatAddress,
  type ControllerClient,
  type MetadataSource,
  type MetadataUpdate,
} from '@raftka/quorum';
import { adminServiceImplementation } from './admin-service.js';
import type { BrokerConfig } from './broker-config.js';
import { registeredEndpoint, resolveBrokerListeners, type ClientListener } from './broker-listeners.js';
import { ReplicaManager } from './replica-manager/replica-manager.js';
import { ProducerIdAllocator, clientServiceImplementation } from './server/client-service.js';
import { BROKER_SERVER_OPTIONS, loadRaftkaAdminService, loadRaftkaClientService, loadRaftkaGroupsService } from './server/client-proto.js';
import { GroupRuntime } from './group/group-runtime.js';
import { groupServiceImplementation } from './group/group-service.js';
import { committedOffsetsOf, countIsrChanges, registerBrokerCollectors } from './metrics/broker-collectors.js';
import { instrumentServer } from './metrics/grpc-instrumentation.js';
import type { NodeMetrics } from './metrics/node-metrics.js';

/** Controlled shutdown gets at most this long before the broker stops anyway. */
export const CONTROLLED_SHUTDOWN_MS_MAX = 10_000;
/** Calls still running this long after the services stop taking new ones are cancelled. */
const SERVER_SHUTDOWN_MS_MAX = 1_000;


export interface BrokerServerOptions {
  brokerId: number;
  /**
   * The node's listeners (`listeners`): every one not named CONTROLLER is a client listener the
   * services bind to. Checked against advertised.listeners and inter.broker.listener.name.
   */
  listeners?: readonly { name: string; host: string; port: number }[];
  /** A single client listener, for callers that have one; ignored when `listeners` is given. */
  listener?: { name: string; host: string; port: number };
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

/** A client listener with its gRPC server, once bound. */
interface BoundListener {
  listener: ClientListener;
  server: grpc.Server;
  port: number;
}

/**
 * Binds `server` to the listener's host:port; resolves the bound port (the OS-assigned one for
 * port 0). A port in use is an operator's mistake in `listeners`, reported as such.
 */
function bind(server: grpc.Server, listener: ClientListener): Promise<number> {
  const address = formatAddress(listener.host, listener.port);
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (error === null) {
        resolve(bound);
        return;
      }
      reject(new RaftkaError('INVALID_CONFIG', `listeners: ${listener.name}://${address}: cannot listen (${error.message}); choose a free port`, { cause: error }));
    });
  });
}

export class BrokerServer {
  private unsubscribe: (() => void) | undefined;
  private closed = false;

  private constructor(
    readonly replicaManager: ReplicaManager,
    readonly lifecycle: BrokerLifecycle,
    // Invariant: one entry per client listener, in `listeners` order, never empty.
    private readonly bound: readonly BoundListener[],
    private readonly logger: Logger,
    /** The group coordinator of the `__consumer_offsets` partitions this broker leads. */
    readonly groups: GroupRuntime,
  ) {}

  /** The bound port of the first client listener. */
  get port(): number {
    return this.bound[0]!.port;
  }

  /** Client listener name -> bound port, in `listeners` order. */
  get listenerPorts(): ReadonlyMap<string, number> {
    return new Map(this.bound.map((entry) => [entry.listener.name, entry.port]));
  }

  static async start(options: BrokerServerOptions): Promise<BrokerServer> {
    const logger = options.logger.child({ component: 'broker', nodeId: options.brokerId });
    const { controller, metadata } = options;
    invariant(options.listeners !== undefined || options.listener !== undefined, 'BrokerServer.start needs listeners (or one listener)');
    // Throws a ConfigError before anything starts when the listener keys contradict each other.
    const plan = resolveBrokerListeners(options.listeners ?? [options.listener!], options.config);
    const replicaManager = new ReplicaManager({
      brokerId: options.brokerId,
      logDir: options.logDir,
      // Followers reach leaders through the inter-broker listener's advertised endpoint.
      config: { ...options.config.replicaManager, listenerName: plan.interBrokerListenerName },
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
      listenerName: plan.interBrokerListenerName,
      createTopics: (request) => controller.createTopics(request),
      logger,
    });
    groups.start();
    let lifecycle: BrokerLifecycle | undefined;
    // One allocator for every listener's service: ids are drawn from one block at a time.
    // Blocks are asked for under the current registration (the controller checks the epoch).
    const allocateProducerIds = () => controller.allocateProducerIds({ brokerId: options.brokerId, brokerEpoch: lifecycle?.brokerEpoch ?? -1 });
    const producerIdAllocator = new ProducerIdAllocator(allocateProducerIds);
    const autoCreateTopics = options.autoCreateTopicsEnable ? autoCreator(controller) : undefined;
    const admin = adminServiceImplementation({
      controller,
      image: () => metadata.image,
      waitForImage: (condition, timeoutMs) => metadata.waitFor(condition, timeoutMs),
      logger,
    });
    const bound: BoundListener[] = [];
    try {
      for (const listener of plan.clientListeners) {
        const server = new grpc.Server(BROKER_SERVER_OPTIONS);
        if (options.metrics) instrumentServer(options.metrics, server);
        server.addService(
          loadRaftkaClientService().service,
          clientServiceImplementation({
            replicaManager,
            clusterId: options.clusterId,
            listenerName: listener.name,
            ...(autoCreateTopics === undefined ? {} : { autoCreateTopics }),
            allocateProducerIds,
            producerIdAllocator,
            logger,
          }),
        );
        server.addService(loadRaftkaAdminService().service, admin);
        server.addService(loadRaftkaGroupsService().service, groupServiceImplementation({ runtime: groups, listenerName: listener.name, logger }));
        const port = await bind(server, listener).catch((error: unknown) => {
          server.forceShutdown();
          throw error;
        });
        bound.push({ listener, server, port });
      }
    } catch (error) {
      // A listener that cannot bind (port in use) stops the start: nothing is left running.
      for (const entry of bound) entry.server.forceShutdown();
      groups.close();
      await replicaManager.close();
      throw error;
    }
    const advertised = bound.map((entry) => registeredEndpoint(entry.listener, entry.port));
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
    const broker = new BrokerServer(replicaManager, lifecycle, bound, logger, groups);
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
    logger.info(
      { port: broker.port, ports: Object.fromEntries(broker.listenerPorts), advertised, interBrokerListenerName: plan.interBrokerListenerName },
      'broker started',
    );
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
    await Promise.all(
      this.bound.map(
        ({ server }) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              server.forceShutdown();
              resolve();
            }, SERVER_SHUTDOWN_MS_MAX);
            server.tryShutdown(() => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    await this.replicaManager.close();
    this.logger.info('broker stopped');
  }
}
