// `raftka topics`: create, list, describe, alter and delete topics, with kafka-topics.sh's flags
// (`--create --topic T --partitions N --replication-factor R --config k=v`, `--list`,
// `--describe`, `--alter --topic T --partitions N`, `--delete --topic T`).
//
// The command is a thin shell over the SDK's Admin: it picks the one action the flags ask for,
// calls Admin, and prints the answer the way kafka-topics does (tab-separated describe lines),
// or as JSON with `--json` for scripts. Errors surface with their Kafka names through the
// caller's error printer.

import { AdminOperationError, Admin, type TopicDescription } from '@raftka/client';
import { assertNever, RaftkaError } from '@raftka/protocol';

export type TopicsAction = 'create' | 'list' | 'describe' | 'alter' | 'delete';

export const TOPICS_ACTIONS: readonly TopicsAction[] = ['create', 'list', 'describe', 'alter', 'delete'];

export interface TopicsOptions {
  bootstrapServers: string[];
  create?: boolean;
  list?: boolean;
  describe?: boolean;
  alter?: boolean;
  delete?: boolean;
  topic?: string;
  partitions?: number;
  replicationFactor?: number;
  /** Topic configs as given with --config k=v. */
  config: Record<string, string>;
  json?: boolean;
  ifExists?: boolean;
  ifNotExists?: boolean;
  underReplicatedPartitions?: boolean;
  unavailablePartitions?: boolean;
  excludeInternal?: boolean;
}

/** A topic as `--describe --json` prints it. */
export interface TopicReport {
  topic: string;
  topicId: string;
  isInternal: boolean;
  partitionCount: number;
  replicationFactor: number;
  /** Configs set on the topic itself (not broker defaults), as kafka-topics shows them. */
  configs: Record<string, string>;
  partitions: { partition: number; leader: number; leaderEpoch: number; replicas: number[]; isr: number[]; offlineReplicas: number[] }[];
}

/** The single action the flags select; more or fewer than one is a usage error. */
export function selectTopicsAction(options: TopicsOptions): TopicsAction {
  const chosen = TOPICS_ACTIONS.filter((action) => options[action] === true);
  if (chosen.length !== 1) {
    throw new RaftkaError(
      'INVALID_REQUEST',
      `exactly one of ${TOPICS_ACTIONS.map((action) => `--${action}`).join(', ')} is required${chosen.length > 1 ? `, got ${chosen.map((action) => `--${action}`).join(' and ')}` : ''}`,
      { retriable: false },
    );
  }
  return chosen[0]!;
}

function requireTopic(options: TopicsOptions, action: TopicsAction): string {
  if (options.topic === undefined || options.topic === '') {
    throw new RaftkaError('INVALID_REQUEST', `--${action} needs --topic`, { retriable: false });
  }
  return options.topic;
}

/** True when every failure of an admin call has this code (used by --if-exists / --if-not-exists). */
function failedOnlyWith(error: unknown, code: RaftkaError['code']): boolean {
  if (error instanceof AdminOperationError) return [...(error.failures as ReadonlyMap<string, RaftkaError>).values()].every((failure) => failure.code === code);
  return error instanceof RaftkaError && error.code === code;
}

export function toTopicReport(description: TopicDescription, configs: Record<string, string>): TopicReport {
  return {
    topic: description.topic,
    topicId: description.topicId,
    isInternal: description.isInternal,
    partitionCount: description.partitions.length,
    replicationFactor: description.partitions[0]?.replicas.length ?? 0,
    configs,
    partitions: description.partitions.map((partition) => ({
      partition: partition.partition,
      leader: partition.leader,
      leaderEpoch: partition.leaderEpoch,
      replicas: [...partition.replicas],
      isr: [...partition.isr],
      offlineReplicas: [...partition.offlineReplicas],
    })),
  };
}

/** kafka-topics --describe's layout: one summary line per topic, then one indented line per partition. */
export function formatTopicReport(report: TopicReport): string {
  const configs = Object.entries(report.configs)
    .map(([name, value]) => `${name}=${value}`)
    .join(',');
  const lines = [
    `Topic: ${report.topic}\tTopicId: ${report.topicId}\tPartitionCount: ${report.partitionCount}\tReplicationFactor: ${report.replicationFactor}\tConfigs: ${configs}`,
  ];
  for (const partition of report.partitions) {
    const offline = partition.offlineReplicas.length > 0 ? `\tOffline: ${partition.offlineReplicas.join(',')}` : '';
    lines.push(
      `\tTopic: ${report.topic}\tPartition: ${partition.partition}\tLeader: ${partition.leader < 0 ? 'none' : partition.leader}\tReplicas: ${partition.replicas.join(',')}\tIsr: ${partition.isr.join(',')}${offline}`,
    );
  }
  return lines.join('\n');
}

/** Keeps the partitions the describe filters ask for (all when none is given). */
export function filterPartitions(report: TopicReport, options: Pick<TopicsOptions, 'underReplicatedPartitions' | 'unavailablePartitions'>): TopicReport {
  if (!options.underReplicatedPartitions && !options.unavailablePartitions) return report;
  const partitions = report.partitions.filter(
    (partition) =>
      (options.underReplicatedPartitions === true && partition.isr.length < partition.replicas.length) ||
      (options.unavailablePartitions === true && partition.leader < 0),
  );
  return { ...report, partitions };
}

async function describe(admin: Admin, options: TopicsOptions, write: (text: string) => void): Promise<void> {
  let names: string[];
  if (options.topic !== undefined) {
    names = [options.topic];
  } else {
    names = await admin.listTopics({ includeInternal: options.excludeInternal !== true });
  }
  let descriptions: TopicDescription[] = [];
  if (names.length > 0) {
    try {
      descriptions = await admin.describeTopics(names);
    } catch (error) {
      if (!(options.ifExists === true && failedOnlyWith(error, 'UNKNOWN_TOPIC_OR_PARTITION'))) throw error;
      descriptions = [];
    }
  }
  const configsByTopic = new Map<string, Record<string, string>>();
  if (descriptions.length > 0) {
    const resources = await admin.describeConfigs(descriptions.map((description) => ({ type: 'topic' as const, name: description.topic })));
    for (const resource of resources) {
      const set: Record<string, string> = {};
      // Like kafka-topics, show only what was set on the topic, not inherited defaults.
      for (const entry of resource.entries) if (entry.source === 'dynamic-topic-config') set[entry.name] = entry.sensitive ? '<sensitive>' : (entry.value ?? 'null');
      configsByTopic.set(resource.name, set);
    }
  }
  const reports = descriptions
    .sort((a, b) => a.topic.localeCompare(b.topic))
    .map((description) => filterPartitions(toTopicReport(description, configsByTopic.get(description.topic) ?? {}), options));
  if (options.json) {
    write(JSON.stringify(reports) + '\n');
    return;
  }
  const filtered = options.underReplicatedPartitions === true || options.unavailablePartitions === true;
  for (const report of reports) {
    // With a partition filter kafka-topics prints only matching partition lines.
    const text = filtered ? formatTopicReport(report).split('\n').slice(1).join('\n') : formatTopicReport(report);
    if (text !== '') write(text + '\n');
  }
}

/** Runs the action the flags select; output goes to `write` (stdout). */
export async function topicsCommand(options: TopicsOptions, write: (text: string) => void = (text) => process.stdout.write(text)): Promise<void> {
  const action = selectTopicsAction(options);
  const admin = new Admin({ bootstrapServers: options.bootstrapServers, clientId: 'raftka-topics' });
  try {
    switch (action) {
      case 'create': {
        const topic = requireTopic(options, action);
        try {
          await admin.createTopics([
            {
              topic,
              ...(options.partitions === undefined ? {} : { numPartitions: options.partitions }),
              ...(options.replicationFactor === undefined ? {} : { replicationFactor: options.replicationFactor }),
              configs: options.config,
            },
          ]);
          write(`Created topic ${topic}.\n`);
        } catch (error) {
          if (!(options.ifNotExists === true && failedOnlyWith(error, 'TOPIC_ALREADY_EXISTS'))) throw error;
        }
        return;
      }
      case 'list': {
        for (const name of await admin.listTopics({ includeInternal: options.excludeInternal !== true })) write(`${name}\n`);
        return;
      }
      case 'describe':
        await describe(admin, options, write);
        return;
      case 'alter': {
        const topic = requireTopic(options, action);
        const configEntries = Object.entries(options.config);
        if (options.partitions === undefined && configEntries.length === 0) {
          throw new RaftkaError('INVALID_REQUEST', '--alter needs --partitions N and/or --config k=v', { retriable: false });
        }
        try {
          if (options.partitions !== undefined) await admin.createPartitions([{ topic, count: options.partitions }]);
          if (configEntries.length > 0) {
            await admin.incrementalAlterConfigs([
              { resource: { type: 'topic', name: topic }, operations: configEntries.map(([name, value]) => ({ name, op: 'set' as const, value })) },
            ]);
          }
        } catch (error) {
          if (!(options.ifExists === true && failedOnlyWith(error, 'UNKNOWN_TOPIC_OR_PARTITION'))) throw error;
        }
        return;
      }
      case 'delete': {
        const topic = requireTopic(options, action);
        try {
          await admin.deleteTopics([topic]);
          write(`Deleted topic ${topic}.\n`);
        } catch (error) {
          if (!(options.ifExists === true && failedOnlyWith(error, 'UNKNOWN_TOPIC_OR_PARTITION'))) throw error;
        }
        return;
      }
      default:
        assertNever(action, 'topics action');
    }
  } finally {
    await admin.close();
  }
}
