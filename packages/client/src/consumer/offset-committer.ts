// Committing and fetching a group's offsets (OffsetCommit / OffsetFetch on the coordinator).
//
// A committed offset is the NEXT offset to consume (one past the last processed record) together
// with the leader epoch of the last consumed record (KIP-320): a consumer that later starts from
// the commit validates the epoch against the leader's log, so it notices when the log was
// truncated under the committed position after an unclean election.
//
// Error mapping follows Kafka's ConsumerCoordinator:
//   - coordinator moved / loading / transport failure: retriable, the caller retries after backoff;
//   - REBALANCE_IN_PROGRESS: RebalanceInProgressError (retriable; poll to finish the rebalance);
//   - UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION: CommitFailedError: the group moved on without this
//     member, its partitions may already be read by another, and the commit must not land;
//   - FENCED_INSTANCE_ID: a newer incarnation of this static member exists (fatal for this one);
//   - anything else (OFFSET_METADATA_TOO_LARGE, ...): the error itself, not retriable.

import { RaftkaError, type ErrorCodeName } from '@raftka/protocol';
import { errorFromResponse, type TopicPartition } from '../cluster-client.js';
import type { OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse } from '../network/client-messages.js';
import type { CoordinatorClient } from './coordinator-client.js';
import { partitionName } from './subscription-state.js';

/** An offset to commit for one partition. */
export interface OffsetAndMetadata extends TopicPartition {
  /** The next offset to consume. */
  offset: number;
  /** Leader epoch of the last consumed record (-1 when unknown). */
  leaderEpoch?: number | undefined;
  metadata?: string | undefined;
}

/** A committed offset as fetched; `offset` is -1 when the group has none for the partition. */
export interface CommittedOffset extends TopicPartition {
  offset: number;
  leaderEpoch: number;
  metadata: string;
}

/** Who commits: a group member (generation, member id) or a client outside group management. */
export interface CommitIdentity {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | undefined;
}

/** The commit was refused because the group rebalanced without this member (Kafka's CommitFailedException). */
export class CommitFailedError extends RaftkaError {
  constructor(code: ErrorCodeName, detail: string) {
    super(
      code,
      `commit failed: the group has rebalanced and its partitions may now belong to another member (${detail}); ` +
        'records since the last successful commit may be processed again. Poll sooner (or raise maxPollIntervalMs) to keep the membership',
      { retriable: false },
    );
    this.name = 'CommitFailedError';
  }
}

/** The group is rebalancing; the commit may succeed once poll completes the rebalance. */
export class RebalanceInProgressError extends RaftkaError {
  constructor(detail: string) {
    super('REBALANCE_IN_PROGRESS', `commit refused while the group rebalances (${detail}); poll to complete the rebalance, then commit again`, { retriable: true });
    this.name = 'RebalanceInProgressError';
  }
}

/** The first error of an OffsetCommit answer as a typed error, or undefined when all partitions succeeded. */
export function commitError(response: OffsetCommitResponse): RaftkaError | undefined {
  for (const topic of response.topics) {
    for (const partition of topic.partitions) {
      if (partition.errorCode === 0) continue;
      const error = errorFromResponse(partition.errorCode, partition.errorMessage, `committing ${partitionName({ topic: topic.name, partition: partition.partitionIndex })}`);
      switch (error.code) {
        case 'UNKNOWN_MEMBER_ID':
        case 'ILLEGAL_GENERATION':
        case 'FENCED_INSTANCE_ID':
          return new CommitFailedError(error.code, error.message);
        case 'REBALANCE_IN_PROGRESS':
          return new RebalanceInProgressError(error.message);
        default:
          return error;
      }
    }
  }
  return undefined;
}

/** One OffsetCommit attempt; resolves when every partition succeeded, else throws the first error. */
export async function commitOffsetsOnce(coordinator: CoordinatorClient, identity: CommitIdentity, offsets: readonly OffsetAndMetadata[]): Promise<void> {
  if (offsets.length === 0) return;
  const topics = new Map<string, OffsetCommitRequest['topics'][number]>();
  for (const entry of offsets) {
    if (!Number.isSafeInteger(entry.offset) || entry.offset < 0) {
      throw new RaftkaError('INVALID_REQUEST', `cannot commit offset ${entry.offset} for ${partitionName(entry)}: offsets are non-negative integers`, { retriable: false });
    }
    const topic = topics.get(entry.topic) ?? { name: entry.topic, partitions: [] };
    topic.partitions.push({ partitionIndex: entry.partition, committedOffset: entry.offset, committedLeaderEpoch: entry.leaderEpoch ?? -1, committedMetadata: entry.metadata ?? '' });
    topics.set(entry.topic, topic);
  }
  const request: OffsetCommitRequest = {
    groupId: identity.groupId,
    generationIdOrMemberEpoch: identity.generationId,
    memberId: identity.memberId,
    groupInstanceId: identity.groupInstanceId,
    topics: [...topics.values()],
  };
  const response = await coordinator.call<OffsetCommitRequest, OffsetCommitResponse>('OffsetCommit', request, {
    errorCodeOf: (answer) => answer.topics.flatMap((topic) => topic.partitions).find((partition) => partition.errorCode !== 0)?.errorCode ?? 0,
  });
  const error = commitError(response);
  if (error) throw error;
}

/** The group's committed offsets for these partitions (one attempt; whole-call errors throw). */
export async function fetchCommittedOnce(coordinator: CoordinatorClient, groupId: string, partitions: readonly TopicPartition[]): Promise<CommittedOffset[]> {
  if (partitions.length === 0) return [];
  const topics = new Map<string, OffsetFetchRequest['topics'][number]>();
  for (const { topic, partition } of partitions) {
    const entry = topics.get(topic) ?? { name: topic, partitionIndexes: [] };
    entry.partitionIndexes.push(partition);
    topics.set(topic, entry);
  }
  const response = await coordinator.call<OffsetFetchRequest, OffsetFetchResponse>(
    'OffsetFetch',
    { groupId, topics: [...topics.values()], allTopics: false, requireStable: true },
    { errorCodeOf: (answer) => answer.errorCode },
  );
  if (response.errorCode !== 0) throw errorFromResponse(response.errorCode, response.errorMessage, `fetching the committed offsets of group ${groupId}`);
  const results: CommittedOffset[] = [];
  for (const topic of response.topics) {
    for (const partition of topic.partitions) {
      if (partition.errorCode !== 0) {
        throw errorFromResponse(partition.errorCode, partition.errorMessage, `fetching the committed offset of ${partitionName({ topic: topic.name, partition: partition.partitionIndex })}`);
      }
      results.push({
        topic: topic.name,
        partition: partition.partitionIndex,
        offset: partition.committedOffset,
        leaderEpoch: partition.committedLeaderEpoch,
        metadata: partition.metadata ?? '',
      });
    }
  }
  return results;
}
