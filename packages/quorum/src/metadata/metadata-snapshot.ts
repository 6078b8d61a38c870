// Snapshots of the metadata image, taken and loaded through the quorum's snapshot support.
//
// As in KRaft, a snapshot is the list of records that rebuilds the image from empty, so loading
// one is the same code path as replaying the log (MetadataImage.apply) and cannot drift from it.
// The records are written in an order that satisfies apply's invariants: brokers by increasing
// epoch, each topic before its configs and partitions (partitions in id order).

import protobuf from 'protobufjs';
import { RaftkaError, invariant } from '@raftka/protocol';
import { MetadataImage } from './metadata-image.js';
import type { MetadataRecord } from './metadata-records.js';
import { decodeMetadataRecord, encodeMetadataRecord } from './metadata-records.js';

/** Layout version of MetadataSnapshot; bump when the meaning of its records changes. */
export const METADATA_SNAPSHOT_VERSION = 1;

/** Identifies a snapshot as the quorum does: it covers every entry below `endOffset`. */
export interface MetadataSnapshotId {
  endOffset: number;
  epoch: number;
}

/** The records that rebuild `image` from empty. */
export function imageToRecords(image: MetadataImage): MetadataRecord[] {
  const records: MetadataRecord[] = [];
  const brokers = [...image.brokers.values()].sort((a, b) => a.brokerEpoch - b.brokerEpoch);
  for (const broker of brokers) {
    records.push({
      type: 'registerBroker',
      brokerId: broker.brokerId,
      incarnationId: broker.incarnationId,
      brokerEpoch: broker.brokerEpoch,
      endpoints: [...broker.endpoints],
      rack: broker.rack,
      fenced: broker.fenced,
      registeredAtOffset: broker.registeredAtOffset,
      ...(broker.fencedAtOffset === undefined ? {} : { fencedAtOffset: broker.fencedAtOffset }),
    });
    if (broker.inControlledShutdown) {
      records.push({ type: 'brokerRegistrationChange', brokerId: broker.brokerId, brokerEpoch: broker.brokerEpoch, inControlledShutdown: true });
    }
  }
  for (const [resourceName, configs] of image.brokerConfigs) {
    for (const [name, value] of configs) records.push({ type: 'config', resourceType: 'broker', resourceName, name, value });
  }
  for (const topic of image.topicsById.values()) {
    records.push({ type: 'topic', name: topic.name, topicId: topic.topicId });
    for (const [name, value] of image.configsOf('topic', topic.name)) {
      records.push({ type: 'config', resourceType: 'topic', resourceName: topic.name, name, value });
    }
    for (const partition of topic.partitions) {
      records.push({
        type: 'partition',
        topicId: partition.topicId,
        partitionId: partition.partitionId,
        replicas: [...partition.replicas],
        isr: [...partition.isr],
        leader: partition.leader,
        leaderEpoch: partition.leaderEpoch,
        partitionEpoch: partition.partitionEpoch,
      });
    }
  }
  if (image.nextProducerId > 0) {
    records.push({ type: 'producerIds', brokerId: -1, brokerEpoch: -1, nextProducerId: image.nextProducerId });
  }
  return records;
}

// MetadataSnapshot field numbers (proto/metadata.proto). The snapshot is written and read field by
// field so that each record goes through the same codec as the log (with its fast paths for
// partition records): an embedded message is on the wire exactly a length-delimited byte string.
const FIELD_VERSION = 1;
const FIELD_LAST_APPLIED_OFFSET = 2;
const FIELD_LAST_APPLIED_EPOCH = 3;
const FIELD_HIGHEST_BROKER_EPOCH = 4;
const FIELD_RECORDS = 5;
const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;

/** Records encoded between two yields of `encodeMetadataSnapshotYielding` (a few ms of work). */
export const SNAPSHOT_RECORDS_PER_SLICE = 5_000;

function snapshotWriter(image: MetadataImage): protobuf.Writer {
  const writer = protobuf.Writer.create();
  writer.uint32((FIELD_VERSION << 3) | WIRE_VARINT).int32(METADATA_SNAPSHOT_VERSION);
  writer.uint32((FIELD_LAST_APPLIED_OFFSET << 3) | WIRE_VARINT).int64(image.lastAppliedOffset);
  writer.uint32((FIELD_LAST_APPLIED_EPOCH << 3) | WIRE_VARINT).int32(image.lastAppliedEpoch);
  writer.uint32((FIELD_HIGHEST_BROKER_EPOCH << 3) | WIRE_VARINT).int64(image.highestBrokerEpoch);
  return writer;
}

/** Serializes the image as a MetadataSnapshot message. */
export function encodeMetadataSnapshot(image: MetadataImage): Uint8Array {
  const writer = snapshotWriter(image);
  for (const record of imageToRecords(image)) {
    writer.uint32((FIELD_RECORDS << 3) | WIRE_LENGTH_DELIMITED).bytes(encodeMetadataRecord(record));
  }
  return writer.finish();
}

/**
 * The same bytes as `encodeMetadataSnapshot`, giving the event loop a turn every
 * SNAPSHOT_RECORDS_PER_SLICE records: encoding 100,000 partitions takes a few hundred ms, during
 * which a quorum member must keep answering fetches. The caller must keep the image unchanged
 * until it resolves (the quorum takes snapshots on its apply chain, where nothing else applies).
 */
export async function encodeMetadataSnapshotYielding(image: MetadataImage): Promise<Uint8Array> {
  const writer = snapshotWriter(image);
  const records = imageToRecords(image);
  for (let index = 0; index < records.length; index++) {
    writer.uint32((FIELD_RECORDS << 3) | WIRE_LENGTH_DELIMITED).bytes(encodeMetadataRecord(records[index]!));
    if ((index + 1) % SNAPSHOT_RECORDS_PER_SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return writer.finish();
}

function corruptSnapshot(what: string, cause?: unknown): RaftkaError {
  return new RaftkaError('STORAGE_CORRUPTED', `a metadata snapshot is damaged (${what}); delete it so the node fetches a fresh one from the quorum leader`, {
    ...(cause === undefined ? {} : { cause }),
    retriable: false,
  });
}

/**
 * Rebuilds an image from snapshot bytes. When `snapshotId` is given (the quorum's name for the
 * snapshot), the image must cover exactly the entries below its end offset.
 */
export function decodeMetadataSnapshot(bytes: Uint8Array, snapshotId?: MetadataSnapshotId): MetadataImage {
  let version: number | undefined;
  let lastAppliedOffset = -1;
  let lastAppliedEpoch = 0;
  let highestBrokerEpoch = 0;
  const recordBytes: Uint8Array[] = [];
  try {
    const reader = protobuf.Reader.create(bytes);
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      switch (tag >>> 3) {
        case FIELD_VERSION:
          version = reader.int32();
          break;
        case FIELD_LAST_APPLIED_OFFSET:
          lastAppliedOffset = longToNumber(reader.int64());
          break;
        case FIELD_LAST_APPLIED_EPOCH:
          lastAppliedEpoch = reader.int32();
          break;
        case FIELD_HIGHEST_BROKER_EPOCH:
          highestBrokerEpoch = longToNumber(reader.int64());
          break;
        case FIELD_RECORDS:
          recordBytes.push(reader.bytes());
          break;
        default:
          reader.skipType(tag & 7);
      }
    }
  } catch (error) {
    throw corruptSnapshot('it does not decode', error);
  }
  if (version !== METADATA_SNAPSHOT_VERSION) {
    throw corruptSnapshot(`layout version ${version} is not supported; expected ${METADATA_SNAPSHOT_VERSION}`);
  }
  if (snapshotId !== undefined) {
    invariant(lastAppliedOffset < snapshotId.endOffset, () => `snapshot holds offset ${lastAppliedOffset}, beyond its end offset ${snapshotId.endOffset}`);
  }
  const image = new MetadataImage();
  for (const bytesOfRecord of recordBytes) {
    // Snapshot registrations carry their own offsets, so the offset passed here is never used.
    image.apply(decodeMetadataRecord(bytesOfRecord), lastAppliedOffset);
  }
  image.highestBrokerEpoch = Math.max(image.highestBrokerEpoch, highestBrokerEpoch);
  // The snapshot id is authoritative: entries between the image's last batch and the end offset
  // were leader-change markers that carry no metadata records.
  image.lastAppliedOffset = snapshotId === undefined ? lastAppliedOffset : snapshotId.endOffset - 1;
  image.lastAppliedEpoch = snapshotId === undefined ? lastAppliedEpoch : snapshotId.epoch;
  return image;
}

/** int64 fields read as Long objects when the `long` package is present. */
function longToNumber(value: unknown): number {
  const number = typeof value === 'number' ? value : (value as { toNumber(): number }).toNumber();
  if (!Number.isSafeInteger(number)) throw corruptSnapshot(`an offset or epoch of ${String(number)} is out of range`);
  return number;
}
