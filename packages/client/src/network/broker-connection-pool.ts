// One gRPC channel per broker, shared by the client.proto services and reused for the life of
// the client, with a bounded number of requests in flight per broker.
//
// Why one channel: a grpc-js channel is one HTTP/2 connection that multiplexes calls; opening one
// per request would pay a TCP + HTTP/2 handshake each time. Message-size limits are raised
// because a Produce or Fetch carries whole record batches (grpc-js defaults to 4 MiB inbound).
// The in-flight bound (`max.in.flight.requests.per.connection`, 5) keeps the broker from being
// flooded and, with idempotence, matches the 5 batches per partition the broker can dedupe.
//
// Transport failures map to Raftka errors: UNAVAILABLE -> NETWORK_EXCEPTION,
// DEADLINE_EXCEEDED -> REQUEST_TIMED_OUT, both retriable (after a metadata refresh).

import * as grpc from '@grpc/grpc-js';
import { grpcProxyChannelOption, invariant, RaftkaError } from '@raftka/protocol';
import { loadClientServices, type ClientServiceName } from './client-proto.js';
import { InFlightLimiter } from './in-flight-limiter.js';
import { ProduceStream } from './produce-stream.js';
import type { ProduceRequest, ProduceResponse } from './client-messages.js';
import type { Timers } from '../producer/buffer-pool.js';

/** The call metadata key carrying the client id (the broker's group service reads it). */
export const CLIENT_ID_METADATA_KEY = 'client-id';

/** Bytes of overhead a request may add around its record batches (topic names, framing). */
export const REQUEST_ENVELOPE_BYTES_MAX = 1024 * 1024;

export interface BrokerEndpoint {
  host: string;
  port: number;
}

export interface BrokerConnectionPoolOptions {
  /** Largest record payload of one request or response; channels allow this plus an envelope. */
  messageBytesMax: number;
  /** Requests in flight per broker. */
  maxInFlightPerBroker: number;
  /** Extra channel options (keepalive, etc.). */
  channelOptions?: grpc.ChannelOptions;
  /**
   * Sent with every unary call as metadata `client-id` (Kafka's request-header client id): the
   * group coordinator shows it as a member's CLIENT-ID and builds member ids from it.
   */
  clientId?: string;
}

interface Connection {
  address: string;
  channel: grpc.Channel;
  clients: Map<ClientServiceName, grpc.Client>;
  limiter: InFlightLimiter;
  /** The producer's ProduceStream to this broker, opened on first use. */
  produceStream?: ProduceStream;
}

/** Maps a failed call's gRPC status to a Raftka error. */
export function errorFromGrpcStatus(error: grpc.ServiceError | Error, nodeId: number): RaftkaError {
  if (error instanceof RaftkaError) return error;
  const code = (error as grpc.ServiceError).code;
  switch (code) {
    case grpc.status.DEADLINE_EXCEEDED:
      return new RaftkaError('REQUEST_TIMED_OUT', `request to broker ${nodeId} timed out: ${error.message}`, { cause: error });
    case grpc.status.UNAVAILABLE:
    case grpc.status.CANCELLED:
    case grpc.status.ABORTED:
      return new RaftkaError('NETWORK_EXCEPTION', `broker ${nodeId} is unreachable: ${error.message}`, { cause: error });
    case grpc.status.RESOURCE_EXHAUSTED:
      return new RaftkaError('MESSAGE_TOO_LARGE', `broker ${nodeId} refused the message size: ${error.message}`, { cause: error, retriable: false });
    case grpc.status.UNIMPLEMENTED:
      return new RaftkaError('UNSUPPORTED_VERSION', `broker ${nodeId} does not implement this call: ${error.message}`, { cause: error, retriable: false });
    default:
      return new RaftkaError('UNKNOWN_SERVER_ERROR', `call to broker ${nodeId} failed: ${error.message}`, { cause: error, retriable: false });
  }
}

export class BrokerConnectionPool {
  readonly #options: BrokerConnectionPoolOptions;
  readonly #connections = new Map<number, Connection>();
  #closed = false;

  constructor(options: BrokerConnectionPoolOptions) {
    invariant(options.messageBytesMax > 0 && options.maxInFlightPerBroker >= 1, 'pool limits must be positive');
    this.#options = options;
  }

  /**
   * Channel arguments: raised size limits so whole record batches fit one message. Responses are
   * bounded by what the request asked for (a fetch's max bytes), not by the request size limit:
   * a consumer fetching 1 MiB from each of several partitions gets a response of several MiB.
   */
  channelOptions(): grpc.ChannelOptions {
    const limit = Math.min(2 ** 31 - 1, this.#options.messageBytesMax + REQUEST_ENVELOPE_BYTES_MAX);
    return {
      'grpc.max_send_message_length': limit,
      'grpc.max_receive_message_length': 2 ** 31 - 1,
      // A machine-wide http_proxy / https_proxy is for web traffic, not for brokers (grpc_proxy is honoured).
      ...grpcProxyChannelOption(),
      ...this.#options.channelOptions,
    };
  }

  /**
   * The connection for a broker, created on first use. If the broker's address changed (a new
   * metadata snapshot), the old channel is closed and a new one opened.
   */
  #connection(nodeId: number, endpoint: BrokerEndpoint): Connection {
    if (this.#closed) throw new RaftkaError('SHUTTING_DOWN', 'the client is closed', { retriable: false });
    const address = `${endpoint.host}:${endpoint.port}`;
    const existing = this.#connections.get(nodeId);
    if (existing && existing.address === address) return existing;
    if (existing) this.#closeConnection(existing);
    const channel = new grpc.Channel(address, grpc.credentials.createInsecure(), this.channelOptions());
    const connection: Connection = { address, channel, clients: new Map(), limiter: new InFlightLimiter(this.#options.maxInFlightPerBroker) };
    this.#connections.set(nodeId, connection);
    return connection;
  }

  /** The service client for a broker; all services of one broker share its channel. */
  client(nodeId: number, endpoint: BrokerEndpoint, service: ClientServiceName): grpc.Client {
    const connection = this.#connection(nodeId, endpoint);
    let client = connection.clients.get(service);
    if (!client) {
      const Constructor = loadClientServices()[service];
      client = new Constructor(connection.address, grpc.credentials.createInsecure(), { channelOverride: connection.channel });
      connection.clients.set(service, client);
    }
    return client;
  }

  /** The broker's in-flight limiter (created with the connection). */
  limiter(nodeId: number, endpoint: BrokerEndpoint): InFlightLimiter {
    return this.#connection(nodeId, endpoint).limiter;
  }

  /**
   * Calls a unary method, holding one of the broker's in-flight slots for the duration and
   * failing with REQUEST_TIMED_OUT after timeoutMs. Errors come back as RaftkaError.
   */
  async call<Request, Response>(args: {
    nodeId: number;
    endpoint: BrokerEndpoint;
    service: ClientServiceName;
    method: string;
    request: Request;
    timeoutMs: number;
  }): Promise<Response> {
    const client = this.client(args.nodeId, args.endpoint, args.service);
    const limiter = this.limiter(args.nodeId, args.endpoint);
    const method = (client as unknown as Record<string, unknown>)[args.method];
    invariant(typeof method === 'function', () => `service ${args.service} has no method ${args.method}`);
    return limiter.run(
      () =>
        new Promise<Response>((resolve, reject) => {
          (method as (request: Request, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<Response>) => void).call(
            client,
            args.request,
            this.#callMetadata(),
            { deadline: Date.now() + args.timeoutMs },
            (error, response) => {
              if (error) reject(errorFromGrpcStatus(error, args.nodeId));
              else if (response === undefined) reject(new RaftkaError('UNKNOWN_SERVER_ERROR', `broker ${args.nodeId} sent an empty ${args.method} response`));
              else resolve(response);
            },
          );
        }),
    );
  }

  /**
   * The broker's ProduceStream (see produce-stream.ts), created on first use and replaced with
   * the channel when the broker's address changes. Its in-flight limit is separate from the
   * unary calls' limiter: produce requests no longer wait behind metadata calls and vice versa.
   */
  produceStream(args: { nodeId: number; endpoint: BrokerEndpoint; maxInFlight: number; requestTimeoutMs: number; clock: () => number; timers: Timers }): ProduceStream {
    const connection = this.#connection(args.nodeId, args.endpoint);
    if (connection.produceStream) return connection.produceStream;
    const client = this.client(args.nodeId, args.endpoint, 'RaftkaClient') as unknown as {
      ProduceStream: (metadata: grpc.Metadata, options: grpc.CallOptions) => grpc.ClientDuplexStream<ProduceRequest, ProduceResponse>;
    };
    connection.produceStream = new ProduceStream({
      nodeId: args.nodeId,
      open: () => client.ProduceStream(this.#callMetadata(), {}),
      maxInFlight: args.maxInFlight,
      requestTimeoutMs: args.requestTimeoutMs,
      clock: args.clock,
      timers: args.timers,
    });
    return connection.produceStream;
  }

  #callMetadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    if (this.#options.clientId !== undefined && this.#options.clientId !== '') metadata.set(CLIENT_ID_METADATA_KEY, this.#options.clientId);
    return metadata;
  }

  /** Brokers with an open channel. */
  connectedNodes(): number[] {
    return [...this.#connections.keys()];
  }

  /** Closes one broker's channel (e.g. the broker left the cluster). */
  disconnect(nodeId: number): void {
    const connection = this.#connections.get(nodeId);
    if (!connection) return;
    this.#closeConnection(connection);
    this.#connections.delete(nodeId);
  }

  close(): void {
    this.#closed = true;
    for (const connection of this.#connections.values()) this.#closeConnection(connection);
    this.#connections.clear();
  }

  #closeConnection(connection: Connection): void {
    connection.produceStream?.close();
    for (const client of connection.clients.values()) client.close();
    connection.channel.close();
  }
}
