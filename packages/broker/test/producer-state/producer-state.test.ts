import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ProducerStateManager,
  incrementSequence,
  SEQUENCE_MAX,
  type LoggedBatch,
  type ProducerBatch,
} from '../../src/producer-state/producer-state.js';
import { decodeProducerSnapshot, encodeProducerSnapshot } from '../../src/producer-state/snapshot.js';

const T0 = 1_700_000_000_000;
const CONTROL = 0x20;

function batch(producerId: number, producerEpoch: number, baseSequence: number, records = 1): ProducerBatch {
  return { producerId: BigInt(producerId), producerEpoch, baseSequence, lastOffsetDelta: records - 1, attributes: 0 };
}

/** The leader path: validate, "append" at the manager's end offset, apply the stored header. */
class Leader {
  readonly manager = new ProducerStateManager();
  readonly log: LoggedBatch[] = [];
  nextOffset = 0;
  produce(b: ProducerBatch, timestampMs = T0) {
    const validation = this.manager.validateAppend([b]);
    if (validation.kind !== 'append') return validation;
    const stored: LoggedBatch = { ...b, baseOffset: this.nextOffset, maxTimestamp: timestampMs };
    this.nextOffset += b.lastOffsetDelta + 1;
    this.log.push(stored);
    this.manager.applyBatch(stored);
    return { kind: 'appended' as const, firstOffset: stored.baseOffset, lastOffset: stored.baseOffset + b.lastOffsetDelta };
  }
}

describe('ProducerStateManager validation', () => {
  it('accepts in-order sequences, answers duplicates with their original offsets, rejects gaps', () => {
    const leader = new Leader();
    expect(leader.produce(batch(7, 0, 0, 3))).toEqual({ kind: 'appended', firstOffset: 0, lastOffset: 2 });
    expect(leader.produce(batch(7, 0, 3, 2))).toEqual({ kind: 'appended', firstOffset: 3, lastOffset: 4 });
    expect(leader.produce(batch(7, 0, 0, 3))).toEqual({ kind: 'duplicate', firstOffset: 0, lastOffset: 2 });
    expect(leader.produce(batch(7, 0, 6))).toMatchObject({ kind: 'error', code: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
    expect(leader.produce(batch(7, 0, 5))).toMatchObject({ kind: 'appended' });
    expect(leader.nextOffset).toBe(6);
  });

  it('remembers only the last 5 batches for duplicates', () => {
    const leader = new Leader();
    for (let seq = 0; seq < 6; seq++) leader.produce(batch(1, 0, seq));
    expect(leader.produce(batch(1, 0, 1))).toEqual({ kind: 'duplicate', firstOffset: 1, lastOffset: 1 });
    expect(leader.produce(batch(1, 0, 0))).toMatchObject({ kind: 'error', code: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
  });

  it('epochs: newer resets at sequence 0, older is fenced', () => {
    const leader = new Leader();
    leader.produce(batch(1, 3, 0));
    leader.produce(batch(1, 3, 1));
    expect(leader.produce(batch(1, 4, 5))).toMatchObject({ kind: 'error', code: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
    expect(leader.produce(batch(1, 4, 0))).toMatchObject({ kind: 'appended' });
    expect(leader.produce(batch(1, 3, 2))).toMatchObject({ kind: 'error', code: 'INVALID_PRODUCER_EPOCH' });
    expect(leader.manager.entry(1n)).toMatchObject({ producerEpoch: 4 });
  });

  it('unknown producer: UNKNOWN_PRODUCER_ID unless it starts at sequence 0; non-idempotent batches pass', () => {
    const leader = new Leader();
    expect(leader.produce(batch(9, 0, 12))).toMatchObject({ kind: 'error', code: 'UNKNOWN_PRODUCER_ID' });
    expect(leader.produce({ producerId: -1n, producerEpoch: -1, baseSequence: -1, lastOffsetDelta: 4, attributes: 0 })).toMatchObject({ kind: 'appended' });
    expect(leader.manager.producerCount).toBe(0);
  });

  it('validates several batches of one request in order', () => {
    const manager = new ProducerStateManager();
    expect(manager.validateAppend([batch(1, 0, 0, 2), batch(1, 0, 2, 2), batch(2, 0, 0)])).toEqual({ kind: 'append' });
    expect(manager.validateAppend([batch(1, 0, 0, 2), batch(1, 0, 3)])).toMatchObject({ kind: 'error', batchIndex: 1 });
  });

  it('wraps sequences from Int32 max to 0', () => {
    expect(incrementSequence(SEQUENCE_MAX, 1)).toBe(0);
    expect(incrementSequence(SEQUENCE_MAX - 1, 3)).toBe(1);
    const manager = new ProducerStateManager();
    // A producer whose state was restored near the top of the sequence space.
    manager.restore([{ producerId: 1n, producerEpoch: 0, lastTimestampMs: T0, batches: [{ firstSeq: SEQUENCE_MAX - 2, lastSeq: SEQUENCE_MAX - 1, firstOffset: 0, lastOffset: 1 , timestampMs: T0 }] }], 2);
    const wrapping: ProducerBatch = batch(1, 0, SEQUENCE_MAX, 3); // SEQUENCE_MAX, 0, 1
    expect(manager.validateAppend([wrapping])).toEqual({ kind: 'append' });
    manager.applyBatch({ ...wrapping, baseOffset: 2, maxTimestamp: T0 });
    expect(manager.entry(1n)!.batches.at(-1)).toMatchObject({ firstSeq: SEQUENCE_MAX, lastSeq: 1 });
    expect(manager.validateAppend([batch(1, 0, 2)])).toEqual({ kind: 'append' });
    expect(manager.validateAppend([batch(1, 0, SEQUENCE_MAX, 3)])).toEqual({ kind: 'duplicate', firstOffset: 2, lastOffset: 4 });
  });

  it('control batches bump the epoch without a sequence, and the producer then continues at any sequence', () => {
    const manager = new ProducerStateManager();
    manager.applyBatch({ ...batch(5, 2, -1), attributes: CONTROL, baseOffset: 0, maxTimestamp: T0 });
    expect(manager.entry(5n)).toMatchObject({ producerEpoch: 2, batches: [] });
    expect(manager.validateAppend([batch(5, 2, 40)])).toEqual({ kind: 'append' });
  });

  it('expires idle producers after producer.id.expiration.ms and forgets producers whose records retention deleted', () => {
    const manager = new ProducerStateManager({ producerIdExpirationMs: 1_000 });
    manager.applyBatch({ ...batch(1, 0, 0), baseOffset: 0, maxTimestamp: T0 });
    manager.applyBatch({ ...batch(2, 0, 0), baseOffset: 1, maxTimestamp: T0 + 500 });
    expect(manager.removeExpiredProducers(T0 + 999)).toBe(0);
    expect(manager.removeExpiredProducers(T0 + 1_000)).toBe(1);
    expect(manager.entry(1n)).toBeUndefined();
    manager.truncateHead(2);
    expect(manager.producerCount).toBe(0);
    expect(manager.validateAppend([batch(2, 0, 1)])).toMatchObject({ kind: 'error', code: 'UNKNOWN_PRODUCER_ID' });
  });
});

describe('producer-state snapshots', () => {
  it('round-trips, and any damaged byte is detected', () => {
    const leader = new Leader();
    for (let seq = 0; seq < 8; seq++) leader.produce(batch(1 + (seq % 3), 1, Math.floor(seq / 3), 1), T0 + seq);
    const encoded = encodeProducerSnapshot(leader.manager.snapshot());
    expect(decodeProducerSnapshot(encoded)).toEqual({ kind: 'ok', snapshot: leader.manager.snapshot() });
    for (let at = 0; at < encoded.length; at += 7) {
      const damaged = Buffer.from(encoded);
      damaged[at] = damaged[at]! ^ 0x41;
      expect(decodeProducerSnapshot(damaged).kind).toBe('corrupt');
    }
    expect(decodeProducerSnapshot(encoded.subarray(0, encoded.length - 1)).kind).toBe('corrupt');
  });
});

type Action = { producer: number; op: 'next' | 'retry' | 'gap' | 'bump' | 'zombie'; records: number };

describe('producer-state properties', () => {
  it('replay of the log equals the live state, from scratch and from any snapshot; accepted sequences are gap-free', () => {
    const actionArbitrary: fc.Arbitrary<Action> = fc.record({
      producer: fc.integer({ min: 1, max: 3 }),
      op: fc.constantFrom('next', 'next', 'next', 'retry', 'gap', 'bump', 'zombie'),
      records: fc.integer({ min: 1, max: 4 }),
    });
    fc.assert(
      fc.property(fc.array(actionArbitrary, { maxLength: 80 }), fc.nat(), (actions, snapshotPick) => {
        const leader = new Leader();
        // What each simulated producer believes: epoch, next sequence, and its sent batches.
        const clients = new Map<number, { epoch: number; nextSeq: number; sent: ProducerBatch[] }>();
        const snapshots: { offset: number; bytes: Buffer }[] = [];
        for (const action of actions) {
          const client = clients.get(action.producer) ?? { epoch: 0, nextSeq: 0, sent: [] };
          clients.set(action.producer, client);
          let candidate: ProducerBatch;
          // A zombie is an older instance of a producer that has moved to a newer epoch.
          const op = action.op === 'zombie' && (client.epoch === 0 || client.sent.length === 0) ? 'next' : action.op;
          switch (op) {
            case 'next':
              candidate = batch(action.producer, client.epoch, client.nextSeq, action.records);
              break;
            case 'retry':
              candidate = client.sent.at(-1 - (action.records % 3)) ?? batch(action.producer, client.epoch, client.nextSeq, action.records);
              break;
            case 'gap':
              candidate = batch(action.producer, client.epoch, client.nextSeq + 1, action.records);
              break;
            case 'bump':
              client.epoch++;
              client.nextSeq = 0;
              client.sent = [];
              candidate = batch(action.producer, client.epoch, 0, action.records);
              break;
            case 'zombie':
              candidate = batch(action.producer, client.epoch - 1, client.nextSeq, action.records);
              break;
          }
          const result = leader.produce(candidate, T0 + leader.nextOffset);
          if (result.kind === 'appended') {
            expect(candidate.baseSequence).toBe(client.sent.length === 0 ? candidate.baseSequence : client.nextSeq);
            client.nextSeq = incrementSequence(candidate.baseSequence, candidate.lastOffsetDelta + 1);
            client.sent.push(candidate);
          } else if (op === 'next' || op === 'bump') {
            // An in-order batch from a live producer is always accepted.
            expect(result).toEqual({ kind: 'appended' });
          } else if (op === 'gap' && client.sent.length > 0) {
            expect(result).toMatchObject({ kind: 'error', code: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
          } else if (op === 'zombie') {
            expect(result).toMatchObject({ kind: 'error', code: 'INVALID_PRODUCER_EPOCH' });
          }
          if (leader.log.length % 7 === 3) snapshots.push({ offset: leader.manager.mapEndOffset, bytes: encodeProducerSnapshot(leader.manager.snapshot()) });
        }
        const live = leader.manager.entries();
        const replayed = new ProducerStateManager();
        replayed.applyBatches(leader.log);
        expect(replayed.entries()).toEqual(live);
        if (snapshots.length > 0) {
          const chosen = snapshots[snapshotPick % snapshots.length]!;
          const decoded = decodeProducerSnapshot(chosen.bytes);
          if (decoded.kind !== 'ok') throw new Error(decoded.reason);
          const restored = new ProducerStateManager();
          restored.restore(decoded.snapshot.entries, decoded.snapshot.offset);
          restored.applyBatches(leader.log); // batches below the snapshot are skipped
          expect(restored.entries()).toEqual(live);
        }
      }),
      { numRuns: 300 },
    );
  });
});
