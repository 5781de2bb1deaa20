/**
 * S3 key layout of log files (docs/formats.md#log-files):
 * `[PREFIX/]AWSLogs/[ORG_ID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz`
 */
import { createHash } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const UNIQUE_LENGTH = 16;

/** Account and region name folders in S3 keys (docs/formats.md#log-files): path-safe, no dots or slashes. */
export const PATH_SEGMENT_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

/** 16 characters of [A-Za-z0-9] derived from `seed` alone (so a retry derives the same). */
export function uniqueFrom(seed: string): string {
  const digest = createHash('sha256').update(seed, 'utf8').digest();
  let out = '';
  for (let i = 0; out.length < UNIQUE_LENGTH; i++) out += BASE62[digest[i]! % 62];
  return out;
}

export interface LogFileKeyParts {
  readonly prefix?: string;
  readonly organizationId?: string;
  readonly account: string;
  readonly region: string;
  /** The delivery time the key carries (date folders and minute stamp). */
  readonly deliveryMs: number;
  readonly unique: string;
  /** "CloudTrail" for log files, "CloudTrail-Insight" for Insights files. */
  readonly kind?: 'CloudTrail' | 'CloudTrail-Insight';
}

/** The folder of a trail's files for one account, region and day, with trailing slash. */
export function logFolder(parts: Omit<LogFileKeyParts, 'unique'>): string {
  const iso = new Date(parts.deliveryMs).toISOString();
  const kind = parts.kind ?? 'CloudTrail';
  const root = [parts.prefix, 'AWSLogs', parts.organizationId, parts.account, kind, parts.region]
    .filter((segment): segment is string => segment !== undefined && segment !== '')
    .join('/');
  return `${root}/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/`;
}

export function logFileKey(parts: LogFileKeyParts): string {
  const iso = new Date(parts.deliveryMs).toISOString();
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}Z`;
  const kind = parts.kind ?? 'CloudTrail';
  return `${logFolder(parts)}${parts.account}_${kind}_${parts.region}_${stamp}_${parts.unique}.json.gz`;
}

const KEY_PATTERN =
  /^(?:(.+)\/)?AWSLogs\/(?:(o-[a-z0-9]{10,32})\/)?([^/]+)\/(CloudTrail|CloudTrail-Insight)\/([^/]+)\/(\d{4})\/(\d{2})\/(\d{2})\/\3_\4_\5_(\d{8}T\d{4}Z)_([A-Za-z0-9]{16})\.json\.gz$/;

/** The parts of a log-file key, or undefined when the key does not follow the layout. */
export function parseLogFileKey(key: string):
  | {
      prefix?: string;
      organizationId?: string;
      account: string;
      region: string;
      kind: string;
      stamp: string;
      unique: string;
    }
  | undefined {
  const m = KEY_PATTERN.exec(key);
  if (!m) return undefined;
  const [, prefix, organizationId, account, kind, region, yyyy, mm, dd, stamp, unique] = m;
  if (stamp!.slice(0, 8) !== `${yyyy}${mm}${dd}`) return undefined;
  // The stamp must be a real UTC minute (no month 13, no hour 25).
  const iso = `${yyyy}-${mm}-${dd}T${stamp!.slice(9, 11)}:${stamp!.slice(11, 13)}:00.000Z`;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms) || new Date(ms).toISOString() !== iso) return undefined;
  return {
    ...(prefix ? { prefix } : {}),
    ...(organizationId ? { organizationId } : {}),
    account: account!,
    region: region!,
    kind: kind!,
    stamp: stamp!,
    unique: unique!,
  };
}
