// `raftka cluster up|status|kill|pause|resume|restart|down`: a multi-process cluster on this
// machine for development and fault experiments. The work is done by LocalCluster; this module
// only turns its results into text.

import { assertNever } from '@raftka/protocol';
import { LocalCluster, type ClusterStatus } from './local-cluster.js';

export interface ClusterUpCommandOptions {
  dir: string;
  controllers: number;
  brokers: number;
  basePort?: number;
  override: Record<string, string>;
  timeoutMs: number;
  json?: boolean;
}

function describeAddresses(cluster: LocalCluster): string {
  return [
    `bootstrap servers: ${cluster.bootstrapServers.join(',')}`,
    `controllers:       ${cluster.controllerAddresses.join(',')}`,
    `directory:         ${cluster.directory}`,
  ].join('\n');
}

export async function upCommand(options: ClusterUpCommandOptions): Promise<void> {
  const cluster = await LocalCluster.up({
    directory: options.dir,
    controllers: options.controllers,
    brokers: options.brokers,
    ...(options.basePort === undefined ? {} : { basePort: options.basePort }),
    properties: options.override,
    readyTimeoutMs: options.timeoutMs,
  });
  try {
    if (options.json) {
      process.stdout.write(JSON.stringify({ directory: cluster.directory, bootstrapServers: cluster.bootstrapServers, controllers: cluster.controllerAddresses }) + '\n');
    } else {
      process.stdout.write(`Cluster up: ${cluster.controllerNodes.length} controller(s), ${cluster.brokerNodes.length} broker(s).\n${describeAddresses(cluster)}\n`);
    }
  } finally {
    cluster.close();
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

export function formatStatus(status: ClusterStatus): string {
  const lines: string[] = [];
  lines.push(`cluster ${status.directory}`);
  lines.push(`bootstrap servers: ${status.bootstrapServers.join(',')}`);
  lines.push(`controllers:       ${status.controllers.join(',')}`);
  const quorum = status.quorum;
  lines.push(
    quorum === undefined
      ? 'quorum:            unknown'
      : `quorum:            leader ${quorum.leaderId ?? 'none'}, epoch ${quorum.epoch}, high watermark ${quorum.highWatermark}`,
  );
  lines.push(`active controller: ${status.activeControllerId ?? 'none'}`);
  lines.push('');
  lines.push(
    table([
      ['NODE', 'ROLES', 'PID', 'STATE', 'ADDRESS', 'LOG'],
      ...status.nodes.map((node) => [String(node.nodeId), node.roles.join(','), node.pid === undefined ? '-' : String(node.pid), node.state, node.address, node.logFile]),
    ]),
  );
  if (status.topics.length > 0) {
    lines.push('');
    const rows = [['TOPIC', 'PARTITION', 'LEADER', 'EPOCH', 'REPLICAS', 'ISR']];
    for (const topic of status.topics) {
      for (const partition of topic.partitions) {
        rows.push([
          topic.topic,
          String(partition.partition),
          partition.leader < 0 ? 'none' : String(partition.leader),
          String(partition.leaderEpoch),
          partition.replicas.join(','),
          partition.isr.join(','),
        ]);
      }
    }
    lines.push(table(rows));
  }
  for (const problem of status.problems) lines.push(`warning: ${problem}`);
  return lines.join('\n') + '\n';
}

export async function statusCommand(options: { dir: string; json?: boolean }): Promise<void> {
  const cluster = await LocalCluster.open(options.dir);
  try {
    const status = await cluster.status();
    process.stdout.write(options.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status));
  } finally {
    cluster.close();
  }
}

export type NodeAction = 'kill' | 'pause' | 'resume' | 'restart';

export async function nodeCommand(action: NodeAction, nodeId: number, options: { dir: string }): Promise<void> {
  const cluster = await LocalCluster.open(options.dir);
  try {
    switch (action) {
      case 'kill':
        await cluster.kill(nodeId);
        process.stdout.write(`Killed node ${nodeId} (SIGKILL).\n`);
        break;
      case 'pause':
        cluster.pause(nodeId);
        process.stdout.write(`Paused node ${nodeId} (SIGSTOP); resume it with raftka cluster resume ${nodeId}.\n`);
        break;
      case 'resume':
        cluster.resume(nodeId);
        process.stdout.write(`Resumed node ${nodeId} (SIGCONT).\n`);
        break;
      case 'restart':
        await cluster.restart(nodeId);
        process.stdout.write(`Restarted node ${nodeId} (pid ${cluster.node(nodeId).pid}).\n`);
        break;
      default:
        assertNever(action);
    }
  } finally {
    cluster.close();
  }
}

export async function downCommand(options: { dir: string; purge?: boolean; timeoutMs: number }): Promise<void> {
  const cluster = await LocalCluster.open(options.dir);
  await cluster.down({ purge: options.purge ?? false, timeoutMs: options.timeoutMs });
  process.stdout.write(options.purge ? `Cluster stopped; ${cluster.directory} purged.\n` : `Cluster stopped; data kept in ${cluster.directory} (raftka cluster up --dir starts it again).\n`);
}
