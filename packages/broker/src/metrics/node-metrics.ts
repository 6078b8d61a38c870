// The metrics of one node (controller, broker or both), in Prometheus' text format through
// prom-client, served by the node's admin HTTP listener.
//
// Two kinds of metric live here. Most are gauges read on scrape from state the node keeps anyway
// (the metadata image, the quorum, the partition logs: see broker-collectors.ts and
// controller-collectors.ts), so they cost nothing between scrapes. The few that must count events
// — request latency and errors, bytes in and out, ISR changes — are counters on the request path;
// their label children are bound once per method or topic so that a request pays a map lookup
// and an addition, not prom-client's label hashing.
//
// The request-path metrics are this module's own small histogram and counter types, registered in
// the prom-client registry like any metric: prom-client validates and hashes the labels on every
// observation (about a microsecond a call, measured with metrics/bench/instrumentation-bench.ts),
// while a bound child here is a few array increments.
//
// Names follow Prometheus conventions: `raftka_` prefix, base units in the name (`_seconds`,
// `_bytes`), `_total` on counters. The process and Node.js runtime metrics of prom-client come
// with the same prefix (`raftka_process_cpu_seconds_total`, `raftka_nodejs_eventloop_lag_seconds`).

import { Registry, collectDefaultMetrics, type Metric } from 'prom-client';

export const METRIC_PREFIX = 'raftka_';

/**
 * Request latency buckets in seconds: from sub-millisecond answers (Metadata, a cached fetch) to
 * long polls (fetch.max.wait.ms up to FETCH_MAX_WAIT_MS_LIMIT ends in the last bucket).
 */
export const REQUEST_DURATION_BUCKETS_SECONDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Who fetched the bytes a broker served: consumers (replica id -1) or follower replicas. */
export type FetcherKind = 'consumer' | 'follower';

/** A counter child bound to one label set (what `Counter.labels()` returns). */
export interface BoundCounter {
  inc(value?: number): void;
}

/** A histogram child bound to one label set. */
export interface BoundHistogram {
  observe(value: number): void;
}

type Labels = Readonly<Record<string, string>>;

interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

/**
 * A counter or histogram of fixed label names whose children are bound once and then updated
 * with plain arithmetic; the registry reads it through `get()` like a prom-client metric.
 * Children appear in the output from their first update on.
 */
abstract class FastMetric<Child> {
  // Invariant: one entry per label set updated at least once; bounded by the callers' label sets.
  protected readonly children = new Map<string, { labels: Labels; child: Child }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
  ) {}

  protected childOf(labels: Labels, create: () => Child): Child {
    const key = Object.values(labels).join('\u0000');
    let entry = this.children.get(key);
    if (entry === undefined) this.children.set(key, (entry = { labels, child: create() }));
    return entry.child;
  }

  protected abstract values(): MetricValue[];

  get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: 'sum' } {
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: 'sum' };
  }
}

class FastCounter extends FastMetric<{ value: number }> {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }

  bind(labels: Labels): BoundCounter {
    let child: { value: number } | undefined;
    return {
      inc: (value = 1) => {
        child ??= this.childOf(labels, () => ({ value: 0 }));
        child.value += value;
      },
    };
  }

  protected values(): MetricValue[] {
    return [...this.children.values()].map(({ labels, child }) => ({ labels, value: child.value }));
  }
}

interface HistogramChild {
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last slot is above every bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

class FastHistogram extends FastMetric<HistogramChild> {
  constructor(
    name: string,
    help: string,
    private readonly bounds: readonly number[],
  ) {
    super(name, help, 'histogram');
  }

  bind(labels: Labels): BoundHistogram {
    let child: HistogramChild | undefined;
    const bounds = this.bounds;
    return {
      observe: (value) => {
        child ??= this.childOf(labels, () => ({ counts: new Float64Array(bounds.length + 1), sum: 0, count: 0 }));
        let index = 0;
        while (index < bounds.length && value > bounds[index]!) index++;
        child.counts[index]! += 1;
        child.sum += value;
        child.count += 1;
      },
    };
  }

  protected values(): MetricValue[] {
    const values: MetricValue[] = [];
    for (const { labels, child } of this.children.values()) {
      let cumulative = 0;
      this.bounds.forEach((bound, index) => {
        cumulative += child.counts[index]!;
        values.push({ labels: { le: String(bound), ...labels }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...labels }, value: child.count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: child.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: child.count, metricName: `${this.name}_count` });
    }
    return values;
  }
}

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly requestDuration: FastHistogram;
  private readonly requestErrors: FastCounter;
  private readonly bytesIn: FastCounter;
  private readonly bytesOut: FastCounter;
  private readonly isrShrinks: BoundCounter;
  private readonly isrExpands: BoundCounter;
  // Bound children, so the hot path skips label hashing. Bounded by the number of topics (bytes)
  // and of methods x error codes (errors), both small and fixed by the cluster.
  private readonly bytesInByTopic = new Map<string, BoundCounter>();
  private readonly bytesOutByTopic = new Map<string, BoundCounter>();
  private readonly errorsByKey = new Map<string, BoundCounter>();

  constructor(options: { collectProcessMetrics?: boolean } = {}) {
    if (options.collectProcessMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    const register = <T extends FastMetric<unknown>>(metric: T): T => {
      this.registry.registerMetric(metric as unknown as Metric);
      return metric;
    };
    this.requestDuration = register(
      new FastHistogram(
        `${METRIC_PREFIX}request_duration_seconds`,
        'Time from receiving a gRPC call to answering it (for a stream: to its end; ProduceStream: per request), per service and method; _count is the request count.',
        REQUEST_DURATION_BUCKETS_SECONDS,
      ),
    );
    this.requestErrors = register(
      new FastCounter(
        `${METRIC_PREFIX}request_errors_total`,
        'Errors answered, by Kafka error name: each item of a response carrying an error code counts once; a call failed with a gRPC status counts as its Kafka equivalent.',
      ),
    );
    this.bytesIn = register(
      new FastCounter(`${METRIC_PREFIX}bytes_in_total`, 'Record batch bytes producers sent that the leader accepted (appended, or answered as a retried duplicate), per topic.'),
    );
    this.bytesOut = register(new FastCounter(`${METRIC_PREFIX}bytes_out_total`, 'Record batch bytes served by fetches, per topic and fetcher kind (consumer or follower).'));
    const shrinks = register(new FastCounter(`${METRIC_PREFIX}isr_shrinks_total`, 'Committed ISR changes proposed by this leader that removed replicas.'));
    const expands = register(new FastCounter(`${METRIC_PREFIX}isr_expands_total`, 'Committed ISR changes proposed by this leader that added replicas.'));
    this.isrShrinks = shrinks.bind({});
    this.isrExpands = expands.bind({});
    // Present from the start (at 0), so that a rate() over them works before the first change.
    this.isrShrinks.inc(0);
    this.isrExpands.inc(0);
  }

  /** The text exposition of every metric (collectors run now). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The latency histogram child of one method (bind once, observe per call). */
  requestDurationOf(service: string, method: string): BoundHistogram {
    return this.requestDuration.bind({ service, method });
  }

  recordError(service: string, method: string, error: string): void {
    const key = `${service}\u0000${method}\u0000${error}`;
    let child = this.errorsByKey.get(key);
    if (child === undefined) this.errorsByKey.set(key, (child = this.requestErrors.bind({ service, method, error })));
    child.inc();
  }

  recordBytesIn(topic: string, bytes: number): void {
    let child = this.bytesInByTopic.get(topic);
    if (child === undefined) this.bytesInByTopic.set(topic, (child = this.bytesIn.bind({ topic })));
    child.inc(bytes);
  }

  recordBytesOut(topic: string, fetcher: FetcherKind, bytes: number): void {
    const key = `${fetcher}\u0000${topic}`;
    let child = this.bytesOutByTopic.get(key);
    if (child === undefined) this.bytesOutByTopic.set(key, (child = this.bytesOut.bind({ topic, fetcher })));
    child.inc(bytes);
  }

  recordIsrChange(change: { shrunk: boolean; expanded: boolean }): void {
    if (change.shrunk) this.isrShrinks.inc();
    if (change.expanded) this.isrExpands.inc();
  }
}
