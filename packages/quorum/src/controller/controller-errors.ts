// Errors specific to the controller.

import { RaftkaError } from '@raftka/protocol';

/**
 * A controller request reached a node that is not the active controller (the Raft leader). Like
 * Kafka's NOT_CONTROLLER it is retriable, and it names the active controller when one is known so
 * the caller can go there directly.
 */
export class NotControllerError extends RaftkaError {
  readonly activeControllerId: number | undefined;
  readonly activeControllerAddress: string | undefined;

  constructor(args: { activeControllerId?: number; activeControllerAddress?: string }) {
    const where =
      args.activeControllerId === undefined
        ? 'no active controller is known yet; retry after the quorum elects a leader'
        : `the active controller is node ${args.activeControllerId}${args.activeControllerAddress ? ` at ${args.activeControllerAddress}` : ''}`;
    super('NOT_CONTROLLER', `this node is not the active controller: ${where}`);
    this.name = 'NotControllerError';
    this.activeControllerId = args.activeControllerId;
    this.activeControllerAddress = args.activeControllerAddress;
  }
}
