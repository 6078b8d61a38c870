// Finding and talking to a consumer group's coordinator (the broker leading the group's
// `__consumer_offsets` partition).
//
// The coordinator moves when that partition's leadership moves, so the client treats its
// knowledge as a cache: FindCoordinator fills it, and any sign that it is stale empties it —
// NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE in an answer, or a transport failure (Kafka's
// AbstractCoordinator.markCoordinatorUnknown). The next call looks it up again, with exponential
// backoff between failed lookups (KIP-580) so a cluster electing a new leader is not flooded.
// COORDINATOR_LOAD_IN_PROGRESS keeps the coordinator: it is the right broker, still reading the
// partition, so the caller only waits and retries.

import { RaftkaError } from '@raftka/protocol';
import { errorFromResponse, toRaftkaError, type ClientRuntime, type ClusterClient } from '../cluster-client.js';
import type { FindCoordinatorRequest, FindCoordinatorResponse } from '../network/client-messages.js';

export interface CoordinatorClientOptions {
  groupId: string;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  requestTimeoutMs: number;
}

/** Error codes that mean "ask FindCoordinator again" (the cached coordinator is stale). */
export function isCoordinatorMovedCode(code: string): boolean {
  return code === 'NOT_COORDINATOR' || code === 'COORDINATOR_NOT_AVAILABLE';
}

/**
 * One FindCoordinator round for `groupId`: the coordinator's node id, once the cluster metadata
 * knows its address (a broker that just joined may be newer than our metadata). Throws the
 * answer's error (e.g. COORDINATOR_NOT_AVAILABLE while __consumer_offsets has no leader); the
 * caller decides about retries.
 */
export async function lookUpCoordinator(cluster: ClusterClient, groupId: string): Promise<number> {
  const response = await cluster.callAny<FindCoordinatorRequest, FindCoordinatorResponse>('RaftkaGroups', 'FindCoordinator', {
    keyType: 'COORDINATOR_GROUP',
    coordinatorKeys: [groupId],
  });
  const answer = response.coordinators.find((coordinator) => coordinator.key === groupId);
  if (!answer) throw new RaftkaError('COORDINATOR_NOT_AVAILABLE', `FindCoordinator named no coordinator for group ${groupId}`);
  if (answer.errorCode !== 0) throw errorFromResponse(answer.errorCode, answer.errorMessage, `finding the coordinator of group ${groupId}`);
  if (cluster.metadata.broker(answer.nodeId) === undefined) {
    cluster.metadata.requestUpdate();
    await cluster.refreshMetadata();
    if (cluster.metadata.broker(answer.nodeId) === undefined) {
      throw new RaftkaError('COORDINATOR_NOT_AVAILABLE', `coordinator ${answer.nodeId} of group ${groupId} is not in the cluster metadata yet`);
    }
  }
  return answer.nodeId;
}

export class CoordinatorClient {
  readonly #cluster: ClusterClient;
  readonly #runtime: ClientRuntime;
  readonly #options: CoordinatorClientOptions;
  // Invariant: undefined whenever the last answer or transport error said it is stale.
  #coordinatorId: number | undefined;
  #lookup: Promise<number> | undefined;
  #failedLookups = 0;

  constructor(cluster: ClusterClient, runtime: ClientRuntime, options: CoordinatorClientOptions) {
    this.#cluster = cluster;
    this.#runtime = runtime;
    this.#options = options;
  }

  get coordinatorId(): number | undefined {
    return this.#coordinatorId;
  }

  markUnknown(): void {
    this.#coordinatorId = undefined;
  }

  /** The coordinator's node id, looked up (once, however many callers wait) when unknown. */
  find(): Promise<number> {
    if (this.#coordinatorId !== undefined) return Promise.resolve(this.#coordinatorId);
    this.#lookup ??= this.#findOnce().finally(() => {
      this.#lookup = undefined;
    });
    return this.#lookup;
  }

  async #findOnce(): Promise<number> {
    if (this.#failedLookups > 0) await this.#cluster.delay(this.backoffMs(this.#failedLookups));
    try {
      const nodeId = await lookUpCoordinator(this.#cluster, this.#options.groupId);
      this.#failedLookups = 0;
      this.#coordinatorId = nodeId;
      return nodeId;
    } catch (error) {
      this.#failedLookups += 1;
      throw toRaftkaError(error);
    }
  }

  /**
   * Calls the coordinator. A transport failure marks it unknown and rethrows; so does a
   * whole-call NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE that `errorCodeOf` finds in the answer
   * (the answer is then still returned, for the caller's own error handling).
   */
  async call<Request, Response>(method: string, request: Request, options: { timeoutMs?: number; errorCodeOf?: (response: Response) => number } = {}): Promise<Response> {
    const nodeId = await this.find();
    let response: Response;
    try {
      response = await this.#cluster.call<Request, Response>(nodeId, 'RaftkaGroups', method, request, options.timeoutMs ?? this.#options.requestTimeoutMs);
    } catch (error) {
      const raftkaError = toRaftkaError(error);
      if (raftkaError.code !== 'SHUTTING_DOWN' && this.#coordinatorId === nodeId) this.#coordinatorId = undefined;
      throw raftkaError;
    }
    const code = options.errorCodeOf?.(response) ?? 0;
    if (code !== 0) {
      const name = errorFromResponse(code, '', '').code;
      if (isCoordinatorMovedCode(name) && this.#coordinatorId === nodeId) this.#coordinatorId = undefined;
    }
    return response;
  }

  /** Exponential backoff with jitter for the `attempt`-th consecutive failure (KIP-580). */
  backoffMs(attempt: number): number {
    const baseMs = Math.min(this.#options.retryBackoffMaxMs, this.#options.retryBackoffMs * 2 ** Math.max(0, attempt - 1));
    return Math.round(baseMs * (0.8 + 0.4 * this.#runtime.random()));
  }
}
