import { describe, expect, it } from 'vitest';
import { RaftkaError } from '@raftka/protocol';
import type { FetchResponse, FetchSnapshotResponse, VoteRequest, VoteResponse } from '../../src/raft/types.js';
import {
  fetchRequestFromProto,
  fetchResponseFromProto,
  fetchResponseToProto,
  fetchSnapshotResponseFromProto,
  fetchSnapshotResponseToProto,
  loadQuorumService,
  voteRequestFromProto,
  voteRequestToProto,
  voteResponseFromProto,
  voteResponseToProto,
} from '../../src/transport/quorum-proto.js';

/** Through the real protobuf encoding, as the wire does it. */
function wire(method: string, side: 'request' | 'response', message: unknown): unknown {
  const definition = loadQuorumService().service[method]!;
  if (side === 'request') return definition.requestDeserialize(definition.requestSerialize(message));
  return definition.responseDeserialize(definition.responseSerialize(message));
}

function expectInvalid(action: () => unknown, pattern: RegExp): void {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(RaftkaError);
    expect((error as RaftkaError).code).toBe('INVALID_REQUEST');
    expect((error as Error).message).toMatch(pattern);
    return;
  }
  throw new Error('expected INVALID_REQUEST');
}

describe('quorum proto mapping', () => {
  it('round-trips a vote request and response through protobuf', () => {
    const request: VoteRequest = { kind: 'vote-request', epoch: 4, candidateId: 2, lastOffsetEpoch: 3, lastOffset: 2 ** 40, preVote: true };
    expect(voteRequestFromProto(wire('Vote', 'request', voteRequestToProto(request)))).toEqual(request);
    const response: VoteResponse = { kind: 'vote-response', epoch: 4, errorCode: 'FENCED_LEADER_EPOCH', voteGranted: false, preVote: true, leaderId: undefined };
    expect(voteResponseFromProto(wire('Vote', 'response', voteResponseToProto(response)))).toEqual(response);
  });

  it('round-trips a fetch response with data, leader-change entries, divergence and snapshot id', () => {
    const response: FetchResponse = {
      kind: 'fetch-response',
      epoch: 3,
      errorCode: 'NONE',
      leaderId: 1,
      highWatermark: 10,
      logStartOffset: 2,
      entries: [
        { offset: 7, epoch: 2, payload: { kind: 'leader-change', leaderId: 1, voters: [1, 2, 3] } },
        { offset: 8, epoch: 3, payload: { kind: 'data', records: [Buffer.from('ab'), Buffer.alloc(0)] } },
      ],
      divergingEpoch: { epoch: 2, endOffset: 7 },
      snapshotId: { endOffset: 2, epoch: 1 },
    };
    const decoded = fetchResponseFromProto(wire('Fetch', 'response', fetchResponseToProto(response)));
    expect(decoded).toEqual(response);
    const plain = { ...response, divergingEpoch: undefined, snapshotId: undefined, entries: [] };
    expect(fetchResponseFromProto(wire('Fetch', 'response', fetchResponseToProto(plain)))).toEqual(plain);
  });

  it('round-trips a snapshot chunk', () => {
    const response: FetchSnapshotResponse = {
      kind: 'fetch-snapshot-response',
      epoch: 1,
      errorCode: 'NONE',
      leaderId: 3,
      snapshotId: { endOffset: 100, epoch: 1 },
      position: 5,
      size: 9,
      chunk: new Uint8Array([1, 2, 3, 4]),
    };
    const decoded = fetchSnapshotResponseFromProto(wire('FetchSnapshot', 'response', fetchSnapshotResponseToProto(response)));
    expect({ ...decoded, chunk: Array.from(decoded.chunk) }).toEqual({ ...response, chunk: [1, 2, 3, 4] });
  });

  it('rejects malformed inbound messages with INVALID_REQUEST instead of crashing', () => {
    expectInvalid(() => voteRequestFromProto(null), /not a message/);
    expectInvalid(() => voteRequestFromProto({ epoch: -1, candidateId: 1, lastOffsetEpoch: 0, lastOffset: 0, preVote: false }), /epoch=-1/);
    expectInvalid(() => fetchRequestFromProto({ epoch: 1, replicaId: 1.5, fetchOffset: 0, lastFetchedEpoch: 0, maxWaitMs: 0, maxBytes: 1 }), /replicaId/);
    expectInvalid(() => fetchRequestFromProto({ epoch: 1, replicaId: 1, fetchOffset: 0, lastFetchedEpoch: 0, maxWaitMs: 3_600_000, maxBytes: 1 }), /maxWaitMs.*limit/);
    expectInvalid(() => voteResponseFromProto({ epoch: 1, errorCode: 'BOGUS', voteGranted: true, preVote: false, leaderId: -1 }), /errorCode/);
    const base = { epoch: 1, errorCode: 'NONE', leaderId: 1, highWatermark: 0, logStartOffset: 0, divergingEpoch: null, snapshotId: null };
    expectInvalid(() => fetchResponseFromProto({ ...base, entries: [{ offset: 1, epoch: 1, payload: undefined }] }), /no payload/);
    expectInvalid(
      () =>
        fetchResponseFromProto({
          ...base,
          entries: [
            { offset: 1, epoch: 1, payload: 'data', data: { records: Buffer.alloc(4) } },
            { offset: 3, epoch: 1, payload: 'data', data: { records: Buffer.alloc(4) } },
          ],
        }),
      /not contiguous/,
    );
    expectInvalid(() => fetchResponseFromProto({ ...base, entries: [{ offset: 1, epoch: 1, payload: 'data', data: { records: 'text' } }] }), /not bytes/);
    // A packed records buffer whose lengths do not add up.
    const packed = Buffer.from([0, 0, 0, 2, 0, 0, 0, 1, 65, 0, 0, 0, 9, 66]);
    expectInvalid(() => fetchResponseFromProto({ ...base, entries: [{ offset: 1, epoch: 1, payload: 'data', data: { records: packed } }] }), /truncated/);
    const bogusCount = Buffer.from([0xff, 0xff, 0xff, 0xff]);
    expectInvalid(() => fetchResponseFromProto({ ...base, entries: [{ offset: 1, epoch: 1, payload: 'data', data: { records: bogusCount } }] }), /does not fit/);
  });

  it('fills defaults for fields a peer left out (proto3) and still validates them', () => {
    const decoded = wire('Vote', 'request', {});
    expect(voteRequestFromProto(decoded)).toEqual({ kind: 'vote-request', epoch: 0, candidateId: 0, lastOffsetEpoch: 0, lastOffset: 0, preVote: false });
  });
});
