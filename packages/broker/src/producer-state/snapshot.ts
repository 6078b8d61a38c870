// Producer-state snapshots: the state at a log offset, written so that recovery and truncation
// replay only the log after it instead of the whole partition (Kafka's `<offset>.snapshot`).
//
// Binary layout (big-endian), version 1:
//    0 magic        uint32  0x52505331 ("RPS1")
//    4 version      int16   1
//    6 crc          uint32  CRC32C of bytes [10, end)
//   10 offset       int64   mapEndOffset: the log offset the state reflects (exclusive)
//   18 count        int32   producers
//   22 producers:   producerId int64, epoch int16, lastTimestampMs int64, batchCount int8,
//                   batches: firstSeq int32, lastSeq int32, firstOffset int64,
//                            lastOffsetDelta int32 (lastOffset - firstOffset), timestampMs int64
// A snapshot that fails any check (magic, version, CRC, lengths, bounds) is corrupt: the
// loader ignores it with a warning and the state is rebuilt from the log, never guessed.
//
// Files are named by their offset, 20 digits, `.snapshot`, written to a temporary file, fsynced,
// then renamed over, so a crash leaves either the old set of files or the new one.

import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { PRODUCER_BATCHES_RETAINED_MAX, type BatchMetadata, type ProducerEntry } from './producer-state.js';

export const SNAPSHOT_MAGIC = 0x52505331;
export const SNAPSHOT_VERSION = 1;
const HEADER_BYTES = 22;
const CRC_START = 10;
const ENTRY_FIXED_BYTES = 8 + 2 + 8 + 1;
const BATCH_BYTES = 4 + 4 + 8 + 4 + 8;
export const SNAPSHOT_SUFFIX = '.snapshot';

export interface ProducerSnapshot {
  offset: number;
  entries: ProducerEntry[];
}

export function encodeProducerSnapshot(snapshot: ProducerSnapshot): Buffer {
  let size = HEADER_BYTES;
  for (const entry of snapshot.entries) size += ENTRY_FIXED_BYTES + entry.batches.length * BATCH_BYTES;
  const buffer = Buffer.alloc(size);
  buffer.writeUInt32BE(SNAPSHOT_MAGIC, 0);
  buffer.writeInt16BE(SNAPSHOT_VERSION, 4);
  buffer.writeBigInt64BE(BigInt(snapshot.offset), 10);
  buffer.writeInt32BE(snapshot.entries.length, 18);
  let at = HEADER_BYTES;
  for (const entry of snapshot.entries) {
    at = buffer.writeBigInt64BE(entry.producerId, at);
    at = buffer.writeInt16BE(entry.producerEpoch, at);
    at = buffer.writeBigInt64BE(BigInt(entry.lastTimestampMs), at);
    at = buffer.writeInt8(entry.batches.length, at);
    for (const batch of entry.batches) {
      at = buffer.writeInt32BE(batch.firstSeq, at);
      at = buffer.writeInt32BE(batch.lastSeq, at);
      at = buffer.writeBigInt64BE(BigInt(batch.firstOffset), at);
      at = buffer.writeInt32BE(batch.lastOffset - batch.firstOffset, at);
      at = buffer.writeBigInt64BE(BigInt(batch.timestampMs), at);
    }
  }
  buffer.writeUInt32BE(crc32c(buffer.subarray(CRC_START)) >>> 0, 6);
  return buffer;
}

export type SnapshotDecodeResult = { kind: 'ok'; snapshot: ProducerSnapshot } | { kind: 'corrupt'; reason: string };

export function decodeProducerSnapshot(buffer: Buffer): SnapshotDecodeResult {
  const corrupt = (reason: string): SnapshotDecodeResult => ({ kind: 'corrupt', reason });
  if (buffer.length < HEADER_BYTES) return corrupt(`${buffer.length} bytes is shorter than the ${HEADER_BYTES}-byte header`);
  if (buffer.readUInt32BE(0) !== SNAPSHOT_MAGIC) return corrupt('bad magic');
  const version = buffer.readInt16BE(4);
  if (version !== SNAPSHOT_VERSION) return corrupt(`unsupported version ${version}`);
  if ((crc32c(buffer.subarray(CRC_START)) >>> 0) !== buffer.readUInt32BE(6)) return corrupt('CRC32C mismatch');
  const offset = Number(buffer.readBigInt64BE(10));
  const count = buffer.readInt32BE(18);
  if (!Number.isSafeInteger(offset) || offset < 0) return corrupt(`bad offset ${offset}`);
  if (count < 0) return corrupt(`bad producer count ${count}`);
  const entries: ProducerEntry[] = [];
  let at = HEADER_BYTES;
  for (let index = 0; index < count; index++) {
    if (at + ENTRY_FIXED_BYTES > buffer.length) return corrupt(`truncated at producer ${index}`);
    const producerId = buffer.readBigInt64BE(at);
    const producerEpoch = buffer.readInt16BE(at + 8);
    const lastTimestampMs = Number(buffer.readBigInt64BE(at + 10));
    const batchCount = buffer.readInt8(at + 18);
    at += ENTRY_FIXED_BYTES;
    if (batchCount < 0 || batchCount > PRODUCER_BATCHES_RETAINED_MAX) return corrupt(`producer ${producerId} has ${batchCount} batches`);
    if (at + batchCount * BATCH_BYTES > buffer.length) return corrupt(`truncated in producer ${producerId}'s batches`);
    const batches: BatchMetadata[] = [];
    for (let b = 0; b < batchCount; b++) {
      const firstOffset = Number(buffer.readBigInt64BE(at + 8));
      const lastOffset = firstOffset + buffer.readInt32BE(at + 16);
      if (firstOffset < 0 || lastOffset < firstOffset || lastOffset >= offset) return corrupt(`producer ${producerId} batch offsets out of range`);
      batches.push({
        firstSeq: buffer.readInt32BE(at),
        lastSeq: buffer.readInt32BE(at + 4),
        firstOffset,
        lastOffset,
        timestampMs: Number(buffer.readBigInt64BE(at + 20)),
      });
      at += BATCH_BYTES;
    }
    entries.push({ producerId, producerEpoch, batches, lastTimestampMs });
  }
  if (at !== buffer.length) return corrupt(`${buffer.length - at} trailing bytes`);
  return { kind: 'ok', snapshot: { offset, entries } };
}

export function snapshotFileName(offset: number): string {
  return `${offset.toString().padStart(20, '0')}${SNAPSHOT_SUFFIX}`;
}

/** Offsets of the snapshot files in `dir`, ascending. */
export async function listSnapshotOffsets(dir: string): Promise<number[]> {
  const names = await fs.readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  return names
    .filter((name) => /^\d{20}\.snapshot$/.test(name))
    .map((name) => Number(name.slice(0, 20)))
    .sort((a, b) => a - b);
}

/** Writes the snapshot atomically (temporary file, fsync, rename, fsync of the directory). */
export async function writeSnapshotFile(dir: string, snapshot: ProducerSnapshot): Promise<string> {
  const file = path.join(dir, snapshotFileName(snapshot.offset));
  const temporary = `${file}.tmp`;
  const handle = await fs.open(temporary, 'w');
  try {
    await handle.writeFile(encodeProducerSnapshot(snapshot));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temporary, file);
  const dirHandle = await fs.open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
  return file;
}

export async function readSnapshotFile(dir: string, offset: number): Promise<SnapshotDecodeResult> {
  const buffer = await fs.readFile(path.join(dir, snapshotFileName(offset)));
  const result = decodeProducerSnapshot(buffer);
  if (result.kind === 'ok' && result.snapshot.offset !== offset) return { kind: 'corrupt', reason: `file name says offset ${offset}, contents say ${result.snapshot.offset}` };
  return result;
}

/** Deletes snapshots at offsets above `offset` (after truncation they describe a log that is gone). */
export async function deleteSnapshotsAbove(dir: string, offset: number): Promise<number[]> {
  const removed = (await listSnapshotOffsets(dir)).filter((snapshotOffset) => snapshotOffset > offset);
  for (const snapshotOffset of removed) await fs.rm(path.join(dir, snapshotFileName(snapshotOffset)), { force: true });
  return removed;
}

/** Keeps the newest `keep` snapshots, deleting older ones. */
export async function deleteSnapshotsExceptNewest(dir: string, keep: number): Promise<number[]> {
  const offsets = await listSnapshotOffsets(dir);
  const removed = offsets.slice(0, Math.max(0, offsets.length - keep));
  for (const snapshotOffset of removed) await fs.rm(path.join(dir, snapshotFileName(snapshotOffset)), { force: true });
  return removed;
}
