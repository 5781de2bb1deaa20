/**
 * `opentrail validate-logs`: the AWS CLI's `cloudtrail validate-logs` for opentrail's digests
 * (docs/formats.md#what-validation-checks, lambda/core/digest-validate.ts), against S3 (or the embedded s3rver with
 * --s3-endpoint) or a downloaded copy (--local-dir). Public keys come from files (--public-key)
 * or from the API's ListPublicKeys (--endpoint), with their validity windows. What the bucket
 * cannot tell — where each chain begins and where its head is — comes from the API's
 * GetTrailStatus (--endpoint; DescribeTrails finds the trails when none is named) or from
 * --expect, so deleted newest digests, or all of them, are found (see
 * docs/guarantees.md#tamper-evidence). Prints the AWS CLI's lines and summary; exit 1 on
 * anything invalid or missing.
 */
import { readFile } from 'node:fs/promises';
import { createPublicKey } from 'node:crypto';
import {
  DescribeTrailsCommand,
  GetTrailStatusCommand,
  ListPublicKeysCommand,
  type CloudTrailClient,
  type DescribeTrailsCommandOutput,
  type ListPublicKeysCommandOutput,
} from '@aws-sdk/client-cloudtrail';
import { Command, Option } from 'commander';
import { createClients, destroyClients, EMULATOR_CREDENTIALS } from '../lambda/adapters/clients';
import { S3ObjectReader } from '../lambda/adapters/s3-object-reader';
import { fingerprintOfPublicKey, formatDigestTime } from '../lambda/core/digest-format';
import {
  DEFAULT_DIGEST_GRACE_MS,
  formatResult,
  validateLogs,
  type ChainExpectation,
  type ValidationResult,
  type ValidationSummary,
  type WindowedPublicKey,
} from '../lambda/core/digest-validate';
import { FAR_FUTURE_EPOCH_SECONDS } from '../lambda/core/public-keys';
import type { DigestChainStatus, TrailStatus } from '../lambda/core/trail-status';
import type { ObjectReader } from '../lambda/core/ports';
import { DEFAULT_DIGEST_PERIOD_SECONDS } from '../lambda/core/config';
import { isLoopbackHost } from './shared/endpoint';
import { LocalDirReader } from './shared/local-dir-reader';
import {
  httpUrl,
  integerInRange,
  nonEmpty,
  outputOption,
  type OutputFormat,
} from './shared/options';
import { errorMessage, PROCESS_STREAMS, writeJson, type OutputStreams } from './shared/output';
import { createProgress } from './shared/progress';
import {
  cloudTrailApiClient,
  keepRawAnswer,
  rawJson,
  type RawAnswer,
} from './shared/cloudtrail-api';

export interface ValidateLogsFlags {
  readonly trailArn?: string;
  readonly trailName?: string;
  readonly accountId?: string;
  readonly region?: string;
  readonly organizationId?: string;
  readonly startTime: string;
  readonly endTime?: string;
  readonly s3Bucket?: string;
  readonly s3Prefix?: string;
  readonly verbose?: boolean;
  readonly publicKey?: readonly string[];
  readonly endpoint?: string;
  readonly sign?: 'auto' | 'always' | 'never';
  readonly s3Endpoint?: string;
  readonly localDir?: string;
  /** An endpoints.json of the embedded runtime: api, s3 and bucket, unless flags say otherwise. */
  readonly endpoints?: string;
  readonly concurrency?: number;
  readonly output?: OutputFormat;
  /** `TRAIL,ACCOUNT,REGION,FIRST` (repeatable): a chain and the start of its first period. */
  readonly expect?: readonly string[];
  /** Regular digest period in seconds. */
  readonly digestPeriod?: number;
  /** Seconds after a period's end before its digest counts as missing. */
  readonly grace?: number;
}

export interface ValidateLogsSettings {
  readonly trailLabel: string;
  readonly trailName?: string;
  readonly homeRegion?: string;
  readonly account?: string;
  readonly region?: string;
  readonly organizationId?: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly bucket: string;
  readonly prefix?: string;
  readonly publicKeyFiles: readonly string[];
  readonly endpoint?: string;
  readonly s3Endpoint?: string;
  readonly localDir?: string;
  /** Chains known from --expect. */
  readonly expectations: readonly ChainExpectation[];
  /** Flags or endpoints.json; absent: GetTrailStatus's, else the defaults. */
  readonly periodSeconds?: number;
  readonly graceSeconds?: number;
}

const TRAIL_ARN = /^arn:[^:]+:cloudtrail:([a-z0-9-]+):(\d{12}):trail\/(.+)$/;

/** A time flag: ISO 8601 (UTC unless it names a zone), a date, or epoch seconds. */
export function parseTimeFlag(value: string): number {
  const text = value.trim();
  if (/^\d{9,11}$/.test(text)) return Number(text) * 1000;
  const zoned = /T.*(?:Z|[+-]\d{2}:?\d{2})$/i.test(text) || !text.includes('T') ? text : `${text}Z`;
  const ms = Date.parse(zoned);
  if (Number.isNaN(ms)) throw new Error(`Unable to parse date value: ${value}`);
  return ms;
}

/** One `--expect TRAIL,ACCOUNT,REGION,FIRST`; an error message names the part and the rule. */
export function parseExpectation(
  value: string,
  homeRegion: string | undefined,
): ChainExpectation | string {
  const parts = value.split(',').map((part) => part.trim());
  if (parts.length !== 4)
    return `--expect ${value}: must be TRAIL,ACCOUNT,REGION,FIRST (four comma-separated parts)`;
  const [trailName, account, region, first] = parts as [string, string, string, string];
  if (trailName === '') return `--expect ${value}: TRAIL must not be empty`;
  if (!/^\d{12}$/.test(account)) return `--expect ${value}: ACCOUNT must be 12 digits`;
  if (!/^[a-z0-9-]+$/.test(region))
    return `--expect ${value}: REGION must be a region name such as us-east-1`;
  let firstStartMs: number;
  try {
    firstStartMs = parseTimeFlag(first);
  } catch {
    return `--expect ${value}: FIRST must be a time (ISO 8601 or epoch seconds), the start of the chain's first digest period`;
  }
  return {
    trailName,
    account,
    region,
    firstStartMs,
    ...(homeRegion !== undefined ? { homeRegion } : {}),
  };
}

/** Checks and merges the flags (and the endpoints file); an error message names the flag. Pure. */
export function resolveValidateSettings(
  flags: ValidateLogsFlags,
  file: { api?: string; s3?: string; bucket?: string; digestPeriodSeconds?: string },
  nowMs: number,
): ValidateLogsSettings | string {
  let trailName = flags.trailName;
  let homeRegion: string | undefined;
  let account = flags.accountId;
  if (flags.trailArn !== undefined) {
    const match = TRAIL_ARN.exec(flags.trailArn);
    if (!match) return `Invalid trail ARN provided: ${flags.trailArn}`;
    homeRegion = match[1];
    account ??= match[2];
    if (trailName !== undefined && trailName !== match[3])
      return `--trail-name ${trailName} differs from the name in --trail-arn (${match[3]})`;
    trailName = match[3];
  }
  if (account !== undefined && !/^\d{12}$/.test(account))
    return `--account-id must be 12 digits, got ${account}`;
  let startMs: number;
  let endMs: number;
  try {
    startMs = parseTimeFlag(flags.startTime);
    endMs = flags.endTime !== undefined ? parseTimeFlag(flags.endTime) : nowMs;
  } catch (error) {
    return errorMessage(error);
  }
  if (startMs > endMs) return 'Invalid time range specified: start-time must occur before end-time';
  const bucket = flags.s3Bucket ?? file.bucket;
  if (!bucket) return '--s3-bucket is required (opentrail has no DescribeTrails to look it up)';
  const endpoint = flags.endpoint ?? file.api;
  const publicKeyFiles = flags.publicKey ?? [];
  if (publicKeyFiles.length === 0 && endpoint === undefined)
    return 'public keys are needed: --public-key FILE (repeatable) or --endpoint URL (ListPublicKeys)';
  const s3Endpoint = flags.s3Endpoint ?? (flags.localDir === undefined ? file.s3 : undefined);
  if (flags.localDir !== undefined && flags.s3Endpoint !== undefined)
    return '--local-dir and --s3-endpoint exclude each other';
  const prefix = flags.s3Prefix?.replace(/^\/+|\/+$/g, '');
  const expectations: ChainExpectation[] = [];
  for (const value of flags.expect ?? []) {
    const expectation = parseExpectation(value, homeRegion);
    if (typeof expectation === 'string') return expectation;
    expectations.push(expectation);
  }
  const filePeriod = Number(file.digestPeriodSeconds);
  const periodSeconds =
    flags.digestPeriod ?? (Number.isInteger(filePeriod) && filePeriod > 0 ? filePeriod : undefined);
  const trailLabel =
    flags.trailArn ??
    (trailName !== undefined
      ? `${trailName}${account !== undefined ? ` (account ${account})` : ''}`
      : 'all trails');
  return {
    trailLabel,
    startMs,
    endMs,
    bucket,
    publicKeyFiles,
    expectations,
    ...(periodSeconds !== undefined ? { periodSeconds } : {}),
    ...(flags.grace !== undefined ? { graceSeconds: flags.grace } : {}),
    ...(trailName !== undefined ? { trailName } : {}),
    ...(homeRegion !== undefined ? { homeRegion } : {}),
    ...(account !== undefined ? { account } : {}),
    ...(flags.region !== undefined ? { region: flags.region } : {}),
    ...(flags.organizationId !== undefined ? { organizationId: flags.organizationId } : {}),
    ...(prefix ? { prefix } : {}),
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(s3Endpoint !== undefined ? { s3Endpoint } : {}),
    ...(flags.localDir !== undefined ? { localDir: flags.localDir } : {}),
  };
}

/** A public key file: PEM (PKCS#1 or SPKI, or a private key) or DER (PKCS#1 or SPKI). */
export function readPublicKey(bytes: Buffer, name: string): Buffer {
  try {
    if (bytes.includes('-----BEGIN')) {
      return createPublicKey(bytes.toString('utf8')).export({ type: 'pkcs1', format: 'der' });
    }
    fingerprintOfPublicKey(bytes);
    return bytes;
  } catch (error) {
    throw new Error(`--public-key ${name}: not an RSA public key (${errorMessage(error)})`);
  }
}

/**
 * Sends one SDK command to the opentrail API, keeping its raw answer; an error answer is thrown as
 * `OPERATION ENDPOINT: STATUS: message` (the API's own message, else the start of the body).
 */
async function callApi<Output>(
  client: CloudTrailClient,
  endpoint: string,
  operation: string,
  command: Parameters<typeof keepRawAnswer>[0],
): Promise<{ output: Output; raw: RawAnswer }> {
  const raw = keepRawAnswer(command);
  try {
    const output = (await client.send(command as never)) as Output;
    return { output, raw };
  } catch (error) {
    if (raw.status === undefined) throw error;
    const body = raw.body ?? '';
    const message = rawJson(raw)?.message;
    throw new Error(
      `${operation} ${endpoint}: ${raw.status}: ${typeof message === 'string' ? message : body.slice(0, 200)}`,
    );
  }
}

/**
 * ListPublicKeys (all pages) → DER keys by fingerprint (computed, not trusted from the answer),
 * each with its validity window (a ValidityEndTime of 9999-12-31 means none).
 */
export async function listPublicKeys(
  client: CloudTrailClient,
  endpoint: string,
  startMs: number,
  endMs: number,
): Promise<Map<string, WindowedPublicKey>> {
  const keys = new Map<string, WindowedPublicKey>();
  let nextToken: string | undefined;
  do {
    const { output } = await callApi<ListPublicKeysCommandOutput>(
      client,
      endpoint,
      'ListPublicKeys',
      new ListPublicKeysCommand({
        StartTime: new Date(Math.floor(startMs / 1000) * 1000),
        EndTime: new Date(Math.ceil(endMs / 1000) * 1000),
        ...(nextToken !== undefined ? { NextToken: nextToken } : {}),
      }),
    );
    for (const entry of output.PublicKeyList ?? []) {
      if (!entry.Value) continue;
      const der = Buffer.from(entry.Value);
      const until = entry.ValidityEndTime?.getTime();
      keys.set(fingerprintOfPublicKey(der), {
        der,
        validFromMs: entry.ValidityStartTime?.getTime() ?? 0,
        ...(until !== undefined && until < FAR_FUTURE_EPOCH_SECONDS * 1000
          ? { validUntilMs: until }
          : {}),
      });
    }
    nextToken = output.NextToken || undefined;
  } while (nextToken);
  return keys;
}

/** What the API knows of the chains to validate: GetTrailStatus per trail. */
export interface ChainStatus {
  readonly expectations: ChainExpectation[];
  /** Trails whose status carried no chain information (a CloudTrail-only answer). */
  readonly unknown: string[];
  readonly periodSeconds?: number;
  readonly graceSeconds?: number;
}

/**
 * GetTrailStatus for the named trail, or for every trail DescribeTrails lists with log-file
 * validation on, in this bucket and under this prefix; chains filtered by account and region.
 */
export async function fetchChainStatus(
  client: CloudTrailClient,
  endpoint: string,
  settings: Pick<ValidateLogsSettings, 'trailName' | 'bucket' | 'prefix' | 'account' | 'region'>,
): Promise<ChainStatus> {
  let names: string[];
  if (settings.trailName !== undefined) {
    names = [settings.trailName];
  } else {
    const { output: described } = await callApi<DescribeTrailsCommandOutput>(
      client,
      endpoint,
      'DescribeTrails',
      new DescribeTrailsCommand({}),
    );
    names = (described.trailList ?? [])
      .filter(
        (t) =>
          t.LogFileValidationEnabled &&
          t.S3BucketName === settings.bucket &&
          (t.S3KeyPrefix ?? '') === (settings.prefix ?? ''),
      )
      .flatMap((t) => (t.Name ? [t.Name] : []));
  }
  const result: {
    expectations: ChainExpectation[];
    unknown: string[];
    periodSeconds?: number;
    graceSeconds?: number;
  } = { expectations: [], unknown: [] };
  for (const name of names) {
    // The SDK's GetTrailStatus output has no Opentrail* members (its deserializer drops what the
    // CloudTrail model does not define): they are read from the raw body of the same call.
    const { raw } = await callApi(
      client,
      endpoint,
      'GetTrailStatus',
      new GetTrailStatusCommand({ Name: name }),
    );
    const status = (rawJson(raw) ?? {}) as Partial<TrailStatus>;
    const chains: unknown = status.OpentrailDigestChains;
    if (!Array.isArray(chains)) {
      result.unknown.push(name);
      continue;
    }
    if (typeof status.OpentrailDigestPeriodSeconds === 'number')
      result.periodSeconds = status.OpentrailDigestPeriodSeconds;
    if (typeof status.OpentrailDigestGraceSeconds === 'number')
      result.graceSeconds = status.OpentrailDigestGraceSeconds;
    for (const chain of chains as DigestChainStatus[]) {
      if (typeof chain.FirstDigestStartTime !== 'number') continue;
      if (settings.account !== undefined && chain.AccountId !== settings.account) continue;
      if (settings.region !== undefined && chain.Region !== settings.region) continue;
      result.expectations.push({
        trailName: name,
        account: chain.AccountId,
        region: chain.Region,
        homeRegion: chain.HomeRegion,
        firstStartMs: chain.FirstDigestStartTime * 1000,
        ...(chain.LatestDigestEndTime !== undefined
          ? { headEndMs: chain.LatestDigestEndTime * 1000 }
          : {}),
        ...(Array.isArray(chain.EarlyClosedDigestEndTimes)
          ? { earlyClosedEndsMs: chain.EarlyClosedDigestEndTimes.map((t) => t * 1000) }
          : {}),
      });
    }
  }
  return result;
}

/** The AWS CLI's summary lines. */
export function formatSummary(summary: ValidationSummary): string[] {
  const lines = [
    `Results requested for ${formatDigestTime(summary.startMs)} to ${formatDigestTime(summary.endMs)}`,
  ];
  const digestTotal = summary.digests.valid + summary.digests.invalid;
  if (digestTotal === 0) return [...lines, 'No digests found'];
  lines.push(
    summary.foundStartMs !== undefined && summary.foundEndMs !== undefined
      ? `Results found for ${formatDigestTime(summary.foundStartMs)} to ${formatDigestTime(summary.foundEndMs)}:`
      : 'No valid digests found in range',
  );
  lines.push('');
  const ratio = (counts: { valid: number; invalid: number }, name: string): string => {
    const total = counts.valid + counts.invalid;
    return `${counts.valid}/${total} ${name} files valid${counts.invalid > 0 ? `, ${counts.invalid}/${total} ${name} files INVALID` : ''}`;
  };
  lines.push(ratio(summary.digests, 'digest'));
  if (summary.logs.valid + summary.logs.invalid > 0) lines.push(ratio(summary.logs, 'log'));
  return lines;
}

/** Runs the validation as the command does; resolves with the exit code. */
export async function runValidateLogs(
  settings: ValidateLogsSettings,
  options: {
    readonly verbose: boolean;
    readonly output: OutputFormat;
    readonly concurrency: number;
    readonly sign: 'auto' | 'always' | 'never';
    readonly nowMs: number;
    readonly reader?: ObjectReader;
  },
  out: OutputStreams = PROCESS_STREAMS,
): Promise<number> {
  // A key file has no window: any digest time is accepted under it.
  const publicKeys = new Map<string, Buffer | WindowedPublicKey>();
  for (const file of settings.publicKeyFiles) {
    const der = readPublicKey(await readFile(file), file);
    publicKeys.set(fingerprintOfPublicKey(der), der);
  }
  const expectations = new Map<string, ChainExpectation>();
  const keyOf = (e: ChainExpectation): string => JSON.stringify([e.trailName, e.account, e.region]);
  let periodSeconds = settings.periodSeconds;
  let graceSeconds = settings.graceSeconds;
  let unknownTrails: string[] = [];
  if (settings.endpoint !== undefined) {
    const client = cloudTrailApiClient(settings.endpoint, options.sign, settings.homeRegion);
    if (typeof client === 'string') throw new Error(client);
    try {
      const status = await fetchChainStatus(client, settings.endpoint, settings);
      for (const expectation of status.expectations)
        expectations.set(keyOf(expectation), expectation);
      unknownTrails = status.unknown;
      periodSeconds ??= status.periodSeconds;
      graceSeconds ??= status.graceSeconds;
      for (const [fingerprint, der] of await listPublicKeys(
        client,
        settings.endpoint,
        settings.startMs,
        Math.min(settings.endMs, options.nowMs) + 3_600_000,
      ))
        if (!publicKeys.has(fingerprint)) publicKeys.set(fingerprint, der);
    } finally {
      client.destroy();
    }
  }
  // --expect wins over what the API says of the same chain.
  for (const expectation of settings.expectations)
    expectations.set(keyOf(expectation), expectation);
  if (publicKeys.size === 0) {
    throw new Error(
      `No public keys found between ${formatDigestTime(settings.startMs)} and ${formatDigestTime(settings.endMs)}`,
    );
  }

  let clients: ReturnType<typeof createClients> | undefined;
  let reader = options.reader;
  if (!reader && settings.localDir !== undefined) reader = new LocalDirReader(settings.localDir);
  if (!reader) {
    const loopback =
      settings.s3Endpoint !== undefined && isLoopbackHost(new URL(settings.s3Endpoint).hostname);
    clients = createClients({
      region:
        settings.homeRegion ??
        process.env.AWS_REGION ??
        process.env.AWS_DEFAULT_REGION ??
        'us-east-1',
      ...(settings.s3Endpoint !== undefined ? { s3Endpoint: settings.s3Endpoint } : {}),
      ...(loopback ? { credentials: EMULATOR_CREDENTIALS } : {}),
    });
    reader = new S3ObjectReader(clients.s3);
  }

  const text = options.output === 'text';
  const invalid: ValidationResult[] = [];
  const valid: ValidationResult[] = [];
  // The AWS CLI's spacing: an INVALID line goes to stderr with a blank line after it (and one
  // before it when a verbose line came last).
  let lastDoubleSpaced = true;
  if (text) {
    out.stdout.write(
      `Validating log files for trail ${settings.trailLabel} between ${formatDigestTime(settings.startMs)} and ${formatDigestTime(settings.endMs)}\n\n`,
    );
    if (expectations.size === 0 || unknownTrails.length > 0) {
      out.stdout.write(
        `Not checked: where ${unknownTrails.length > 0 ? `the chains of ${unknownTrails.join(', ')}` : 'each chain'} begins and ends (no GetTrailStatus from --endpoint, no --expect), so deleted newest digests, or all of them, go unnoticed\n\n`,
      );
    }
  }
  const progress = createProgress(
    'validate-logs [{bar}] {value}/{total} files | {mb} MB uncompressed',
  );
  let started = false;
  let shown = 0;
  try {
    const summary = await validateLogs({
      reader,
      bucket: settings.bucket,
      ...(settings.prefix !== undefined ? { prefix: settings.prefix } : {}),
      ...(settings.organizationId !== undefined ? { organizationId: settings.organizationId } : {}),
      ...(settings.account !== undefined ? { accounts: [settings.account] } : {}),
      ...(settings.region !== undefined ? { regions: [settings.region] } : {}),
      ...(settings.trailName !== undefined ? { trailName: settings.trailName } : {}),
      ...(settings.homeRegion !== undefined ? { homeRegion: settings.homeRegion } : {}),
      startMs: settings.startMs,
      endMs: settings.endMs,
      nowMs: options.nowMs,
      publicKeys,
      expectations: [...expectations.values()],
      periodMs: (periodSeconds ?? DEFAULT_DIGEST_PERIOD_SECONDS) * 1000,
      graceMs: graceSeconds !== undefined ? graceSeconds * 1000 : DEFAULT_DIGEST_GRACE_MS,
      concurrency: options.concurrency,
      onProgress: (p) => {
        const payload = { mb: (p.uncompressedBytes / 1e6).toFixed(1) };
        if (!started) {
          progress.start(p.total, payload);
          started = true;
        }
        progress.setTotal(p.total);
        progress.increment(p.done - shown, payload);
        shown = p.done;
      },
      onResult: (result) => {
        if (result.valid) {
          if (options.verbose) valid.push(result);
          if (text && options.verbose) {
            lastDoubleSpaced = false;
            out.stdout.write(`${formatResult(result)}\n`);
          }
        } else {
          invalid.push(result);
          if (text) {
            out.stderr.write(`${lastDoubleSpaced ? '' : '\n'}${formatResult(result)}\n\n`);
            lastDoubleSpaced = true;
          }
        }
      },
    });
    progress.stop();
    if (text) {
      if (!lastDoubleSpaced) out.stdout.write('\n');
      out.stdout.write(`${formatSummary(summary).join('\n')}\n\n`);
    } else {
      writeJson(out, {
        trail: settings.trailLabel,
        requested: {
          start: formatDigestTime(summary.startMs),
          end: formatDigestTime(summary.endMs),
        },
        found:
          summary.foundStartMs !== undefined && summary.foundEndMs !== undefined
            ? {
                start: formatDigestTime(summary.foundStartMs),
                end: formatDigestTime(summary.foundEndMs),
              }
            : null,
        digests: { ...summary.digests, total: summary.digests.valid + summary.digests.invalid },
        logs: { ...summary.logs, total: summary.logs.valid + summary.logs.invalid },
        chains: summary.chains,
        chainsExpected: expectations.size,
        uncompressedBytes: summary.uncompressedBytes,
        invalid: invalid.map((r) => ({ ...r, line: formatResult(r) })),
        ...(options.verbose ? { valid: valid.map((r) => ({ ...r, line: formatResult(r) })) } : {}),
      });
    }
    return summary.digests.invalid > 0 || summary.logs.invalid > 0 ? 1 : 0;
  } finally {
    progress.stop();
    if (clients) destroyClients(clients);
  }
}

interface CliOptions extends ValidateLogsFlags {
  readonly verbose: boolean;
  readonly publicKey: string[];
  readonly sign: 'auto' | 'always' | 'never';
  readonly concurrency: number;
  readonly output: OutputFormat;
  readonly expect: string[];
}

async function readEndpointsFile(
  path: string,
): Promise<{ api?: string; s3?: string; bucket?: string; digestPeriodSeconds?: string }> {
  const document = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  const pick = (name: string): Record<string, string> =>
    typeof document[name] === 'string' ? { [name]: document[name] } : {};
  return { ...pick('api'), ...pick('s3'), ...pick('bucket'), ...pick('digestPeriodSeconds') };
}

/** Registers `validate-logs` on the CLI. */
export function register(program: Command, streams: OutputStreams = PROCESS_STREAMS): void {
  program
    .command('validate-logs')
    .summary('validate log files and digest files (the AWS CLI validate-logs, and more)')
    .description(
      "Validates a trail's log files against its signed digest chain, as `aws cloudtrail validate-logs` " +
        "does: each digest file's signature and location, each log file's SHA-256. It also checks what " +
        'the AWS CLI does not: that each digest chains to the real previous digest (hash and signature), ' +
        'that no digest is missing — each missing one on its own line, `INVALID: not found` — including ' +
        "the newest ones and all of them, from each chain's first period to the newest due one (ended more " +
        'than the grace ago, or at or before the head the signer recorded), learnt from GetTrailStatus ' +
        '(--endpoint) or --expect; that no log file in a due period is left out of every digest; that each ' +
        "digest's end lies inside its key's validity window (ListPublicKeys; a --public-key file has no " +
        'window, so any time passes under it); and that no log file carries bytes after its gzip ' +
        'stream. Reads S3 (--s3-endpoint for an emulator, path-style) or a downloaded copy (--local-dir, ' +
        'digest signatures in <key>.metadata.json sidecars). Exit code 1 when anything is invalid or missing.',
    )
    .addOption(new Option('--trail-arn <arn>', 'arn:aws:cloudtrail:HOME_REGION:ACCOUNT:trail/NAME'))
    .addOption(
      new Option('--trail-name <name>', 'the trail name (default: every trail found)').argParser(
        nonEmpty,
      ),
    )
    .addOption(
      new Option(
        '--account-id <id>',
        'the account whose logs to validate (default: from --trail-arn, else every account found)',
      ),
    )
    .addOption(
      new Option(
        '--region <region>',
        "the digests' source region, the REGION folder (default: every region found)",
      ).argParser(nonEmpty),
    )
    .addOption(
      new Option('--organization-id <id>', 'the ORG_ID folder of an organization trail').argParser(
        nonEmpty,
      ),
    )
    .addOption(
      new Option(
        '--start-time <time>',
        'validate log files delivered at or after this UTC time, e.g. 2015-01-08T05:21:42Z',
      ).makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--end-time <time>',
        'validate log files delivered at or before this UTC time (default: now)',
      ),
    )
    .addOption(
      new Option('--s3-bucket <name>', 'the bucket holding the digest files').argParser(nonEmpty),
    )
    .addOption(new Option('--s3-prefix <prefix>', 'the key prefix of the trail'))
    .addOption(
      new Option('--verbose', 'print a line for every file, valid ones included').default(false),
    )
    .addOption(
      new Option('--public-key <file>', 'a public key, PEM or DER, PKCS#1 or SPKI (repeatable)')
        .argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value])
        .default([]),
    )
    .addOption(
      new Option(
        '--endpoint <url>',
        'the opentrail API: fetch the public keys with ListPublicKeys',
      ).argParser(httpUrl),
    )
    .addOption(
      new Option(
        '--sign <mode>',
        'SigV4-sign ListPublicKeys for execute-api; auto: unless the endpoint is loopback',
      )
        .choices(['auto', 'always', 'never'])
        .default('auto'),
    )
    .addOption(
      new Option(
        '--s3-endpoint <url>',
        'S3 endpoint override (path-style), e.g. the embedded s3rver',
      ).argParser(httpUrl),
    )
    .addOption(
      new Option(
        '--local-dir <dir>',
        'validate a downloaded copy of the bucket (keys as paths) offline',
      ),
    )
    .addOption(
      new Option(
        '--endpoints <file>',
        "the embedded runtime's endpoints.json: api, s3 and bucket (flags win)",
      ),
    )
    .addOption(
      new Option(
        '--expect <chain>',
        'TRAIL,ACCOUNT,REGION,FIRST: this chain exists and its first period starts at FIRST, so every due period from there must have its digest (offline, instead of GetTrailStatus; repeatable)',
      )
        .argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value])
        .default([]),
    )
    .addOption(
      new Option(
        '--digest-period <seconds>',
        "the digest period (default: GetTrailStatus's, the endpoints file's, else 3600)",
      ).argParser(integerInRange(1, 86_400)),
    )
    .addOption(
      new Option(
        '--grace <seconds>',
        "how long after a period ends its digest may be missing (default: GetTrailStatus's, else 3600: the signer's schedule and retries)",
      ).argParser(integerInRange(0, 7 * 86_400)),
    )
    .addOption(
      new Option('--concurrency <n>', 'objects read at once (1-256)')
        .argParser(integerInRange(1, 256))
        .default(16),
    )
    .addOption(outputOption())
    .action(async (opts: CliOptions, command: Command) => {
      const nowMs = Date.now();
      let file = {};
      if (opts.endpoints !== undefined) {
        try {
          file = await readEndpointsFile(opts.endpoints);
        } catch (error) {
          command.error(`error: --endpoints ${opts.endpoints}: ${errorMessage(error)}`);
        }
      }
      const settings = resolveValidateSettings(opts, file, nowMs);
      if (typeof settings === 'string') command.error(`error: ${settings}`);
      try {
        process.exitCode = await runValidateLogs(
          settings,
          {
            verbose: opts.verbose,
            output: opts.output,
            concurrency: opts.concurrency,
            sign: opts.sign,
            nowMs,
          },
          streams,
        );
      } catch (error) {
        streams.stderr.write(`opentrail validate-logs: ${errorMessage(error)}\n`);
        process.exitCode = 1;
      }
    });
}
