// A broker's client listeners, as Kafka names them: every `listeners` entry not named CONTROLLER
// is a client listener with its own socket, and each one advertises its own address, matched by
// NAME in `advertised.listeners`. A broker in a container typically has two: INTERNAL (the
// container network, which the other brokers use to replicate) and EXTERNAL (a published port
// for clients on the host). A request is answered with the addresses of the listener it arrived
// on, so a client that bootstrapped through EXTERNAL is only ever sent to EXTERNAL addresses.
//
// This module is pure: it checks the relations between listeners, advertised.listeners,
// inter.broker.listener.name and listener.security.protocol.map, and says what to bind and what
// to register. Each key's own syntax is checked where the key is parsed (broker-config.ts).

import { ConfigError } from '@raftka/protocol';
import type { BrokerEndpoint, ListenerAddress } from '@raftka/quorum';
import { SECURITY_PROTOCOL_PLAINTEXT, WILDCARD_HOSTS, parseEndpoints, type BrokerConfig } from './broker-config.js';

/** The listener name reserved for the metadata quorum (never a client listener). */
export const CONTROLLER_LISTENER_NAME = 'CONTROLLER';

/** Kafka's security protocols other than PLAINTEXT: a listener so named is that protocol in Kafka. */
const SECURE_PROTOCOL_NAMES: readonly string[] = ['SSL', 'SASL_PLAINTEXT', 'SASL_SSL'];

export interface ClientListener {
  /** INTERNAL, EXTERNAL, PLAINTEXT, ... */
  name: string;
  /** Where the listener binds. */
  host: string;
  /** 0 = an OS-assigned port (tests). */
  port: number;
  /** Its advertised.listeners entry; undefined = the bound address itself (the bound port when `port` is 0). */
  advertised: { host: string; port: number } | undefined;
}

export interface BrokerListeners {
  /** Client listeners in `listeners` order. Invariant: at least one; names unique. */
  clientListeners: ClientListener[];
  /**
   * The listener whose advertised endpoint follower fetchers use to reach leaders.
   * Invariant: the name of one of `clientListeners`.
   */
  interBrokerListenerName: string;
}

function formatListener(listener: ListenerAddress): string {
  const host = listener.host.includes(':') ? `[${listener.host}]` : listener.host;
  return `${listener.name}://${host}:${listener.port}`;
}

/**
 * Checks the listener keys against each other and returns the client listeners. Throws a
 * ConfigError with one line per problem, each naming the key to change.
 */
export function resolveBrokerListeners(listeners: readonly ListenerAddress[], config: BrokerConfig): BrokerListeners {
  const problems: string[] = [];
  const listed = `listeners=${listeners.map(formatListener).join(',')}`;
  const names = listeners.map((listener) => listener.name);
  for (const name of new Set(names.filter((candidate, index) => names.indexOf(candidate) !== index))) {
    problems.push(`${listed}: the name ${name} is used twice; give every listener its own name`);
  }
  const clients = listeners.filter((listener) => listener.name !== CONTROLLER_LISTENER_NAME);
  if (clients.length === 0) {
    problems.push(`${listed}: a broker needs a client listener besides ${CONTROLLER_LISTENER_NAME}, e.g. PLAINTEXT://127.0.0.1:9092`);
  }
  const clientNames = clients.map((listener) => listener.name);
  const choices = clientNames.length > 0 ? clientNames.join(', ') : '(none)';

  // advertised.listeners: matched by name; the syntax (and wildcard hosts) is checked at parse time.
  const advertisedByName = new Map<string, BrokerEndpoint>();
  for (const endpoint of parseEndpoints(config.advertisedListeners)) {
    if (!clientNames.includes(endpoint.name)) {
      problems.push(
        `advertised.listeners: ${endpoint.name}://${endpoint.host}:${endpoint.port} names no client listener; ` +
          `advertised names must be listener names from listeners (client listeners here: ${choices})`,
      );
    }
    advertisedByName.set(endpoint.name, endpoint);
  }
  for (const listener of clients) {
    if (!advertisedByName.has(listener.name) && WILDCARD_HOSTS.includes(listener.host)) {
      problems.push(
        `listeners: ${formatListener(listener)} binds every interface and has no advertised.listeners entry, and clients cannot connect to ` +
          `'${listener.host}'; add ${listener.name}://<reachable host>:${listener.port === 0 ? '<port>' : listener.port} to advertised.listeners`,
      );
    }
  }

  // listener.security.protocol.map: every value is PLAINTEXT (checked at parse time). A listener
  // named after a secure protocol would be that protocol in Kafka unless mapped: refuse to serve
  // it in plain text silently.
  const protocols = config.listenerSecurityProtocolMap ?? new Map<string, string>();
  for (const listener of listeners) {
    if (SECURE_PROTOCOL_NAMES.includes(listener.name) && !protocols.has(listener.name)) {
      problems.push(
        `listener.security.protocol.map: the listener ${formatListener(listener)} would use security protocol ${listener.name}, ` +
          `and only ${SECURITY_PROTOCOL_PLAINTEXT} is supported; rename the listener (e.g. INTERNAL) or map ${listener.name}:${SECURITY_PROTOCOL_PLAINTEXT}`,
      );
    }
  }

  const interBrokerListenerName = config.interBrokerListenerName ?? clientNames[0];
  if (config.interBrokerListenerName !== undefined && !clientNames.includes(config.interBrokerListenerName)) {
    problems.push(`inter.broker.listener.name=${config.interBrokerListenerName} names no client listener; choose one of ${choices} (or leave it empty for the first)`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    clientListeners: clients.map((listener) => {
      const advertised = advertisedByName.get(listener.name);
      return { ...listener, advertised: advertised === undefined ? undefined : { host: advertised.host, port: advertised.port } };
    }),
    interBrokerListenerName: interBrokerListenerName!,
  };
}

/** The endpoint a client listener registers, once it is bound to `boundPort`. */
export function registeredEndpoint(listener: ClientListener, boundPort: number): BrokerEndpoint {
  const address = listener.advertised ?? { host: listener.host, port: boundPort };
  return { name: listener.name, host: address.host, port: address.port, securityProtocol: SECURITY_PROTOCOL_PLAINTEXT };
}
