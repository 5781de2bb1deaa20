/**
 * Digest files, their keys, the string to sign, and public-key fingerprints (docs/formats.md#digest-files),
 * byte for byte as CloudTrail writes them, so tooling built for CloudTrail digests reads ours.
 *
 * Key: `[PREFIX/]AWSLogs/[ORG_ID/]ACCOUNT/CloudTrail-Digest/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail-Digest_REGION_TRAILNAME_HOMEREGION_YYYYMMDDTHHMMSSZ.json.gz`
 * (date folders and stamp = the digest END time). Body: compact JSON, fields in the fixed order
 * below, UTF-8, stored gzip'd; the hashes and the signature cover the UNCOMPRESSED bytes.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { formatIsoSeconds, parseIsoSeconds } from './contracts';

export interface DigestLogFile {
  s3Bucket: string;
  s3Object: string;
  /** hex SHA-256 of the uncompressed log file. */
  hashValue: string;
  hashAlgorithm: 'SHA-256';
  newestEventTime: string;
  oldestEventTime: string;
}

export interface DigestFile {
  awsAccountId: string;
  digestStartTime: string;
  digestEndTime: string;
  digestS3Bucket: string;
  digestS3Object: string;
  digestPublicKeyFingerprint: string;
  digestSignatureAlgorithm: 'SHA256withRSA';
  newestEventTime: string | null;
  oldestEventTime: string | null;
  previousDigestS3Bucket: string | null;
  previousDigestS3Object: string | null;
  /** hex SHA-256 of the previous digest's uncompressed bytes. */
  previousDigestHashValue: string | null;
  previousDigestHashAlgorithm: 'SHA-256' | null;
  previousDigestSignature: string | null;
  logFiles: DigestLogFile[];
}

export const DIGEST_SIGNATURE_ALGORITHM = 'SHA256withRSA';
export const DIGEST_HASH_ALGORITHM = 'SHA-256';

/** Thrown by `parseDigest` when bytes are not a digest file; the message names the field. */
export class DigestFormatError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'DigestFormatError';
  }
}

/** The digest's uncompressed bytes: compact JSON, fields in exactly the order of docs/formats.md#digest-files. */
export function serializeDigest(d: DigestFile): Buffer {
  const ordered = {
    awsAccountId: d.awsAccountId,
    digestStartTime: d.digestStartTime,
    digestEndTime: d.digestEndTime,
    digestS3Bucket: d.digestS3Bucket,
    digestS3Object: d.digestS3Object,
    digestPublicKeyFingerprint: d.digestPublicKeyFingerprint,
    digestSignatureAlgorithm: d.digestSignatureAlgorithm,
    newestEventTime: d.newestEventTime,
    oldestEventTime: d.oldestEventTime,
    previousDigestS3Bucket: d.previousDigestS3Bucket,
    previousDigestS3Object: d.previousDigestS3Object,
    previousDigestHashValue: d.previousDigestHashValue,
    previousDigestHashAlgorithm: d.previousDigestHashAlgorithm,
    previousDigestSignature: d.previousDigestSignature,
    logFiles: d.logFiles.map((f) => ({
      s3Bucket: f.s3Bucket,
      s3Object: f.s3Object,
      hashValue: f.hashValue,
      hashAlgorithm: f.hashAlgorithm,
      newestEventTime: f.newestEventTime,
      oldestEventTime: f.oldestEventTime,
    })),
  };
  return Buffer.from(JSON.stringify(ordered), 'utf8');
}

type Json = Record<string, unknown>;

function field<T>(
  obj: Json,
  name: string,
  where: string,
  check: (v: unknown) => v is T,
  rule: string,
): T {
  if (!(name in obj)) throw new DigestFormatError(`${where}${name} is missing`, name);
  const value = obj[name];
  if (!check(value)) {
    throw new DigestFormatError(
      `${where}${name} must be ${rule}, got ${JSON.stringify(value)?.slice(0, 80)}`,
      name,
    );
  }
  return value;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isTime = (v: unknown): v is string => typeof v === 'string' && isDigestTime(v);
const isTimeOrNull = (v: unknown): v is string | null => v === null || isTime(v);
const isStringOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const isHex64 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isHex64OrNull = (v: unknown): v is string | null => v === null || isHex64(v);
const isHexOrNull = (v: unknown): v is string | null =>
  v === null || (typeof v === 'string' && /^(?:[0-9a-f]{2})+$/.test(v));
const isSha256 = (v: unknown): v is 'SHA-256' => v === DIGEST_HASH_ALGORITHM;
const isSha256OrNull = (v: unknown): v is 'SHA-256' | null => v === null || isSha256(v);
const isRsa = (v: unknown): v is 'SHA256withRSA' => v === DIGEST_SIGNATURE_ALGORITHM;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses a digest's UNCOMPRESSED bytes. Throws `DigestFormatError` naming the field when the
 * bytes are not UTF-8 JSON or a field is missing or has the wrong type or format. Unknown extra
 * fields are ignored (as the AWS CLI does).
 */
export function parseDigest(bytes: Buffer): DigestFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new DigestFormatError(`digest is not UTF-8 JSON: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) throw new DigestFormatError('digest must be a JSON object');
  const o = parsed;
  const digest: DigestFile = {
    awsAccountId: field(o, 'awsAccountId', '', isString, 'a string'),
    digestStartTime: field(o, 'digestStartTime', '', isTime, 'a YYYY-MM-DDTHH:MM:SSZ time'),
    digestEndTime: field(o, 'digestEndTime', '', isTime, 'a YYYY-MM-DDTHH:MM:SSZ time'),
    digestS3Bucket: field(o, 'digestS3Bucket', '', isString, 'a string'),
    digestS3Object: field(o, 'digestS3Object', '', isString, 'a string'),
    digestPublicKeyFingerprint: field(
      o,
      'digestPublicKeyFingerprint',
      '',
      (v): v is string => typeof v === 'string' && /^[0-9a-f]{32}$/.test(v),
      '32 lowercase hex digits',
    ),
    digestSignatureAlgorithm: field(o, 'digestSignatureAlgorithm', '', isRsa, '"SHA256withRSA"'),
    newestEventTime: field(o, 'newestEventTime', '', isTimeOrNull, 'a time or null'),
    oldestEventTime: field(o, 'oldestEventTime', '', isTimeOrNull, 'a time or null'),
    previousDigestS3Bucket: field(
      o,
      'previousDigestS3Bucket',
      '',
      isStringOrNull,
      'a string or null',
    ),
    previousDigestS3Object: field(
      o,
      'previousDigestS3Object',
      '',
      isStringOrNull,
      'a string or null',
    ),
    previousDigestHashValue: field(
      o,
      'previousDigestHashValue',
      '',
      isHex64OrNull,
      '64 lowercase hex digits or null',
    ),
    previousDigestHashAlgorithm: field(
      o,
      'previousDigestHashAlgorithm',
      '',
      isSha256OrNull,
      '"SHA-256" or null',
    ),
    previousDigestSignature: field(o, 'previousDigestSignature', '', isHexOrNull, 'hex or null'),
    logFiles: field(o, 'logFiles', '', Array.isArray, 'an array').map((entry: unknown, i) => {
      const where = `logFiles[${i}].`;
      if (!isObject(entry)) throw new DigestFormatError(`${where.slice(0, -1)} must be an object`);
      return {
        s3Bucket: field(entry, 's3Bucket', where, isString, 'a string'),
        s3Object: field(entry, 's3Object', where, isString, 'a string'),
        hashValue: field(entry, 'hashValue', where, isHex64, '64 lowercase hex digits'),
        hashAlgorithm: field(entry, 'hashAlgorithm', where, isSha256, '"SHA-256"'),
        newestEventTime: field(entry, 'newestEventTime', where, isTime, 'a time'),
        oldestEventTime: field(entry, 'oldestEventTime', where, isTime, 'a time'),
      };
    }),
  };
  return digest;
}

// ---- times ---------------------------------------------------------------------------------

function isDigestTime(s: string): boolean {
  return !Number.isNaN(parseDigestTimeOrNaN(s));
}

function parseDigestTimeOrNaN(s: string): number {
  return parseIsoSeconds(s) ?? NaN;
}

/** `YYYY-MM-DDTHH:MM:SSZ` (UTC, milliseconds dropped). */
export function formatDigestTime(ms: number): string {
  return formatIsoSeconds(ms);
}

/** Epoch milliseconds of a `YYYY-MM-DDTHH:MM:SSZ` time; throws on any other text or no such date. */
export function parseDigestTime(s: string): number {
  const ms = parseDigestTimeOrNaN(s);
  if (Number.isNaN(ms))
    throw new RangeError(`not a YYYY-MM-DDTHH:MM:SSZ time: ${JSON.stringify(s)}`);
  return ms;
}

// ---- keys ----------------------------------------------------------------------------------

export interface DigestKeyParts {
  readonly prefix?: string;
  readonly organizationId?: string;
  readonly account: string;
  /** The source region of the logs the digest covers (the REGION folder). */
  readonly region: string;
  readonly trailName: string;
  /** The region of the trail (the deployment). */
  readonly homeRegion: string;
  /** The digest end time: the date folders and the stamp. */
  readonly endMs: number;
}

/** `[PREFIX/]AWSLogs/[ORG_ID/]ACCOUNT/CloudTrail-Digest/REGION/`, with trailing slash. */
export function digestRegionFolder(
  parts: Pick<DigestKeyParts, 'prefix' | 'organizationId' | 'account' | 'region'>,
): string {
  return `${[
    parts.prefix,
    'AWSLogs',
    parts.organizationId,
    parts.account,
    'CloudTrail-Digest',
    parts.region,
  ]
    .filter((segment): segment is string => segment !== undefined && segment !== '')
    .join('/')}/`;
}

/** The day folder (`.../REGION/YYYY/MM/DD/`) holding digests that END on the day of `dayMs`. */
export function digestDayFolder(
  parts: Pick<DigestKeyParts, 'prefix' | 'organizationId' | 'account' | 'region'>,
  dayMs: number,
): string {
  const iso = new Date(dayMs).toISOString();
  return `${digestRegionFolder(parts)}${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/`;
}

export function digestKey(parts: DigestKeyParts): string {
  const iso = new Date(parts.endMs).toISOString();
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return (
    `${digestDayFolder(parts, parts.endMs)}${parts.account}_CloudTrail-Digest_${parts.region}_` +
    `${parts.trailName}_${parts.homeRegion}_${stamp}.json.gz`
  );
}

// The home region has no underscore, so the trail name (which may) is everything before it.
const DIGEST_KEY_PATTERN =
  /^(?:(.+)\/)?AWSLogs\/(?:(o-[a-z0-9]{10,32})\/)?([^/]+)\/CloudTrail-Digest\/([^/]+)\/(\d{4})\/(\d{2})\/(\d{2})\/\3_CloudTrail-Digest_\4_([^/]+)_([a-z0-9-]+)_(\d{8}T\d{6}Z)\.json\.gz$/;

/** The parts of a digest key, or undefined when it does not follow the layout or names no real time. */
export function parseDigestKey(
  key: string,
):
  | (Required<Omit<DigestKeyParts, 'prefix' | 'organizationId'>> &
      Pick<DigestKeyParts, 'prefix' | 'organizationId'>)
  | undefined {
  const m = DIGEST_KEY_PATTERN.exec(key);
  if (!m) return undefined;
  const [, prefix, organizationId, account, region, yyyy, mm, dd, trailName, homeRegion, stamp] = m;
  if (stamp!.slice(0, 8) !== `${yyyy}${mm}${dd}`) return undefined;
  const s = stamp!;
  const ms = parseDigestTimeOrNaN(
    `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`,
  );
  if (Number.isNaN(ms)) return undefined;
  return {
    ...(prefix ? { prefix } : {}),
    ...(organizationId ? { organizationId } : {}),
    account: account!,
    region: region!,
    trailName: trailName!,
    homeRegion: homeRegion!,
    endMs: ms,
  };
}

// ---- signing -------------------------------------------------------------------------------

/**
 * The string to sign: end time, `bucket/key`, hex SHA-256 of the uncompressed digest, and the
 * previous signature (or the four characters `null`), joined by "\n", no trailing newline.
 */
export function signingString(
  digest: Pick<DigestFile, 'digestEndTime' | 'digestS3Bucket' | 'digestS3Object'>,
  sha256HexOfUncompressedDigest: string,
  previousSignature: string | null,
): string {
  return [
    digest.digestEndTime,
    `${digest.digestS3Bucket}/${digest.digestS3Object}`,
    sha256HexOfUncompressedDigest,
    previousSignature ?? 'null',
  ].join('\n');
}

function publicKeyFromDer(der: Buffer): KeyObject {
  try {
    return createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    return createPublicKey({ key: der, format: 'der', type: 'pkcs1' });
  }
}

/** PKCS#1 RSAPublicKey DER of an SPKI (SubjectPublicKeyInfo) DER, as KMS GetPublicKey returns. */
export function pkcs1FromSpki(spkiDer: Buffer): Buffer {
  return createPublicKey({ key: spkiDer, format: 'der', type: 'spki' }).export({
    type: 'pkcs1',
    format: 'der',
  });
}

/** hex MD5 of the key as PKCS#1 DER; accepts SPKI or PKCS#1 DER. */
export function fingerprintOfPublicKey(der: Buffer): string {
  const pkcs1 = publicKeyFromDer(der).export({ type: 'pkcs1', format: 'der' });
  return createHash('md5').update(pkcs1).digest('hex');
}

/** RSASSA-PKCS1-v1_5 with SHA-256 over the UTF-8 string; false on any malformed input. */
export function verifyDigestSignature(
  signingStringText: string,
  signatureHex: string,
  publicKeyPkcs1Der: Buffer,
): boolean {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(signatureHex)) return false;
  try {
    return verify(
      'sha256',
      Buffer.from(signingStringText, 'utf8'),
      publicKeyFromDer(publicKeyPkcs1Der),
      Buffer.from(signatureHex, 'hex'),
    );
  } catch {
    return false;
  }
}
