// Partition-log benchmark: prints figures, asserts nothing about time.
//
//   1. append throughput, 1 KiB records in 16 KiB and 1 MiB batches, next to the raw sequential
//      write speed of the same bytes (same chunk sizes, same disk, same run) and the ratio;
//   2. the same with fsync per append (flush.messages=1) next to raw write+fdatasync per write:
//      with APPENDS_IN_FLIGHT appends queued (group commit shares fsyncs) and with one at a time;
//   Each append line has two baselines. "raw" writes one batch per write(2), one at a time (and
//   fdatasyncs after each): the definition. "raw coalesced" writes the same batches the
//   way the log may with the same appends in flight (writev of up to WRITEV_BYTES_MAX, one
//   fdatasync per group of up to APPEND_COALESCE_BYTES_MAX): the disk's ceiling for what the log
//   does, with no producer or per-append work. With small batches the first baseline mostly
//   measures syscall round trips, so the log beats it by coalescing; the second shows how far
//   the log is from the disk (with few appends in flight the log is bound by their round trip,
//   producer to disk and back, which the raw runs do not have). Without fsync a third line, the
//   "ceiling", is the coalesced run that also checks the CRC32C of the next write's batches
//   while each write is in flight: the best a log that validates every byte before writing it
//   can do here. On a 2-core machine the checksum and the kernel's copy compete for cores and
//   memory bandwidth, so this ceiling, not the raw write, bounds the log.
//   3. full-scan read throughput (1 MiB reads, data in the page cache);
//   4. random offset lookups: latency p50/p99/p99.9 of reading the batch holding a random offset;
//   5. recovery time per GiB (open after a crash, every batch re-validated);
//   6. compaction throughput.
//
// Run: npm run bench:log -- [--size-mb N] [--repetitions N] [--append-only] [--dir PATH]
// (--append-only stops after the append cases; more repetitions steady the figures on a busy
// machine, since each case reports its best run.)
// Default --size-mb 256 (per append run); the whole run stays around a minute or two.

import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { encodeRecordBatchSync, verifyBatchCrc, type RecordInput } from '@raftka/protocol';
import { LogCleaner } from '../log/log-cleaner.js';
import { makeLogConfig, type LogConfig } from '../log/log-config.js';
import { APPEND_COALESCE_BYTES_MAX, PartitionLog, WRITEV_BYTES_MAX } from '../log/partition-log.js';

const RECORD_BYTES = 1024;
/** Appends in flight per run: enough to show group commit, bounded like a produce purgatory. */
const APPENDS_IN_FLIGHT = 16;
const LOOKUPS = 20_000;
const REPETITIONS_DEFAULT = 3;
const MIB = 1024 * 1024;

interface Args {
  sizeMb: number;
  repetitions: number;
  appendOnly: boolean;
  dir: string;
}

function parseArgs(argv: string[]): Args {
  let sizeMb = 256;
  let repetitions = REPETITIONS_DEFAULT;
  let appendOnly = false;
  let dir = os.tmpdir();
  for (let index = 0; index < argv.length; index++) {
    if (argv[index] === '--size-mb') sizeMb = Number(argv[++index]);
    else if (argv[index] === '--repetitions') repetitions = Number(argv[++index]);
    else if (argv[index] === '--append-only') appendOnly = true;
    else if (argv[index] === '--dir') dir = argv[++index]!;
    else throw new Error(`unknown argument ${argv[index]}; usage: log-bench [--size-mb N] [--repetitions N] [--append-only] [--dir PATH]`);
  }
  if (!Number.isFinite(sizeMb) || sizeMb <= 0) throw new Error('--size-mb must be a positive number');
  if (!Number.isSafeInteger(repetitions) || repetitions < 1) throw new Error('--repetitions must be a positive integer');
  return { sizeMb, repetitions, appendOnly, dir };
}

function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A batch of 1 KiB records (key + value + framing ≈ RECORD_BYTES), `batchBytes` in total. */
function makeBatch(batchBytes: number, random: () => number, keySpace?: number): Buffer {
  const count = Math.max(1, Math.floor(batchBytes / RECORD_BYTES));
  const value = Buffer.alloc(RECORD_BYTES - 24);
  for (let index = 0; index < value.length; index += 4) value.writeUInt32LE((random() * 2 ** 32) >>> 0, index);
  const records: RecordInput[] = [];
  for (let index = 0; index < count; index++) {
    const key = keySpace === undefined ? `key-${index}` : `key-${Math.floor(random() * keySpace)}`;
    records.push({ key, value, timestamp: 1_700_000_000_000 });
  }
  return encodeRecordBatchSync({ records, baseTimestamp: 1_700_000_000_000 });
}

/** A ring of distinct batch buffers: the log rewrites header fields of buffers it appends. */
function batchRing(batchBytes: number, size: number, random: () => number): Buffer[] {
  const template = makeBatch(batchBytes, random);
  return Array.from({ length: size }, () => Buffer.from(template));
}

async function appendRun(
  dir: string,
  config: Partial<LogConfig>,
  batchBytes: number,
  totalBytes: number,
  appendsInFlight = APPENDS_IN_FLIGHT,
): Promise<{ mbPerS: number; bytes: number; log: PartitionLog }> {
  const log = await PartitionLog.open({ dir, config: makeLogConfig(config) });
  const ring = batchRing(batchBytes, APPENDS_IN_FLIGHT * 2, seededRandom(1));
  const appendBytes = ring[0]!.length;
  const appends = Math.max(1, Math.floor(totalBytes / appendBytes));
  const inFlight = new Set<Promise<unknown>>();
  // The first append in a leader epoch writes and fsyncs the leader-epoch checkpoint, which a new
  // leader does once when it takes over (before produce traffic), so it happens before the clock
  // starts (files are opened before it in the raw runs too).
  await log.append(ring[ring.length - 1]!, { leaderEpoch: 0, assignOffsets: true });
  const start = performance.now();
  for (let index = 0; index < appends; index++) {
    if (inFlight.size >= appendsInFlight) await Promise.race(inFlight);
    const append = log.append(ring[index % ring.length]!, { leaderEpoch: 0, assignOffsets: true });
    const tracked: Promise<unknown> = append.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - start) / 1000;
  return { mbPerS: (appends * appendBytes) / MIB / seconds, bytes: log.sizeInBytes, log };
}

/** How a raw run groups the batches: per write call and per fdatasync (when syncing). */
interface RawPattern {
  batchesPerWrite: number;
  batchesPerSync: number;
  /**
   * Check the CRC32C of the next write's batches while each write is in flight: what a log that
   * validates every byte before writing it can do at best (the CPU and the disk overlapped).
   */
  validateNext: boolean;
}

/** One write and (when syncing) one fdatasync per batch: the baseline. */
const ONE_PER_BATCH: RawPattern = { batchesPerWrite: 1, batchesPerSync: 1, validateNext: false };

/**
 * The most the log could coalesce with `inFlight` appends of `appendBytes` queued: a writev takes
 * batches up to WRITEV_BYTES_MAX (a larger one goes alone), a group (one fsync) up to
 * APPEND_COALESCE_BYTES_MAX, and neither more than the appends in flight.
 */
function coalescedLikeTheLog(appendBytes: number, inFlight: number): RawPattern {
  return {
    batchesPerWrite: Math.max(1, Math.min(inFlight, Math.floor(WRITEV_BYTES_MAX / appendBytes))),
    batchesPerSync: Math.max(1, Math.min(inFlight, Math.floor(APPEND_COALESCE_BYTES_MAX / appendBytes))),
    validateNext: false,
  };
}

/**
 * A baseline: the same bytes (the same ring of distinct buffers: rewriting one hot buffer would
 * flatter the disk with CPU-cache effects) written sequentially to a new file opened like a
 * segment file (no O_APPEND/O_SYNC/O_DIRECT), one write call at a time, grouped by `pattern`.
 */
async function rawWriteRun(filePath: string, batchBytes: number, totalBytes: number, syncEach: boolean, pattern: RawPattern): Promise<number> {
  const ring = batchRing(batchBytes, APPENDS_IN_FLIGHT * 2, seededRandom(1));
  const chunkBytes = ring[0]!.length;
  const writes = Math.max(1, Math.floor(totalBytes / chunkBytes));
  const handle = await fs.open(filePath, 'w');
  const start = performance.now();
  let position = 0;
  let unsynced = 0;
  for (let index = 0; index < writes; ) {
    const count = Math.min(pattern.batchesPerWrite, writes - index);
    // The write is issued when write()/writev() is called, so the checks below overlap with it.
    const writing =
      count === 1
        ? handle.write(ring[index % ring.length]!, 0, chunkBytes, position)
        : handle.writev(Array.from({ length: count }, (_, offset) => ring[(index + offset) % ring.length]!), position);
    if (pattern.validateNext) {
      for (let next = index + count; next < Math.min(writes, index + 2 * count); next++) {
        if (!verifyBatchCrc(ring[next % ring.length]!, 0)) throw new Error('benchmark batch fails its CRC');
      }
    }
    const { bytesWritten } = await writing;
    if (bytesWritten !== count * chunkBytes) throw new Error(`short write: ${bytesWritten} of ${count * chunkBytes} bytes`);
    position += count * chunkBytes;
    index += count;
    unsynced += count;
    if (syncEach && (unsynced >= pattern.batchesPerSync || index === writes)) {
      await handle.datasync();
      unsynced = 0;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  await handle.close();
  await fs.rm(filePath);
  return (writes * chunkBytes) / MIB / seconds;
}

function ratio(part: number, whole: number): string {
  return `${((part / whole) * 100).toFixed(0)}%`;
}

function line(label: string, value: string): void {
  console.log(`${label.padEnd(50)} ${value}`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = await fs.mkdtemp(path.join(args.dir, 'raftka-log-bench-'));
  const totalBytes = args.sizeMb * MIB;
  const syncBytes = Math.max(MIB, Math.floor(totalBytes / 16));
  console.log(`partition log benchmark: ${args.sizeMb} MiB per append run, 1 KiB records, temp dir ${root}`);
  try {
    // 1-2. Append throughput vs raw sequential writes of the same bytes. Runs alternate and
    // repeat (best of --repetitions each) so that writeback of one run's dirty pages does not
    // land on the next and decide the comparison.
    let scanLog: PartitionLog | undefined;
    let scanBytes = 0;
    const cases = [
      { batchBytes: 16 * 1024, sync: false, bytes: totalBytes, inFlight: APPENDS_IN_FLIGHT },
      { batchBytes: MIB, sync: false, bytes: totalBytes, inFlight: APPENDS_IN_FLIGHT },
      { batchBytes: 16 * 1024, sync: true, bytes: syncBytes, inFlight: APPENDS_IN_FLIGHT },
      { batchBytes: MIB, sync: true, bytes: syncBytes, inFlight: APPENDS_IN_FLIGHT },
      // One append at a time: no group commit to share fsyncs, the pure per-append cost.
      { batchBytes: 16 * 1024, sync: true, bytes: syncBytes / 4, inFlight: 1 },
    ];
    for (const { batchBytes, sync, bytes, inFlight } of cases) {
      let rawBest = 0;
      let coalescedBest = 0;
      let ceilingBest = 0;
      let appendBest = 0;
      const coalesced = coalescedLikeTheLog(makeBatch(batchBytes, seededRandom(1)).length, inFlight);
      const distinct = coalesced.batchesPerWrite > 1 || (sync && coalesced.batchesPerSync > 1);
      for (let repetition = 0; repetition < args.repetitions; repetition++) {
        rawBest = Math.max(rawBest, await rawWriteRun(path.join(root, 'raw.bin'), batchBytes, bytes, sync, ONE_PER_BATCH));
        if (distinct) coalescedBest = Math.max(coalescedBest, await rawWriteRun(path.join(root, 'raw.bin'), batchBytes, bytes, sync, coalesced));
        if (!sync) {
          const ceiling = { ...coalesced, validateNext: true };
          ceilingBest = Math.max(ceilingBest, await rawWriteRun(path.join(root, 'raw.bin'), batchBytes, bytes, sync, ceiling));
        }
        const dir = path.join(root, `append-${batchBytes}-${sync}-${repetition}`);
        const run = await appendRun(dir, sync ? { flushMessages: 1 } : {}, batchBytes, bytes, inFlight);
        appendBest = Math.max(appendBest, run.mbPerS);
        if (!sync && batchBytes !== MIB && inFlight === APPENDS_IN_FLIGHT && repetition === args.repetitions - 1 && !args.appendOnly) {
          scanLog = run.log;
          scanBytes = run.bytes;
        } else {
          await run.log.close();
          await fs.rm(dir, { recursive: true, force: true });
        }
      }
      const label = `append ${batchBytes === MIB ? '1 MiB' : '16 KiB'} batches, ${inFlight} in flight${sync ? ', fsync' : ''}`;
      const baseline = sync ? 'raw write+fdatasync' : 'raw write';
      // Without coalescing to do (1 MiB batches, one append in flight) both baselines are one.
      if (!distinct) coalescedBest = rawBest;
      line(
        label,
        `${appendBest.toFixed(0)} MB/s; ${baseline} ${rawBest.toFixed(0)} MB/s, ratio ${ratio(appendBest, rawBest)}; ` +
          `coalesced ${coalescedBest.toFixed(0)} MB/s, ratio ${ratio(appendBest, coalescedBest)}`,
      );
      if (!sync) line('  ceiling: coalesced, next CRC32C overlapped', `${ceilingBest.toFixed(0)} MB/s; log at ${ratio(appendBest, ceilingBest)} of it`);
    }

    // Context for the append figures: a leader validates every batch's CRC32C before appending.
    const crcRing = batchRing(MIB, APPENDS_IN_FLIGHT * 2, seededRandom(1));
    const crcRounds = Math.max(1, Math.floor(totalBytes / crcRing[0]!.length));
    const crcStart = performance.now();
    for (let index = 0; index < crcRounds; index++) {
      if (!verifyBatchCrc(crcRing[index % crcRing.length]!, 0)) throw new Error('benchmark batch fails its CRC');
    }
    const crcSeconds = (performance.now() - crcStart) / 1000;
    line('CRC32C validation alone (1 MiB batches)', `${((crcRounds * crcRing[0]!.length) / MIB / crcSeconds).toFixed(0)} MB/s on one core`);
    if (args.appendOnly) return;

    // 3. Full scan from the page cache.
    const log = scanLog!;
    let offset = 0;
    let readBytes = 0;
    const scanStart = performance.now();
    while (offset < log.logEndOffset) {
      const { records } = await log.read(offset, { maxBytes: MIB, minOneBatch: true });
      readBytes += records.length;
      // The last batch's last offset: base offset + lastOffsetDelta of the final batch.
      let position = 0;
      let last = 0;
      while (position < records.length) {
        last = records.readInt32BE(position) * 2 ** 32 + records.readUInt32BE(position + 4) + records.readInt32BE(position + 23);
        position += 12 + records.readInt32BE(position + 8);
      }
      offset = last + 1;
    }
    const scanSeconds = (performance.now() - scanStart) / 1000;
    line('full scan, 1 MiB reads (page cache)', `${(readBytes / 1e9 / scanSeconds).toFixed(2)} GB/s (${(readBytes / MIB).toFixed(0)} MiB in ${scanSeconds.toFixed(2)} s)`);

    // 4. Random offset lookups.
    const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    const random = seededRandom(3);
    const end = log.logEndOffset;
    for (let index = 0; index < LOOKUPS; index++) {
      const target = Math.floor(random() * end);
      const start = performance.now();
      const { records } = await log.read(target, { maxBytes: 1, minOneBatch: true });
      histogram.recordValue(Math.max(1, Math.round((performance.now() - start) * 1000)));
      if (records.length === 0) throw new Error(`lookup of offset ${target} returned nothing`);
    }
    line(
      `random offset lookup (${LOOKUPS} reads of one batch)`,
      `p50 ${histogram.getValueAtPercentile(50)} us, p99 ${histogram.getValueAtPercentile(99)} us, p99.9 ${histogram.getValueAtPercentile(99.9)} us`,
    );

    // 5. Recovery after a crash: everything past the (removed) recovery point is re-validated.
    // The data is made durable first: after a real crash and reboot it is on disk, and the
    // figure should be the validation work, not writing back this run's dirty pages.
    const logDir = log.dir;
    await log.flush();
    await log.abandon();
    await fs.rm(path.join(logDir, 'recovery-point-offset-checkpoint'), { force: true });
    const recoverStart = performance.now();
    const recovered = await PartitionLog.open({ dir: logDir, config: makeLogConfig() });
    const recoverSeconds = (performance.now() - recoverStart) / 1000;
    if (recovered.logEndOffset !== end) throw new Error(`recovery lost data: ${recovered.logEndOffset} != ${end}`);
    line('recovery (CRC re-validation, index rebuild)', `${(recoverSeconds / (scanBytes / 2 ** 30)).toFixed(2)} s per GiB (${(scanBytes / MIB).toFixed(0)} MiB in ${recoverSeconds.toFixed(2)} s)`);
    await recovered.close();

    // 6. Compaction of keyed 1 KiB records (10,000 keys) in 16 KiB batches.
    const compactBytes = Math.max(MIB, Math.floor(totalBytes / 4));
    const compactLog = await PartitionLog.open({
      dir: path.join(root, 'compacted'),
      config: makeLogConfig({ cleanupPolicy: { compact: true, delete: false }, segmentBytes: 16 * MIB }),
    });
    const keyedRandom = seededRandom(4);
    const keyed = Array.from({ length: 64 }, () => makeBatch(16 * 1024, keyedRandom, 10_000));
    let written = 0;
    for (let index = 0; written < compactBytes; index++) {
      const batch = Buffer.from(keyed[index % keyed.length]!);
      written += batch.length;
      await compactLog.append(batch, { leaderEpoch: 0, assignOffsets: true });
    }
    const cleanStart = performance.now();
    const result = await new LogCleaner().clean(compactLog, { force: true });
    const cleanSeconds = (performance.now() - cleanStart) / 1000;
    if (result === undefined) throw new Error('the cleaner found nothing to clean');
    line(
      'compaction (10,000 keys, 1 KiB records)',
      `${(result.bytesRead / MIB / cleanSeconds).toFixed(0)} MB/s read; ${(result.bytesRead / MIB).toFixed(0)} MiB -> ${(result.bytesWritten / MIB).toFixed(0)} MiB in ${cleanSeconds.toFixed(2)} s`,
    );
    await compactLog.close();
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
