#!/usr/bin/env node
// The `raftka` command. Handlers stay thin: the logic lives in the libraries.

import { Command, InvalidArgumentError, Option } from 'commander';
import { RaftkaError } from '@raftka/protocol';
import { appendCommand, describeCommand } from './quorum/quorum-commands.js';
import { runServer } from './server/server-command.js';

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed <= 0) throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Errors of client commands: one line on stderr, exit 1. */
function fail(error: unknown): never {
  const message = error instanceof RaftkaError ? `${error.code}: ${error.message}` : (error as Error)?.message ?? String(error);
  process.stderr.write(`raftka: ${message}\n`);
  process.exit(1);
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
    await runServer(options);
  });

const quorum = program.command('quorum').description('inspect the metadata quorum');

quorum
  .command('describe')
  .description('leader, epoch, high watermark, and each voter\'s and observer\'s log end offset, lag and last fetch')
  .requiredOption('--bootstrap-controller <host:port>', 'any controller (it forwards to the leader)')
  .option('--json', 'print JSON instead of a table')
  .action((options: { bootstrapController: string; json?: boolean }) => describeCommand(options).catch(fail));

quorum
  .command('append')
  .description('diagnostic: append records to the metadata log through the leader and wait for their commit')
  .requiredOption('--bootstrap-controller <host:port>', 'any controller (NOT_LEADER answers are followed to the leader)')
  .addOption(new Option('--count <n>', 'number of records').argParser(positiveInteger).default(1))
  .addOption(new Option('--record-bytes <n>', 'size of each random record').argParser(positiveInteger).default(100))
  .addOption(new Option('--batch-records <n>', 'records per append (one atomic batch)').argParser(positiveInteger).default(100))
  .option('--value <text>', 'use this text as every record instead of random bytes')
  .action((options: { bootstrapController: string; count: number; recordBytes: number; batchRecords: number; value?: string }) =>
    appendCommand(options).catch(fail),
  );

program.parseAsync(process.argv).catch(fail);
