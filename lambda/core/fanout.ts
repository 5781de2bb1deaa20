/**
 * EventBridge fan-out (docs/formats.md#eventbridge-envelopes): the PutEvents entry and the local envelope of a record,
 * EventBridge's entry-size accounting, PutEvents batching, and the translation of
 * CloudTrail-style rule patterns to opentrail's sources. The local envelope's `id` is the
 * record's {@link opentrailEventKey} (core/event-key.ts).
 *
 * Pure: no SDK, no I/O.
 */
import { opentrailEventKey } from './event-key';

/** The most a PutEvents entry (and a whole PutEvents request) may weigh, as EventBridge counts. */
export const MAX_ENTRY_BYTES = 256 * 1024;
/** Most entries per PutEvents call. */
export const MAX_ENTRIES_PER_CALL = 10;
/** What EventBridge counts for a `Time` parameter, whatever its value. */
export const TIME_BYTES = 14;
/** Source prefix of every opentrail event (CloudTrail uses `aws.`, which custom events may not). */
export const SOURCE_PREFIX = 'opentrail.';

/** The detail-type of each eventType (docs/formats.md#eventbridge-envelopes). */
export const DETAIL_TYPES: Readonly<Record<string, string>> = {
  AwsApiCall: 'AWS API Call via CloudTrail',
  AwsConsoleSignIn: 'AWS Console Sign In via CloudTrail',
  AwsConsoleAction: 'AWS Console Action via CloudTrail',
  AwsServiceEvent: 'AWS Service Event via CloudTrail',
  AwsCloudTrailInsight: 'AWS Insight via CloudTrail',
};

/** What a PutEvents entry holds (the SDK's names; `Time` kept as CloudTrail's text). */
export interface BusEntry {
  readonly Source: string;
  readonly DetailType: string;
  /** The record's JSON, as it came from the stream. */
  readonly Detail: string;
  /** eventTime (`YYYY-MM-DDTHH:MM:SSZ`); the adapter turns it into a Date. */
  readonly Time: string;
  readonly Resources: readonly string[];
}

/** The envelope a rule target receives; the embedded runtime writes exactly this. */
export interface Envelope {
  readonly version: '0';
  /** The record's opentrailEventKey: `<eventID>:<hex SHA-256 of its canonical JSON>`. */
  readonly id: string;
  readonly 'detail-type': string;
  readonly source: string;
  readonly account: string;
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: Record<string, unknown>;
}

/** One record ready for the bus: the AWS entry, the local envelope, and its size. */
export interface FanoutEvent {
  readonly entry: BusEntry;
  readonly envelope: Envelope;
  /** Size as EventBridge counts it (see {@link entrySizeBytes}). */
  readonly sizeBytes: number;
}

/**
 * A PutEvents entry's size the way EventBridge computes it: 14 bytes for `Time`, plus the
 * UTF-8 bytes of `Source`, `DetailType`, `Detail` and every `Resources` string.
 */
export function entrySizeBytes(entry: BusEntry): number {
  let size = TIME_BYTES;
  size += Buffer.byteLength(entry.Source, 'utf8');
  size += Buffer.byteLength(entry.DetailType, 'utf8');
  size += Buffer.byteLength(entry.Detail, 'utf8');
  for (const resource of entry.Resources) size += Buffer.byteLength(resource, 'utf8');
  return size;
}

function isInsight(record: Record<string, unknown>): boolean {
  return record.eventType === 'AwsCloudTrailInsight' || record.eventCategory === 'Insight';
}

/** `opentrail.<service>`, service = eventSource up to its first dot (docs/formats.md#eventbridge-envelopes). */
export function sourceOf(record: Record<string, unknown>): string {
  if (isInsight(record)) return `${SOURCE_PREFIX}cloudtrail`;
  if (record.eventType === 'AwsConsoleSignIn') return `${SOURCE_PREFIX}signin`;
  const eventSource = typeof record.eventSource === 'string' ? record.eventSource : '';
  const dot = eventSource.indexOf('.');
  const service = dot < 0 ? eventSource : eventSource.slice(0, dot);
  return `${SOURCE_PREFIX}${service || 'unknown'}`;
}

/**
 * The detail-type of a record. eventType is an open string: one CloudTrail does not define is
 * sent as an API call, the type ingest gives a record that has none.
 */
export function detailTypeOf(record: Record<string, unknown>): string {
  if (isInsight(record)) return DETAIL_TYPES.AwsCloudTrailInsight!;
  const type = typeof record.eventType === 'string' ? record.eventType : 'AwsApiCall';
  return DETAIL_TYPES[type] ?? DETAIL_TYPES.AwsApiCall!;
}

/** The `ARN` of each of the record's resources (ARNPrefix entries are not resources). */
export function resourceArnsOf(record: Record<string, unknown>): string[] {
  if (!Array.isArray(record.resources)) return [];
  const arns: string[] = [];
  for (const resource of record.resources as unknown[]) {
    const arn = (resource as { ARN?: unknown } | null)?.ARN;
    if (typeof arn === 'string' && arn.length > 0 && !arns.includes(arn)) arns.push(arn);
  }
  return arns;
}

/**
 * The bus event of one record. `text` is the record's JSON as it came from the stream (sent
 * as Detail verbatim); `record` is the same, parsed.
 */
export function fanoutEventOf(text: string, record: Record<string, unknown>): FanoutEvent {
  const eventTime = typeof record.eventTime === 'string' ? record.eventTime : '';
  const entry: BusEntry = {
    Source: sourceOf(record),
    DetailType: detailTypeOf(record),
    Detail: text,
    Time: eventTime,
    Resources: resourceArnsOf(record),
  };
  const envelope: Envelope = {
    version: '0',
    // Not the eventID alone: a forged record reusing it must not look like a repeat.
    id: opentrailEventKey({ detail: record }),
    'detail-type': entry.DetailType,
    source: entry.Source,
    account: typeof record.recipientAccountId === 'string' ? record.recipientAccountId : '',
    time: eventTime,
    region: typeof record.awsRegion === 'string' ? record.awsRegion : '',
    resources: entry.Resources,
    detail: record,
  };
  return { entry, envelope, sizeBytes: entrySizeBytes(entry) };
}

/**
 * Groups events into PutEvents calls in order: at most 10 entries and 256 KB (summed entry
 * sizes) per call. An event over 256 KB on its own is never placed (the caller skips and
 * counts it, as CloudTrail does).
 */
export function batchForPutEvents<T extends { readonly sizeBytes: number }>(
  events: readonly T[],
  limits: { maxEntries?: number; maxBytes?: number } = {},
): T[][] {
  const maxEntries = limits.maxEntries ?? MAX_ENTRIES_PER_CALL;
  const maxBytes = limits.maxBytes ?? MAX_ENTRY_BYTES;
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const event of events) {
    if (event.sizeBytes > maxBytes) continue;
    if (current.length >= maxEntries || bytes + event.sizeBytes > maxBytes) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(event);
    bytes += event.sizeBytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** An EventBridge event pattern (JSON). */
export type EventPattern = Record<string, unknown>;

function translateSource(value: unknown): unknown {
  if (typeof value === 'string') {
    return value.startsWith('aws.') ? `${SOURCE_PREFIX}${value.slice(4)}` : value;
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const matcher = value as Record<string, unknown>;
    if (typeof matcher.prefix === 'string') {
      const prefix = matcher.prefix;
      // `{"prefix":"aws."}` (or "aws", "a"…) matches every CloudTrail source.
      if ('aws.'.startsWith(prefix) || prefix.startsWith('aws.')) {
        return {
          ...matcher,
          prefix: prefix.startsWith('aws.') ? `${SOURCE_PREFIX}${prefix.slice(4)}` : SOURCE_PREFIX,
        };
      }
    }
    if (Array.isArray(matcher['anything-but'])) {
      return { ...matcher, 'anything-but': matcher['anything-but'].map(translateSource) };
    }
    if (typeof matcher['anything-but'] === 'string') {
      return { ...matcher, 'anything-but': translateSource(matcher['anything-but']) };
    }
  }
  return value;
}

/**
 * Turns a CloudTrail-style rule pattern (`"source": ["aws.s3"]`, detail-types "… via
 * CloudTrail", `detail` on the record's fields) into the pattern that matches the same events
 * on the opentrail bus: `aws.<service>` sources become `opentrail.<service>` (also inside
 * `prefix` and `anything-but` matchers); everything else is kept, since detail-types and the
 * record (detail) are the same as CloudTrail's.
 */
export function toOpentrailPattern(pattern: EventPattern): EventPattern {
  if (typeof pattern !== 'object' || pattern === null || Array.isArray(pattern)) {
    throw new Error('an event pattern is a JSON object, e.g. {"source":["aws.s3"]}');
  }
  const source = pattern.source;
  if (source === undefined) return { ...pattern };
  const values = Array.isArray(source) ? source : [source];
  return { ...pattern, source: values.map(translateSource) };
}
