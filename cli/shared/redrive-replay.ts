/**
 * The replay of `opentrail redrive` over ports (docs/operations.md#redrive): where the on-failure
 * objects are kept ({@link FailedRecordsStore}), how a consumer is invoked ({@link Invoker}) and
 * how a batch without payload is read back from the stream ({@link BatchReadBack}). No AWS SDK
 * here: cli/shared/redrive-adapters.ts implements the ports over S3, Kinesis and Lambda, and
 * tests use memory ones. The order of steps and the crash windows are described in
 * cli/redrive.ts.
 */
import { errorMessage } from './output';
import { decodeFailedBatch, REDRIVEN_PREFIX, redrivenKey, type FailedBatch } from './on-failure';
import type { Progress } from './progress';

/** What a consumer answered: a function error, or its response (e.g. batchItemFailures). */
export interface InvokeOutcome {
  /** Lambda's `X-Amz-Function-Error` (the function threw), with the error payload's message. */
  readonly functionError?: string;
  readonly payload: unknown;
}

/** Invokes a consumer (by function ARN) with an event, synchronously. */
export type Invoker = (functionArn: string, event: unknown) => Promise<InvokeOutcome>;

/** One page of keys of a bucket; `nextToken` when more follow. */
export interface KeyPage {
  readonly keys: readonly string[];
  readonly nextToken?: string;
}

/** Where failed-records objects are kept (an S3 bucket in production). */
export interface FailedRecordsStore {
  /** Keys under `prefix`, at most `pageSize`, from `token` on. */
  list(bucket: string, prefix: string, pageSize: number, token?: string): Promise<KeyPage>;
  /** The object's text (UTF-8). */
  read(bucket: string, key: string): Promise<string>;
  copy(bucket: string, from: string, to: string): Promise<void>;
  delete(bucket: string, key: string): Promise<void>;
}

/** Reads a batch named by position only back from the stream, as the invocation event. */
export type BatchReadBack = (batch: FailedBatch) => Promise<{ Records: unknown[] }>;

export interface ReplayOptions {
  readonly store: FailedRecordsStore;
  /** Every failed-records bucket to read. */
  readonly buckets: readonly string[];
  /** @default '' */
  readonly prefix?: string;
  readonly invoke: Invoker;
  /** Replay objects without payload from the stream (needs `readBack`). @default false */
  readonly force?: boolean;
  readonly readBack?: BatchReadBack;
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

/** Why a consumer's answer is not a success, or undefined when it is one. */
function failureOf(outcome: InvokeOutcome): string | undefined {
  if (outcome.functionError) return `the consumer failed: ${outcome.functionError}`;
  const failures = (outcome.payload as { batchItemFailures?: unknown } | null)?.batchItemFailures;
  if (Array.isArray(failures) && failures.length > 0)
    return `the consumer reported ${failures.length} records failed (batchItemFailures)`;
  return undefined;
}

/** Replays every on-failure object of every bucket under the prefix. Resolves with the report. */
export async function replayFailedBatches(options: ReplayOptions): Promise<RedriveReport> {
  const prefix = options.prefix ?? '';
  if (prefix.startsWith(REDRIVEN_PREFIX)) {
    throw new Error(
      `--prefix must not start with ${REDRIVEN_PREFIX}: objects there were redriven already`,
    );
  }
  if (options.buckets.length === 0) throw new Error('no failed-records bucket to read');
  if (options.force && !options.readBack)
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
      batch = decodeFailedBatch(await options.store.read(bucket, key));
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
        event = await options.readBack!(batch);
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
      await options.store.copy(bucket, key, movedTo);
      await options.store.delete(bucket, key);
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
      const page = await options.store.list(bucket, prefix, options.pageSize ?? 100, token);
      const keys = page.keys
        .filter((key) => !key.startsWith(REDRIVEN_PREFIX) && !attempted.has(key))
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
      if (page.nextToken === undefined) break;
      token = page.nextToken;
    }
  }
  progress?.stop();
  return report;
}
