import { describe, it, expect } from 'vitest';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { findProtoDirectory } from '../../src/transport/proto-path.js';

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
