import { describe, it, expect } from 'vitest';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { findProtoDirectory } from '../../src/transport/proto-path.js';
import { NotControllerError } from '../../src/controller/controller-errors.js';
import {
  controllerErrorFromProto,
  controllerErrorToProto,
  createPartitionsFromProto,
  createPartitionsToProto,
  createTopicsFromProto,
  createTopicsResponseFromProto,
  createTopicsResponseToProto,
  describeConfigsFromProto,
  describeConfigsResponseFromProto,
  describeConfigsResponseToProto,
  describeConfigsToProto,
  createTopicsToProto,
  incrementalAlterConfigsFromProto,
  incrementalAlterConfigsToProto,
  loadControllerService,
} from '../../src/controller/controller-proto.js';
import type { CreateTopicsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest } from '../../src/controller/controller-types.js';
import { RaftkaError } from '@raftka/protocol';

describe('proto/controller.proto and proto/metadata.proto', () => {
  it('load with the gRPC proto loader and define the controller service', () => {
    const directory = findProtoDirectory('controller.proto');
    const definition = protoLoader.loadSync([path.join(directory, 'controller.proto'), path.join(directory, 'metadata.proto')], { keepCase: false, longs: Number });
    const service = definition['raftka.controller.ControllerService'] as Record<string, unknown>;
    expect(Object.keys(service).sort()).toEqual(
      [
        'AllocateProducerIds',
        'AlterPartition',
        'BrokerHeartbeat',
        'BrokerSession',
        'BrokerRegistration',
        'CreatePartitions',
        'CreateTopics',
        'DeleteTopics',
        'DescribeConfigs',
        'ElectLeaders',
        'IncrementalAlterConfigs',
      ].sort(),
    );
    expect(definition['raftka.metadata.MetadataRecord']).toBeDefined();
  });
});

/** Through real protobuf bytes, as a call travels: client mapping -> wire -> server mapping. */
function overTheWire(method: string, message: unknown, direction: 'request' | 'response' = 'request'): unknown {
  const definition = loadControllerService().service[method]!;
  if (direction === 'request') return definition.requestDeserialize(definition.requestSerialize(message));
  return definition.responseDeserialize(definition.responseSerialize(message));
}

describe('controller API mapping', () => {
  it('a typed request survives client encoding, the wire and server parsing', () => {
    const create: CreateTopicsRequest = {
      validateOnly: false,
      topics: [
        { name: 'orders', numPartitions: 6, replicationFactor: 3, configs: { 'cleanup.policy': 'compact' } },
        { name: 'defaults' },
        { name: 'placed', assignments: [[1, 2], [2, 3]] },
      ],
    };
    expect(createTopicsFromProto(overTheWire('CreateTopics', createTopicsToProto(create)))).toEqual(create);
    const alter: IncrementalAlterConfigsRequest = {
      validateOnly: true,
      resources: [{ resourceType: 'topic', resourceName: 'orders', ops: [{ name: 'retention.ms', op: 'set', value: '1000' }, { name: 'x', op: 'delete', value: '' }] }],
    };
    expect(incrementalAlterConfigsFromProto(overTheWire('IncrementalAlterConfigs', incrementalAlterConfigsToProto(alter)))).toEqual(alter);
    const describe = { resources: [{ resourceType: 'broker' as const, resourceName: '', keys: ['num.partitions'] }] };
    expect(describeConfigsFromProto(overTheWire('DescribeConfigs', describeConfigsToProto(describe)))).toEqual(describe);
    const partitions = { validateOnly: false, topics: [{ name: 'orders', count: 8 }] };
    expect(createPartitionsFromProto(overTheWire('CreatePartitions', createPartitionsToProto(partitions)))).toEqual(partitions);
  });

  it('responses keep per-item errors by Kafka name and configs with their source', () => {
    const created = { topics: [{ name: 'a', topicId: 'id', numPartitions: 1, replicationFactor: 1 }, { name: 'b c', numPartitions: 0, replicationFactor: 0, error: { code: 'INVALID_TOPIC_EXCEPTION' as const, message: 'bad name' } }] };
    const wire = overTheWire('CreateTopics', { error: null, ...(createTopicsResponseToProto(created) as object) }, 'response') as Record<string, unknown>;
    expect(createTopicsResponseFromProto(wire)).toEqual(created);
    const described: DescribeConfigsResponse = {
      results: [{ resourceType: 'topic', resourceName: 'orders', configs: [{ name: 'retention.ms', value: '1000', source: 'topic', isDefault: false, readOnly: false, sensitive: false, doc: 'how long' }] }],
    };
    const describedWire = overTheWire('DescribeConfigs', { error: null, ...(describeConfigsResponseToProto(described) as object) }, 'response') as Record<string, unknown>;
    expect(describeConfigsResponseFromProto(describedWire)).toEqual(described);
  });

  it('NOT_CONTROLLER carries the active controller; other call errors keep their Kafka name', () => {
    const notController = controllerErrorFromProto(controllerErrorToProto(new NotControllerError({ activeControllerId: 2, activeControllerAddress: '127.0.0.1:9094' })));
    expect(notController).toBeInstanceOf(NotControllerError);
    expect(notController).toMatchObject({ activeControllerId: 2, activeControllerAddress: '127.0.0.1:9094' });
    const throttled = controllerErrorFromProto(controllerErrorToProto(new RaftkaError('THROTTLING_QUOTA_EXCEEDED', 'busy')));
    expect(throttled).toMatchObject({ code: 'THROTTLING_QUOTA_EXCEEDED', message: 'busy' });
    expect(controllerErrorFromProto(null)).toBeUndefined();
  });

  it('a malformed request is INVALID_REQUEST, never a crash', () => {
    expect(() => createTopicsFromProto({ topics: [{ name: 7 }] })).toThrowError(expect.objectContaining({ code: 'INVALID_REQUEST' }));
    expect(() => describeConfigsFromProto({ resources: [{ resourceType: 'CONFIG_RESOURCE_UNKNOWN', resourceName: '', keys: [] }] })).toThrowError(
      expect.objectContaining({ code: 'INVALID_REQUEST' }),
    );
  });
});
