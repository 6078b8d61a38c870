// `raftka server`: runs one node in the foreground until SIGTERM/SIGINT.
//
// The process logs pino JSON to stdout. A configuration problem prints one line per problem to
// stderr and exits 1; a start-up failure (e.g. corrupted storage) prints its message and exits 1;
// a signal closes the node gracefully (a leader hands over through EndQuorumEpoch) and exits 0.

import { pino } from 'pino';
import { ConfigError, RaftkaError } from '@raftka/protocol';
import { ControllerNode } from '@raftka/quorum';
import { loadServerConfig } from './server-config.js';

/** A second signal, or a close that hangs, must not keep the process alive forever. */
const SHUTDOWN_MS_MAX = 5_000;

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
  let node: ControllerNode;
  try {
    node = await ControllerNode.start({
      quorum: config.quorum,
      controller: config.controller,
      logger,
      onFatal: () => {
        logger.flush();
        process.exit(1);
      },
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
    node.close({ graceful: true }).then(
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
