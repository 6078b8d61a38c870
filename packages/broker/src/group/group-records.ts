// The records the group coordinator writes to the compacted `__consumer_offsets` topic, byte for
// byte in Kafka's layout, so that a coordinator that takes over a partition rebuilds every group
// by replaying it, and Kafka's own tools could read the topic.
//
// Two record kinds share the topic, told apart by the key's schema version, as in Kafka:
//   key v0/v1 = OffsetCommitKey   {group, topic, partition}   value = OffsetCommitValue v0..v3
//   key v2    = GroupMetadataKey  {group}                     value = GroupMetadataValue v0..v3
// A null value (tombstone) deletes the key: compaction later drops both. We write offset v3 and
// group v3 (the newest non-flexible versions) and read all older ones.
//
// All of these schemas are Kafka's "non-flexible" versions: big-endian ints, strings as an int16
// length + UTF-8 (length -1 = null), bytes as an int32 length + bytes, arrays as an int32 count.
// Bytes read from the log are validated here (STYLE rule 6): a short or malformed record is a
// STORAGE_CORRUPTED error, never a crash deeper in the coordinator.

import { RaftkaError } from '@raftka/protocol';

export const OFFSET_COMMIT_KEY_VERSION = 1;
export const GROUP_METADATA_KEY_VERSION = 2;
export const OFFSET_COMMIT_VALUE_VERSION = 3;
export const GROUP_METADATA_VALUE_VERSION = 3;
/** Kafka's sentinel for "no leader epoch known" in an offset commit. */
export const NO_LEADER_EPOCH = -1;

/** One record for `__consumer_offsets`: `value === null` is a tombstone. */
export interface GroupRecord {
  key: Buffer;
  value: Buffer | null;
}

export type GroupRecordKey =
  | { type: 'offset-commit'; groupId: string; topic: string; partition: number }
  | { type: 'group-metadata'; groupId: string };

export interface OffsetCommitValue {
  offset: number;
  /** NO_LEADER_EPOCH when the committer did not say. */
  leaderEpoch: number;
  metadata: string;
  commitTimestampMs: number;
}

export interface GroupMemberMetadataValue {
  memberId: string;
  groupInstanceId: string | undefined;
  clientId: string;
  clientHost: string;
  rebalanceTimeoutMs: number;
  sessionTimeoutMs: number;
  /** The member's metadata for the group's selected protocol. */
  subscription: Buffer;
  assignment: Buffer;
}

export interface GroupMetadataValue {
  protocolType: string;
  generationId: number;
  protocolName: string | undefined;
  leaderId: string | undefined;
  currentStateTimestampMs: number;
  members: GroupMemberMetadataValue[];
}

// ---- writer / reader ----

class Writer {
  private readonly chunks: Buffer[] = [];

  int16(value: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(value);
    this.chunks.push(b);
    return this;
  }

  int32(value: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(value);
    this.chunks.push(b);
    return this;
  }

  int64(value: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64BE(BigInt(value));
    this.chunks.push(b);
    return this;
  }

  string(value: string | undefined): this {
    if (value === undefined) return this.int16(-1);
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length > 0x7fff) {
      throw new RaftkaError('INVALID_REQUEST', `a string of ${bytes.length} bytes does not fit a group record (max 32767)`);
    }
    this.int16(bytes.length);
    this.chunks.push(bytes);
    return this;
  }

  bytes(value: Buffer): this {
    this.int32(value.length);
    this.chunks.push(value);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

class Reader {
  private position = 0;

  constructor(
    private readonly buffer: Buffer,
    private readonly what: string,
  ) {}

  private need(bytes: number): void {
    if (this.position + bytes > this.buffer.length) {
      throw new RaftkaError(
        'STORAGE_CORRUPTED',
        `${this.what} is truncated: needs ${bytes} bytes at position ${this.position} of ${this.buffer.length}`,
      );
    }
  }

  int16(): number {
    this.need(2);
    const v = this.buffer.readInt16BE(this.position);
    this.position += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buffer.readInt32BE(this.position);
    this.position += 4;
    return v;
  }

  int64(): number {
    this.need(8);
    const v = this.buffer.readBigInt64BE(this.position);
    this.position += 8;
    return Number(v);
  }

  nullableString(): string | undefined {
    const length = this.int16();
    if (length === -1) return undefined;
    if (length < 0) throw new RaftkaError('STORAGE_CORRUPTED', `${this.what} has a string of negative length ${length}`);
    this.need(length);
    const s = this.buffer.toString('utf8', this.position, this.position + length);
    this.position += length;
    return s;
  }

  string(): string {
    const s = this.nullableString();
    if (s === undefined) throw new RaftkaError('STORAGE_CORRUPTED', `${this.what} has a null where a string is required`);
    return s;
  }

  bytes(): Buffer {
    const length = this.int32();
    if (length === -1) return Buffer.alloc(0);
    if (length < 0) throw new RaftkaError('STORAGE_CORRUPTED', `${this.what} has bytes of negative length ${length}`);
    this.need(length);
    // Copy: the caller's buffer may be a pooled read buffer that is reused after decoding.
    const b = Buffer.from(this.buffer.subarray(this.position, this.position + length));
    this.position += length;
    return b;
  }

  arrayLength(): number {
    const n = this.int32();
    if (n < 0 || n > this.buffer.length) {
      throw new RaftkaError('STORAGE_CORRUPTED', `${this.what} has an implausible array length ${n}`);
    }
    return n;
  }
}

// ---- keys ----

export function encodeOffsetCommitKey(groupId: string, topic: string, partition: number): Buffer {
  return new Writer().int16(OFFSET_COMMIT_KEY_VERSION).string(groupId).string(topic).int32(partition).finish();
}

export function encodeGroupMetadataKey(groupId: string): Buffer {
  return new Writer().int16(GROUP_METADATA_KEY_VERSION).string(groupId).finish();
}

export function decodeGroupRecordKey(key: Buffer): GroupRecordKey {
  const reader = new Reader(key, 'a __consumer_offsets record key');
  const version = reader.int16();
  switch (version) {
    case 0:
    case 1: {
      const groupId = reader.string();
      const topic = reader.string();
      const partition = reader.int32();
      return { type: 'offset-commit', groupId, topic, partition };
    }
    case 2:
      return { type: 'group-metadata', groupId: reader.string() };
    default:
      throw new RaftkaError('STORAGE_CORRUPTED', `unknown __consumer_offsets key version ${version}`);
  }
}

// ---- values ----

export function encodeOffsetCommitValue(value: OffsetCommitValue): Buffer {
  return new Writer()
    .int16(OFFSET_COMMIT_VALUE_VERSION)
    .int64(value.offset)
    .int32(value.leaderEpoch)
    .string(value.metadata)
    .int64(value.commitTimestampMs)
    .finish();
}

export function decodeOffsetCommitValue(buffer: Buffer): OffsetCommitValue {
  const reader = new Reader(buffer, 'an offset commit value');
  const version = reader.int16();
  if (version < 0 || version > 3) throw new RaftkaError('STORAGE_CORRUPTED', `unknown offset commit value version ${version}`);
  const offset = reader.int64();
  const leaderEpoch = version >= 3 ? reader.int32() : NO_LEADER_EPOCH;
  const metadata = reader.string();
  const commitTimestampMs = reader.int64();
  // v1 carried an expire timestamp; retention is decided by the reader's config now (KIP-211).
  if (version === 1) reader.int64();
  return { offset, leaderEpoch, metadata, commitTimestampMs };
}

export function encodeGroupMetadataValue(value: GroupMetadataValue): Buffer {
  const w = new Writer()
    .int16(GROUP_METADATA_VALUE_VERSION)
    .string(value.protocolType)
    .int32(value.generationId)
    .string(value.protocolName)
    .string(value.leaderId)
    .int64(value.currentStateTimestampMs)
    .int32(value.members.length);
  for (const m of value.members) {
    w.string(m.memberId)
      .string(m.groupInstanceId)
      .string(m.clientId)
      .string(m.clientHost)
      .int32(m.rebalanceTimeoutMs)
      .int32(m.sessionTimeoutMs)
      .bytes(m.subscription)
      .bytes(m.assignment);
  }
  return w.finish();
}

export function decodeGroupMetadataValue(buffer: Buffer): GroupMetadataValue {
  const reader = new Reader(buffer, 'a group metadata value');
  const version = reader.int16();
  if (version < 0 || version > 3) throw new RaftkaError('STORAGE_CORRUPTED', `unknown group metadata value version ${version}`);
  const protocolType = reader.string();
  const generationId = reader.int32();
  const protocolName = reader.nullableString();
  const leaderId = reader.nullableString();
  const currentStateTimestampMs = version >= 2 ? reader.int64() : -1;
  const count = reader.arrayLength();
  const members: GroupMemberMetadataValue[] = [];
  for (let i = 0; i < count; i++) {
    const memberId = reader.string();
    const groupInstanceId = version >= 3 ? reader.nullableString() : undefined;
    const clientId = reader.string();
    const clientHost = reader.string();
    const sessionTimeoutFirst = version === 0;
    let rebalanceTimeoutMs: number;
    let sessionTimeoutMs: number;
    if (sessionTimeoutFirst) {
      sessionTimeoutMs = reader.int32();
      rebalanceTimeoutMs = sessionTimeoutMs; // v0 predates the separate rebalance timeout (KIP-62).
    } else {
      rebalanceTimeoutMs = reader.int32();
      sessionTimeoutMs = reader.int32();
    }
    const subscription = reader.bytes();
    const assignment = reader.bytes();
    members.push({ memberId, groupInstanceId, clientId, clientHost, rebalanceTimeoutMs, sessionTimeoutMs, subscription, assignment });
  }
  return { protocolType, generationId, protocolName, leaderId, currentStateTimestampMs, members };
}

// ---- whole records ----

export function offsetCommitRecord(groupId: string, topic: string, partition: number, value: OffsetCommitValue | null): GroupRecord {
  return { key: encodeOffsetCommitKey(groupId, topic, partition), value: value === null ? null : encodeOffsetCommitValue(value) };
}

export function groupMetadataRecord(groupId: string, value: GroupMetadataValue | null): GroupRecord {
  return { key: encodeGroupMetadataKey(groupId), value: value === null ? null : encodeGroupMetadataValue(value) };
}

// ---- coordinator placement ----

/** Java's String.hashCode over UTF-16 code units, which Kafka uses to place a group. */
function javaStringHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

/**
 * The `__consumer_offsets` partition whose leader coordinates `groupId`: Kafka's
 * `Utils.abs(groupId.hashCode) % partitionCount` (Utils.abs masks the sign bit), so a Kafka
 * client's FindCoordinator and ours agree.
 */
export function groupPartitionFor(groupId: string, partitionCount: number): number {
  if (!Number.isInteger(partitionCount) || partitionCount <= 0) {
    throw new RaftkaError('INVALID_CONFIG', `offsets.topic.num.partitions must be a positive integer, got ${partitionCount}`);
  }
  return (javaStringHashCode(groupId) & 0x7fffffff) % partitionCount;
}
