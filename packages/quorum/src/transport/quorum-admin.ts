// Administrative access to a running quorum from outside it (the `raftka quorum` commands, the
// integration tests and the benchmark): describe the quorum's replication status and, as a
// diagnostic, append records through the leader and read committed entries back.

import { NotLeaderError } from '@raftka/protocol';
import { decodeMetadataRecord, encodeMetadataRecord } from '../metadata/metadata-records.js';
import type { NodeId } from '../raft/types.js';
import { QuorumClient } from './grpc-transport.js';
import type { DescribedQuorum, ReadCommittedResult } from './quorum-proto.js';

/** NOT_LEADER redirects followed by one append before giving up (a leader change mid-call needs one or two). */
const REDIRECTS_MAX = 3;

export interface ReplicaStatus {
  nodeId: NodeId;
  role: 'leader' | 'follower' | 'observer';
  /** Undefined when the leader has not heard from the replica in its epoch. */
  logEndOffset: number | undefined;
  /** Entries the replica is behind the leader's log end (undefined when its log end is unknown). */
  lag: number | undefined;
  lastFetchAgoMs: number | undefined;
  lastCaughtUpAgoMs: number | undefined;
}

export interface QuorumStatus {
  leaderId: NodeId | undefined;
  epoch: number;
  highWatermark: number;
  logStartOffset: number;
  answeredBy: NodeId;
  replicas: ReplicaStatus[];
}

/** Turns a description (as the leader sees it) into per-replica lag and ages. */
export function quorumStatusFrom(description: DescribedQuorum): QuorumStatus {
  const leaderEnd =
    description.voters.find((voter) => voter.nodeId === description.leaderId)?.logEndOffset ?? description.logEndOffset;
  const age = (time: number | undefined): number | undefined => (time === undefined ? undefined : Math.max(0, description.nowMs - time));
  const replica = (role: ReplicaStatus['role']) => (entry: DescribedQuorum['voters'][number]): ReplicaStatus => ({
    nodeId: entry.nodeId,
    role: role === 'follower' && entry.nodeId === description.leaderId ? 'leader' : role,
    logEndOffset: entry.logEndOffset < 0 ? undefined : entry.logEndOffset,
    lag: entry.logEndOffset < 0 ? undefined : Math.max(0, leaderEnd - entry.logEndOffset),
    lastFetchAgoMs: entry.nodeId === description.leaderId ? 0 : age(entry.lastFetchTimeMs),
    lastCaughtUpAgoMs: entry.nodeId === description.leaderId ? 0 : age(entry.lastCaughtUpTimeMs),
  });
  return {
    leaderId: description.leaderId,
    epoch: description.epoch,
    highWatermark: description.highWatermark,
    logStartOffset: description.logStartOffset,
    answeredBy: description.answeredBy,
    replicas: [...description.voters.map(replica('follower')), ...description.observers.map(replica('observer'))],
  };
}

export class QuorumAdmin {
  private readonly clients = new Map<string, QuorumClient>();

  constructor(
    private readonly bootstrapAddress: string,
    private readonly timeoutMs = 5_000,
  ) {}

  /**
   * The address the caller named waits for its channel to connect (it may be starting); an
   * address learned from a NOT_LEADER redirect fails fast, as it may name a leader that just died.
   */
  private client(address: string, waitForReady = true): QuorumClient {
    const key = `${address}|${waitForReady}`;
    let client = this.clients.get(key);
    if (!client) {
      client = new QuorumClient(address, waitForReady);
      this.clients.set(key, client);
    }
    return client;
  }

  /** The node asked forwards to the leader when it knows one. */
  async describe(): Promise<QuorumStatus> {
    return quorumStatusFrom(await this.client(this.bootstrapAddress).describeQuorum(this.timeoutMs));
  }

  /**
   * Appends one batch and waits for its commit, following NOT_LEADER redirects. Each payload is
   * wrapped in a NoOp metadata record, so the controllers' state machine applies it as "nothing".
   */
  async append(payloads: Uint8Array[], address = this.bootstrapAddress): Promise<{ offset: number; epoch: number; leaderAddress: string }> {
    const records = payloads.map((payload) => encodeMetadataRecord({ type: 'noOp', payload }));
    let target = address;
    for (let attempt = 0; ; attempt++) {
      const result = await this.client(target, attempt === 0).appendRecords(records, this.timeoutMs);
      if (result.errorCode === 'NONE') return { offset: result.offset, epoch: result.epoch, leaderAddress: target };
      if (result.leaderAddress === '' || attempt >= REDIRECTS_MAX || result.leaderAddress === target) {
        throw new NotLeaderError({
          ...(result.leaderId === undefined ? {} : { leaderId: result.leaderId }),
          ...(result.leaderAddress ? { leaderAddress: result.leaderAddress } : {}),
          epoch: result.epoch,
          message: result.errorMessage || undefined,
        });
      }
      target = result.leaderAddress;
    }
  }

  /**
   * Reads committed entries of the node at `address` (the bootstrap node by default). NoOp records
   * (what `append` writes) come back as their payloads; other records as their encoded bytes.
   */
  async readCommitted(fromOffset: number, maxEntries: number, address = this.bootstrapAddress): Promise<ReadCommittedResult> {
    const result = await this.client(address).readCommitted(fromOffset, maxEntries, this.timeoutMs);
    for (const entry of result.entries) {
      if (entry.payload.kind !== 'data') continue;
      entry.payload.records = entry.payload.records.map((bytes) => {
        const record = decodeMetadataRecord(bytes);
        return record.type === 'noOp' ? record.payload : bytes;
      });
    }
    return result;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
