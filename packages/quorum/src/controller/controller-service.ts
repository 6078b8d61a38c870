// The controller's gRPC API (proto/controller.proto), served on every controller's CONTROLLER
// listener next to QuorumService. Only the active controller acts; the others answer
// NOT_CONTROLLER naming the active one (QuorumController decides, this module only translates).
//
// Every outcome, including a malformed request, is a normal response carrying a ControllerError:
// gRPC status codes are reserved for transport failures (see controller-proto.ts).

import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '@raftka/protocol';
import type { ExtraService } from '../transport/grpc-transport.js';
import {
  allocateProducerIdsFromProto,
  alterPartitionFromProto,
  alterPartitionResponseToProto,
  brokerHeartbeatFromProto,
  brokerRegistrationFromProto,
  brokerSessionFromProto,
  controllerErrorToProto,
  createPartitionsFromProto,
  createPartitionsResponseToProto,
  createTopicsFromProto,
  createTopicsResponseToProto,
  deleteTopicsFromProto,
  deleteTopicsResponseToProto,
  describeConfigsFromProto,
  describeConfigsResponseToProto,
  incrementalAlterConfigsFromProto,
  incrementalAlterConfigsResponseToProto,
  loadControllerService,
} from './controller-proto.js';
import type { QuorumController } from './quorum-controller.js';

type UnaryHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

function handler<Request>(
  logger: Logger,
  method: string,
  parse: (value: unknown) => Request,
  run: (request: Request) => Promise<object> | object,
): UnaryHandler {
  return (call, callback) => {
    let request: Request;
    try {
      request = parse(call.request);
    } catch (error) {
      logger.warn({ err: error, method, peer: call.getPeer() }, 'rejected a malformed controller request');
      callback(null, { error: controllerErrorToProto(error) });
      return;
    }
    Promise.resolve()
      .then(() => run(request))
      .then(
        (response) => callback(null, { error: null, ...response }),
        (error: unknown) => {
          logger.debug({ err: error, method }, 'controller request failed');
          callback(null, { error: controllerErrorToProto(error) });
        },
      );
  };
}

/**
 * BrokerSession: accept (one empty event) and hold the call open until either side ends it. A
 * refusal is one event carrying the error, then the end of the call.
 */
function brokerSessionHandler(controller: QuorumController, logger: Logger): (call: grpc.ServerWritableStream<unknown, unknown>) => void {
  return (call) => {
    let brokerId: number;
    let brokerEpoch: number;
    let session: { lost: () => void };
    try {
      ({ brokerId, brokerEpoch } = brokerSessionFromProto(call.request));
      session = controller.openBrokerSession(brokerId, brokerEpoch, () => call.end());
    } catch (error) {
      logger.debug({ err: error, peer: call.getPeer() }, 'refused a broker session');
      call.write({ error: controllerErrorToProto(error) });
      call.end();
      return;
    }
    call.write({ error: null });
    logger.debug({ brokerId, brokerEpoch }, 'broker session opened');
    // 'cancelled' is the broker's side going away (its process died, or it closed the call).
    call.on('cancelled', () => {
      logger.info({ brokerId, brokerEpoch }, 'lost the connection to a broker');
      session.lost();
    });
    call.on('error', () => session.lost());
  };
}

/** The ControllerService bound to a controller, ready to be served by the quorum's gRPC server. */
export function controllerService(controller: QuorumController, logger: Logger): ExtraService {
  return {
    definition: loadControllerService().service,
    implementation: {
      BrokerRegistration: handler(logger, 'BrokerRegistration', brokerRegistrationFromProto, (request) => controller.registerBroker(request)),
      BrokerHeartbeat: handler(logger, 'BrokerHeartbeat', brokerHeartbeatFromProto, (request) => controller.brokerHeartbeat(request)),
      BrokerSession: brokerSessionHandler(controller, logger),
      AlterPartition: handler(logger, 'AlterPartition', alterPartitionFromProto, async (request) =>
        alterPartitionResponseToProto(await controller.alterPartition(request)) as object,
      ),
      ElectLeaders: handler(
        logger,
        'ElectLeaders',
        (value) => value,
        () => controller.electPreferredLeaders(),
      ),
      CreateTopics: handler(logger, 'CreateTopics', createTopicsFromProto, async (request) =>
        createTopicsResponseToProto(await controller.createTopics(request)) as object,
      ),
      DeleteTopics: handler(logger, 'DeleteTopics', deleteTopicsFromProto, async (request) =>
        deleteTopicsResponseToProto(await controller.deleteTopics(request)) as object,
      ),
      CreatePartitions: handler(logger, 'CreatePartitions', createPartitionsFromProto, async (request) =>
        createPartitionsResponseToProto(await controller.createPartitions(request)) as object,
      ),
      DescribeConfigs: handler(logger, 'DescribeConfigs', describeConfigsFromProto, (request) =>
        describeConfigsResponseToProto(controller.describeConfigs(request)) as object,
      ),
      IncrementalAlterConfigs: handler(logger, 'IncrementalAlterConfigs', incrementalAlterConfigsFromProto, async (request) =>
        incrementalAlterConfigsResponseToProto(await controller.incrementalAlterConfigs(request)) as object,
      ),
      AllocateProducerIds: handler(logger, 'AllocateProducerIds', allocateProducerIdsFromProto, (request) => controller.allocateProducerIds(request)),
    },
  };
}
