// The on-disk encoding of everything the quorum stores: log entries, the quorum state and the
// snapshot metadata.
//
// Every stored value is framed as
//
//   formatVersion u8 | crc32c u32 (big endian, over the body) | body
//
// so that a damaged or half-written value is detected when the storage is opened (a store that is
// silently wrong would break Raft's durability promises: a vote granted twice in one epoch, or a
// committed entry lost). The version byte lets a later format be read alongside this one.
//
// A log entry body is compact binary, never JSON, because data entries carry opaque record bytes:
//
//   offset u64 | epoch u32 | kind u8 | kind-specific part
//   kind 0 (data):          recordCount u32 | (length u32 | bytes) * recordCount
//   kind 1 (leader-change): leaderId i32 | voterCount u32 | voterId i32 * voterCount

import { crc32c } from '@node-rs/crc32';
import type { LogEntry, QuorumStateRecord, SnapshotId } from '../raft/types.js';

export const STORAGE_FORMAT_VERSION = 1;
const FRAME_HEADER_BYTES = 5;
const ENTRY_KIND_DATA = 0;
const ENTRY_KIND_LEADER_CHANGE = 1;
/** Encodes "no node" in the fixed-width quorum-state fields (node ids are >= 0). */
const NO_NODE = -1;

/** Thrown by the decoders; the storage turns it into STORAGE_CORRUPTED naming the key and directory. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

function frame(body: Buffer): Buffer {
  const framed = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  framed.writeUInt8(STORAGE_FORMAT_VERSION, 0);
  framed.writeUInt32BE(crc32c(body) >>> 0, 1);
  body.copy(framed, FRAME_HEADER_BYTES);
  return framed;
}

function unframe(value: Uint8Array): Buffer {
  const buffer = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (buffer.length < FRAME_HEADER_BYTES) throw new DecodeError(`value of ${buffer.length} bytes is shorter than its header`);
  const version = buffer.readUInt8(0);
  if (version !== STORAGE_FORMAT_VERSION) throw new DecodeError(`unknown storage format version ${version}`);
  const body = buffer.subarray(FRAME_HEADER_BYTES);
  const expected = buffer.readUInt32BE(1);
  const actual = crc32c(body) >>> 0;
  if (expected !== actual) throw new DecodeError(`checksum mismatch (stored ${expected}, computed ${actual})`);
  return body;
}

/**
 * The records of a data entry as one buffer: `recordCount u32 | (length u32 | bytes) * recordCount`.
 * The same layout is stored on disk and sent over gRPC (one `bytes` field per entry instead of one
 * per record, which keeps per-record protobuf work and copies off the replication path).
 */
export function encodedRecordsSize(records: readonly Uint8Array[]): number {
  let size = 4;
  for (const record of records) size += 4 + record.byteLength;
  return size;
}

export function writeRecords(records: readonly Uint8Array[], target: Buffer, start: number): number {
  let position = start;
  target.writeUInt32BE(records.length, position);
  position += 4;
  for (const record of records) {
    target.writeUInt32BE(record.byteLength, position);
    position += 4;
    target.set(record, position);
    position += record.byteLength;
  }
  return position;
}

export function encodeRecords(records: readonly Uint8Array[]): Buffer {
  const buffer = Buffer.allocUnsafe(encodedRecordsSize(records));
  writeRecords(records, buffer, 0);
  return buffer;
}

/**
 * Splits a records buffer into views of it (no copies). Throws DecodeError when the layout does
 * not add up exactly, so a damaged buffer never yields records.
 */
export function decodeRecords(buffer: Uint8Array, start = 0, end = buffer.byteLength): Uint8Array[] {
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const need = (position: number, bytes: number): void => {
    if (position + bytes > end) throw new DecodeError(`records truncated at byte ${position - start} of ${end - start}`);
  };
  need(start, 4);
  const count = view.getUint32(start);
  let position = start + 4;
  // Each record takes at least its 4-byte length, which bounds a bogus count before allocating.
  if (count > (end - position) / 4) throw new DecodeError(`record count ${count} does not fit in ${end - position} bytes`);
  const records: Uint8Array[] = new Array<Uint8Array>(count);
  for (let i = 0; i < count; i++) {
    need(position, 4);
    const length = view.getUint32(position);
    position += 4;
    need(position, length);
    records[i] = buffer.subarray(position, position + length);
    position += length;
  }
  if (position !== end) throw new DecodeError(`${end - position} trailing bytes after ${count} records`);
  return records;
}

/** Bytes needed to encode `entry` (also used to bound fetch responses). */
export function encodedEntrySize(entry: LogEntry): number {
  let size = FRAME_HEADER_BYTES + 8 + 4 + 1;
  const payload = entry.payload;
  if (payload.kind === 'data') {
    size += encodedRecordsSize(payload.records);
  } else {
    size += 8 + 4 * payload.voters.length;
  }
  return size;
}

export function encodeEntry(entry: LogEntry): Buffer {
  const body = Buffer.allocUnsafe(encodedEntrySize(entry) - FRAME_HEADER_BYTES);
  let position = 0;
  body.writeBigUInt64BE(BigInt(entry.offset), position);
  position += 8;
  body.writeUInt32BE(entry.epoch, position);
  position += 4;
  const payload = entry.payload;
  if (payload.kind === 'data') {
    body.writeUInt8(ENTRY_KIND_DATA, position++);
    position = writeRecords(payload.records, body, position);
  } else {
    body.writeUInt8(ENTRY_KIND_LEADER_CHANGE, position++);
    body.writeInt32BE(payload.leaderId, position);
    position += 4;
    body.writeUInt32BE(payload.voters.length, position);
    position += 4;
    for (const voter of payload.voters) {
      body.writeInt32BE(voter, position);
      position += 4;
    }
  }
  return frame(body);
}

export function decodeEntry(value: Uint8Array): LogEntry {
  const body = unframe(value);
  const need = (position: number, bytes: number): void => {
    if (position + bytes > body.length) throw new DecodeError(`entry truncated at byte ${position} of ${body.length}`);
  };
  need(0, 13);
  const offset = Number(body.readBigUInt64BE(0));
  const epoch = body.readUInt32BE(8);
  const kind = body.readUInt8(12);
  let position = 13;
  let entry: LogEntry;
  if (kind === ENTRY_KIND_DATA) {
    // Copy the records out so that they do not pin (or alias) the value buffer LevelDB handed us.
    const records = decodeRecords(body, position, body.length).map((record) => new Uint8Array(record));
    position = body.length;
    entry = { offset, epoch, payload: { kind: 'data', records } };
  } else if (kind === ENTRY_KIND_LEADER_CHANGE) {
    need(position, 8);
    const leaderId = body.readInt32BE(position);
    const count = body.readUInt32BE(position + 4);
    position += 8;
    need(position, 4 * count);
    const voters: number[] = [];
    for (let i = 0; i < count; i++) voters.push(body.readInt32BE(position + 4 * i));
    position += 4 * count;
    entry = { offset, epoch, payload: { kind: 'leader-change', leaderId, voters } };
  } else {
    throw new DecodeError(`unknown entry kind ${kind}`);
  }
  if (position !== body.length) throw new DecodeError(`${body.length - position} trailing bytes after the entry`);
  return entry;
}

export function encodeQuorumState(state: QuorumStateRecord): Buffer {
  const body = Buffer.allocUnsafe(12);
  body.writeUInt32BE(state.epoch, 0);
  body.writeInt32BE(state.votedFor ?? NO_NODE, 4);
  body.writeInt32BE(state.leaderId ?? NO_NODE, 8);
  return frame(body);
}

export function decodeQuorumState(value: Uint8Array): QuorumStateRecord {
  const body = unframe(value);
  if (body.length !== 12) throw new DecodeError(`quorum state has ${body.length} bytes, expected 12`);
  const votedFor = body.readInt32BE(4);
  const leaderId = body.readInt32BE(8);
  return {
    epoch: body.readUInt32BE(0),
    votedFor: votedFor === NO_NODE ? undefined : votedFor,
    leaderId: leaderId === NO_NODE ? undefined : leaderId,
  };
}

/** Snapshot metadata also records the file's size and checksum, to validate the file on open. */
export interface SnapshotMetadata {
  snapshotId: SnapshotId;
  sizeBytes: number;
  crc32c: number;
}

export function encodeSnapshotMetadata(metadata: SnapshotMetadata): Buffer {
  const body = Buffer.allocUnsafe(20);
  body.writeBigUInt64BE(BigInt(metadata.snapshotId.endOffset), 0);
  body.writeUInt32BE(metadata.snapshotId.epoch, 8);
  body.writeUInt32BE(metadata.sizeBytes, 12);
  body.writeUInt32BE(metadata.crc32c >>> 0, 16);
  return frame(body);
}

export function decodeSnapshotMetadata(value: Uint8Array): SnapshotMetadata {
  const body = unframe(value);
  if (body.length !== 20) throw new DecodeError(`snapshot metadata has ${body.length} bytes, expected 20`);
  return {
    snapshotId: { endOffset: Number(body.readBigUInt64BE(0)), epoch: body.readUInt32BE(8) },
    sizeBytes: body.readUInt32BE(12),
    crc32c: body.readUInt32BE(16),
  };
}
