// Public surface of the node metrics (re-exported by the package index).
export { NodeMetrics, METRIC_PREFIX, REQUEST_DURATION_BUCKETS_SECONDS, type FetcherKind } from './node-metrics.js';
export { instrumentService, instrumentServer, serviceWrapperFor, forEachErrorCode, errorNameOf } from './grpc-instrumentation.js';
export { registerBrokerCollectors, countIsrChanges, committedOffsetsOf, type BrokerMetricsSource, type CommittedOffset, type GroupOffsetsSource } from './broker-collectors.js';
export { registerControllerCollectors, type ControllerMetricsSource } from './controller-collectors.js';
export { controllerReadiness, brokerReadiness, readinessOf, type Readiness, type ControllerReadinessInput, type BrokerReadinessInput } from './readiness.js';
