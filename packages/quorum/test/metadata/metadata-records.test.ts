import { describe, it, expect } from 'vitest';
import { decodeMetadataRecord, decodeMetadataRecordReflective, encodeMetadataRecord, encodeMetadataRecordReflective, type MetadataRecord } from '../../src/metadata/metadata-records.js';
import { generateTopicId } from '../../src/metadata/topic-id.js';
import { seededRandom } from '../controller/cluster-fixture.js';

describe('metadata record codec', () => {
  const records: MetadataRecord[] = [
    {
      type: 'registerBroker',
      brokerId: 3,
      incarnationId: 'abc',
      brokerEpoch: 2 ** 40,
      endpoints: [{ name: 'PLAINTEXT', host: 'h', port: 9092, securityProtocol: 'PLAINTEXT' }],
      rack: 'r1',
      fenced: true,
    },
    { type: 'registerBroker', brokerId: 0, incarnationId: 'x', brokerEpoch: 1, endpoints: [], rack: undefined, fenced: false, registeredAtOffset: 0 },
    { type: 'unregisterBroker', brokerId: 3, brokerEpoch: 7 },
    { type: 'fenceBroker', brokerId: 3, brokerEpoch: 7 },
    { type: 'unfenceBroker', brokerId: 3, brokerEpoch: 7 },
    { type: 'brokerRegistrationChange', brokerId: 3, brokerEpoch: 7, inControlledShutdown: true },
    { type: 'topic', name: 'orders', topicId: 'AAAAAAAAAAAAAAAAAAAAAQ' },
    { type: 'partition', topicId: 't', partitionId: 4, replicas: [1, 2, 3], isr: [2, 3], leader: 2, leaderEpoch: 5, partitionEpoch: 9 },
    { type: 'partition', topicId: 't', partitionId: 0, replicas: [1], isr: [1], leader: -1, leaderEpoch: 0, partitionEpoch: 0 },
    { type: 'partitionChange', topicId: 't', partitionId: 1, leader: 0 },
    { type: 'partitionChange', topicId: 't', partitionId: 1, isr: [2], replicas: [2, 3] },
    { type: 'partitionChange', topicId: 't', partitionId: 1, leader: -1 },
    { type: 'partitionChange', topicId: 't', partitionId: 1, isr: [] },
    { type: 'removeTopic', topicId: 't' },
    { type: 'config', resourceType: 'topic', resourceName: 'orders', name: 'retention.ms', value: '100' },
    { type: 'config', resourceType: 'broker', resourceName: '', name: 'num.partitions', value: undefined },
    { type: 'config', resourceType: 'topic', resourceName: 'orders', name: 'cleanup.policy', value: '' },
    { type: 'producerIds', brokerId: 1, brokerEpoch: 4, nextProducerId: 2 ** 50 },
  ];

  it('round-trips every record type exactly', () => {
    for (const record of records) expect(decodeMetadataRecord(encodeMetadataRecord(record))).toEqual(record);
  });

  it('encodes and decodes partition records on the fast paths exactly as reflection does', () => {
    for (const record of records) {
      const bytes = encodeMetadataRecord(record);
      const reflective = encodeMetadataRecordReflective(record);
      expect(decodeMetadataRecord(bytes)).toEqual(decodeMetadataRecordReflective(bytes));
      expect(decodeMetadataRecordReflective(reflective)).toEqual(record);
      expect(decodeMetadataRecord(reflective)).toEqual(record);
      expect(Buffer.from(bytes).equals(Buffer.from(reflective))).toBe(true);
    }
    // A truncated partition record is not half-decoded: it is reported as corrupted.
    const bytes = encodeMetadataRecord(records.find((record) => record.type === 'partition')!);
    expect(() => decodeMetadataRecord(bytes.subarray(0, bytes.length - 3))).toThrow(/damaged|malformed/);
  });

  it('decodes NoOp records on the fast path exactly as reflection does, payload bytes included', () => {
    for (const payload of [new Uint8Array(0), new Uint8Array([7]), new Uint8Array(300).map((_, index) => index % 251)]) {
      const bytes = encodeMetadataRecord({ type: 'noOp', payload });
      const fast = decodeMetadataRecord(bytes);
      expect(fast.type).toBe('noOp');
      expect(Buffer.from((fast as { payload: Uint8Array }).payload).equals(Buffer.from(payload))).toBe(true);
      const reflective = decodeMetadataRecordReflective(bytes);
      expect(Buffer.from((reflective as { payload: Uint8Array }).payload).equals(Buffer.from(payload))).toBe(true);
    }
    // A NoOp whose payload runs past the end is not half-decoded: it is reported as corrupted.
    const bytes = encodeMetadataRecord({ type: 'noOp', payload: new Uint8Array(40) });
    expect(() => decodeMetadataRecord(bytes.subarray(0, bytes.length - 3))).toThrow(/damaged|malformed/);
  });

  it('reports garbage as a corrupted log', () => {
    expect(() => decodeMetadataRecord(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(/damaged/);
    expect(() => decodeMetadataRecord(new Uint8Array([]))).toThrow(/malformed/);
  });
});

describe('topic ids', () => {
  it('are 22 base64url characters, reproducible from the random source, never starting with -', () => {
    const a = generateTopicId(seededRandom(5));
    expect(a).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    expect(generateTopicId(seededRandom(5))).toBe(a);
    expect(generateTopicId(seededRandom(6))).not.toBe(a);
    const taken = new Set([a]);
    expect(generateTopicId(seededRandom(5), (id) => taken.has(id))).not.toBe(a);
  });
});
