// Follows the metadata log as a Raft observer and publishes "image + delta" after every committed
// batch: how a broker learns the cluster's state (and what tests use to watch it).
//
// An observer is a QuorumNode whose id is not among the voters: it fetches from the leader like a
// follower, never votes, serves nothing, and keeps its own copy of the log and snapshots under
// `<log.dirs[0]>/__cluster_metadata-0/`, so a restart replays from its latest snapshot instead of
// from the beginning of history.

import { RaftkaError, type Logger } from '@raftka/protocol';
import { QuorumNode } from '../driver/quorum-node.js';
import type { QuorumConfig } from '../driver/quorum-config.js';
import type { MetadataImage } from '../metadata/metadata-image.js';
import { MetadataPublisher, type MetadataListener, type MetadataSource } from '../metadata/metadata-publisher.js';

export interface MetadataObserverOptions {
  /** This node's quorum settings; its node id must not be a voter. */
  config: QuorumConfig;
  logger: Logger;
  /** Registered before the first committed batch, so that no update is missed. */
  onUpdate?: MetadataListener;
  onFatal?: (error: unknown) => void;
}

export class MetadataObserver implements MetadataSource {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly node: QuorumNode,
    private readonly publisher: MetadataPublisher,
  ) {}

  static async start(options: MetadataObserverOptions): Promise<MetadataObserver> {
    const { config } = options;
    if (config.voters.some((voter) => voter.nodeId === config.nodeId)) {
      throw new RaftkaError('INVALID_CONFIG', `node ${config.nodeId} is a voter; a metadata observer needs a node id outside controller.quorum.voters`);
    }
    const publisher = new MetadataPublisher();
    if (options.onUpdate) publisher.subscribe(options.onUpdate);
    const node = await QuorumNode.start({
      config,
      logger: options.logger,
      serve: false,
      onCommitted: (batch) => {
        publisher.handleCommitted(batch);
      },
      snapshotProvider: publisher.snapshotProvider(),
      ...(options.onFatal ? { onFatal: options.onFatal } : {}),
    });
    return new MetadataObserver(node, publisher);
  }

  get nodeId(): number {
    return this.node.nodeId;
  }

  /** The live image: read what you need, do not keep it expecting it to stay unchanged. */
  get image(): MetadataImage {
    return this.publisher.image;
  }

  /** Offset of the last metadata entry applied here (what a broker reports in its heartbeat). */
  get lastAppliedOffset(): number {
    return this.node.lastAppliedOffset;
  }

  /** The quorum leader as this observer last heard of it. */
  get leaderId(): number | undefined {
    return this.node.leaderId;
  }

  subscribe(listener: MetadataListener): () => void {
    return this.publisher.subscribe(listener);
  }

  /** Resolves with the image once `condition` holds (checked now and after every update). */
  waitFor(condition: (image: MetadataImage) => boolean, timeoutMs: number): Promise<MetadataImage> {
    return this.publisher.waitFor(condition, timeoutMs);
  }

  /** Stops following the log; calling it again is harmless. */
  close(): Promise<void> {
    this.closing ??= this.node.close({ graceful: false });
    return this.closing;
  }
}
