// The metadata records of the KRaft metadata log, as TypeScript values, and their codec.
//
// proto/metadata.proto is the wire and disk format; this module is the one place that converts
// between it and the discriminated union `MetadataRecord` the image and the controller work with.
// The union's `type` is the name of the record's field in the proto `oneof`, so the mapping is
// mechanical. The .proto is loaded at run time with protobufjs reflection (no generated code to
// keep in step), from the repository's `proto/` directory found by walking up from this module.
//
// Decoding is a boundary: bytes come from disk or the network, so a record that fails to decode
// or lacks its oneof is reported as STORAGE_CORRUPTED, not trusted.

import path from 'node:path';
import protobuf from 'protobufjs';
import { RaftkaError, assertNever } from '@raftka/protocol';
import { findProtoDirectory } from '../transport/proto-path.js';

export interface BrokerEndpoint {
  name: string;
  host: string;
  port: number;
  securityProtocol: string;
}

export type ConfigResourceType = 'topic' | 'broker';

export interface RegisterBrokerRecord {
  type: 'registerBroker';
  brokerId: number;
  incarnationId: string;
  brokerEpoch: number;
  endpoints: BrokerEndpoint[];
  /** `undefined` when the broker has no `broker.rack`. */
  rack: string | undefined;
  fenced: boolean;
  /** Set only in snapshots; in the log the offset of the entry holding the record is used. */
  registeredAtOffset?: number;
  /** Set only in snapshots of a registration a FenceBrokerRecord fenced: that record's offset. */
  fencedAtOffset?: number;
}

export interface UnregisterBrokerRecord {
  type: 'unregisterBroker';
  brokerId: number;
  brokerEpoch: number;
}

export interface FenceBrokerRecord {
  type: 'fenceBroker';
  brokerId: number;
  brokerEpoch: number;
}

export interface UnfenceBrokerRecord {
  type: 'unfenceBroker';
  brokerId: number;
  brokerEpoch: number;
}

export interface BrokerRegistrationChangeRecord {
  type: 'brokerRegistrationChange';
  brokerId: number;
  brokerEpoch: number;
  inControlledShutdown: boolean;
}

export interface TopicRecord {
  type: 'topic';
  name: string;
  topicId: string;
}

export interface PartitionRecord {
  type: 'partition';
  topicId: string;
  partitionId: number;
  replicas: number[];
  isr: number[];
  leader: number;
  leaderEpoch: number;
  partitionEpoch: number;
}

/** Only the fields present change; see proto/metadata.proto for the epoch rules. */
export interface PartitionChangeRecord {
  type: 'partitionChange';
  topicId: string;
  partitionId: number;
  leader?: number;
  isr?: number[];
  replicas?: number[];
}

export interface RemoveTopicRecord {
  type: 'removeTopic';
  topicId: string;
}

export interface ConfigRecord {
  type: 'config';
  resourceType: ConfigResourceType;
  /** Topic name; for brokers the broker id as text, or '' for the cluster-wide default. */
  resourceName: string;
  name: string;
  /** `undefined` removes the key. */
  value: string | undefined;
}

export interface ProducerIdsRecord {
  type: 'producerIds';
  brokerId: number;
  brokerEpoch: number;
  /** Every id below this one has been handed out. */
  nextProducerId: number;
}

/** Changes nothing; written by diagnostics (KIP-835's NoOpRecord). */
export interface NoOpRecord {
  type: 'noOp';
  payload: Uint8Array;
}

export type MetadataRecord =
  | NoOpRecord
  | RegisterBrokerRecord
  | UnregisterBrokerRecord
  | FenceBrokerRecord
  | UnfenceBrokerRecord
  | BrokerRegistrationChangeRecord
  | TopicRecord
  | PartitionRecord
  | PartitionChangeRecord
  | RemoveTopicRecord
  | ConfigRecord
  | ProducerIdsRecord;

export type MetadataRecordType = MetadataRecord['type'];

interface MetadataTypes {
  record: protobuf.Type;
  snapshot: protobuf.Type;
}

let loadedTypes: MetadataTypes | undefined;

/** The protobufjs reflection types of proto/metadata.proto, loaded once. */
export function metadataProtoTypes(): MetadataTypes {
  if (loadedTypes === undefined) {
    const root = protobuf.loadSync(path.join(findProtoDirectory('metadata.proto'), 'metadata.proto'));
    loadedTypes = {
      record: root.lookupType('raftka.metadata.MetadataRecord'),
      snapshot: root.lookupType('raftka.metadata.MetadataSnapshot'),
    };
  }
  return loadedTypes;
}

/** Numbers of the ConfigResourceType enum in proto/metadata.proto (Kafka's numbers). */
const resourceTypeToProto: Record<ConfigResourceType, number> = {
  topic: 2,
  broker: 4,
};

/**
 * The plain object protobufjs' `encode` takes for one record (field names in camelCase, enums as
 * numbers). Encoding the plain object directly skips `fromObject`, which roughly halves the cost of
 * encoding the 100,000 partition records of a large topic creation.
 */
export function recordToProtoObject(record: MetadataRecord): Record<string, unknown> {
  switch (record.type) {
    case 'registerBroker':
      return {
        registerBroker: {
          brokerId: record.brokerId,
          incarnationId: record.incarnationId,
          brokerEpoch: record.brokerEpoch,
          endpoints: record.endpoints,
          rack: record.rack ?? '',
          fenced: record.fenced,
          ...(record.registeredAtOffset === undefined ? {} : { registeredAtOffset: record.registeredAtOffset }),
          ...(record.fencedAtOffset === undefined ? {} : { fencedAtOffset: record.fencedAtOffset }),
        },
      };
    case 'unregisterBroker':
    case 'fenceBroker':
    case 'unfenceBroker':
      return { [record.type]: { brokerId: record.brokerId, brokerEpoch: record.brokerEpoch } };
    case 'brokerRegistrationChange':
      return {
        brokerRegistrationChange: {
          brokerId: record.brokerId,
          brokerEpoch: record.brokerEpoch,
          inControlledShutdown: record.inControlledShutdown,
        },
      };
    case 'topic':
      return { topic: { name: record.name, topicId: record.topicId } };
    case 'partition':
      return {
        partition: {
          topicId: record.topicId,
          partitionId: record.partitionId,
          replicas: record.replicas,
          isr: record.isr,
          leader: record.leader,
          leaderEpoch: record.leaderEpoch,
          partitionEpoch: record.partitionEpoch,
        },
      };
    case 'partitionChange': {
      const change: Record<string, unknown> = { topicId: record.topicId, partitionId: record.partitionId };
      if (record.leader !== undefined) change['leader'] = record.leader;
      if (record.isr !== undefined) change['isr'] = { values: record.isr };
      if (record.replicas !== undefined) change['replicas'] = { values: record.replicas };
      return { partitionChange: change };
    }
    case 'removeTopic':
      return { removeTopic: { topicId: record.topicId } };
    case 'config': {
      const config: Record<string, unknown> = {
        resourceType: resourceTypeToProto[record.resourceType],
        resourceName: record.resourceName,
        name: record.name,
      };
      if (record.value !== undefined) config['value'] = record.value;
      return { config };
    }
    case 'noOp':
      return { noOp: { payload: record.payload } };
    case 'producerIds':
      return {
        producerIds: { brokerId: record.brokerId, brokerEpoch: record.brokerEpoch, nextProducerId: record.nextProducerId },
      };
    default:
      return assertNever(record, 'metadata record');
  }
}

function corrupted(what: string): RaftkaError {
  return new RaftkaError('STORAGE_CORRUPTED', `a metadata record is malformed (${what}); the metadata log or snapshot is damaged`, {
    retriable: false,
  });
}

/** int64 fields decode as Long objects (protobufjs uses the `long` package when present). */
function toSafeNumber(value: unknown, what: string): number {
  const number = typeof value === 'number' ? value : (value as { toNumber(): number }).toNumber();
  if (!Number.isSafeInteger(number)) throw corrupted(`${what} is not a safe integer`);
  return number;
}

const hasOwn = (object: object, key: string): boolean => Object.prototype.hasOwnProperty.call(object, key);

type Decoded = Record<string, unknown>;

/**
 * Converts one decoded MetadataRecord message to the union. It reads the decoded message directly
 * (no `toObject` copy): absent scalars read as their proto3 defaults from the prototype, and the
 * presence of `optional` fields is an own property of the message.
 */
export function recordFromMessage(message: Decoded): MetadataRecord {
  const type = message['record'];
  if (typeof type !== 'string') throw corrupted('no record type set');
  const body = message[type] as Decoded | undefined | null;
  if (body === undefined || body === null) throw corrupted(`record type ${type} without a body`);
  const int = (name: string): number => body[name] as number;
  const long = (name: string): number => toSafeNumber(body[name], `${type}.${name}`);
  // Decoded repeated fields are fresh arrays owned by the message, so they are taken, not copied.
  const ints = (name: string): number[] => (body[name] as number[] | undefined) ?? [];
  const text = (name: string): string => body[name] as string;
  switch (type as MetadataRecordType) {
    case 'registerBroker': {
      const rack = text('rack');
      const record: RegisterBrokerRecord = {
        type: 'registerBroker',
        brokerId: int('brokerId'),
        incarnationId: text('incarnationId'),
        brokerEpoch: long('brokerEpoch'),
        endpoints: ((body['endpoints'] as Decoded[] | undefined) ?? []).map((endpoint) => ({
          name: endpoint['name'] as string,
          host: endpoint['host'] as string,
          port: endpoint['port'] as number,
          securityProtocol: endpoint['securityProtocol'] as string,
        })),
        rack: rack === '' ? undefined : rack,
        fenced: body['fenced'] as boolean,
      };
      if (hasOwn(body, 'registeredAtOffset')) record.registeredAtOffset = long('registeredAtOffset');
      if (hasOwn(body, 'fencedAtOffset')) record.fencedAtOffset = long('fencedAtOffset');
      return record;
    }
    case 'unregisterBroker':
    case 'fenceBroker':
    case 'unfenceBroker':
      return { type: type as 'fenceBroker', brokerId: int('brokerId'), brokerEpoch: long('brokerEpoch') };
    case 'brokerRegistrationChange':
      return {
        type: 'brokerRegistrationChange',
        brokerId: int('brokerId'),
        brokerEpoch: long('brokerEpoch'),
        inControlledShutdown: body['inControlledShutdown'] as boolean,
      };
    case 'topic':
      return { type: 'topic', name: text('name'), topicId: text('topicId') };
    case 'partition':
      return {
        type: 'partition',
        topicId: text('topicId'),
        partitionId: int('partitionId'),
        replicas: ints('replicas'),
        isr: ints('isr'),
        leader: int('leader'),
        leaderEpoch: int('leaderEpoch'),
        partitionEpoch: int('partitionEpoch'),
      };
    case 'partitionChange': {
      const change: PartitionChangeRecord = { type: 'partitionChange', topicId: text('topicId'), partitionId: int('partitionId') };
      if (hasOwn(body, 'leader')) change.leader = int('leader');
      if (hasOwn(body, 'isr')) change.isr = ((body['isr'] as Decoded)['values'] as number[] | undefined) ?? [];
      if (hasOwn(body, 'replicas')) change.replicas = ((body['replicas'] as Decoded)['values'] as number[] | undefined) ?? [];
      return change;
    }
    case 'removeTopic':
      return { type: 'removeTopic', topicId: text('topicId') };
    case 'config': {
      const resourceType = body['resourceType'];
      if (resourceType !== 2 && resourceType !== 4) throw corrupted(`unknown config resource type ${String(resourceType)}`);
      return {
        type: 'config',
        resourceType: resourceType === 2 ? 'topic' : 'broker',
        resourceName: text('resourceName'),
        name: text('name'),
        value: hasOwn(body, 'value') ? text('value') : undefined,
      };
    }
    case 'noOp':
      return { type: 'noOp', payload: (body['payload'] as Uint8Array | undefined) ?? new Uint8Array(0) };
    case 'producerIds':
      return {
        type: 'producerIds',
        brokerId: int('brokerId'),
        brokerEpoch: long('brokerEpoch'),
        nextProducerId: long('nextProducerId'),
      };
    default:
      throw corrupted(`unknown record type ${type}`);
  }
}

/** Encodes one record as a MetadataRecord message. */
export function encodeMetadataRecord(record: MetadataRecord): Uint8Array {
  if (record.type === 'partition' || record.type === 'partitionChange') return encodePartitionRecordFast(record);
  return encodeMetadataRecordReflective(record);
}

/** The general encoder: protobufjs reflection, for every record type. */
export function encodeMetadataRecordReflective(record: MetadataRecord): Uint8Array {
  return metadataProtoTypes().record.encode(recordToProtoObject(record)).finish();
}

/** Decodes one MetadataRecord message; malformed bytes are STORAGE_CORRUPTED. */
export function decodeMetadataRecord(bytes: Uint8Array): MetadataRecord {
  const fast = decodePartitionRecordFast(bytes) ?? decodeNoOpRecordFast(bytes);
  if (fast !== undefined) return fast;
  return decodeMetadataRecordReflective(bytes);
}

/** The general decoder: protobufjs reflection, for every record type. */
export function decodeMetadataRecordReflective(bytes: Uint8Array): MetadataRecord {
  let message: protobuf.Message;
  try {
    message = metadataProtoTypes().record.decode(bytes);
  } catch (error) {
    throw new RaftkaError('STORAGE_CORRUPTED', 'a metadata record does not decode; the metadata log is damaged', { cause: error, retriable: false });
  }
  return recordFromMessage(message as unknown as Decoded);
}

// ---- Fast paths for the two record types that come by the ten thousand ----
//
// Creating 100,000 partitions writes 100,000 PartitionRecords, and fencing a broker that leads a
// third of them writes one PartitionChangeRecord per partition it was in. Decoding those through
// reflection builds two protobufjs message objects per record, and the garbage collector then
// dominates the cost; reading the fields straight off the wire builds only the result (and
// writing them straight onto it skips the plain-object step of encoding). Field
// numbers are those of proto/metadata.proto. Anything unexpected (another record type, unknown
// trailing data, a malformed varint) returns `undefined` and falls back to reflection, which
// either decodes it or reports the corruption.

const MESSAGE_FIELD_PARTITION = 7;
const MESSAGE_FIELD_PARTITION_CHANGE = 8;
const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;

function tag(field: number, wireType: number): number {
  return (field << 3) | wireType;
}

function writePackedInt32s(writer: protobuf.Writer, field: number, values: readonly number[]): void {
  // Like protobufjs, an empty repeated field is not written at all.
  if (values.length === 0) return;
  writer.uint32(tag(field, WIRE_LENGTH_DELIMITED)).fork();
  for (const value of values) writer.int32(value);
  writer.ldelim();
}

// proto3 leaves scalars at their default (0, '') off the wire, as the reflective encoder does.
function writeInt32(writer: protobuf.Writer, field: number, value: number): void {
  if (value !== 0) writer.uint32(tag(field, WIRE_VARINT)).int32(value);
}

function writeString(writer: protobuf.Writer, field: number, value: string): void {
  if (value !== '') writer.uint32(tag(field, WIRE_LENGTH_DELIMITED)).string(value);
}

/** Writes the same wire format as the reflective encoder, without building intermediate objects. */
function encodePartitionRecordFast(record: PartitionRecord | PartitionChangeRecord): Uint8Array {
  const writer = protobuf.Writer.create();
  if (record.type === 'partition') {
    writer.uint32(tag(MESSAGE_FIELD_PARTITION, WIRE_LENGTH_DELIMITED)).fork();
    writeString(writer, 1, record.topicId);
    writeInt32(writer, 2, record.partitionId);
    writePackedInt32s(writer, 3, record.replicas);
    writePackedInt32s(writer, 4, record.isr);
    writeInt32(writer, 5, record.leader);
    writeInt32(writer, 6, record.leaderEpoch);
    writeInt32(writer, 7, record.partitionEpoch);
  } else {
    writer.uint32(tag(MESSAGE_FIELD_PARTITION_CHANGE, WIRE_LENGTH_DELIMITED)).fork();
    writeString(writer, 1, record.topicId);
    writeInt32(writer, 2, record.partitionId);
    // `optional`: written whenever present, 0 included (0 is a broker id).
    if (record.leader !== undefined) writer.uint32(tag(3, WIRE_VARINT)).int32(record.leader);
    for (const [field, values] of [
      [4, record.isr],
      [5, record.replicas],
    ] as const) {
      if (values === undefined) continue;
      // An Int32List message, present even when empty (an empty list is a change to "none").
      writer.uint32(tag(field, WIRE_LENGTH_DELIMITED)).fork();
      writePackedInt32s(writer, 1, values);
      writer.ldelim();
    }
  }
  writer.ldelim();
  return writer.finish();
}

function readInt32s(reader: protobuf.Reader, wireType: number, into: number[]): void {
  if (wireType === WIRE_LENGTH_DELIMITED) {
    const end = reader.uint32() + reader.pos;
    while (reader.pos < end) into.push(reader.int32());
  } else {
    into.push(reader.int32());
  }
}

/** An Int32List message: field 1, repeated int32 (packed or not). */
function readInt32List(reader: protobuf.Reader): number[] {
  const end = reader.uint32() + reader.pos;
  const values: number[] = [];
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (tag >>> 3 === 1) readInt32s(reader, tag & 7, values);
    else reader.skipType(tag & 7);
  }
  return values;
}

const MESSAGE_FIELD_NO_OP = 12;

/**
 * NoOpRecords come by the thousand too: they are what `raftka quorum append` and the quorum
 * benchmark write, and every voter and observer applies each one. The payload is returned as a
 * view of `bytes`, as the reflective decoder's is.
 */
function decodeNoOpRecordFast(bytes: Uint8Array): NoOpRecord | undefined {
  if (bytes.length === 0) return undefined;
  try {
    const reader = protobuf.Reader.create(bytes);
    const outerTag = reader.uint32();
    if (outerTag !== tag(MESSAGE_FIELD_NO_OP, WIRE_LENGTH_DELIMITED)) return undefined;
    const end = reader.uint32() + reader.pos;
    if (end !== bytes.length) return undefined;
    let payload: Uint8Array = bytes.subarray(end, end);
    while (reader.pos < end) {
      if (reader.uint32() !== tag(1, WIRE_LENGTH_DELIMITED)) return undefined;
      const length = reader.uint32();
      const start = reader.pos;
      if (start + length > end) return undefined;
      payload = bytes.subarray(start, start + length);
      reader.pos = start + length;
    }
    return reader.pos === end ? { type: 'noOp', payload } : undefined;
  } catch {
    return undefined;
  }
}

function decodePartitionRecordFast(bytes: Uint8Array): PartitionRecord | PartitionChangeRecord | undefined {
  if (bytes.length === 0) return undefined;
  try {
    const reader = protobuf.Reader.create(bytes);
    const outerTag = reader.uint32();
    const field = outerTag >>> 3;
    if ((outerTag & 7) !== WIRE_LENGTH_DELIMITED || (field !== MESSAGE_FIELD_PARTITION && field !== MESSAGE_FIELD_PARTITION_CHANGE)) return undefined;
    const end = reader.uint32() + reader.pos;
    if (end !== bytes.length) return undefined;
    if (field === MESSAGE_FIELD_PARTITION) {
      const record: PartitionRecord = { type: 'partition', topicId: '', partitionId: 0, replicas: [], isr: [], leader: 0, leaderEpoch: 0, partitionEpoch: 0 };
      while (reader.pos < end) {
        const tag = reader.uint32();
        const wireType = tag & 7;
        switch (tag >>> 3) {
          case 1:
            record.topicId = reader.string();
            break;
          case 2:
            record.partitionId = reader.int32();
            break;
          case 3:
            readInt32s(reader, wireType, record.replicas);
            break;
          case 4:
            readInt32s(reader, wireType, record.isr);
            break;
          case 5:
            record.leader = reader.int32();
            break;
          case 6:
            record.leaderEpoch = reader.int32();
            break;
          case 7:
            record.partitionEpoch = reader.int32();
            break;
          default:
            reader.skipType(wireType);
        }
      }
      return reader.pos === end ? record : undefined;
    }
    const change: PartitionChangeRecord = { type: 'partitionChange', topicId: '', partitionId: 0 };
    while (reader.pos < end) {
      const tag = reader.uint32();
      const wireType = tag & 7;
      switch (tag >>> 3) {
        case 1:
          change.topicId = reader.string();
          break;
        case 2:
          change.partitionId = reader.int32();
          break;
        case 3:
          if (wireType !== WIRE_VARINT) return undefined;
          change.leader = reader.int32();
          break;
        case 4:
          if (wireType !== WIRE_LENGTH_DELIMITED) return undefined;
          change.isr = readInt32List(reader);
          break;
        case 5:
          if (wireType !== WIRE_LENGTH_DELIMITED) return undefined;
          change.replicas = readInt32List(reader);
          break;
        default:
          reader.skipType(wireType);
      }
    }
    return reader.pos === end ? change : undefined;
  } catch {
    return undefined;
  }
}
