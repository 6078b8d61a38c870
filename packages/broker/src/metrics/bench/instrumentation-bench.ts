// What the request metrics cost per call: a RaftkaClient Produce handler (an answer of 16
// partitions, as a batching producer sends) called directly, bare and instrumented, in
// alternating rounds; prints CPU nanoseconds per call (process CPU time, so that other load on
// the machine does not inflate the figures as wall-clock time would). The gRPC transport around it costs tens of
// microseconds per call, so this is the part the instrumentation adds to the request path.
//
//   node packages/broker/dist/metrics/bench/instrumentation-bench.js [calls-per-round]

import type * as grpc from '@grpc/grpc-js';
import { loadRaftkaClientService } from '../../server/client-proto.js';
import { instrumentService } from '../grpc-instrumentation.js';
import { NodeMetrics } from '../node-metrics.js';

const PARTITIONS = 16;
const ROUNDS = 5;

const request = {
  acks: 1,
  timeoutMs: 30_000,
  topicData: [{ name: 'bench', partitionData: Array.from({ length: PARTITIONS }, (_, index) => ({ index, records: Buffer.alloc(16_384) })) }],
};
const response = {
  responses: [{ name: 'bench', partitionResponses: Array.from({ length: PARTITIONS }, (_, index) => ({ index, errorCode: 0, errorMessage: '', baseOffset: 42, logAppendTimeMs: -1, logStartOffset: 0 })) }],
};

function main(): void {
  const calls = Number(process.argv[2] ?? 200_000);
  const definition = loadRaftkaClientService().service;
  const bare: grpc.UntypedServiceImplementation = {
    Produce: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, response),
  } as grpc.UntypedServiceImplementation;
  const instrumented = instrumentService(new NodeMetrics({ collectProcessMetrics: false }), definition, bare);
  const call = { request } as unknown;
  let answered = 0;
  const callback = (): void => {
    answered++;
  };
  const run = (implementation: grpc.UntypedServiceImplementation): number => {
    const handler = implementation['Produce'] as unknown as (call: unknown, callback: () => void) => void;
    const start = process.cpuUsage();
    for (let i = 0; i < calls; i++) handler(call, callback);
    const used = process.cpuUsage(start);
    return ((used.user + used.system) * 1_000) / calls;
  };
  // Warm-up rounds: let the JIT optimise both paths before measuring.
  for (let round = 0; round < 2; round++) {
    run(bare);
    run(instrumented);
  }
  const bareNs: number[] = [];
  const instrumentedNs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    bareNs.push(run(bare));
    instrumentedNs.push(run(instrumented));
  }
  const best = (values: number[]): number => Math.min(...values);
  process.stdout.write(
    `${calls} calls x ${ROUNDS} rounds, ${PARTITIONS} partitions per request (${answered} answers)\n` +
      `bare handler:         ${best(bareNs).toFixed(0)} ns/call (best round)\n` +
      `instrumented handler: ${best(instrumentedNs).toFixed(0)} ns/call (best round)\n` +
      `added by metrics:     ${(best(instrumentedNs) - best(bareNs)).toFixed(0)} ns/call\n`,
  );
}

main();
