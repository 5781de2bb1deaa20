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
import { Command, InvalidArgumentError, Option } from 'commander';
import { createClients, destroyClients } from '../lambda/adapters/clients';
import { S3ObjectReader } from '../lambda/adapters/s3-object-reader';
import { fingerprintOfPublicKey, formatDigestTime } from '../lambda/core/digest-format';
import {
  DEFAULT_DIGEST_GRACE_MS,
  formatResult,
  validateLogs,
  type ChainExpectation,
  type ValidationResult,
  type WindowedPublicKey,
} from '../lambda/core/digest-validate';
import type { ObjectReader } from '../lambda/core/ports';
import { DEFAULT_DIGEST_PERIOD_SECONDS } from '../lambda/core/config';
import { parseEndpoints } from '../lambda/core/contracts';
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
import { cloudTrailApiClient } from './shared/cloudtrail-api';
import {
  readPublicKey,
  resolveValidateSettings,
  type ValidateLogsFlags,
  type ValidateLogsSettings,
} from './shared/validate-settings';
import { fetchChainStatus, listPublicKeys } from './shared/validate-api';
import { formatSummary } from './shared/validate-output';
import { defaultWorkers, LogFileWorkerPool } from './shared/validate-workers';

// The command's building blocks, for tests and callers that import them from here.
export {
  parseExpectation,
  parseTimeFlag,
  readPublicKey,
  resolveValidateSettings,
  type ValidateLogsFlags,
  type ValidateLogsSettings,
} from './shared/validate-settings';
export { fetchChainStatus, listPublicKeys, type ChainStatus } from './shared/validate-api';
export { formatSummary } from './shared/validate-output';

/** Runs the validation as the command does; resolves with the exit code. */
export async function runValidateLogs(
  settings: ValidateLogsSettings,
  options: {
    readonly verbose: boolean;
    readonly output: OutputFormat;
    readonly concurrency: number;
    /** Worker threads that check log files. @default defaultWorkers() */
    readonly workers?: number;
    readonly sign: 'auto' | 'always' | 'never';
    readonly nowMs: number;
    readonly reader?: ObjectReader;
    /** MD5 fingerprints (hex) of the only keys to trust; absent: every key found. */
    readonly pinnedFingerprints?: readonly string[];
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
  if (options.pinnedFingerprints !== undefined)
    pinKeys(publicKeys, options.pinnedFingerprints, out);
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
    clients = createClients({
      region:
        settings.homeRegion ??
        process.env.AWS_REGION ??
        process.env.AWS_DEFAULT_REGION ??
        'us-east-1',
      ...(settings.s3Endpoint !== undefined ? { s3Endpoint: settings.s3Endpoint } : {}),
      // The runtime's key only for the S3 that --endpoints names; else the standard chain.
      ...(settings.s3Credentials !== undefined ? { credentials: settings.s3Credentials } : {}),
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
  const pool = new LogFileWorkerPool(options.workers ?? defaultWorkers());
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
      checkLogBytes: pool.check,
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
    await pool.close();
    if (clients) destroyClients(clients);
  }
}

/**
 * --public-key-fingerprints: keeps only the pinned keys, so a key the API (or a changed key
 * policy) serves that the user never approved cannot vouch for a digest. Digests signed with
 * a dropped key then fail as signed by an unknown key.
 */
function pinKeys(
  publicKeys: Map<string, unknown>,
  pinned: readonly string[],
  out: OutputStreams,
): void {
  const found = [...publicKeys.keys()];
  if (found.length > 0 && !found.some((fingerprint) => pinned.includes(fingerprint))) {
    throw new Error(
      `none of the public keys found (${found.join(', ')}) is in --public-key-fingerprints (${pinned.join(', ')})`,
    );
  }
  for (const fingerprint of found) {
    if (pinned.includes(fingerprint)) continue;
    publicKeys.delete(fingerprint);
    out.stderr.write(
      `opentrail validate-logs: ignoring public key ${fingerprint}: not in --public-key-fingerprints\n`,
    );
  }
}

/** A comma-separated list of 32-hex-digit MD5 fingerprints (repeatable). */
function fingerprintList(value: string, previous: string[] | undefined): string[] {
  const items = value.split(',').map((s) => s.trim().toLowerCase());
  const bad = items.find((s) => !/^[0-9a-f]{32}$/.test(s));
  if (bad !== undefined) {
    throw new InvalidArgumentError(
      `"${bad}" is not a key fingerprint: 32 hex digits (the MD5 of the PKCS#1 key, as digestPublicKeyFingerprint and ListPublicKeys show it)`,
    );
  }
  return [...(previous ?? []), ...items];
}

interface CliOptions extends ValidateLogsFlags {
  readonly verbose: boolean;
  readonly publicKey: string[];
  readonly sign: 'auto' | 'always' | 'never';
  readonly concurrency: number;
  readonly workers: number;
  readonly output: OutputFormat;
  readonly expect: string[];
  readonly publicKeyFingerprints?: string[];
}

/** The endpoints.json settings validate-logs uses, checked by the one endpoints.json reader. */
async function readEndpointsFile(path: string): Promise<{
  api?: string;
  s3?: string;
  bucket?: string;
  digestPeriodSeconds?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
}> {
  const { api, s3, bucket, digestPeriodSeconds, accessKeyId, secretAccessKey } = parseEndpoints(
    await readFile(path, 'utf8'),
    `--endpoints ${path}`,
  );
  return Object.fromEntries(
    Object.entries({ api, s3, bucket, digestPeriodSeconds, accessKeyId, secretAccessKey }).filter(
      ([, v]) => v !== undefined,
    ),
  );
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
        '--public-key-fingerprints <list>',
        'trust only these keys: comma-separated MD5 fingerprints (repeatable); any other key found is ignored',
      ).argParser(fingerprintList),
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
        'S3 endpoint override (path-style), e.g. MinIO; signed with the standard AWS credential ' +
          "chain (--endpoints instead: the embedded runtime's own access key)",
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
    .addOption(
      new Option(
        '--workers <n>',
        'worker threads that gunzip and hash log files (1-256; default: one per core this process may use)',
      )
        .argParser(integerInRange(1, 256))
        .default(defaultWorkers(), String(defaultWorkers())),
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
            workers: opts.workers,
            sign: opts.sign,
            nowMs,
            pinnedFingerprints: opts.publicKeyFingerprints,
          },
          streams,
        );
      } catch (error) {
        streams.stderr.write(`opentrail validate-logs: ${errorMessage(error)}\n`);
        process.exitCode = 1;
      }
    });
}
