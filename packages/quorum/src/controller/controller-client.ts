// The caller's side of the controller's API: what a broker (and the tests, and the CLI) use to
// talk to "the controller" without knowing which voter is active right now.
//
// It remembers the active controller, follows NOT_CONTROLLER answers to the one they name, and
// tries the other controllers when one is unreachable or no leader is known yet — until the
// call's deadline. Errors the controller decided on (INVALID_REPLICATION_FACTOR, STALE_BROKER_EPOCH,
// ...) are thrown as RaftkaError at once; only "wrong node" and transport failures are retried.

import * as grpc from '@grpc/grpc-js';
import { RaftkaError } from '@raftka/protocol';
import { CHANNEL_OPTIONS } from '../transport/grpc-transport.js';
import { NotControllerError } from './controller-errors.js';
import {
  allocateProducerIdsResponseFromProto,
  alterPartitionResponseFromProto,
  brokerHeartbeatResponseFromProto,
  brokerRegistrationResponseFromProto,
  brokerRegistrationToProto,
  controllerErrorFromProto,
  createPartitionsResponseFromProto,
  createPartitionsToProto,
  createTopicsResponseFromProto,
  createTopicsToProto,
  deleteTopicsResponseFromProto,
  describeConfigsResponseFromProto,
  describeConfigsToProto,
  electLeadersResponseFromProto,
  incrementalAlterConfigsResponseFromProto,
  incrementalAlterConfigsToProto,
  loadControllerService,
} from './controller-proto.js';
import type {
  AllocateProducerIdsRequest,
  AllocateProducerIdsResponse,
  AlterPartitionRequest,
  AlterPartitionResponse,
  BrokerHeartbeatRequest,
  BrokerHeartbeatResponse,
  BrokerRegistrationRequest,
  BrokerRegistrationResponse,
  CreatePartitionsRequest,
  CreatePartitionsResponse,
  CreateTopicsRequest,
  CreateTopicsResponse,
  DeleteTopicsRequest,
  DeleteTopicsResponse,
  DescribeConfigsRequest,
  DescribeConfigsResponse,
  ElectLeadersResponse,
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponse,
} from './controller-types.js';

/** Default bound of one call including every retry; an election takes a few hundred ms. */
export const CONTROLLER_REQUEST_TIMEOUT_MS = 5_000;
/** Pause before trying again when no controller is known to be active (an election is running). */
export const CONTROLLER_RETRY_BACKOFF_MS = 50;

/**
 * The quorum's channel options without its aggressive keepalive: a controller busy applying a
 * large entry may not answer a ping for a second, and a keepalive failure would cancel a call
 * that is about to succeed — whose retry then finds its own effect (TOPIC_ALREADY_EXISTS). Calls
 * carry deadlines, which is what bounds a vanished controller here.
 */
const CONTROLLER_CHANNEL_OPTIONS: grpc.ChannelOptions = Object.fromEntries(
  Object.entries(CHANNEL_OPTIONS).filter(([key]) => !key.startsWith('grpc.keepalive')),
);

type GrpcClient = grpc.Client & Record<string, (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void>;

/** An open BrokerSession call (see proto/controller.proto). */
export interface BrokerSessionCall {
  /** The controller it went to. */
  readonly address: string;
  /** Resolves when the controller accepts the session; rejects with its refusal or a transport error. */
  readonly accepted: Promise<void>;
  /** Resolves when the call is over, for whatever reason (never rejects). */
  readonly ended: Promise<void>;
  /** Ends the call from this side. */
  close(): void;
}

export interface ControllerClientOptions {
  /** host:port of every controller's CONTROLLER listener (the voters of controller.quorum.voters). */
  controllers: readonly string[];
  requestTimeoutMs?: number;
}

export class ControllerClient {
  private readonly controllers: readonly string[];
  private readonly requestTimeoutMs: number;
  private readonly clients = new Map<string, GrpcClient>();
  private active: string | undefined;
  private nextIndex = 0;
  private closed = false;

  constructor(options: ControllerClientOptions) {
    if (options.controllers.length === 0) throw new RaftkaError('INVALID_CONFIG', 'a controller client needs at least one controller address');
    this.controllers = options.controllers;
    this.requestTimeoutMs = options.requestTimeoutMs ?? CONTROLLER_REQUEST_TIMEOUT_MS;
  }

  /** The controller the last successful call reached. */
  get activeController(): string | undefined {
    return this.active;
  }

  registerBroker(request: BrokerRegistrationRequest): Promise<BrokerRegistrationResponse> {
    return this.call('BrokerRegistration', brokerRegistrationToProto(request), brokerRegistrationResponseFromProto);
  }

  brokerHeartbeat(request: BrokerHeartbeatRequest): Promise<BrokerHeartbeatResponse> {
    return this.call('BrokerHeartbeat', request, brokerHeartbeatResponseFromProto);
  }

  /**
   * Opens the broker's session call with the controller believed active. A NOT_CONTROLLER refusal
   * naming another controller points later calls there; the caller opens a new session then.
   */
  openBrokerSession(request: { brokerId: number; brokerEpoch: number }): BrokerSessionCall {
    const address = this.nextCandidate();
    const client = this.clientFor(address) as unknown as Record<string, (request: unknown) => grpc.ClientReadableStream<Record<string, unknown>>>;
    const call = client['BrokerSession']!(request);
    let accept!: () => void;
    let refuse!: (error: unknown) => void;
    const accepted = new Promise<void>((resolve, reject) => {
      accept = resolve;
      refuse = reject;
    });
    // A refusal nobody awaits must not become an unhandled rejection.
    accepted.catch(() => undefined);
    const ended = new Promise<void>((resolve) => {
      call.on('data', (event: Record<string, unknown>) => {
        const failure = controllerErrorFromProto(event['error']);
        if (failure === undefined) {
          this.active = address;
          accept();
          return;
        }
        if (failure instanceof NotControllerError) {
          const named = failure.activeControllerAddress;
          this.active = named !== undefined && named !== address ? named : undefined;
        }
        refuse(failure);
      });
      call.on('error', (error: grpc.ServiceError) => {
        if (this.active === address && error.code !== grpc.status.CANCELLED) this.active = undefined;
        refuse(new RaftkaError('NETWORK_EXCEPTION', `BrokerSession to ${address}: ${error.details || error.message}`, { cause: error }));
        resolve();
      });
      call.on('end', () => {
        refuse(new RaftkaError('NETWORK_EXCEPTION', `BrokerSession to ${address} ended before it was accepted`));
        resolve();
      });
    });
    return { address, accepted, ended, close: () => call.cancel() };
  }

  alterPartition(request: AlterPartitionRequest): Promise<AlterPartitionResponse> {
    return this.call('AlterPartition', request, alterPartitionResponseFromProto);
  }

  electPreferredLeaders(): Promise<ElectLeadersResponse> {
    return this.call('ElectLeaders', { preferred: true }, electLeadersResponseFromProto);
  }

  createTopics(request: CreateTopicsRequest): Promise<CreateTopicsResponse> {
    return this.call('CreateTopics', createTopicsToProto(request), createTopicsResponseFromProto);
  }

  deleteTopics(request: DeleteTopicsRequest): Promise<DeleteTopicsResponse> {
    return this.call('DeleteTopics', request, deleteTopicsResponseFromProto);
  }

  createPartitions(request: CreatePartitionsRequest): Promise<CreatePartitionsResponse> {
    return this.call('CreatePartitions', createPartitionsToProto(request), createPartitionsResponseFromProto);
  }

  describeConfigs(request: DescribeConfigsRequest): Promise<DescribeConfigsResponse> {
    return this.call('DescribeConfigs', describeConfigsToProto(request), describeConfigsResponseFromProto);
  }

  incrementalAlterConfigs(request: IncrementalAlterConfigsRequest): Promise<IncrementalAlterConfigsResponse> {
    return this.call('IncrementalAlterConfigs', incrementalAlterConfigsToProto(request), incrementalAlterConfigsResponseFromProto);
  }

  allocateProducerIds(request: AllocateProducerIdsRequest): Promise<AllocateProducerIdsResponse> {
    return this.call('AllocateProducerIds', request, allocateProducerIdsResponseFromProto);
  }

  close(): void {
    this.closed = true;
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private clientFor(address: string): GrpcClient {
    let client = this.clients.get(address);
    if (!client) {
      const Service = loadControllerService();
      client = new Service(address, grpc.credentials.createInsecure(), CONTROLLER_CHANNEL_OPTIONS) as unknown as GrpcClient;
      this.clients.set(address, client);
    }
    return client;
  }

  private nextCandidate(): string {
    if (this.active !== undefined) return this.active;
    const address = this.controllers[this.nextIndex % this.controllers.length]!;
    this.nextIndex++;
    return address;
  }

  private async call<R>(method: string, request: unknown, parse: (message: Record<string, unknown>) => R): Promise<R> {
    const deadline = Date.now() + this.requestTimeoutMs;
    let lastError: unknown;
    while (!this.closed) {
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) break;
      const address = this.nextCandidate();
      let response: Record<string, unknown>;
      try {
        response = await this.unary(address, method, request, remainingMs);
      } catch (error) {
        // Unreachable or too slow: forget it and try the next controller.
        lastError = error;
        if (this.active === address) this.active = undefined;
        await pause(CONTROLLER_RETRY_BACKOFF_MS, deadline);
        continue;
      }
      const failure = controllerErrorFromProto(response['error']);
      if (failure instanceof NotControllerError) {
        lastError = failure;
        const named = failure.activeControllerAddress;
        if (named !== undefined && named !== address) {
          this.active = named;
        } else {
          this.active = undefined;
          await pause(CONTROLLER_RETRY_BACKOFF_MS, deadline);
        }
        continue;
      }
      if (failure) throw failure;
      this.active = address;
      return parse(response);
    }
    if (this.closed) throw new RaftkaError('SHUTTING_DOWN', `${method}: the controller client is closed`);
    throw new RaftkaError('REQUEST_TIMED_OUT', `${method}: no active controller answered within ${this.requestTimeoutMs} ms (last error: ${describe(lastError)})`, {
      cause: lastError,
    });
  }

  private unary(address: string, method: string, request: unknown, timeoutMs: number): Promise<Record<string, unknown>> {
    const client = this.clientFor(address);
    return new Promise((resolve, reject) => {
      client[method]!(request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error) reject(new RaftkaError(error.code === grpc.status.DEADLINE_EXCEEDED ? 'REQUEST_TIMED_OUT' : 'NETWORK_EXCEPTION', `${method} to ${address}: ${error.details || error.message}`, { cause: error }));
        else resolve(response as Record<string, unknown>);
      });
    });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Retry back-off, cut short by the call's deadline. */
function pause(ms: number, deadline: number): Promise<void> {
  const waitMs = Math.max(0, Math.min(ms, deadline - Date.now()));
  return new Promise((resolve) => setTimeout(resolve, waitMs));
}
