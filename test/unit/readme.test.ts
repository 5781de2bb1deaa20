import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { register as registerLocal } from '../../cli/local';
import { register as registerPutEvents } from '../../cli/put-events';
import { register as registerRedrive } from '../../cli/redrive';
import { APP_CONFIG_KEYS } from '../../lib/app-config';

// The README's lists mirror code; these tests keep them from drifting apart.
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

function program(): Command {
  const root = new Command('opentrail');
  registerLocal(root);
  registerPutEvents(root);
  registerRedrive(root);
  return root;
}

describe('README', () => {
  const commands = program().commands;

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
