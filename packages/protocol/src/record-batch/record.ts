// The records inside a RecordBatch v2 (Kafka's DefaultRecord), and their encoding:
//
//   length          varint   bytes of the record after this field
//   attributes      int8     unused, written as 0
//   timestampDelta  varlong  timestamp - batch baseTimestamp
//   offsetDelta     varint   offset - batch baseOffset
//   keyLength       varint   -1 for a null key
//   key             bytes
//   valueLength     varint   -1 for a null value (a tombstone in a compacted topic)
//   value           bytes
//   headerCount     varint
//   headers         [keyLength varint, key utf-8 (never null), valueLength varint (-1 = null), value]
//
// Decoding trusts nothing: every length is checked against the bytes that remain before it is
// used, and every record must end exactly where its length field says. A violation inside a
// batch whose framing and CRC are sound means the producer wrote records that break the format:
// INVALID_RECORD (as Kafka's DefaultRecord.readFrom throws InvalidRecordException). A varint that
// is too long or cut off is CORRUPT_MESSAGE (see varint.ts).

import { invariant, RaftkaError } from '../errors.js';
import { ByteCursor, varintSize, varlongSize, writeVarint, writeVarlong } from '../varint.js';

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/** One record as stored: deltas relative to its batch's base offset and base timestamp. */
export interface Record {
  offsetDelta: number;
  timestampDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

/**
 * A decoded record with its absolute offset and timestamp. For an uncompressed batch, `key`,
 * `value` and header values are views into the decoded buffer (no copy): copy them to keep them
 * past the buffer's reuse.
 */
export interface DecodedRecord extends Record {
  offset: number;
  /**
   * baseTimestamp + timestampDelta for CreateTime batches; the batch's maxTimestamp for
   * LogAppendTime batches, whose broker-assigned time applies to every record (as in Kafka).
   */
  timestamp: number;
}

export interface RecordHeaderInput {
  key: string;
  value: Buffer | string | null;
}

/** What a producer hands to the encoder. Strings are encoded as UTF-8. */
export interface RecordInput {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: readonly RecordHeaderInput[];
  /** Milliseconds since the epoch; defaults to the batch's baseTimestamp. */
  timestamp?: number;
  /**
   * Offset relative to the batch's base offset; defaults to the record's index. Only rewriters of
   * stored batches set it (log compaction keeps original offsets, leaving gaps); it must
   * strictly increase within a batch and start at 0.
   */
  offsetDelta?: number;
}

/** The smallest possible record: length, attributes, deltas, key, value, header count. */
export const RECORD_BYTES_MIN = 7;
/** The smallest possible header: key length 0 and value length -1. */
const HEADER_BYTES_MIN = 2;
/**
 * Timestamp deltas are written as varlongs from JavaScript numbers, exact in [-2^52, 2^52) where
 * the zigzag value stays a safe integer (far beyond any real clock skew inside one batch: 2^52 ms
 * is ~140,000 years).
 */
export const TIMESTAMP_DELTA_LIMIT = 2 ** 52;

/** A record input with its strings turned into bytes and its size worked out, ready to write. */
export interface PreparedRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: { key: Buffer; value: Buffer | null }[];
  timestampDelta: number;
  offsetDelta: number;
  /** Size of the fields after the length varint. */
  bodyBytes: number;
}

function toBytes(value: Buffer | string | null | undefined): Buffer | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

function bytesFieldSize(bytes: Buffer | null): number {
  return bytes === null ? 1 : varintSize(bytes.length) + bytes.length;
}

export function prepareRecord(input: RecordInput, offsetDelta: number, timestampDelta: number): PreparedRecord {
  invariant(
    Number.isInteger(timestampDelta) && timestampDelta >= -TIMESTAMP_DELTA_LIMIT && timestampDelta < TIMESTAMP_DELTA_LIMIT,
    () => `record timestamp delta ${timestampDelta} is not an integer in [-2^52, 2^52)`,
  );
  const key = toBytes(input.key);
  const value = toBytes(input.value);
  const headers: PreparedRecord['headers'] = [];
  let headersBytes = varintSize(input.headers?.length ?? 0);
  for (const header of input.headers ?? []) {
    const headerKey = Buffer.from(header.key, 'utf8');
    const headerValue = toBytes(header.value);
    headers.push({ key: headerKey, value: headerValue });
    headersBytes += bytesFieldSize(headerKey) + bytesFieldSize(headerValue);
  }
  const bodyBytes =
    1 + varlongSize(timestampDelta) + varintSize(offsetDelta) + bytesFieldSize(key) + bytesFieldSize(value) + headersBytes;
  return { key, value, headers, timestampDelta, offsetDelta, bodyBytes };
}

/** Bytes `writeRecord` will use for this record. */
export function recordSize(record: PreparedRecord): number {
  return varintSize(record.bodyBytes) + record.bodyBytes;
}

function writeBytesField(buffer: Buffer, position: number, bytes: Buffer | null): number {
  if (bytes === null) return writeVarint(buffer, position, -1);
  position = writeVarint(buffer, position, bytes.length);
  bytes.copy(buffer, position);
  return position + bytes.length;
}

/** Writes the record at `position`; returns the next position. */
export function writeRecord(buffer: Buffer, position: number, record: PreparedRecord): number {
  position = writeVarint(buffer, position, record.bodyBytes);
  const bodyStart = position;
  buffer[position++] = 0; // attributes: unused in v2
  position = writeVarlong(buffer, position, record.timestampDelta);
  position = writeVarint(buffer, position, record.offsetDelta);
  position = writeBytesField(buffer, position, record.key);
  position = writeBytesField(buffer, position, record.value);
  position = writeVarint(buffer, position, record.headers.length);
  for (const header of record.headers) {
    position = writeBytesField(buffer, position, header.key);
    position = writeBytesField(buffer, position, header.value);
  }
  invariant(position - bodyStart === record.bodyBytes, 'record size computed before writing matches the bytes written');
  return position;
}

function invalid(message: string): RaftkaError {
  return new RaftkaError('INVALID_RECORD', message);
}

/** Reads a nullable bytes field (-1 = null) that must fit the current record. */
function readNullableBytes(cursor: ByteCursor, what: string): Buffer | null {
  const length = cursor.readVarint();
  if (length === -1) return null;
  if (length < -1) throw invalid(`record ${what} length ${length} is negative (only -1, meaning null, is allowed)`);
  if (length > cursor.remaining) throw invalid(`record ${what} length ${length} runs past the end of its record`);
  return cursor.readBytes(length);
}

/** What the records of a batch need from its header to compute absolute values. */
export interface RecordContext {
  baseOffset: number;
  baseTimestamp: number;
  /** Set for LogAppendTime batches: every record takes this timestamp. */
  logAppendTime: number | undefined;
}

/**
 * Decodes exactly `recordCount` records filling `data[start, end)`. Throws INVALID_RECORD when
 * the records do not match the count or the bytes, CORRUPT_MESSAGE for a broken varint.
 */
export function decodeRecords(data: Buffer, start: number, end: number, recordCount: number, context: RecordContext): DecodedRecord[] {
  if (recordCount < 0) throw invalid(`record batch has a negative record count ${recordCount}`);
  // Reject impossible counts before the loop so a huge count costs nothing.
  if (recordCount > (end - start) / RECORD_BYTES_MIN) {
    throw invalid(`record batch claims ${recordCount} records but its ${end - start} record bytes cannot hold that many`);
  }
  const cursor = new ByteCursor(data, start, end);
  const records: DecodedRecord[] = [];
  for (let i = 0; i < recordCount; i++) {
    if (cursor.remaining === 0) throw invalid(`record batch claims ${recordCount} records but holds only ${i}`);
    const bodyBytes = cursor.readVarint();
    if (bodyBytes < 0 || bodyBytes > cursor.remaining) {
      throw invalid(`record ${i} announces ${bodyBytes} bytes but ${cursor.remaining} remain in the batch`);
    }
    const recordEnd = cursor.position + bodyBytes;
    const batchEnd = cursor.end;
    cursor.end = recordEnd;
    cursor.readInt8(); // attributes: unused in v2
    const timestampDelta = cursor.readVarlong();
    const offsetDelta = cursor.readVarint();
    const key = readNullableBytes(cursor, 'key');
    const value = readNullableBytes(cursor, 'value');
    const headerCount = cursor.readVarint();
    if (headerCount < 0) throw invalid(`record ${i} has a negative header count ${headerCount}`);
    if (headerCount > cursor.remaining / HEADER_BYTES_MIN) {
      throw invalid(`record ${i} claims ${headerCount} headers but has only ${cursor.remaining} bytes left`);
    }
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount; h++) {
      const keyLength = cursor.readVarint();
      if (keyLength < 0) throw invalid(`record ${i} header ${h} has a negative key length ${keyLength}; header keys cannot be null`);
      if (keyLength > cursor.remaining) throw invalid(`record ${i} header ${h} key runs past the end of its record`);
      const headerKey = cursor.readBytes(keyLength).toString('utf8');
      headers.push({ key: headerKey, value: readNullableBytes(cursor, 'header value') });
    }
    if (cursor.position !== recordEnd) {
      throw invalid(`record ${i} announces ${bodyBytes} bytes but its fields use ${bodyBytes - (recordEnd - cursor.position)}`);
    }
    cursor.end = batchEnd;
    records.push({
      offsetDelta,
      timestampDelta,
      key,
      value,
      headers,
      offset: context.baseOffset + offsetDelta,
      timestamp: context.logAppendTime ?? context.baseTimestamp + timestampDelta,
    });
  }
  if (cursor.remaining !== 0) {
    throw invalid(`record batch holds ${cursor.remaining} bytes after its ${recordCount} records`);
  }
  return records;
}
