/**
 * `opentrail put-events`: sends CloudTrail records — single records, arrays, log files, JSON
 * Lines, gzip, whole directories copied from a CloudTrail bucket, or stdin — to an opentrail
 * API's PutAuditEvents (docs/formats.md#putauditevents), one entry per record.
 *
 * Requests hold at most 100 entries and 1,048,576 bytes; a few are in flight at once; entries
 * the server throttles (or loses to a 5xx or the network) are resent with the same id and the
 * same bytes, with exponential backoff, a bounded number of times, so the server can
 * deduplicate. Reading streams one file at a time. The report names every failed record by
 * entry id, eventID and source file; the exit code is 1 when anything failed.
 */
import { Command, Option } from 'commander';
import { AuditBatcher, MAX_REQUEST_BYTES, type PendingEntry } from './shared/audit-batcher';
import {
  httpUrl,
  integerInRange,
  nonEmpty,
  outputOption,
  type OutputFormat,
} from './shared/options';
import {
  formatCounts,
  PROCESS_STREAMS,
  writeJson,
  writeLines,
  type OutputStreams,
} from './shared/output';
import { createProgress, type Progress } from './shared/progress';
import { sendPutAuditEvents, type EntryOutcome } from './shared/put-audit-events';
import {
  InputError,
  planInputs,
  readPlannedInputs,
  STDIN,
  type RecordTransform,
} from './shared/record-reader';
import {
  DEFAULT_RETRY_POLICY,
  realTimer,
  retryFailedItems,
  type RetryPolicy,
} from './shared/retry';
import { planRebase } from './shared/rebase-time';
import { chooseSigner, UNSIGNED, type RequestSigner, type SignMode } from './shared/sigv4';

// Moved to cli/shared (commands import shared modules, never each other); kept here for callers.
export { chooseSigner } from './shared/sigv4';
export type { RecordTransform } from './shared/record-reader';

export interface PutEventsOptions {
  /** Files, directories, or `-` (stdin), in the order given. */
  readonly inputs: readonly string[];
  /** API base URL; `/PutAuditEvents` is appended. */
  readonly endpoint: string;
  readonly channelArn?: string;
  /** @default - unsigned */
  readonly signer?: RequestSigner;
  /** @default 4 */
  readonly concurrency?: number;
  /** @default 100 */
  readonly batchSize?: number;
  /** @default 1,048,576 (tests lower it) */
  readonly maxRequestBytes?: number;
  /** @default DEFAULT_RETRY_POLICY */
  readonly retry?: RetryPolicy;
  readonly transform?: RecordTransform;
  /** @default process.stdin */
  readonly stdin?: NodeJS.ReadableStream;
  /** @default - none */
  readonly progress?: Progress;
  /** Jitter source. @default Math.random */
  readonly random?: () => number;
}

/** One record (or whole file) that did not make it. */
export interface PutEventsFailure {
  /** The entry id it was sent under; null when it was never sent. */
  readonly id: string | null;
  readonly eventID: string | null;
  readonly source: string;
  /** Where in the source (`Records[3]`, `line 7`); null for a whole file. */
  readonly position: string | null;
  readonly errorCode: string;
  readonly errorMessage: string;
  /** Requests that carried it (0: never sent). */
  readonly attempts: number;
}

export interface PutEventsReport {
  /** Entries the server accepted. */
  accepted: number;
  /** Failures: records, plus whole files that could not be read as records. */
  failed: number;
  /** Entries sent again after a retryable failure (each resend counted once). */
  retried: number;
  /** HTTP requests made. */
  requests: number;
  /** Files read (stdin counts as one). */
  files: number;
  skipped: { total: number; byReason: Record<string, number> };
  failures: PutEventsFailure[];
}

/** Reads the inputs and sends every record; resolves with the report (never rejects for a record). */
export async function putEvents(options: PutEventsOptions): Promise<PutEventsReport> {
  const policy = options.retry ?? DEFAULT_RETRY_POLICY;
  const concurrency = options.concurrency ?? 4;
  const progress = options.progress;
  const report: PutEventsReport = {
    accepted: 0,
    failed: 0,
    retried: 0,
    requests: 0,
    files: 0,
    skipped: { total: 0, byReason: {} },
    failures: [],
  };
  const fail = (failure: PutEventsFailure): void => {
    report.failures.push(failure);
    report.failed++;
  };
  const failEntry = (
    entry: PendingEntry,
    errorCode: string,
    errorMessage: string,
    attempts: number,
  ): void =>
    fail({
      id: entry.event.id,
      eventID: entry.eventID ?? null,
      source: entry.source,
      position: entry.position,
      errorCode,
      errorMessage,
      attempts,
    });
  const showCounts = (): void =>
    progress?.update({
      accepted: report.accepted,
      failed: report.failed,
      skipped: report.skipped.total,
    });

  const plan = await planInputs(options.inputs);
  progress?.start(plan.files.length, { accepted: 0, failed: 0, skipped: 0 });

  const sendWithRetries = async (entries: readonly PendingEntry[]): Promise<void> => {
    /** The last retryable outcome of each entry, for those the attempts run out on. */
    const lastOutcome = new Map<PendingEntry, { errorCode: string; errorMessage: string }>();
    // Only this batch's own entries are resent together, so their ids stay unique.
    const { unfinished, attempts, resent } = await retryFailedItems(
      entries,
      async (pending, attempt) => {
        report.requests++;
        const outcomes = await sendPutAuditEvents(
          {
            endpoint: options.endpoint,
            ...(options.channelArn !== undefined ? { channelArn: options.channelArn } : {}),
            signer: options.signer ?? UNSIGNED,
          },
          pending,
        );
        const again: PendingEntry[] = [];
        for (const entry of pending) {
          const outcome: EntryOutcome = outcomes.get(entry.event.id) ?? {
            kind: 'retry',
            errorCode: 'MissingResult',
            errorMessage: 'the response did not report this entry',
          };
          if (outcome.kind === 'accepted') report.accepted++;
          else if (outcome.kind === 'failed')
            failEntry(entry, outcome.errorCode, outcome.errorMessage, attempt);
          else {
            again.push(entry);
            lastOutcome.set(entry, outcome);
          }
        }
        showCounts();
        return again;
      },
      policy,
      realTimer(options.random),
    );
    report.retried += resent;
    for (const entry of unfinished) {
      const outcome = lastOutcome.get(entry)!;
      failEntry(
        entry,
        outcome.errorCode,
        `${outcome.errorMessage} (gave up after ${attempts} attempts)`,
        attempts,
      );
    }
    if (unfinished.length > 0) showCounts();
  };

  // At most `concurrency` batches in flight; reading waits for a free slot (backpressure), so
  // memory holds the current file plus the batches in flight.
  const inFlight = new Set<Promise<void>>();
  const launch = async (entries: readonly PendingEntry[]): Promise<void> => {
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    const task: Promise<void> = sendWithRetries(entries).finally(() => inFlight.delete(task));
    inFlight.add(task);
  };

  const batcher = new AuditBatcher({
    maxEntries: options.batchSize ?? 100,
    maxBytes: options.maxRequestBytes ?? MAX_REQUEST_BYTES,
  });
  let ordinal = 0;
  const skip = (reason: string, count: number): void => {
    report.skipped.byReason[reason] = (report.skipped.byReason[reason] ?? 0) + count;
    report.skipped.total += count;
  };

  for await (const event of readPlannedInputs(
    plan,
    options.stdin ? { stdin: options.stdin } : {},
  )) {
    switch (event.kind) {
      case 'record': {
        ordinal++;
        const record = options.transform ? options.transform(event.record) : event.record;
        const eventID = typeof record.value.eventID === 'string' ? record.value.eventID : undefined;
        const added = batcher.add(
          {
            source: record.source,
            position: record.position,
            text: record.text,
            ...(eventID !== undefined ? { eventID } : {}),
          },
          ordinal,
        );
        if (added.tooLarge) {
          fail({
            id: null,
            eventID: eventID ?? null,
            source: record.source,
            position: record.position,
            errorCode: 'EntryTooLarge',
            errorMessage: `the record makes a ${added.tooLarge.bodyBytes}-byte request on its own; a PutAuditEvents request holds at most ${options.maxRequestBytes ?? MAX_REQUEST_BYTES} bytes (not sent)`,
            attempts: 0,
          });
        }
        if (added.flushed) await launch(added.flushed.entries);
        break;
      }
      case 'invalid-record':
        ordinal++;
        fail({
          id: null,
          eventID: event.eventID ?? null,
          source: event.source,
          position: event.position,
          errorCode: 'InvalidData',
          errorMessage: `${event.errorMessage} (not sent)`,
          attempts: 0,
        });
        break;
      case 'skip':
        skip(event.reason, event.count);
        break;
      case 'file-error':
        fail({
          id: null,
          eventID: null,
          source: event.source,
          position: null,
          errorCode: event.errorCode,
          errorMessage: event.errorMessage,
          attempts: 0,
        });
        break;
      case 'file-done':
        report.files++;
        progress?.increment(1, {
          accepted: report.accepted,
          failed: report.failed,
          skipped: report.skipped.total,
        });
        break;
    }
  }
  const last = batcher.flush();
  if (last) await launch(last.entries);
  await Promise.all(inFlight);
  showCounts();
  progress?.stop();
  return report;
}

/** The report as text: every failure, then the counts. */
export function formatReport(report: PutEventsReport): string[] {
  const lines = report.failures.map(
    (f) =>
      `FAILED id=${f.id ?? '-'} eventID=${f.eventID ?? '-'} source=${f.source}${f.position ? ` (${f.position})` : ''} ${f.errorCode}: ${f.errorMessage}`,
  );
  const reasons = formatCounts(report.skipped.byReason);
  lines.push(
    `accepted: ${report.accepted}`,
    `failed: ${report.failed}`,
    `skipped: ${report.skipped.total}${reasons ? ` (${reasons})` : ''}`,
    `retried: ${report.retried}`,
    `files: ${report.files}, requests: ${report.requests}`,
  );
  return lines;
}

interface CliOptions {
  readonly endpoint: string;
  readonly channelArn?: string;
  readonly region?: string;
  readonly sign: SignMode;
  readonly concurrency: number;
  readonly batchSize: number;
  readonly maxAttempts: number;
  readonly output: OutputFormat;
  readonly rebaseTime?: boolean;
}

/** Registers `put-events` on the CLI. */
export function register(program: Command, streams: OutputStreams = PROCESS_STREAMS): void {
  program
    .command('put-events')
    .summary('send CloudTrail records (files, directories, stdin) to PutAuditEvents')
    .description(
      'Send CloudTrail records to an opentrail API (POST <endpoint>/PutAuditEvents), one entry per record.\n\n' +
        'Inputs: a record object, an array of records, a log file {"Records":[...]}, JSON Lines, any of ' +
        'them gzip-compressed (.json.gz); a directory is walked recursively in sorted path order (as copied ' +
        'from a CloudTrail bucket); - reads stdin. Digest files, Insights files and records, and files that ' +
        'are not JSON are skipped and counted by reason. Throttled, 5xx and network failures are retried ' +
        'with exponential backoff and jitter, reusing the same ids and bytes. A record replayed from ' +
        "opentrail's own log files loses its opentrailProvenance stamp: the server stamps the replaying " +
        'caller instead. Exit code 1 when anything failed (skips alone are not failures).',
    )
    .argument('[inputs...]', 'FILE, DIR, or - for stdin (default: - when stdin is not a terminal)')
    .addOption(
      new Option(
        '--endpoint <url>',
        'API base URL, e.g. the "api" of <data-dir>/endpoints.json; /PutAuditEvents is appended',
      )
        .argParser(httpUrl)
        .makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--channel-arn <arn>',
        "channel, sent as the channelArn query parameter (default: none: the server's default channel)",
      ).argParser(nonEmpty),
    )
    .addOption(
      new Option(
        '--region <region>',
        'region for SigV4 signing (default: from the endpoint host, else AWS_REGION or AWS_DEFAULT_REGION)',
      ).argParser(nonEmpty),
    )
    .addOption(
      new Option(
        '--sign <mode>',
        'SigV4-sign requests for execute-api with the standard AWS credential chain; auto: unless the endpoint host is loopback',
      )
        .choices(['auto', 'always', 'never'])
        .default('auto'),
    )
    .addOption(
      new Option('--concurrency <n>', 'requests in flight at once (1-32)')
        .argParser(integerInRange(1, 32))
        .default(4),
    )
    .addOption(
      new Option('--batch-size <n>', 'entries per request (1-100)')
        .argParser(integerInRange(1, 100))
        .default(100),
    )
    .addOption(
      new Option(
        '--max-attempts <n>',
        'attempts per entry on Throttling, InternalFailure, 429, 5xx and network errors (1-20)',
      )
        .argParser(integerInRange(1, 20))
        .default(DEFAULT_RETRY_POLICY.maxAttempts),
    )
    .option(
      '--rebase-time',
      'shift every eventTime so the newest event is now, keeping the gaps between events (reads the inputs twice)',
    )
    .addOption(outputOption())
    .action(async (inputArgs: string[], opts: CliOptions, command: Command) => {
      let inputs = inputArgs;
      if (inputs.length === 0) {
        if (process.stdin.isTTY)
          command.error('error: no input: pass FILE, DIR, or - to read records from stdin');
        inputs = [STDIN];
      }
      if (inputs.filter((input) => input === STDIN).length > 1)
        command.error('error: - (stdin) may be given only once');
      const signer = chooseSigner(opts.endpoint, opts.sign, opts.region);
      if (typeof signer === 'string') command.error(`error: ${signer}`);
      let report: PutEventsReport;
      try {
        const rebase = opts.rebaseTime ? await planRebase(inputs, Date.now()) : undefined;
        report = await putEvents({
          ...(rebase ? { transform: rebase.transform } : {}),
          ...(rebase?.stdin ? { stdin: rebase.stdin } : {}),
          inputs,
          endpoint: opts.endpoint,
          ...(opts.channelArn !== undefined ? { channelArn: opts.channelArn } : {}),
          signer,
          concurrency: opts.concurrency,
          batchSize: opts.batchSize,
          retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: opts.maxAttempts },
          progress: createProgress(
            'put-events [{bar}] {value}/{total} files | {accepted} accepted | {failed} failed | {skipped} skipped',
          ),
        });
      } catch (error) {
        if (error instanceof InputError) command.error(`error: ${error.message}`);
        throw error;
      }
      if (opts.output === 'json') writeJson(streams, report);
      else writeLines(streams, formatReport(report));
      if (report.failed > 0) process.exitCode = 1;
    });
}
