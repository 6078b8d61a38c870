// `raftka groups`: list, describe, reset offsets of, and delete consumer groups, with
// kafka-consumer-groups.sh's flags (`--list`, `--describe --group G`, `--reset-offsets --group G
// --topic T --to-earliest ... [--execute]`, `--delete --group G`, `--delete-offsets --group G
// --topic T`; `--describe` also with `--members` or `--state`, `--list` with `--state`).
//
// A thin shell over the SDK's Admin group calls: it picks the one action the flags ask for and
// prints the answer as kafka-consumer-groups does (an aligned table), or JSON with `--json`.
// A reset only prints its plan unless `--execute` is given, as Kafka's tool does by default
// (`--dry-run` says so explicitly); the plan is printed either way.

import { Admin, AdminOperationError, type GroupDescription, type ListedGroup, type OffsetResetPlanEntry } from '@raftka/client';
import { assertNever, RaftkaError } from '@raftka/protocol';
import { formatDescribe, formatGroupStates, formatMembers, formatResetPlan, formatTable, parseTopicPartitions, resetTarget, type ResetFlags } from './groups-format.js';

export type GroupsAction = 'list' | 'describe' | 'resetOffsets' | 'delete' | 'deleteOffsets';

const ACTION_FLAGS: Record<GroupsAction, string> = {
  list: '--list',
  describe: '--describe',
  resetOffsets: '--reset-offsets',
  delete: '--delete',
  deleteOffsets: '--delete-offsets',
};
export const GROUPS_ACTIONS: readonly GroupsAction[] = ['list', 'describe', 'resetOffsets', 'delete', 'deleteOffsets'];

export interface GroupsOptions extends ResetFlags {
  bootstrapServers: string[];
  list?: boolean;
  describe?: boolean;
  resetOffsets?: boolean;
  delete?: boolean;
  deleteOffsets?: boolean;
  /** describe: one row per member instead of per partition. */
  members?: boolean;
  /** describe: one row per group (coordinator, assignor, state, member count); list: add the state. */
  state?: boolean;
  /** --group, repeatable. */
  group?: string[];
  /** TOPIC or TOPIC:P1,P2 (reset, delete-offsets). */
  topic?: string;
  execute?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export interface GroupsIo {
  write: (text: string) => void;
  report: (text: string) => void;
}

/** The single action the flags select; more or fewer than one is a usage error. */
export function selectGroupsAction(options: GroupsOptions): GroupsAction {
  const chosen = GROUPS_ACTIONS.filter((action) => options[action] === true);
  if (chosen.length !== 1) {
    throw new RaftkaError(
      'INVALID_REQUEST',
      `exactly one of ${GROUPS_ACTIONS.map((action) => ACTION_FLAGS[action]).join(', ')} is required` +
        (chosen.length > 1 ? `, got ${chosen.map((action) => ACTION_FLAGS[action]).join(' and ')}` : ''),
      { retriable: false },
    );
  }
  return chosen[0]!;
}

function requireGroups(options: GroupsOptions, action: GroupsAction): string[] {
  const groups = (options.group ?? []).filter((group) => group !== '');
  if (groups.length === 0) throw new RaftkaError('INVALID_REQUEST', `${ACTION_FLAGS[action]} needs --group`, { retriable: false });
  return groups;
}

/** What --reset-offsets --json prints. */
export interface ResetReport {
  group: string;
  executed: boolean;
  plan: OffsetResetPlanEntry[];
}

/** Runs one `raftka groups` action; resolves with the exit code (1 when some group failed). */
export async function groupsCommand(
  options: GroupsOptions,
  io: GroupsIo = { write: (text) => process.stdout.write(text), report: (text) => process.stderr.write(text) },
): Promise<number> {
  const action = selectGroupsAction(options);
  // Flags are checked before connecting, so a usage error never waits for a cluster.
  if (action === 'resetOffsets') {
    if (options.execute === true && options.dryRun === true) throw new RaftkaError('INVALID_REQUEST', '--execute and --dry-run cannot be used together', { retriable: false });
    if (options.topic === undefined) throw new RaftkaError('INVALID_REQUEST', '--reset-offsets needs --topic', { retriable: false });
    if (requireGroups(options, action).length !== 1) throw new RaftkaError('INVALID_REQUEST', '--reset-offsets takes exactly one --group', { retriable: false });
    resetTarget(options);
    parseTopicPartitions(options.topic);
  } else if (action === 'deleteOffsets') {
    if (options.topic === undefined) throw new RaftkaError('INVALID_REQUEST', '--delete-offsets needs --topic', { retriable: false });
    if (requireGroups(options, action).length !== 1) throw new RaftkaError('INVALID_REQUEST', '--delete-offsets takes exactly one --group', { retriable: false });
    parseTopicPartitions(options.topic);
  } else if (action !== 'list') {
    requireGroups(options, action);
  }
  if (options.members === true && options.state === true) throw new RaftkaError('INVALID_REQUEST', '--members and --state cannot be used together', { retriable: false });
  const admin = new Admin({ bootstrapServers: options.bootstrapServers, clientId: 'raftka-groups' });
  try {
    switch (action) {
      case 'list':
        return await list(admin, options, io);
      case 'describe':
        return await describe(admin, options, io);
      case 'resetOffsets':
        return await reset(admin, options, io);
      case 'delete':
        return await remove(admin, options, io);
      case 'deleteOffsets':
        return await removeOffsets(admin, options, io);
      default:
        return assertNever(action);
    }
  } finally {
    await admin.close();
  }
}

async function list(admin: Admin, options: GroupsOptions, io: GroupsIo): Promise<number> {
  const groups: ListedGroup[] = await admin.listGroups();
  if (options.json === true) io.write(JSON.stringify(groups, null, 2) + '\n');
  else if (options.state === true) io.write(formatTable(['GROUP', 'STATE'], groups.map((group) => [group.groupId, group.state])));
  else io.write(groups.map((group) => `${group.groupId}\n`).join(''));
  return 0;
}

async function describe(admin: Admin, options: GroupsOptions, io: GroupsIo): Promise<number> {
  const groups: GroupDescription[] = await admin.describeGroups(requireGroups(options, 'describe'));
  if (options.json === true) {
    // undefined offsets become null so the JSON keeps every column.
    io.write(JSON.stringify(groups, (_key, value: unknown) => (value === undefined ? null : value), 2) + '\n');
    return 0;
  }
  if (options.state === true) {
    const cluster = await admin.describeCluster();
    io.write(formatGroupStates(groups, new Map(cluster.brokers.map((broker) => [broker.nodeId, `${broker.host}:${broker.port}`]))));
    return 0;
  }
  const { table, notes } = formatDescribe(groups);
  for (const note of notes) io.report(`${note}\n`);
  io.write(options.members === true ? formatMembers(groups) : table);
  return 0;
}

async function reset(admin: Admin, options: GroupsOptions, io: GroupsIo): Promise<number> {
  const [groupId] = requireGroups(options, 'resetOffsets');
  const { topic, partitions } = parseTopicPartitions(options.topic!);
  const executed = options.execute === true;
  const plan = await admin.resetOffsets({
    groupId: groupId!,
    topic,
    ...(partitions === undefined ? {} : { partitions }),
    to: resetTarget(options),
    dryRun: !executed,
  });
  if (options.json === true) {
    const report: ResetReport = { group: groupId!, executed, plan };
    io.write(JSON.stringify(report, (_key, value: unknown) => (value === undefined ? null : value), 2) + '\n');
  } else {
    io.write(formatResetPlan(groupId!, plan));
  }
  if (!executed) io.report('Dry run: no offsets were changed; add --execute to apply this plan.\n');
  return 0;
}

async function remove(admin: Admin, options: GroupsOptions, io: GroupsIo): Promise<number> {
  const groups = requireGroups(options, 'delete');
  const quoted = (ids: readonly string[]): string => ids.map((id) => `'${id}'`).join(', ');
  try {
    await admin.deleteGroups(groups);
    io.write(`Deletion of requested consumer groups (${quoted(groups)}) was successful.\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof AdminOperationError)) throw error;
    const deleted = error.results as readonly string[];
    if (deleted.length > 0) io.write(`Deletion of requested consumer groups (${quoted(deleted)}) was successful.\n`);
    io.report('Deletion of some consumer groups failed:\n');
    for (const [groupId, failure] of error.failures as ReadonlyMap<string, RaftkaError>) {
      io.report(`* Group '${groupId}' could not be deleted due to: ${describeFailure(failure)}\n`);
    }
    return 1;
  }
}

async function removeOffsets(admin: Admin, options: GroupsOptions, io: GroupsIo): Promise<number> {
  const [groupId] = requireGroups(options, 'deleteOffsets');
  const { topic, partitions } = parseTopicPartitions(options.topic!);
  const targets = (partitions ?? (await admin.describeTopics([topic]))[0]!.partitions.map((partition) => partition.partition)).map((partition) => ({ topic, partition }));
  try {
    await admin.deleteGroupOffsets(groupId!, targets);
  } catch (error) {
    if (!(error instanceof AdminOperationError)) throw error;
    io.report(`Deletion of some offsets of group '${groupId}' failed:\n`);
    for (const [item, failure] of error.failures as ReadonlyMap<string, RaftkaError>) io.report(`* ${item}: ${describeFailure(failure)}\n`);
    return 1;
  }
  io.write(formatTable(['TOPIC', 'PARTITION', 'STATUS'], targets.map((tp) => [tp.topic, String(tp.partition), 'Successful'])));
  return 0;
}

/** `CODE (broker's message)` for an error built from a broker answer, `CODE: message` otherwise. */
export function describeFailure(error: RaftkaError): string {
  const fromBroker = new RegExp(`: ${error.code} \\((.*)\\)$`, 's').exec(error.message);
  return fromBroker ? `${error.code} (${fromBroker[1]})` : `${error.code}: ${error.message}`;
}
