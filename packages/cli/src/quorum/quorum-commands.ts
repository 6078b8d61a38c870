// `raftka quorum describe` and `raftka quorum append`: thin wrappers over QuorumAdmin.

import { randomBytes } from 'node:crypto';
import { QuorumAdmin, type QuorumStatus } from '@raftka/quorum';

function formatAgo(ms: number | undefined): string {
  return ms === undefined ? '-' : `${ms} ms`;
}

/** A fixed-width table, like kafka-metadata-quorum's `describe --replication`. */
export function formatQuorumStatus(status: QuorumStatus): string {
  const lines = [
    `LeaderId:       ${status.leaderId ?? 'none'}`,
    `LeaderEpoch:    ${status.epoch}`,
    `HighWatermark:  ${status.highWatermark}`,
    `LogStartOffset: ${status.logStartOffset}`,
    `CurrentVoters:  [${status.replicas.filter((replica) => replica.role !== 'observer').map((replica) => replica.nodeId).join(',')}]`,
    `CurrentObservers: [${status.replicas.filter((replica) => replica.role === 'observer').map((replica) => replica.nodeId).join(',')}]`,
    '',
  ];
  const header = ['NodeId', 'Role', 'LogEndOffset', 'Lag', 'LastFetch', 'LastCaughtUp'];
  const rows = status.replicas.map((replica) => [
    String(replica.nodeId),
    replica.role,
    replica.logEndOffset === undefined ? '-' : String(replica.logEndOffset),
    replica.lag === undefined ? '-' : String(replica.lag),
    formatAgo(replica.lastFetchAgoMs),
    formatAgo(replica.lastCaughtUpAgoMs),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  for (const row of [header, ...rows]) lines.push(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd());
  return lines.join('\n');
}

export async function describeCommand(options: { bootstrapController: string; json?: boolean }): Promise<void> {
  const admin = new QuorumAdmin(options.bootstrapController);
  try {
    const status = await admin.describe();
    // JSON keeps unknown values as null rather than dropping the key.
    const json = (): string => JSON.stringify(status, (_key, value: unknown) => (value === undefined ? null : value));
    process.stdout.write((options.json ? json() : formatQuorumStatus(status)) + '\n');
  } finally {
    admin.close();
  }
}

export async function appendCommand(options: {
  bootstrapController: string;
  count: number;
  recordBytes: number;
  batchRecords: number;
  value?: string;
}): Promise<void> {
  const admin = new QuorumAdmin(options.bootstrapController);
  try {
    let remaining = options.count;
    let address = options.bootstrapController;
    while (remaining > 0) {
      const size = Math.min(remaining, options.batchRecords);
      const records = Array.from({ length: size }, () =>
        options.value === undefined ? randomBytes(options.recordBytes) : Buffer.from(options.value),
      );
      const result = await admin.append(records, address);
      address = result.leaderAddress;
      process.stdout.write(`${JSON.stringify({ offset: result.offset, epoch: result.epoch, records: size })}\n`);
      remaining -= size;
    }
  } finally {
    admin.close();
  }
}
