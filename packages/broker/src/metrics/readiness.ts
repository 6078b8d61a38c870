// When a node is ready to take traffic (the admin listener's /readyz), decided from plain values
// so that the rules are tested without processes.
//
//   controller: the quorum knows a leader, and this node is the active controller or has applied
//               the committed metadata log (everything below the high watermark);
//   broker:     registered with the controller and unfenced (KIP-631: the controller unfences a
//               broker only once it has caught up with the metadata log), and the controller has
//               answered within the broker session timeout — after that the controller fences
//               the broker, so a broker that cannot reach any controller must not call itself ready;
//   combined:   both.
//
// A node that is not ready says what is missing, one line per check, so an operator reading the
// 503 body knows where to look.

import { assertNever } from '@raftka/protocol';
import type { BrokerLifecycleState } from '@raftka/quorum';

export type Readiness = { ready: true } | { ready: false; missing: string[] };

export interface ControllerReadinessInput {
  /** The quorum leader this node knows, undefined while none is. */
  leaderId: number | undefined;
  nodeId: number;
  /** This node is the active controller (the leader, and it has applied its own epoch). */
  isActiveController: boolean;
  /** Offset of the last applied metadata entry, -1 when none. */
  lastAppliedOffset: number;
  /** The metadata log's high watermark (exclusive: entries below it are committed). */
  highWatermark: number;
}

export interface BrokerReadinessInput {
  lifecycleState: BrokerLifecycleState;
  /** Wall-clock time of the controller's last answer, undefined before the first. */
  lastControllerResponseMs: number | undefined;
  nowMs: number;
  /** broker.session.timeout.ms. */
  sessionTimeoutMs: number;
}

export function controllerReadiness(input: ControllerReadinessInput): string[] {
  if (input.leaderId === undefined) return ['controller: the metadata quorum has no known leader (an election is running or too few voters are up)'];
  if (input.leaderId === input.nodeId) {
    return input.isActiveController ? [] : ['controller: this node leads the quorum but has not applied the log of earlier epochs yet'];
  }
  const committedEnd = input.highWatermark;
  if (input.lastAppliedOffset + 1 < committedEnd) {
    return [`controller: applied the metadata log up to offset ${input.lastAppliedOffset}, the committed end is ${committedEnd - 1}`];
  }
  return [];
}

export function brokerReadiness(input: BrokerReadinessInput): string[] {
  const missing: string[] = [];
  switch (input.lifecycleState) {
    case 'active':
      break;
    case 'starting':
      missing.push('broker: not registered with the controller yet');
      break;
    case 'fenced':
      missing.push('broker: registered but fenced (catching up with the metadata log, or the controller fenced it)');
      break;
    case 'shutting-down':
    case 'stopped':
      missing.push(`broker: ${input.lifecycleState}`);
      break;
    default:
      assertNever(input.lifecycleState, 'broker lifecycle state');
  }
  const silentMs = input.lastControllerResponseMs === undefined ? undefined : input.nowMs - input.lastControllerResponseMs;
  if (input.lifecycleState === 'active' && (silentMs === undefined || silentMs > input.sessionTimeoutMs)) {
    missing.push(`broker: no controller has answered for ${silentMs ?? '?'} ms (broker.session.timeout.ms=${input.sessionTimeoutMs}); it may be fenced`);
  }
  return missing;
}

/** Combines the checks of the roles a node plays. */
export function readinessOf(missing: readonly string[]): Readiness {
  return missing.length === 0 ? { ready: true } : { ready: false, missing: [...missing] };
}
