// The replica fetcher's connection to a leader: RaftkaClient FetchStream and OffsetForLeaderEpoch
// over gRPC on the leader's listener (the same service clients use, with replica_id = our broker
// id). One channel per source broker, reused for every request; fetches travel as messages on one
// long-lived FetchStream (a message on an open stream costs a fraction of a unary call, and a
// fetch is a round trip per replicated batch, on the acks=all path). Transport failures reject
// with a retriable NETWORK_EXCEPTION / REQUEST_TIMED_OUT so that the fetcher backs off and retries.

import * as grpc from '@grpc/grpc-js';
import { RaftkaError } from '@raftka/protocol';
import type { BrokerRegistration } from '@raftka/quorum';
import {
  fetchRequestToProto,
  fetchResponseFromProto,
  offsetForLeaderEpochRequestToProto,
  offsetForLeaderEpochResponseFromProto,
} from '../server/client-mapping.js';
import { BROKER_CHANNEL_OPTIONS, loadRaftkaClientService, type ProtoFetchResponse, type ProtoOffsetForLeaderEpochResponse } from '../server/client-proto.js';
import type { LeaderEndpoint } from './replica-fetcher.js';
import type { FetchPartitionResponse, FetchRequest, OffsetForLeaderEpochPartitionResponse, OffsetForLeaderEpochRequest } from './requests.js';

type UnaryMethod = (request: unknown, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: unknown) => void) => grpc.ClientUnaryCall;

interface StreamWaiter {
  resolve: (response: ProtoFetchResponse) => void;
  reject: (error: RaftkaError) => void;
  timer: NodeJS.Timeout;
  signal: AbortSignal | undefined;
  abandon: () => void;
}

export class GrpcLeaderEndpoint implements LeaderEndpoint {
  readonly address: string;
  private readonly client: grpc.Client & Record<'Fetch' | 'OffsetForLeaderEpoch', UnaryMethod> & {
    FetchStream: () => grpc.ClientDuplexStream<unknown, ProtoFetchResponse>;
  };
  private readonly inFlight = new Set<grpc.ClientUnaryCall>();
  private closed = false;
  private fetchStream: grpc.ClientDuplexStream<unknown, ProtoFetchResponse> | undefined;
  // Invariant: the fetches written to `fetchStream` and not answered yet, oldest first (the
  // stream answers in request order, so an answer belongs to the oldest waiter).
  private readonly fetchWaiters: StreamWaiter[] = [];

  constructor(address: string) {
    this.address = address;
    const Service = loadRaftkaClientService();
    this.client = new Service(address, grpc.credentials.createInsecure(), BROKER_CHANNEL_OPTIONS) as unknown as GrpcLeaderEndpoint['client'];
  }

  /** Connects to `broker`'s listener named `listenerName` (its first endpoint when unnamed). */
  static forBroker(broker: BrokerRegistration, listenerName: string | undefined): GrpcLeaderEndpoint {
    const endpoint = (listenerName === undefined ? undefined : broker.endpoints.find((candidate) => candidate.name === listenerName)) ?? broker.endpoints[0];
    if (endpoint === undefined) {
      throw new RaftkaError('BROKER_NOT_AVAILABLE', `broker ${broker.brokerId} registered no endpoint; it cannot be replicated from`);
    }
    const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
    return new GrpcLeaderEndpoint(`${host}:${endpoint.port}`);
  }

  async fetch(request: FetchRequest, timeoutMs: number, signal?: AbortSignal): Promise<FetchPartitionResponse[]> {
    const response = await this.fetchOnStream(fetchRequestToProto(request), timeoutMs, signal);
    if (response.errorCode !== 0) {
      throw new RaftkaError('UNKNOWN_SERVER_ERROR', `fetch from ${this.address} failed: ${response.errorMessage}`, { retriable: true });
    }
    return fetchResponseFromProto(response);
  }

  async offsetForLeaderEpoch(request: OffsetForLeaderEpochRequest, timeoutMs: number): Promise<OffsetForLeaderEpochPartitionResponse[]> {
    const response = (await this.call('OffsetForLeaderEpoch', offsetForLeaderEpochRequestToProto(request), timeoutMs)) as ProtoOffsetForLeaderEpochResponse;
    return offsetForLeaderEpochResponseFromProto(response);
  }

  /** Cancels the calls in flight (they reject) and closes the channel. */
  close(): void {
    this.closed = true;
    for (const call of [...this.inFlight]) call.cancel();
    if (this.fetchStream) this.resetFetchStream(this.fetchStream, new RaftkaError('NETWORK_EXCEPTION', `the connection to ${this.address} is closed`, { retriable: true }));
    this.client.close();
  }

  /**
   * One fetch on the FetchStream, opened on first use and reopened after it fails. Answers come
   * in request order, so a fetch given up before its answer (deadline, abort) cannot simply be
   * forgotten: the stream is cancelled (failing what else waits on it) and the next fetch opens
   * a new one. The fetcher keeps one fetch in flight per leader, so that costs only the stream.
   */
  private fetchOnStream(request: unknown, timeoutMs: number, signal?: AbortSignal): Promise<ProtoFetchResponse> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new RaftkaError('NETWORK_EXCEPTION', `the connection to ${this.address} is closed`, { retriable: true }));
        return;
      }
      if (signal?.aborted) {
        reject(new RaftkaError('REQUEST_TIMED_OUT', `Fetch to ${this.address} was abandoned`, { retriable: true }));
        return;
      }
      const stream = this.openFetchStream();
      const giveUp = (error: RaftkaError): void => {
        if (this.fetchStream === stream && this.fetchWaiters.includes(waiter)) this.resetFetchStream(stream, error);
      };
      const waiter: StreamWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => giveUp(new RaftkaError('REQUEST_TIMED_OUT', `Fetch to ${this.address} got no answer within ${timeoutMs} ms`, { retriable: true })), timeoutMs),
        signal,
        abandon: () => giveUp(new RaftkaError('REQUEST_TIMED_OUT', `Fetch to ${this.address} was abandoned`, { retriable: true })),
      };
      signal?.addEventListener('abort', waiter.abandon, { once: true });
      this.fetchWaiters.push(waiter);
      stream.write(request);
    });
  }

  private openFetchStream(): grpc.ClientDuplexStream<unknown, ProtoFetchResponse> {
    if (this.fetchStream) return this.fetchStream;
    const stream = this.client.FetchStream();
    this.fetchStream = stream;
    stream.on('data', (response: ProtoFetchResponse) => {
      if (stream !== this.fetchStream) return;
      const waiter = this.fetchWaiters.shift();
      if (waiter === undefined) {
        this.resetFetchStream(stream, new RaftkaError('NETWORK_EXCEPTION', `FetchStream to ${this.address} sent an answer nobody asked for`, { retriable: true }));
        return;
      }
      this.settle(waiter);
      waiter.resolve(response);
    });
    stream.on('error', (error: grpc.ServiceError) => {
      const timedOut = error.code === grpc.status.DEADLINE_EXCEEDED;
      this.failFetchStream(
        stream,
        new RaftkaError(timedOut ? 'REQUEST_TIMED_OUT' : 'NETWORK_EXCEPTION', `Fetch to ${this.address} failed: ${error.message}`, { cause: error, retriable: true }),
      );
    });
    stream.on('end', () => this.failFetchStream(stream, new RaftkaError('NETWORK_EXCEPTION', `FetchStream to ${this.address} was closed by the leader`, { retriable: true })));
    return stream;
  }

  private settle(waiter: StreamWaiter): void {
    clearTimeout(waiter.timer);
    waiter.signal?.removeEventListener('abort', waiter.abandon);
  }

  private resetFetchStream(stream: grpc.ClientDuplexStream<unknown, ProtoFetchResponse>, error: RaftkaError): void {
    this.failFetchStream(stream, error);
    stream.cancel();
  }

  private failFetchStream(stream: grpc.ClientDuplexStream<unknown, ProtoFetchResponse>, error: RaftkaError): void {
    if (stream !== this.fetchStream) return;
    this.fetchStream = undefined;
    for (const waiter of this.fetchWaiters.splice(0)) {
      this.settle(waiter);
      waiter.reject(error);
    }
  }

  private call(method: 'OffsetForLeaderEpoch', request: unknown, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new RaftkaError('NETWORK_EXCEPTION', `the connection to ${this.address} is closed`, { retriable: true }));
        return;
      }
      if (signal?.aborted) {
        reject(new RaftkaError('REQUEST_TIMED_OUT', `${method} to ${this.address} was abandoned`, { retriable: true }));
        return;
      }
      const abandon = (): void => call.cancel();
      const call = this.client[method](request, { deadline: Date.now() + timeoutMs }, (error, response) => {
        this.inFlight.delete(call);
        signal?.removeEventListener('abort', abandon);
        if (error !== null) {
          const timedOut = error.code === grpc.status.DEADLINE_EXCEEDED;
          reject(new RaftkaError(timedOut ? 'REQUEST_TIMED_OUT' : 'NETWORK_EXCEPTION', `${method} to ${this.address} failed: ${error.message}`, { cause: error, retriable: true }));
          return;
        }
        resolve(response);
      });
      signal?.addEventListener('abort', abandon, { once: true });
      this.inFlight.add(call);
    });
  }
}
