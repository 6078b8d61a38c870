// The server's configuration: the schemas of the packages a node runs, combined, read from a
// properties file plus RAFTKA_CFG_* environment variables plus --override flags (later wins).
//
// Controller keys are accepted on every node: a broker reads cluster defaults such as
// min.insync.replicas and broker.heartbeat.interval.ms from them too.

import { promises as fs } from 'node:fs';
import { brokerConfigFromValues, brokerConfigSchema, resolveBrokerListeners, type BrokerConfig, type BrokerListeners } from '@raftka/broker';
import { ConfigError, collectSources, resolveConfig, type ConfigSchema } from '@raftka/protocol';
import {
  controllerConfigFromValues,
  controllerConfigSchema,
  quorumConfigFrom,
  quorumConfigSchema,
  type ControllerConfig,
  type ListenerAddress,
  type QuorumConfig,
} from '@raftka/quorum';
import { adminHttpAddressFrom, adminHttpConfigSchema, type AdminHttpAddress } from './admin-http.js';

export const serverConfigSchema: ConfigSchema = [...quorumConfigSchema, ...adminHttpConfigSchema, ...controllerConfigSchema, ...brokerConfigSchema];

export interface ServerConfig {
  quorum: QuorumConfig;
  controller: ControllerConfig;
  broker: BrokerConfig;
  /** The first client listener (the first one not named CONTROLLER); brokers only. */
  brokerListener: ListenerAddress | undefined;
  /**
   * Every client listener (each `listeners` entry not named CONTROLLER) with its advertised
   * address, and the inter-broker listener; brokers only.
   */
  brokerListeners: BrokerListeners | undefined;
  /** admin.http.listener: where /healthz, /readyz and /metrics are served; undefined = off. */
  adminHttp: AdminHttpAddress | undefined;
}

/** Parses `key=value` flags; a flag without `=` is a config problem like any other. */
export function parseOverrides(flags: readonly string[]): Record<string, string> {
  const overrides: Record<string, string> = {};
  const problems: string[] = [];
  for (const flag of flags) {
    const separator = flag.indexOf('=');
    if (separator <= 0) problems.push(`--override ${flag}: expected key=value`);
    else overrides[flag.slice(0, separator).trim()] = flag.slice(separator + 1);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return overrides;
}

export async function loadServerConfig(args: {
  configFile: string | undefined;
  overrides: readonly string[];
  env: Record<string, string | undefined>;
}): Promise<ServerConfig> {
  let propertiesText: string | undefined;
  if (args.configFile !== undefined) {
    try {
      propertiesText = await fs.readFile(args.configFile, 'utf8');
    } catch (error) {
      throw new ConfigError([`--config ${args.configFile}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`]);
    }
  }
  const sources = collectSources({
    schema: serverConfigSchema,
    ...(propertiesText === undefined ? {} : { propertiesText, propertiesOrigin: args.configFile }),
    env: args.env,
    overrides: parseOverrides(args.overrides),
  });
  const values = resolveConfig(serverConfigSchema, sources);
  const quorum = quorumConfigFrom(values);
  const controller = controllerConfigFromValues(values);
  const broker = brokerConfigFromValues(values);
  const adminHttp = adminHttpAddressFrom(values);
  if (!quorum.roles.includes('broker')) return { quorum, controller, broker, brokerListener: undefined, brokerListeners: undefined, adminHttp };
  // Throws a ConfigError naming the key when listeners, advertised.listeners,
  // inter.broker.listener.name and listener.security.protocol.map contradict each other.
  const brokerListeners = resolveBrokerListeners(quorum.listeners, broker);
  const first = brokerListeners.clientListeners[0]!;
  return { quorum, controller, broker, brokerListener: { name: first.name, host: first.host, port: first.port }, brokerListeners, adminHttp };
}
