// The listener keys (listeners, advertised.listeners, inter.broker.listener.name,
// listener.security.protocol.map) as a broker reads them: what each client listener advertises,
// which one replication uses, and a refusal naming the key for every contradiction.

import { describe, expect, it } from 'vitest';
import { ConfigError, collectSources, resolveConfig } from '@raftka/protocol';
import { parseListeners } from '@raftka/quorum';
import { brokerConfigFromValues, brokerConfigSchema, registeredEndpoint, resolveBrokerListeners, type BrokerListeners } from '../src/index.js';

function brokerConfig(properties: Record<string, string>) {
  const propertiesText = Object.entries(properties)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n');
  return brokerConfigFromValues(resolveConfig(brokerConfigSchema, collectSources({ schema: brokerConfigSchema, propertiesText })));
}

function resolve(listeners: string, properties: Record<string, string> = {}): BrokerListeners {
  return resolveBrokerListeners(parseListeners(listeners.split(',')), brokerConfig(properties));
}

/** The ConfigError problems `run` throws (fails the test when it throws nothing else). */
function problemsOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('client listeners', () => {
  it('serves every listener but CONTROLLER, each advertising its advertised.listeners entry matched by name', () => {
    const resolved = resolve('INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:19092,CONTROLLER://0.0.0.0:9093', {
      // Given in the other order: entries are matched by name, not by position.
      'advertised.listeners': 'EXTERNAL://127.0.0.1:19092,INTERNAL://broker-1:9092',
      'inter.broker.listener.name': 'INTERNAL',
    });
    expect(resolved.interBrokerListenerName).toBe('INTERNAL');
    expect(resolved.clientListeners.map((listener) => registeredEndpoint(listener, listener.port))).toEqual([
      { name: 'INTERNAL', host: 'broker-1', port: 9092, securityProtocol: 'PLAINTEXT' },
      { name: 'EXTERNAL', host: '127.0.0.1', port: 19092, securityProtocol: 'PLAINTEXT' },
    ]);
  });

  it('advertises a listener without an advertised entry as bound (port 0 as the bound port), and replicates over the first by default', () => {
    const resolved = resolve('PLAINTEXT://127.0.0.1:0,EXTERNAL://127.0.0.1:19092', { 'advertised.listeners': 'EXTERNAL://localhost:29092' });
    expect(resolved.interBrokerListenerName).toBe('PLAINTEXT');
    const [plain, external] = resolved.clientListeners;
    expect(registeredEndpoint(plain!, 41234)).toEqual({ name: 'PLAINTEXT', host: '127.0.0.1', port: 41234, securityProtocol: 'PLAINTEXT' });
    expect(registeredEndpoint(external!, 19092)).toEqual({ name: 'EXTERNAL', host: 'localhost', port: 29092, securityProtocol: 'PLAINTEXT' });
  });

  it('accepts a Kafka-style listener.security.protocol.map of PLAINTEXT entries and listeners it does not name', () => {
    expect(brokerConfig({}).listenerSecurityProtocolMap?.get('EXTERNAL')).toBe('PLAINTEXT');
    const resolved = resolve('CLIENTS://127.0.0.1:9092', { 'listener.security.protocol.map': 'INTERNAL:PLAINTEXT, EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT' });
    expect(resolved.clientListeners.map((listener) => listener.name)).toEqual(['CLIENTS']);
  });
});

describe('listener configuration errors name the key', () => {
  it('refuses an advertised name that is not a client listener', () => {
    const problems = problemsOf(() => resolve('INTERNAL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093', { 'advertised.listeners': 'EXTERNAL://127.0.0.1:19092' }));
    expect(problems).toEqual([expect.stringMatching(/^advertised\.listeners: EXTERNAL:\/\/127\.0\.0\.1:19092 names no client listener.*INTERNAL/)]);
    // CONTROLLER serves the quorum, not clients: it is not advertised either.
    expect(problemsOf(() => resolve('INTERNAL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093', { 'advertised.listeners': 'CONTROLLER://c1:9093' }))).toEqual([
      expect.stringMatching(/^advertised\.listeners: CONTROLLER:\/\/c1:9093 names no client listener/),
    ]);
  });

  it('refuses an inter.broker.listener.name that names no client listener', () => {
    expect(problemsOf(() => resolve('INTERNAL://127.0.0.1:9092,EXTERNAL://127.0.0.1:19092', { 'inter.broker.listener.name': 'REPLICATION' }))).toEqual([
      expect.stringMatching(/^inter\.broker\.listener\.name=REPLICATION names no client listener; choose one of INTERNAL, EXTERNAL/),
    ]);
    expect(problemsOf(() => resolve('INTERNAL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093', { 'inter.broker.listener.name': 'CONTROLLER' }))).toHaveLength(1);
  });

  it('refuses security protocols other than PLAINTEXT, and a listener named after one', () => {
    for (const [map, message] of [
      ['EXTERNAL:SSL', /listener\.security\.protocol\.map='EXTERNAL:SSL' is not valid; EXTERNAL:SSL: only PLAINTEXT is supported/],
      ['INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL', /listener\.security\.protocol\.map=.*only PLAINTEXT is supported/],
      ['EXTERNAL:TLS', /listener\.security\.protocol\.map=.*'TLS' is not a security protocol; only PLAINTEXT is supported/],
      ['EXTERNAL', /listener\.security\.protocol\.map=.*is not of the form NAME:PROTOCOL/],
    ] as const) {
      expect(problemsOf(() => brokerConfig({ 'listener.security.protocol.map': map })), map).toEqual([expect.stringMatching(message)]);
    }
    // In Kafka a listener named SSL speaks TLS unless mapped otherwise: never serve it in plain text silently.
    expect(problemsOf(() => resolve('SSL://127.0.0.1:9094'))).toEqual([expect.stringMatching(/^listener\.security\.protocol\.map: the listener SSL:\/\/127\.0\.0\.1:9094 would use security protocol SSL/)]);
    expect(resolve('SSL://127.0.0.1:9094', { 'listener.security.protocol.map': 'SSL:PLAINTEXT' }).clientListeners).toHaveLength(1);
  });

  it('refuses addresses clients cannot connect to', () => {
    expect(problemsOf(() => brokerConfig({ 'advertised.listeners': 'INTERNAL://0.0.0.0:9092,EXTERNAL://[::]:19092' }))).toEqual([
      expect.stringMatching(/^advertised\.listeners: 'INTERNAL:\/\/0\.0\.0\.0:9092' advertises 0\.0\.0\.0, which clients cannot connect to/),
      expect.stringMatching(/^advertised\.listeners: 'EXTERNAL:\/\/\[::\]:19092' advertises ::, which clients cannot connect to/),
    ]);
    expect(problemsOf(() => brokerConfig({ 'advertised.listeners': 'INTERNAL://broker-1:0' }))).toEqual([expect.stringMatching(/^advertised\.listeners: .* advertises port 0/)]);
    // A wildcard bind needs an advertised address (Kafka refuses to advertise 0.0.0.0 as well).
    expect(problemsOf(() => resolve('INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:19092', { 'advertised.listeners': 'EXTERNAL://127.0.0.1:19092' }))).toEqual([
      expect.stringMatching(/^listeners: INTERNAL:\/\/0\.0\.0\.0:9092 binds every interface and has no advertised\.listeners entry.*add INTERNAL:\/\/<reachable host>:9092 to advertised\.listeners/),
    ]);
  });

  it('refuses duplicate names in listeners and advertised.listeners, and a broker without a client listener', () => {
    expect(problemsOf(() => resolve('INTERNAL://127.0.0.1:9092,INTERNAL://127.0.0.1:9094'))).toEqual([expect.stringMatching(/^listeners=.*: the name INTERNAL is used twice/)]);
    expect(problemsOf(() => brokerConfig({ 'advertised.listeners': 'INTERNAL://a:9092,INTERNAL://b:9092' }))).toEqual([
      expect.stringMatching(/^advertised\.listeners: the listener INTERNAL is advertised twice/),
    ]);
    expect(problemsOf(() => resolve('CONTROLLER://127.0.0.1:9093'))).toEqual([expect.stringMatching(/^listeners=CONTROLLER:\/\/127\.0\.0\.1:9093: a broker needs a client listener besides CONTROLLER/)]);
  });
});
