// Request metrics for any gRPC service, added by wrapping the implementation object before
// `server.addService`: one wrapper for the broker's services (RaftkaClient, RaftkaAdmin,
// RaftkaGroups) and the controller's (QuorumService, ControllerService).
//
// Per call it records the duration in raftka_request_duration_seconds{service,method} (unary and
// client-streaming calls: until the callback answers; server-streaming and bidi calls: until the
// stream finishes, is cancelled or fails) and counts errors by Kafka error name. Raftka services
// answer operational failures inside the response (`errorCode` per item, or an `error` object
// with a numeric `code`, see proto/client.proto and proto/controller.proto), so the wrapper walks
// the response for non-zero codes; gRPC status failures (bugs, malformed calls) count too.
//
// The wrapper never changes what a handler answers: it observes the arguments it passes on.
// RaftkaClient Produce and Fetch also feed the byte counters (bytes in, bytes out).

import type * as grpc from '@grpc/grpc-js';
import { ErrorCode } from '@raftka/protocol';
import type { ServiceWrapper } from '@raftka/quorum';
import type { BoundHistogram, NodeMetrics } from './node-metrics.js';

/**
 * How deep the error walk descends into a response (request > topic > partition > field is 4;
 * the slack covers nested errors such as a group's members). Bounded so a deep message costs
 * no more than a few levels of property visits.
 */
export const ERROR_WALK_DEPTH_MAX = 6;

const ERROR_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(ErrorCode).map(([name, code]) => [code as number, name]));

/** gRPC status code numbers (grpc.status) -> the Kafka error a client meets for them. */
const STATUS_ERRORS: Readonly<Record<number, string>> = {
  3: 'INVALID_REQUEST', // INVALID_ARGUMENT
  4: 'REQUEST_TIMED_OUT', // DEADLINE_EXCEEDED
  8: 'MESSAGE_TOO_LARGE', // RESOURCE_EXHAUSTED
  14: 'NETWORK_EXCEPTION', // UNAVAILABLE
};

export function errorNameOf(code: number): string {
  return ERROR_NAMES.get(code) ?? `ERROR_CODE_${code}`;
}

function statusErrorName(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return (typeof code === 'number' ? STATUS_ERRORS[code] : undefined) ?? 'UNKNOWN_SERVER_ERROR';
}

/** Calls `visit` with every non-zero error code in a response message (see the module header). */
export function forEachErrorCode(message: unknown, visit: (code: number) => void, depth = 0): void {
  if (depth > ERROR_WALK_DEPTH_MAX || typeof message !== 'object' || message === null || ArrayBuffer.isView(message)) return;
  if (Array.isArray(message)) {
    for (const item of message) forEachErrorCode(item, visit, depth + 1);
    return;
  }
  for (const key in message) {
    const value = (message as Record<string, unknown>)[key];
    if (key === 'errorCode') {
      if (typeof value === 'number' && value !== 0) visit(value);
    } else if (key === 'error' && typeof value === 'object' && value !== null && typeof (value as { code?: unknown }).code === 'number') {
      const code = (value as { code: number }).code;
      if (code !== 0) visit(code);
    } else if (typeof value === 'object' && value !== null) {
      forEachErrorCode(value, visit, depth + 1);
    }
  }
}

// ---- RaftkaClient payload meters (wire shapes of proto/client.proto, camelCase) ----

interface ProduceShape {
  topicData?: { name: string; partitionData?: { index: number; records?: Uint8Array | null }[] | null }[] | null;
}
interface ProduceResponseShape {
  responses?: { name: string; partitionResponses?: { index: number; errorCode: number }[] | null }[] | null;
}
interface FetchShape {
  replicaId: number;
}
interface FetchResponseShape {
  responses?: { topic: string; partitions?: { errorCode?: number; records?: Uint8Array | null }[] | null }[] | null;
}

type PayloadObserver = (metrics: NodeMetrics, request: unknown, response: unknown) => void;
type ErrorFinder = (message: unknown, visit: (code: number) => void) => void;

/**
 * Produce answers: the error codes sit only at responses[].partitionResponses[].errorCode. The
 * hot methods get a finder that reads just those fields; the generic walk visits every field of
 * every item and would cost a few microseconds per large answer.
 */
function produceErrors(message: unknown, visit: (code: number) => void): void {
  for (const topic of (message as ProduceResponseShape).responses ?? []) {
    for (const partition of topic.partitionResponses ?? []) if (partition.errorCode !== 0) visit(partition.errorCode);
  }
}

/** Fetch answers: a whole-request errorCode and responses[].partitions[].errorCode. */
function fetchErrors(message: unknown, visit: (code: number) => void): void {
  const response = message as FetchResponseShape & { errorCode?: number };
  if (typeof response.errorCode === 'number' && response.errorCode !== 0) visit(response.errorCode);
  for (const topic of response.responses ?? []) {
    for (const partition of topic.partitions ?? []) if (typeof partition.errorCode === 'number' && partition.errorCode !== 0) visit(partition.errorCode);
  }
}

/** Keyed by the method's full gRPC path; methods not listed use the generic walk. */
const ERROR_FINDERS: ReadonlyMap<string, ErrorFinder> = new Map([
  ['/raftka.client.v1.RaftkaClient/Produce', produceErrors],
  ['/raftka.client.v1.RaftkaClient/ProduceStream', produceErrors],
  ['/raftka.client.v1.RaftkaClient/Fetch', fetchErrors],
  ['/raftka.client.v1.RaftkaClient/FetchStream', fetchErrors],
]);

function observeProduce(metrics: NodeMetrics, request: unknown, response: unknown): void {
  // Usually no partition failed, and then no per-partition lookup is needed.
  let failed: Set<string> | undefined;
  for (const topic of (response as ProduceResponseShape).responses ?? []) {
    for (const partition of topic.partitionResponses ?? []) {
      if (partition.errorCode !== 0) (failed ??= new Set()).add(`${topic.name}\u0000${partition.index}`);
    }
  }
  for (const topic of (request as ProduceShape).topicData ?? []) {
    let bytes = 0;
    for (const partition of topic.partitionData ?? []) {
      if (failed?.has(`${topic.name}\u0000${partition.index}`)) continue;
      bytes += partition.records?.length ?? 0;
    }
    if (bytes > 0) metrics.recordBytesIn(topic.name, bytes);
  }
}

function observeFetch(metrics: NodeMetrics, request: unknown, response: unknown): void {
  const fetcher = (request as FetchShape).replicaId >= 0 ? 'follower' : 'consumer';
  for (const topic of (response as FetchResponseShape).responses ?? []) {
    let bytes = 0;
    for (const partition of topic.partitions ?? []) bytes += partition.records?.length ?? 0;
    if (bytes > 0) metrics.recordBytesOut(topic.topic, fetcher, bytes);
  }
}

/** Keyed by the method's full gRPC path. */
const PAYLOAD_OBSERVERS: ReadonlyMap<string, PayloadObserver> = new Map([
  ['/raftka.client.v1.RaftkaClient/Produce', observeProduce],
  ['/raftka.client.v1.RaftkaClient/ProduceStream', observeProduce],
  ['/raftka.client.v1.RaftkaClient/Fetch', observeFetch],
  ['/raftka.client.v1.RaftkaClient/FetchStream', observeFetch],
]);

/**
 * Bidi streams whose contract answers every request with exactly one response, in request order
 * (proto/client.proto ProduceStream, FetchStream): measured per request, from its arrival to its
 * answer, so they count like the unary call they replace. Other streams are measured as a whole.
 */
const PAIRED_STREAMS: ReadonlySet<string> = new Set(['/raftka.client.v1.RaftkaClient/ProduceStream', '/raftka.client.v1.RaftkaClient/FetchStream']);

// ---- the wrapper ----

/** `/raftka.client.v1.RaftkaClient/Produce` -> `RaftkaClient`. */
function serviceNameOf(methodPath: string): string {
  const qualified = methodPath.split('/')[1] ?? methodPath;
  return qualified.slice(qualified.lastIndexOf('.') + 1);
}

interface MethodProbe {
  service: string;
  method: string;
  duration: BoundHistogram;
  payload: PayloadObserver | undefined;
  findErrors: ErrorFinder;
}

type AnyHandler = (...args: unknown[]) => unknown;
type Callback = (error: unknown, value?: unknown, ...rest: unknown[]) => void;

function nowSeconds(): number {
  return performance.now() / 1000;
}

function recordResponseErrors(metrics: NodeMetrics, probe: MethodProbe, message: unknown): void {
  probe.findErrors(message, (code) => metrics.recordError(probe.service, probe.method, errorNameOf(code)));
}

/** Unary and client-streaming handlers: (call, callback). */
function wrapCallbackHandler(metrics: NodeMetrics, probe: MethodProbe, handler: AnyHandler, unary: boolean): AnyHandler {
  return (call: unknown, callback: unknown) => {
    const startSeconds = nowSeconds();
    const answer: Callback = (error, value, ...rest) => {
      probe.duration.observe(nowSeconds() - startSeconds);
      try {
        if (error) metrics.recordError(probe.service, probe.method, statusErrorName(error));
        else {
          recordResponseErrors(metrics, probe, value);
          if (unary && probe.payload !== undefined) probe.payload(metrics, (call as { request: unknown }).request, value);
        }
      } finally {
        (callback as Callback)(error, value, ...rest);
      }
    };
    return handler(call, answer);
  };
}

/**
 * A paired bidi stream: each request's arrival is queued; each written response answers the
 * oldest one. The listener is attached before the handler's, which ProduceStream's handler
 * attaches in the same turn, so no request reaches one and not the other.
 */
function wrapPairedStreamHandler(metrics: NodeMetrics, probe: MethodProbe, handler: AnyHandler): AnyHandler {
  return (call: unknown) => {
    const stream = call as grpc.ServerDuplexStream<unknown, unknown>;
    // Invariant: one entry per request not answered yet, oldest first. Bounded by the handler's
    // own in-flight limit (it stops reading while that many wait).
    const waiting: { startSeconds: number; request: unknown }[] = [];
    stream.on('data', (request: unknown) => waiting.push({ startSeconds: nowSeconds(), request }));
    stream.once('error', (error: unknown) => metrics.recordError(probe.service, probe.method, statusErrorName(error)));
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    (stream as unknown as { write: (...args: unknown[]) => boolean }).write = (message: unknown, ...rest: unknown[]) => {
      const answered = waiting.shift();
      if (answered !== undefined) {
        probe.duration.observe(nowSeconds() - answered.startSeconds);
        recordResponseErrors(metrics, probe, message);
        probe.payload?.(metrics, answered.request, message);
      }
      return write(message, ...rest);
    };
    return handler(call);
  };
}

/** Server-streaming and bidi handlers: (call); the call is an event emitter with `write`. */
function wrapStreamHandler(metrics: NodeMetrics, probe: MethodProbe, handler: AnyHandler): AnyHandler {
  return (call: unknown) => {
    const startSeconds = nowSeconds();
    const stream = call as grpc.ServerWritableStream<unknown, unknown>;
    let ended = false;
    const end = (error?: unknown): void => {
      if (ended) return;
      ended = true;
      probe.duration.observe(nowSeconds() - startSeconds);
      if (error !== undefined) metrics.recordError(probe.service, probe.method, statusErrorName(error));
    };
    stream.once('finish', () => end());
    // A cancelled stream is the caller going away (a broker session ending with its broker), not an error.
    stream.once('cancelled', () => end());
    stream.once('error', (error: unknown) => end(error));
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    (stream as unknown as { write: (...args: unknown[]) => boolean }).write = (message: unknown, ...rest: unknown[]) => {
      recordResponseErrors(metrics, probe, message);
      return write(message, ...rest);
    };
    return handler(call);
  };
}

/**
 * The implementation with every method of `definition` measured. Methods the implementation
 * lacks stay absent (grpc-js answers UNIMPLEMENTED for them, as before).
 */
export function instrumentService(
  metrics: NodeMetrics,
  definition: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
): grpc.UntypedServiceImplementation {
  const wrapped: grpc.UntypedServiceImplementation = { ...implementation };
  for (const [name, method] of Object.entries(definition)) {
    // grpc-js looks a handler up under the method name, then under its original (camelCase) name.
    const key = implementation[name] !== undefined ? name : method.originalName;
    if (key === undefined) continue;
    const handler = implementation[key] as AnyHandler | undefined;
    if (handler === undefined) continue;
    const service = serviceNameOf(method.path);
    const probe: MethodProbe = {
      service,
      method: name,
      duration: metrics.requestDurationOf(service, name),
      payload: PAYLOAD_OBSERVERS.get(method.path),
      findErrors: ERROR_FINDERS.get(method.path) ?? ((message, visit) => forEachErrorCode(message, visit)),
    };
    const instrumented = PAIRED_STREAMS.has(method.path)
      ? wrapPairedStreamHandler(metrics, probe, handler)
      : method.responseStream
        ? wrapStreamHandler(metrics, probe, handler)
        : wrapCallbackHandler(metrics, probe, handler, !method.requestStream);
    (wrapped as Record<string, unknown>)[key] = instrumented;
  }
  return wrapped;
}

/** `instrumentService` bound to a node's metrics, in the shape the gRPC servers accept. */
export function serviceWrapperFor(metrics: NodeMetrics): ServiceWrapper {
  return (definition, implementation) => instrumentService(metrics, definition, implementation);
}

/**
 * Makes `server` instrument every service added to it from now on (call right after creating
 * it), so that a service added later in the start-up code is measured without further wiring.
 */
export function instrumentServer(metrics: NodeMetrics, server: grpc.Server): void {
  const addService = server.addService.bind(server);
  server.addService = (definition, implementation) => addService(definition, instrumentService(metrics, definition, implementation));
}
