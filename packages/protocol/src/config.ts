// Kafka-style configuration: `server.properties` text plus `RAFTKA_CFG_<KEY>` environment
// overrides (dots become underscores, upper case, as the Bitnami Kafka images do), validated
// against a schema of known keys.
//
// Validation happens once, where configuration enters the process; everything inside trusts the
// typed result. Every problem is reported as one line naming the key and what is allowed, and all
// problems are reported together so that a user fixes a file in one pass.
//
// This module parses text it is given; reading files is the caller's job (protocol does no I/O).

import { RaftkaError } from './errors.js';

export type ConfigType = 'int' | 'long' | 'double' | 'boolean' | 'string' | 'list' | 'password';

export interface ConfigKeyDefinition<T = unknown> {
  key: string;
  type: ConfigType;
  /** `undefined` means the key is required. */
  default: T | undefined;
  doc: string;
  /** Allowed values for a string key. */
  choices?: readonly string[];
  /** Inclusive bounds for numeric keys. */
  min?: number;
  max?: number;
  /** Extra validation: returns a description of what is allowed when the value is wrong. */
  validate?: (value: T) => string | undefined;
  /** Grouping for documentation (server, quorum, log, replication, ...). */
  group?: string;
}

export type ConfigSchema = readonly ConfigKeyDefinition[];

export type ConfigValue = number | boolean | string | string[];

export class ConfigError extends RaftkaError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('INVALID_CONFIG', problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Parses Java properties text: `key=value` or `key: value` or `key value`, `#` and `!`
 * comments, backslash line continuation, and the escapes `\t \n \r \\ \uXXXX`.
 * Returns entries with the line they came from, for error messages.
 */
export function parseProperties(text: string): Map<string, { value: string; line: number }> {
  const result = new Map<string, { value: string; line: number }>();
  const physical = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < physical.length; i++) {
    const startLine = i + 1;
    let line = physical[i]!.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    // Join continuation lines: an odd number of trailing backslashes continues the line.
    while (/(^|[^\\])(\\\\)*\\$/.test(line) && i + 1 < physical.length) {
      i++;
      line = line.slice(0, -1) + physical[i]!.replace(/^\s+/, '');
    }
    const match = /^((?:\\.|[^\s:=\\])*)\s*[:=]?\s*(.*)$/.exec(line);
    if (!match) continue;
    const key = unescapeProperty(match[1]!);
    const value = unescapeProperty(match[2]!.replace(/\s+$/, ''));
    result.set(key, { value, line: startLine });
  }
  return result;
}

function unescapeProperty(text: string): string {
  return text.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_all, escape: string) => {
    if (escape.length === 5) return String.fromCharCode(parseInt(escape.slice(1), 16));
    switch (escape) {
      case 't':
        return '\t';
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 'f':
        return '\f';
      default:
        return escape;
    }
  });
}

export const ENV_PREFIX = 'RAFTKA_CFG_';

/** The environment variable that overrides `key`: `node.id` -> `RAFTKA_CFG_NODE_ID`. */
export function envVarForKey(key: string): string {
  return ENV_PREFIX + key.toUpperCase().replace(/[.-]/g, '_');
}

export interface ConfigSource {
  /** Human-readable origin used in error lines, e.g. `server.properties:12` or `RAFTKA_CFG_NODE_ID`. */
  origin: string;
  key: string;
  value: string;
}

/**
 * Collects sources from properties text and the environment. Environment variables are matched
 * against the schema's keys (so `RAFTKA_CFG_LOG_DIRS` finds `log.dirs`); an environment variable
 * with the prefix that matches no key is reported as unknown.
 */
export function collectSources(args: {
  schema: ConfigSchema;
  propertiesText?: string;
  propertiesOrigin?: string;
  env?: Record<string, string | undefined>;
  overrides?: Record<string, string>;
}): ConfigSource[] {
  const sources: ConfigSource[] = [];
  if (args.propertiesText !== undefined) {
    const origin = args.propertiesOrigin ?? 'properties';
    for (const [key, { value, line }] of parseProperties(args.propertiesText)) {
      sources.push({ origin: `${origin}:${line}`, key, value });
    }
  }
  if (args.env) {
    const keysByEnv = new Map(args.schema.map((definition) => [envVarForKey(definition.key), definition.key]));
    for (const [name, value] of Object.entries(args.env)) {
      if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
      const key = keysByEnv.get(name) ?? name.slice(ENV_PREFIX.length).toLowerCase().replace(/_/g, '.');
      sources.push({ origin: name, key, value });
    }
  }
  for (const [key, value] of Object.entries(args.overrides ?? {})) {
    sources.push({ origin: `--override ${key}`, key, value });
  }
  return sources;
}

function describeAllowed(definition: ConfigKeyDefinition): string {
  switch (definition.type) {
    case 'int':
    case 'long':
    case 'double': {
      const kind = definition.type === 'double' ? 'a number' : 'an integer';
      if (definition.min !== undefined && definition.max !== undefined) {
        return `${kind} from ${definition.min} to ${definition.max}`;
      }
      if (definition.min !== undefined) return `${kind} >= ${definition.min}`;
      if (definition.max !== undefined) return `${kind} <= ${definition.max}`;
      return kind;
    }
    case 'boolean':
      return 'true or false';
    case 'list':
      return 'a comma-separated list';
    case 'string':
    case 'password':
      return definition.choices ? `one of ${definition.choices.join(', ')}` : 'a string';
  }
}

function parseValue(definition: ConfigKeyDefinition, raw: string): ConfigValue | undefined {
  const text = raw.trim();
  switch (definition.type) {
    case 'int':
    case 'long': {
      if (!/^[-+]?\d+$/.test(text)) return undefined;
      const value = Number(text);
      if (!Number.isSafeInteger(value)) return undefined;
      if (definition.type === 'int' && (value > 2 ** 31 - 1 || value < -(2 ** 31))) return undefined;
      if (definition.min !== undefined && value < definition.min) return undefined;
      if (definition.max !== undefined && value > definition.max) return undefined;
      return value;
    }
    case 'double': {
      if (text === '' || !Number.isFinite(Number(text))) return undefined;
      const value = Number(text);
      if (definition.min !== undefined && value < definition.min) return undefined;
      if (definition.max !== undefined && value > definition.max) return undefined;
      return value;
    }
    case 'boolean':
      if (text.toLowerCase() === 'true') return true;
      if (text.toLowerCase() === 'false') return false;
      return undefined;
    case 'list':
      return text === '' ? [] : text.split(',').map((item) => item.trim()).filter((item) => item !== '');
    case 'string':
    case 'password':
      if (definition.choices && !definition.choices.includes(text)) return undefined;
      return text;
  }
}

/**
 * Resolves sources against the schema: later sources override earlier ones (so the environment
 * overrides the file). Unknown keys, malformed values and missing required keys are all errors,
 * reported together in one `ConfigError` with one line each.
 */
export function resolveConfig(schema: ConfigSchema, sources: readonly ConfigSource[]): Map<string, ConfigValue> {
  const definitions = new Map(schema.map((definition) => [definition.key, definition]));
  const values = new Map<string, ConfigValue>();
  const problems: string[] = [];
  // Keys that were given but rejected: reported once, not again as "required but not set".
  const rejectedKeys = new Set<string>();
  for (const source of sources) {
    const definition = definitions.get(source.key);
    if (!definition) {
      const near = suggestKey(source.key, [...definitions.keys()]);
      problems.push(
        `${source.origin}: unknown config key '${source.key}'${near ? ` (did you mean '${near}'?)` : ''}; see the configuration table in the README`,
      );
      continue;
    }
    const value = parseValue(definition, source.value);
    if (value === undefined) {
      problems.push(`${source.origin}: ${source.key}='${source.value}' is not valid; allowed: ${describeAllowed(definition)}`);
      rejectedKeys.add(source.key);
      continue;
    }
    const complaint = definition.validate?.(value);
    if (complaint) {
      problems.push(`${source.origin}: ${source.key}='${source.value}' is not valid; ${complaint}`);
      rejectedKeys.add(source.key);
      continue;
    }
    values.set(source.key, value);
  }
  for (const definition of schema) {
    if (values.has(definition.key) || rejectedKeys.has(definition.key)) continue;
    if (definition.default === undefined) {
      problems.push(`${definition.key}: required but not set (set it in the properties file or ${envVarForKey(definition.key)})`);
    } else {
      values.set(definition.key, definition.default as ConfigValue);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return values;
}

function suggestKey(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(3, Math.floor(key.length / 4));
  for (const candidate of known) {
    const distance = editDistance(key, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0]!;
    previous[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j]!;
      previous[j] = Math.min(previous[j]! + 1, previous[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return previous[b.length]!;
}

/** Renders a schema as a Markdown table, used to keep the README's configuration table honest. */
export function renderConfigTable(schema: ConfigSchema): string {
  const rows = schema.map((definition) => {
    const fallback = definition.default === undefined ? '(required)' : `\`${formatDefault(definition.default)}\``;
    return `| \`${definition.key}\` | ${fallback} | ${definition.doc.replace(/\|/g, '\\|')} |`;
  });
  return ['| key | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

function formatDefault(value: unknown): string {
  if (Array.isArray(value)) return value.join(',');
  return String(value);
}
