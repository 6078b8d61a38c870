// Zigzag variable-length integers as Kafka writes them inside RecordBatch v2 records
// (ByteUtils.writeVarint / writeVarlong in the Java client): the value is zigzag-mapped so that
// small negative numbers stay short (0 -> 0, -1 -> 1, 1 -> 2, ...), then written 7 bits at a
// time, least significant group first, with the high bit of each byte meaning "more follows".
//
// A varint carries a 32-bit signed value and takes at most 5 bytes; a varlong carries a 64-bit
// signed value and takes at most 10. Longer encodings are refused (CORRUPT_MESSAGE) so that a
// hostile or damaged buffer cannot make the reader loop over it.
//
// Varlongs are decoded to JavaScript numbers, not bigints: they hold timestamp deltas, which are
// milliseconds and far below 2^53. A varlong whose value does not fit a safe integer is refused
// rather than silently rounded.

import { RaftkaError } from './errors.js';

/** Longest valid encoding of a 32-bit varint. */
export const VARINT_BYTES_MAX = 5;
/** Longest valid encoding of a 64-bit varlong. */
export const VARLONG_BYTES_MAX = 10;

const TWO_POW_7 = 128;

/**
 * A read position over `buffer[position, end)`. Every read checks the bytes it needs against
 * `end` first and throws CORRUPT_MESSAGE when they are missing, so a length field can never make
 * a reader allocate or walk past the data it was given.
 */
export class ByteCursor {
  readonly buffer: Buffer;
  /** Invariant: position <= end <= buffer.length. */
  position: number;
  /**
   * Where reading stops. Record decoders narrow it to one record's body while reading that
   * record (and restore it after), so a record can never read into its neighbour.
   */
  end: number;

  constructor(buffer: Buffer, position = 0, end = buffer.length) {
    if (position < 0 || end > buffer.length || position > end) {
      throw new RaftkaError('CORRUPT_MESSAGE', `cannot read [${position}, ${end}) of a ${buffer.length}-byte buffer`);
    }
    this.buffer = buffer;
    this.position = position;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.position;
  }

  /** Reads a zigzag varint (at most 5 bytes) as a signed 32-bit number. */
  readVarint(): number {
    const buffer = this.buffer;
    let position = this.position;
    // Fast path: most lengths and deltas in small records fit one byte.
    if (position < this.end) {
      const first = buffer[position]!;
      if (first < TWO_POW_7) {
        this.position = position + 1;
        return (first >>> 1) ^ -(first & 1);
      }
    }
    let raw = 0;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      if (position >= this.end) throw truncated('varint', this.position);
      const byte = buffer[position++]!;
      // Bits past the 32nd are dropped, as the Java client does (`value |= b << 28`).
      raw |= (byte & 0x7f) << (7 * i);
      if (byte < TWO_POW_7) {
        this.position = position;
        return (raw >>> 1) ^ -(raw & 1);
      }
    }
    throw new RaftkaError('CORRUPT_MESSAGE', `varint at position ${this.position} is longer than ${VARINT_BYTES_MAX} bytes`);
  }

  /** Reads a zigzag varlong (at most 10 bytes) as a safe-integer number. */
  readVarlong(): number {
    const buffer = this.buffer;
    let position = this.position;
    if (position < this.end) {
      const first = buffer[position]!;
      if (first < TWO_POW_7) {
        this.position = position + 1;
        return (first >>> 1) ^ -(first & 1);
      }
    }
    // Accumulate the unsigned zigzag value with floating-point arithmetic: exact while it stays
    // below 2^53, which the check at the end enforces.
    let raw = 0;
    let scale = 1;
    for (let i = 0; i < VARLONG_BYTES_MAX; i++) {
      if (position >= this.end) throw truncated('varlong', this.position);
      const byte = buffer[position++]!;
      raw += (byte & 0x7f) * scale;
      scale *= TWO_POW_7;
      if (byte < TWO_POW_7) {
        if (raw > Number.MAX_SAFE_INTEGER) {
          throw new RaftkaError('CORRUPT_MESSAGE', `varlong at position ${this.position} does not fit a safe integer`);
        }
        this.position = position;
        // Zigzag decode: even raw values are non-negative (raw / 2), odd ones negative.
        return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
      }
    }
    throw new RaftkaError('CORRUPT_MESSAGE', `varlong at position ${this.position} is longer than ${VARLONG_BYTES_MAX} bytes`);
  }

  readInt8(): number {
    if (this.position >= this.end) throw truncated('int8', this.position);
    return this.buffer.readInt8(this.position++);
  }

  /** A view of the next `length` bytes (no copy); the caller has checked `length >= 0`. */
  readBytes(length: number): Buffer {
    if (length > this.end - this.position) {
      throw new RaftkaError(
        'CORRUPT_MESSAGE',
        `${length} bytes announced at position ${this.position} but only ${this.end - this.position} remain`,
      );
    }
    const start = this.position;
    this.position = start + length;
    return this.buffer.subarray(start, start + length);
  }
}

function truncated(what: string, position: number): RaftkaError {
  return new RaftkaError('CORRUPT_MESSAGE', `${what} at position ${position} is cut off by the end of its data`);
}

/** Bytes needed by `writeVarint(value)`; `value` must be a 32-bit signed integer. */
export function varintSize(value: number): number {
  let raw = ((value << 1) ^ (value >> 31)) >>> 0;
  let size = 1;
  while (raw >= TWO_POW_7) {
    raw >>>= 7;
    size++;
  }
  return size;
}

/** Writes `value` (32-bit signed) as a zigzag varint at `position`; returns the next position. */
export function writeVarint(buffer: Buffer, position: number, value: number): number {
  let raw = ((value << 1) ^ (value >> 31)) >>> 0;
  while (raw >= TWO_POW_7) {
    buffer[position++] = (raw & 0x7f) | 0x80;
    raw >>>= 7;
  }
  buffer[position++] = raw;
  return position;
}

function zigzagLong(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

/** Bytes needed by `writeVarlong(value)`; `value` must be a safe integer. */
export function varlongSize(value: number): number {
  let raw = zigzagLong(value);
  let size = 1;
  while (raw >= TWO_POW_7) {
    raw = Math.floor(raw / TWO_POW_7);
    size++;
  }
  return size;
}

/** Writes `value` (a safe integer) as a zigzag varlong at `position`; returns the next position. */
export function writeVarlong(buffer: Buffer, position: number, value: number): number {
  let raw = zigzagLong(value);
  while (raw >= TWO_POW_7) {
    buffer[position++] = (raw % TWO_POW_7) | 0x80;
    raw = Math.floor(raw / TWO_POW_7);
  }
  buffer[position++] = raw;
  return position;
}
