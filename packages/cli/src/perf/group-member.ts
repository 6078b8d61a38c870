// One consumer-group member of the group benchmark (group-bench.ts), run as a child process so
// that each member has its own event loop (as members on separate machines would) and so that
// the benchmark can SIGKILL one without touching the others. (For comparison, the throughput
// phase can also run several members in one such process: `consumers` > 1.)
//
// The parent forks this module with an IPC channel and one JSON argument (MemberConfig). The
// member builds its Consumer, says `ready`, and waits for `subscribe`; from then on it consumes
// with `run({ eachBatch })`, reports every change of its owned partitions (from the rebalance
// listener, with the time it happened) and its consumption progress, and closes gracefully
// (commit, onPartitionsRevoked, LeaveGroup) on `close`. Times are wall-clock milliseconds
// (Date.now()) so that the parent can compare them with its own: all processes share one clock.
// When the parent goes away (IPC channel closed) the member exits at once: a benchmark that
// crashed must not leave consumers behind.

import { Consumer, type TopicPartition } from '@raftka/client';
import { assertNever } from '@raftka/protocol';

export interface MemberConfig {
  bootstrapServers: string[];
  groupId: string;
  topic: string;
  clientId: string;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  partitionAssignmentStrategy: string[];
  /** How often progress is reported while records arrive. */
  progressIntervalMs: number;
  /**
   * Consumers (group members) this process runs, sharing its event loop; 1 except when the
   * benchmark compares against members that share a process.
   */
  consumers: number;
}

/** How long one poll of the run loop waits, so that a close is noticed quickly. */
const POLL_TIMEOUT_MS = 500;

/** Parent -> member. */
export type MemberCommand = { kind: 'subscribe' } | { kind: 'close' };

/** Member -> parent. */
export type MemberEvent =
  | { kind: 'ready' }
  | { kind: 'subscribed'; atMs: number }
  | { kind: 'assignment'; owned: number[]; atMs: number }
  | {
      kind: 'progress';
      records: number;
      bytes: number;
      /** Undefined until the first record. */
      firstRecordMs: number | undefined;
      lastRecordMs: number | undefined;
      /** Next offset to read per partition, for the partitions this member has read. */
      nextOffsets: Record<number, number>;
    }
  | { kind: 'closed'; atMs: number }
  | { kind: 'failed'; message: string };

function send(event: MemberEvent): Promise<void> {
  // The channel may already be gone when the parent exits; there is nobody left to tell.
  if (!process.connected) return Promise.resolve();
  return new Promise((resolve) => process.send!(event, undefined, {}, () => resolve()));
}

interface ConsumerSlot {
  consumer: Consumer;
  // Invariant: mirrors the consumer's assignment as its rebalance listener saw it change.
  owned: Set<number>;
  running: Promise<void> | undefined;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '') as MemberConfig;
  const slots: ConsumerSlot[] = Array.from({ length: config.consumers }, (_, index) => ({
    consumer: new Consumer({
      bootstrapServers: config.bootstrapServers,
      clientId: config.consumers === 1 ? config.clientId : `${config.clientId}-${index + 1}`,
      groupId: config.groupId,
      sessionTimeoutMs: config.sessionTimeoutMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      partitionAssignmentStrategy: config.partitionAssignmentStrategy,
      autoOffsetReset: 'earliest',
    }),
    owned: new Set<number>(),
    running: undefined,
  }));
  // With several consumers in this process the report is their union (used for throughput only).
  const reportAssignment = (): void => {
    const owned = slots.flatMap((slot) => [...slot.owned]).sort((a, b) => a - b);
    void send({ kind: 'assignment', owned, atMs: Date.now() });
  };
  const progress = { records: 0, bytes: 0, firstRecordMs: undefined as number | undefined, lastRecordMs: undefined as number | undefined, nextOffsets: {} as Record<number, number> };
  let reportedRecords = -1;
  const reportProgress = (): void => {
    if (progress.records === reportedRecords) return;
    reportedRecords = progress.records;
    void send({ kind: 'progress', ...progress, nextOffsets: { ...progress.nextOffsets } });
  };
  let progressTimer: NodeJS.Timeout | undefined;
  let closing = false;

  const subscribe = (slot: ConsumerSlot): void => {
    const forget = (partitions: TopicPartition[]): void => {
      for (const tp of partitions) if (tp.topic === config.topic) slot.owned.delete(tp.partition);
      reportAssignment();
    };
    slot.consumer.subscribe([config.topic], {
      onPartitionsAssigned: (partitions) => {
        for (const tp of partitions) if (tp.topic === config.topic) slot.owned.add(tp.partition);
        reportAssignment();
      },
      onPartitionsRevoked: forget,
      onPartitionsLost: forget,
    });
    slot.running = slot.consumer.run({
      pollTimeoutMs: POLL_TIMEOUT_MS,
      eachBatch: ({ partition, messages }) => {
        const nowMs = Date.now();
        progress.firstRecordMs ??= nowMs;
        progress.lastRecordMs = nowMs;
        progress.records += messages.length;
        for (const message of messages) progress.bytes += (message.value?.length ?? 0) + (message.key?.length ?? 0);
        progress.nextOffsets[partition] = Math.max(progress.nextOffsets[partition] ?? 0, messages[messages.length - 1]!.offset + 1);
      },
    });
    slot.running.catch((error: unknown) => {
      if (!closing) void send({ kind: 'failed', message: (error as Error)?.message ?? String(error) }).then(() => process.exit(1));
    });
  };

  process.on('disconnect', () => process.exit(0));
  process.on('message', (command: MemberCommand) => {
    switch (command.kind) {
      case 'subscribe': {
        const atMs = Date.now();
        for (const slot of slots) subscribe(slot);
        void send({ kind: 'subscribed', atMs });
        progressTimer = setInterval(reportProgress, config.progressIntervalMs);
        return;
      }
      case 'close': {
        closing = true;
        void (async () => {
          await Promise.all(slots.map((slot) => slot.consumer.close()));
          await Promise.all(slots.map((slot) => slot.running?.catch(() => undefined)));
          if (progressTimer) clearInterval(progressTimer);
          reportProgress();
          // Exit only once the last report is on its way: the parent reads it after our exit.
          await send({ kind: 'closed', atMs: Date.now() });
          process.exit(0);
        })();
        return;
      }
      default:
        assertNever(command, 'member command');
    }
  });
  void send({ kind: 'ready' });
}

main().catch((error: unknown) => {
  void send({ kind: 'failed', message: (error as Error)?.stack ?? String(error) }).then(() => process.exit(1));
});
