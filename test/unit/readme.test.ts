import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../cli/program';
import { APP_CONFIG_KEYS } from '../../lib/app-config';

// The README's lists mirror code; these tests keep them from drifting apart.
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

describe('README', () => {
  const commands = buildProgram().commands;

  it.each(commands.map((c) => [c.name()]))('documents the %s command', (name) => {
    expect(readme).toContain(`opentrail ${name}`);
  });

  const options = commands.flatMap((command) =>
    command.options.map((option) => [command.name(), option.long!] as const),
  );
  it.each(options)('documents %s %s', (_command, flag) => {
    expect(readme).toContain(flag);
  });

  it.each(APP_CONFIG_KEYS.map((key) => [key]))('lists the configuration key %s', (key) => {
    expect(readme).toMatch(new RegExp(`\`${key}\``));
  });

  it('shows the install, start and test commands CI runs', () => {
    const ci = readFileSync(join(__dirname, '..', '..', '.ci', 'run'), 'utf8');
    expect(ci).toMatch(/^npm ci$/m);
    expect(ci).toMatch(/^npm test$/m);
    expect(readme).toMatch(/^npm ci\b/m);
    expect(readme).toMatch(/^npm test\b/m);
    expect(readme).toMatch(/^npm start\b/m);
  });
});
