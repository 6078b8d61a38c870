// Benchmark of the controller's pure logic and the metadata image at the scale of the project's
// target: 100,000 partitions (RF 3 over 6 brokers) created, then brokers fenced one after another,
// each fence re-electing every partition the broker led. Prints figures; asserts nothing about time.
//
// Run: npx tsc -b packages/quorum && node packages/quorum/dist/bench/controller-logic-bench.js [partitions] [topics] [brokers]
// (with 3 brokers each leads ~33,000 of 100,000 partitions: the fence figure the project targets).

import { performance } from 'node:perf_hooks';
import { ControllerLogic, PARTITIONS_PER_REQUEST_MAX } from '../controller/controller-logic.js';
import { makeControllerConfig } from '../controller/controller-config.js';
import { MetadataPublisher } from '../metadata/metadata-publisher.js';
import { decodeMetadataRecord, encodeMetadataRecord, type MetadataRecord } from '../metadata/metadata-records.js';
import { decodeMetadataSnapshot, encodeMetadataSnapshot } from '../metadata/metadata-snapshot.js';

const REPLICATION_FACTOR = 3;

function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function timed<T>(action: () => T): { value: T; ms: number } {
  const start = performance.now();
  const value = action();
  return { value, ms: performance.now() - start };
}

function main(): void {
  const partitionsTotal = Number(process.argv[2] ?? 100_000);
  const topicCount = Number(process.argv[3] ?? 100);
  const BROKER_COUNT = Number(process.argv[4] ?? 6);
  const partitionsPerTopic = Math.ceil(partitionsTotal / topicCount);
  const publisher = new MetadataPublisher();
  const logic = new ControllerLogic({ config: makeControllerConfig(), random: seededRandom(1) });
  let offset = 0;
  const commit = (records: MetadataRecord[]): { encodeMs: number; decodeMs: number; applyMs: number; bytes: number } => {
    const encoded = timed(() => records.map(encodeMetadataRecord));
    const bytes = encoded.value.reduce((sum, record) => sum + record.length, 0);
    const decoded = timed(() => encoded.value.map(decodeMetadataRecord));
    const applied = timed(() => publisher.applyRecords(decoded.value, offset++, 1));
    return { encodeMs: encoded.ms, decodeMs: decoded.ms, applyMs: applied.ms, bytes };
  };

  const brokerEpochs = new Map<number, number>();
  for (let brokerId = 1; brokerId <= BROKER_COUNT; brokerId++) {
    const result = logic.registerBroker(publisher.image, {
      brokerId,
      incarnationId: `bench-${brokerId}`,
      endpoints: [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9000 + brokerId, securityProtocol: 'PLAINTEXT' }],
    });
    commit(result.records);
    brokerEpochs.set(brokerId, result.response.brokerEpoch);
  }
  for (let brokerId = 1; brokerId <= BROKER_COUNT; brokerId++) {
    const result = logic.brokerHeartbeat(publisher.image, {
      brokerId,
      brokerEpoch: brokerEpochs.get(brokerId)!,
      currentMetadataOffset: publisher.image.lastAppliedOffset,
      wantFence: false,
      wantShutDown: false,
    });
    commit(result.records);
  }

  const topics = Array.from({ length: topicCount }, (_, index) => ({
    name: `bench-topic-${index}`,
    numPartitions: partitionsPerTopic,
    replicationFactor: REPLICATION_FACTOR,
  }));
  // As a client must: requests of at most PARTITIONS_PER_REQUEST_MAX partitions each.
  const topicsPerRequest = Math.max(1, Math.floor(PARTITIONS_PER_REQUEST_MAX / partitionsPerTopic));
  const totals = { logicMs: 0, encodeMs: 0, decodeMs: 0, applyMs: 0, bytes: 0, records: 0, requests: 0 };
  for (let first = 0; first < topics.length; first += topicsPerRequest) {
    const created = timed(() => logic.createTopics(publisher.image, { topics: topics.slice(first, first + topicsPerRequest) }));
    const createCommit = commit(created.value.records);
    totals.logicMs += created.ms;
    totals.encodeMs += createCommit.encodeMs;
    totals.decodeMs += createCommit.decodeMs;
    totals.applyMs += createCommit.applyMs;
    totals.bytes += createCommit.bytes;
    totals.records += created.value.records.length;
    totals.requests++;
  }
  console.log(
    `create ${publisher.image.partitionCount} partitions in ${topicCount} topics (RF ${REPLICATION_FACTOR}, ${BROKER_COUNT} brokers, ${totals.requests} requests): ` +
      `logic ${totals.logicMs.toFixed(0)} ms, encode ${totals.encodeMs.toFixed(0)} ms, decode ${totals.decodeMs.toFixed(0)} ms, apply ${totals.applyMs.toFixed(0)} ms, ` +
      `${totals.records} records, ${(totals.bytes / 1024 / 1024).toFixed(1)} MiB`,
  );

  for (const brokerId of [1, 2]) {
    const led = [...publisher.image.partitionsOnBroker(brokerId)].filter((partition) => partition.leader === brokerId).length;
    const cpuBefore = process.cpuUsage();
    const fence = timed(() => logic.fenceBroker(publisher.image, brokerId));
    const fenceCommit = commit(fence.value.records);
    const cpu = process.cpuUsage(cpuBefore);
    const stillLed = [...publisher.image.partitionsOnBroker(brokerId)].filter((partition) => partition.leader === brokerId).length;
    console.log(
      `fence broker ${brokerId} leading ${led} partitions: logic ${fence.ms.toFixed(0)} ms, encode ${fenceCommit.encodeMs.toFixed(0)} ms, ` +
        `decode ${fenceCommit.decodeMs.toFixed(0)} ms, apply ${fenceCommit.applyMs.toFixed(0)} ms, ${fence.value.records.length} records, ` +
        `process CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms; it now leads ${stillLed}`,
    );
  }

  const snapshot = timed(() => encodeMetadataSnapshot(publisher.image));
  const loaded = timed(() => decodeMetadataSnapshot(snapshot.value));
  console.log(
    `snapshot of ${loaded.value.partitionCount} partitions: encode ${snapshot.ms.toFixed(0)} ms, ` +
      `decode+rebuild ${loaded.ms.toFixed(0)} ms, ${(snapshot.value.length / 1024 / 1024).toFixed(1)} MiB`,
  );
  const heap = process.memoryUsage().heapUsed;
  console.log(`heap used ${(heap / 1024 / 1024).toFixed(0)} MiB (two images alive)`);
}

main();
