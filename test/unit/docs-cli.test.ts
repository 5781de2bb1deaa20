import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../cli/program';
import { APP_CONFIG_KEYS } from '../../lib/app-config';
import { section } from '../support/markdown';

// docs/cli.md and docs/operations.md mirror the code: one table row per flag of every command,
// one per configuration key. A row removed, or left behind after its flag is gone, fails here.
const DOCS = join(__dirname, '..', '..', 'docs');
const cliDoc = readFileSync(join(DOCS, 'cli.md'), 'utf8');
const operationsDoc = readFileSync(join(DOCS, 'operations.md'), 'utf8');

/** The names in the first cell of a section's table rows: `| \`--flag <x>\` | … |` → --flag. */
function rowNames(markdown: string, pattern: RegExp): string[] {
  return markdown.split('\n').flatMap((line) => {
    const match = /^\|\s*`([^`]+)`\s*\|/.exec(line);
    const name = match && pattern.exec(match[1]!)?.[0];
    return name ? [name] : [];
  });
}

describe('docs/cli.md', () => {
  // Subcommands (`insights backtest`) have their own section, named by their full path.
  const commands = buildProgram().commands.flatMap((command) => [
    command,
    ...command.commands.map((sub) => sub.name(`${command.name()} ${sub.name()}`)),
  ]);

  it('covers the program', () => {
    expect(commands.map((c) => c.name())).toEqual(
      expect.arrayContaining(['local', 'put-events', 'validate-logs', 'lookup-events']),
    );
  });

  describe.each(commands.map((command) => [command.name(), command] as const))(
    'opentrail %s',
    (name, command) => {
      const flags = command.options.map((option) => option.long!);
      const text = (): string => section(cliDoc, `\`opentrail ${name}\``);

      it('has its own section', () => {
        expect(text).not.toThrow();
      });

      // A command that only groups subcommands (`insights`) has no flags of its own.
      if (flags.length > 0)
        it.each(flags.map((flag) => [flag]))('has a table row for %s', (flag) => {
          expect(rowNames(text(), /^--[a-z0-9-]+/)).toContain(flag);
        });

      it('lists no flag the command does not have, and none twice', () => {
        const rows = rowNames(text(), /^--[a-z0-9-]+/);
        expect(rows.filter((row) => !flags.includes(row))).toEqual([]);
        expect(new Set(rows).size).toBe(rows.length);
      });
    },
  );
});

describe('docs/operations.md configuration keys', () => {
  const rows = (): string[] =>
    rowNames(section(operationsDoc, 'Configuration keys'), /^[A-Za-z][A-Za-z0-9]*$/);

  it.each(APP_CONFIG_KEYS.map((key) => [key]))('has a table row for %s', (key) => {
    expect(rows()).toContain(key);
  });

  it('lists no key bin/app.ts would refuse', () => {
    expect(rows().filter((key) => !APP_CONFIG_KEYS.includes(key as never))).toEqual([]);
  });
});
