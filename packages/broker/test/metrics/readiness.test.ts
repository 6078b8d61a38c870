import { describe, expect, it } from 'vitest';
import { brokerReadiness, controllerReadiness, readinessOf } from '../../src/index.js';

describe('controllerReadiness', () => {
  const base = { nodeId: 1, isActiveController: false, lastAppliedOffset: 9, highWatermark: 10 };

  it('is missing a leader while the quorum knows none', () => {
    expect(controllerReadiness({ ...base, leaderId: undefined })).toEqual([expect.stringContaining('no known leader')]);
  });

  it('is ready on the leader only once it is the active controller', () => {
    expect(controllerReadiness({ ...base, leaderId: 1 })).toHaveLength(1);
    expect(controllerReadiness({ ...base, leaderId: 1, isActiveController: true })).toEqual([]);
  });

  it('is ready on a follower once it has applied everything below the high watermark', () => {
    expect(controllerReadiness({ ...base, leaderId: 2 })).toEqual([]);
    expect(controllerReadiness({ ...base, leaderId: 2, lastAppliedOffset: 7 })).toEqual([expect.stringContaining('up to offset 7')]);
  });
});

describe('brokerReadiness', () => {
  const base = { nowMs: 10_000, sessionTimeoutMs: 3_000, lastControllerResponseMs: 9_500 };

  it('is ready when registered, unfenced, and the controller answered within the session timeout', () => {
    expect(brokerReadiness({ ...base, lifecycleState: 'active' })).toEqual([]);
  });

  it('names the lifecycle state that is missing', () => {
    expect(brokerReadiness({ ...base, lifecycleState: 'starting' })).toEqual([expect.stringContaining('not registered')]);
    expect(brokerReadiness({ ...base, lifecycleState: 'fenced' })).toEqual([expect.stringContaining('fenced')]);
    expect(brokerReadiness({ ...base, lifecycleState: 'shutting-down' })).toEqual(['broker: shutting-down']);
  });

  it('is not ready once no controller has answered for longer than the session timeout', () => {
    expect(brokerReadiness({ ...base, lifecycleState: 'active', lastControllerResponseMs: 6_000 })).toEqual([expect.stringContaining('no controller has answered for 4000 ms')]);
  });

  it('readinessOf combines the roles', () => {
    expect(readinessOf([])).toEqual({ ready: true });
    expect(readinessOf(['a', 'b'])).toEqual({ ready: false, missing: ['a', 'b'] });
  });
});
