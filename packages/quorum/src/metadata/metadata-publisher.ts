// Turns committed metadata batches into "image + delta" events.
//
// The publisher owns the node's MetadataImage. The quorum hands it every committed batch (on the
// active controller, on standby controllers, and on brokers following the log as observers); it
// decodes the records, applies them, and tells its listeners what the image now is and what the
// batch changed. Loading a snapshot replaces the image and publishes the difference between the
// old and the new image, so a listener never has to tell the two cases apart.
//
// Listeners run synchronously, in registration order, after the batch is fully applied. The image
// they receive is the live, mutable image: they must read what they need during the call and not
// keep it expecting it to stay unchanged.

import { RaftkaError, invariant } from '@raftka/protocol';
import { MetadataDelta } from './metadata-delta.js';
import { MetadataImage } from './metadata-image.js';
import type { CommittedBatch, MetadataLog, MetadataSnapshotProvider } from './metadata-log.js';
import type { MetadataRecord } from './metadata-records.js';
import { decodeMetadataRecord } from './metadata-records.js';
import type { MetadataSnapshotId } from './metadata-snapshot.js';
import { decodeMetadataSnapshot, encodeMetadataSnapshotYielding } from './metadata-snapshot.js';

export interface MetadataUpdate {
  image: MetadataImage;
  delta: MetadataDelta;
  /** Offset and epoch of the last entry the image includes. */
  offset: number;
  epoch: number;
  cause: 'batch' | 'snapshot';
}

export type MetadataListener = (update: MetadataUpdate) => void;

/**
 * Where a broker gets the cluster's metadata: a MetadataObserver following the log, or, in
 * combined mode, the controller's own image.
 */
export interface MetadataSource {
  /** The live image: read what you need, do not keep it expecting it to stay unchanged. */
  readonly image: MetadataImage;
  /** Offset of the last metadata entry applied (what a broker reports in its heartbeat). */
  readonly lastAppliedOffset: number;
  subscribe(listener: MetadataListener): () => void;
  /** Resolves with the image once `condition` holds (checked now and after every update). */
  waitFor(condition: (image: MetadataImage) => boolean, timeoutMs: number): Promise<MetadataImage>;
}

export class MetadataPublisher {
  private currentImage: MetadataImage;
  private readonly listeners: MetadataListener[] = [];

  constructor(initialImage: MetadataImage = new MetadataImage()) {
    this.currentImage = initialImage;
  }

  get image(): MetadataImage {
    return this.currentImage;
  }

  subscribe(listener: MetadataListener): () => void {
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  /** Resolves with the image once `condition` holds (checked now and after every update). */
  waitFor(condition: (image: MetadataImage) => boolean, timeoutMs: number): Promise<MetadataImage> {
    if (condition(this.currentImage)) return Promise.resolve(this.currentImage);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new RaftkaError('REQUEST_TIMED_OUT', `the metadata image did not reach the awaited state within ${timeoutMs} ms`));
      }, timeoutMs);
      const unsubscribe = this.subscribe((update) => {
        if (condition(update.image)) {
          clearTimeout(timer);
          unsubscribe();
          resolve(update.image);
        }
      });
    });
  }

  /** Registers with the quorum: committed batches flow in, snapshots are taken and loaded here. */
  attach(log: MetadataLog): void {
    log.onCommitted((batch) => {
      this.handleCommitted(batch);
    });
    log.setSnapshotProvider(this.snapshotProvider());
  }

  snapshotProvider(): MetadataSnapshotProvider {
    return {
      take: () => encodeMetadataSnapshotYielding(this.currentImage),
      load: async (bytes, snapshotId) => {
        this.loadSnapshot(bytes, snapshotId);
      },
    };
  }

  /**
   * Applies one committed batch. A batch at or below the last applied offset was already applied
   * (e.g. redelivered after a snapshot load) and is ignored; it returns `undefined` then.
   */
  handleCommitted(batch: CommittedBatch): MetadataDelta | undefined {
    if (batch.offset <= this.currentImage.lastAppliedOffset) return undefined;
    return this.applyRecords(batch.records.map(decodeMetadataRecord), batch.offset, batch.epoch);
  }

  /** Applies already-decoded records committed at `offset` (used by the controller, and tests). */
  applyRecords(records: readonly MetadataRecord[], offset: number, epoch: number): MetadataDelta {
    const delta = new MetadataDelta(this.currentImage);
    this.currentImage.applyBatch(records, offset, epoch, delta);
    this.publish(delta, 'batch');
    return delta;
  }

  loadSnapshot(bytes: Uint8Array, snapshotId: MetadataSnapshotId): MetadataDelta {
    const next = decodeMetadataSnapshot(bytes, snapshotId);
    invariant(next.lastAppliedOffset === snapshotId.endOffset - 1, 'a loaded snapshot ends where its id says');
    const delta = MetadataDelta.between(this.currentImage, next);
    this.currentImage = next;
    this.publish(delta, 'snapshot');
    return delta;
  }

  private publish(delta: MetadataDelta, cause: MetadataUpdate['cause']): void {
    const update: MetadataUpdate = {
      image: this.currentImage,
      delta,
      offset: this.currentImage.lastAppliedOffset,
      epoch: this.currentImage.lastAppliedEpoch,
      cause,
    };
    for (const listener of [...this.listeners]) listener(update);
  }
}
