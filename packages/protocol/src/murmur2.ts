// Kafka-compatible key hashing. The Java client's default partitioner places a keyed record in
// partition `toPositive(murmur2(keyBytes)) % numPartitions` (Utils.murmur2, seed 0x9747b28c).
// Raftka uses the same function so that a key lands in the same partition whichever client
// produced it, and so that a topic migrated from Kafka keeps its key-to-partition mapping.
//
// All arithmetic is 32-bit: Math.imul for the multiplications and `| 0` / `>>>` to stay in
// int32, which reproduces Java's int overflow exactly.

import { invariant } from './errors.js';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

/** Kafka's murmur2 of `key`, as a signed 32-bit integer (Utils.murmur2 in the Java client). */
export function murmur2(key: Uint8Array): number {
  const length = key.length;
  let h = (SEED ^ length) | 0;
  const length4 = length >>> 2;

  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = key[i4]! | (key[i4 + 1]! << 8) | (key[i4 + 2]! << 16) | (key[i4 + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }

  // The tail bytes, handled as the Java switch does with its fall-through from 3 to 1.
  const tail = length & ~3;
  const tailLength = length & 3;
  if (tailLength === 3) h ^= key[tail + 2]! << 16;
  if (tailLength >= 2) h ^= key[tail + 1]! << 8;
  if (tailLength >= 1) {
    h ^= key[tail]!;
    h = Math.imul(h, M);
  }

  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's Utils.toPositive: clears the sign bit (not Math.abs, which overflows on MIN_VALUE). */
export function toPositive(value: number): number {
  return value & 0x7fffffff;
}

/** The partition Kafka's default partitioner gives a record with this (non-null) key. */
export function partitionForKey(key: Uint8Array, numPartitions: number): number {
  invariant(Number.isInteger(numPartitions) && numPartitions > 0, `numPartitions must be a positive integer, got ${numPartitions}`);
  return toPositive(murmur2(key)) % numPartitions;
}
