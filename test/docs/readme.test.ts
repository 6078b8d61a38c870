// The README is part of the feature: its configuration table and CLI reference must match the
// code. These checks fail when a config key or a command is added without documenting it.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { serverConfigSchema } from '@raftka/cli';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const cli = path.join(root, 'packages/cli/dist/main.js');

describe('README', () => {
  it('documents every server configuration key with its default', () => {
    for (const definition of serverConfigSchema) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${definition.key}\` |`));
      expect(row, `README configuration table lacks ${definition.key}`).toBeDefined();
      const fallback = definition.default === undefined ? '(required)' : String(definition.default);
      expect(row).toContain(fallback);
    }
  });

  it('documents every raftka command that --help lists', () => {
    const help = (args: string[]) => execFileSync(process.execPath, [cli, ...args, '--help'], { encoding: 'utf8' });
    const commandsOf = (text: string) =>
      [...text.split('Commands:')[1]!.matchAll(/^ {2}([a-z-]+)/gm)].map((match) => match[1]!).filter((name) => name !== 'help');
    const top = commandsOf(help([]));
    expect(top).toContain('server');
    for (const command of top) {
      const text = help([command]);
      const subcommands = text.includes('Commands:') ? commandsOf(text) : [];
      const names = subcommands.length > 0 ? subcommands.map((sub) => `raftka ${command} ${sub}`) : [`raftka ${command}`];
      for (const name of names) expect(readme, `README lacks ${name}`).toContain(`\`${name}`);
    }
  });
});
