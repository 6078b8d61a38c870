// Drives a GroupCoordinator with explicit time, the way a driver would: it ticks at every
// deadline the core asks for, checks that every request is answered at most once, and keeps
// every record the core asked to persist (in order) for reload tests.
import { expect } from 'vitest';
import {
  GroupCoordinator,
  encodeSubscription,
  type GroupCoordinatorOptions,
  type GroupInput,
  type GroupOutput,
  type GroupRecord,
  type GroupResponse,
  type JoinGroupResponse,
  type SyncGroupResponse,
} from '../../src/group/index.js';

type WithoutRequestId<T> = T extends { requestId: number } ? Omit<T, 'requestId'> : T;

export interface JoinOptions {
  memberId?: string;
  groupInstanceId?: string;
  topics?: string[];
  protocols?: { name: string; metadata: Buffer }[];
  protocolType?: string;
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  clientId?: string;
}

export class Harness {
  core: GroupCoordinator;
  nowMs = 1_000;
  readonly records: GroupRecord[] = [];
  readonly answered = new Map<number, GroupResponse>();
  private nextRequestId = 1;
  private memberCounter = 0;
  readonly options: GroupCoordinatorOptions;

  constructor(options: Partial<GroupCoordinatorOptions> = {}) {
    this.options = {
      groupInitialRebalanceDelayMs: 0,
      newMemberId: (clientId) => `${clientId}-${++this.memberCounter}`,
      ...options,
    };
    this.core = new GroupCoordinator(this.options);
  }

  send(input: WithoutRequestId<GroupInput>): number {
    const requestId = this.nextRequestId++;
    this.apply(this.core.step({ ...input, requestId } as GroupInput, this.nowMs));
    return requestId;
  }

  apply(output: GroupOutput): void {
    this.core.assertInvariants();
    this.records.push(...output.records);
    for (const { requestId, response } of output.responses) {
      expect(this.answered.has(requestId), `request ${requestId} answered twice`).toBe(false);
      this.answered.set(requestId, response);
    }
  }

  expireOffsets(): void {
    this.apply(this.core.step({ type: 'expire-offsets' }, this.nowMs));
  }

  /** Moves time to `targetMs`, ticking at every deadline on the way as a timer would. */
  advanceTo(targetMs: number): void {
    for (;;) {
      const next = this.core.nextDeadlineMs();
      if (next === undefined || next > targetMs) break;
      this.nowMs = Math.max(this.nowMs, next);
      this.apply(this.core.step({ type: 'tick' }, this.nowMs));
    }
    this.nowMs = targetMs;
    this.apply(this.core.step({ type: 'tick' }, this.nowMs));
  }

  advance(ms: number): void {
    this.advanceTo(this.nowMs + ms);
  }

  response(requestId: number): GroupResponse | undefined {
    return this.answered.get(requestId);
  }

  joinResult(requestId: number): JoinGroupResponse {
    const r = this.answered.get(requestId);
    expect(r?.api, `join ${requestId} answered`).toBe('join');
    return r as JoinGroupResponse;
  }

  syncResult(requestId: number): SyncGroupResponse {
    const r = this.answered.get(requestId);
    expect(r?.api, `sync ${requestId} answered`).toBe('sync');
    return r as SyncGroupResponse;
  }

  errorOf(requestId: number): string | undefined {
    const r = this.answered.get(requestId);
    if (r === undefined) return undefined;
    return 'errorCode' in r ? r.errorCode : undefined;
  }

  join(groupId: string, options: JoinOptions = {}): number {
    return this.send({
      type: 'join',
      groupId,
      memberId: options.memberId ?? '',
      groupInstanceId: options.groupInstanceId,
      protocolType: options.protocolType ?? 'consumer',
      protocols: options.protocols ?? [{ name: 'range', metadata: encodeSubscription(options.topics ?? ['orders']) }],
      sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
      rebalanceTimeoutMs: options.rebalanceTimeoutMs ?? 30_000,
      clientId: options.clientId ?? 'client',
      clientHost: '/127.0.0.1',
    });
  }

  /** KIP-394 dance for a dynamic member: first join gets MEMBER_ID_REQUIRED, second joins. */
  joinNew(groupId: string, options: JoinOptions = {}): { memberId: string; requestId: number } {
    const first = this.join(groupId, options);
    const r = this.joinResult(first);
    expect(r.errorCode).toBe('MEMBER_ID_REQUIRED');
    const requestId = this.join(groupId, { ...options, memberId: r.memberId });
    return { memberId: r.memberId, requestId };
  }

  sync(groupId: string, memberId: string, generationId: number, assignments: Record<string, string> = {}, groupInstanceId?: string): number {
    return this.send({
      type: 'sync',
      groupId,
      memberId,
      generationId,
      groupInstanceId,
      assignments: Object.entries(assignments).map(([id, a]) => ({ memberId: id, assignment: Buffer.from(a) })),
    });
  }

  heartbeat(groupId: string, memberId: string, generationId: number, groupInstanceId?: string): string | undefined {
    return this.errorOf(this.send({ type: 'heartbeat', groupId, memberId, generationId, groupInstanceId }));
  }

  commit(groupId: string, memberId: string, generationId: number, offsets: [string, number, number][], groupInstanceId?: string): string[] {
    const id = this.send({
      type: 'commit-offsets',
      groupId,
      memberId,
      generationId,
      groupInstanceId,
      offsets: offsets.map(([topic, partition, offset]) => ({ topic, partition, offset, metadata: `m${offset}` })),
    });
    const r = this.answered.get(id);
    expect(r?.api).toBe('commit-offsets');
    return r!.api === 'commit-offsets' ? r!.partitions.map((p) => p.errorCode) : [];
  }

  state(groupId: string): string {
    return this.core.describeGroups([groupId])[0]!.state;
  }
}
