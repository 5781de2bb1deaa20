/**
 * `opentrail env`: shell lines that point stock AWS tools (the AWS CLI, the SDKs, anything that
 * reads AWS_* variables) at a running embedded runtime, with the access key of that run, so that
 * `eval "$(npx opentrail env)"` is all a shell needs. The embedded S3 accepts no other key
 * (docs/security.md#the-local-runtime).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { parseEndpoints } from '../lambda/core/contracts';
import { nonEmpty } from './shared/options';
import { errorMessage, PROCESS_STREAMS, type OutputStreams } from './shared/output';

/** A POSIX shell word: single-quoted, any single quote written as '\''. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The lines `opentrail env` prints for an endpoints.json text; throws naming the file and the
 * missing field (a runtime older than per-run keys has none).
 */
export function envLines(text: string, source: string): string[] {
  const file = parseEndpoints(text, source);
  const required = ['s3', 'dynamodb', 'kinesis', 'api', 'region', 'accessKeyId', 'secretAccessKey'];
  for (const key of required) {
    if (file[key as keyof typeof file] === undefined) {
      throw new Error(
        `${source}: field ${key} is missing (restart the runtime: npx opentrail local)`,
      );
    }
  }
  const exports: [string, string][] = [
    ['AWS_ACCESS_KEY_ID', file.accessKeyId!],
    ['AWS_SECRET_ACCESS_KEY', file.secretAccessKey!],
    ['AWS_REGION', file.region!],
    ['AWS_ENDPOINT_URL_S3', file.s3!],
    ['AWS_ENDPOINT_URL_DYNAMODB', file.dynamodb!],
    ['AWS_ENDPOINT_URL_KINESIS', file.kinesis!],
    ['AWS_ENDPOINT_URL_CLOUDTRAIL', file.api!],
  ];
  return [
    // A session token or profile would otherwise be sent with (or chosen over) the key above.
    'unset AWS_SESSION_TOKEN AWS_PROFILE',
    ...exports.map(([name, value]) => `export ${name}=${shellQuote(value)}`),
  ];
}

interface CliOptions {
  readonly dataDir: string;
  readonly endpoints?: string;
}

/** Registers `env` on the CLI. */
export function register(program: Command, streams: OutputStreams = PROCESS_STREAMS): void {
  program
    .command('env')
    .summary("print shell exports for stock AWS tools: the embedded runtime's endpoints and key")
    .description(
      'Print `export` lines for a running embedded runtime: AWS_ACCESS_KEY_ID and ' +
        'AWS_SECRET_ACCESS_KEY (the access key of this run, which its S3 requires), AWS_REGION, and ' +
        'AWS_ENDPOINT_URL_S3, _DYNAMODB, _KINESIS and _CLOUDTRAIL (the API); AWS_SESSION_TOKEN and ' +
        'AWS_PROFILE are unset. For a shell:\n' +
        '  eval "$(npx opentrail env)"\n' +
        '  aws s3 ls --recursive s3://opentrail-logs\n' +
        'The key changes with every start of the runtime: run it again after a restart.',
    )
    .addOption(
      new Option('--data-dir <dir>', "the runtime's data directory (its endpoints.json)")
        .argParser(nonEmpty)
        .default('.opentrail'),
    )
    .addOption(
      new Option('--endpoints <file>', 'an endpoints.json to read instead of --data-dir').argParser(
        nonEmpty,
      ),
    )
    .action(async (opts: CliOptions, command: Command) => {
      const path = opts.endpoints ?? join(opts.dataDir, 'endpoints.json');
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        command.error(
          (error as NodeJS.ErrnoException).code === 'ENOENT'
            ? `error: no running runtime: ${path} does not exist (start one with npx opentrail local, or pass --data-dir or --endpoints)`
            : `error: ${path}: ${errorMessage(error)}`,
        );
      }
      try {
        streams.stdout.write(`${envLines(text, path).join('\n')}\n`);
      } catch (error) {
        command.error(`error: ${errorMessage(error)}`);
      }
    });
}
