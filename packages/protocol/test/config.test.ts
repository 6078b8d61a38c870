import { describe, expect, it } from 'vitest';
import { ConfigError, collectSources, envVarForKey, parseProperties, resolveConfig, type ConfigSchema } from '../src/config.js';

const schema: ConfigSchema = [
  { key: 'node.id', type: 'int', default: undefined, doc: 'id', min: 0 },
  { key: 'log.dirs', type: 'list', default: ['./data'], doc: 'dirs' },
  { key: 'process.roles', type: 'string', default: 'controller', doc: 'roles', choices: ['controller', 'broker', 'controller,broker'] },
  { key: 'auto.create.topics.enable', type: 'boolean', default: true, doc: 'auto create' },
];

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('INVALID_CONFIG');
    return [...(error as ConfigError).problems];
  }
  throw new Error('expected a ConfigError');
}

describe('properties files', () => {
  it('parses Java properties syntax: separators, comments, continuations and escapes', () => {
    const parsed = parseProperties('# comment\n! also\nnode.id=1\nlog.dirs : /a,\\\n  /b\nname value\\tx\nu=\\u0041\n');
    expect(parsed.get('node.id')).toEqual({ value: '1', line: 3 });
    expect(parsed.get('log.dirs')?.value).toBe('/a,/b');
    expect(parsed.get('name')?.value).toBe('value\tx');
    expect(parsed.get('u')?.value).toBe('A');
  });
});

describe('resolving configuration', () => {
  it('lets the environment override the file and types every value', () => {
    const sources = collectSources({
      schema,
      propertiesText: 'node.id=1\nlog.dirs=/x, /y\n',
      propertiesOrigin: 'server.properties',
      env: { [envVarForKey('node.id')]: '7', PATH: '/bin' },
    });
    const values = resolveConfig(schema, sources);
    expect(envVarForKey('node.id')).toBe('RAFTKA_CFG_NODE_ID');
    expect(values.get('node.id')).toBe(7);
    expect(values.get('log.dirs')).toEqual(['/x', '/y']);
    expect(values.get('auto.create.topics.enable')).toBe(true);
  });

  it('reports every problem together, one line each, naming the key and what is allowed', () => {
    const problems = problemsOf(() =>
      resolveConfig(
        schema,
        collectSources({ schema, propertiesText: 'node.idd=1\nprocess.roles=borker\nauto.create.topics.enable=yes\n', propertiesOrigin: 'server.properties' }),
      ),
    );
    expect(problems).toHaveLength(4);
    expect(problems[0]).toBe("server.properties:1: unknown config key 'node.idd' (did you mean 'node.id'?); see the configuration table in the README");
    expect(problems[1]).toContain("process.roles='borker' is not valid; allowed: one of controller, broker, controller,broker");
    expect(problems[2]).toContain('allowed: true or false');
    expect(problems[3]).toContain('node.id: required but not set');
  });

  it('reports a malformed required key once, not also as missing', () => {
    const problems = problemsOf(() => resolveConfig(schema, [{ origin: 'RAFTKA_CFG_NODE_ID', key: 'node.id', value: '-3' }]));
    expect(problems).toEqual(["RAFTKA_CFG_NODE_ID: node.id='-3' is not valid; allowed: an integer >= 0"]);
  });
});
