/**
 * Event history's records and key layout (docs/formats.md#lookupevents): which records are
 * indexed, the derived fields of LookupEvents, the keys of the record and group items
 * (tables.ts, HISTORY_TABLE), and the bytes they store (compressed records, group entries).
 * Pure (CPU only: hashing and zlib).
 *
 * Order: eventTime descending, then eventID descending (UTF-8 byte order, DynamoDB's), then
 * content hash. Every index partition is sorted the same way by its sort key, so merging
 * partitions is a plain comparison of sort keys.
 */
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { storedRecordHash } from './content-hash';
import type { HistoryRecordItem } from './ports';
import { ISO_SECONDS_PATTERN } from './contracts';

/** History keeps 90 days (enforced at read time). */
export const HISTORY_WINDOW_SECONDS = 90 * 86400;
/** TTL: a day beyond the window, so nothing inside the window is ever expired. */
export const HISTORY_TTL_SECONDS = HISTORY_WINDOW_SECONDS + 86400;
/**
 * The longest eventID (UTF-8) history stores: its record item's partition key, `E#<eventID>`,
 * must fit DynamoDB's 2,048 bytes. An EventId lookup for a longer value finds nothing, without
 * a Query DynamoDB would refuse (docs/guarantees.md#fan-out-and-history).
 */
export const MAX_EVENT_ID_BYTES = 2000;
/** Values longer than this (UTF-8) are keyed by their SHA-256 (DynamoDB key size limits). */
const MAX_KEY_VALUE_BYTES = 1024;
const MAX_SORT_KEY_BYTES = 1024;
/** DynamoDB's item size limit (400 KB), attribute names included. */
export const MAX_ITEM_BYTES = 400 * 1024;

export const ATTRIBUTE_KEYS = [
  'EventId',
  'EventName',
  'ReadOnly',
  'Username',
  'ResourceType',
  'ResourceName',
  'EventSource',
  'AccessKeyId',
] as const;
export type AttributeKey = (typeof ATTRIBUTE_KEYS)[number];

/** Index partition codes (tables.ts, HISTORY_TABLE). */
const KEY_CODES: Record<Exclude<AttributeKey, 'EventId'>, string> = {
  EventName: 'N',
  ReadOnly: 'R',
  Username: 'U',
  ResourceType: 'T',
  ResourceName: 'M',
  EventSource: 'S',
  AccessKeyId: 'K',
};
const ALL_CODE = 'A';

export type HistoryCategory = 'm' | 'i';

export type Json = Record<string, unknown>;

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** "m" for management events, "i" for Insights events, undefined for what history skips. */
export function historyCategory(record: Json): HistoryCategory | undefined {
  const category = record.eventCategory;
  if (category === 'Insight' || record.eventType === 'AwsCloudTrailInsight') return 'i';
  if (category === 'Management') return 'm';
  if (category === undefined && record.managementEvent === true) return 'm';
  return undefined;
}

/** The text after the last ":" or "/" (the whole text when it has neither). */
export function lastSegment(arn: string): string {
  return arn.slice(Math.max(arn.lastIndexOf(':'), arn.lastIndexOf('/')) + 1);
}

/** Username per docs/formats.md#lookupevents. */
export function usernameOf(record: Json): string | undefined {
  const identity = record.userIdentity;
  if (typeof identity !== 'object' || identity === null) return undefined;
  const id = identity as Json;
  const userName = str(id.userName);
  if (userName) return userName;
  const principalId = str(id.principalId);
  switch (id.type) {
    case 'AssumedRole':
    case 'FederatedUser': {
      const arn = str(id.arn);
      return (arn && str(arn.slice(arn.lastIndexOf('/') + 1))) ?? principalId;
    }
    case 'Root':
      return 'root';
    case 'AWSService':
      return str(id.invokedBy) ?? principalId;
    default:
      return principalId;
  }
}

export interface DerivedResource {
  readonly type?: string;
  readonly arn?: string;
}

/** The fields LookupEvents derives from a record. */
export interface DerivedFields {
  readonly eventId?: string;
  readonly eventName?: string;
  readonly eventSource?: string;
  readonly readOnly?: 'true' | 'false';
  readonly username?: string;
  readonly accessKeyId?: string;
  readonly resources: readonly DerivedResource[];
}

export function derivedFields(record: Json): DerivedFields {
  const identity = (typeof record.userIdentity === 'object' && record.userIdentity) || {};
  const resources = Array.isArray(record.resources) ? (record.resources as unknown[]) : [];
  const derived: DerivedFields = {
    resources: resources
      .filter((r): r is Json => typeof r === 'object' && r !== null)
      .map((r) => ({
        ...(str(r.type) ? { type: r.type as string } : {}),
        ...(str(r.ARN) ? { arn: r.ARN as string } : {}),
      })),
  };
  const eventId = str(record.eventID);
  // An Insights record names the call it is about in insightDetails, where CloudTrail's
  // LookupEvents finds it by EventName and EventSource (docs/formats.md#insights-events).
  const details = (typeof record.insightDetails === 'object' && record.insightDetails) || {};
  const eventName = str(record.eventName) ?? str((details as Json).eventName);
  const eventSource = str(record.eventSource) ?? str((details as Json).eventSource);
  const username = usernameOf(record);
  const accessKeyId = str((identity as Json).accessKeyId);
  return {
    ...derived,
    ...(eventId ? { eventId } : {}),
    ...(eventName ? { eventName } : {}),
    ...(eventSource ? { eventSource } : {}),
    ...(typeof record.readOnly === 'boolean'
      ? { readOnly: record.readOnly ? 'true' : 'false' }
      : {}),
    ...(username ? { username } : {}),
    ...(accessKeyId ? { accessKeyId } : {}),
  };
}

/** The (key, value) pairs a record is found under, EventId aside (distinct pairs). */
export function lookupPairs(record: Json): [Exclude<AttributeKey, 'EventId'>, string][] {
  const d = derivedFields(record);
  const pairs: [Exclude<AttributeKey, 'EventId'>, string][] = [];
  if (d.eventName) pairs.push(['EventName', d.eventName]);
  if (d.eventSource) pairs.push(['EventSource', d.eventSource]);
  if (d.readOnly) pairs.push(['ReadOnly', d.readOnly]);
  if (d.username) pairs.push(['Username', d.username]);
  if (d.accessKeyId) pairs.push(['AccessKeyId', d.accessKeyId]);
  for (const resource of d.resources) {
    if (resource.type) pairs.push(['ResourceType', resource.type]);
    if (resource.arn) {
      pairs.push(['ResourceName', resource.arn]);
      const last = lastSegment(resource.arn);
      if (last !== '') pairs.push(['ResourceName', last]);
    }
  }
  const seen = new Set<string>();
  return pairs.filter(([key, value]) => {
    const id = `${key}\u0000${value}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Keys

/**
 * The eventID in an order-preserving, prefix-free form: U+0000–U+0002 are escaped as U+0002
 * followed by U+0003–U+0005 and the end is marked by U+0001, so byte order of the escaped form
 * followed by anything equals byte order of the eventIDs.
 */
export function escapeEventId(eventId: string): string {
  return eventId.replace(/[\u0000-\u0002]/g, (c) => String.fromCharCode(2, c.charCodeAt(0) + 3));
}

function unescapeEventId(escaped: string): string {
  return escaped.replace(/\u0002([\u0003-\u0005])/g, (_, c: string) =>
    String.fromCharCode(c.charCodeAt(0) - 3),
  );
}

/** The sort key of an event: eventTime, "#", escaped eventID, U+0001, content hash. */
export function sortKeyOf(eventTime: string, eventId: string, hash: string): string {
  return `${eventTime}#${escapeEventId(eventId)}\u0001${hash}`;
}

/** The record item's key for an index sort key. */
export function recordKeyOf(sortKey: string): { pk: string; sk: string } {
  const end = sortKey.lastIndexOf('\u0001');
  return { pk: `E#${unescapeEventId(sortKey.slice(21, end))}`, sk: sortKey.slice(end + 1) };
}

/**
 * Byte-order comparison of sort keys (DynamoDB's order of S keys: UTF-8 bytes). UTF-16 code
 * units order like UTF-8 bytes except where a surrogate (a code point above U+FFFF) meets a
 * unit from U+E000 to U+FFFF, so only a first difference involving a surrogate is compared as
 * bytes; sorting a busy minute's keys makes no buffers.
 */
export function compareSortKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if ((x >= 0xd800 && x <= 0xdfff) || (y >= 0xd800 && y <= 0xdfff))
      return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
    return x - y;
  }
  return a.length - b.length;
}

function keyValue(value: string): string {
  return Buffer.byteLength(value, 'utf8') > MAX_KEY_VALUE_BYTES
    ? `#sha256:${createHash('sha256').update(value, 'utf8').digest('hex')}`
    : value;
}

/**
 * The partition key of one index shard of the version-1 layout: items written before
 * grouped index items existed, read (never written) for 90 days after the upgrade
 * (docs/formats.md#lookupevents).
 */
export function indexPartitionKey(
  category: HistoryCategory,
  key: Exclude<AttributeKey, 'EventId'> | undefined,
  value: string,
  shard: number,
): string {
  return `${category}${key ? KEY_CODES[key] : ALL_CODE}#${shard}#${key ? keyValue(value) : ''}`;
}

/**
 * The partition key of one (key, value) of grouped index items: `<c><K>$<value>`. "$" where
 * version 1 has "#<shard>#", so the two layouts never share a partition. Events without a
 * readOnly field are under ReadOnly with the empty value (`<c>R$`), which no request can ask
 * for: the no-attribute lookup merges the three ReadOnly partitions instead of a fourth copy.
 */
export function groupPartitionKey(
  category: HistoryCategory,
  key: Exclude<AttributeKey, 'EventId'>,
  value: string,
): string {
  return `${category}${KEY_CODES[key]}$${value === '' ? '' : keyValue(value)}`;
}

/** The partitions the no-attribute lookup merges: ReadOnly true, false and absent. */
export function allEventsPartitions(category: HistoryCategory): string[] {
  return ['true', 'false', ''].map((value) => groupPartitionKey(category, 'ReadOnly', value));
}

// ---------------------------------------------------------------------------------------------
// Stored bytes

/**
 * A preset dictionary for records (deflate's, RFC 1951 + zlib's setDictionary): the field names
 * and values most CloudTrail records share, so a single ~1.3 KB record compresses to about
 * 0.5 KB. Part of the stored format (codec 1): never change it; a new dictionary is a new codec.
 */
const RECORD_DICTIONARY_V1 = Buffer.from(
  [
    '"requestParameters":null,"responseElements":null,"additionalEventData":{',
    '"serviceEventDetails":{"vpcEndpointId":"vpce-","vpcEndpointAccountId":"',
    '"errorCode":"AccessDenied","errorMessage":"User: arn:aws:sts::',
    '"insightDetails":{"state":"Start","eventSource":"","eventName":"","insightType":"ApiCallRateInsight"',
    '"eventType":"AwsServiceEvent","eventType":"AwsConsoleSignIn","AWS::IAM::Role","AWS::S3::Bucket","AWS::KMS::Key"',
    '"userAgent":"aws-sdk-go-v2/1.","userAgent":"aws-cli/2.","userAgent":"Boto3/1.',
    'Botocore/1.","userAgent":"console.amazonaws.com","AWS Internal",',
    '"tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"',
    '"tlsDetails":{"tlsVersion":"TLSv1.2","cipherSuite":"ECDHE-RSA-AES128-GCM-SHA256",',
    '"sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROA","arn":"arn:aws:iam::',
    ':role/","accountId":"","userName":""},"webIdFederationData":{},"attributes":{"creationDate":"',
    'T00:00:00Z","mfaAuthenticated":"false"}},"invokedBy":".amazonaws.com"},',
    '{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROA',
    ':","arn":"arn:aws:sts::","assumed-role/","accountId":"","accessKeyId":"ASIA',
    '{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDA","arn":"arn:aws:iam::',
    ':user/","accountId":"","accessKeyId":"AKIA","userName":"',
    '"eventTime":"20","eventSource":".amazonaws.com","eventName":"Describe","eventName":"List","eventName":"Get',
    '","awsRegion":"us-east-1","sourceIPAddress":".amazonaws.com","userAgent":"',
    '"resources":[{"accountId":"","type":"AWS::","ARN":"arn:aws:',
    '"},"readOnly":true,"readOnly":false,"eventType":"AwsApiCall","apiVersion":"',
    '"managementEvent":true,"recipientAccountId":"","sharedEventID":"',
    '"eventCategory":"Management"}',
    '"requestID":"","eventID":"',
  ].join(''),
  'utf8',
);

/** Leading byte of a compressed record: deflate-raw with RECORD_DICTIONARY_V1. */
const RECORD_CODEC_V1 = 1;

/** A record's JSON text as a record item stores it (`z`): codec byte, then deflate-raw. */
export function compressRecord(text: string): Uint8Array {
  const body = deflateRawSync(Buffer.from(text, 'utf8'), { dictionary: RECORD_DICTIONARY_V1 });
  return Buffer.concat([Buffer.of(RECORD_CODEC_V1), body]);
}

/** The record's JSON text of a record item, in either layout (`j` text or `z` compressed). */
export function recordText(item: Pick<HistoryRecordItem, 'j' | 'z'>): string {
  if (item.j !== undefined) return item.j;
  const z = item.z;
  if (z === undefined || z[0] !== RECORD_CODEC_V1)
    throw new Error(`history: a record item holds neither j nor a known codec (${z?.[0]})`);
  return inflateRawSync(Buffer.from(z.buffer, z.byteOffset + 1, z.byteLength - 1), {
    dictionary: RECORD_DICTIONARY_V1,
  }).toString('utf8');
}

/** What the indexer writes for one stored record, or why it writes nothing. */
export type IndexPlan =
  | {
      readonly kind: 'index';
      readonly record: HistoryRecordItem;
      /** The event's sort key (eventTime, eventID, content hash). */
      readonly sortKey: string;
      /** The group partitions that list it (one per lookup key and value). */
      readonly partitions: readonly string[];
    }
  | { readonly kind: 'skip'; readonly reason: 'not-json' | 'not-history' | 'unindexable' };

/** Plans the items for one record (its JSON text as stored in the stream). */
export function planIndex(text: string): IndexPlan {
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    return { kind: 'skip', reason: 'not-json' };
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record))
    return { kind: 'skip', reason: 'not-json' };
  const fields = record as Json;
  const category = historyCategory(fields);
  if (!category) return { kind: 'skip', reason: 'not-history' };
  const eventId = str(fields.eventID);
  const eventTime = fields.eventTime;
  if (!eventId || typeof eventTime !== 'string' || !ISO_SECONDS_PATTERN.test(eventTime))
    return { kind: 'skip', reason: 'unindexable' };
  const epoch = Math.floor(Date.parse(eventTime) / 1000);
  if (Number.isNaN(epoch)) return { kind: 'skip', reason: 'unindexable' };
  const hash = storedRecordHash(fields, text).slice(0, 16);
  const sk = sortKeyOf(eventTime, eventId, hash);
  if (
    Buffer.byteLength(sk, 'utf8') > MAX_SORT_KEY_BYTES ||
    Buffer.byteLength(eventId, 'utf8') > MAX_EVENT_ID_BYTES
  )
    return { kind: 'skip', reason: 'unindexable' };
  const pairs = lookupPairs(fields);
  const partitions = pairs.map(([key, value]) => groupPartitionKey(category, key, value));
  if (!pairs.some(([key]) => key === 'ReadOnly'))
    partitions.push(groupPartitionKey(category, 'ReadOnly', ''));
  return {
    kind: 'index',
    record: {
      pk: `E#${eventId}`,
      sk: hash,
      t: eventTime,
      c: category,
      z: compressRecord(text),
      x: epoch + HISTORY_TTL_SECONDS,
    },
    sortKey: sk,
    partitions,
  };
}
