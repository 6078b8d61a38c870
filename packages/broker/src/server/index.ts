// Public surface of the broker's client-facing gRPC service (re-exported by the package index).
export { addClientService, clientServiceImplementation, ProducerIdAllocator, type ClientServiceOptions } from './client-service.js';
export { loadRaftkaClientService, loadRaftkaAdminService, loadRaftkaGroupsService, CLIENT_PROTO_LOADER_OPTIONS, BROKER_SERVER_OPTIONS, BROKER_CHANNEL_OPTIONS } from './client-proto.js';
