/**
 * Event history's records and key layout (docs/formats.md#lookupevents): which records are
 * indexed, the derived fields of LookupEvents, and the keys of the record and index items
 * (tables.ts, HISTORY_TABLE). Pure.
 *
 * Order: eventTime descending, then eventID descending (UTF-8 byte order, DynamoDB's), then
 * content hash. Every index partition is sorted the same way by its sort key, so merging
 * partitions is a plain comparison of sort keys.
 */
import { createHash } from 'node:crypto';
import type { HistoryIndexItem, HistoryRecordItem } from './ports';
import { ISO_SECONDS_PATTERN } from './contracts';
import { HISTORY_TABLE } from './tables';

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

/** The partition key of one index shard. */
export function indexPartitionKey(
  category: HistoryCategory,
  key: Exclude<AttributeKey, 'EventId'> | undefined,
  value: string,
  shard: number,
): string {
  return `${category}${key ? KEY_CODES[key] : ALL_CODE}#${shard}#${key ? keyValue(value) : ''}`;
}

/** What the indexer writes for one stored record, or why it writes nothing. */
export type IndexPlan =
  | {
      readonly kind: 'index';
      readonly record: HistoryRecordItem;
      readonly index: readonly HistoryIndexItem[];
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
  const hash = createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 16);
  const sk = sortKeyOf(eventTime, eventId, hash);
  if (
    Buffer.byteLength(sk, 'utf8') > MAX_SORT_KEY_BYTES ||
    Buffer.byteLength(eventId, 'utf8') > MAX_EVENT_ID_BYTES
  )
    return { kind: 'skip', reason: 'unindexable' };
  const x = epoch + HISTORY_TTL_SECONDS;
  const shard = Number.parseInt(hash.slice(0, 8), 16) % HISTORY_TABLE.writeShards;
  const index: HistoryIndexItem[] = [
    { pk: indexPartitionKey(category, undefined, '', shard), sk, x },
    ...lookupPairs(fields).map(([key, value]) => ({
      pk: indexPartitionKey(category, key, value, shard),
      sk,
      x,
    })),
  ];
  return {
    kind: 'index',
    record: { pk: `E#${eventId}`, sk: hash, t: eventTime, c: category, j: text, x },
    index,
  };
}
