import { describe, expect, it } from 'vitest';
import { RaftkaError } from '@raftka/protocol';
import {
  decodeGroupMetadataValue,
  decodeGroupRecordKey,
  decodeOffsetCommitValue,
  decodeSubscriptionTopics,
  encodeGroupMetadataKey,
  encodeGroupMetadataValue,
  encodeOffsetCommitKey,
  encodeOffsetCommitValue,
  encodeSubscription,
  groupPartitionFor,
  type GroupMetadataValue,
} from '../../src/group/index.js';

describe('__consumer_offsets record format', () => {
  it("writes keys in Kafka's layout (offset key v1, group key v2)", () => {
    expect(encodeOffsetCommitKey('g', 't', 3).toString('hex')).toBe('0001' + '000167' + '000174' + '00000003');
    expect(encodeGroupMetadataKey('g').toString('hex')).toBe('0002' + '000167');
    expect(decodeGroupRecordKey(encodeOffsetCommitKey('grp', 'topic', 7))).toEqual({ type: 'offset-commit', groupId: 'grp', topic: 'topic', partition: 7 });
    expect(decodeGroupRecordKey(encodeGroupMetadataKey('grp'))).toEqual({ type: 'group-metadata', groupId: 'grp' });
  });

  it('round-trips offset commit values and reads the older v0 layout', () => {
    const value = { offset: 2 ** 40 + 5, leaderEpoch: 9, metadata: 'ü meta', commitTimestampMs: 1_700_000_000_123 };
    expect(decodeOffsetCommitValue(encodeOffsetCommitValue(value))).toEqual(value);
    const v0 = Buffer.alloc(2 + 8 + 2 + 1 + 8);
    v0.writeInt16BE(0, 0);
    v0.writeBigInt64BE(77n, 2);
    v0.writeInt16BE(1, 10);
    v0.write('x', 12);
    v0.writeBigInt64BE(123n, 13);
    expect(decodeOffsetCommitValue(v0)).toEqual({ offset: 77, leaderEpoch: -1, metadata: 'x', commitTimestampMs: 123 });
  });

  it('round-trips group metadata values with static and dynamic members', () => {
    const value: GroupMetadataValue = {
      protocolType: 'consumer',
      generationId: 12,
      protocolName: 'range',
      leaderId: 'a-1',
      currentStateTimestampMs: 55,
      members: [
        { memberId: 'a-1', groupInstanceId: 'inst-a', clientId: 'a', clientHost: '/10.0.0.1', rebalanceTimeoutMs: 300_000, sessionTimeoutMs: 45_000, subscription: encodeSubscription(['t']), assignment: Buffer.from([1, 2, 3]) },
        { memberId: 'b-2', groupInstanceId: undefined, clientId: 'b', clientHost: '/10.0.0.2', rebalanceTimeoutMs: 60_000, sessionTimeoutMs: 10_000, subscription: Buffer.alloc(0), assignment: Buffer.alloc(0) },
      ],
    };
    expect(decodeGroupMetadataValue(encodeGroupMetadataValue(value))).toEqual(value);
    const empty: GroupMetadataValue = { protocolType: 'consumer', generationId: 3, protocolName: undefined, leaderId: undefined, currentStateTimestampMs: 1, members: [] };
    expect(decodeGroupMetadataValue(encodeGroupMetadataValue(empty))).toEqual(empty);
  });

  it('rejects truncated or unknown records as STORAGE_CORRUPTED', () => {
    const full = encodeOffsetCommitValue({ offset: 1, leaderEpoch: 0, metadata: 'abc', commitTimestampMs: 2 });
    for (let cut = 0; cut < full.length; cut++) {
      expect(() => decodeOffsetCommitValue(full.subarray(0, cut))).toThrow(RaftkaError);
    }
    const unknownKey = Buffer.from('0009000167', 'hex');
    expect(() => decodeGroupRecordKey(unknownKey)).toThrow(/unknown __consumer_offsets key version 9/);
    try {
      decodeGroupMetadataValue(Buffer.from('0003', 'hex'));
      expect.unreachable();
    } catch (e) {
      expect((e as RaftkaError).code).toBe('STORAGE_CORRUPTED');
    }
  });

  it("places groups on partitions as Kafka does: abs(String.hashCode) % N", () => {
    expect(groupPartitionFor('hello', 50)).toBe(99162322 % 50);
    // Java's hashCode of this string is Integer.MIN_VALUE; Kafka's Utils.abs maps it to 0.
    expect(groupPartitionFor('polygenelubricants', 50)).toBe(0);
    expect(() => groupPartitionFor('g', 0)).toThrow(RaftkaError);
  });

  it('reads the topics of a consumer subscription and refuses garbage', () => {
    expect(decodeSubscriptionTopics(encodeSubscription(['a', 'bb', 'ü']))).toEqual(['a', 'bb', 'ü']);
    expect(decodeSubscriptionTopics(Buffer.from('opaque'))).toBeUndefined();
    expect(decodeSubscriptionTopics(Buffer.alloc(0))).toBeUndefined();
  });
});
