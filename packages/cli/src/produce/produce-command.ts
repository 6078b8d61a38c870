// `raftka produce`: the console producer (kafka-console-producer). Every stdin line becomes one
// record; with `--property parse.key=true` the text before the first `key.separator` is its key.
//
// Lines read together are sent together (one `send` call per stdin chunk, at most
// SEND_CALL_RECORDS_MAX records), which keeps the per-record cost low when a file is piped in,
// while an interactive user still gets each line sent as soon as it is typed. Reading pauses
// while PENDING_RECORDS_MAX records wait for acknowledgement, so piping a huge file holds bounded
// memory. The command exits after every record is acknowledged (or failed), also when stopped
// with Ctrl-C (the lines read so far are still sent; a second Ctrl-C exits at once): failures are printed
// one per record on stderr with the record's line number and Kafka error name, and make the exit
// code 1.
//
// `--file F` reads the lines from a file instead of stdin and, when stderr is a terminal, shows a
// progress bar (acknowledged bytes of the file, records, MB/s; see produce-progress.ts).

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { Admin, Producer, ProducerSendError, type Acks, type CompressionType, type ProducerMessage } from '@raftka/client';
import { RaftkaError } from '@raftka/protocol';
import { produceProgress, type ProduceProgress } from './produce-progress.js';

/** How long the producer waits for a topic the broker may create on first use (see below). */
export const AUTO_CREATE_WAIT_MS = 10_000;

/** Records handed to the producer and not yet acknowledged before stdin reading pauses. */
const PENDING_RECORDS_MAX = 10_000;
/** Largest number of lines given to one `send` call. */
const SEND_CALL_RECORDS_MAX = 1_000;

export interface ProduceOptions {
  bootstrapServers: string[];
  topic: string;
  acks: Acks;
  compression: CompressionType;
  partition?: number;
  lingerMs?: number;
  batchSize?: number;
  /** kafka-console-producer's `--property` reader settings. */
  properties: Record<string, string>;
  /** Read lines from this file instead of the input stream. */
  file?: string;
}

export interface LineReaderSettings {
  parseKey: boolean;
  keySeparator: string;
  /** Text that stands for a null key or value (kafka-console-producer's null.marker); undefined: none. */
  nullMarker: string | undefined;
}

const PRODUCER_PROPERTIES = ['parse.key', 'key.separator', 'null.marker'] as const;

function parseBoolean(name: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new RaftkaError('INVALID_CONFIG', `property ${name} must be true or false, got ${JSON.stringify(value)}`, { retriable: false });
}

/** Validates `--property` keys once (an unknown key is an error, not silently ignored). */
export function lineReaderSettings(properties: Record<string, string>): LineReaderSettings {
  for (const name of Object.keys(properties)) {
    if (!(PRODUCER_PROPERTIES as readonly string[]).includes(name)) {
      throw new RaftkaError('INVALID_CONFIG', `unknown property ${name}; known: ${PRODUCER_PROPERTIES.join(', ')}`, { retriable: false });
    }
  }
  const keySeparator = properties['key.separator'] ?? '\t';
  if (keySeparator === '') throw new RaftkaError('INVALID_CONFIG', 'property key.separator must not be empty', { retriable: false });
  return {
    parseKey: properties['parse.key'] === undefined ? false : parseBoolean('parse.key', properties['parse.key']),
    keySeparator,
    nullMarker: properties['null.marker'] === '' ? undefined : properties['null.marker'],
  };
}

/** Turns one input line into a record, or says why it cannot (a missing separator with parse.key). */
export function parseLine(line: string, lineNumber: number, settings: LineReaderSettings): { key: string | null; value: string | null } {
  const nullable = (text: string): string | null => (settings.nullMarker !== undefined && text === settings.nullMarker ? null : text);
  if (!settings.parseKey) return { key: null, value: nullable(line) };
  const at = line.indexOf(settings.keySeparator);
  if (at < 0) {
    throw new RaftkaError('INVALID_RECORD', `no key separator ${JSON.stringify(settings.keySeparator)} on line ${lineNumber}: ${JSON.stringify(line)}`, {
      retriable: false,
    });
  }
  return { key: nullable(line.slice(0, at)), value: nullable(line.slice(at + settings.keySeparator.length)) };
}

interface PendingLine {
  lineNumber: number;
  message: ProducerMessage;
  /** The line's bytes in the input, with its newline (for progress). */
  bytes: number;
}

/**
 * Sends stdin's lines and resolves with the number of records that failed (0 = all acknowledged).
 * `reportFailure` receives one line per failed record.
 */
export async function produceCommand(
  options: ProduceOptions,
  io: { input: Readable; reportFailure: (line: string) => void; stopSignal?: AbortSignal; progressStream?: NodeJS.WriteStream } = {
    input: process.stdin,
    reportFailure: (line) => process.stderr.write(`raftka produce: ${line}\n`),
  },
): Promise<number> {
  const settings = lineReaderSettings(options.properties);
  // A missing or unreadable file fails before anything connects.
  const fileBytes = options.file === undefined ? undefined : await fileSize(options.file);
  // Check the topic first: a missing partition fails at once. A missing topic is left to the
  // producer, whose metadata request lets the broker create it (auto.create.topics.enable, as
  // Kafka's console producer); it then waits at most AUTO_CREATE_WAIT_MS, not max.block.ms, so a
  // cluster with auto-creation off answers UNKNOWN_TOPIC_OR_PARTITION quickly.
  const admin = new Admin({ bootstrapServers: options.bootstrapServers, clientId: 'raftka-produce' });
  let topicExists = true;
  try {
    const [description] = await admin.describeTopics([options.topic]);
    const count = description!.partitions.length;
    if (options.partition !== undefined && options.partition >= count) {
      throw new RaftkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${options.topic} has ${count} partitions (0..${count - 1}); there is no partition ${options.partition}`, {
        retriable: false,
      });
    }
  } catch (error) {
    const unknownTopic = error instanceof RaftkaError && error.code === 'UNKNOWN_TOPIC_OR_PARTITION' && options.partition === undefined;
    if (!unknownTopic) throw error;
    topicExists = false;
  } finally {
    await admin.close();
  }

  const producer = new Producer({
    bootstrapServers: options.bootstrapServers,
    clientId: 'raftka-produce',
    acks: options.acks,
    compressionType: options.compression,
    ...(options.lingerMs === undefined ? {} : { lingerMs: options.lingerMs }),
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    ...(topicExists ? {} : { maxBlockMs: AUTO_CREATE_WAIT_MS }),
  });
  await producer.connect();

  let failed = 0;
  let pendingRecords = 0;
  let lineNumber = 0;
  let chunk: PendingLine[] = [];
  const sends: Promise<void>[] = [];
  const input = options.file === undefined ? io.input : createReadStream(options.file);
  const lines = readline.createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  const progress: ProduceProgress | undefined = fileBytes === undefined ? undefined : produceProgress(fileBytes, io.progressStream);

  const fail = (line: number, error: RaftkaError): void => {
    failed += 1;
    io.reportFailure(`line ${line}: ${error.code}: ${error.message}`);
  };

  const sendChunk = (): void => {
    const batch = chunk;
    chunk = [];
    if (batch.length === 0) return;
    pendingRecords += batch.length;
    if (pendingRecords >= PENDING_RECORDS_MAX) lines.pause();
    const sent = producer.send({ topic: options.topic, messages: batch.map((entry) => entry.message) }).then(
      () => progress?.acknowledged(batch.length, batch.reduce((sum, entry) => sum + entry.bytes, 0)),
      (error: unknown) => {
        if (error instanceof ProducerSendError) {
          error.outcomes.forEach((outcome, index) => {
            if (!outcome.ok) fail(batch[index]!.lineNumber, outcome.error);
          });
        } else {
          const raftkaError = error instanceof RaftkaError ? error : new RaftkaError('UNKNOWN_SERVER_ERROR', String((error as Error)?.message ?? error));
          for (const entry of batch) fail(entry.lineNumber, raftkaError);
        }
      },
    );
    sends.push(
      sent.finally(() => {
        pendingRecords -= batch.length;
        if (pendingRecords < PENDING_RECORDS_MAX / 2) lines.resume();
      }),
    );
  };

  let flushScheduled = false;
  lines.on('line', (line) => {
    lineNumber += 1;
    let parsed: { key: string | null; value: string | null };
    try {
      parsed = parseLine(line, lineNumber, settings);
    } catch (error) {
      fail(lineNumber, error as RaftkaError);
      return;
    }
    chunk.push({ lineNumber, bytes: Buffer.byteLength(line) + 1, message: { key: parsed.key, value: parsed.value, ...(options.partition === undefined ? {} : { partition: options.partition }) } });
    if (chunk.length >= SEND_CALL_RECORDS_MAX) sendChunk();
    else if (!flushScheduled) {
      // Lines of one stdin chunk arrive synchronously; send them together right after.
      flushScheduled = true;
      setImmediate(() => {
        flushScheduled = false;
        sendChunk();
      });
    }
  });
  const inputEnded = new Promise<void>((resolve) => lines.once('close', resolve));
  // A stop request (Ctrl-C) ends the input like end-of-file: what was read is still sent.
  const stop = (): void => lines.close();
  if (io.stopSignal?.aborted) stop();
  io.stopSignal?.addEventListener('abort', stop);
  await inputEnded;
  io.stopSignal?.removeEventListener('abort', stop);
  sendChunk();
  await Promise.all(sends);
  progress?.stop();
  await producer.close();
  return failed;
}

async function fileSize(file: string): Promise<number> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new RaftkaError('INVALID_REQUEST', `--file ${file} is not a regular file`, { retriable: false });
    return info.size;
  } catch (error) {
    if (error instanceof RaftkaError) throw error;
    throw new RaftkaError('INVALID_REQUEST', `cannot read --file ${file}: ${(error as Error).message}`, { retriable: false, cause: error });
  }
}
