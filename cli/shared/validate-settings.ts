/**
 * `opentrail validate-logs`' flags turned into settings: the trail ARN, times, `--expect`
 * chains, the endpoints file's keys, and public key files. Pure apart from reading key files'
 * bytes handed in; an error message names the flag and the rule.
 */
import { createPublicKey } from 'node:crypto';
import { fingerprintOfPublicKey } from '../../lambda/core/digest-format';
import type { ChainExpectation } from '../../lambda/core/digest-validate';
import { credentialsFor, type AccessKey } from './endpoint';
import type { OutputFormat } from './options';
import { errorMessage } from './output';

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
  /** The embedded runtime's access key, when --endpoints names the S3 endpoint in use. */
  readonly s3Credentials?: AccessKey;
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
  file: {
    api?: string;
    s3?: string;
    bucket?: string;
    digestPeriodSeconds?: string;
    accessKeyId?: string;
    secretAccessKey?: string;
  },
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
  const s3Credentials = credentialsFor(s3Endpoint, file.s3, file);
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
    ...(s3Credentials !== undefined ? { s3Credentials } : {}),
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
