import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RaftkaError } from '../src/errors.js';
import { ByteCursor, varintSize, varlongSize, writeVarint, writeVarlong } from '../src/varint.js';

function encodeVarint(value: number): Buffer {
  const buffer = Buffer.alloc(varintSize(value));
  expect(writeVarint(buffer, 0, value)).toBe(buffer.length);
  return buffer;
}

function encodeVarlong(value: number): Buffer {
  const buffer = Buffer.alloc(varlongSize(value));
  expect(writeVarlong(buffer, 0, value)).toBe(buffer.length);
  return buffer;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof RaftkaError ? error.code : `not a RaftkaError: ${String(error)}`;
  }
  return undefined;
}

describe('zigzag varints', () => {
  it('encodes as Kafka does (ByteUtils.writeVarint vectors)', () => {
    // Zigzag: 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, 63 -> 126, -64 -> 127, 64 -> 128 (two bytes).
    expect(encodeVarint(0)).toEqual(Buffer.from([0x00]));
    expect(encodeVarint(-1)).toEqual(Buffer.from([0x01]));
    expect(encodeVarint(1)).toEqual(Buffer.from([0x02]));
    expect(encodeVarint(63)).toEqual(Buffer.from([0x7e]));
    expect(encodeVarint(-64)).toEqual(Buffer.from([0x7f]));
    expect(encodeVarint(64)).toEqual(Buffer.from([0x80, 0x01]));
    expect(encodeVarint(2147483647)).toEqual(Buffer.from([0xfe, 0xff, 0xff, 0xff, 0x0f]));
    expect(encodeVarint(-2147483648)).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
  });

  it('round-trips every int32', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (value) => {
        const cursor = new ByteCursor(encodeVarint(value));
        expect(cursor.readVarint()).toBe(value);
        expect(cursor.remaining).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips varlongs in [-2^52, 2^52), including multi-byte timestamps', () => {
    expect(encodeVarlong(-1)).toEqual(Buffer.from([0x01]));
    const now = 1_700_000_000_000;
    expect(new ByteCursor(encodeVarlong(now)).readVarlong()).toBe(now);
    expect(new ByteCursor(encodeVarlong(-now)).readVarlong()).toBe(-now);
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 52), max: 2 ** 52 - 1 }), (value) => {
        const cursor = new ByteCursor(encodeVarlong(value));
        expect(cursor.readVarlong()).toBe(value);
        expect(cursor.remaining).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a varint longer than 5 bytes and a varlong longer than 10 with CORRUPT_MESSAGE', () => {
    expect(codeOf(() => new ByteCursor(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x00])).readVarint())).toBe('CORRUPT_MESSAGE');
    expect(codeOf(() => new ByteCursor(Buffer.alloc(11, 0x80)).readVarlong())).toBe('CORRUPT_MESSAGE');
  });

  it('refuses a cut-off varint and bytes past the end with CORRUPT_MESSAGE', () => {
    expect(codeOf(() => new ByteCursor(Buffer.from([0x80, 0x80])).readVarint())).toBe('CORRUPT_MESSAGE');
    expect(codeOf(() => new ByteCursor(Buffer.from([0x80])).readVarlong())).toBe('CORRUPT_MESSAGE');
    expect(codeOf(() => new ByteCursor(Buffer.alloc(0)).readVarint())).toBe('CORRUPT_MESSAGE');
    expect(codeOf(() => new ByteCursor(Buffer.alloc(3)).readBytes(4))).toBe('CORRUPT_MESSAGE');
    // The end of the cursor, not of the buffer, is the limit.
    expect(codeOf(() => new ByteCursor(Buffer.from([0x80, 0x01]), 0, 1).readVarint())).toBe('CORRUPT_MESSAGE');
  });

  it('never reads past its end on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
        const cursor = new ByteCursor(Buffer.from(bytes));
        for (;;) {
          const code = codeOf(() => cursor.readVarlong());
          if (code !== undefined) {
            expect(code).toBe('CORRUPT_MESSAGE');
            break;
          }
          expect(cursor.position).toBeLessThanOrEqual(bytes.length);
          if (cursor.remaining === 0) break;
        }
      }),
      { numRuns: 300 },
    );
  });
});
