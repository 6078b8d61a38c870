import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InvariantViolation } from '../src/errors.js';
import { murmur2, partitionForKey, toPositive } from '../src/murmur2.js';

const require = createRequire(import.meta.url);
// KafkaJS's port of the Java client's murmur2 (its default partitioner), an independent reference.
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2') as (key: Buffer) => number;

describe('murmur2', () => {
  it("matches the Java client's Utils.murmur2 test vectors (UtilsTest.testMurmur2)", () => {
    const cases: [Buffer, number][] = [
      [Buffer.from('21'), -973932308],
      [Buffer.from('foobar'), -790332482],
      [Buffer.from('a-little-bit-long-string'), -985981536],
      [Buffer.from('a-little-bit-longer-string'), -1486304829],
      [Buffer.from('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8'), -58897971],
      [Buffer.from([0x61, 0x62, 0x63]), 479470107],
    ];
    for (const [key, hash] of cases) expect(murmur2(key)).toBe(hash);
  });

  it("agrees with KafkaJS's default partitioner hash on arbitrary keys of every tail length", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const key = Buffer.from(bytes);
        expect(murmur2(key)).toBe(kafkajsMurmur2(key));
      }),
      { numRuns: 400 },
    );
  });

  it('places keys as toPositive(murmur2(key)) % numPartitions', () => {
    expect(toPositive(-973932308)).toBe(-973932308 & 0x7fffffff);
    expect(toPositive(-2147483648)).toBe(0);
    expect(partitionForKey(Buffer.from('21'), 7)).toBe((-973932308 & 0x7fffffff) % 7);
    for (let partitions = 1; partitions <= 12; partitions++) {
      const partition = partitionForKey(Buffer.from('foobar'), partitions);
      expect(partition).toBeGreaterThanOrEqual(0);
      expect(partition).toBeLessThan(partitions);
    }
    expect(() => partitionForKey(Buffer.from('k'), 0)).toThrow(InvariantViolation);
  });
});
