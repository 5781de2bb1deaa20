/**
 * `opentrail redrive`: replays each batch an event-source mapping gave up into the consumer
 * that gave it up — never into the stream (docs/guarantees.md#exactly-once).
 *
 * Every failed-records bucket is read (the packager's, the indexer's, the publisher's: from
 * `--endpoints`, a `cdk deploy --outputs-file`, or `--bucket`). Each object is Lambda's S3
 * on-failure record: `requestContext.functionArn` names the consumer and `payload` holds the
 * original invocation event, records with their sequence numbers and original arrival times
 * (cli/shared/on-failure.ts). That event goes, unchanged, to the same function through Lambda's
 * Invoke API (`lambda:InvokeFunction`; the embedded runtime serves the same route). So the
 * consumer sees its own retry: the packager resolves the same batch id, keys and bytes, completes
 * the objects the batch wrote before it was given up, and keeps the records whatever the dedup
 * window; the indexer and the publisher see only their own batches. An object without payload
 * (only the batch's position) is replayed only with `--force`, from the stream, while the stream
 * still holds its records.
 *
 * Once the consumer succeeded (no function error, no batch item failures) the object is moved
 * to `redriven/<key>`: copy, then delete. Crash windows: after the invoke, before the copy, or
 * after the copy, before the delete: the object is still in place and a rerun replays the
 * batch once more, which the consumer treats as a retry of a batch it completed (the packager
 * writes nothing new; the indexer stores the same items; the publisher may send again: at least
 * once, as after any retry). Nothing is lost: the original goes only after its copy exists,
 * and only after the consumer took the batch.
 */
import { readFile } from 'node:fs/promises';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { S3Client } from '@aws-sdk/client-s3';
import { Command, Option } from 'commander';
import { createClients, destroyClients } from '../lambda/adapters/clients';
import { credentialsFor, runtimeAccessKey, type AccessKey } from './shared/endpoint';
import { parseEndpointsFile, REDRIVEN_PREFIX, type EndpointsFile } from './shared/on-failure';
import {
  httpUrl,
  integerInRange,
  nonEmpty,
  outputOption,
  type OutputFormat,
} from './shared/options';
import {
  errorMessage,
  PROCESS_STREAMS,
  writeJson,
  writeLines,
  type OutputStreams,
} from './shared/output';
import { createProgress, type Progress } from './shared/progress';
import { DEFAULT_RETRY_POLICY } from './shared/retry';
import { kinesisReadBack, lambdaInvoker, s3FailedRecordsStore } from './shared/redrive-adapters';
import {
  replayFailedBatches,
  type Invoker,
  type RedriveReport,
  type RedrivenObject,
} from './shared/redrive-replay';

export { lambdaInvoker, streamNameOf } from './shared/redrive-adapters';
export type {
  InvokeOutcome,
  Invoker,
  RedriveFailure,
  RedriveReport,
  RedrivenObject,
} from './shared/redrive-replay';

export interface RedriveOptions {
  readonly s3: S3Client;
  /** Every failed-records bucket to read. */
  readonly buckets: readonly string[];
  /** @default '' */
  readonly prefix?: string;
  readonly invoke: Invoker;
  /** Replay objects without payload from the stream (needs `kinesis`). @default false */
  readonly force?: boolean;
  readonly kinesis?: KinesisClient;
  /**
   * Address the stream by name, not ARN (kinesalite predates StreamARN). The CLI sets it with
   * --kinesis-endpoint. @default false
   */
  readonly streamNameOnly?: boolean;
  /** List and decode only. @default false */
  readonly dryRun?: boolean;
  /** Keys per listing page. @default 100 */
  readonly pageSize?: number;
  readonly progress?: Progress;
  /** For ages. @default Date.now */
  readonly now?: () => number;
}

/** Replays every on-failure object of every bucket under the prefix, over S3, Kinesis and Lambda. */
export function redrive(options: RedriveOptions): Promise<RedriveReport> {
  const { s3, kinesis, streamNameOnly, ...rest } = options;
  return replayFailedBatches({
    ...rest,
    store: s3FailedRecordsStore(s3),
    ...(kinesis ? { readBack: kinesisReadBack(kinesis, streamNameOnly ?? false) } : {}),
  });
}

/** The report as text. */
export function formatRedriveReport(report: RedriveReport): string[] {
  const where = (bucket: string, key: string): string => `s3://${bucket}/${key}`;
  const age = (object: RedrivenObject): string =>
    object.firstArrival === null
      ? ''
      : ` (first record arrived ${object.firstArrival}, ${object.ageHours} h ago)`;
  const lines = report.redriven.map((object) =>
    object.movedTo === null
      ? `would replay ${where(object.bucket, object.key)}: ${object.records} records from the ${object.source} -> ${object.consumer}${age(object)}`
      : `replayed ${where(object.bucket, object.key)}: ${object.records} records from the ${object.source} -> ${object.consumer}${age(object)}; moved to ${where(object.bucket, object.movedTo)}`,
  );
  for (const failure of report.failures)
    lines.push(
      `FAILED ${where(failure.bucket, failure.key)} (${failure.stage}): ${failure.errorMessage}`,
    );
  lines.push(
    report.dryRun
      ? `dry run: ${report.objects} objects, ${report.records} records would be replayed; ${report.failed} failed`
      : `objects replayed: ${report.objects}, records replayed: ${report.records}, failed: ${report.failed}`,
  );
  return lines;
}

/**
 * The failed-records buckets a `cdk deploy --outputs-file` names: every output whose key ends in
 * `FailedRecordsBucketName`, in every stack. Pure; throws naming the file and the rule.
 */
export function failedBucketsFromOutputs(text: string, name: string): string[] {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new Error(`--outputs ${name} is not JSON: ${errorMessage(error)}`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document))
    throw new Error(`--outputs ${name} must hold {"STACK": {"OUTPUT": "value", ...}}`);
  const buckets = Object.values(document as Record<string, unknown>).flatMap((outputs) =>
    typeof outputs === 'object' && outputs !== null
      ? Object.entries(outputs as Record<string, unknown>)
          .filter(
            ([key, value]) => key.endsWith('FailedRecordsBucketName') && typeof value === 'string',
          )
          .map(([, value]) => value as string)
      : [],
  );
  if (buckets.length === 0)
    throw new Error(`--outputs ${name} names no *FailedRecordsBucketName output`);
  return [...new Set(buckets)];
}

interface CliOptions {
  readonly bucket?: string[];
  readonly outputs?: string;
  readonly prefix: string;
  readonly region?: string;
  readonly s3Endpoint?: string;
  readonly kinesisEndpoint?: string;
  readonly lambdaEndpoint?: string;
  readonly endpoints?: string;
  readonly force: boolean;
  readonly dryRun: boolean;
  readonly maxAttempts: number;
  readonly output: OutputFormat;
}

export interface RedriveSettings {
  readonly buckets: readonly string[];
  readonly prefix: string;
  readonly region: string;
  readonly s3Endpoint?: string;
  readonly kinesisEndpoint?: string;
  readonly lambdaEndpoint?: string;
  /**
   * The embedded runtime's access key, when every endpoint in use is the one --endpoints names;
   * absent: the standard AWS credential chain.
   */
  readonly credentials?: AccessKey;
}

/**
 * Merges flags over the endpoints file over the environment; an error message names the flag.
 * `outputBuckets`: the buckets of --outputs. Pure.
 */
export function resolveRedriveSettings(
  flags: Omit<CliOptions, 'endpoints' | 'outputs' | 'output' | 'maxAttempts'>,
  file: EndpointsFile,
  env: NodeJS.ProcessEnv,
  outputBuckets: readonly string[] = [],
): RedriveSettings | string {
  const buckets = [
    ...new Set([
      ...(flags.bucket ?? []),
      ...outputBuckets,
      ...(file.failedBucket !== undefined ? [file.failedBucket] : []),
    ]),
  ];
  if (buckets.length === 0)
    return 'no failed-records bucket: pass --endpoints FILE (embedded runtime), --outputs FILE (cdk deploy --outputs-file) or --bucket';
  const s3Endpoint = flags.s3Endpoint ?? file.s3;
  const kinesisEndpoint = flags.kinesisEndpoint ?? file.kinesis;
  const lambdaEndpoint = flags.lambdaEndpoint ?? file.lambda;
  for (const [flag, value] of [
    ['--s3-endpoint', s3Endpoint],
    ['--kinesis-endpoint', kinesisEndpoint],
    ['--lambda-endpoint', lambdaEndpoint],
  ] as const) {
    if (value !== undefined) {
      try {
        httpUrl(value);
      } catch (error) {
        return `${flag} (or the endpoints file) ${value}: ${errorMessage(error)}`;
      }
    }
  }
  // The runtime's key only when --endpoints names every endpoint this run calls.
  const fromFile = (endpoint: string | undefined, fileEndpoint: string | undefined): boolean =>
    credentialsFor(endpoint, fileEndpoint, file) !== undefined;
  const credentials =
    fromFile(s3Endpoint, file.s3) &&
    (flags.dryRun || fromFile(lambdaEndpoint, file.lambda)) &&
    (!flags.force || flags.dryRun || fromFile(kinesisEndpoint, file.kinesis))
      ? runtimeAccessKey(file)
      : undefined;
  const region =
    flags.region ??
    file.region ??
    env.AWS_REGION ??
    env.AWS_DEFAULT_REGION ??
    (credentials !== undefined ? 'us-east-1' : undefined);
  if (!region) return '--region is required (or AWS_REGION, or --endpoints FILE with a region)';
  return {
    buckets,
    prefix: flags.prefix,
    region,
    ...(credentials !== undefined ? { credentials } : {}),
    ...(s3Endpoint !== undefined ? { s3Endpoint } : {}),
    ...(kinesisEndpoint !== undefined ? { kinesisEndpoint } : {}),
    ...(lambdaEndpoint !== undefined ? { lambdaEndpoint } : {}),
  };
}

async function readText(flag: string, file: string, command: Command): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    command.error(`error: ${flag} ${file}: cannot read: ${errorMessage(error)}`);
  }
}

/** Registers `redrive` on the CLI. */
export function register(program: Command, streams: OutputStreams = PROCESS_STREAMS): void {
  program
    .command('redrive')
    .summary('replay the batches consumers gave up into the consumer that gave each one up')
    .description(
      "Replay every batch an event-source mapping gave up (Lambda's S3 on-failure records in each " +
        'failed-records bucket) into the consumer that gave it up, with the original event: same ' +
        'records, sequence numbers and arrival times. The packager takes it as its own retry (same ' +
        'keys and bytes, objects the batch wrote completed, whatever the dedup window); the ' +
        "indexer's and the publisher's batches reach only them. Nothing goes back into the stream. " +
        `Once the consumer took a batch, its object is moved to ${REDRIVEN_PREFIX}<key> (copy, then ` +
        'delete); a crash in between replays it once more, which the consumer takes as a retry.\n\n' +
        'Buckets: --endpoints .opentrail/endpoints.json (the embedded runtime: one bucket, the ' +
        'runtime replays into its own consumers), --outputs FILE (cdk deploy --outputs-file: every ' +
        '*FailedRecordsBucketName output) or --bucket. Deployed, it calls lambda:InvokeFunction on ' +
        'the function each object names. An object without payload is replayed only with --force, ' +
        'read back from the stream while the stream still holds it.\n\n' +
        "Against the endpoints --endpoints names, the embedded runtime's own access key (from that " +
        'file) is used; otherwise the standard AWS credential chain. Exit code 1 on any failure.',
    )
    .addOption(
      new Option(
        '--bucket <name>',
        'a failed-records bucket to read, added to those of --endpoints and --outputs (repeatable)',
      ).argParser((value: string, previous: string[] | undefined) => [
        ...(previous ?? []),
        nonEmpty(value),
      ]),
    )
    .addOption(
      new Option(
        '--outputs <file>',
        'a cdk deploy --outputs-file: reads every *FailedRecordsBucketName output',
      ),
    )
    .addOption(new Option('--prefix <prefix>', 'only objects under this key prefix').default(''))
    .addOption(
      new Option(
        '--region <region>',
        'AWS region (default: region of --endpoints, else AWS_REGION or AWS_DEFAULT_REGION; us-east-1 for the emulators); each invoke goes to the region of its function ARN',
      ).argParser(nonEmpty),
    )
    .addOption(
      new Option(
        '--s3-endpoint <url>',
        'S3 endpoint override, e.g. an emulator (default: s3 of --endpoints, else AWS)',
      ).argParser(httpUrl),
    )
    .addOption(
      new Option(
        '--lambda-endpoint <url>',
        'Lambda Invoke endpoint override (default: lambda of --endpoints, else AWS)',
      ).argParser(httpUrl),
    )
    .addOption(
      new Option(
        '--kinesis-endpoint <url>',
        'Kinesis endpoint override, for --force (default: kinesis of --endpoints, else AWS)',
      ).argParser(httpUrl),
    )
    .addOption(
      new Option(
        '--endpoints <file>',
        'read s3, lambda, kinesis, region and failedBucket from an endpoints.json (flags win)',
      ),
    )
    .addOption(
      new Option(
        '--force',
        'also replay objects that carry no payload, reading their batch back from the stream',
      ).default(false),
    )
    .addOption(
      new Option('--dry-run', 'list what would be replayed; change nothing').default(false),
    )
    .addOption(
      new Option(
        '--max-attempts <n>',
        'Invoke attempts per batch on throttling, 5xx and network errors (1-20)',
      )
        .argParser(integerInRange(1, 20))
        .default(DEFAULT_RETRY_POLICY.maxAttempts),
    )
    .addOption(outputOption())
    .action(async (opts: CliOptions, command: Command) => {
      let file: EndpointsFile = {};
      if (opts.endpoints !== undefined) {
        const text = await readText('--endpoints', opts.endpoints, command);
        try {
          file = parseEndpointsFile(text, opts.endpoints);
        } catch (error) {
          command.error(`error: ${errorMessage(error)}`);
        }
      }
      let outputBuckets: string[] = [];
      if (opts.outputs !== undefined) {
        const text = await readText('--outputs', opts.outputs, command);
        try {
          outputBuckets = failedBucketsFromOutputs(text, opts.outputs);
        } catch (error) {
          command.error(`error: ${errorMessage(error)}`);
        }
      }
      if (opts.prefix.startsWith(REDRIVEN_PREFIX)) {
        command.error(
          `error: --prefix must not start with ${REDRIVEN_PREFIX} (objects there were redriven already)`,
        );
      }
      const settings = resolveRedriveSettings(opts, file, process.env, outputBuckets);
      if (typeof settings === 'string') command.error(`error: ${settings}`);
      const clients = createClients({
        region: settings.region,
        ...(settings.s3Endpoint !== undefined ? { s3Endpoint: settings.s3Endpoint } : {}),
        ...(settings.kinesisEndpoint !== undefined
          ? { kinesisEndpoint: settings.kinesisEndpoint }
          : {}),
        ...(settings.credentials !== undefined ? { credentials: settings.credentials } : {}),
      });
      const invoke = lambdaInvoker({
        ...(settings.credentials !== undefined ? { credentials: settings.credentials } : {}),
        ...(settings.lambdaEndpoint !== undefined ? { endpoint: settings.lambdaEndpoint } : {}),
        retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: opts.maxAttempts },
      });
      try {
        const report = await redrive({
          s3: clients.s3,
          kinesis: clients.kinesis,
          buckets: settings.buckets,
          prefix: settings.prefix,
          invoke,
          force: opts.force,
          streamNameOnly: settings.kinesisEndpoint !== undefined,
          dryRun: opts.dryRun,
          progress: createProgress(
            'redrive [{bar}] {value}/{total} objects | {records} records | {failed} failed',
          ),
        });
        if (opts.output === 'json') writeJson(streams, report);
        else writeLines(streams, formatRedriveReport(report));
        if (report.failed > 0) process.exitCode = 1;
      } finally {
        invoke.destroy();
        destroyClients(clients);
      }
    });
}
