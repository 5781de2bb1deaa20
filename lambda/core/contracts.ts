/**
 * Wire constants: the one definition of each value that a client and a server must agree on
 * (docs/formats.md). Pure: no I/O. A unit test (test/unit/core-contracts.test.ts) pins every value
 * against the documented contract, so a change here is deliberate.
 */

// ---------------------------------------------------------------------------------------------
// PutAuditEvents (docs/formats.md#putauditevents)

/** Entries in one PutAuditEvents request: 1 to this many. */
export const MAX_ENTRIES_PER_REQUEST = 100;
/** Bytes (UTF-8) of a PutAuditEvents request body: at most this many (1 MiB). */
export const MAX_REQUEST_BYTES = 1_048_576;
/** What an entry `id` must look like: 1–128 characters of `[-_A-Za-z0-9]`. */
export const ENTRY_ID_PATTERN = /^[-_A-Za-z0-9]{1,128}$/;
const KIB = 1024;
/** Bytes (UTF-8) of one record's JSON: at most this many (256 KiB; docs/formats.md#size-limits). */
export const MAX_RECORD_BYTES = 256 * KIB;
/** Caps in UTF-8 bytes of a field's JSON (docs/formats.md#size-limits). */
export const FIELD_CAPS: Readonly<Record<string, number>> = {
  requestParameters: 100 * KIB,
  responseElements: 100 * KIB,
  additionalEventData: 28 * KIB,
  userAgent: 4 * KIB,
  errorCode: 4 * KIB,
  errorMessage: 4 * KIB,
  requestID: 4 * KIB,
};

/**
 * The top-level record field in which ingest stamps the verified caller
 * (docs/formats.md#provenance). A producer cannot supply it: an entry that holds it is refused.
 */
export const PROVENANCE_FIELD = 'opentrailProvenance';
/**
 * The stamp's members that describe one request rather than the caller: left out of
 * contentHash, so a resend of the same record by the same principal stays a duplicate.
 */
export const PROVENANCE_PER_REQUEST_MEMBERS = [
  'sourceIPAddress',
  'requestId',
  'receivedAt',
] as const;
/**
 * The stamp's last member: the record's contentHash, computed once by ingest
 * (docs/formats.md#content-hash). Left out of contentHash itself, which it records.
 */
export const PROVENANCE_HASH_MEMBER = 'contentHash';
/** What a carried contentHash must look like to be used: lower-case hex SHA-256. */
export const CONTENT_HASH_PATTERN = /^[0-9a-f]{64}$/;
/** What `recipientAccountId` must look like: an AWS account id, 12 digits. */
export const ACCOUNT_ID_PATTERN = /^[0-9]{12}$/;
/** Default `maxEventAge` of deployed ingest: 7 days, in seconds (docs/formats.md#provenance). */
export const DEFAULT_MAX_EVENT_AGE_SECONDS = 7 * 24 * 3600;

// ---------------------------------------------------------------------------------------------
// X-Amz-Target names (docs/formats.md#lookupevents, #listpublickeys, #gettrailstatus-and-describetrails)

/** CloudTrail's JSON-1.1 target prefix: `<prefix><Operation>`. */
export const CLOUDTRAIL_TARGET_PREFIX = 'com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.';
/** The short form the AWS SDK for JavaScript v3 sends: `CloudTrail_20131101.<Operation>`. */
export const CLOUDTRAIL_SHORT_TARGET_PREFIX = 'CloudTrail_20131101.';
export const LOOKUP_EVENTS_TARGET = `${CLOUDTRAIL_TARGET_PREFIX}LookupEvents` as const;
export const LIST_PUBLIC_KEYS_TARGET = `${CLOUDTRAIL_TARGET_PREFIX}ListPublicKeys` as const;
export const GET_TRAIL_STATUS_TARGET = `${CLOUDTRAIL_TARGET_PREFIX}GetTrailStatus` as const;
export const DESCRIBE_TRAILS_TARGET = `${CLOUDTRAIL_TARGET_PREFIX}DescribeTrails` as const;
/** Local only (the embedded runtime): closes the current digest period now. */
export const CLOSE_DIGEST_PERIOD_TARGET = 'Opentrail.CloseDigestPeriod';

// ---------------------------------------------------------------------------------------------
// Time (docs/formats.md#records, #digest-files, #lookupevents)

/**
 * The wire time format: ISO 8601 UTC without milliseconds, `YYYY-MM-DDTHH:MM:SSZ` (a record's
 * `eventTime`, a digest's `digestStartTime`/`digestEndTime`, LookupEvents' key times).
 */
export const ISO_SECONDS_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
/** The earliest and latest epoch milliseconds that have a four-digit year (0000–9999). */
export const MIN_ISO_MS = -62_167_219_200_000;
export const MAX_ISO_MS = 253_402_300_799_000;

/** `YYYY-MM-DDTHH:MM:SSZ` of epoch milliseconds (milliseconds dropped, not rounded). */
export function formatIsoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** Epoch milliseconds of a `YYYY-MM-DDTHH:MM:SSZ` time; undefined for other text or no such date. */
export function parseIsoSeconds(text: string): number | undefined {
  if (!ISO_SECONDS_PATTERN.test(text)) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms) || formatIsoSeconds(ms) !== text) return undefined;
  return ms;
}

// ---------------------------------------------------------------------------------------------
// endpoints.json (docs/formats.md#the-embedded-runtimes-files)

/** What `<data-dir>/endpoints.json` of the embedded runtime holds: every value a string. */
export interface Endpoints {
  /** Keys added by components (see RuntimeContext.endpoint in local/runtime-context.ts). */
  readonly [key: string]: string;
  /** The HTTP API: PutAuditEvents, the JSON-1.1 operations, Lambda Invoke. */
  readonly api: string;
  readonly s3: string;
  readonly dynamodb: string;
  readonly kinesis: string;
  readonly bucket: string;
  readonly region: string;
  readonly accountId: string;
  readonly failedBucket: string;
  readonly stream: string;
  /** Lambda's Invoke API for each stream consumer (the API's URL): `opentrail redrive` uses it. */
  readonly lambda: string;
  readonly manifestTable: string;
  readonly dedupTable: string;
  /**
   * The access key of this run: the embedded S3 accepts requests signed with it only. Random per
   * start; the file is readable by its owner only (docs/security.md#the-local-runtime).
   */
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  // Components add digestChainTable, digestPeriodSeconds (whole seconds, as text), historyTable.
}

/** The keys every runtime writes; a reader takes any subset (flags may supply the rest). */
export const ENDPOINT_KEYS = [
  'api',
  's3',
  'dynamodb',
  'kinesis',
  'bucket',
  'region',
  'accountId',
  'failedBucket',
  'stream',
  'lambda',
  'manifestTable',
  'dedupTable',
  'accessKeyId',
  'secretAccessKey',
  'digestChainTable',
  'digestPeriodSeconds',
  'historyTable',
] as const;
export type EndpointKey = (typeof ENDPOINT_KEYS)[number];
/** What a reader gets: the known keys that the file holds. */
export type EndpointsDocument = { readonly [K in EndpointKey]?: string };

const URL_KEYS: ReadonlySet<string> = new Set(['api', 's3', 'dynamodb', 'kinesis', 'lambda']);

/**
 * Checks an endpoints document: an object whose known keys, where present, are non-empty strings,
 * the endpoints http(s) URLs and `digestPeriodSeconds` a positive whole number. Returns the known
 * keys; throws naming `source`, the field and the rule.
 */
export function checkEndpoints(document: unknown, source: string): EndpointsDocument {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new Error(`${source} must hold a JSON object`);
  }
  const fields = document as Record<string, unknown>;
  const result: Partial<Record<EndpointKey, string>> = {};
  for (const key of ENDPOINT_KEYS) {
    const value = fields[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' || value === '') {
      throw new Error(`${source}: field ${key} must be a non-empty string`);
    }
    if (URL_KEYS.has(key) && !/^https?:\/\/[^/\s]/.test(value)) {
      throw new Error(`${source}: field ${key} must be an http:// or https:// URL, not ${value}`);
    }
    if (key === 'digestPeriodSeconds' && !/^[1-9]\d*$/.test(value)) {
      throw new Error(
        `${source}: field digestPeriodSeconds must be a positive whole number of seconds, not ${value}`,
      );
    }
    result[key] = value;
  }
  return result;
}

/** Parses and checks an endpoints.json text (see {@link checkEndpoints}). */
export function parseEndpoints(text: string, source: string): EndpointsDocument {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source} is not JSON: ${(error as Error).message}`);
  }
  return checkEndpoints(document, source);
}
