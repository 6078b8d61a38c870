// Controller gauges, read on scrape from the quorum member and the controller's image.
//
// As in Kafka, cluster-wide counts (offline partitions, fenced brokers, topics) are reported by
// the active controller only and read 0 elsewhere, so that summing over nodes counts each once.
// Per-replica lag of the metadata log is known on the quorum leader only (followers' log end
// offsets arrive with their fetches, KIP-595), so it is reported there and absent elsewhere.

import { Gauge } from 'prom-client';
import { NO_LEADER, type MetadataImage, type QuorumDescription } from '@raftka/quorum';
import { METRIC_PREFIX, type NodeMetrics } from './node-metrics.js';

/** What the collectors read (a ControllerNode provides all of it). */
export interface ControllerMetricsSource {
  isActive: () => boolean;
  quorum: {
    readonly epoch: number;
    readonly leaderId: number | undefined;
    readonly role: string;
    readonly highWatermark: number;
    readonly lastAppliedOffset: number;
    describeLocally(): QuorumDescription;
  };
  image: () => MetadataImage;
}

/** Registers the controller's gauges on `metrics` (once per node). */
export function registerControllerCollectors(metrics: NodeMetrics, source: ControllerMetricsSource): void {
  const registers = [metrics.registry];
  const simple = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  };
  const onActive = (read: (image: MetadataImage) => number) => (): number => (source.isActive() ? read(source.image()) : 0);

  simple('active_controller', '1 on the active controller (the quorum leader that has applied its own epoch), 0 elsewhere.', () => (source.isActive() ? 1 : 0));
  simple('quorum_epoch', 'The current epoch (term) of the metadata quorum as this node knows it.', () => source.quorum.epoch);
  simple('quorum_leader_id', 'Node id of the metadata quorum leader, -1 while none is known.', () => source.quorum.leaderId ?? -1);
  simple('quorum_high_watermark', 'High watermark of the metadata log: entries below it are committed.', () => source.quorum.highWatermark);
  simple('quorum_last_applied_offset', 'Offset of the last metadata log entry this node applied to its image, -1 when none.', () => source.quorum.lastAppliedOffset);
  simple(
    'offline_partitions',
    'Partitions without a leader (active controller only; 0 on other nodes), Kafka OfflinePartitionsCount.',
    onActive((image) => {
      let offline = 0;
      for (const topic of image.topicsById.values()) for (const partition of topic.partitions) if (partition.leader === NO_LEADER) offline++;
      return offline;
    }),
  );
  simple(
    'fenced_brokers',
    'Registered brokers that are fenced (active controller only).',
    onActive((image) => [...image.brokers.values()].filter((broker) => broker.fenced).length),
  );
  simple(
    'active_brokers',
    'Registered brokers that are unfenced (active controller only).',
    onActive((image) => [...image.brokers.values()].filter((broker) => !broker.fenced).length),
  );
  simple('global_topics', 'Topics in the cluster (active controller only).', onActive((image) => image.topicsById.size));
  simple('global_partitions', 'Partitions in the cluster (active controller only).', onActive((image) => image.partitionCount));
  new Gauge({
    name: `${METRIC_PREFIX}quorum_replica_lag_offsets`,
    help: "How many metadata log entries each voter and observer is behind the leader's log end offset (on the quorum leader only).",
    labelNames: ['replica', 'kind'],
    registers,
    collect() {
      this.reset();
      if (source.quorum.role !== 'leader') return;
      const description = source.quorum.describeLocally();
      const lag = (logEndOffset: number): number => Math.max(0, description.logEndOffset - logEndOffset);
      for (const voter of description.voters) this.set({ replica: String(voter.nodeId), kind: 'voter' }, lag(voter.logEndOffset));
      for (const observer of description.observers) this.set({ replica: String(observer.nodeId), kind: 'observer' }, lag(observer.logEndOffset));
    },
  });
}
