import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { megabytesPerSecond, produceProgress } from '../../src/produce/produce-progress.js';

/** A stream that says it is a terminal and keeps what is drawn on it. */
function fakeTerminal(): { stream: NodeJS.WriteStream; drawn: () => string } {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream & PassThrough;
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  Object.assign(stream, { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  return { stream, drawn: () => text };
}

describe('produce --file progress', () => {
  it('computes MB/s from bytes and elapsed time', () => {
    expect(megabytesPerSecond(5_000_000, 2_000)).toBe('2.50');
    expect(megabytesPerSecond(1, 0)).toBe('0.00');
  });

  it('draws nothing when stderr is not a terminal', () => {
    const stream = new PassThrough() as unknown as NodeJS.WriteStream;
    let written = 0;
    (stream as unknown as PassThrough).on('data', () => (written += 1));
    const progress = produceProgress(1000, stream);
    progress.acknowledged(10, 500);
    progress.stop();
    expect(written).toBe(0);
    expect(() => produceProgress(10, undefined).stop()).not.toThrow();
  });

  it('shows acknowledged records, percentage and MB/s on a terminal', async () => {
    const { stream, drawn } = fakeTerminal();
    let nowMs = 0;
    const progress = produceProgress(2_000_000, stream, () => nowMs);
    nowMs = 1_000;
    progress.acknowledged(40, 1_000_000);
    nowMs = 2_000;
    progress.acknowledged(40, 1_000_000);
    progress.stop();
    await new Promise((resolve) => setImmediate(resolve));
    expect(drawn()).toMatch(/100% \| 80 records \| 1\.00 MB\/s/);
  });
});
