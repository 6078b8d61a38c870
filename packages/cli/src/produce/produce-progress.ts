// The progress bar of `raftka produce --file`: how much of the file is acknowledged, how many
// records, and the rate in MB/s, redrawn in place on stderr.
//
// Shown only when stderr is a terminal: in a pipe or a log file a redrawn line is noise, and
// scripts read the exit code and the failure lines instead. Progress counts acknowledged bytes
// (line bytes plus the newline), not bytes read, so the bar reaching 100% means the broker has
// everything. Redraws are throttled by cli-progress (REDRAW_INTERVAL_MS) so a fast producer does
// not spend its time painting.

import cliProgress from 'cli-progress';

/** Longest pause between redraws, and the shortest. */
const REDRAW_INTERVAL_MS = 200;
const BYTES_PER_MB = 1_000_000;

export interface ProduceProgress {
  /** Records and their bytes acknowledged since the last call. */
  acknowledged(records: number, bytes: number): void;
  /** Draws the final state and releases the terminal line. */
  stop(): void;
}

/** "12.34" MB/s from bytes over elapsed milliseconds (0 before any time has passed). */
export function megabytesPerSecond(bytes: number, elapsedMs: number): string {
  if (elapsedMs <= 0) return '0.00';
  return (bytes / BYTES_PER_MB / (elapsedMs / 1000)).toFixed(2);
}

const NO_PROGRESS: ProduceProgress = { acknowledged: () => undefined, stop: () => undefined };

/** A progress bar over `totalBytes` on `stream`, or one that draws nothing when the stream is not a terminal. */
export function produceProgress(totalBytes: number, stream: NodeJS.WriteStream | undefined, clock: () => number = () => Date.now()): ProduceProgress {
  if (stream === undefined || stream.isTTY !== true) return NO_PROGRESS;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{bar} {percentage}% | {records} records | {mbps} MB/s | ETA {eta_formatted}',
      fps: 1000 / REDRAW_INTERVAL_MS,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const startedMs = clock();
  let records = 0;
  let bytes = 0;
  // An empty file still shows a complete bar rather than dividing by zero.
  bar.start(Math.max(1, totalBytes), 0, { records: 0, mbps: '0.00' });
  return {
    acknowledged(newRecords, newBytes) {
      records += newRecords;
      bytes += newBytes;
      bar.update(Math.min(bytes, Math.max(1, totalBytes)), { records, mbps: megabytesPerSecond(bytes, clock() - startedMs) });
    },
    stop() {
      bar.update(totalBytes === 0 ? 1 : Math.min(bytes, totalBytes), { records, mbps: megabytesPerSecond(bytes, clock() - startedMs) });
      bar.stop();
    },
  };
}
