import { describe, expect, it } from 'vitest';
import { NodeMetrics, REQUEST_DURATION_BUCKETS_SECONDS } from '../../src/index.js';

describe('NodeMetrics', () => {
  it('renders cumulative histogram buckets, sum and count, and only label sets that were updated', async () => {
    const metrics = new NodeMetrics({ collectProcessMetrics: false });
    const duration = metrics.requestDurationOf('RaftkaClient', 'Fetch');
    metrics.requestDurationOf('RaftkaClient', 'Metadata'); // bound, never observed
    for (const seconds of [0.0002, 0.003, 0.003, 100]) duration.observe(seconds);
    const text = await metrics.render();
    const series = (le: string) => `raftka_request_duration_seconds_bucket{le="${le}",service="RaftkaClient",method="Fetch"}`;
    const value = (name: string) => Number(text.split('\n').find((line) => line.startsWith(`${name} `))?.split(' ')[1]);
    expect(text).toContain('# TYPE raftka_request_duration_seconds histogram');
    expect(value(series('0.0005'))).toBe(1);
    expect(value(series('0.005'))).toBe(3);
    expect(value(series(String(REQUEST_DURATION_BUCKETS_SECONDS.at(-1))))).toBe(3);
    expect(value(series('+Inf'))).toBe(4);
    expect(value('raftka_request_duration_seconds_count{service="RaftkaClient",method="Fetch"}')).toBe(4);
    expect(value('raftka_request_duration_seconds_sum{service="RaftkaClient",method="Fetch"}')).toBeCloseTo(100.0062, 6);
    expect(text).not.toContain('method="Metadata"');
    expect(text).toContain('# TYPE raftka_isr_shrinks_total counter');
    expect(value('raftka_isr_shrinks_total')).toBe(0);
  });
});
