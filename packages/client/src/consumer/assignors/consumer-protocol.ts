// Kafka's ConsumerProtocol: the bytes a consumer puts in JoinGroup's protocol metadata (its
// Subscription) and the bytes the leader sends back per member in SyncGroup (its Assignment). The
// group coordinator never looks inside them; only consumers do, so a group mixing Raftka and Kafka
// consumers works only if both write exactly these layouts.
//
// Layout (Kafka's ConsumerProtocolSubscription.json / ConsumerProtocolAssignment.json; both are
// non-flexible, so no tagged fields and no compact lengths): an int16 version, then the fields of
// that version. All integers big-endian.
//   string           int16 length + UTF-8 bytes (nullable: length -1 means null)
//   bytes            int32 length + bytes       (nullable: length -1 means null)
//   array            int32 count + elements     (these arrays are not nullable)
//   TopicPartition   topic: string, partitions: [int32]
//
//   Subscription v0: topics [string], userData nullable bytes
//                v1: + ownedPartitions [TopicPartition]
//                v2: + generationId int32 (-1 when absent)
//                v3: + rackId nullable string
//   Assignment v0-v3: assignedPartitions [TopicPartition], userData nullable bytes
//                (v1-v3 only exist to move in step with the subscription; the layout is the same)
//
// Forward compatibility, as in Kafka's ConsumerProtocol: a version above the newest we know is read
// with the newest layout and trailing bytes are ignored, because newer versions only append fields.
// For versions we know, trailing bytes mean the bytes are not what they claim to be.
//
// Bytes arrive from other group members over the network, so decoding validates every length
// against the bytes present and fails with INCONSISTENT_GROUP_PROTOCOL (a typed, non-retriable
// RaftkaError) rather than reading garbage. Encoding trusts its caller and asserts.

import { invariant, RaftkaError } from '@raftka/protocol';
import type { TopicPartition } from '../../cluster-client.js';
import { DEFAULT_GENERATION } from './types.js';

export const SUBSCRIPTION_VERSION_MIN = 0;
export const SUBSCRIPTION_VERSION_MAX = 3;
export const ASSIGNMENT_VERSION_MIN = 0;
export const ASSIGNMENT_VERSION_MAX = 3;

const INT16_MAX = 0x7fff;
const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;

export interface Subscription {
  topics: readonly string[];
  userData: Uint8Array | null;
  /** v1+; dropped when encoding v0 (the field is "ignorable" in Kafka's schema). */
  ownedPartitions: readonly TopicPartition[];
  /** v2+; DEFAULT_GENERATION (-1) when unknown or when decoded from an older version. */
  generationId: number;
  /** v3+; null when unknown or when decoded from an older version. */
  rackId: string | null;
}

export interface Assignment {
  partitions: readonly TopicPartition[];
  userData: Uint8Array | null;
}

/** A decoded message together with the version its sender wrote. */
export interface Versioned<T> {
  version: number;
  value: T;
}

// ---------------------------------------------------------------------------------------------
// Encoding

class Writer {
  private readonly chunks: Uint8Array[] = [];
  private readonly encoder = new TextEncoder();

  int16(value: number): void {
    invariant(Number.isInteger(value) && value >= -0x8000 && value <= INT16_MAX, `int16 out of range: ${value}`);
    const bytes = new Uint8Array(2);
    new DataView(bytes.buffer).setInt16(0, value);
    this.chunks.push(bytes);
  }

  int32(value: number): void {
    invariant(Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX, `int32 out of range: ${value}`);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setInt32(0, value);
    this.chunks.push(bytes);
  }

  nullableString(value: string | null): void {
    if (value === null) {
      this.int16(-1);
      return;
    }
    const bytes = this.encoder.encode(value);
    invariant(bytes.byteLength <= INT16_MAX, () => `string of ${bytes.byteLength} bytes exceeds the int16 length prefix`);
    this.int16(bytes.byteLength);
    this.chunks.push(bytes);
  }

  string(value: string): void {
    this.nullableString(value);
  }

  nullableBytes(value: Uint8Array | null): void {
    if (value === null) {
      this.int32(-1);
      return;
    }
    this.int32(value.byteLength);
    this.chunks.push(value.slice());
  }

  topicPartitions(partitions: readonly TopicPartition[]): void {
    // Kafka groups partitions by topic on the wire; first-seen topic order keeps encoding stable.
    const byTopic = new Map<string, number[]>();
    for (const { topic, partition } of partitions) {
      invariant(partition >= 0, () => `cannot encode negative partition ${partition} of topic ${topic}`);
      const list = byTopic.get(topic) ?? [];
      list.push(partition);
      byTopic.set(topic, list);
    }
    this.int32(byTopic.size);
    for (const [topic, list] of byTopic) {
      this.string(topic);
      this.int32(list.length);
      for (const partition of list) this.int32(partition);
    }
  }

  finish(): Uint8Array {
    const total = this.chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  }
}

export function encodeSubscription(subscription: Subscription, version = SUBSCRIPTION_VERSION_MAX): Uint8Array {
  invariant(
    Number.isInteger(version) && version >= SUBSCRIPTION_VERSION_MIN && version <= SUBSCRIPTION_VERSION_MAX,
    () => `cannot encode subscription version ${version}`,
  );
  const writer = new Writer();
  writer.int16(version);
  writer.int32(subscription.topics.length);
  for (const topic of subscription.topics) writer.string(topic);
  writer.nullableBytes(subscription.userData);
  if (version >= 1) writer.topicPartitions(subscription.ownedPartitions);
  if (version >= 2) writer.int32(subscription.generationId);
  if (version >= 3) writer.nullableString(subscription.rackId);
  return writer.finish();
}

export function encodeAssignment(assignment: Assignment, version = ASSIGNMENT_VERSION_MAX): Uint8Array {
  invariant(
    Number.isInteger(version) && version >= ASSIGNMENT_VERSION_MIN && version <= ASSIGNMENT_VERSION_MAX,
    () => `cannot encode assignment version ${version}`,
  );
  const writer = new Writer();
  writer.int16(version);
  writer.topicPartitions(assignment.partitions);
  writer.nullableBytes(assignment.userData);
  return writer.finish();
}

// ---------------------------------------------------------------------------------------------
// Decoding

function malformed(what: string, detail: string): RaftkaError {
  return new RaftkaError(
    'INCONSISTENT_GROUP_PROTOCOL',
    `malformed consumer protocol ${what}: ${detail}; the member that sent it does not speak the ` +
      `consumer protocol this group uses (check that every member of the group is a consumer ` +
      `using the same group id for the same purpose)`,
  );
}

class Reader {
  private offset = 0;
  private readonly view: DataView;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  private need(count: number, field: string): void {
    if (count > this.remaining) {
      throw malformed(
        this.what,
        `${field} needs ${count} bytes at offset ${this.offset} but only ${this.remaining} remain`,
      );
    }
  }

  int16(field: string): number {
    this.need(2, field);
    const value = this.view.getInt16(this.offset);
    this.offset += 2;
    return value;
  }

  int32(field: string): number {
    this.need(4, field);
    const value = this.view.getInt32(this.offset);
    this.offset += 4;
    return value;
  }

  nullableString(field: string): string | null {
    const length = this.int16(`${field} length`);
    if (length === -1) return null;
    if (length < 0) throw malformed(this.what, `${field} has invalid length ${length}`);
    this.need(length, field);
    const raw = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    try {
      return this.decoder.decode(raw);
    } catch (cause) {
      throw new RaftkaError('INCONSISTENT_GROUP_PROTOCOL', `malformed consumer protocol ${this.what}: ${field} is not valid UTF-8`, { cause });
    }
  }

  string(field: string): string {
    const value = this.nullableString(field);
    if (value === null) throw malformed(this.what, `${field} is null but the field is not nullable`);
    return value;
  }

  nullableBytes(field: string): Uint8Array | null {
    const length = this.int32(`${field} length`);
    if (length === -1) return null;
    if (length < 0) throw malformed(this.what, `${field} has invalid length ${length}`);
    this.need(length, field);
    const value = this.bytes.slice(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** An array count, checked against the smallest size one element can take. */
  arrayCount(field: string, elementBytesMin: number): number {
    const count = this.int32(`${field} count`);
    if (count < 0) throw malformed(this.what, `${field} is null (count ${count}) but the field is not nullable`);
    // Refuse before allocating: a garbage count must not make us loop over billions of elements.
    this.need(count * elementBytesMin, field);
    return count;
  }

  topicPartitions(field: string): TopicPartition[] {
    const result: TopicPartition[] = [];
    const topicCount = this.arrayCount(field, 2 + 4); // empty topic name + empty partition array
    for (let i = 0; i < topicCount; i++) {
      const topic = this.string(`${field}[${i}].topic`);
      const partitionCount = this.arrayCount(`${field}[${i}].partitions`, 4);
      for (let j = 0; j < partitionCount; j++) {
        const partition = this.int32(`${field}[${i}].partitions[${j}]`);
        if (partition < 0) throw malformed(this.what, `${field}[${i}] lists negative partition ${partition} of topic ${topic}`);
        result.push({ topic, partition });
      }
    }
    return result;
  }

  expectEnd(version: number, versionMax: number): void {
    // Newer versions append fields we do not know: ignore them, as Kafka does.
    if (version > versionMax || this.remaining === 0) return;
    throw malformed(this.what, `${this.remaining} unexpected trailing bytes after a version ${version} message`);
  }
}

function readVersion(reader: Reader, what: string, versionMin: number, versionMax: number): { wire: number; layout: number } {
  const wire = reader.int16('version');
  if (wire < versionMin) throw malformed(what, `unsupported version ${wire}`);
  return { wire, layout: Math.min(wire, versionMax) };
}

export function decodeSubscription(bytes: Uint8Array): Versioned<Subscription> {
  const reader = new Reader(bytes, 'subscription');
  const { wire, layout } = readVersion(reader, 'subscription', SUBSCRIPTION_VERSION_MIN, SUBSCRIPTION_VERSION_MAX);
  const topicCount = reader.arrayCount('topics', 2);
  const topics: string[] = [];
  for (let i = 0; i < topicCount; i++) topics.push(reader.string(`topics[${i}]`));
  const userData = reader.nullableBytes('userData');
  const ownedPartitions = layout >= 1 ? reader.topicPartitions('ownedPartitions') : [];
  const generationId = layout >= 2 ? reader.int32('generationId') : DEFAULT_GENERATION;
  const rackId = layout >= 3 ? reader.nullableString('rackId') : null;
  reader.expectEnd(wire, SUBSCRIPTION_VERSION_MAX);
  return { version: wire, value: { topics, userData, ownedPartitions, generationId, rackId } };
}

export function decodeAssignment(bytes: Uint8Array): Versioned<Assignment> {
  const reader = new Reader(bytes, 'assignment');
  const { wire } = readVersion(reader, 'assignment', ASSIGNMENT_VERSION_MIN, ASSIGNMENT_VERSION_MAX);
  const partitions = reader.topicPartitions('assignedPartitions');
  const userData = reader.nullableBytes('userData');
  reader.expectEnd(wire, ASSIGNMENT_VERSION_MAX);
  return { version: wire, value: { partitions, userData } };
}
