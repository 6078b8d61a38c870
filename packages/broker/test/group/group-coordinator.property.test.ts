// Random sequences of joins, syncs, heartbeats, commits, leaves, restarts and time against one
// group, with clients that react to responses the way real consumers do. After every step:
//   - generation ids never go down;
//   - a Stable group's assignments all come from its current generation (so at most one
//     generation is Stable at a time) and every member of a Stable group has one;
//   - a commit succeeds only from a client of the current generation;
//   - every request is answered at most once (the harness checks) and nothing due is left undone;
//   - the coordinator's own structural invariants hold (assertInvariants).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GroupResponse } from '../../src/group/index.js';
import { Harness } from './harness.js';

const G = 'prop-group';
const CLIENTS = 4;

type Command =
  | { kind: 'join'; client: number }
  | { kind: 'sync'; client: number }
  | { kind: 'heartbeat'; client: number }
  | { kind: 'commit'; client: number }
  | { kind: 'leave'; client: number }
  | { kind: 'restart'; client: number }
  | { kind: 'resubscribe'; client: number }
  | { kind: 'time'; ms: number };

interface Client {
  index: number;
  /** Clients 0 and 1 are static members. */
  instanceId: string | undefined;
  memberId: string;
  generationId: number;
  /** The members to assign when this client led the last join it saw. */
  toAssign: string[] | undefined;
  topics: string[];
}

const client = fc.integer({ min: 0, max: CLIENTS - 1 });
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: client.map((c) => ({ kind: 'join' as const, client: c })) },
  { weight: 4, arbitrary: client.map((c) => ({ kind: 'sync' as const, client: c })) },
  { weight: 3, arbitrary: client.map((c) => ({ kind: 'heartbeat' as const, client: c })) },
  { weight: 2, arbitrary: client.map((c) => ({ kind: 'commit' as const, client: c })) },
  { weight: 1, arbitrary: client.map((c) => ({ kind: 'leave' as const, client: c })) },
  { weight: 1, arbitrary: client.map((c) => ({ kind: 'restart' as const, client: c })) },
  { weight: 1, arbitrary: client.map((c) => ({ kind: 'resubscribe' as const, client: c })) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 12_000 }).map((ms) => ({ kind: 'time' as const, ms })) },
);

function run(commands: Command[]): void {
  const h = new Harness({ groupInitialRebalanceDelayMs: 2_000 });
  const clients: Client[] = Array.from({ length: CLIENTS }, (_, i) => ({
    index: i,
    instanceId: i < 2 ? `instance-${i}` : undefined,
    memberId: '',
    generationId: -1,
    toAssign: undefined,
    topics: ['orders'],
  }));
  const owner = new Map<number, Client>();
  let seen = 0;
  let lastGeneration = 0;

  // Feeds responses back to the clients that sent the requests, in arrival order.
  const deliver = (): void => {
    const all = [...h.answered.entries()];
    for (; seen < all.length; seen++) {
      const [requestId, response] = all[seen]!;
      const c = owner.get(requestId);
      if (c !== undefined) react(c, response);
    }
  };
  const react = (c: Client, r: GroupResponse): void => {
    if (r.api === 'join') {
      if (r.errorCode === 'MEMBER_ID_REQUIRED' || r.errorCode === 'NONE') c.memberId = r.memberId;
      if (r.errorCode === 'NONE') {
        c.generationId = r.generationId;
        c.toAssign = r.members.length > 0 && !r.skipAssignment ? r.members.map((m) => m.memberId) : undefined;
      }
      if (r.errorCode === 'UNKNOWN_MEMBER_ID' || r.errorCode === 'FENCED_INSTANCE_ID') c.memberId = '';
    }
    if (r.api === 'heartbeat' && r.errorCode === 'UNKNOWN_MEMBER_ID') c.memberId = '';
  };

  const check = (): void => {
    h.core.assertInvariants();
    const d = h.core.describeGroups([G])[0]!;
    if (d.state === 'Dead') return;
    expect(d.generationId).toBeGreaterThanOrEqual(lastGeneration);
    lastGeneration = d.generationId;
    if (d.state === 'Stable') {
      for (const m of d.members) {
        expect(m.assignment.toString(), `member ${m.memberId} of Stable generation ${d.generationId}`).toMatch(
          new RegExp(`^gen:${d.generationId}:`),
        );
      }
    }
    const next = h.core.nextDeadlineMs();
    expect(next === undefined || next > h.nowMs).toBe(true);
  };

  for (const cmd of commands) {
    if (cmd.kind === 'time') {
      h.advance(cmd.ms);
    } else {
      const c = clients[cmd.client]!;
      const track = (requestId: number): void => {
        owner.set(requestId, c);
      };
      switch (cmd.kind) {
        case 'join':
          track(
            h.join(G, {
              memberId: c.memberId,
              groupInstanceId: c.instanceId,
              topics: c.topics,
              sessionTimeoutMs: 10_000,
              rebalanceTimeoutMs: 15_000,
              clientId: `c${c.index}`,
            }),
          );
          break;
        case 'sync': {
          if (c.memberId === '') break;
          const assignments: Record<string, string> = {};
          for (const id of c.toAssign ?? []) assignments[id] = `gen:${c.generationId}:${id}`;
          const id = h.sync(G, c.memberId, c.generationId, assignments, c.instanceId);
          track(id);
          const r = h.response(id);
          if (r?.api === 'sync' && r.errorCode === 'NONE') {
            expect(r.assignment.toString()).toMatch(new RegExp(`^gen:${c.generationId}:`));
          }
          break;
        }
        case 'heartbeat':
          if (c.memberId !== '') track(h.send({ type: 'heartbeat', groupId: G, memberId: c.memberId, generationId: c.generationId, groupInstanceId: c.instanceId }));
          break;
        case 'commit': {
          if (c.memberId === '') break;
          const before = h.core.describeGroups([G])[0]!;
          const errors = h.commit(G, c.memberId, c.generationId, [['orders', c.index, h.nowMs]], c.instanceId);
          // Generation -1 is a commit outside group management, allowed only on an Empty group
          // (or one that does not exist yet, described as Dead).
          if (errors[0] === 'NONE') {
            if (c.generationId < 0) expect(['Empty', 'Dead']).toContain(before.state);
            else expect(c.generationId).toBe(before.generationId);
          }
          break;
        }
        case 'leave':
          if (c.memberId === '') break;
          track(h.send({ type: 'leave', groupId: G, members: [{ memberId: c.memberId, groupInstanceId: c.instanceId }] }));
          c.memberId = '';
          break;
        case 'restart':
          // A process restart: the client forgets its member id (a static one keeps its instance id)
          // and joins again at once.
          c.memberId = '';
          c.toAssign = undefined;
          track(h.join(G, { groupInstanceId: c.instanceId, topics: c.topics, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 15_000, clientId: `c${c.index}` }));
          break;
        case 'resubscribe':
          c.topics = c.topics.length === 1 ? ['orders', 'refunds'] : ['orders'];
          break;
        default: {
          const never: never = cmd;
          throw new Error(`unknown command ${JSON.stringify(never)}`);
        }
      }
    }
    deliver();
    check();
  }
}

describe('group coordinator properties', () => {
  it('holds when static members restart while a generation is being synced', () => {
    // Both static members join and the join completes (the initial delay is extended once):
    // the group sits in CompletingRebalance.
    const warmup: Command[] = [{ kind: 'join', client: 0 }, { kind: 'join', client: 1 }, { kind: 'time', ms: 4_000 }];
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 20 }), (commands) => run([...warmup, ...commands])),
      { numRuns: 200 },
    );
  });

  it('keeps generations monotonic and Stable groups fully assigned from one generation', () => {
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 60 }), (commands) => run(commands)),
      { numRuns: 300 },
    );
  });

  it('the same holds with a subscription change per run', () => {
    // A directed mix: everyone joins, syncs twice, then random events (more Stable states reached).
    const warmup: Command[] = [];
    for (let i = 0; i < CLIENTS; i++) warmup.push({ kind: 'join', client: i }, { kind: 'join', client: i });
    warmup.push({ kind: 'time', ms: 4_000 });
    for (let round = 0; round < 2; round++) for (let i = 0; i < CLIENTS; i++) warmup.push({ kind: 'sync', client: i });
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 40 }), (commands) => run([...warmup, ...commands])),
      { numRuns: 200 },
    );
  });
});
