// ProduceStream of the RaftkaClient service, called over the wire: requests written back to back
// on one stream are appended in the order they were written and answered in that order (what
// lets a producer keep several batches of a partition in flight), a sequence gap is refused
// as on the unary call, and acks=0 requests are answered too so answers pair up by position.

import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodeName } from '@raftka/protocol';
import { loadRaftkaClientService } from '../../src/server/client-proto.js';
import { TestCluster, batch } from '../replica-manager/cluster-fixture.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.create();
  await cluster.startBroker(1);
  await cluster.createTopic('piped', [[1]]);
});

afterAll(async () => {
  await cluster.close();
});

interface Answer {
  code: string;
  baseOffset: number;
}

/** Writes every request on one stream at once and collects the answers in arrival order. */
async function produceOnStream(requests: { records: Buffer; acks: number }[]): Promise<Answer[]> {
  const Service = loadRaftkaClientService();
  const client = new Service(`127.0.0.1:${cluster.broker(1).port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    ProduceStream: () => grpc.ClientDuplexStream<unknown, { responses: { partitionResponses: { errorCode: number; baseOffset: number }[] }[] }>;
  };
  try {
    const call = client.ProduceStream();
    const answers: Answer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (response) => {
        const item = response.responses[0]!.partitionResponses[0]!;
        answers.push({ code: errorCodeName(item.errorCode), baseOffset: item.baseOffset });
      });
      call.on('end', resolve);
      call.on('error', reject);
    });
    for (const request of requests) {
      call.write({ acks: request.acks, timeoutMs: 10_000, topicData: [{ name: 'piped', partitionData: [{ index: 0, records: request.records }] }] });
    }
    call.end();
    await done;
    return answers;
  } finally {
    client.close();
  }
}

describe('ProduceStream', () => {
  it('appends and answers requests in the order they were written, refusing a sequence gap', async () => {
    const init = await cluster.broker(1).client.call('InitProducerId', { transactionalId: '', transactionTimeoutMs: 0, producerId: -1, producerEpoch: -1 });
    const producerId = init.producerId as number;
    // Large and small batches alternate: separate unary calls could be handled out of order,
    // one stream must not be.
    const requests = Array.from({ length: 12 }, (_, index) => ({
      records: batch(`b${index}`, 1, { producerId, baseSequence: index, valueBytes: index % 2 === 0 ? 200_000 : 10 }),
      acks: index % 3 === 0 ? 0 : index % 3 === 1 ? 1 : -1,
    }));
    const gap = { records: batch('gap', 1, { producerId, baseSequence: 20 }), acks: 1 };
    const answers = await produceOnStream([...requests, gap]);
    expect(answers.slice(0, 12)).toEqual(requests.map((_, index) => ({ code: 'NONE', baseOffset: index })));
    expect(answers[12]!.code).toBe('OUT_OF_ORDER_SEQUENCE_NUMBER');
    expect(cluster.broker(1).replicaManager.replicaStatus('piped', 0)!.logEndOffset).toBe(12);
  });
});
