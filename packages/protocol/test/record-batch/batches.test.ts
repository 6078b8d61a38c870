import { describe, expect, it } from 'vitest';
import { RaftkaError } from '../../src/errors.js';
import { batchesIn, completeBatchAt, forEachBatch } from '../../src/record-batch/batches.js';
import { encodeRecordBatch, encodeRecordBatchSync } from '../../src/record-batch/codec.js';

async function threeBatches(): Promise<Buffer[]> {
  return [
    encodeRecordBatchSync({ records: [{ value: 'a', timestamp: 1 }], baseOffset: 0 }),
    await encodeRecordBatch({ compression: 'zstd', records: [{ value: 'b', timestamp: 2 }, { value: 'c', timestamp: 3 }], baseOffset: 1 }),
    encodeRecordBatchSync({ compression: 'gzip', records: [{ value: 'd', timestamp: 4 }], baseOffset: 3 }),
  ];
}

describe('batchesIn / forEachBatch', () => {
  it('walks concatenated batches in order with their positions', async () => {
    const batches = await threeBatches();
    const buffer = Buffer.concat(batches);
    const seen = [...batchesIn(buffer, 0, { verifyCrc: true })];
    expect(seen.map((b) => b.header.baseOffset)).toEqual([0, 1, 3]);
    expect(seen.map((b) => b.position)).toEqual([0, batches[0]!.length, batches[0]!.length + batches[1]!.length]);
    const visited: number[] = [];
    const result = forEachBatch(buffer, (header) => visited.push(header.recordCount));
    expect(visited).toEqual([1, 2, 1]);
    expect(result).toEqual({ batchCount: 3, endPosition: buffer.length, incompleteTailBytes: 0 });
  });

  it('stops quietly before an incomplete tail and reports where complete batches end', async () => {
    const batches = await threeBatches();
    const whole = Buffer.concat(batches);
    const completeBytes = batches[0]!.length + batches[1]!.length;
    for (const cut of [completeBytes + 1, completeBytes + 11, completeBytes + 12, completeBytes + 61, whole.length - 1]) {
      const buffer = whole.subarray(0, cut);
      expect([...batchesIn(buffer)]).toHaveLength(2);
      expect(forEachBatch(buffer, () => undefined)).toEqual({ batchCount: 2, endPosition: completeBytes, incompleteTailBytes: cut - completeBytes });
    }
    expect(forEachBatch(Buffer.alloc(0), () => undefined)).toEqual({ batchCount: 0, endPosition: 0, incompleteTailBytes: 0 });
  });

  it('throws CORRUPT_MESSAGE for an impossible header and, when asked, for a bad CRC', async () => {
    const batches = await threeBatches();
    const badMagic = Buffer.concat(batches);
    badMagic[batches[0]!.length + 16] = 0;
    expect(() => [...batchesIn(badMagic)]).toThrow(RaftkaError);
    const shortLength = Buffer.concat(batches);
    shortLength.writeInt32BE(3, 8);
    expect(() => completeBatchAt(shortLength, 0)).toThrow(/fewer than/);
    const badCrc = Buffer.concat(batches);
    badCrc[batches[0]!.length - 1]! ^= 0xff;
    expect([...batchesIn(badCrc)]).toHaveLength(3);
    try {
      forEachBatch(badCrc, () => undefined, 0, { verifyCrc: true });
      expect.unreachable();
    } catch (error) {
      expect((error as RaftkaError).code).toBe('CORRUPT_MESSAGE');
    }
  });
});
