// `raftka consume`: the console consumer (kafka-console-consumer) with manual assignment: it
// reads every partition of the topic (or the one given with --partition) from the latest
// offset, the earliest (--from-beginning) or a given offset (--offset), and prints one record per
// line; nothing is committed.
//
// With `--group G` it joins consumer group G instead (subscribe: the group's coordinator assigns
// the partitions, shared with the group's other members) and commits, after each batch is
// written to stdout, the offset after the last record it printed. Where a partition starts is
// then the group's committed offset; --from-beginning only chooses where a partition without one
// starts (auto.offset.reset = earliest), as in kafka-console-consumer.
//
// Output follows Kafka's DefaultMessageFormatter: optional columns CreateTime:<ts>,
// Partition:<p>, Offset:<o>, headers, key, then the value, separated by `key.separator` (tab by
// default), a null key or value printed as `null`.
//
// The command stops after --max-messages records, after --timeout-ms without a record, or on
// SIGINT/SIGTERM, and then prints "Processed a total of N messages" on stderr like Kafka's.

import { Admin, CommitFailedError, Consumer, RebalanceInProgressError, type ConsumerRecord, type TopicPartition } from '@raftka/client';
import { RaftkaError } from '@raftka/protocol';

/** Records a poll may return at once (also bounds how much one write to stdout holds). */
const POLL_RECORDS_MAX = 500;
/** Longest single poll wait, so a signal or --timeout-ms is noticed promptly. */
const POLL_WAIT_MS_MAX = 500;

export type StartOffset = 'earliest' | 'latest' | number;

export interface ConsumeOptions {
  bootstrapServers: string[];
  topic: string;
  fromBeginning?: boolean;
  partition?: number;
  offset?: StartOffset;
  maxMessages?: number;
  timeoutMs?: number;
  /** Consume as a member of this group, committing as it goes (instead of manual assignment). */
  group?: string;
  /** kafka-console-consumer's `--property` formatter settings. */
  properties: Record<string, string>;
}

export interface FormatterSettings {
  printKey: boolean;
  printValue: boolean;
  printPartition: boolean;
  printOffset: boolean;
  printTimestamp: boolean;
  printHeaders: boolean;
  keySeparator: string;
  lineSeparator: string;
  headersSeparator: string;
  nullLiteral: string;
}

const BOOLEAN_PROPERTIES = {
  'print.key': 'printKey',
  'print.value': 'printValue',
  'print.partition': 'printPartition',
  'print.offset': 'printOffset',
  'print.timestamp': 'printTimestamp',
  'print.headers': 'printHeaders',
} as const;
const TEXT_PROPERTIES = { 'key.separator': 'keySeparator', 'line.separator': 'lineSeparator', 'headers.separator': 'headersSeparator', 'null.literal': 'nullLiteral' } as const;

/** Validates `--property` keys once (an unknown key is an error, not silently ignored). */
export function formatterSettings(properties: Record<string, string>): FormatterSettings {
  const settings: FormatterSettings = {
    printKey: false,
    printValue: true,
    printPartition: false,
    printOffset: false,
    printTimestamp: false,
    printHeaders: false,
    keySeparator: '\t',
    lineSeparator: '\n',
    headersSeparator: ',',
    nullLiteral: 'null',
  };
  for (const [name, value] of Object.entries(properties)) {
    if (Object.hasOwn(BOOLEAN_PROPERTIES, name)) {
      if (value !== 'true' && value !== 'false') throw new RaftkaError('INVALID_CONFIG', `property ${name} must be true or false, got ${JSON.stringify(value)}`, { retriable: false });
      settings[BOOLEAN_PROPERTIES[name as keyof typeof BOOLEAN_PROPERTIES]] = value === 'true';
    } else if (Object.hasOwn(TEXT_PROPERTIES, name)) {
      settings[TEXT_PROPERTIES[name as keyof typeof TEXT_PROPERTIES]] = value;
    } else {
      throw new RaftkaError('INVALID_CONFIG', `unknown property ${name}; known: ${[...Object.keys(BOOLEAN_PROPERTIES), ...Object.keys(TEXT_PROPERTIES)].join(', ')}`, {
        retriable: false,
      });
    }
  }
  return settings;
}

/** One record as kafka-console-consumer prints it (including the line separator). */
export function formatRecord(record: ConsumerRecord, settings: FormatterSettings): string {
  const text = (bytes: Buffer | null): string => (bytes === null ? settings.nullLiteral : bytes.toString('utf8'));
  const columns: string[] = [];
  if (settings.printTimestamp) columns.push(`CreateTime:${record.timestamp}`);
  if (settings.printPartition) columns.push(`Partition:${record.partition}`);
  if (settings.printOffset) columns.push(`Offset:${record.offset}`);
  if (settings.printHeaders) {
    columns.push(record.headers.length === 0 ? 'NO_HEADERS' : record.headers.map((header) => `${header.key}:${text(header.value)}`).join(settings.headersSeparator));
  }
  if (settings.printKey) columns.push(text(record.key));
  if (settings.printValue) columns.push(text(record.value));
  return columns.join(settings.keySeparator) + settings.lineSeparator;
}

/** The partitions of a topic (fails with UNKNOWN_TOPIC_OR_PARTITION when it does not exist). */
export async function topicPartitions(bootstrapServers: string[], topic: string, clientId: string): Promise<TopicPartition[]> {
  const admin = new Admin({ bootstrapServers, clientId });
  try {
    const [description] = await admin.describeTopics([topic]);
    return description!.partitions.map((partition) => ({ topic, partition: partition.partition }));
  } finally {
    await admin.close();
  }
}

/** Where reading starts: --offset wins, then --from-beginning, else the end of the log (Kafka's default). */
export function startOffset(options: Pick<ConsumeOptions, 'fromBeginning' | 'offset' | 'partition'>): StartOffset {
  if (options.offset !== undefined && options.fromBeginning === true) {
    throw new RaftkaError('INVALID_REQUEST', '--from-beginning and --offset cannot be used together', { retriable: false });
  }
  if (typeof options.offset === 'number' && options.partition === undefined) {
    // As in kafka-console-consumer: a numeric offset means one partition's offset.
    throw new RaftkaError('INVALID_REQUEST', '--offset N needs --partition', { retriable: false });
  }
  return options.offset ?? (options.fromBeginning === true ? 'earliest' : 'latest');
}

/**
 * The offsets to commit after printing `records`: per partition, one past the last record, with
 * that record's leader epoch (KIP-320), in first-seen partition order.
 */
export function offsetsAfter(records: readonly ConsumerRecord[]): (TopicPartition & { offset: number; leaderEpoch: number })[] {
  const last = new Map<string, ConsumerRecord>();
  for (const record of records) {
    const key = `${record.topic}\u0000${record.partition}`;
    const seen = last.get(key);
    if (seen === undefined || record.offset > seen.offset) last.set(key, record);
  }
  return [...last.values()].map((record) => ({ topic: record.topic, partition: record.partition, offset: record.offset + 1, leaderEpoch: record.leaderEpoch }));
}

/** Checks the flags that do not go with --group (as kafka-console-consumer refuses them). */
export function checkGroupOptions(options: Pick<ConsumeOptions, 'group' | 'partition' | 'offset'>): void {
  if (options.group === undefined) return;
  if (options.group === '') throw new RaftkaError('INVALID_REQUEST', '--group needs a group id', { retriable: false });
  if (options.partition !== undefined || options.offset !== undefined) {
    throw new RaftkaError('INVALID_REQUEST', '--group cannot be used with --partition or --offset: the group assigns partitions and remembers offsets', { retriable: false });
  }
}

/** Reads and prints records; resolves with how many it printed. */
export async function consumeCommand(
  options: ConsumeOptions,
  io: { write: (text: string) => Promise<void>; report: (text: string) => void; stopSignal?: AbortSignal } = {
    write: writeStdout,
    report: (text) => process.stderr.write(text),
  },
): Promise<number> {
  const settings = formatterSettings(options.properties);
  checkGroupOptions(options);
  const start = startOffset(options);
  if (options.group !== undefined) return consumeInGroup(options, options.group, settings, io);
  const all = await topicPartitions(options.bootstrapServers, options.topic, 'raftka-consume');
  const partitions = options.partition === undefined ? all : all.filter((entry) => entry.partition === options.partition);
  if (partitions.length === 0) {
    throw new RaftkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${options.topic} has ${all.length} partitions (0..${all.length - 1}); there is no partition ${options.partition}`, {
      retriable: false,
    });
  }
  const consumer = new Consumer({
    bootstrapServers: options.bootstrapServers,
    clientId: 'raftka-consume',
    autoOffsetReset: start === 'earliest' ? 'earliest' : 'latest',
    enableAutoCommit: false,
    maxPollRecords: POLL_RECORDS_MAX,
  });
  const stop = (): void => void consumer.close();
  io.stopSignal?.addEventListener('abort', stop);
  let printed = 0;
  try {
    consumer.assign(partitions);
    if (typeof start === 'number') for (const partition of partitions) consumer.seek(partition, start);
    else if (start === 'earliest') await consumer.seekToBeginning(partitions);
    else await consumer.seekToEnd(partitions);
    printed = await printLoop(consumer, options, settings, io, async () => undefined);
  } finally {
    io.stopSignal?.removeEventListener('abort', stop);
    await consumer.close();
  }
  io.report(`Processed a total of ${printed} messages\n`);
  return printed;
}

type ConsumeIo = { write: (text: string) => Promise<void>; report: (text: string) => void; stopSignal?: AbortSignal };

/** --group: subscribe, print, and commit what was printed after each write. */
async function consumeInGroup(options: ConsumeOptions, groupId: string, settings: FormatterSettings, io: ConsumeIo): Promise<number> {
  // Fails fast on a missing topic: a subscription to it would wait silently.
  await topicPartitions(options.bootstrapServers, options.topic, 'raftka-consume');
  const consumer = new Consumer({
    bootstrapServers: options.bootstrapServers,
    clientId: 'raftka-consume',
    groupId,
    autoOffsetReset: options.fromBeginning === true ? 'earliest' : 'latest',
    // Commits follow what reached stdout, not what poll returned.
    enableAutoCommit: false,
    maxPollRecords: POLL_RECORDS_MAX,
  });
  // A stop request is seen by the print loop within one poll wait (POLL_WAIT_MS_MAX); the
  // consumer stays open until then so the last printed batch is still committed.
  let printed = 0;
  try {
    consumer.subscribe([options.topic]);
    printed = await printLoop(consumer, options, settings, io, async (records) => {
      try {
        await consumer.commitSync(offsetsAfter(records));
      } catch (error) {
        // The group is rebalancing or moved on without this member: the printed records'
        // partitions may now belong to another member, which reads them again from the last
        // commit (at least once). The next poll rejoins; stopping here would only lose the member.
        if (!(error instanceof RebalanceInProgressError || error instanceof CommitFailedError)) throw error;
        io.report(`raftka consume: commit skipped (${error.code}); the group re-reads those records from its last commit\n`);
      }
    });
  } finally {
    // close() leaves the group, so the partitions move to the other members at once.
    await consumer.close();
  }
  io.report(`Processed a total of ${printed} messages\n`);
  return printed;
}

/** Polls and prints until --max-messages, --timeout-ms or a stop; `afterWrite` receives each written batch. */
async function printLoop(
  consumer: Consumer,
  options: ConsumeOptions,
  settings: FormatterSettings,
  io: ConsumeIo,
  afterWrite: (records: ConsumerRecord[]) => Promise<void>,
): Promise<number> {
  let printed = 0;
  let lastRecordMs = Date.now();
  while (!io.stopSignal?.aborted && (options.maxMessages === undefined || printed < options.maxMessages)) {
    const waitMs = options.timeoutMs === undefined ? POLL_WAIT_MS_MAX : Math.min(POLL_WAIT_MS_MAX, Math.max(0, lastRecordMs + options.timeoutMs - Date.now()));
    const records = await consumer.poll({ timeoutMs: waitMs });
    if (records.length === 0) {
      if (options.timeoutMs !== undefined && Date.now() - lastRecordMs >= options.timeoutMs) break;
      continue;
    }
    lastRecordMs = Date.now();
    const room = options.maxMessages === undefined ? records.length : Math.min(records.length, options.maxMessages - printed);
    let text = '';
    for (let index = 0; index < room; index++) text += formatRecord(records[index]!, settings);
    await io.write(text);
    printed += room;
    await afterWrite(records.slice(0, room));
  }
  return printed;
}

/** Writes to stdout honouring backpressure, so a slow reader (e.g. `| less`) slows the consumer. */
function writeStdout(text: string): Promise<void> {
  if (process.stdout.write(text)) return Promise.resolve();
  return new Promise((resolve) => process.stdout.once('drain', resolve));
}
