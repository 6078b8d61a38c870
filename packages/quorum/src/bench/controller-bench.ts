// Controller benchmark: 3 `raftka server` controllers on loopback, 6 registered brokers speaking
// the broker's side of the controller API (BrokerLifecycle over a ControllerClient), and one
// metadata observer in this process to see what is committed.
//
// Prints:
//   1. the time to create P partitions (RF 3 over 6 brokers) — until the active controller
//      answered, and until the observer has applied them all;
//   2. the metadata log and snapshot sizes on the active controller;
//   3. controller failover with that image: SIGKILL the active controller, time until a new one
//      answers a controller call (over several trials; the killed node is restarted in between);
//   4. fencing one broker and re-electing leaders for all its partitions: time from the fence
//      request until the observer has applied every leader/ISR change. (A broker that dies
//      silently is noticed after broker.session.timeout.ms on top of this.)
//
// Run: npm run bench:controller   (options: --partitions N --topics N --trials N)

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { collectSources, resolveConfig } from '@raftka/protocol';
import { BrokerLifecycle } from '../controller/broker-lifecycle.js';
import { ControllerClient } from '../controller/controller-client.js';
import { PARTITIONS_PER_REQUEST_MAX } from '../controller/controller-logic.js';
import { quorumConfigFrom, quorumConfigSchema } from '../driver/quorum-config.js';
import { encodeMetadataSnapshot } from '../metadata/metadata-snapshot.js';
import { MetadataObserver } from '../observer/metadata-observer.js';
import { QuorumAdmin } from '../transport/quorum-admin.js';
import { createControllers, directoryBytes, until, type BenchNode } from './bench-cluster.js';

const BROKER_COUNT = 6;
const REPLICATION_FACTOR = 3;
const HEARTBEAT_INTERVAL_MS = 500;
const OBSERVER_ID = 100;

interface BenchOptions {
  partitions: number;
  topics: number;
  trials: number;
}

function parseOptions(argv: string[]): BenchOptions {
  const options: BenchOptions = { partitions: 100_000, topics: 100, trials: 5 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    switch (argv[i]) {
      case '--partitions':
        options.partitions = value;
        break;
      case '--topics':
        options.topics = value;
        break;
      case '--trials':
        options.trials = value;
        break;
      default:
        throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return options;
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'raftka-controller-bench-'));
  const logger = pino({ level: 'warn' });
  const nodes = await createControllers(root, 3);
  for (const node of nodes) node.start();
  const controller = new ControllerClient({ controllers: nodes.map((node) => node.address), requestTimeoutMs: 120_000 });
  const overrides = {
    'process.roles': 'broker',
    'node.id': String(OBSERVER_ID),
    'controller.quorum.voters': nodes.map((node) => `${node.nodeId}@${node.address}`).join(','),
    listeners: 'CLIENT://127.0.0.1:0',
    'log.dirs': path.join(root, 'observer'),
  };
  const observer = await MetadataObserver.start({
    config: quorumConfigFrom(resolveConfig(quorumConfigSchema, collectSources({ schema: quorumConfigSchema, env: {}, overrides }))),
    logger,
  });
  const brokers: BrokerLifecycle[] = [];
  try {
    for (let index = 0; index < BROKER_COUNT; index++) {
      const brokerId = 10 + index;
      const lifecycle = new BrokerLifecycle({
        brokerId,
        endpoints: [{ name: 'CLIENT', host: '127.0.0.1', port: 20_000 + brokerId, securityProtocol: 'PLAINTEXT' }],
        rack: `rack-${index % 3}`,
        controller,
        // The brokers share this process's observer: what they report is what it has applied.
        metadataOffset: () => observer.lastAppliedOffset,
        heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
        logger,
      });
      lifecycle.start();
      brokers.push(lifecycle);
    }
    await until('6 unfenced brokers', async () => (brokers.every((broker) => broker.state === 'active') ? true : undefined), 30_000, 20);
    console.log(`controllers: 3 processes; brokers: ${BROKER_COUNT} registered (3 racks); machine: ${os.cpus().length} cores, ${mib(os.totalmem())} RAM`);

    // 1. Create the partitions.
    const perTopic = Math.ceil(options.partitions / options.topics);
    // As a client must: requests of at most PARTITIONS_PER_REQUEST_MAX partitions each, sent one
    // after the other (each is one atomic metadata entry).
    const topics = Array.from({ length: options.topics }, (_, index) => ({ name: `bench-${index}`, numPartitions: perTopic, replicationFactor: REPLICATION_FACTOR }));
    const topicsPerRequest = Math.max(1, Math.floor(PARTITIONS_PER_REQUEST_MAX / perTopic));
    const createStart = performance.now();
    let requests = 0;
    for (let first = 0; first < topics.length; first += topicsPerRequest) {
      const created = await controller.createTopics({ topics: topics.slice(first, first + topicsPerRequest) });
      requests++;
      const failed = created.topics.filter((topic) => topic.error);
      if (failed.length > 0) throw new Error(`create failed: ${failed[0]!.error!.code} ${failed[0]!.error!.message}`);
    }
    const answeredMs = performance.now() - createStart;
    const total = perTopic * options.topics;
    await observer.waitFor((image) => image.partitionCount >= total, 120_000);
    const appliedMs = performance.now() - createStart;
    console.log(
      `create ${total} partitions (RF ${REPLICATION_FACTOR}) in ${options.topics} topics, ${requests} requests: ` +
        `all answered after ${seconds(answeredMs)}, applied by an observer after ${seconds(appliedMs)}`,
    );

    // 2. Sizes: the active controller's metadata directory, its latest snapshot, the image encoded as one.
    const activeNode = (): BenchNode => nodes.find((node) => node.address === controller.activeController)!;
    const metadataDirectory = path.join(activeNode().dataDirectory, '__cluster_metadata-0');
    const snapshotDirectory = path.join(metadataDirectory, 'snapshots');
    const snapshotFiles = await fs.readdir(snapshotDirectory).catch(() => [] as string[]);
    const snapshotBytes = snapshotFiles.length === 0 ? 0 : (await fs.stat(path.join(snapshotDirectory, snapshotFiles.sort().at(-1)!))).size;
    const directoryTotal = await directoryBytes(metadataDirectory);
    console.log(
      `metadata on the active controller: ${mib(directoryTotal)} in __cluster_metadata-0 (log ${mib(directoryTotal - (await directoryBytes(snapshotDirectory).catch(() => 0)))}, ` +
        `latest snapshot ${mib(snapshotBytes)}); the image as a snapshot: ${mib(encodeMetadataSnapshot(observer.image).byteLength)}`,
    );

    // 3. Failover with that image.
    const failovers: number[] = [];
    for (let trial = 0; trial < options.trials; trial++) {
      await controller.describeConfigs({ resources: [] });
      const victim = activeNode();
      const killedAt = performance.now();
      await victim.kill();
      await controller.describeConfigs({ resources: [] });
      failovers.push(performance.now() - killedAt);
      victim.start();
      // Let the restarted node load its snapshot and catch up before the next trial.
      await until('the restarted controller to rejoin', async () => (victim.child ? await probeCaughtUp(victim) : undefined), 120_000, 100);
    }
    failovers.sort((a, b) => a - b);
    console.log(
      `controller failover (SIGKILL of the active controller until a new one answers), ${options.trials} trials: ` +
        `p50 ${Math.round(failovers[Math.floor(failovers.length / 2)]!)} ms, max ${Math.round(failovers.at(-1)!)} ms`,
    );

    // 4. Fence the broker leading the most partitions and re-elect its leaderships.
    const counts = new Map<number, { led: number; replica: number }>();
    for (const topic of observer.image.topicsById.values()) {
      for (const partition of topic.partitions) {
        for (const replica of partition.replicas) {
          const entry = counts.get(replica) ?? { led: 0, replica: 0 };
          entry.replica++;
          if (replica === partition.leader) entry.led++;
          counts.set(replica, entry);
        }
      }
    }
    const [victimId, victimCounts] = [...counts.entries()].sort((a, b) => b[1].led - a[1].led)[0]!;
    const victimBroker = brokers.find((_, index) => 10 + index === victimId)!;
    victimBroker.stop();
    const fenceStart = performance.now();
    await controller.brokerHeartbeat({ brokerId: victimId, brokerEpoch: victimBroker.brokerEpoch, currentMetadataOffset: observer.lastAppliedOffset, wantFence: true, wantShutDown: false });
    const fenceAnsweredMs = performance.now() - fenceStart;
    await observer.waitFor((image) => {
      if (image.brokers.get(victimId)?.fenced !== true) return false;
      for (const partition of image.partitionsOnBroker(victimId)) if (partition.leader === victimId || partition.isr.includes(victimId)) return false;
      return true;
    }, 120_000);
    const fenceAppliedMs = performance.now() - fenceStart;
    console.log(
      `fence broker ${victimId} (leader of ${victimCounts.led}, replica of ${victimCounts.replica} partitions): ` +
        `answered after ${seconds(fenceAnsweredMs)}, every new leader and ISR applied by an observer after ${seconds(fenceAppliedMs)}`,
    );
    console.log(`memory of this process (observer with the full image): rss ${mib(process.memoryUsage().rss)}`);
  } finally {
    for (const broker of brokers) broker.stop();
    controller.close();
    await observer.close();
    for (const node of nodes) await node.kill();
    await fs.rm(root, { recursive: true, force: true });
  }
}

/** A restarted controller is back once the leader reports it fully caught up (lag 0). */
async function probeCaughtUp(node: BenchNode): Promise<true | undefined> {
  const admin = new QuorumAdmin(node.address, 1_000);
  try {
    const status = await admin.describe();
    return status.replicas.find((replica) => replica.nodeId === node.nodeId)?.lag === 0 ? true : undefined;
  } finally {
    admin.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
