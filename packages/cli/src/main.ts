#!/usr/bin/env node
// The `raftka` command. Handlers stay thin: the logic lives in the libraries.

import { Command, InvalidArgumentError, Option } from 'commander';
import type { Acks, CompressionType } from '@raftka/client';
import { RaftkaError } from '@raftka/protocol';
import type { StartOffset } from './consume/consume-command.js';
import type { TopicsOptions } from './topics/topics-command.js';
import type { GroupsOptions } from './groups/groups-command.js';

// Each command's module is loaded only when that command runs: a client command then never
// loads the broker and quorum code, which halves the start-up time of short commands.
const commands = {
  server: () => import('./server/server-command.js'),
  quorum: () => import('./quorum/quorum-commands.js'),
  topics: () => import('./topics/topics-command.js'),
  produce: () => import('./produce/produce-command.js'),
  consume: () => import('./consume/consume-command.js'),
  producerPerf: () => import('./perf/producer-perf.js'),
  consumerPerf: () => import('./perf/consumer-perf.js'),
  groups: () => import('./groups/groups-command.js'),
  cluster: () => import('./cluster/cluster-command.js'),
};

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed <= 0) throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}

function signedInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || value.trim() === '') throw new InvalidArgumentError('expected an integer');
  return parsed;
}

function nonNegativeInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return parsed;
}

/** --throughput: records per second, or -1 for unlimited. */
function throughput(value: string): number {
  const parsed = Number(value);
  if (parsed === -1 || (Number.isFinite(parsed) && parsed > 0)) return parsed;
  throw new InvalidArgumentError('expected records per second (> 0) or -1 for unlimited');
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Repeatable `key=value` flags (--property, --config) into an object; the last one of a key wins. */
function keyValue(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`expected key=value, got ${JSON.stringify(value)}`);
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

/** --bootstrap-server: one or more comma-separated HOST:PORT. */
function bootstrapServers(value: string): string[] {
  const servers = value.split(',').map((server) => server.trim()).filter((server) => server !== '');
  for (const server of servers) {
    const port = Number(/:(\d{1,5})$/.exec(server)?.[1]);
    if (!(port > 0 && port < 65536) || server.startsWith(':')) throw new InvalidArgumentError(`expected HOST:PORT, got ${JSON.stringify(server)}`);
  }
  if (servers.length === 0) throw new InvalidArgumentError('expected HOST:PORT');
  return servers;
}

function acks(value: string): Acks {
  if (value === 'all' || value === '-1') return -1;
  if (value === '0') return 0;
  if (value === '1') return 1;
  throw new InvalidArgumentError('expected 0, 1 or all');
}

function startOffset(value: string): StartOffset {
  if (value === 'earliest' || value === 'latest') return value;
  const parsed = Number(value);
  if (Number.isSafeInteger(parsed) && parsed >= 0) return parsed;
  throw new InvalidArgumentError('expected a non-negative offset, earliest or latest');
}

const DEFAULT_BOOTSTRAP_SERVER = '127.0.0.1:9092';
const COMPRESSION_TYPES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

function bootstrapOption(): Option {
  return new Option('--bootstrap-server <host:port>', 'broker(s) to connect to, comma-separated').argParser(bootstrapServers).default([DEFAULT_BOOTSTRAP_SERVER], DEFAULT_BOOTSTRAP_SERVER);
}

function acksOption(): Option {
  return new Option('--acks <acks>', 'acknowledgements to wait for: 0 (none), 1 (leader), all (every in-sync replica)').argParser(acks).default(-1 as Acks, 'all');
}

function compressionOption(): Option {
  return new Option('--compression <codec>', 'batch compression').choices(COMPRESSION_TYPES).default('none');
}

/** One line on stderr naming the command and the Kafka error, e.g. `raftka topics: UNKNOWN_TOPIC_OR_PARTITION: ...`. */
function formatError(error: unknown): string {
  // An admin call that failed per item carries each item's own error; show the first one.
  // (Recognized by name, so that this module does not load the SDK for every command.)
  const cause = error instanceof RaftkaError && error.name === 'AdminOperationError' && error.cause instanceof RaftkaError ? error.cause : error;
  let message: string;
  if (cause instanceof RaftkaError) {
    // Errors from broker answers read `context: CODE (server message)`; the code leads the line already.
    const repeated = new RegExp(`^(.*): ${cause.code} \\((.*)\\)$`, 's').exec(cause.message);
    message = `${cause.code}: ${repeated ? `${repeated[1]}: ${repeated[2]}` : cause.message}`;
  } else {
    message = (cause as Error)?.message ?? String(cause);
  }
  return message.replace(/\s*\n\s*/g, '; ').trim();
}

/** Errors of client commands: one line on stderr, exit 1. */
function failWith(command: string): (error: unknown) => never {
  return (error) => {
    process.stderr.write(`${command}: ${formatError(error)}\n`);
    process.exit(1);
  };
}

const fail = failWith('raftka');

/** A closed pipe (`raftka consume ... | head`) ends a client command quietly, as in other Unix tools. */
function exitQuietlyOnClosedStdout(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

/**
 * Settings every client command shares: usage errors (a bad flag value, a missing option) as
 * one line like its other errors, instead of commander's message followed by the whole help
 * text; and a quiet exit when stdout is closed.
 */
function clientCommand(command: Command, name: string): Command {
  return command
    .showHelpAfterError(false)
    .configureOutput({
      outputError: (text, write) => write(`${name}: INVALID_REQUEST: ${text.replace(/^error: /, '').trim()} (see ${name} --help)\n`),
    })
    .hook('preAction', exitQuietlyOnClosedStdout);
}

/** Stops long-running client commands gracefully on SIGINT/SIGTERM (a second signal exits at once). */
function stopOnSignal(): AbortSignal {
  const controller = new AbortController();
  const onSignal = (): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller.signal;
}

const program = new Command('raftka')
  .description('Raftka: a Kafka-class event-streaming platform with a KRaft metadata quorum')
  .showHelpAfterError();

program
  .command('server')
  .description('run a Raftka node in the foreground (logs JSON to stdout; SIGTERM/SIGINT stop it gracefully)')
  .option('-c, --config <file>', 'server.properties file')
  .option('-o, --override <key=value>', 'override a config key (repeatable; wins over the file and RAFTKA_CFG_* variables)', collect, [])
  .addHelpText('after', '\nEvery key can also be set with an environment variable RAFTKA_CFG_<KEY> (dots as underscores, upper case).')
  .action(async (options: { config?: string; override: string[] }) => {
    const { runServer } = await commands.server();
    await runServer(options);
  });

const quorum = program.command('quorum').description('inspect the metadata quorum');

quorum
  .command('describe')
  .description('leader, epoch, high watermark, and each voter\'s and observer\'s log end offset, lag and last fetch')
  .requiredOption('--bootstrap-controller <host:port>', 'any controller (it forwards to the leader)')
  .option('--json', 'print JSON instead of a table')
  .action((options: { bootstrapController: string; json?: boolean }) =>
    commands.quorum().then(({ describeCommand }) => describeCommand(options)).catch(fail),
  );

quorum
  .command('append')
  .description('diagnostic: append records to the metadata log through the leader and wait for their commit')
  .requiredOption('--bootstrap-controller <host:port>', 'any controller (NOT_LEADER answers are followed to the leader)')
  .addOption(new Option('--count <n>', 'number of records').argParser(positiveInteger).default(1))
  .addOption(new Option('--record-bytes <n>', 'size of each random record').argParser(positiveInteger).default(100))
  .addOption(new Option('--batch-records <n>', 'records per append (one atomic batch)').argParser(positiveInteger).default(100))
  .option('--value <text>', 'use this text as every record instead of random bytes')
  .action((options: { bootstrapController: string; count: number; recordBytes: number; batchRecords: number; value?: string }) =>
    commands.quorum().then(({ appendCommand }) => appendCommand(options)).catch(fail),
  );

clientCommand(program.command('topics'), 'raftka topics')
  .description('create, list, describe, alter and delete topics (kafka-topics.sh flags: pick exactly one action)')
  .addOption(bootstrapOption())
  .option('--create', 'create a topic: --topic, --partitions, --replication-factor, --config k=v')
  .option('--list', 'list topic names')
  .option('--describe', 'show partitions with leader, replicas and ISR (all topics, or --topic)')
  .option('--alter', 'raise the partition count (--partitions N) and/or set configs (--config k=v) of --topic')
  .option('--delete', 'delete --topic and its data')
  .option('--topic <name>', 'the topic')
  .addOption(new Option('--partitions <n>', 'partition count (create: default num.partitions; alter: the new, larger count)').argParser(positiveInteger))
  .addOption(new Option('--replication-factor <n>', 'replicas per partition (default default.replication.factor)').argParser(positiveInteger))
  .option('--config <key=value>', 'topic config, e.g. cleanup.policy=compact (repeatable)', keyValue)
  .option('--if-exists', 'alter, delete, describe: do nothing when the topic does not exist')
  .option('--if-not-exists', 'create: do nothing when the topic exists')
  .option('--under-replicated-partitions', 'describe: only partitions whose ISR is smaller than their replica set')
  .option('--unavailable-partitions', 'describe: only partitions without a leader')
  .option('--exclude-internal', 'list, describe: leave out internal topics')
  .option('--json', 'describe: print JSON')
  .addHelpText(
    'after',
    '\nExamples:\n  raftka topics --create --topic orders --partitions 3 --replication-factor 1\n  raftka topics --describe --topic orders\n  raftka topics --alter --topic orders --partitions 6',
  )
  .action((options: Omit<TopicsOptions, 'config' | 'bootstrapServers'> & { config?: Record<string, string>; bootstrapServer: string[] }) =>
    commands
      .topics()
      .then(({ topicsCommand }) => topicsCommand({ ...options, config: options.config ?? {}, bootstrapServers: options.bootstrapServer }))
      .catch(failWith('raftka topics')),
  );

clientCommand(program.command('produce'), 'raftka produce')
  .description('send stdin lines to a topic, one record per line (kafka-console-producer); waits for every acknowledgement')
  .addOption(bootstrapOption())
  .requiredOption('--topic <name>', 'the topic; a missing one is created on first produce when the cluster allows it (auto.create.topics.enable)')
  .addOption(acksOption())
  .addOption(compressionOption())
  .addOption(new Option('--partition <n>', 'send every record to this partition (default: by key hash, or sticky for keyless records)').argParser(nonNegativeInteger))
  .addOption(new Option('--linger-ms <ms>', 'how long a batch waits for more records').argParser(nonNegativeInteger))
  .addOption(new Option('--batch-size <bytes>', 'upper bound of a batch').argParser(nonNegativeInteger))
  .option('--property <key=value>', 'line reader setting (repeatable): parse.key=true, key.separator=<text> (default tab), null.marker=<text>', keyValue)
  .option('--file <path>', 'read the lines from this file instead of stdin (with a progress bar of records and MB/s when stderr is a terminal)')
  .addHelpText('after', '\nFailed records are printed to stderr, one line each (line number and Kafka error name), and make the exit code 1.')
  .action(
    async (options: { bootstrapServer: string[]; topic: string; acks: Acks; compression: string; partition?: number; lingerMs?: number; batchSize?: number; property?: Record<string, string>; file?: string }) => {
      const { produceCommand } = await commands.produce().catch(failWith('raftka produce'));
      const stopSignal = stopOnSignal();
      const produceOptions = {
        bootstrapServers: options.bootstrapServer,
        topic: options.topic,
        acks: options.acks,
        compression: options.compression as CompressionType,
        ...(options.partition === undefined ? {} : { partition: options.partition }),
        ...(options.lingerMs === undefined ? {} : { lingerMs: options.lingerMs }),
        ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
        properties: options.property ?? {},
        ...(options.file === undefined ? {} : { file: options.file }),
      };
      const io = { input: process.stdin, reportFailure: (line: string) => process.stderr.write(`raftka produce: ${line}\n`), stopSignal, progressStream: process.stderr };
      const failed = await produceCommand(produceOptions, io).catch(failWith('raftka produce'));
      if (failed > 0) {
        process.stderr.write(`raftka produce: ${failed} record(s) failed\n`);
        process.exitCode = 1;
      }
    },
  );

clientCommand(program.command('consume'), 'raftka consume')
  .description('print a topic\'s records to stdout, one per line (kafka-console-consumer; every partition assigned manually, or shared in a consumer group with --group)')
  .addOption(bootstrapOption())
  .requiredOption('--topic <name>', 'the topic')
  .option('--from-beginning', 'start at the earliest offset instead of the end of the log')
  .addOption(new Option('--partition <n>', 'read only this partition (default: every partition of the topic)').argParser(nonNegativeInteger))
  .addOption(new Option('--offset <n|earliest|latest>', 'where to start (a number needs --partition)').argParser(startOffset))
  .addOption(new Option('--max-messages <n>', 'exit after printing this many records').argParser(positiveInteger))
  .addOption(new Option('--timeout-ms <ms>', 'exit after this long without a record').argParser(positiveInteger))
  .option('--group <id>', 'consume as a member of this consumer group (partitions assigned by the group, offsets committed after each printed batch; not with --partition/--offset)')
  .option(
    '--property <key=value>',
    'formatter setting (repeatable): print.key, print.partition, print.offset, print.timestamp, print.headers, print.value (true/false), key.separator, line.separator, null.literal',
    keyValue,
  )
  .addHelpText('after', '\nColumns are printed as Kafka does: CreateTime:<ts>, Partition:<p>, Offset:<o>, headers, key, value, separated by key.separator (default tab).')
  .action(
    async (options: {
      bootstrapServer: string[];
      topic: string;
      fromBeginning?: boolean;
      partition?: number;
      offset?: StartOffset;
      maxMessages?: number;
      timeoutMs?: number;
      group?: string;
      property?: Record<string, string>;
    }) => {
      const stopSignal = stopOnSignal();
      const { consumeCommand } = await commands.consume().catch(failWith('raftka consume'));
      await consumeCommand(
        {
          bootstrapServers: options.bootstrapServer,
          topic: options.topic,
          properties: options.property ?? {},
          ...(options.fromBeginning === undefined ? {} : { fromBeginning: options.fromBeginning }),
          ...(options.partition === undefined ? {} : { partition: options.partition }),
          ...(options.offset === undefined ? {} : { offset: options.offset }),
          ...(options.maxMessages === undefined ? {} : { maxMessages: options.maxMessages }),
          ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
          ...(options.group === undefined ? {} : { group: options.group }),
        },
        {
          write: (text) => (process.stdout.write(text) ? Promise.resolve() : new Promise((resolve) => process.stdout.once('drain', resolve))),
          report: (text) => process.stderr.write(text),
          stopSignal,
        },
      ).catch(failWith('raftka consume'));
    },
  );

clientCommand(program.command('groups'), 'raftka groups')
  .description('list, describe, reset offsets of and delete consumer groups (kafka-consumer-groups.sh flags: pick exactly one action)')
  .addOption(bootstrapOption())
  .option('--list', 'list group ids (every broker is asked for the groups it coordinates)')
  .option('--describe', 'per partition: committed offset, log end offset, lag and owning member (consumer id, host, client id) of --group')
  .option('--reset-offsets', 'move the committed offsets of an inactive --group for --topic; prints the plan and changes nothing without --execute')
  .option('--delete', 'delete --group (it must have no members)')
  .option('--delete-offsets', 'delete the committed offsets of --group for --topic (refused while a member subscribes to it)')
  .option('--members', 'describe: one row per member (consumer id, host, client id, partition count, assignment)')
  .option('--state', 'describe: one row per group (coordinator, assignment strategy, state, member count); list: with each group\'s state')
  .option('--group <id>', 'the group (repeatable for --describe and --delete)', collect, [])
  .option('--topic <topic[:partitions]>', 'reset, delete-offsets: the topic, optionally with partitions, e.g. orders or orders:0,2')
  .option('--to-earliest', 'reset to the log start offset')
  .option('--to-latest', 'reset to the log end offset')
  .addOption(new Option('--to-offset <n>', 'reset to this offset (clamped to the log)').argParser(nonNegativeInteger))
  .addOption(new Option('--shift-by <n>', 'move the committed offsets by n (negative moves back; clamped to the log)').argParser(signedInteger))
  .option('--to-datetime <iso>', 'reset to the first offset at or after this ISO 8601 time, e.g. 2024-05-01T12:00:00Z (no zone: local time)')
  .option('--execute', 'reset: commit the plan')
  .option('--dry-run', 'reset: only print the plan (the default)')
  .option('--json', 'list, describe, reset: print JSON')
  .addHelpText(
    'after',
    '\nExamples:\n  raftka groups --list\n  raftka groups --describe --group billing\n  raftka groups --reset-offsets --group billing --topic orders --to-earliest --execute\n  raftka groups --delete --group billing',
  )
  .action((options: Omit<GroupsOptions, 'bootstrapServers'> & { bootstrapServer: string[] }) =>
    commands
      .groups()
      .then(({ groupsCommand }) => groupsCommand({ ...options, bootstrapServers: options.bootstrapServer }))
      .then((exitCode) => {
        if (exitCode !== 0) process.exitCode = exitCode;
      }, failWith('raftka groups')),
  );

const perf = program.command('perf').description('benchmarks: producer and consumer throughput and latency (kafka-*-perf-test)');

clientCommand(perf.command('produce'), 'raftka perf produce')
  .description('send records at a fixed rate (open loop) or as fast as possible; print records/s, MB/s and latency avg/p50/p95/p99/p99.9/max')
  .addOption(bootstrapOption())
  .requiredOption('--topic <name>', 'the topic (must exist)')
  .addOption(new Option('--num-records <n>', 'records to send').argParser(positiveInteger).makeOptionMandatory())
  .addOption(new Option('--record-size <bytes>', 'bytes of each record value').argParser(nonNegativeInteger).default(100))
  .addOption(new Option('--throughput <records/s>', 'offered rate; -1 sends as fast as possible').argParser(throughput).default(-1))
  .addOption(new Option('--warmup-records <n>', 'leave the first N records out of the figures (connections, JIT warm-up)').argParser(nonNegativeInteger).default(0))
  .addOption(acksOption())
  .addOption(new Option('--batch-size <bytes>', 'upper bound of a batch').argParser(nonNegativeInteger))
  .addOption(new Option('--linger-ms <ms>', 'how long a batch waits for more records').argParser(nonNegativeInteger))
  .addOption(compressionOption())
  .option('--json', 'print one JSON object instead of text')
  .addHelpText(
    'after',
    '\nAt a fixed --throughput each record is due at start + i/throughput and its latency is measured from that due time\n(no coordinated omission); measure latency below saturation and the maximum rate in a separate run with -1.',
  )
  .action(
    (options: {
      bootstrapServer: string[];
      topic: string;
      numRecords: number;
      recordSize: number;
      throughput: number;
      warmupRecords: number;
      acks: Acks;
      batchSize?: number;
      lingerMs?: number;
      compression: string;
      json?: boolean;
    }) =>
      commands
        .producerPerf()
        .then(({ producerPerfCommand }) =>
          producerPerfCommand({
            bootstrapServers: options.bootstrapServer,
            topic: options.topic,
            numRecords: options.numRecords,
            recordSize: options.recordSize,
            throughput: options.throughput,
            warmupRecords: options.warmupRecords,
            acks: options.acks,
            compression: options.compression as CompressionType,
            ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
            ...(options.lingerMs === undefined ? {} : { lingerMs: options.lingerMs }),
            ...(options.json === undefined ? {} : { json: options.json }),
          }),
        )
        .then((result) => {
          // The figures are printed either way; failed records still make the run a failure.
          if (result.failedRecords > 0) process.exitCode = 1;
        }, failWith('raftka perf produce')),
  );

clientCommand(perf.command('consume'), 'raftka perf consume')
  .description('read records from the beginning of every partition; print MB/s and records/s')
  .addOption(bootstrapOption())
  .requiredOption('--topic <name>', 'the topic')
  .addOption(new Option('--num-records <n>', 'records to read').argParser(positiveInteger).makeOptionMandatory())
  .addOption(new Option('--throughput <records/s>', 'consume at most this rate; -1 as fast as possible').argParser(throughput).default(-1))
  .addOption(new Option('--timeout-ms <ms>', 'give up after this long without a record').argParser(positiveInteger).default(10_000))
  .addOption(new Option('--fetch-max-bytes <bytes>', 'upper bound of one fetch response').argParser(positiveInteger))
  .option('--json', 'print one JSON object instead of text')
  .action((options: { bootstrapServer: string[]; topic: string; numRecords: number; throughput: number; timeoutMs: number; fetchMaxBytes?: number; json?: boolean }) =>
    commands
      .consumerPerf()
      .then(({ consumerPerfCommand }) =>
        consumerPerfCommand({
          bootstrapServers: options.bootstrapServer,
          topic: options.topic,
          numRecords: options.numRecords,
          throughput: options.throughput,
          timeoutMs: options.timeoutMs,
          ...(options.fetchMaxBytes === undefined ? {} : { fetchMaxBytes: options.fetchMaxBytes }),
          ...(options.json === undefined ? {} : { json: options.json }),
        }),
      )
      .then(() => undefined, failWith('raftka perf consume')),
  );

const cluster = program.command('cluster').description('a local multi-process cluster on 127.0.0.1 for development and fault experiments (state in DIR/cluster.json)');
const clusterDirOption = (): Option => new Option('--dir <dir>', 'the cluster directory (configs, logs, data, cluster.json)').default('./cluster');
const clusterFail = failWith('raftka cluster');

cluster
  .command('up')
  .description('start controllers and brokers as detached processes, wait for a quorum leader and every broker unfenced, print the addresses (a stopped cluster in DIR starts again with its data)')
  .addOption(new Option('--controllers <n>', 'controllers (quorum voters), node ids 1..n').argParser(positiveInteger).default(3))
  .addOption(new Option('--brokers <n>', 'brokers, node ids after the controllers').argParser(positiveInteger).default(3))
  .addOption(clusterDirOption())
  .addOption(new Option('--base-port <port>', 'listen on consecutive ports from this one, controllers first (default: free ports chosen by the OS)').argParser(positiveInteger))
  .addOption(new Option('--override <key=value>', 'a server config key for every node (repeatable), e.g. log.level=warn').argParser(keyValue).default({}, 'none'))
  .addOption(new Option('--timeout-ms <ms>', 'how long to wait for the cluster to become ready').argParser(positiveInteger).default(60_000))
  .option('--json', 'print the addresses as JSON')
  .action((options: { dir: string; controllers: number; brokers: number; basePort?: number; override: Record<string, string>; timeoutMs: number; json?: boolean }) =>
    commands.cluster().then(({ upCommand }) => upCommand(options)).catch(clusterFail),
  );

cluster
  .command('status')
  .description('each node\'s id, roles, pid and state (alive/paused/dead), the quorum leader and epoch, the active controller, and every partition\'s leader and ISR')
  .addOption(clusterDirOption())
  .option('--json', 'print JSON instead of tables')
  .action((options: { dir: string; json?: boolean }) => commands.cluster().then(({ statusCommand }) => statusCommand(options)).catch(clusterFail));

for (const [action, description] of [
  ['kill', 'SIGKILL a node (a crash: no controlled shutdown)'],
  ['pause', 'SIGSTOP a node (it keeps its connections but answers nothing, like a long GC pause)'],
  ['resume', 'SIGCONT a paused node'],
  ['restart', 'SIGKILL a node and start it again with the same config and data'],
] as const) {
  cluster
    .command(`${action} <node>`)
    .description(description)
    .addOption(clusterDirOption())
    .action((node: string, options: { dir: string }) =>
      commands.cluster().then(({ nodeCommand }) => nodeCommand(action, positiveInteger(node), options)).catch(clusterFail),
    );
}

cluster
  .command('down')
  .description('stop every node (SIGTERM: brokers first, then controllers; SIGKILL after --timeout-ms); the data is kept unless --purge')
  .addOption(clusterDirOption())
  .option('--purge', 'also delete the node directories (data, logs, configs) and cluster.json')
  .addOption(new Option('--timeout-ms <ms>', 'how long each node may take to stop gracefully before SIGKILL').argParser(positiveInteger).default(20_000))
  .action((options: { dir: string; purge?: boolean; timeoutMs: number }) => commands.cluster().then(({ downCommand }) => downCommand(options)).catch(clusterFail));

program.parseAsync(process.argv).catch(fail);
