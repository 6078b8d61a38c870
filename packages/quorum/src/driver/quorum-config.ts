// The configuration keys the quorum owns, their documentation (rendered into the README's
// configuration table) and their typed form.
//
// Timing defaults are chosen for Raftka's failover target — a new leader committing within
// 500 ms (p50) and 1 s (max) of the old one being killed — rather than Kafka's conservative 2 s
// defaults, while staying many fetch round trips away from spurious elections. The relations
// between them are asserted in `quorumConfigFrom` (STYLE.md rule 4).

import { ConfigError, type ConfigKeyDefinition, type ConfigSchema, type ConfigValue } from '@raftka/protocol';
import type { NodeId, RaftTimingOptions } from '../raft/types.js';

export const PROCESS_ROLES = ['controller', 'broker'] as const;
export type ProcessRole = (typeof PROCESS_ROLES)[number];

const VOTER_PATTERN = /^(\d+)@(\[[0-9a-fA-F:.]+\]|[^:@\s]+):(\d+)$/;
const LISTENER_PATTERN = /^([A-Z][A-Z0-9_]*):\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s]*):(\d+)$/;
const PORT_MAX = 65_535;

export interface VoterAddress {
  nodeId: NodeId;
  host: string;
  port: number;
}

export interface ListenerAddress {
  name: string;
  host: string;
  port: number;
}

function voterProblem(item: string): string | undefined {
  const match = VOTER_PATTERN.exec(item);
  if (!match) return `'${item}' is not of the form id@host:port`;
  const port = Number(match[3]);
  if (port < 1 || port > PORT_MAX) return `'${item}' has port ${port}, outside 1..${PORT_MAX}`;
  return undefined;
}

export function parseVoters(items: readonly string[]): VoterAddress[] {
  return items.map((item) => {
    const match = VOTER_PATTERN.exec(item)!;
    return { nodeId: Number(match[1]), host: match[2]!.replace(/^\[|\]$/g, ''), port: Number(match[3]) };
  });
}

export function parseListeners(items: readonly string[]): ListenerAddress[] {
  return items.map((item) => {
    const match = LISTENER_PATTERN.exec(item)!;
    return { name: match[1]!, host: match[2]!.replace(/^\[|\]$/g, ''), port: Number(match[3]) };
  });
}

/** `host:port`, bracketing IPv6 literals as gRPC expects. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export const quorumConfigSchema: ConfigSchema = [
  {
    key: 'process.roles',
    type: 'list',
    default: ['controller'],
    group: 'server',
    doc:
      'The roles this node plays: `controller` (a voter of the metadata quorum), `broker` (serves topic data), or ' +
      '`controller,broker` (combined mode, for development).',
    validate: (value) => {
      const roles = value as string[];
      if (roles.length === 0) return 'at least one role is required';
      const unknown = roles.filter((role) => !(PROCESS_ROLES as readonly string[]).includes(role));
      if (unknown.length > 0) return `unknown role ${unknown.join(', ')}; allowed: ${PROCESS_ROLES.join(', ')}`;
      if (new Set(roles).size !== roles.length) return 'a role is listed twice';
      return undefined;
    },
  } satisfies ConfigKeyDefinition<string[]> as ConfigKeyDefinition,
  {
    key: 'node.id',
    type: 'int',
    default: undefined,
    min: 0,
    group: 'server',
    doc: 'The unique id of this node. A controller must appear in `controller.quorum.voters` under this id.',
  },
  {
    key: 'controller.quorum.voters',
    type: 'list',
    default: undefined,
    group: 'quorum',
    doc:
      'The voters of the metadata quorum as `id@host:port,...` (the controller listener of each). Every node, ' +
      'controller or broker, lists the same voters. Use 3 voters to survive one failure, 5 to survive two.',
    validate: (value) => {
      const items = value as string[];
      if (items.length === 0) return 'at least one voter is required';
      for (const item of items) {
        const problem = voterProblem(item);
        if (problem) return problem;
      }
      const ids = parseVoters(items).map((voter) => voter.nodeId);
      if (new Set(ids).size !== ids.length) return 'a node id appears twice';
      return undefined;
    },
  } satisfies ConfigKeyDefinition<string[]> as ConfigKeyDefinition,
  {
    key: 'listeners',
    type: 'list',
    default: ['CONTROLLER://127.0.0.1:9093'],
    group: 'server',
    doc:
      'The addresses this node listens on, as `NAME://host:port`. A controller needs a `CONTROLLER` listener whose ' +
      'port matches its entry in `controller.quorum.voters`; port 0 picks a free port (tests only: peers cannot find it).',
    validate: (value) => {
      for (const item of value as string[]) {
        const match = LISTENER_PATTERN.exec(item);
        if (!match) return `'${item}' is not of the form NAME://host:port`;
        if (Number(match[3]) > PORT_MAX) return `'${item}' has a port above ${PORT_MAX}`;
      }
      return undefined;
    },
  } satisfies ConfigKeyDefinition<string[]> as ConfigKeyDefinition,
  {
    key: 'log.dirs',
    type: 'list',
    default: ['./data'],
    group: 'server',
    doc:
      'Directories for this node\'s data. The metadata log lives in `<first dir>/__cluster_metadata-0/`. Relative paths ' +
      'are resolved against the working directory.',
    validate: (value) => ((value as string[]).length === 0 ? 'at least one directory is required' : undefined),
  } satisfies ConfigKeyDefinition<string[]> as ConfigKeyDefinition,
  {
    key: 'controller.quorum.fetch.timeout.ms',
    type: 'int',
    default: 1000,
    min: 50,
    group: 'quorum',
    doc:
      'How long a follower waits without a successful fetch before it considers the leader gone and starts an election ' +
      '(and how long a leader keeps leading without fetches from a majority). A leader that crashes or is killed is ' +
      'noticed sooner, after two consecutive failed fetches (its port refuses connections), so this bounds only silent ' +
      'failures (a paused process, a partition). 1000 ms instead of Kafka\'s 2000 ms keeps those short, while leaving ' +
      'ten long-poll intervals of headroom so that a busy machine or a GC pause does not cause spurious elections.',
  },
  {
    key: 'controller.quorum.election.timeout.ms',
    type: 'int',
    default: 150,
    min: 10,
    group: 'quorum',
    doc:
      'How long a candidate waits for votes before giving up on an election (randomized between this and twice this, ' +
      'so that candidates do not keep splitting the vote); also the wait of a voter with no leader before it ' +
      'campaigns. Vote round trips on a LAN take milliseconds, so 150 ms leaves room for a synced vote write on a ' +
      'busy machine while keeping a split vote cheap: measured SIGKILL failover is about 150 ms typical, 600 ms worst.',
  },
  {
    key: 'controller.quorum.election.backoff.max.ms',
    type: 'int',
    default: 150,
    min: 0,
    group: 'quorum',
    doc:
      'The maximum random back-off before retrying a lost or split election (half of it also spaces a follower\'s ' +
      'retries of a failed fetch). Together with the election timeout it bounds the worst case of a repeated split ' +
      'vote, which keeps the failover maximum under a second.',
  },
  {
    key: 'controller.quorum.request.timeout.ms',
    type: 'int',
    default: 1000,
    min: 10,
    group: 'quorum',
    doc:
      'Deadline of one quorum RPC (Vote, BeginQuorumEpoch, EndQuorumEpoch, FetchSnapshot; a Fetch gets this plus ' +
      'its long-poll wait). A dead peer usually fails a call at once (connection refused); the deadline covers a ' +
      'paused or partitioned one, and is long enough for a synced write on a slow disk.',
  },
  {
    key: 'controller.quorum.fetch.max.wait.ms',
    type: 'int',
    default: 100,
    min: 0,
    group: 'quorum',
    doc:
      'How long the leader holds a fetch that has nothing new (long poll). New entries are answered at once, so this ' +
      'does not add commit latency; it sets how often an idle follower hears from the leader, which must be several ' +
      'times shorter than `controller.quorum.fetch.timeout.ms`.',
  },
  {
    key: 'controller.quorum.fetch.max.bytes',
    type: 'int',
    default: 8 * 1024 * 1024,
    min: 1024,
    group: 'quorum',
    doc: 'Bytes of log entries the leader puts in one fetch response (at least one entry is always sent).',
  },
  {
    key: 'metadata.log.max.record.bytes.between.snapshots',
    type: 'int',
    default: 20 * 1024 * 1024,
    min: 1,
    group: 'quorum',
    doc:
      "Take a snapshot of the metadata state once this many bytes of records have been committed since the last one (Kafka's " +
      'default, 20 MiB), so that restarts and new observers load the snapshot instead of replaying the whole log. A snapshot ' +
      'writes the whole image, so taking one every few thousand records would spend more than it saves.',
  },
  {
    key: 'metadata.log.snapshot.interval.records',
    type: 'int',
    default: 0,
    min: 0,
    group: 'quorum',
    doc:
      'Also take a snapshot after this many committed records since the last one, whatever their size. 0 (the default) ' +
      'turns this off: only `metadata.log.max.record.bytes.between.snapshots` applies.',
  },
  {
    key: 'log.level',
    type: 'string',
    default: 'info',
    choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
    group: 'server',
    doc: 'The level of the JSON log written to stdout.',
  },
];

/** The quorum's configuration in typed form. */
export interface QuorumConfig extends RaftTimingOptions {
  roles: ProcessRole[];
  nodeId: NodeId;
  voters: VoterAddress[];
  listeners: ListenerAddress[];
  logDirs: string[];
  requestTimeoutMs: number;
  /** metadata.log.max.record.bytes.between.snapshots. */
  snapshotIntervalBytes: number;
  /** metadata.log.snapshot.interval.records; 0: only the byte threshold applies. */
  snapshotIntervalRecords: number;
  logLevel: string;
}

/**
 * Builds the typed configuration from resolved values (see `resolveConfig`) and checks what no
 * single key can: the relations between keys. Problems are reported together as a ConfigError.
 */
export function quorumConfigFrom(values: ReadonlyMap<string, ConfigValue>): QuorumConfig {
  const get = <T extends ConfigValue>(key: string): T => values.get(key) as T;
  const config: QuorumConfig = {
    roles: get<string[]>('process.roles') as ProcessRole[],
    nodeId: get<number>('node.id'),
    voters: parseVoters(get<string[]>('controller.quorum.voters')),
    listeners: parseListeners(get<string[]>('listeners')),
    logDirs: get<string[]>('log.dirs'),
    fetchTimeoutMs: get<number>('controller.quorum.fetch.timeout.ms'),
    electionTimeoutMs: get<number>('controller.quorum.election.timeout.ms'),
    electionBackoffMaxMs: get<number>('controller.quorum.election.backoff.max.ms'),
    requestTimeoutMs: get<number>('controller.quorum.request.timeout.ms'),
    fetchMaxWaitMs: get<number>('controller.quorum.fetch.max.wait.ms'),
    fetchMaxBytes: get<number>('controller.quorum.fetch.max.bytes'),
    snapshotIntervalBytes: get<number>('metadata.log.max.record.bytes.between.snapshots'),
    snapshotIntervalRecords: get<number>('metadata.log.snapshot.interval.records'),
    logLevel: get<string>('log.level'),
  };
  const problems: string[] = [];
  if (config.fetchMaxWaitMs * 2 > config.fetchTimeoutMs) {
    problems.push(
      `controller.quorum.fetch.max.wait.ms=${config.fetchMaxWaitMs} must be at most half of controller.quorum.fetch.timeout.ms=${config.fetchTimeoutMs}, ` +
        'or idle followers start elections against a healthy leader',
    );
  }
  const isController = config.roles.includes('controller');
  const voter = config.voters.find((candidate) => candidate.nodeId === config.nodeId);
  if (isController) {
    const listener = config.listeners.find((candidate) => candidate.name === 'CONTROLLER');
    if (!voter) {
      problems.push(`node.id=${config.nodeId}: a controller must be listed in controller.quorum.voters`);
    }
    if (!listener) {
      problems.push('listeners: a controller needs a CONTROLLER://host:port listener');
    } else if (voter && listener.port !== 0 && listener.port !== voter.port) {
      problems.push(
        `listeners: the CONTROLLER listener port ${listener.port} differs from this node's voter entry ${voter.nodeId}@${voter.host}:${voter.port}`,
      );
    }
  } else if (voter) {
    problems.push(`node.id=${config.nodeId}: a node listed in controller.quorum.voters must have the controller role`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** The metadata log's directory under the first log dir (as Kafka's `__cluster_metadata-0`). */
export const METADATA_LOG_DIRECTORY = '__cluster_metadata-0';
