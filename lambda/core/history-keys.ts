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
import type { HistoryGroupItem, HistoryRecordItem } from './ports';
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
/**
 * The most entry bytes (before compression) one group item holds: compressed, they stay under
 * MAX_ITEM_BYTES with room for the keys (deflate grows incompressible input by well under 1 %).
 */
export const MAX_GROUP_ENTRY_BYTES = 360_000;

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

/** Characters of a sort key's minute, `YYYY-MM-DDTHH:MM` (a group item's bucket). */
const BUCKET_CHARS = 16;
/** Characters of a sort key's second, `YYYY-MM-DDTHH:MM:`, that a group entry leaves out. */
const ENTRY_PREFIX_CHARS = BUCKET_CHARS + 1;

/** The minute of a sort key (or of a sort-key bound): group items are bucketed by it. */
export function bucketOf(sortKey: string): string {
  return sortKey.slice(0, BUCKET_CHARS);
}

/** The minute a group item's sort key names. */
export function groupBucket(groupSortKey: string): string {
  return groupSortKey.slice(0, BUCKET_CHARS);
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

function varint(n: number, out: number[]): void {
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
}

/** The bytes of a group's entries (uncompressed): per entry a varint length and its UTF-8 text. */
function entryBytes(entries: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const text = Buffer.from(entry.slice(ENTRY_PREFIX_CHARS), 'utf8');
    const length: number[] = [];
    varint(text.length, length);
    parts.push(Buffer.from(length), text);
  }
  return Buffer.concat(parts);
}

/** Leading byte of a group item's `e`: the entry bytes as they are. */
const ENTRIES_PLAIN = 0;
/** Leading byte of a group item's `e`: the entry bytes deflate-raw compressed. */
const ENTRIES_DEFLATE = 1;
/**
 * Entry bytes up to which a group item stores them plain: such an item is 1 write unit either
 * way, and a zlib stream per item would cost the indexer more CPU than the item costs to write.
 */
const PLAIN_ENTRY_BYTES = 900;

/** A group item's `e`: format byte, then the entry bytes, compressed when that saves units. */
function encodeEntries(entries: readonly string[]): Uint8Array {
  const bytes = entryBytes(entries);
  if (bytes.length <= PLAIN_ENTRY_BYTES) return Buffer.concat([Buffer.of(ENTRIES_PLAIN), bytes]);
  return Buffer.concat([Buffer.of(ENTRIES_DEFLATE), deflateRawSync(bytes)]);
}

/** The sort keys a group item lists (attribute `e`), newest first. */
export function groupEntries(item: Pick<HistoryGroupItem, 'sk' | 'e'>): string[] {
  const prefix = `${groupBucket(item.sk)}:`;
  const e = Buffer.from(item.e.buffer, item.e.byteOffset, item.e.byteLength);
  if (e[0] !== ENTRIES_PLAIN && e[0] !== ENTRIES_DEFLATE)
    throw new Error(`history: group item ${item.sk} has an unknown entry format (${e[0]})`);
  const bytes = e[0] === ENTRIES_PLAIN ? e.subarray(1) : inflateRawSync(e.subarray(1));
  const out: string[] = [];
  let i = 0;
  while (i < bytes.length) {
    let length = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[i++]!;
      length |= (b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7;
    }
    out.push(prefix + bytes.toString('utf8', i, i + length));
    i += length;
  }
  return out;
}

const NUMBER_ATTRIBUTE_BYTES = 21;

/** A group item's size as DynamoDB counts it (an upper bound for its number attribute). */
export function groupItemBytes(item: { pk: string; sk: string; e: Uint8Array }): number {
  return (
    'pk'.length +
    Buffer.byteLength(item.pk, 'utf8') +
    'sk'.length +
    Buffer.byteLength(item.sk, 'utf8') +
    'e'.length +
    item.e.length +
    'x'.length +
    NUMBER_ATTRIBUTE_BYTES
  );
}

/**
 * The group items of one (partition, minute): the sort keys (newest first) split into parts of
 * at most `maxEntryBytes` entry bytes, each part one item whose size is checked against
 * DynamoDB's 400 KB (halved again in the unexpected case it does not fit). The group id is a
 * digest of the whole list, so writing the same batch again writes the same items.
 */
export function groupItems(
  pk: string,
  sortKeys: readonly string[],
  x: number,
  maxEntryBytes = MAX_GROUP_ENTRY_BYTES,
): HistoryGroupItem[] {
  const bucket = bucketOf(sortKeys[0]!);
  const id = createHash('sha256')
    .update(`${pk}\u0000${sortKeys.join('\u0000')}`, 'utf8')
    .digest('hex')
    .slice(0, 16);
  const parts: string[][] = [];
  let part: string[] = [];
  let bytes = 0;
  for (const sk of sortKeys) {
    const size = Buffer.byteLength(sk, 'utf8') - ENTRY_PREFIX_CHARS + 2;
    if (part.length > 0 && bytes + size > maxEntryBytes) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(sk);
    bytes += size;
  }
  parts.push(part);
  const items: HistoryGroupItem[] = [];
  const emit = (entries: string[]): void => {
    const item = {
      pk,
      sk: `${bucket}#${id}#${items.length}`,
      x,
      e: encodeEntries(entries),
    };
    if (groupItemBytes(item) > MAX_ITEM_BYTES && entries.length > 1) {
      const half = Math.ceil(entries.length / 2);
      emit(entries.slice(0, half));
      emit(entries.slice(half));
      return;
    }
    if (groupItemBytes(item) > MAX_ITEM_BYTES)
      throw new Error(`history: one sort key makes a group item over ${MAX_ITEM_BYTES} bytes`);
    items.push(item);
  };
  parts.forEach(emit);
  return items;
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

/** The group items that list `events` (one batch's planned events), per partition and minute. */
export function planGroups(
  events: readonly { readonly sortKey: string; readonly partitions: readonly string[] }[],
): HistoryGroupItem[] {
  const groups = new Map<string, Map<string, Set<string>>>();
  for (const { sortKey, partitions } of events) {
    const bucket = bucketOf(sortKey);
    for (const pk of partitions) {
      const byBucket = groups.get(pk) ?? new Map<string, Set<string>>();
      groups.set(pk, byBucket);
      const keys = byBucket.get(bucket) ?? new Set<string>();
      byBucket.set(bucket, keys);
      keys.add(sortKey);
    }
  }
  const items: HistoryGroupItem[] = [];
  for (const [pk, byBucket] of groups) {
    for (const [bucket, keys] of byBucket) {
      const sorted = [...keys].sort((a, b) =>
        Buffer.compare(Buffer.from(b, 'utf8'), Buffer.from(a, 'utf8')),
      );
      // TTL a day past the window from the bucket's last second (none of it expires early).
      const x = Math.floor(Date.parse(`${bucket}:59Z`) / 1000) + HISTORY_TTL_SECONDS;
      items.push(...groupItems(pk, sorted, x));
    }
  }
  return items;
}
