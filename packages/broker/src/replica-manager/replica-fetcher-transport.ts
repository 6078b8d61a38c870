// The replica fetcher's connection to a leader: RaftkaClient Fetch and OffsetForLeaderEpoch over
// gRPC on the leader's listener (the same service clients use, with replica_id = our broker id).
// One channel per source broker, reused for every request; transport failures reject with a
// retriable NETWORK_EXCEPTION / REQUEST_TIMED_OUT so that the fetcher backs off and retries.

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

export class GrpcLeaderEndpoint implements LeaderEndpoint {
  readonly address: string;
  private readonly client: grpc.Client & Record<'Fetch' | 'OffsetForLeaderEpoch', UnaryMethod>;
  private readonly inFlight = new Set<grpc.ClientUnaryCall>();
  private closed = false;

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
    const response = (await this.call('Fetch', fetchRequestToProto(request), timeoutMs, signal)) as ProtoFetchResponse;
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
    this.client.close();
  }

  private call(method: 'Fetch' | 'OffsetForLeaderEpoch', request: unknown, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
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
