import { Command, CommanderError } from 'commander';
import { register as registerLocal } from '../../cli/local';
import { register as registerPutEvents } from '../../cli/put-events';
import { register as registerRedrive } from '../../cli/redrive';

function program(): { program: Command; errors: string[] } {
  const errors: string[] = [];
  const root = new Command('opentrail')
    .exitOverride()
    .configureOutput({ writeErr: (s) => errors.push(s), writeOut: () => undefined });
  registerPutEvents(root);
  registerRedrive(root);
  return { program: root, errors };
}

function help(name: string): string {
  const command = program().program.commands.find((c) => c.name() === name);
  if (!command) throw new Error(`no command ${name}`);
  return command.helpInformation();
}

describe('CLI commands', () => {
  it.each([
    ['--endpoint <url>', undefined],
    ['--channel-arn <arn>', undefined],
    ['--region <region>', undefined],
    ['--sign <mode>', '"auto"'],
    ['--concurrency <n>', '4'],
    ['--batch-size <n>', '100'],
    ['--max-attempts <n>', '5'],
    ['--output <format>', '"text"'],
  ])('put-events --help documents %s with its default', (flag, defaultValue) => {
    const text = help('put-events').replace(/\s+/g, ' ');
    expect(text).toContain(flag);
    if (defaultValue)
      expect(text).toMatch(
        new RegExp(`${flag.replace(/[<>-]/g, (c) => `\\${c}`)}.*?default: ${defaultValue}`),
      );
  });

  it.each([
    ['--bucket <name>'],
    ['--outputs <file>'],
    ['--prefix <prefix>'],
    ['--region <region>'],
    ['--s3-endpoint <url>'],
    ['--lambda-endpoint <url>'],
    ['--kinesis-endpoint <url>'],
    ['--endpoints <file>'],
    ['--force'],
    ['--dry-run'],
    ['--max-attempts <n>'],
    ['--output <format>'],
  ])('redrive --help documents %s', (flag) => {
    expect(help('redrive')).toContain(flag);
  });

  it.each([
    [
      ['--endpoint', 'http://127.0.0.1:1', '--batch-size', '0', 'x'],
      "option '--batch-size <n>' argument '0' is invalid. must be an integer from 1 to 100",
    ],
    [
      ['--endpoint', 'http://127.0.0.1:1', '--concurrency', 'many', 'x'],
      "option '--concurrency <n>' argument 'many' is invalid. must be an integer from 1 to 32",
    ],
    [
      ['--endpoint', 'ftp://h', 'x'],
      "option '--endpoint <url>' argument 'ftp://h' is invalid. must be an http:// or https:// URL",
    ],
    [
      ['--endpoint', 'http://127.0.0.1:1', '--sign', 'maybe', 'x'],
      "option '--sign <mode>' argument 'maybe' is invalid. Allowed choices are auto, always, never.",
    ],
    [
      ['--endpoint', 'http://127.0.0.1:1', '--output', 'yaml', 'x'],
      "option '--output <format>' argument 'yaml' is invalid. Allowed choices are text, json.",
    ],
    [['x'], "required option '--endpoint <url>' not specified"],
  ])('put-events %j fails naming the flag and the rule', async (args, message) => {
    const { program: root, errors } = program();
    await expect(root.parseAsync(['put-events', ...args], { from: 'user' })).rejects.toBeInstanceOf(
      CommanderError,
    );
    expect(errors.join('')).toContain(message);
  });

  it('redrive refuses a prefix under redriven/', async () => {
    const { program: root, errors } = program();
    await expect(
      root.parseAsync(
        ['redrive', '--bucket', 'b', '--region', 'us-east-1', '--prefix', 'redriven/x'],
        { from: 'user' },
      ),
    ).rejects.toBeInstanceOf(CommanderError);
    expect(errors.join('')).toContain('--prefix must not start with redriven/');
  });

  it('redrive --help says it replays into the consumer that gave the batch up, never into the stream', () => {
    expect(help('redrive')).toContain('into the consumer that gave it up');
    expect(help('redrive')).toContain('Nothing goes back into the stream');
  });

  it('redrive without a bucket names --bucket', async () => {
    const { program: root, errors } = program();
    await expect(
      root.parseAsync(['redrive', '--region', 'us-east-1'], { from: 'user' }),
    ).rejects.toBeInstanceOf(CommanderError);
    expect(errors.join('')).toContain(
      'no failed-records bucket: pass --endpoints FILE (embedded runtime), --outputs FILE (cdk deploy --outputs-file) or --bucket',
    );
  });

  it('local --help says the embedded S3 has no Object Lock, so the write-once protections exist only deployed', () => {
    const root = new Command();
    registerLocal(root);
    let text = '';
    const local = root.commands.find((c) => c.name() === 'local')!;
    local.configureOutput({ writeOut: (s) => (text += s) });
    local.outputHelp();

    expect(text.replace(/\s+/g, ' ')).toContain(
      'the embedded S3 has no Object Lock, versioning or bucket policies',
    );
  });
});
