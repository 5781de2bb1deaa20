import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { readFile } from 'node:fs/promises';
import type { TrailConfig } from '../lambda/core/config';
import {
  missingEmulatorPackages,
  missingEmulatorPackagesMessage,
} from '../local/emulator-packages';
import { formatHealthLine } from '../local/health';
import { httpUrl, integerInRange } from './shared/options';

/** The --trails file: a JSON array of trails, or an error that names the file and the rule. */
async function readTrails(file: string): Promise<TrailConfig[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new InvalidArgumentError(`--trails ${file}: ${(error as Error).message}`);
  }
  if (!Array.isArray(parsed)) {
    throw new InvalidArgumentError(`--trails ${file}: must hold a JSON array of trails`);
  }
  return parsed as TrailConfig[];
}

interface LocalFlags {
  port: number;
  dataDir: string;
  flushSeconds: number;
  region: string;
  accountId: string;
  batchSize: number;
  trails?: string;
  verbose?: boolean;
  forwardTo?: string;
  digestPeriod: number;
  maxRetries: number;
  retryBaseMs: number;
  insights?: boolean;
  statusEvery: number;
}

/** `opentrail local`: the embedded runtime (what `npm start` runs). */
export function register(program: Command): void {
  program
    .command('local')
    .description(
      'run the whole pipeline on 127.0.0.1 with embedded S3, DynamoDB and Kinesis (what `npm start` runs)',
    )
    .addHelpText(
      'after',
      `
No AWS account needed: S3 is s3rver, DynamoDB is dynalite, Kinesis is kinesalite, all with their
data under --data-dir, so a restart loses nothing (a batch interrupted by a crash is retried
whole on the next start). Prints "opentrail listening on http://127.0.0.1:<port>" once ready and
writes <data-dir>/endpoints.json: {api, s3, dynamodb, kinesis, bucket, region, accountId,
failedBucket, stream, lambda, manifestTable, dedupTable, accessKeyId, secretAccessKey,
historyTable, digestChainTable, digestPeriodSeconds}. Besides log files and digests in the
embedded S3, it writes <data-dir>/eventbridge/events.jsonl, sns/notifications.jsonl and
cloudwatch-logs/. The embedded S3 accepts only the access key of this run (accessKeyId and
secretAccessKey, random at every start; \`eval "$(npx opentrail env)"\` for stock tools); the data
directory is made mode 0700 and endpoints.json mode 0600. SIGINT or SIGTERM stops it cleanly.

For a laptop and tests, not for real audit data: the embedded S3 has no Object Lock, versioning
or bucket policies, so the deployment's write-once and delete protections do not exist here
(docs/security.md#the-embedded-runtime); nothing is encrypted at rest.

The emulators' packages (dynalite, kinesalite and the embedded S3's koa, @koa/router,
fast-xml-parser, fs-extra, he, koa-logger, lodash, statuses, winston) are optional peer
dependencies: a checkout of opentrail has them; where opentrail was installed as a package,
this command names the missing ones and the npm install command that adds them.`,
    )
    .option(
      '--port <port>',
      'API port on 127.0.0.1 (0: any free port)',
      integerInRange(0, 65535),
      4510,
    )
    .option(
      '--data-dir <dir>',
      'where the emulators, checkpoints and endpoints.json live',
      '.opentrail',
    )
    .option(
      '--flush-seconds <seconds>',
      "the packager's batching window: how long records gather before a log file is written",
      integerInRange(0, 300),
      60,
    )
    .option(
      '--region <region>',
      "the deployment's region: in endpoints.json, the digests' home region, and ARNs",
      'us-east-1',
    )
    .option(
      '--account-id <id>',
      'the deployment account: recipientAccountId of records that have none',
      '123456789012',
    )
    .option('--batch-size <n>', 'most records per packager batch', integerInRange(1, 10000), 1000)
    .option(
      '--trails <file>',
      'JSON file with an array of trails ({name, prefix?, eventSelectors? | advancedEventSelectors?, organizationId?}); default: one trail "opentrail" that keeps every event',
    )
    .option(
      '--digest-period <seconds>',
      'length of a digest period: digests are signed within a second or two after each one closes (small values for demos and tests; `opentrail digest` closes one now)',
      integerInRange(1, 86400),
      3600,
    )
    .option(
      '--forward-to <url>',
      'POST each envelope of the local event bus (<data-dir>/eventbridge/events.jsonl) to this http(s) URL, e.g. http://127.0.0.1:9000/events: at least once, in file order, resumed on restart; a slow target never holds up publishing',
      httpUrl,
    )
    .option(
      '--max-retries <n>',
      "retries of a consumer's failed batch (whole, same records) before it goes to the on-failure bucket, where `opentrail redrive` replays it",
      integerInRange(0, 100),
      5,
    )
    .option(
      '--retry-base-ms <ms>',
      'delay before the first retry of a failed batch, doubling at each retry (at most 30 s)',
      integerInRange(1, 60000),
      1000,
    )
    .option(
      '--insights',
      'run Insights: the packager counts write calls and errors per minute and the detector judges each minute 5 minutes later, putting Insights records into the stream (docs/design.md#insights)',
    )
    .option(
      '--status-every <seconds>',
      'print a status line (events in, log files, digests, lag; as `opentrail status`) this often; 0: never',
      integerInRange(0, 86400),
      60,
    )
    .option('--verbose', 'log batches, retries and failures to stderr')
    .action(async (flags: LocalFlags) => {
      if (!/^\d{12}$/.test(flags.accountId))
        throw new InvalidArgumentError(`--account-id must be 12 digits, got "${flags.accountId}"`);
      // The handlers log through Powertools; keep the console to warnings unless asked.
      process.env.POWERTOOLS_LOG_LEVEL ??= flags.verbose ? 'INFO' : 'WARN';
      process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
      const missing = missingEmulatorPackages();
      if (missing.length > 0) throw new Error(missingEmulatorPackagesMessage(missing));
      // Loaded after the environment above is set: the handlers' loggers read it on load.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { startRuntime } = require('../local/runtime') as typeof import('../local/runtime');
      const trails = flags.trails ? await readTrails(flags.trails) : undefined;
      const runtime = await startRuntime({
        dataDir: flags.dataDir,
        port: flags.port,
        flushSeconds: flags.flushSeconds,
        region: flags.region,
        accountId: flags.accountId,
        batchSize: flags.batchSize,
        maxRetries: flags.maxRetries,
        retryBaseMs: flags.retryBaseMs,
        ...(flags.forwardTo ? { forwardTo: flags.forwardTo } : {}),
        digestPeriodSeconds: flags.digestPeriod,
        ...(trails ? { trails } : {}),
        ...(flags.insights ? { insights: {} } : {}),
        log: flags.verbose
          ? (message: string, fields?: Record<string, unknown>) =>
              process.stderr.write(`${JSON.stringify({ message, ...fields })}\n`)
          : undefined,
      });
      process.stdout.write(`opentrail listening on ${runtime.endpoints.api}\n`);
      // Health at a glance on long runs: one line per interval.
      const statusTimer =
        flags.statusEvery > 0
          ? setInterval(() => {
              process.stdout.write(`status: ${formatHealthLine(runtime.health())}\n`);
            }, flags.statusEvery * 1000)
          : undefined;
      statusTimer?.unref();
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        clearInterval(statusTimer);
        process.stderr.write(`opentrail: ${signal}, stopping\n`);
        runtime.close().then(
          () => process.exit(0),
          (error: unknown) => {
            process.stderr.write(`opentrail: stop failed: ${String(error)}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
}
