// Loading proto/quorum.proto and mapping between its messages and the core's types (raft/types.ts).
//
// This is a trust boundary (STYLE.md rule 6): whatever arrives from the network is checked here —
// integers are safe and in range, node ids and epochs non-negative, enums known, records are
// bytes — and a malformed message becomes INVALID_REQUEST instead of reaching the core, which
// asserts rather than re-checks.

import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { RaftkaError } from '@raftka/protocol';
import type {
  BeginQuorumEpochRequest,
  BeginQuorumEpochResponse,
  EndQuorumEpochRequest,
  EndQuorumEpochResponse,
  EntryPayload,
  FetchRequest,
  FetchResponse,
  FetchSnapshotRequest,
  FetchSnapshotResponse,
  LogEntry,
  QuorumDescription,
  RaftErrorCode,
  ReplicaDescription,
  SnapshotId,
  VoteRequest,
  VoteResponse,
} from '../raft/types.js';
import { DecodeError, decodeRecords, encodeRecords } from '../storage/entry-codec.js';
import { findProtoDirectory } from './proto-path.js';

/** Proto-loader options fixed by the transport: see the mapping functions below, which rely on them. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

/** A fetch may ask to be held at most this long: a peer cannot make the leader park it for hours. */
export const FETCH_MAX_WAIT_MS_LIMIT = 60_000;

/** Proto's "no node" (Kafka's convention for optional node ids). */
const NO_NODE = -1;

let cachedService: grpc.ServiceClientConstructor | undefined;

/** The QuorumService client constructor (whose `.service` is the server definition). */
export function loadQuorumService(): grpc.ServiceClientConstructor {
  if (cachedService) return cachedService;
  const file = path.join(findProtoDirectory('quorum.proto'), 'quorum.proto');
  const definition = protoLoader.loadSync(file, PROTO_LOADER_OPTIONS);
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    raftka: { quorum: { v1: { QuorumService: grpc.ServiceClientConstructor } } };
  };
  cachedService = loaded.raftka.quorum.v1.QuorumService;
  return cachedService;
}

// ---- Validation helpers ----

type ProtoObject = Record<string, unknown>;

function invalid(what: string): RaftkaError {
  return new RaftkaError('INVALID_REQUEST', `malformed quorum message: ${what}`, { retriable: false });
}

function object(value: unknown, field: string): ProtoObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${field} is not a message`);
  return value as ProtoObject;
}

function integer(message: ProtoObject, field: string, min: number): number {
  const value = message[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalid(`${field}=${String(value)} is not an integer >= ${min}`);
  }
  return value;
}

function nonNegative(message: ProtoObject, field: string): number {
  return integer(message, field, 0);
}

function atMost(value: number, limit: number, field: string): number {
  if (value > limit) throw invalid(`${field}=${value} is above the limit ${limit}`);
  return value;
}

function optionalNode(message: ProtoObject, field: string): number | undefined {
  const value = integer(message, field, NO_NODE);
  return value === NO_NODE ? undefined : value;
}

function boolean(message: ProtoObject, field: string): boolean {
  const value = message[field];
  if (typeof value !== 'boolean') throw invalid(`${field} is not a boolean`);
  return value;
}

function nodeList(message: ProtoObject, field: string): number[] {
  const value = message[field];
  if (!Array.isArray(value)) throw invalid(`${field} is not a list`);
  return value.map((item, index) => {
    if (typeof item !== 'number' || !Number.isSafeInteger(item) || item < 0) throw invalid(`${field}[${index}] is not a node id`);
    return item;
  });
}

const ERROR_CODES: ReadonlySet<string> = new Set<RaftErrorCode>([
  'NONE',
  'FENCED_LEADER_EPOCH',
  'NOT_LEADER_OR_FOLLOWER',
  'UNKNOWN_LEADER_EPOCH',
  'INCONSISTENT_VOTER_SET',
  'SNAPSHOT_NOT_FOUND',
  'POSITION_OUT_OF_RANGE',
]);

function errorCode(message: ProtoObject): RaftErrorCode {
  const value = message.errorCode;
  if (typeof value !== 'string' || !ERROR_CODES.has(value)) throw invalid(`errorCode=${String(value)} is unknown`);
  return value as RaftErrorCode;
}

function bytes(value: unknown, field: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalid(`${field} is not bytes`);
  return value;
}

/** Unpacks a DataBatch-style records buffer (views, no copies). */
function recordsFrom(value: unknown, field: string): Uint8Array[] {
  const packed = bytes(value, field);
  try {
    return decodeRecords(packed);
  } catch (error) {
    if (error instanceof DecodeError) throw invalid(`${field}: ${error.message}`);
    throw error;
  }
}

/** Packs records as DataBatch.records (also AppendRecordsRequest.records). */
export function recordsToProto(records: readonly Uint8Array[]): Buffer {
  return encodeRecords(records);
}

function snapshotIdFrom(value: unknown, field: string): SnapshotId {
  const message = object(value, field);
  return { endOffset: nonNegative(message, 'endOffset'), epoch: nonNegative(message, 'epoch') };
}

function nodeOrNone(id: number | undefined): number {
  return id ?? NO_NODE;
}

// ---- Entries ----

export function entryToProto(entry: LogEntry): ProtoObject {
  const payload = entry.payload;
  return payload.kind === 'data'
    ? { offset: entry.offset, epoch: entry.epoch, data: { records: encodeRecords(payload.records) } }
    : { offset: entry.offset, epoch: entry.epoch, leaderChange: { leaderId: payload.leaderId, voters: payload.voters } };
}

export function entryFromProto(value: unknown): LogEntry {
  const message = object(value, 'entry');
  const offset = nonNegative(message, 'offset');
  const epoch = nonNegative(message, 'epoch');
  let payload: EntryPayload;
  if (message.payload === 'data') {
    const data = object(message.data, 'entry.data');
    payload = { kind: 'data', records: recordsFrom(data.records, `entry ${offset} records`) };
  } else if (message.payload === 'leaderChange') {
    const change = object(message.leaderChange, 'entry.leaderChange');
    payload = { kind: 'leader-change', leaderId: nonNegative(change, 'leaderId'), voters: nodeList(change, 'voters') };
  } else {
    throw invalid(`entry ${offset} has no payload`);
  }
  return { offset, epoch, payload };
}

function entriesFromProto(value: unknown): LogEntry[] {
  if (!Array.isArray(value)) throw invalid('entries is not a list');
  const entries = value.map(entryFromProto);
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.offset !== entries[i - 1]!.offset + 1) throw invalid(`entries are not contiguous at offset ${entries[i]!.offset}`);
    if (entries[i]!.epoch < entries[i - 1]!.epoch) throw invalid(`entry epochs decrease at offset ${entries[i]!.offset}`);
  }
  return entries;
}

// ---- Requests ----

export function voteRequestToProto(request: VoteRequest): ProtoObject {
  return {
    epoch: request.epoch,
    candidateId: request.candidateId,
    lastOffsetEpoch: request.lastOffsetEpoch,
    lastOffset: request.lastOffset,
    preVote: request.preVote,
  };
}

export function voteRequestFromProto(value: unknown): VoteRequest {
  const message = object(value, 'VoteRequest');
  return {
    kind: 'vote-request',
    epoch: nonNegative(message, 'epoch'),
    candidateId: nonNegative(message, 'candidateId'),
    lastOffsetEpoch: nonNegative(message, 'lastOffsetEpoch'),
    lastOffset: nonNegative(message, 'lastOffset'),
    preVote: boolean(message, 'preVote'),
  };
}

export function beginQuorumEpochRequestToProto(request: BeginQuorumEpochRequest): ProtoObject {
  return { epoch: request.epoch, leaderId: request.leaderId };
}

export function beginQuorumEpochRequestFromProto(value: unknown): BeginQuorumEpochRequest {
  const message = object(value, 'BeginQuorumEpochRequest');
  return { kind: 'begin-quorum-epoch-request', epoch: nonNegative(message, 'epoch'), leaderId: nonNegative(message, 'leaderId') };
}

export function endQuorumEpochRequestToProto(request: EndQuorumEpochRequest): ProtoObject {
  return { epoch: request.epoch, leaderId: request.leaderId, preferredSuccessors: request.preferredSuccessors };
}

export function endQuorumEpochRequestFromProto(value: unknown): EndQuorumEpochRequest {
  const message = object(value, 'EndQuorumEpochRequest');
  return {
    kind: 'end-quorum-epoch-request',
    epoch: nonNegative(message, 'epoch'),
    leaderId: nonNegative(message, 'leaderId'),
    preferredSuccessors: nodeList(message, 'preferredSuccessors'),
  };
}

export function fetchRequestToProto(request: FetchRequest): ProtoObject {
  return {
    epoch: request.epoch,
    replicaId: request.replicaId,
    fetchOffset: request.fetchOffset,
    lastFetchedEpoch: request.lastFetchedEpoch,
    maxWaitMs: request.maxWaitMs,
    maxBytes: request.maxBytes,
  };
}

export function fetchRequestFromProto(value: unknown): FetchRequest {
  const message = object(value, 'FetchRequest');
  return {
    kind: 'fetch-request',
    epoch: nonNegative(message, 'epoch'),
    replicaId: nonNegative(message, 'replicaId'),
    fetchOffset: nonNegative(message, 'fetchOffset'),
    lastFetchedEpoch: nonNegative(message, 'lastFetchedEpoch'),
    maxWaitMs: atMost(nonNegative(message, 'maxWaitMs'), FETCH_MAX_WAIT_MS_LIMIT, 'maxWaitMs'),
    maxBytes: nonNegative(message, 'maxBytes'),
  };
}

export function fetchSnapshotRequestToProto(request: FetchSnapshotRequest): ProtoObject {
  return {
    epoch: request.epoch,
    replicaId: request.replicaId,
    snapshotId: request.snapshotId,
    position: request.position,
    maxBytes: request.maxBytes,
  };
}

export function fetchSnapshotRequestFromProto(value: unknown): FetchSnapshotRequest {
  const message = object(value, 'FetchSnapshotRequest');
  return {
    kind: 'fetch-snapshot-request',
    epoch: nonNegative(message, 'epoch'),
    replicaId: nonNegative(message, 'replicaId'),
    snapshotId: snapshotIdFrom(message.snapshotId, 'snapshotId'),
    position: nonNegative(message, 'position'),
    maxBytes: integer(message, 'maxBytes', 1),
  };
}

// ---- Responses ----

export function voteResponseToProto(response: VoteResponse): ProtoObject {
  return {
    epoch: response.epoch,
    errorCode: response.errorCode,
    voteGranted: response.voteGranted,
    preVote: response.preVote,
    leaderId: nodeOrNone(response.leaderId),
  };
}

export function voteResponseFromProto(value: unknown): VoteResponse {
  const message = object(value, 'VoteResponse');
  return {
    kind: 'vote-response',
    epoch: nonNegative(message, 'epoch'),
    errorCode: errorCode(message),
    voteGranted: boolean(message, 'voteGranted'),
    preVote: boolean(message, 'preVote'),
    leaderId: optionalNode(message, 'leaderId'),
  };
}

export function beginQuorumEpochResponseToProto(response: BeginQuorumEpochResponse): ProtoObject {
  return { epoch: response.epoch, errorCode: response.errorCode, leaderId: nodeOrNone(response.leaderId) };
}

export function beginQuorumEpochResponseFromProto(value: unknown): BeginQuorumEpochResponse {
  const message = object(value, 'BeginQuorumEpochResponse');
  return {
    kind: 'begin-quorum-epoch-response',
    epoch: nonNegative(message, 'epoch'),
    errorCode: errorCode(message),
    leaderId: optionalNode(message, 'leaderId'),
  };
}

export function endQuorumEpochResponseToProto(response: EndQuorumEpochResponse): ProtoObject {
  return { epoch: response.epoch, errorCode: response.errorCode, leaderId: nodeOrNone(response.leaderId) };
}

export function endQuorumEpochResponseFromProto(value: unknown): EndQuorumEpochResponse {
  const message = object(value, 'EndQuorumEpochResponse');
  return {
    kind: 'end-quorum-epoch-response',
    epoch: nonNegative(message, 'epoch'),
    errorCode: errorCode(message),
    leaderId: optionalNode(message, 'leaderId'),
  };
}

export function fetchResponseToProto(response: FetchResponse): ProtoObject {
  return {
    epoch: response.epoch,
    errorCode: response.errorCode,
    leaderId: nodeOrNone(response.leaderId),
    highWatermark: response.highWatermark,
    logStartOffset: response.logStartOffset,
    entries: response.entries.map(entryToProto),
    divergingEpoch: response.divergingEpoch ?? null,
    snapshotId: response.snapshotId ?? null,
  };
}

export function fetchResponseFromProto(value: unknown): FetchResponse {
  const message = object(value, 'FetchResponse');
  const diverging = message.divergingEpoch;
  return {
    kind: 'fetch-response',
    epoch: nonNegative(message, 'epoch'),
    errorCode: errorCode(message),
    leaderId: optionalNode(message, 'leaderId'),
    highWatermark: nonNegative(message, 'highWatermark'),
    logStartOffset: nonNegative(message, 'logStartOffset'),
    entries: entriesFromProto(message.entries),
    divergingEpoch:
      diverging === null || diverging === undefined
        ? undefined
        : (() => {
            const d = object(diverging, 'divergingEpoch');
            return { epoch: nonNegative(d, 'epoch'), endOffset: nonNegative(d, 'endOffset') };
          })(),
    snapshotId:
      message.snapshotId === null || message.snapshotId === undefined ? undefined : snapshotIdFrom(message.snapshotId, 'snapshotId'),
  };
}

export function fetchSnapshotResponseToProto(response: FetchSnapshotResponse): ProtoObject {
  return {
    epoch: response.epoch,
    errorCode: response.errorCode,
    leaderId: nodeOrNone(response.leaderId),
    snapshotId: response.snapshotId,
    position: response.position,
    size: response.size,
    chunk: Buffer.from(response.chunk.buffer, response.chunk.byteOffset, response.chunk.byteLength),
  };
}

export function fetchSnapshotResponseFromProto(value: unknown): FetchSnapshotResponse {
  const message = object(value, 'FetchSnapshotResponse');
  return {
    kind: 'fetch-snapshot-response',
    epoch: nonNegative(message, 'epoch'),
    errorCode: errorCode(message),
    leaderId: optionalNode(message, 'leaderId'),
    snapshotId: snapshotIdFrom(message.snapshotId, 'snapshotId'),
    position: nonNegative(message, 'position'),
    size: nonNegative(message, 'size'),
    chunk: bytes(message.chunk, 'chunk'),
  };
}

// ---- Describe ----

function replicaToProto(replica: ReplicaDescription): ProtoObject {
  return {
    nodeId: replica.nodeId,
    logEndOffset: replica.logEndOffset,
    lastFetchTimeMs: replica.lastFetchTimeMs ?? -1,
    lastCaughtUpTimeMs: replica.lastCaughtUpTimeMs ?? -1,
  };
}

function replicaFromProto(value: unknown): ReplicaDescription {
  const message = object(value, 'replica');
  const lastFetch = integer(message, 'lastFetchTimeMs', -1);
  const lastCaughtUp = integer(message, 'lastCaughtUpTimeMs', -1);
  return {
    nodeId: nonNegative(message, 'nodeId'),
    // -1: the leader has not heard from this replica in its epoch.
    logEndOffset: integer(message, 'logEndOffset', -1),
    lastFetchTimeMs: lastFetch === -1 ? undefined : lastFetch,
    lastCaughtUpTimeMs: lastCaughtUp === -1 ? undefined : lastCaughtUp,
  };
}

/** A quorum description as seen by the node that answered, with its clock for computing ages. */
export interface DescribedQuorum extends QuorumDescription {
  nowMs: number;
  answeredBy: number;
}

export function describeRequestFromProto(value: unknown): { forwarded: boolean } {
  return { forwarded: boolean(object(value, 'DescribeQuorumRequest'), 'forwarded') };
}

export function describeResponseToProto(description: DescribedQuorum): ProtoObject {
  return {
    leaderId: nodeOrNone(description.leaderId),
    epoch: description.epoch,
    highWatermark: description.highWatermark,
    logStartOffset: description.logStartOffset,
    logEndOffset: description.logEndOffset,
    voters: description.voters.map(replicaToProto),
    observers: description.observers.map(replicaToProto),
    nowMs: description.nowMs,
    answeredBy: description.answeredBy,
  };
}

export function describeResponseFromProto(value: unknown): DescribedQuorum {
  const message = object(value, 'DescribeQuorumResponse');
  const list = (field: string): ReplicaDescription[] => {
    const items = message[field];
    if (!Array.isArray(items)) throw invalid(`${field} is not a list`);
    return items.map(replicaFromProto);
  };
  return {
    leaderId: optionalNode(message, 'leaderId'),
    epoch: nonNegative(message, 'epoch'),
    highWatermark: nonNegative(message, 'highWatermark'),
    logStartOffset: nonNegative(message, 'logStartOffset'),
    logEndOffset: nonNegative(message, 'logEndOffset'),
    voters: list('voters'),
    observers: list('observers'),
    nowMs: nonNegative(message, 'nowMs'),
    answeredBy: nonNegative(message, 'answeredBy'),
  };
}

// ---- Diagnostics ----

export function appendRecordsRequestFromProto(value: unknown): Uint8Array[] {
  const message = object(value, 'AppendRecordsRequest');
  return recordsFrom(message.records, 'records');
}

export interface AppendRecordsResult {
  errorCode: RaftErrorCode;
  offset: number;
  epoch: number;
  leaderId: number | undefined;
  leaderAddress: string;
  errorMessage: string;
}

export function appendRecordsResponseFromProto(value: unknown): AppendRecordsResult {
  const message = object(value, 'AppendRecordsResponse');
  return {
    errorCode: errorCode(message),
    offset: nonNegative(message, 'offset'),
    epoch: nonNegative(message, 'epoch'),
    leaderId: optionalNode(message, 'leaderId'),
    leaderAddress: typeof message.leaderAddress === 'string' ? message.leaderAddress : '',
    errorMessage: typeof message.errorMessage === 'string' ? message.errorMessage : '',
  };
}

export function appendRecordsResponseToProto(result: AppendRecordsResult): ProtoObject {
  return { ...result, leaderId: nodeOrNone(result.leaderId) };
}

export function readCommittedRequestFromProto(value: unknown): { fromOffset: number; maxEntries: number } {
  const message = object(value, 'ReadCommittedRequest');
  return { fromOffset: nonNegative(message, 'fromOffset'), maxEntries: nonNegative(message, 'maxEntries') };
}

export interface ReadCommittedResult {
  entries: LogEntry[];
  highWatermark: number;
  logStartOffset: number;
}

export function readCommittedResponseToProto(result: ReadCommittedResult): ProtoObject {
  return { entries: result.entries.map(entryToProto), highWatermark: result.highWatermark, logStartOffset: result.logStartOffset };
}

export function readCommittedResponseFromProto(value: unknown): ReadCommittedResult {
  const message = object(value, 'ReadCommittedResponse');
  return {
    entries: entriesFromProto(message.entries),
    highWatermark: nonNegative(message, 'highWatermark'),
    logStartOffset: nonNegative(message, 'logStartOffset'),
  };
}
