// The gRPC transport of the quorum: a server for QuorumService on the node's controller listener,
// and a pool of client channels (one per peer, reused for every RPC).
//
// The transport knows nothing of Raft's rules. Inbound RPCs are validated (quorum-proto.ts) and
// handed to a `QuorumRpcHandler` (the driver); outbound requests are sent with a deadline and the
// response (or the failure) is returned to the caller, which steps it into the core.
//
// Vote, BeginQuorumEpoch, EndQuorumEpoch and Fetch travel between nodes as messages on one
// long-lived RaftStream per peer (see `RaftStreamChannel`), not as one unary call each: a message
// on an open stream measured about a fifth of a unary call's CPU and latency on loopback, and a
// Fetch is a round trip per replicated batch. FetchSnapshot (large chunks, rare) and the
// diagnostic RPCs stay unary.

import * as grpc from '@grpc/grpc-js';
import { ErrorCode, grpcProxyChannelOption, RaftkaError, type ErrorCodeName, type Logger } from '@raftka/protocol';
import type {
  FetchSnapshotRequest,
  FetchSnapshotResponse,
  NodeId,
  RaftRequest,
  RaftResponse,
} from '../raft/types.js';
import {
  appendRecordsRequestFromProto,
  appendRecordsResponseFromProto,
  appendRecordsResponseToProto,
  beginQuorumEpochRequestFromProto,
  beginQuorumEpochRequestToProto,
  beginQuorumEpochResponseFromProto,
  beginQuorumEpochResponseToProto,
  describeRequestFromProto,
  describeResponseFromProto,
  describeResponseToProto,
  endQuorumEpochRequestFromProto,
  endQuorumEpochRequestToProto,
  endQuorumEpochResponseFromProto,
  endQuorumEpochResponseToProto,
  fetchRequestFromProto,
  fetchRequestToProto,
  fetchResponseFromProto,
  fetchResponseToProto,
  fetchSnapshotRequestFromProto,
  fetchSnapshotRequestToProto,
  fetchSnapshotResponseFromProto,
  fetchSnapshotResponseToProto,
  loadQuorumService,
  readCommittedRequestFromProto,
  readCommittedResponseFromProto,
  readCommittedResponseToProto,
  recordsToProto,
  voteRequestFromProto,
  voteRequestToProto,
  voteResponseFromProto,
  voteResponseToProto,
  type AppendRecordsResult,
  type DescribedQuorum,
  type ReadCommittedResult,
} from './quorum-proto.js';

/** Metadata batches and snapshot chunks are far below this; it only has to exceed grpc-js's 4 MiB default. */
export const MESSAGE_BYTES_MAX = 64 * 1024 * 1024;

/**
 * Channel options. Reconnect back-off is kept short because a restarted voter should be reachable
 * within an election timeout, not after grpc-js's default of up to two minutes; keepalive notices
 * a peer that vanished without closing its socket (a paused process, a partition).
 */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MESSAGE_BYTES_MAX,
  'grpc.max_send_message_length': MESSAGE_BYTES_MAX,
  'grpc.keepalive_time_ms': 2_000,
  'grpc.keepalive_timeout_ms': 1_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.min_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 500,
  'grpc.enable_retries': 0,
  // Channelz bookkeeping (per-call counters and traces for a debugging service nobody queries
  // here) was a fifth of the CPU of an empty unary call in a loopback measurement, and a Fetch is
  // a call per replicated batch.
  'grpc.enable_channelz': 0,
  // http_proxy / https_proxy are for web traffic, not for the cluster (see grpcProxyChannelOption).
  ...grpcProxyChannelOption(),
};

const SERVER_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MESSAGE_BYTES_MAX,
  'grpc.max_send_message_length': MESSAGE_BYTES_MAX,
  // Accept the clients' keepalive pings (the default minimum interval is minutes).
  'grpc.http2.min_ping_interval_without_data_ms': 1_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.enable_channelz': 0,
};

/** What the server needs from the node it serves. */
export interface QuorumRpcHandler {
  /** Vote, BeginQuorumEpoch, EndQuorumEpoch and Fetch go to the core. */
  handleRaftRequest(request: Exclude<RaftRequest, FetchSnapshotRequest>): Promise<RaftResponse>;
  handleFetchSnapshot(request: FetchSnapshotRequest): Promise<FetchSnapshotResponse>;
  /** `forwarded`: the request was already forwarded once; answer locally. */
  describeQuorum(forwarded: boolean): Promise<DescribedQuorum>;
  appendRecords(records: Uint8Array[]): Promise<AppendRecordsResult>;
  readCommitted(fromOffset: number, maxEntries: number): Promise<ReadCommittedResult>;
}

/** Another gRPC service served on the same listener (the controller's API on a controller node). */
export interface ExtraService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

/**
 * Wraps a service's handlers before they are served (request metrics); it must keep every
 * method's behaviour and answer exactly as the handler does.
 */
export type ServiceWrapper = (definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation) => grpc.UntypedServiceImplementation;

type UnaryHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

function toServiceError(error: unknown): Partial<grpc.StatusObject> {
  if (error instanceof RaftkaError) {
    const code =
      error.code === 'INVALID_REQUEST'
        ? grpc.status.INVALID_ARGUMENT
        : error.code === 'SHUTTING_DOWN'
          ? grpc.status.UNAVAILABLE
          : error.code === 'REQUEST_TIMED_OUT'
            ? grpc.status.DEADLINE_EXCEEDED
            : grpc.status.INTERNAL;
    return { code, details: `${error.code}: ${error.message}` };
  }
  return { code: grpc.status.INTERNAL, details: String((error as Error)?.message ?? error) };
}

function unary<Request>(
  logger: Logger,
  parse: (value: unknown) => Request,
  handle: (request: Request) => Promise<unknown>,
): UnaryHandler {
  return (call, callback) => {
    let request: Request;
    try {
      request = parse(call.request);
    } catch (error) {
      logger.warn({ err: error, peer: call.getPeer() }, 'rejected a malformed quorum request');
      callback(toServiceError(error));
      return;
    }
    handle(request).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error)),
    );
  };
}

/** The oneof field of a RaftStream envelope that carries each Raft request kind. */
type StreamField = 'vote' | 'beginQuorumEpoch' | 'endQuorumEpoch' | 'fetch';
type StreamedRequest = Exclude<RaftRequest, FetchSnapshotRequest>;

function streamFieldOf(kind: StreamedRequest['kind']): StreamField {
  switch (kind) {
    case 'vote-request':
      return 'vote';
    case 'begin-quorum-epoch-request':
      return 'beginQuorumEpoch';
    case 'end-quorum-epoch-request':
      return 'endQuorumEpoch';
    case 'fetch-request':
      return 'fetch';
  }
}

function streamRequestToProto(request: StreamedRequest): unknown {
  switch (request.kind) {
    case 'vote-request':
      return voteRequestToProto(request);
    case 'begin-quorum-epoch-request':
      return beginQuorumEpochRequestToProto(request);
    case 'end-quorum-epoch-request':
      return endQuorumEpochRequestToProto(request);
    case 'fetch-request':
      return fetchRequestToProto(request);
  }
}

function streamRequestFromProto(envelope: Record<string, unknown>): StreamedRequest {
  switch (envelope.request) {
    case 'vote':
      return voteRequestFromProto(envelope.vote);
    case 'beginQuorumEpoch':
      return beginQuorumEpochRequestFromProto(envelope.beginQuorumEpoch);
    case 'endQuorumEpoch':
      return endQuorumEpochRequestFromProto(envelope.endQuorumEpoch);
    case 'fetch':
      return fetchRequestFromProto(envelope.fetch);
    default:
      throw new RaftkaError('INVALID_REQUEST', `RaftStreamRequest carries no known request (${String(envelope.request)})`);
  }
}

function streamResponseToProto(response: RaftResponse): { field: StreamField; message: unknown } {
  switch (response.kind) {
    case 'vote-response':
      return { field: 'vote', message: voteResponseToProto(response) };
    case 'begin-quorum-epoch-response':
      return { field: 'beginQuorumEpoch', message: beginQuorumEpochResponseToProto(response) };
    case 'end-quorum-epoch-response':
      return { field: 'endQuorumEpoch', message: endQuorumEpochResponseToProto(response) };
    case 'fetch-response':
      return { field: 'fetch', message: fetchResponseToProto(response) };
    default:
      throw new RaftkaError('UNKNOWN_SERVER_ERROR', `the core answered a streamed request with ${response.kind}`);
  }
}

function streamResponseFromProto(field: StreamField, value: unknown): RaftResponse {
  switch (field) {
    case 'vote':
      return voteResponseFromProto(value);
    case 'beginQuorumEpoch':
      return beginQuorumEpochResponseFromProto(value);
    case 'endQuorumEpoch':
      return endQuorumEpochResponseFromProto(value);
    case 'fetch':
      return fetchResponseFromProto(value);
  }
}

/** A correlation id from the wire: a safe non-negative integer, or undefined. */
function correlationIdOf(envelope: unknown): number | undefined {
  const value = (envelope as { correlationId?: unknown } | null)?.correlationId;
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

function streamErrorOf(error: unknown): { code: string; message: string } {
  if (error instanceof RaftkaError) return { code: error.code, message: error.message };
  return { code: 'UNKNOWN_SERVER_ERROR', message: String((error as Error)?.message ?? error) };
}

/**
 * The server side of RaftStream: every request is handed to the node as it arrives and answered
 * when the node answers, under the request's correlation id. A malformed request is answered
 * with INVALID_REQUEST for its id (or, without a usable id, logged and dropped: the sender's
 * deadline covers it); the stream itself stays open. Responses to a stream that has gone (the
 * peer cancelled it or the connection dropped) are dropped; the peer retries.
 */
function raftStreamHandler(logger: Logger, handler: QuorumRpcHandler): (call: grpc.ServerDuplexStream<unknown, unknown>) => void {
  return (call) => {
    let open = true;
    const close = (): void => {
      open = false;
    };
    call.on('cancelled', close);
    call.on('error', close);
    call.on('end', () => {
      // The peer half-closed: it sends nothing more and wants no answers (it closes on shutdown).
      close();
      call.end();
    });
    const answer = (correlationId: number, body: Record<string, unknown>): void => {
      if (open) call.write({ correlationId, ...body });
    };
    call.on('data', (envelope: Record<string, unknown>) => {
      const correlationId = correlationIdOf(envelope);
      if (correlationId === undefined) {
        logger.warn({ peer: call.getPeer() }, 'dropped a RaftStream request without a valid correlation id');
        return;
      }
      let request: StreamedRequest;
      try {
        request = streamRequestFromProto(envelope);
      } catch (error) {
        logger.warn({ err: error, peer: call.getPeer() }, 'rejected a malformed quorum request');
        answer(correlationId, { error: streamErrorOf(error) });
        return;
      }
      handler.handleRaftRequest(request).then(
        (response) => {
          let encoded: { field: StreamField; message: unknown };
          try {
            encoded = streamResponseToProto(response);
          } catch (error) {
            answer(correlationId, { error: streamErrorOf(error) });
            return;
          }
          answer(correlationId, { [encoded.field]: encoded.message });
        },
        (error: unknown) => answer(correlationId, { error: streamErrorOf(error) }),
      );
    });
  };
}

export class QuorumServer {
  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  static async start(args: {
    host: string;
    port: number;
    handler: QuorumRpcHandler;
    logger: Logger;
    extraServices?: readonly ExtraService[];
    serviceWrapper?: ServiceWrapper;
  }): Promise<QuorumServer> {
    const { handler, logger } = args;
    const wrap: ServiceWrapper = args.serviceWrapper ?? ((_definition, implementation) => implementation);
    const service = loadQuorumService().service;
    const server = new grpc.Server(SERVER_OPTIONS);
    const raft = <Request extends Exclude<RaftRequest, FetchSnapshotRequest>>(
      parse: (value: unknown) => Request,
      respond: (response: RaftResponse) => unknown,
    ): UnaryHandler => unary(logger, parse, async (request) => respond(await handler.handleRaftRequest(request)));
    const expect =
      <K extends RaftResponse['kind'], T>(kind: K, map: (response: Extract<RaftResponse, { kind: K }>) => T) =>
      (response: RaftResponse): T => {
        if (response.kind !== kind) throw new RaftkaError('UNKNOWN_SERVER_ERROR', `the core answered ${kind} with ${response.kind}`);
        return map(response as Extract<RaftResponse, { kind: K }>);
      };
    server.addService(service, wrap(service, {
      RaftStream: raftStreamHandler(logger, handler),
      Vote: raft(voteRequestFromProto, expect('vote-response', voteResponseToProto)),
      BeginQuorumEpoch: raft(beginQuorumEpochRequestFromProto, expect('begin-quorum-epoch-response', beginQuorumEpochResponseToProto)),
      EndQuorumEpoch: raft(endQuorumEpochRequestFromProto, expect('end-quorum-epoch-response', endQuorumEpochResponseToProto)),
      Fetch: raft(fetchRequestFromProto, expect('fetch-response', fetchResponseToProto)),
      FetchSnapshot: unary(logger, fetchSnapshotRequestFromProto, async (request) =>
        fetchSnapshotResponseToProto(await handler.handleFetchSnapshot(request)),
      ),
      DescribeQuorum: unary(logger, describeRequestFromProto, async (request) =>
        describeResponseToProto(await handler.describeQuorum(request.forwarded)),
      ),
      AppendRecords: unary(logger, appendRecordsRequestFromProto, async (records) =>
        appendRecordsResponseToProto(await handler.appendRecords(records)),
      ),
      ReadCommitted: unary(logger, readCommittedRequestFromProto, async (request) =>
        readCommittedResponseToProto(await handler.readCommitted(request.fromOffset, request.maxEntries)),
      ),
    }));
    for (const extra of args.extraServices ?? []) server.addService(extra.definition, wrap(extra.definition, extra.implementation));
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${args.host}:${args.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      );
    });
    return new QuorumServer(server, port);
  }

  /** Stops accepting calls; in-flight calls get `graceMs` to finish before being cancelled. */
  async close(graceMs = 200): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

type GrpcClient = grpc.Client &
  Record<
    string,
    (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<unknown>) => grpc.ClientUnaryCall
  >;

/** Turns a gRPC failure into a RaftkaError that says which call to which address failed. */
function toRaftkaError(error: grpc.ServiceError, method: string, address: string): RaftkaError {
  const code =
    error.code === grpc.status.UNAVAILABLE
      ? 'NETWORK_EXCEPTION'
      : error.code === grpc.status.DEADLINE_EXCEEDED
        ? 'REQUEST_TIMED_OUT'
        : error.code === grpc.status.INVALID_ARGUMENT
          ? 'INVALID_REQUEST'
          : error.code === grpc.status.RESOURCE_EXHAUSTED
            ? 'MESSAGE_TOO_LARGE'
            : 'UNKNOWN_SERVER_ERROR';
  const retriable = code === 'NETWORK_EXCEPTION' || code === 'REQUEST_TIMED_OUT' || error.code === grpc.status.INTERNAL;
  return new RaftkaError(code, `${method} to ${address} failed: ${error.details || error.message}`, { cause: error, retriable });
}

function call(
  client: GrpcClient,
  address: string,
  method: string,
  request: unknown,
  deadlineMs: number,
  waitForReady = false,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    // grpc-js takes wait-for-ready from the call's metadata options.
    const metadata = new grpc.Metadata({ waitForReady });
    client[method]!(request, metadata, { deadline: Date.now() + deadlineMs }, (error, response) =>
      error ? reject(toRaftkaError(error, method, address)) : resolve(response),
    );
  });
}

interface StreamWaiter {
  field: StreamField;
  method: string;
  timer: NodeJS.Timeout;
  resolve: (response: RaftResponse) => void;
  reject: (error: RaftkaError) => void;
}

/**
 * The client side of RaftStream to one peer: opened on first use, reopened after it fails.
 *
 * A request waits for its response until its own deadline. When the stream fails (connection
 * lost, the peer shut down or cancelled it), every request waiting on it fails with
 * NETWORK_EXCEPTION and the next request opens a new stream; so does a deadline that passes with
 * nothing at all heard on the stream since that request went out, since a stream that answers
 * nothing is presumed wedged (a connection that died without a reset until keepalive notices).
 */
class RaftStreamChannel {
  private stream: grpc.ClientDuplexStream<unknown, unknown> | undefined;
  // Invariant: every entry's request was written to `stream` (the current one) and is unanswered.
  private readonly waiting = new Map<number, StreamWaiter>();
  private nextCorrelationId = 0;
  /** Messages received on the current stream; a deadline compares it with its send-time value. */
  private received = 0;

  constructor(
    private readonly client: GrpcClient,
    private readonly address: string,
  ) {}

  send(request: StreamedRequest, deadlineMs: number): Promise<RaftResponse> {
    const field = streamFieldOf(request.kind);
    const method = `RaftStream ${request.kind}`;
    return new Promise<RaftResponse>((resolve, reject) => {
      const stream = this.open();
      const correlationId = this.nextCorrelationId++;
      const receivedAtSend = this.received;
      const timer = setTimeout(() => {
        if (!this.waiting.delete(correlationId)) return;
        reject(new RaftkaError('REQUEST_TIMED_OUT', `${method} to ${this.address} got no answer within ${deadlineMs} ms`, { retriable: true }));
        if (this.stream === stream && this.received === receivedAtSend) {
          this.reset(stream, `RaftStream to ${this.address} answered nothing within ${deadlineMs} ms`);
        }
      }, deadlineMs);
      this.waiting.set(correlationId, { field, method, timer, resolve, reject });
      stream.write({ correlationId, [field]: streamRequestToProto(request) });
    });
  }

  close(): void {
    if (this.stream) this.reset(this.stream, `RaftStream to ${this.address} closed`);
  }

  private open(): grpc.ClientDuplexStream<unknown, unknown> {
    if (this.stream) return this.stream;
    const stream = (this.client as unknown as { RaftStream: () => grpc.ClientDuplexStream<unknown, unknown> }).RaftStream();
    this.stream = stream;
    this.received = 0;
    stream.on('data', (envelope: Record<string, unknown>) => this.onData(stream, envelope));
    // Whatever ended the stream (reset, peer shutdown, cancellation), it is the transport failing.
    stream.on('error', (error: grpc.ServiceError) =>
      this.fail(
        stream,
        new RaftkaError('NETWORK_EXCEPTION', `RaftStream to ${this.address} failed: ${error.details || error.message}`, { cause: error, retriable: true }),
      ),
    );
    stream.on('end', () =>
      this.fail(stream, new RaftkaError('NETWORK_EXCEPTION', `RaftStream to ${this.address} was closed by the peer`, { retriable: true })),
    );
    return stream;
  }

  private onData(stream: grpc.ClientDuplexStream<unknown, unknown>, envelope: Record<string, unknown>): void {
    if (stream !== this.stream) return;
    this.received++;
    const correlationId = correlationIdOf(envelope);
    const waiter = correlationId === undefined ? undefined : this.waiting.get(correlationId);
    // Absent when the request's deadline already passed: the core has moved on.
    if (waiter === undefined || correlationId === undefined) return;
    this.waiting.delete(correlationId);
    clearTimeout(waiter.timer);
    if (envelope.response === 'error') {
      const error = (envelope.error ?? {}) as { code?: string; message?: string };
      const code: ErrorCodeName = error.code !== undefined && error.code in ErrorCode ? (error.code as ErrorCodeName) : 'UNKNOWN_SERVER_ERROR';
      waiter.reject(new RaftkaError(code, `${waiter.method} to ${this.address} failed: ${error.message ?? ''}`));
      return;
    }
    if (envelope.response !== waiter.field) {
      waiter.reject(new RaftkaError('INVALID_REQUEST', `${waiter.method} to ${this.address} was answered with ${String(envelope.response)}`));
      return;
    }
    try {
      waiter.resolve(streamResponseFromProto(waiter.field, envelope[waiter.field]));
    } catch (error) {
      waiter.reject(error instanceof RaftkaError ? error : new RaftkaError('UNKNOWN_SERVER_ERROR', String(error)));
    }
  }

  /** Cancels `stream` (if current) and fails what waits on it. */
  private reset(stream: grpc.ClientDuplexStream<unknown, unknown>, reason: string): void {
    this.fail(stream, new RaftkaError('NETWORK_EXCEPTION', reason, { retriable: true }));
    stream.cancel();
  }

  private fail(stream: grpc.ClientDuplexStream<unknown, unknown>, error: RaftkaError): void {
    if (stream !== this.stream) return;
    this.stream = undefined;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const waiter of waiting) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }
}

/** A client for one address: the Raft RPCs plus the diagnostic ones used by the CLI. */
export class QuorumClient {
  private readonly client: GrpcClient;
  private readonly raftStream: RaftStreamChannel;

  /**
   * `waitForReady`: calls wait (up to their deadline) for the channel to connect instead of
   * failing at once while it is reconnecting. Raft peers want to fail fast (the core retries and
   * counts failures); administrative callers want an answer from a node that is just starting.
   */
  constructor(
    readonly address: string,
    private readonly waitForReady = false,
  ) {
    const Service = loadQuorumService();
    this.client = new Service(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as GrpcClient;
    this.raftStream = new RaftStreamChannel(this.client, address);
  }

  /**
   * Sends a Raft request and returns the validated response. `deadlineMs` bounds the whole call.
   * Everything but FetchSnapshot goes over the peer's RaftStream.
   */
  async send(request: RaftRequest, deadlineMs: number): Promise<RaftResponse> {
    if (request.kind !== 'fetch-snapshot-request') return this.raftStream.send(request, deadlineMs);
    return this.sendUnary(request, deadlineMs);
  }

  /** Sends a Raft request as its own unary call (what `send` did before RaftStream). */
  async sendUnary(request: RaftRequest, deadlineMs: number): Promise<RaftResponse> {
    switch (request.kind) {
      case 'vote-request':
        return voteResponseFromProto(await call(this.client, this.address, 'Vote', voteRequestToProto(request), deadlineMs));
      case 'begin-quorum-epoch-request':
        return beginQuorumEpochResponseFromProto(
          await call(this.client, this.address, 'BeginQuorumEpoch', beginQuorumEpochRequestToProto(request), deadlineMs),
        );
      case 'end-quorum-epoch-request':
        return endQuorumEpochResponseFromProto(await call(this.client, this.address, 'EndQuorumEpoch', endQuorumEpochRequestToProto(request), deadlineMs));
      case 'fetch-request':
        return fetchResponseFromProto(await call(this.client, this.address, 'Fetch', fetchRequestToProto(request), deadlineMs));
      case 'fetch-snapshot-request':
        return fetchSnapshotResponseFromProto(await call(this.client, this.address, 'FetchSnapshot', fetchSnapshotRequestToProto(request), deadlineMs));
    }
  }

  async describeQuorum(deadlineMs: number, forwarded = false): Promise<DescribedQuorum> {
    return describeResponseFromProto(await call(this.client, this.address, 'DescribeQuorum', { forwarded }, deadlineMs, this.waitForReady));
  }

  async appendRecords(records: Uint8Array[], deadlineMs: number): Promise<AppendRecordsResult> {
    return appendRecordsResponseFromProto(await call(this.client, this.address, 'AppendRecords', { records: recordsToProto(records) }, deadlineMs, this.waitForReady));
  }

  async readCommitted(fromOffset: number, maxEntries: number, deadlineMs: number): Promise<ReadCommittedResult> {
    return readCommittedResponseFromProto(await call(this.client, this.address, 'ReadCommitted', { fromOffset, maxEntries }, deadlineMs, this.waitForReady));
  }

  close(): void {
    this.raftStream.close();
    this.client.close();
  }
}

/** One reusable channel per peer, created on first use. */
export class QuorumClientPool {
  private readonly clients = new Map<NodeId, QuorumClient>();

  constructor(private readonly addresses: ReadonlyMap<NodeId, string>) {}

  has(nodeId: NodeId): boolean {
    return this.addresses.has(nodeId);
  }

  get(nodeId: NodeId): QuorumClient {
    let client = this.clients.get(nodeId);
    if (!client) {
      const address = this.addresses.get(nodeId);
      if (address === undefined) throw new RaftkaError('INCONSISTENT_VOTER_SET', `no address is known for node ${nodeId}`);
      client = new QuorumClient(address);
      this.clients.set(nodeId, client);
    }
    return client;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
