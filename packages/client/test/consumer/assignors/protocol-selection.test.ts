import { RaftkaError } from '@raftka/protocol';
import { describe, expect, it } from 'vitest';
import { cooperativeStickyAssignor } from '../../../src/consumer/assignors/cooperative-sticky.js';
import {
  assignorsByName,
  BUILT_IN_ASSIGNORS,
  DEFAULT_ASSIGNOR_NAMES,
  rebalanceProtocolFor,
  selectProtocol,
  supportedProtocols,
} from '../../../src/consumer/assignors/protocol-selection.js';
import { rangeAssignor } from '../../../src/consumer/assignors/range.js';
import { roundRobinAssignor } from '../../../src/consumer/assignors/round-robin.js';

describe('assignor protocol selection', () => {
  it("uses Kafka's protocol names and lists cooperative-sticky first by default", () => {
    expect([...BUILT_IN_ASSIGNORS.keys()].sort()).toEqual(['cooperative-sticky', 'range', 'roundrobin']);
    expect(supportedProtocols(assignorsByName(DEFAULT_ASSIGNOR_NAMES))).toEqual(['cooperative-sticky', 'range']);
    expect(supportedProtocols([rangeAssignor, rangeAssignor, roundRobinAssignor])).toEqual(['range', 'roundrobin']);
    expect(() => assignorsByName(['sticky'])).toThrow(/unknown partition assignor "sticky"; use one of/);
  });

  it('picks cooperative-sticky once every member supports it, and range while one does not', () => {
    const raftka = supportedProtocols(assignorsByName(DEFAULT_ASSIGNOR_NAMES));
    expect(selectProtocol([raftka, raftka, raftka])).toBe('cooperative-sticky');
    expect(selectProtocol([raftka, ['range'], raftka])).toBe('range');
    // Kafka's Java default lists range first: the members' votes decide.
    expect(selectProtocol([raftka, ['range', 'cooperative-sticky']])).toBe('cooperative-sticky');
    expect(selectProtocol([raftka, ['range', 'cooperative-sticky'], ['range', 'cooperative-sticky']])).toBe('range');
  });

  it('refuses a group whose members share no assignor', () => {
    let thrown: unknown;
    try {
      selectProtocol([['range'], ['roundrobin']]);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RaftkaError);
    expect((thrown as RaftkaError).code).toBe('INCONSISTENT_GROUP_PROTOCOL');
    expect((thrown as RaftkaError).message).toMatch(/share no partition assignor/);
  });

  it('joins cooperatively only when every configured assignor is cooperative (KIP-429)', () => {
    expect(rebalanceProtocolFor([cooperativeStickyAssignor])).toBe('cooperative');
    expect(rebalanceProtocolFor([cooperativeStickyAssignor, rangeAssignor])).toBe('eager');
    expect(rebalanceProtocolFor([roundRobinAssignor])).toBe('eager');
  });
});
