import fc from 'fast-check';
import { RaftkaError } from '@raftka/protocol';
import { describe, expect, it } from 'vitest';
import {
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  type Subscription,
} from '../../../src/consumer/assignors/consumer-protocol.js';
import { tp } from './support.js';

const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function expectMalformed(bytes: Uint8Array, decode: (bytes: Uint8Array) => unknown, message: RegExp): void {
  let thrown: unknown;
  try {
    decode(bytes);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(RaftkaError);
  expect((thrown as RaftkaError).code).toBe('INCONSISTENT_GROUP_PROTOCOL');
  expect((thrown as RaftkaError).retriable).toBe(false);
  expect((thrown as RaftkaError).message).toMatch(message);
}

const fullSubscription: Subscription = {
  topics: ['t'],
  userData: new Uint8Array([1, 2]),
  ownedPartitions: [tp('t', 0), tp('t', 2)],
  generationId: 5,
  rackId: 'r1',
};

// Byte layouts written out by hand from Kafka's ConsumerProtocolSubscription/Assignment schemas.
const subscriptionV0 = hex('0000  00000001 0003 666f6f  ffffffff');
const subscriptionV3 = hex(`
  0003
  00000001 0001 74
  00000002 0102
  00000001 0001 74 00000002 00000000 00000002
  00000005
  0002 7231`);
const assignmentV3 = hex('0003  00000001 0001 74 00000001 00000000  ffffffff');

describe('consumer protocol subscription', () => {
  it("writes and reads Kafka's byte layout", () => {
    expect(toHex(encodeSubscription({ ...fullSubscription, topics: ['foo'], userData: null }, 0))).toBe(toHex(subscriptionV0));
    expect(toHex(encodeSubscription(fullSubscription))).toBe(toHex(subscriptionV3));
    expect(decodeSubscription(subscriptionV3)).toEqual({ version: 3, value: fullSubscription });
    expect(decodeSubscription(subscriptionV0)).toEqual({
      version: 0,
      value: { topics: ['foo'], userData: null, ownedPartitions: [], generationId: -1, rackId: null },
    });
  });

  it('drops fields a lower version does not have, and reads them back as defaults', () => {
    for (const version of [0, 1, 2, 3]) {
      const decoded = decodeSubscription(encodeSubscription(fullSubscription, version));
      expect(decoded.version).toBe(version);
      expect(decoded.value).toEqual({
        topics: ['t'],
        userData: new Uint8Array([1, 2]),
        ownedPartitions: version >= 1 ? fullSubscription.ownedPartitions : [],
        generationId: version >= 2 ? 5 : -1,
        rackId: version >= 3 ? 'r1' : null,
      });
    }
  });

  it('round-trips any subscription at every version', () => {
    const topic = fc.string({ unit: 'grapheme', maxLength: 12 });
    const owned = fc
      .uniqueArray(fc.record({ topic, partitions: fc.array(fc.integer({ min: 0, max: 0x7fffffff }), { maxLength: 4 }) }), {
        selector: (entry) => entry.topic,
        maxLength: 4,
      })
      .map((entries) => entries.flatMap(({ topic: name, partitions }) => partitions.map((p) => tp(name, p))));
    fc.assert(
      fc.property(
        fc.record({
          topics: fc.array(topic, { maxLength: 5 }),
          userData: fc.option(fc.uint8Array({ maxLength: 16 }), { nil: null }),
          ownedPartitions: owned,
          generationId: fc.integer({ min: -1, max: 0x7fffffff }),
          rackId: fc.option(topic, { nil: null }),
        }),
        (subscription) => {
          expect(decodeSubscription(encodeSubscription(subscription)).value).toEqual(subscription);
        },
      ),
    );
  });

  it('reads a newer version with the newest layout it knows and ignores the appended fields', () => {
    const v4 = Uint8Array.from([...subscriptionV3, 0xde, 0xad, 0xbe, 0xef]);
    v4[1] = 4;
    expect(decodeSubscription(v4)).toEqual({ version: 4, value: fullSubscription });
  });

  it('refuses every truncation of a valid subscription', () => {
    for (let length = 0; length < subscriptionV3.length; length++) {
      expectMalformed(subscriptionV3.subarray(0, length), decodeSubscription, /subscription.*needs \d+ bytes/);
    }
  });

  it('refuses malformed fields with a message naming the field', () => {
    expectMalformed(hex('ffff 00000000 ffffffff'), decodeSubscription, /unsupported version -1/);
    expectMalformed(hex('0000 ffffffff ffffffff'), decodeSubscription, /topics is null/);
    expectMalformed(hex('0000 7fffffff'), decodeSubscription, /topics needs/);
    expectMalformed(hex('0000 00000001 ffff ffffffff'), decodeSubscription, /topics\[0\] is null but the field is not nullable/);
    expectMalformed(hex('0000 00000001 fffe ffffffff'), decodeSubscription, /topics\[0\] has invalid length -2/);
    expectMalformed(hex('0000 00000001 0002 c328 ffffffff'), decodeSubscription, /topics\[0\] is not valid UTF-8/);
    expectMalformed(hex('0000 00000000 fffffffe'), decodeSubscription, /userData has invalid length -2/);
    expectMalformed(hex('0000 00000000 ffffffff 00'), decodeSubscription, /1 unexpected trailing bytes/);
    expectMalformed(
      hex('0001 00000000 ffffffff 00000001 0001 74 00000001 ffffffff'),
      decodeSubscription,
      /negative partition -1 of topic t/,
    );
  });

  it('fails on arbitrary bytes only with INCONSISTENT_GROUP_PROTOCOL', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeSubscription(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(RaftkaError);
          expect((error as RaftkaError).code).toBe('INCONSISTENT_GROUP_PROTOCOL');
        }
      }),
    );
  });
});

describe('consumer protocol assignment', () => {
  it("writes and reads Kafka's byte layout, at every version", () => {
    const assignment = { partitions: [tp('t', 0)], userData: null };
    expect(toHex(encodeAssignment(assignment))).toBe(toHex(assignmentV3));
    for (const version of [0, 1, 2, 3]) {
      expect(decodeAssignment(encodeAssignment(assignment, version))).toEqual({ version, value: assignment });
    }
  });

  it('groups partitions by topic on the wire and keeps userData', () => {
    const assignment = {
      partitions: [tp('a', 1), tp('b', 0), tp('a', 3)],
      userData: new Uint8Array([9, 8, 7]),
    };
    expect(decodeAssignment(encodeAssignment(assignment)).value).toEqual({
      partitions: [tp('a', 1), tp('a', 3), tp('b', 0)],
      userData: new Uint8Array([9, 8, 7]),
    });
  });

  it('refuses truncated, oversized and null fields', () => {
    for (let length = 0; length < assignmentV3.length; length++) {
      expectMalformed(assignmentV3.subarray(0, length), decodeAssignment, /assignment.*needs \d+ bytes/);
    }
    expectMalformed(hex('0000 ffffffff ffffffff'), decodeAssignment, /assignedPartitions is null/);
    expectMalformed(hex('0000 00000001 0001 74 7fffffff'), decodeAssignment, /assignedPartitions\[0\]\.partitions needs/);
    expectMalformed(hex('0000 00000000 ffffffff 0000'), decodeAssignment, /2 unexpected trailing bytes/);
    // A version above the newest known one may carry appended fields.
    expect(decodeAssignment(hex('0009 00000000 ffffffff 0000')).version).toBe(9);
  });
});
