// The server's configuration: the schemas of the packages a node runs, combined, read from a
// properties file plus RAFTKA_CFG_* environment variables plus --override flags (later wins).
//
// The quorum's and the controller's keys so far; the broker's schema joins here when the broker
// role lands. Controller keys are accepted on every node (a broker will read the cluster defaults
// such as min.insync.replicas from them too).

import { promises as fs } from 'node:fs';
import { ConfigError, collectSources, resolveConfig, type ConfigSchema } from '@raftka/protocol';
import { controllerConfigFromValues, controllerConfigSchema, quorumConfigFrom, quorumConfigSchema, type ControllerConfig, type QuorumConfig } from '@raftka/quorum';

export const serverConfigSchema: ConfigSchema = [...quorumConfigSchema, ...controllerConfigSchema];

export interface ServerConfig {
  quorum: QuorumConfig;
  controller: ControllerConfig;
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
  if (quorum.roles.includes('broker')) {
    throw new ConfigError([
      `process.roles=${quorum.roles.join(',')}: the broker role is not available yet in this version of Raftka; use process.roles=controller`,
    ]);
  }
  return { quorum, controller };
}
