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
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
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
  copySource,
  decodeFailedBatch,
  parseEndpointsFile,
  parseFunctionArn,
  REDRIVEN_PREFIX,
  redrivenKey,
  type EndpointsFile,
  type FailedBatch,
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
import { sigV4Signer, UNSIGNED, type RequestSigner } from './shared/sigv4';

/** What a consumer answered: a function error, or its response (e.g. batchItemFailures). */
export interface InvokeOutcome {
  /** Lambda's `X-Amz-Function-Error` (the function threw), with the error payload's message. */
  readonly functionError?: string;
  readonly payload: unknown;
}

/** Invokes a consumer (by function ARN) with an event, synchronously. */
export type Invoker = (functionArn: string, event: unknown) => Promise<InvokeOutcome>;

/** Lambda's longest run (15 minutes) plus the time to answer. */
const INVOKE_TIMEOUT_MS = 930_000;

/** A failure worth another attempt (throttling, 5xx, network). */
class RetryableInvokeError extends Error {}

/**
 * Lambda's Invoke API over HTTP (`POST /2015-03-31/functions/NAME/invocations`, RequestResponse),
 * SigV4-signed for `lambda` in the function's region, or unsigned against a loopback endpoint
 * (the embedded runtime). Throttling, 5xx and network errors are retried with backoff.
 */
export function lambdaInvoker(options: {
  /** Endpoint override, e.g. the embedded runtime's API. @default - lambda.REGION.amazonaws.com */
  readonly endpoint?: string;
  readonly retry?: RetryPolicy;
  readonly signerFor?: (region: string) => RequestSigner;
  readonly random?: () => number;
}): Invoker {
  const policy = options.retry ?? DEFAULT_RETRY_POLICY;
  const signers = new Map<string, RequestSigner>();
  const signerFor = (region: string, url: URL): RequestSigner => {
    if (isLoopbackHost(url.hostname)) return UNSIGNED;
    let signer = signers.get(region);
    if (!signer) {
      signer = (options.signerFor ?? ((r) => sigV4Signer({ region: r, service: 'lambda' })))(
        region,
      );
      signers.set(region, signer);
    }
    return signer;
  };
  const once = async (functionArn: string, body: string): Promise<InvokeOutcome> => {
    const { region, name } = parseFunctionArn(functionArn);
    const base = options.endpoint ?? `https://lambda.${region}.amazonaws.com`;
    const url = new URL(
      `/2015-03-31/functions/${encodeURIComponent(options.endpoint ? name : functionArn)}/invocations`,
      base,
    );
    const unsigned = {
      method: 'POST',
      url,
      headers: {
        'content-type': 'application/json',
        'x-amz-invocation-type': 'RequestResponse',
      },
      body,
    };
    const headers = await signerFor(region, url)(unsigned);
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(INVOKE_TIMEOUT_MS),
      });
    } catch (error) {
      throw new RetryableInvokeError(`Invoke ${name}: ${errorMessage(error)}`);
    }
    const text = await response.text();
    if (response.status === 429 || response.status >= 500)
      throw new RetryableInvokeError(
        `Invoke ${name}: HTTP ${response.status} ${text.slice(0, 300)}`,
      );
    if (response.status !== 200)
      throw new Error(`Invoke ${name}: HTTP ${response.status} ${text.slice(0, 300)}`);
    let payload: unknown = null;
    try {
      payload = text === '' ? null : JSON.parse(text);
    } catch {
      payload = text;
    }
    const functionError = response.headers.get('x-amz-function-error');
    if (functionError) {
      const message = (payload as { errorMessage?: unknown } | null)?.errorMessage;
      return {
        functionError: `${functionError}${typeof message === 'string' ? `: ${message}` : ''}`,
        payload,
      };
    }
    return { payload };
  };
  return async (functionArn, event) => {
    const body = JSON.stringify(event);
    for (let attempt = 1; ; attempt++) {
      try {
        return await once(functionArn, body);
      } catch (error) {
        if (!(error instanceof RetryableInvokeError) || attempt >= policy.maxAttempts) throw error;
        await sleep(backoffDelayMs(attempt, policy, options.random));
      }
    }
  };
}

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

export interface RedrivenObject {
  readonly bucket: string;
  readonly key: string;
  /** The consumer's function ARN the batch was (or would be) replayed into. */
  readonly consumer: string;
  readonly records: number;
  /** Where the records came from: the object's payload, or the stream (--force). */
  readonly source: 'payload' | 'stream';
  /** Original arrival of the batch's first record (ISO 8601), when the object names it. */
  readonly firstArrival: string | null;
  /** Hours since that arrival: how long the batch waited. */
  readonly ageHours: number | null;
  /** Where the object was moved; null in a dry run. */
  readonly movedTo: string | null;
}

export interface RedriveFailure {
  readonly bucket: string;
  readonly key: string;
  /** What failed: read (get, decode or stream read), invoke (the consumer), move (copy or delete). */
  readonly stage: 'read' | 'invoke' | 'move';
  readonly errorMessage: string;
}

export interface RedriveReport {
  dryRun: boolean;
  buckets: string[];
  prefix: string;
  /** Objects replayed (or, in a dry run, that would be). */
  objects: number;
  /** Records replayed (or that would be). */
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

/** `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME` → NAME. */
export function streamNameOf(streamArn: string): string {
  return streamArn.slice(streamArn.lastIndexOf('/') + 1);
}

function compareSequence(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Reads a batch an object names by position (no payload) back from the stream and builds the
 * invocation event Lambda sent. Fails when the stream no longer holds its first record.
 */
async function eventFromStream(
  batch: FailedBatch,
  kinesis: KinesisClient,
  byName: boolean,
): Promise<{ Records: unknown[] }> {
  const { shardId, startSequenceNumber: first, endSequenceNumber: last, streamArn } = batch.info;
  const stream = byName ? { StreamName: streamNameOf(streamArn) } : { StreamARN: streamArn };
  const start = await kinesis.send(
    new GetShardIteratorCommand({
      ...stream,
      ShardId: shardId,
      ShardIteratorType: 'AT_SEQUENCE_NUMBER',
      StartingSequenceNumber: first,
    }),
  );
  const region = streamArn.split(':')[3] ?? '';
  const records: unknown[] = [];
  let iterator = start.ShardIterator;
  for (let reads = 0; iterator && reads < 10_000; reads++) {
    const response = await kinesis.send(
      new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }),
    );
    for (const record of response.Records ?? []) {
      const sequence = record.SequenceNumber!;
      if (records.length === 0 && sequence !== first)
        throw new Error(
          `the stream no longer holds record ${first} (its retention has passed); the batch cannot be read back`,
        );
      if (compareSequence(sequence, last) > 0) return { Records: records };
      records.push({
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: record.PartitionKey,
          sequenceNumber: sequence,
          data: Buffer.from(record.Data ?? new Uint8Array()).toString('base64'),
          approximateArrivalTimestamp:
            (record.ApproximateArrivalTimestamp ?? new Date(0)).getTime() / 1000,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `${shardId}:${sequence}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: '',
        awsRegion: region,
        eventSourceARN: streamArn,
      });
      if (sequence === last) return { Records: records };
    }
    if ((response.Records ?? []).length === 0 && (response.MillisBehindLatest ?? 0) === 0) break;
    iterator = response.NextShardIterator;
  }
  throw new Error(
    records.length === 0
      ? `the stream no longer holds record ${first} (its retention has passed); the batch cannot be read back`
      : `the stream ends before record ${last}; the batch cannot be read back whole`,
  );
}

/** Why a consumer's answer is not a success, or undefined when it is one. */
function failureOf(outcome: InvokeOutcome): string | undefined {
  if (outcome.functionError) return `the consumer failed: ${outcome.functionError}`;
  const failures = (outcome.payload as { batchItemFailures?: unknown } | null)?.batchItemFailures;
  if (Array.isArray(failures) && failures.length > 0)
    return `the consumer reported ${failures.length} records failed (batchItemFailures)`;
  return undefined;
}

/** Replays every on-failure object of every bucket under the prefix. Resolves with the report. */
export async function redrive(options: RedriveOptions): Promise<RedriveReport> {
  const prefix = options.prefix ?? '';
  if (prefix.startsWith(REDRIVEN_PREFIX)) {
    throw new Error(
      `--prefix must not start with ${REDRIVEN_PREFIX}: objects there were redriven already`,
    );
  }
  if (options.buckets.length === 0) throw new Error('no failed-records bucket to read');
  if (options.force && !options.kinesis)
    throw new Error('--force reads batches back from the stream: a Kinesis client is required');
  const dryRun = options.dryRun ?? false;
  const now = options.now ?? Date.now;
  const report: RedriveReport = {
    dryRun,
    buckets: [...options.buckets],
    prefix,
    objects: 0,
    records: 0,
    failed: 0,
    redriven: [],
    failures: [],
  };
  const progress = options.progress;
  progress?.start(0, { records: 0, failed: 0 });

  const redriveObject = async (bucket: string, key: string): Promise<boolean> => {
    let batch: FailedBatch;
    try {
      const object = await options.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      batch = decodeFailedBatch(object.Body ? await object.Body.transformToString('utf8') : '');
    } catch (error) {
      throw new StageError('read', `not a usable on-failure object: ${errorMessage(error)}`);
    }
    if (!batch.event && !options.force) {
      throw new StageError(
        'read',
        'the object carries no payload (only the batch position); rerun with --force to read the batch back from the stream while it still holds it',
      );
    }
    const firstArrivalMs = batch.info.firstArrivalMs;
    const entry = {
      bucket,
      key,
      consumer: batch.functionArn,
      records: batch.records,
      source: batch.event ? ('payload' as const) : ('stream' as const),
      firstArrival: firstArrivalMs === undefined ? null : new Date(firstArrivalMs).toISOString(),
      ageHours:
        firstArrivalMs === undefined
          ? null
          : Math.round(((now() - firstArrivalMs) / 3_600_000) * 10) / 10,
    };
    if (dryRun) {
      report.redriven.push({ ...entry, movedTo: null });
      report.objects++;
      report.records += batch.records;
      return false;
    }
    let event = batch.event;
    if (!event) {
      try {
        event = await eventFromStream(batch, options.kinesis!, options.streamNameOnly ?? false);
      } catch (error) {
        throw new StageError('read', errorMessage(error));
      }
    }
    let outcome: InvokeOutcome;
    try {
      outcome = await options.invoke(batch.functionArn, event);
    } catch (error) {
      throw new StageError('invoke', `${errorMessage(error)}; the object stays in place`);
    }
    const failure = failureOf(outcome);
    if (failure) throw new StageError('invoke', `${failure}; the object stays in place`);
    // The consumer took the batch: only now move the object (copy first, so it is never lost).
    const movedTo = redrivenKey(key);
    try {
      await options.s3.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: movedTo,
          CopySource: copySource(bucket, key),
        }),
      );
      await options.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (error) {
      throw new StageError(
        'move',
        `its ${event.Records.length} records were replayed, but the object could not be moved to ${movedTo} (${errorMessage(error)}); a rerun replays them again, which the consumer takes as a retry`,
      );
    }
    report.redriven.push({ ...entry, records: event.Records.length, movedTo });
    report.objects++;
    report.records += event.Records.length;
    return true;
  };

  for (const bucket of options.buckets) {
    // One listing page at a time, its keys sorted here as well (stock s3rver lists in directory
    // order). After a page that moved objects, the listing restarts from the beginning instead
    // of following the continuation token: the moved objects are gone, so a fresh listing is
    // exact. Keys already tried (the failures) are passed over.
    const attempted = new Set<string>();
    let token: string | undefined;
    for (;;) {
      const page = await options.s3.send(
        new ListObjectsV2Command({
          Bucket: bucket,
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
      progress?.setTotal(report.objects + report.failed + keys.length);
      let moved = false;
      for (const key of keys) {
        attempted.add(key);
        try {
          if (await redriveObject(bucket, key)) moved = true;
        } catch (error) {
          report.failures.push({
            bucket,
            key,
            stage: error instanceof StageError ? error.stage : 'invoke',
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
  }
  progress?.stop();
  return report;
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
  /** True when every endpoint in use is a loopback override: the emulators' fixed credentials. */
  readonly emulatorCredentials: boolean;
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
  const loopback = (endpoint: string | undefined): boolean =>
    endpoint !== undefined && isLoopbackHost(new URL(endpoint).hostname);
  const emulatorCredentials =
    loopback(s3Endpoint) &&
    (flags.dryRun || loopback(lambdaEndpoint)) &&
    (!flags.force || flags.dryRun || loopback(kinesisEndpoint));
  const region =
    flags.region ??
    file.region ??
    env.AWS_REGION ??
    env.AWS_DEFAULT_REGION ??
    (emulatorCredentials ? 'us-east-1' : undefined);
  if (!region) return '--region is required (or AWS_REGION, or --endpoints FILE with a region)';
  return {
    buckets,
    prefix: flags.prefix,
    region,
    emulatorCredentials,
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
        "Against loopback endpoints the emulators' fixed credentials are used; otherwise the " +
        'standard AWS credential chain. Exit code 1 on any failure.',
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
        ...(settings.emulatorCredentials ? { credentials: EMULATOR_CREDENTIALS } : {}),
      });
      try {
        const report = await redrive({
          s3: clients.s3,
          kinesis: clients.kinesis,
          buckets: settings.buckets,
          prefix: settings.prefix,
          invoke: lambdaInvoker({
            ...(settings.lambdaEndpoint !== undefined ? { endpoint: settings.lambdaEndpoint } : {}),
            retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: opts.maxAttempts },
          }),
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
        destroyClients(clients);
      }
    });
}
