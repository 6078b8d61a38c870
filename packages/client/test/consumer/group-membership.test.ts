import { ErrorCode } from '@raftka/protocol';
import { describe, expect, it } from 'vitest';
import type { ClientRuntime, TopicPartition } from '../../src/cluster-client.js';
import { rangeAssignor } from '../../src/consumer/assignors/range.js';
import { decodeSubscription } from '../../src/consumer/assignors/consumer-protocol.js';
import type { CoordinatorClient } from '../../src/consumer/coordinator-client.js';
import { GroupMembership, type ReceivedAssignment } from '../../src/consumer/group-membership.js';
import type * as M from '../../src/network/client-messages.js';
import { ManualTime } from '../fake-timers.js';

const HEARTBEAT_INTERVAL_MS = 100;

/** A scripted coordinator: a one-member group whose heartbeat answers the test chooses. */
function setup(options: { groupInstanceId?: string; heartbeatErrorCode?: () => number; pollIntervalExceeded?: () => boolean } = {}) {
  const time = new ManualTime();
  const runtime: ClientRuntime = { clock: time.clock, random: () => 0.5, timers: time };
  const calls: { method: string; request: unknown }[] = [];
  const coordinator = {
    markUnknown: () => undefined,
    backoffMs: () => 10,
    call: async (method: string, request: unknown): Promise<unknown> => {
      calls.push({ method, request });
      switch (method) {
        case 'JoinGroup': {
          const join = request as M.JoinGroupRequest;
          if (join.memberId === '' && join.groupInstanceId === undefined) return { errorCode: ErrorCode.MEMBER_ID_REQUIRED, errorMessage: '', memberId: 'm-1' };
          const memberId = join.memberId || 'm-static';
          return {
            errorCode: 0,
            errorMessage: '',
            generationId: 1,
            protocolType: 'consumer',
            protocolName: 'range',
            leader: memberId,
            skipAssignment: false,
            memberId,
            members: [{ memberId, metadata: join.protocols[0]!.metadata }],
          };
        }
        case 'SyncGroup': {
          const sync = request as M.SyncGroupRequest;
          return { errorCode: 0, errorMessage: '', protocolType: 'consumer', protocolName: 'range', assignment: sync.assignments[0]!.assignment };
        }
        case 'Heartbeat':
          return { errorCode: options.heartbeatErrorCode?.() ?? 0, errorMessage: '' };
        case 'LeaveGroup':
          return { errorCode: 0, errorMessage: '', members: [] };
        default:
          throw new Error(`unexpected ${method}`);
      }
    },
  } as unknown as CoordinatorClient;
  const assignments: ReceivedAssignment[] = [];
  const lost: string[] = [];
  const membership = new GroupMembership(
    coordinator,
    runtime,
    {
      groupId: 'g',
      groupInstanceId: options.groupInstanceId,
      sessionTimeoutMs: 1000,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      maxPollIntervalMs: 5000,
      requestTimeoutMs: 1000,
      assignors: [rangeAssignor],
    },
    {
      subscribedTopics: async () => ['orders'],
      ownedPartitions: () => [] as TopicPartition[],
      partitionCounts: async () => new Map([['orders', 2]]),
      onAssignment: (assignment) => void assignments.push(assignment),
      onLost: (reason) => void lost.push(reason),
      onFatal: (error) => {
        throw error;
      },
      pollIntervalExceeded: options.pollIntervalExceeded ?? (() => false),
    },
  );
  const count = (method: string) => calls.filter((call) => call.method === method).length;
  return { time, membership, calls, assignments, lost, count };
}

/** Lets the membership's promise chains run (the fake timers fire synchronously). */
const settle = async () => {
  for (let round = 0; round < 10; round += 1) await new Promise<void>((resolve) => setImmediate(resolve));
};

describe('GroupMembership', () => {
  it('joins (KIP-394 member id round trip), assigns as leader, and heartbeats on its own timer', async () => {
    const { time, membership, calls, assignments, count } = setup();
    await membership.startJoin();
    expect(calls.map((call) => call.method)).toEqual(['JoinGroup', 'JoinGroup', 'SyncGroup']);
    expect(decodeSubscription((calls[1]!.request as M.JoinGroupRequest).protocols[0]!.metadata).value.topics).toEqual(['orders']);
    expect((calls[1]!.request as M.JoinGroupRequest).rebalanceTimeoutMs).toBe(5000);
    expect(assignments).toEqual([{ generationId: 1, protocol: 'eager', partitions: [{ topic: 'orders', partition: 0 }, { topic: 'orders', partition: 1 }] }]);
    expect(membership).toMatchObject({ state: 'stable', memberId: 'm-1', generationId: 1, needsJoin: false });
    // Nobody polls here: heartbeats still go out every interval.
    for (let tick = 0; tick < 10; tick += 1) {
      time.advance(HEARTBEAT_INTERVAL_MS);
      await settle();
    }
    expect(count('Heartbeat')).toBe(10);
  });

  it('REBALANCE_IN_PROGRESS asks for a rejoin; UNKNOWN_MEMBER_ID loses the membership and forgets the member id', async () => {
    let answer = ErrorCode.REBALANCE_IN_PROGRESS as number;
    const { time, membership, lost } = setup({ heartbeatErrorCode: () => answer });
    await membership.startJoin();
    time.advance(HEARTBEAT_INTERVAL_MS);
    await settle();
    expect(membership.needsJoin).toBe(true);
    expect(lost).toEqual([]);
    answer = ErrorCode.UNKNOWN_MEMBER_ID;
    time.advance(HEARTBEAT_INTERVAL_MS);
    await settle();
    expect(membership).toMatchObject({ state: 'unjoined', memberId: '', generationId: -1 });
    expect(lost).toHaveLength(1);
  });

  it('a dynamic member that stops polling leaves the group; a static one does not send LeaveGroup (KIP-345)', async () => {
    for (const groupInstanceId of [undefined, 'billing-1']) {
      let stalled = false;
      const { time, membership, lost, count } = setup({ groupInstanceId, pollIntervalExceeded: () => stalled });
      await membership.startJoin();
      stalled = true;
      time.advance(HEARTBEAT_INTERVAL_MS);
      await settle();
      expect(lost).toHaveLength(1);
      expect(membership.state).toBe('unjoined');
      expect(count('LeaveGroup')).toBe(groupInstanceId === undefined ? 1 : 0);
    }
  });
});
