// Public surface of @raftka/broker.
export * from './log/index.js';
export * from './replica/index.js';
export * from './purgatory/index.js';
export * from './producer-state/index.js';
export * from './replica-manager/index.js';
export * from './server/index.js';
export * from './group/index.js';
export {
  brokerConfigSchema,
  brokerConfigFromValues,
  parseEndpoints,
  LISTENER_SECURITY_PROTOCOL_MAP_DEFAULT,
  SECURITY_PROTOCOL_PLAINTEXT,
  type BrokerConfig,
} from './broker-config.js';
export { resolveBrokerListeners, registeredEndpoint, CONTROLLER_LISTENER_NAME, type BrokerListeners, type ClientListener } from './broker-listeners.js';
export { BrokerServer, CONTROLLED_SHUTDOWN_MS_MAX, type BrokerServerOptions } from './broker-server.js';
export { adminServiceImplementation, ADMIN_PROPAGATION_WAIT_MS_DEFAULT, type AdminServiceOptions } from './admin-service.js';
export * from './metrics/index.js';
