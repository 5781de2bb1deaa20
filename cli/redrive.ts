/**
 * `opentrail redrive`: puts the records that a Kinesis event-source mapping gave up on back
 * into the stream, from the mapping's S3 on-failure destination (Lambda's S3 destination
 * objects, which hold the records themselves — cli/shared/on-failure.ts).
 *
 * Per object: decode every record first (a malformed object sends nothing), PutRecords them
 * with their original partition keys and data bytes (≤ 500 records and ≤ 5 MiB per call,
 * records Kinesis reports failed retried with backoff, bounded), and only once every record
 * is accepted move the object to `redriven/<key>` — copy, then delete the original.
 *
 * Crash windows: after PutRecords, before the copy: the object is still in place, so a rerun
 * re-injects its records once more; after the copy, before the delete: the same, and the copy
 * is rewritten with the same bytes. Either way the stream sees the same records (same
 * partition keys, same bytes) again, which the packager's dedup absorbs within its window
 * (identical content of an eventID is kept once), and nothing is lost: the original is deleted only after its copy
 * exists, and only after every record is in the stream.
 */
import { readFile } from 'node:fs/promises';
import {
  PutRecordsCommand,
  type KinesisClient,
  type PutRecordsCommandInput,
} from '@aws-sdk/client-kinesis';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Command, Option } from 'commander';
import { createClients, destroyClients, EMULATOR_CREDENTIALS } from '../lambda/adapters/clients';
import { isLoopbackHost } from './shared/endpoint';
import {
  chunkForPutRecords,
  copySource,
  decodeOnFailureObject,
  isRetryableSdkError,
  parseEndpointsFile,
  REDRIVEN_PREFIX,
  redrivenKey,
  type EndpointsFile,
  type KinesisRecordToPut,
} from './shared/on-failure';
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
import { backoffDelayMs, DEFAULT_RETRY_POLICY, sleep, type RetryPolicy } from './shared/retry';

export interface RedriveOptions {
  readonly s3: S3Client;
  readonly kinesis: KinesisClient;
  /** The on-failure bucket. */
  readonly bucket: string;
  /** @default '' */
  readonly prefix?: string;
  /** Target stream name; absent: the stream each object's KinesisBatchInfo names. */
  readonly stream?: string;
  /**
   * Address a stream an object names by ARN by its name instead (same account and region as
   * the client): kinesalite predates StreamARN. The CLI sets it with --kinesis-endpoint.
   * @default false
   */
  readonly streamNameOnly?: boolean;
  /** List and decode only. @default false */
  readonly dryRun?: boolean;
  /** @default DEFAULT_RETRY_POLICY */
  readonly retry?: RetryPolicy;
  /** Keys per listing page. @default 100 */
  readonly pageSize?: number;
  readonly progress?: Progress;
  readonly random?: () => number;
}

export interface RedrivenObject {
  readonly key: string;
  readonly records: number;
  /** The stream name or ARN the records went (or would go) to. */
  readonly stream: string;
  /** Where the object was moved; null in a dry run. */
  readonly movedTo: string | null;
}

export interface RedriveFailure {
  readonly key: string;
  /** What failed: read (get or decode), put (PutRecords), move (copy or delete). */
  readonly stage: 'read' | 'put' | 'move';
  readonly errorMessage: string;
}

export interface RedriveReport {
  dryRun: boolean;
  bucket: string;
  prefix: string;
  /** Objects redriven (or, in a dry run, that would be). */
  objects: number;
  /** Records re-injected (or that would be). */
  records: number;
  failed: number;
  redriven: RedrivenObject[];
  failures: RedriveFailure[];
}

/** Stops one object's redrive at a stage. */
class StageError extends Error {
  constructor(
    readonly stage: RedriveFailure['stage'],
    message: string,
  ) {
    super(message);
  }
}

type StreamTarget = Pick<PutRecordsCommandInput, 'StreamName' | 'StreamARN'>;

/** `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME` → NAME. */
export function streamNameOf(streamArn: string): string {
  return streamArn.slice(streamArn.lastIndexOf('/') + 1);
}

/** Redrives every on-failure object under the prefix. Resolves with the report. */
export async function redrive(options: RedriveOptions): Promise<RedriveReport> {
  const prefix = options.prefix ?? '';
  if (prefix.startsWith(REDRIVEN_PREFIX)) {
    throw new Error(
      `--prefix must not start with ${REDRIVEN_PREFIX}: objects there were redriven already`,
    );
  }
  const dryRun = options.dryRun ?? false;
  const policy = options.retry ?? DEFAULT_RETRY_POLICY;
  const report: RedriveReport = {
    dryRun,
    bucket: options.bucket,
    prefix,
    objects: 0,
    records: 0,
    failed: 0,
    redriven: [],
    failures: [],
  };
  const attempted = new Set<string>();
  const progress = options.progress;
  progress?.start(0, { records: 0, failed: 0 });

  const putWithRetries = async (
    target: StreamTarget,
    records: readonly KinesisRecordToPut[],
  ): Promise<void> => {
    let pending = records;
    for (let attempt = 1; ; attempt++) {
      let failedRecords: KinesisRecordToPut[];
      let lastError: string;
      try {
        const response = await options.kinesis.send(
          new PutRecordsCommand({
            ...target,
            Records: pending.map((record) => ({
              Data: record.data,
              PartitionKey: record.partitionKey,
            })),
          }),
        );
        const results = response.Records ?? [];
        failedRecords = pending.filter(
          (_, index) => results[index]?.ErrorCode !== undefined || results[index] === undefined,
        );
        const firstError = results.find((result) => result.ErrorCode !== undefined);
        lastError = firstError
          ? `${firstError.ErrorCode}: ${firstError.ErrorMessage ?? ''}`
          : 'not reported in the response';
        if (failedRecords.length === 0) return;
      } catch (error) {
        if (!isRetryableSdkError(error))
          throw new StageError('put', `PutRecords failed: ${errorMessage(error)}`);
        failedRecords = [...pending];
        lastError = errorMessage(error);
      }
      if (attempt >= policy.maxAttempts) {
        throw new StageError(
          'put',
          `${failedRecords.length} of ${records.length} records not accepted after ${attempt} attempts (${lastError}); the object stays in place`,
        );
      }
      await sleep(backoffDelayMs(attempt, policy, options.random));
      pending = failedRecords;
    }
  };

  const redriveObject = async (key: string): Promise<boolean> => {
    let text: string;
    try {
      const object = await options.s3.send(
        new GetObjectCommand({ Bucket: options.bucket, Key: key }),
      );
      text = object.Body ? await object.Body.transformToString('utf8') : '';
    } catch (error) {
      throw new StageError('read', `cannot read the object: ${errorMessage(error)}`);
    }
    let decoded;
    try {
      decoded = decodeOnFailureObject(text);
    } catch (error) {
      throw new StageError('read', `not a usable on-failure object: ${errorMessage(error)}`);
    }
    const target: StreamTarget | undefined = options.stream
      ? { StreamName: options.stream }
      : decoded.streamArn
        ? options.streamNameOnly
          ? { StreamName: streamNameOf(decoded.streamArn) }
          : { StreamARN: decoded.streamArn }
        : undefined;
    if (!target)
      throw new StageError(
        'read',
        'no --stream given and the object names no KinesisBatchInfo.streamArn',
      );
    const stream = target.StreamName ?? target.StreamARN ?? '';
    if (dryRun) {
      report.redriven.push({ key, records: decoded.records.length, stream, movedTo: null });
      report.objects++;
      report.records += decoded.records.length;
      return false;
    }
    for (const chunk of chunkForPutRecords(decoded.records)) await putWithRetries(target, chunk);
    // Every record is in the stream: only now move the object (copy first, so it is never lost).
    const movedTo = redrivenKey(key);
    try {
      await options.s3.send(
        new CopyObjectCommand({
          Bucket: options.bucket,
          Key: movedTo,
          CopySource: copySource(options.bucket, key),
        }),
      );
      await options.s3.send(new DeleteObjectCommand({ Bucket: options.bucket, Key: key }));
    } catch (error) {
      throw new StageError(
        'move',
        `its ${decoded.records.length} records were re-injected, but the object could not be moved to ${movedTo} (${errorMessage(error)}); a rerun re-injects them again`,
      );
    }
    report.redriven.push({ key, records: decoded.records.length, stream, movedTo });
    report.objects++;
    report.records += decoded.records.length;
    return true;
  };

  // One listing page at a time, its keys sorted here as well (stock s3rver lists in directory
  // order). After a page that moved objects, the listing restarts from the beginning instead of
  // following the continuation token: the moved objects are gone, so a fresh listing is exact
  // and never depends on a token minted before the deletes. Keys already tried (the failures)
  // are passed over, and a page with nothing new follows the token.
  let token: string | undefined;
  for (;;) {
    const page = await options.s3.send(
      new ListObjectsV2Command({
        Bucket: options.bucket,
        Prefix: prefix,
        MaxKeys: options.pageSize ?? 100,
        ...(token ? { ContinuationToken: token } : {}),
      }),
    );
    const keys = (page.Contents ?? [])
      .map((object) => object.Key)
      .filter(
        (key): key is string =>
          key !== undefined && !key.startsWith(REDRIVEN_PREFIX) && !attempted.has(key),
      )
      .sort();
    progress?.setTotal(attempted.size + keys.length);
    let moved = false;
    for (const key of keys) {
      attempted.add(key);
      try {
        if (await redriveObject(key)) moved = true;
      } catch (error) {
        report.failures.push({
          key,
          stage: error instanceof StageError ? error.stage : 'put',
          errorMessage: errorMessage(error),
        });
        report.failed++;
      }
      progress?.increment(1, { records: report.records, failed: report.failed });
    }
    if (moved) {
      token = undefined;
      continue;
    }
    if (!page.IsTruncated || !page.NextContinuationToken) break;
    token = page.NextContinuationToken;
  }
  progress?.stop();
  return report;
}

/** The report as text. */
export function formatRedriveReport(report: RedriveReport): string[] {
  const where = (key: string): string => `s3://${report.bucket}/${key}`;
  const lines = report.redriven.map((object) =>
    object.movedTo === null
      ? `would redrive ${where(object.key)}: ${object.records} records -> ${object.stream}`
      : `redriven ${where(object.key)}: ${object.records} records -> ${object.stream}; moved to ${where(object.movedTo)}`,
  );
  for (const failure of report.failures)
    lines.push(`FAILED ${where(failure.key)} (${failure.stage}): ${failure.errorMessage}`);
  lines.push(
    report.dryRun
      ? `dry run: ${report.objects} objects, ${report.records} records would be re-injected; ${report.failed} failed`
      : `objects redriven: ${report.objects}, records re-injected: ${report.records}, failed: ${report.failed}`,
  );
  return lines;
}

interface CliOptions {
  readonly bucket?: string;
  readonly prefix: string;
  readonly stream?: string;
  readonly region?: string;
  readonly s3Endpoint?: string;
  readonly kinesisEndpoint?: string;
  readonly endpoints?: string;
  readonly dryRun: boolean;
  readonly maxAttempts: number;
  readonly output: OutputFormat;
}

export interface RedriveSettings {
  readonly bucket: string;
  readonly prefix: string;
  readonly stream?: string;
  readonly region: string;
  readonly s3Endpoint?: string;
  readonly kinesisEndpoint?: string;
  /** True when every endpoint in use is a loopback override: the emulators' fixed credentials. */
  readonly emulatorCredentials: boolean;
}

/** Merges flags over the endpoints file over the environment; an error message names the flag. Pure. */
export function resolveRedriveSettings(
  flags: Omit<CliOptions, 'endpoints' | 'output' | 'maxAttempts'>,
  file: EndpointsFile,
  env: NodeJS.ProcessEnv,
): RedriveSettings | string {
  const bucket = flags.bucket ?? file.failedBucket;
  if (!bucket) return '--bucket is required (or --endpoints FILE with a failedBucket)';
  const s3Endpoint = flags.s3Endpoint ?? file.s3;
  const kinesisEndpoint = flags.kinesisEndpoint ?? file.kinesis;
  for (const [flag, value] of [
    ['--s3-endpoint', s3Endpoint],
    ['--kinesis-endpoint', kinesisEndpoint],
  ] as const) {
    if (value !== undefined) {
      try {
        httpUrl(value);
      } catch (error) {
        return `${flag} (or the endpoints file) ${value}: ${errorMessage(error)}`;
      }
    }
  }
  const loopback = (endpoint: string | undefined): boolean =>
    endpoint !== undefined && isLoopbackHost(new URL(endpoint).hostname);
  const emulatorCredentials = loopback(s3Endpoint) && (flags.dryRun || loopback(kinesisEndpoint));
  const region =
    flags.region ??
    file.region ??
    env.AWS_REGION ??
    env.AWS_DEFAULT_REGION ??
    (emulatorCredentials ? 'us-east-1' : undefined);
  if (!region) return '--region is required (or AWS_REGION, or --endpoints FILE with a region)';
  const stream = flags.stream ?? file.stream;
  return {
    bucket,
    prefix: flags.prefix,
    region,
    emulatorCredentials,
    ...(stream !== undefined ? { stream } : {}),
    ...(s3Endpoint !== undefined ? { s3Endpoint } : {}),
    ...(kinesisEndpoint !== undefined ? { kinesisEndpoint } : {}),
  };
}

/** Registers `redrive` on the CLI. */
export function register(program: Command, streams: OutputStreams = PROCESS_STREAMS): void {
  program
    .command('redrive')
    .summary('put records held in the S3 on-failure destination back into the Kinesis stream')
    .description(
      "Re-inject what the event-source mappings' S3 on-failure destination holds back into the Kinesis " +
        "stream: each object's records go back with their original partition keys and bytes, and once all " +
        `of them are accepted the object is moved to ${REDRIVEN_PREFIX}<key> (copy, then delete). A crash in ` +
        'between re-injects an object at most once more.\n\n' +
        'The records go back to every consumer of the stream: the indexer stores them once, the ' +
        'publisher sends them again, and the packager drops them only when the same content was ' +
        'delivered within its dedup window (24 h by default); an older batch is written to log files ' +
        'again.\n\n' +
        'Against loopback endpoints (the embedded runtime: --endpoints .opentrail/endpoints.json) the ' +
        "emulators' fixed credentials are used; otherwise the standard AWS credential chain. Exit code 1 " +
        'on any failure.',
    )
    .addOption(
      new Option(
        '--bucket <name>',
        'the on-failure bucket (default: failedBucket of --endpoints)',
      ).argParser(nonEmpty),
    )
    .addOption(new Option('--prefix <prefix>', 'only objects under this key prefix').default(''))
    .addOption(
      new Option(
        '--stream <name>',
        'target stream name (default: stream of --endpoints, else the streamArn each object names)',
      ).argParser(nonEmpty),
    )
    .addOption(
      new Option(
        '--region <region>',
        'AWS region (default: region of --endpoints, else AWS_REGION or AWS_DEFAULT_REGION; us-east-1 for the emulators)',
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
        '--kinesis-endpoint <url>',
        'Kinesis endpoint override (default: kinesis of --endpoints, else AWS)',
      ).argParser(httpUrl),
    )
    .addOption(
      new Option(
        '--endpoints <file>',
        'read s3, kinesis, region, failedBucket and stream from an endpoints.json (flags win)',
      ),
    )
    .addOption(
      new Option('--dry-run', 'list what would be re-injected; change nothing').default(false),
    )
    .addOption(
      new Option(
        '--max-attempts <n>',
        'PutRecords attempts per record on throttling and failures (1-20)',
      )
        .argParser(integerInRange(1, 20))
        .default(DEFAULT_RETRY_POLICY.maxAttempts),
    )
    .addOption(outputOption())
    .action(async (opts: CliOptions, command: Command) => {
      let file: EndpointsFile = {};
      if (opts.endpoints !== undefined) {
        let text: string;
        try {
          text = await readFile(opts.endpoints, 'utf8');
        } catch (error) {
          command.error(
            `error: --endpoints ${opts.endpoints}: cannot read: ${errorMessage(error)}`,
          );
        }
        try {
          file = parseEndpointsFile(text, opts.endpoints);
        } catch (error) {
          command.error(`error: ${errorMessage(error)}`);
        }
      }
      if (opts.prefix.startsWith(REDRIVEN_PREFIX)) {
        command.error(
          `error: --prefix must not start with ${REDRIVEN_PREFIX} (objects there were redriven already)`,
        );
      }
      const settings = resolveRedriveSettings(opts, file, process.env);
      if (typeof settings === 'string') command.error(`error: ${settings}`);
      const clients = createClients({
        region: settings.region,
        ...(settings.s3Endpoint !== undefined ? { s3Endpoint: settings.s3Endpoint } : {}),
        ...(settings.kinesisEndpoint !== undefined
          ? { kinesisEndpoint: settings.kinesisEndpoint }
          : {}),
        ...(settings.emulatorCredentials ? { credentials: EMULATOR_CREDENTIALS } : {}),
      });
      try {
        const report = await redrive({
          s3: clients.s3,
          kinesis: clients.kinesis,
          bucket: settings.bucket,
          prefix: settings.prefix,
          ...(settings.stream !== undefined ? { stream: settings.stream } : {}),
          streamNameOnly: settings.kinesisEndpoint !== undefined,
          dryRun: opts.dryRun,
          retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: opts.maxAttempts },
          progress: createProgress(
            'redrive [{bar}] {value}/{total} objects | {records} records | {failed} failed',
          ),
        });
        if (opts.output === 'json') writeJson(streams, report);
        else writeLines(streams, formatRedriveReport(report));
        if (report.failed > 0) process.exitCode = 1;
      } finally {
        destroyClients(clients);
      }
    });
}
