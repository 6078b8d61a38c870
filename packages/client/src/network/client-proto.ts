// Loading proto/client.proto for the SDK's gRPC clients.
//
// The SDK ships no generated code: proto-loader reads the contract at start-up. The proto
// directory is found by walking up from this compiled file until `proto/client.proto` exists,
// which works from the source tree, from dist/, and from an installed package that ships proto/.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { RaftkaError } from '@raftka/protocol';

/** Proto-loader options the SDK's mapping code relies on. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  // int64 fields (offsets, producer ids) fit a double exactly below 2^53, Kafka's practical range.
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

/** The services client.proto defines. */
export type ClientServiceName = 'RaftkaClient' | 'RaftkaAdmin' | 'RaftkaGroups';

/** Walks up from `startDirectory` to the first ancestor holding `proto/<fileName>`; returns that proto directory. */
export function findProtoDirectory(fileName: string, startDirectory = path.dirname(fileURLToPath(import.meta.url))): string {
  let directory = startDirectory;
  for (;;) {
    const candidate = path.join(directory, 'proto');
    if (existsSync(path.join(candidate, fileName))) return candidate;
    const parent = path.dirname(directory);
    if (parent === directory) {
      throw new RaftkaError('INVALID_CONFIG', `could not find proto/${fileName} in ${startDirectory} or any parent directory`, { retriable: false });
    }
    directory = parent;
  }
}

let loaded: Record<ClientServiceName, grpc.ServiceClientConstructor> | undefined;

/** The client constructors of client.proto's services (loaded once). */
export function loadClientServices(): Record<ClientServiceName, grpc.ServiceClientConstructor> {
  if (loaded) return loaded;
  const file = path.join(findProtoDirectory('client.proto'), 'client.proto');
  const definition = protoLoader.loadSync(file, PROTO_LOADER_OPTIONS);
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    raftka: { client: { v1: Record<ClientServiceName, grpc.ServiceClientConstructor> } };
  };
  const services = root.raftka.client.v1;
  loaded = { RaftkaClient: services.RaftkaClient, RaftkaAdmin: services.RaftkaAdmin, RaftkaGroups: services.RaftkaGroups };
  return loaded;
}
