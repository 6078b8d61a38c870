// `raftka server`: runs one node in the foreground until SIGTERM/SIGINT.
//
// process.roles decides what runs: `controller` (a quorum voter serving the controller API),
// `broker` (follows the metadata log as an observer, serves clients), or `controller,broker`
// (combined mode: the broker follows the controller's own image).
//
// The process logs pino JSON to stdout. A configuration problem prints one line per problem to
// stderr and exits 1; a start-up failure (e.g. corrupted storage) prints its message and exits 1;
// a signal stops the node gracefully — a broker first moves its leaderships away (controlled
// shutdown), a quorum leader hands over through EndQuorumEpoch — and exits 0.

import path from 'node:path';
import { pino, type Logger } from 'pino';
import {
  BrokerServer,
  NodeMetrics,
  brokerReadiness,
  controllerReadiness,
  readinessOf,
  registerControllerCollectors,
  serviceWrapperFor,
  type Readiness,
} from '@raftka/broker';
import { ConfigError, RaftkaError } from '@raftka/protocol';
import { ControllerClient, ControllerNode, MetadataObserver, formatAddress, type MetadataSource } from '@raftka/quorum';
import { AdminHttpServer } from './admin-http.js';
import { loadServerConfig, type ServerConfig } from './server-config.js';

/** A second signal, or a close that hangs, must not keep the process alive forever. */
const SHUTDOWN_MS_MAX = 15_000;

interface RunningNode {
  close(graceful: boolean): Promise<void>;
}

async function startNode(config: ServerConfig, logger: Logger, onFatal: (error: unknown) => void): Promise<RunningNode> {
  const roles = config.quorum.roles;
  let controllerNode: ControllerNode | undefined;
  let observer: MetadataObserver | undefined;
  let broker: BrokerServer | undefined;
  let controllerClient: ControllerClient | undefined;
  let adminHttp: AdminHttpServer | undefined;
  let phase: 'starting' | 'running' | 'stopping' = 'starting';
  // Metrics exist only where they are served: without the admin listener nothing is measured.
  const metrics = config.adminHttp ? new NodeMetrics() : undefined;
  const readiness = (): Readiness => {
    if (phase !== 'running') return readinessOf([`node: ${phase}`]);
    const missing: string[] = [];
    if (controllerNode) {
      const { quorum } = controllerNode;
      missing.push(
        ...controllerReadiness({
          leaderId: quorum.leaderId,
          nodeId: quorum.nodeId,
          isActiveController: controllerNode.isActive,
          lastAppliedOffset: quorum.lastAppliedOffset,
          highWatermark: quorum.highWatermark,
        }),
      );
    }
    if (broker) {
      missing.push(
        ...brokerReadiness({
          lifecycleState: broker.lifecycle.state,
          lastControllerResponseMs: broker.lifecycle.lastControllerResponseMs,
          nowMs: Date.now(),
          sessionTimeoutMs: config.controller.brokerSessionTimeoutMs,
        }),
      );
    }
    return readinessOf(missing);
  };
  const close = async (graceful: boolean): Promise<void> => {
    phase = 'stopping';
    // The broker goes first (controlled shutdown needs the controller), the quorum member last;
    // the admin listener answers (not ready) until the end.
    await broker?.close({ graceful });
    controllerClient?.close();
    await observer?.close();
    await controllerNode?.close({ graceful });
    await adminHttp?.close();
  };
  try {
    if (config.adminHttp && metrics) {
      adminHttp = await AdminHttpServer.start({ address: config.adminHttp, metrics, readiness, logger });
    }
    if (roles.includes('controller')) {
      controllerNode = await ControllerNode.start({
        quorum: config.quorum,
        controller: config.controller,
        logger,
        onFatal,
        ...(metrics ? { serviceWrapper: serviceWrapperFor(metrics) } : {}),
      });
      if (metrics) {
        const node = controllerNode;
        registerControllerCollectors(metrics, { isActive: () => node.isActive, quorum: node.quorum, image: () => node.image });
      }
    }
    if (roles.includes('broker')) {
      let metadata: MetadataSource;
      if (controllerNode) {
        metadata = controllerNode.metadata;
      } else {
        observer = await MetadataObserver.start({ config: config.quorum, logger, onFatal });
        metadata = observer;
      }
      controllerClient = new ControllerClient({ controllers: config.quorum.voters.map((voter) => formatAddress(voter.host, voter.port)) });
      broker = await BrokerServer.start({
        brokerId: config.quorum.nodeId,
        listeners: config.quorum.listeners,
        config: config.broker,
        // Partition logs live next to the metadata log (__cluster_metadata-0), as in Kafka.
        logDir: path.resolve(config.quorum.logDirs[0]!),
        clusterId: config.broker.clusterId,
        controller: controllerClient,
        metadata,
        heartbeatIntervalMs: config.controller.brokerHeartbeatIntervalMs,
        autoCreateTopicsEnable: config.controller.autoCreateTopicsEnable,
        logger,
        ...(metrics ? { metrics } : {}),
      });
    }
    phase = 'running';
  } catch (error) {
    await close(false).catch(() => undefined);
    throw error;
  }
  return { close };
}

export async function runServer(options: { config?: string; override: string[] }): Promise<void> {
  let config;
  try {
    config = await loadServerConfig({ configFile: options.config, overrides: options.override, env: process.env });
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) process.stderr.write(`config error: ${problem}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = pino({ level: config.quorum.logLevel, base: { pid: process.pid } });
  let node: RunningNode;
  try {
    node = await startNode(config, logger, () => {
      logger.flush();
      process.exit(1);
    });
  } catch (error) {
    const message = error instanceof RaftkaError ? `${error.code}: ${error.message}` : String((error as Error)?.stack ?? error);
    logger.fatal({ err: error }, 'failed to start');
    process.stderr.write(`raftka server: ${message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: stopping at once');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'stopping gracefully');
    setTimeout(() => {
      logger.error('graceful stop took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_MS_MAX).unref();
    node.close(true).then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
