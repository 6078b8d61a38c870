// Error codes and error classes shared by every Raftka package.
//
// Two kinds of failure exist (see STYLE.md): a broken invariant is a bug and goes through
// `invariant()`, which throws `InvariantViolation` and is meant to crash the process; an
// operational failure is a `RaftkaError` carrying a code (Kafka's name where Kafka has one),
// whether a retry can succeed, an optional cause, and a message that tells the user what to do.
//
// The numeric codes are Kafka's protocol error codes where Kafka defines the error, so that the
// Kafka wire-protocol listener planned in DESIGN.md can answer with the same numbers. Raftka's
// own codes live at 10000 and above, out of Kafka's range.

export const ErrorCode = {
  NONE: 0,
  UNKNOWN_SERVER_ERROR: -1,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  INVALID_FETCH_SIZE: 4,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  BROKER_NOT_AVAILABLE: 8,
  REPLICA_NOT_AVAILABLE: 9,
  MESSAGE_TOO_LARGE: 10,
  STALE_CONTROLLER_EPOCH: 11,
  OFFSET_METADATA_TOO_LARGE: 12,
  NETWORK_EXCEPTION: 13,
  COORDINATOR_LOAD_IN_PROGRESS: 14,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  INVALID_TOPIC_EXCEPTION: 17,
  RECORD_LIST_TOO_LARGE: 18,
  NOT_ENOUGH_REPLICAS: 19,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 20,
  INVALID_REQUIRED_ACKS: 21,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  INVALID_COMMIT_OFFSET_SIZE: 28,
  INVALID_TIMESTAMP: 32,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REPLICA_ASSIGNMENT: 39,
  INVALID_CONFIG: 40,
  NOT_CONTROLLER: 41,
  INVALID_REQUEST: 42,
  POLICY_VIOLATION: 44,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
  INVALID_PRODUCER_EPOCH: 47,
  INVALID_PRODUCER_ID_MAPPING: 49,
  KAFKA_STORAGE_ERROR: 56,
  LOG_DIR_NOT_FOUND: 57,
  UNKNOWN_PRODUCER_ID: 59,
  REASSIGNMENT_IN_PROGRESS: 60,
  GROUP_ID_NOT_FOUND: 69,
  FENCED_LEADER_EPOCH: 74,
  UNKNOWN_LEADER_EPOCH: 75,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
  OFFSET_NOT_AVAILABLE: 78,
  MEMBER_ID_REQUIRED: 79,
  PREFERRED_LEADER_NOT_AVAILABLE: 80,
  GROUP_MAX_SIZE_REACHED: 81,
  FENCED_INSTANCE_ID: 82,
  ELIGIBLE_LEADERS_NOT_AVAILABLE: 83,
  ELECTION_NOT_NEEDED: 84,
  NON_EMPTY_GROUP: 68,
  GROUP_SUBSCRIBED_TO_TOPIC: 86,
  INVALID_RECORD: 87,
  UNSTABLE_OFFSET_COMMIT: 88,
  THROTTLING_QUOTA_EXCEEDED: 89,
  PRODUCER_FENCED: 90,
  INCONSISTENT_VOTER_SET: 92,
  INVALID_UPDATE_VERSION: 93,
  FEATURE_UPDATE_FAILED: 94,
  BROKER_ID_NOT_REGISTERED: 102,
  INCONSISTENT_TOPIC_ID: 103,
  INCONSISTENT_CLUSTER_ID: 104,
  FENCED_MEMBER_EPOCH: 110,
  STALE_BROKER_EPOCH: 77,
  SNAPSHOT_NOT_FOUND: 98,
  POSITION_OUT_OF_RANGE: 99,
  UNKNOWN_TOPIC_ID: 100,
  INVALID_RECORD_STATE: 121,
  INELIGIBLE_REPLICA: 107,
  // Raftka's own codes, where Kafka has no equivalent.
  NOT_LEADER: 10001,
  STORAGE_CORRUPTED: 10002,
  INVALID_CONFIG_KEY: 10003,
  SHUTTING_DOWN: 10004,
  QUORUM_LEADER_UNKNOWN: 10005,
  // A consumer's wakeup() interrupted a blocking call (Kafka's WakeupException, which has no code).
  CONSUMER_WAKEUP: 10100,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;

// Errors a client may retry after waiting, refreshing metadata or finding the new leader.
const retriableCodes: ReadonlySet<ErrorCodeName> = new Set<ErrorCodeName>([
  'CORRUPT_MESSAGE', // Kafka marks it retriable: the bytes may have been damaged in transit.
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_OR_FOLLOWER',
  'REQUEST_TIMED_OUT',
  'NETWORK_EXCEPTION',
  'COORDINATOR_LOAD_IN_PROGRESS',
  'COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR',
  'NOT_ENOUGH_REPLICAS',
  'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
  'NOT_CONTROLLER',
  'KAFKA_STORAGE_ERROR',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'OFFSET_NOT_AVAILABLE',
  'REBALANCE_IN_PROGRESS',
  'ELIGIBLE_LEADERS_NOT_AVAILABLE',
  'PREFERRED_LEADER_NOT_AVAILABLE',
  'UNSTABLE_OFFSET_COMMIT',
  'THROTTLING_QUOTA_EXCEEDED',
  'NOT_LEADER',
  'SHUTTING_DOWN',
  'QUORUM_LEADER_UNKNOWN',
]);

export function isRetriableCode(code: ErrorCodeName): boolean {
  return retriableCodes.has(code);
}

const namesByNumber = new Map<number, ErrorCodeName>(
  (Object.entries(ErrorCode) as [ErrorCodeName, number][]).map(([name, value]) => [value, name]),
);

/** The name of a numeric error code, `UNKNOWN_SERVER_ERROR` for a number we do not know. */
export function errorCodeName(code: number): ErrorCodeName {
  return namesByNumber.get(code) ?? 'UNKNOWN_SERVER_ERROR';
}

export interface RaftkaErrorOptions {
  cause?: unknown;
  /** Overrides the default retriability of the code (rarely needed). */
  retriable?: boolean;
}

/** An operational failure a caller can meet and act on. */
export class RaftkaError extends Error {
  readonly code: ErrorCodeName;
  readonly retriable: boolean;

  constructor(code: ErrorCodeName, message: string, options: RaftkaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RaftkaError';
    this.code = code;
    this.retriable = options.retriable ?? isRetriableCode(code);
  }

  /** Kafka's numeric code for this error. */
  get errorCode(): number {
    return ErrorCode[this.code];
  }
}

/** A Raft quorum request reached a node that is not the leader; it says who is, when known. */
export class NotLeaderError extends RaftkaError {
  readonly leaderId: number | undefined;
  readonly leaderAddress: string | undefined;
  readonly epoch: number;

  constructor(args: { leaderId?: number; leaderAddress?: string; epoch: number; message?: string }) {
    const where =
      args.leaderId === undefined
        ? 'no leader is known yet; retry after an election'
        : `the leader is node ${args.leaderId}${args.leaderAddress ? ` at ${args.leaderAddress}` : ''}`;
    super('NOT_LEADER', args.message ?? `this node is not the quorum leader in epoch ${args.epoch}: ${where}`);
    this.name = 'NotLeaderError';
    this.leaderId = args.leaderId;
    this.leaderAddress = args.leaderAddress;
    this.epoch = args.epoch;
  }
}

/** A broken invariant: a bug in Raftka, never a user error. The process should stop. */
export class InvariantViolation extends Error {
  constructor(message: string) {
    super(`invariant violation (this is a bug in Raftka): ${message}`);
    this.name = 'InvariantViolation';
  }
}

/** Asserts that `condition` holds; a failure is a bug, so it throws `InvariantViolation`. */
export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new InvariantViolation(typeof message === 'string' ? message : message());
  }
}

/** Exhaustiveness check for discriminated unions: reaching it is a bug. */
export function assertNever(value: never, what = 'value'): never {
  throw new InvariantViolation(`unexpected ${what}: ${JSON.stringify(value)}`);
}
