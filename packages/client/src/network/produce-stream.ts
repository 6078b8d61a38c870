// One ProduceStream call (proto/client.proto) to a broker: Produce requests written in order on
// a single HTTP/2 stream, answers matched to requests by position.
//
// Why a stream: separate unary calls on one channel reach the broker's handlers in the order
// their messages finish arriving, so two batches of one partition in flight at once could be
// appended out of order. Messages of one stream keep their order, and the broker starts and
// answers them in that order, so a producer can keep several batches of a partition in flight
// (Kafka's max.in.flight.requests.per.connection over its one TCP connection) without losing
// per-partition order.
//
// Requests are written in the order `send` was called even when a request's bytes are still
// being prepared (compression off the event loop): a request waits for the ones before it.
//
// Failures: a stream that errors or ends early fails every unanswered request with
// NETWORK_EXCEPTION (retriable); a request unanswered after requestTimeoutMs cancels the stream
// and fails every unanswered request with REQUEST_TIMED_OUT, as Kafka closes a connection whose
// request timed out. The next `send` opens a new stream.

import * as grpc from '@grpc/grpc-js';
import { invariant, RaftkaError } from '@raftka/protocol';
import type { Timers } from '../producer/buffer-pool.js';
import { errorFromGrpcStatus } from './broker-connection-pool.js';
import type { ProduceRequest, ProduceResponse } from './client-messages.js';

export interface ProduceStreamOptions {
  nodeId: number;
  /** Opens the bidirectional call (the RaftkaClient service client of the broker's channel). */
  open: () => grpc.ClientDuplexStream<ProduceRequest, ProduceResponse>;
  /** Requests unanswered at once on this stream (`max.in.flight.requests.per.connection`). */
  maxInFlight: number;
  requestTimeoutMs: number;
  clock: () => number;
  timers: Timers;
}

interface PendingRequest {
  /** Undefined until the request's bytes are ready. */
  request: ProduceRequest | undefined;
  failure: RaftkaError | undefined;
  written: boolean;
  sentAtMs: number;
  resolve: (response: ProduceResponse) => void;
  reject: (error: RaftkaError) => void;
}

export class ProduceStream {
  readonly #options: ProduceStreamOptions;
  #call: grpc.ClientDuplexStream<ProduceRequest, ProduceResponse> | undefined;
  // Invariant: in send order; written entries form a prefix; answers arrive for that prefix in order.
  #pending: PendingRequest[] = [];
  #head = 0;
  #timer: unknown;
  #closed = false;

  constructor(options: ProduceStreamOptions) {
    invariant(options.maxInFlight >= 1 && options.requestTimeoutMs > 0, 'produce stream limits must be positive');
    this.#options = options;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.#pending.length - this.#head;
  }

  hasCapacity(): boolean {
    return !this.#closed && this.inFlight < this.#options.maxInFlight;
  }

  /**
   * Queues a request behind every earlier one and resolves with its answer. `request` may still
   * be in preparation; the stream writes it once it and all earlier requests are ready.
   */
  send(request: ProduceRequest | Promise<ProduceRequest>): Promise<ProduceResponse> {
    if (this.#closed) return Promise.reject(new RaftkaError('SHUTTING_DOWN', 'the client is closed', { retriable: false }));
    return new Promise<ProduceResponse>((resolve, reject) => {
      const entry: PendingRequest = { request: undefined, failure: undefined, written: false, sentAtMs: this.#options.clock(), resolve, reject };
      this.#pending.push(entry);
      if (this.#timer === undefined) this.#armTimer();
      if (request instanceof Promise) {
        request.then(
          (ready) => {
            entry.request = ready;
            this.#writeReady();
          },
          (error: unknown) => {
            entry.failure = error instanceof RaftkaError ? error : new RaftkaError('UNKNOWN_SERVER_ERROR', String(error), { cause: error, retriable: false });
            this.#writeReady();
          },
        );
      } else {
        entry.request = request;
        this.#writeReady();
      }
    });
  }

  /** Fails what is unanswered and ends the stream. */
  close(): void {
    this.#closed = true;
    this.#failAll(new RaftkaError('SHUTTING_DOWN', 'the client is closed', { retriable: false }));
  }

  #writeReady(): void {
    for (let index = this.#head; index < this.#pending.length; index++) {
      const entry = this.#pending[index]!;
      if (entry.written) continue;
      if (entry.failure) {
        // Never written, so nothing waits for an answer: leave the queue only if at the head
        // of the unwritten part, which keeps answers and entries aligned.
        if (index === this.#head) {
          this.#head++;
          entry.reject(entry.failure);
          continue;
        }
        // A failed entry behind written ones: mark it written-with-no-answer is impossible, so
        // wait until the entries before it are answered (#onResponse calls back here).
        return;
      }
      if (entry.request === undefined) return;
      entry.written = true;
      this.#callOrOpen().write(entry.request);
    }
    this.#compact();
  }

  #callOrOpen(): grpc.ClientDuplexStream<ProduceRequest, ProduceResponse> {
    if (this.#call) return this.#call;
    const call = this.#options.open();
    this.#call = call;
    call.on('data', (response: ProduceResponse) => {
      if (this.#call === call) this.#onResponse(response);
    });
    call.on('error', (error: grpc.ServiceError) => {
      if (this.#call === call) this.#onBroken(errorFromGrpcStatus(error, this.#options.nodeId));
    });
    call.on('end', () => {
      if (this.#call === call) this.#onBroken(new RaftkaError('NETWORK_EXCEPTION', `broker ${this.#options.nodeId} ended the produce stream`));
    });
    return call;
  }

  #onResponse(response: ProduceResponse): void {
    const entry = this.#pending[this.#head];
    if (!entry || !entry.written) {
      this.#onBroken(new RaftkaError('UNKNOWN_SERVER_ERROR', `broker ${this.#options.nodeId} answered a produce request that was not sent`));
      return;
    }
    this.#head++;
    entry.resolve(response);
    this.#writeReady();
    this.#rearmTimer();
  }

  #onBroken(error: RaftkaError): void {
    const call = this.#call;
    this.#call = undefined;
    call?.cancel();
    // Written requests may or may not have been applied; unwritten ones were not sent at all,
    // but are failed as well so that retries keep their order.
    this.#failAll(error);
  }

  #failAll(error: RaftkaError): void {
    const call = this.#call;
    this.#call = undefined;
    call?.cancel();
    if (this.#timer !== undefined) this.#options.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = this.#pending.slice(this.#head);
    this.#pending = [];
    this.#head = 0;
    for (const entry of pending) entry.reject(error);
  }

  #armTimer(): void {
    const oldest = this.#pending[this.#head];
    if (!oldest) return;
    const waitMs = Math.max(0, oldest.sentAtMs + this.#options.requestTimeoutMs - this.#options.clock());
    this.#timer = this.#options.timers.setTimeout(() => {
      this.#timer = undefined;
      const head = this.#pending[this.#head];
      if (!head) return;
      if (this.#options.clock() - head.sentAtMs >= this.#options.requestTimeoutMs) {
        this.#onBroken(new RaftkaError('REQUEST_TIMED_OUT', `produce request to broker ${this.#options.nodeId} timed out after ${this.#options.requestTimeoutMs} ms`));
      } else {
        this.#armTimer();
      }
    }, waitMs + 1);
  }

  #rearmTimer(): void {
    // The timer watches the oldest request; it re-checks itself when it fires, so it only needs
    // arming when none runs (cheaper than resetting it on every answer).
    if (this.#timer === undefined) this.#armTimer();
  }

  #compact(): void {
    if (this.#head > 0 && this.#head === this.#pending.length) {
      this.#pending = [];
      this.#head = 0;
    } else if (this.#head >= 1024) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
  }
}
