import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { BrokerConnectionPool, errorFromGrpcStatus } from '../../src/network/broker-connection-pool.js';
import { findProtoDirectory, loadClientServices } from '../../src/network/client-proto.js';

describe('client.proto loading', () => {
  it('finds proto/ by walking up and loads the three services', () => {
    const services = loadClientServices();
    const methods = (name: keyof typeof services) => Object.keys(services[name].service).sort();
    expect(methods('RaftkaClient')).toEqual(['DescribeCluster', 'Fetch', 'FetchStream', 'InitProducerId', 'ListOffsets', 'Metadata', 'OffsetForLeaderEpoch', 'Produce', 'ProduceStream']);
    expect(methods('RaftkaAdmin')).toEqual(['CreatePartitions', 'CreateTopics', 'DeleteTopics', 'DescribeConfigs', 'IncrementalAlterConfigs']);
    expect(methods('RaftkaGroups')).toHaveLength(11);
  });

  it('carries record batches as bytes and int64 offsets as numbers', () => {
    const produce = loadClientServices().RaftkaClient.service.Produce!;
    const records = Buffer.from([1, 2, 3]);
    const request = { acks: -1, timeoutMs: 30_000, topicData: [{ name: 't', partitionData: [{ index: 0, records }] }] };
    const decoded = produce.requestDeserialize(produce.requestSerialize(request)) as typeof request;
    expect(decoded.topicData[0]!.partitionData[0]!.records).toEqual(records);
    const response = { responses: [{ name: 't', partitionResponses: [{ index: 0, errorCode: 0, baseOffset: 2 ** 40, logAppendTimeMs: -1 }] }] };
    const back = produce.responseDeserialize(produce.responseSerialize(response)) as typeof response;
    expect(back.responses[0]!.partitionResponses[0]).toMatchObject({ baseOffset: 2 ** 40, logAppendTimeMs: -1, errorMessage: '', recordErrors: [] });
  });

  it('walks up from a nested directory and reports a missing proto clearly', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'raftka-proto-'));
    try {
      await mkdir(path.join(root, 'proto'));
      await writeFile(path.join(root, 'proto', 'client.proto'), 'syntax = "proto3";');
      await mkdir(path.join(root, 'a', 'b', 'c'), { recursive: true });
      expect(findProtoDirectory('client.proto', path.join(root, 'a', 'b', 'c'))).toBe(path.join(root, 'proto'));
      expect(() => findProtoDirectory('absent.proto', path.join(root, 'a'))).toThrow(/could not find proto\/absent.proto/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('BrokerConnectionPool', () => {
  it('keeps one channel per broker, shared by services, and replaces it when the address changes', () => {
    const pool = new BrokerConnectionPool({ messageBytesMax: 64 * 1024 * 1024, maxInFlightPerBroker: 5 });
    try {
      const endpoint = { host: '127.0.0.1', port: 1 };
      const client = pool.client(1, endpoint, 'RaftkaClient');
      expect(pool.client(1, endpoint, 'RaftkaClient')).toBe(client);
      expect(pool.client(1, endpoint, 'RaftkaAdmin').getChannel()).toBe(client.getChannel());
      expect(pool.client(2, { host: '127.0.0.1', port: 2 }, 'RaftkaClient').getChannel()).not.toBe(client.getChannel());
      expect(pool.limiter(1, endpoint).limit).toBe(5);
      expect(pool.connectedNodes().sort()).toEqual([1, 2]);
      const moved = pool.client(1, { host: '127.0.0.1', port: 3 }, 'RaftkaClient');
      expect(moved.getChannel()).not.toBe(client.getChannel());
      expect(pool.channelOptions()['grpc.max_receive_message_length']).toBe(2 ** 31 - 1);
      pool.disconnect(2);
      expect(pool.connectedNodes()).toEqual([1]);
    } finally {
      pool.close();
    }
    expect(() => pool.client(1, { host: '127.0.0.1', port: 1 }, 'RaftkaClient')).toThrow(/closed/);
  });

  it('maps gRPC statuses to retriable or fatal Raftka errors', () => {
    const status = (code: grpc.status) => Object.assign(new Error('boom'), { code, details: 'boom', metadata: new grpc.Metadata() });
    expect(errorFromGrpcStatus(status(grpc.status.UNAVAILABLE), 1)).toMatchObject({ code: 'NETWORK_EXCEPTION', retriable: true });
    expect(errorFromGrpcStatus(status(grpc.status.DEADLINE_EXCEEDED), 1)).toMatchObject({ code: 'REQUEST_TIMED_OUT', retriable: true });
    expect(errorFromGrpcStatus(status(grpc.status.RESOURCE_EXHAUSTED), 1)).toMatchObject({ code: 'MESSAGE_TOO_LARGE', retriable: false });
    expect(errorFromGrpcStatus(status(grpc.status.INTERNAL), 1)).toMatchObject({ code: 'UNKNOWN_SERVER_ERROR', retriable: false });
  });
});

describe('HTTP proxies', () => {
  it('ignores a machine-wide https_proxy / http_proxy (web traffic) and honours an explicit grpc_proxy', async () => {
    const server = new grpc.Server();
    const service = loadClientServices().RaftkaClient.service;
    server.addService(service, {
      DescribeCluster: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, { clusterId: 'through-no-proxy', controllerId: 1, brokers: [] }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    // A proxy address where nothing listens: a channel that used it would fail.
    const saved = { http_proxy: process.env['http_proxy'], https_proxy: process.env['https_proxy'], grpc_proxy: process.env['grpc_proxy'] };
    process.env['http_proxy'] = 'http://127.0.0.1:9';
    process.env['https_proxy'] = 'http://127.0.0.1:9';
    delete process.env['grpc_proxy'];
    const pool = new BrokerConnectionPool({ messageBytesMax: 1024 * 1024, maxInFlightPerBroker: 5 });
    try {
      expect(pool.channelOptions()['grpc.enable_http_proxy']).toBe(0);
      const client = pool.client(1, { host: '127.0.0.1', port }, 'RaftkaClient') as grpc.Client & Record<string, (request: unknown, options: grpc.CallOptions, callback: grpc.requestCallback<{ clusterId: string }>) => void>;
      const answer = await new Promise<{ clusterId: string }>((resolve, reject) =>
        client['DescribeCluster']!({}, { deadline: Date.now() + 5_000 }, (error, response) => (error ? reject(error) : resolve(response!))),
      );
      expect(answer.clusterId).toBe('through-no-proxy');
      process.env['grpc_proxy'] = 'http://127.0.0.1:9';
      expect(pool.channelOptions()['grpc.enable_http_proxy']).toBe(1);
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      pool.close();
      server.forceShutdown();
    }
  });
});
