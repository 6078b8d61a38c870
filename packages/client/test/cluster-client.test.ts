import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@raftka/protocol';
import { parseBootstrapServer, snapshotFromMetadata } from '../src/cluster-client.js';
import type { PartitionMetadataMessage } from '../src/network/client-messages.js';

const partition = (index: number, overrides: Partial<PartitionMetadataMessage> = {}): PartitionMetadataMessage => ({
  errorCode: 0,
  errorMessage: '',
  partitionIndex: index,
  leaderId: 1,
  leaderEpoch: 4,
  replicaNodes: [1],
  isrNodes: [1],
  offlineReplicas: [],
  ...overrides,
});

describe('cluster client helpers', () => {
  it('parses host:port bootstrap entries and rejects anything else', () => {
    expect(parseBootstrapServer('localhost:9092')).toEqual({ host: 'localhost', port: 9092 });
    expect(parseBootstrapServer('[::1]:9092')).toEqual({ host: '::1', port: 9092 });
    expect(() => parseBootstrapServer('localhost')).toThrow(/not host:port/);
    expect(() => parseBootstrapServer('localhost:70000')).toThrow(/not host:port/);
  });

  it('validates Metadata responses: unknown topics, leaderless partitions, and lists with gaps', () => {
    const base = { errorMessage: '', topicId: Buffer.alloc(16), isInternal: false };
    const snapshot = snapshotFromMetadata({
      brokers: [{ nodeId: 1, host: 'h', port: 1, rack: '' }],
      clusterId: 'c',
      controllerId: 1,
      topics: [
        { ...base, errorCode: 0, name: 'ok', partitions: [partition(1), partition(0, { errorCode: ErrorCode.LEADER_NOT_AVAILABLE, leaderId: 1 })] },
        { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name: 'missing', partitions: [] },
        { ...base, errorCode: 0, name: 'gappy', partitions: [partition(0), partition(2)] },
      ],
    });
    expect(snapshot.unknownTopics).toEqual(['missing']);
    expect(snapshot.topics.map((topic) => topic.name)).toEqual(['ok']);
    expect(snapshot.topics[0]!.partitions.map((p) => [p.partition, p.leaderId])).toEqual([
      [0, -1],
      [1, 1],
    ]);
  });
});
