// The chaos suite's cluster on processes: a LocalCluster whose nodes reach each other only
// through this process's FaultNetwork, so that a node can be cut off from the others (the
// partition fault) as well as killed, frozen and restarted.

import { LocalCluster, type ClusterUpOptions } from '../local-cluster.js';
import { FaultNetwork } from '../fault-proxy.js';
import type { ChaosCluster } from './chaos-scenario.js';

export class ProcessChaosCluster implements ChaosCluster {
  private constructor(
    readonly local: LocalCluster,
    private readonly network: FaultNetwork,
  ) {}

  /** Starts a fresh cluster (as `LocalCluster.up`) with every node's connections to other nodes going through a fault proxy. */
  static async up(options: Omit<ClusterUpOptions, 'environment'> & { controllers: number; brokers: number }): Promise<ProcessChaosCluster> {
    // Filled once the cluster's addresses are known; proxies see no traffic before the nodes start.
    const nodeByAddress = new Map<string, number>();
    const network = new FaultNetwork((hostPort) => nodeByAddress.get(hostPort));
    const environment: Record<number, Record<string, string | undefined>> = {};
    try {
      // LocalCluster numbers nodes 1..controllers+brokers.
      for (let nodeId = 1; nodeId <= options.controllers + options.brokers; nodeId++) {
        environment[nodeId] = {
          grpc_proxy: await network.proxyFor(nodeId),
          // A no_proxy list inherited from the shell (often "127.0.0.1,localhost") would bypass the proxy.
          no_grpc_proxy: undefined,
          no_proxy: undefined,
          NO_PROXY: undefined,
        };
      }
      const local = await LocalCluster.up({ ...options, environment, waitReady: false });
      for (const node of local.nodes) nodeByAddress.set(node.address, node.nodeId);
      const cluster = new ProcessChaosCluster(local, network);
      if (options.waitReady ?? true) await local.waitReady(options.readyTimeoutMs);
      return cluster;
    } catch (error) {
      await network.close();
      throw error;
    }
  }

  get bootstrapServers(): string[] {
    return this.local.bootstrapServers;
  }

  get nodeIds(): number[] {
    return this.local.nodes.map((node) => node.nodeId);
  }

  get brokerIds(): number[] {
    return this.local.brokerNodes.map((node) => node.nodeId);
  }

  async kill(nodeId: number): Promise<void> {
    await this.local.kill(nodeId);
  }

  async start(nodeId: number): Promise<void> {
    await this.local.start(nodeId);
  }

  async pause(nodeId: number): Promise<void> {
    this.local.pause(nodeId);
  }

  async resume(nodeId: number): Promise<void> {
    this.local.resume(nodeId);
  }

  async isolate(nodeId: number): Promise<void> {
    this.network.isolate(nodeId, this.nodeIds);
  }

  async heal(): Promise<void> {
    this.network.heal();
  }

  async waitReady(timeoutMs: number): Promise<void> {
    await this.local.waitReady(timeoutMs);
  }

  async waitForQuorumLeader(timeoutMs: number): Promise<number> {
    return this.local.waitForQuorumLeader(timeoutMs);
  }

  /** Stops every node and the proxies (see LocalCluster.down). */
  async down(options: { purge?: boolean; force?: boolean } = {}): Promise<void> {
    this.network.heal();
    try {
      await this.local.down(options);
    } finally {
      await this.network.close();
    }
  }

  /** Last resort on exit: SIGKILL every node (synchronous). */
  killAllNow(): void {
    this.local.killAllNow();
  }
}
