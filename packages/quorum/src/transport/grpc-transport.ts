// The gRPC transport of the quorum: a server for QuorumService on the node's controller listener,
// and a pool of client channels (one per peer, reused for every RPC).
//
// The transport knows nothing of Raft's rules. Inbound RPCs are validated (quorum-proto.ts) and
// handed to a `QuorumRpcHandler` (the driver); outbound requests are sent with a deadline and the
// response (or the failure) is returned to the caller, which steps it into the core.

import * as grpc from '@grpc/grpc-js';
import { grpcProxyChannelOption, RaftkaError, type Logger } from '@raftka/protocol';
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

/** A client for one address: the Raft RPCs plus the diagnostic ones used by the CLI. */
export class QuorumClient {
  private readonly client: GrpcClient;

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
  }

  /** Sends a Raft request and returns the validated response. `deadlineMs` bounds the whole call. */
  async send(request: RaftRequest, deadlineMs: number): Promise<RaftResponse> {
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
