// The history of a chaos run: every send attempt and its outcome, every fault, every read, as
// Jepsen records one. Written as JSONL (one event per line) so that a failed run can be replayed
// through the checker and read by a person.

import { promises as fs } from 'node:fs';

/** The faults the chaos suite injects (`partition-leader`: the leader is cut off from every other node). */
export const FAULT_KINDS = ['kill-broker', 'kill-leader', 'kill-controller', 'pause-broker', 'restart-all', 'partition-leader'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type HistoryEvent =
  /** A producer hands one record to `send` (its value is unique in the run: `p<producer>-<seq>`). */
  | { type: 'invoke'; timeMs: number; producer: number; seq: number; partition: number; key: string; value: string }
  /** The record was acknowledged (acks=all) at `offset` (-1 when the broker did not return one, e.g. a retried duplicate). */
  | { type: 'ack'; timeMs: number; producer: number; seq: number; partition: number; offset: number }
  /** The send failed for good; the record may or may not have been written (indeterminate). */
  | { type: 'fail'; timeMs: number; producer: number; seq: number; partition: number; error: string }
  /** A fault began (`nodes` were hit; `leaders[p]` led partition p just before) or was healed. */
  | { type: 'fault'; timeMs: number; fault: FaultKind; phase: 'begin' | 'heal'; nodes: number[]; leaders?: number[] }
  /** A member of the workload's consumer group was handed `value` at `offset` (at least once: redeliveries are expected). */
  | { type: 'consume'; timeMs: number; member: number; partition: number; offset: number; value: string | null }
  /** The final read saw `value` at `offset`. */
  | { type: 'read'; timeMs: number; partition: number; offset: number; value: string | null }
  /** The partition's high watermark, asked after the final read. */
  | { type: 'high-watermark'; timeMs: number; partition: number; highWatermark: number };

/** The record value a producer writes for its sequence number; the checker parses it back. */
export function recordValue(producer: number, seq: number): string {
  return `p${producer}-${seq}`;
}

/** Collects events in memory (a run is seconds of load) and writes them as JSONL at the end. */
export class HistoryRecorder {
  readonly events: HistoryEvent[] = [];

  constructor(private readonly nowMs: () => number = Date.now) {}

  now(): number {
    return this.nowMs();
  }

  /** Records an event stamped with the current time. */
  record(event: DistributiveOmit<HistoryEvent, 'timeMs'>): void {
    this.events.push({ ...event, timeMs: this.nowMs() } as HistoryEvent);
  }

  async write(file: string): Promise<void> {
    await fs.writeFile(file, this.events.map((event) => JSON.stringify(event)).join('\n') + '\n');
  }
}

export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Parses a JSONL history file written by HistoryRecorder. */
export function parseHistory(text: string): HistoryEvent[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as HistoryEvent);
}
