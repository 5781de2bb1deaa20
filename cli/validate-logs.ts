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
 *
 * This file holds the flags; cli/shared/validate-settings.ts checks them,
 * cli/shared/validate-run.ts runs the validation and cli/shared/validate-output.ts prints it.
 */
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseEndpoints } from '../lambda/core/contracts';
import { DEFAULT_VALIDATE_CONCURRENCY } from '../lambda/core/digest-validate';
import {
  httpUrl,
  integerInRange,
  nonEmpty,
  outputOption,
  type OutputFormat,
} from './shared/options';
import { errorMessage, PROCESS_STREAMS, type OutputStreams } from './shared/output';
import { resolveValidateSettings, type ValidateLogsFlags } from './shared/validate-settings';
import { runValidateLogs } from './shared/validate-run';
import { defaultWorkers } from './shared/validate-workers';

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
        'digest signatures in <key>.metadata.json sidecars). Exit code 1 when anything is invalid or missing; ' +
        '141, quietly, when the reader of its output goes away (| head -1).',
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
      new Option('--concurrency <n>', 'objects read at once, each on its own connection (1-256)')
        .argParser(integerInRange(1, 256))
        .default(DEFAULT_VALIDATE_CONCURRENCY),
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
