/**
 * Event history (docs/formats.md#lookupevents): which records are indexed and under which keys, the derived
 * fields of LookupEvents, request validation, lookup planning (a k-way merge of sharded Query
 * streams, newest first) and authenticated page tokens. Pure: I/O goes through the
 * HistoryStore and MacPort ports.
 *
 * Order: eventTime descending, then eventID descending (UTF-8 byte order, DynamoDB's), then
 * content hash. Every index partition is sorted the same way by its sort key, so merging
 * partitions is a plain comparison of sort keys.
 *
 * Paging: a token holds the sort key of the last event returned (the cursor) and a digest of
 * the request parameters, under a MAC. The next page reads strictly below the cursor, with
 * strongly consistent Queries, so an event that was stored when paging began is returned
 * exactly once whatever arrives meanwhile (events arriving above the cursor — newer, or with
 * the cursor's second and a greater eventID — are not part of this paging; events arriving
 * below it may show).
 */
import { createHash } from 'node:crypto';
import { ApiError } from './api-error';
import type { HistoryIndexItem, HistoryRecordItem, HistoryStore, MacPort } from './ports';
import { formatIsoSeconds, MAX_ISO_MS, MIN_ISO_MS } from './contracts';
import { HISTORY_TABLE } from './tables';

export { LOOKUP_EVENTS_TARGET } from './contracts';

/** History keeps 90 days (enforced at read time). */
export const HISTORY_WINDOW_SECONDS = 90 * 86400;
/** TTL: a day beyond the window, so nothing inside the window is ever expired. */
export const HISTORY_TTL_SECONDS = HISTORY_WINDOW_SECONDS + 86400;
export const DEFAULT_MAX_RESULTS = 50;
/** A page's response stays under 5 MB. */
export const MAX_PAGE_BYTES = 5_000_000;
/**
 * CloudTrail's bound on a LookupAttribute value: 2,000 characters (UTF-16 code units), where
 * "_", " ", "," and a line feed count as two (see {@link attributeValueLength}).
 */
export const MAX_ATTRIBUTE_VALUE_CHARS = 2000;
/**
 * The longest eventID (UTF-8) history stores: its record item's partition key, `E#<eventID>`,
 * must fit DynamoDB's 2,048 bytes. An EventId lookup for a longer value finds nothing, without
 * a Query DynamoDB would refuse (docs/guarantees.md#fan-out-and-history).
 */
export const MAX_EVENT_ID_BYTES = 2000;
/** HMAC-SHA-256, the page tokens' MAC: 32 bytes (both MacPort implementations). */
const TOKEN_MAC_BYTES = 32;
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

type Json = Record<string, unknown>;

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
  const eventName = str(record.eventName);
  const eventSource = str(record.eventSource);
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

const EVENT_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

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
  if (!eventId || typeof eventTime !== 'string' || !EVENT_TIME.test(eventTime))
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

// ---------------------------------------------------------------------------------------------
// Requests

export interface LookupRequest {
  readonly attribute?: { readonly key: AttributeKey; readonly value: string };
  /** Whole epoch seconds (floored). */
  readonly startSeconds?: number;
  readonly endSeconds?: number;
  readonly category: HistoryCategory;
  readonly maxResults: number;
  readonly nextToken?: string;
}

function bad(code: string, message: string): ApiError {
  return new ApiError(code, message);
}

/** A value's length as CloudTrail counts it: UTF-16 code units, "_", " ", "," and "\n" twice. */
export function attributeValueLength(value: string): number {
  return value.length + (value.match(/[_ ,\n]/g)?.length ?? 0);
}

/** Index of the first unpaired UTF-16 surrogate, or -1 when the text is well-formed. */
function unpairedSurrogate(value: string): number {
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      else return i;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) return i;
  }
  return -1;
}

function epochSeconds(request: Json, field: 'StartTime' | 'EndTime'): number | undefined {
  const value = request[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw bad('InvalidTimeRangeException', `${field}: must be a time in epoch seconds (a number)`);
  return Math.floor(value);
}

/** Validates a LookupEvents request (docs/formats.md#lookupevents); throws ApiError with CloudTrail's codes. */
export function parseLookupRequest(request: Json): LookupRequest {
  let attribute: LookupRequest['attribute'];
  const attributes = request.LookupAttributes;
  if (attributes !== undefined && attributes !== null) {
    if (!Array.isArray(attributes))
      throw bad('InvalidLookupAttributesException', 'LookupAttributes: must be a list');
    if (attributes.length > 1)
      throw bad(
        'InvalidLookupAttributesException',
        `LookupAttributes: at most one attribute per lookup, got ${attributes.length}`,
      );
    const [first] = attributes as unknown[];
    if (first !== undefined) {
      const { AttributeKey: key, AttributeValue: value } = (first ?? {}) as Json;
      if (typeof key !== 'string' || !(ATTRIBUTE_KEYS as readonly string[]).includes(key))
        throw bad(
          'InvalidLookupAttributesException',
          `LookupAttributes[0].AttributeKey: ${JSON.stringify(key)} is not one of ${ATTRIBUTE_KEYS.join(', ')}`,
        );
      if (typeof value !== 'string' || value === '')
        throw bad(
          'InvalidLookupAttributesException',
          'LookupAttributes[0].AttributeValue: must be a non-empty string',
        );
      const length = attributeValueLength(value);
      if (length > MAX_ATTRIBUTE_VALUE_CHARS)
        throw bad(
          'InvalidLookupAttributesException',
          `LookupAttributes[0].AttributeValue: at most ${MAX_ATTRIBUTE_VALUE_CHARS} characters ("_", " ", "," and line feeds count as two), got ${length}`,
        );
      const unpaired = unpairedSurrogate(value);
      if (unpaired >= 0)
        throw bad(
          'InvalidLookupAttributesException',
          `LookupAttributes[0].AttributeValue: must be Unicode text; character ${unpaired} is an unpaired UTF-16 surrogate`,
        );
      attribute = { key: key as AttributeKey, value };
    }
  }
  const startSeconds = epochSeconds(request, 'StartTime');
  const endSeconds = epochSeconds(request, 'EndTime');
  if (startSeconds !== undefined && endSeconds !== undefined && startSeconds > endSeconds)
    throw bad('InvalidTimeRangeException', 'StartTime: must not be after EndTime');
  let category: HistoryCategory = 'm';
  if (request.EventCategory !== undefined && request.EventCategory !== null) {
    if (request.EventCategory !== 'insight')
      throw bad(
        'InvalidEventCategoryException',
        `EventCategory: ${JSON.stringify(request.EventCategory)} is not supported; the only value is "insight"`,
      );
    category = 'i';
  }
  let maxResults = DEFAULT_MAX_RESULTS;
  if (request.MaxResults !== undefined && request.MaxResults !== null) {
    const m = request.MaxResults;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > 50)
      throw bad(
        'InvalidMaxResultsException',
        `MaxResults: must be an integer from 1 to 50, got ${JSON.stringify(m)}`,
      );
    maxResults = m;
  }
  let nextToken: string | undefined;
  if (request.NextToken !== undefined && request.NextToken !== null) {
    if (typeof request.NextToken !== 'string' || request.NextToken === '')
      throw bad('InvalidNextTokenException', 'NextToken: is not a token this API issued');
    nextToken = request.NextToken;
  }
  return {
    ...(attribute ? { attribute } : {}),
    ...(startSeconds !== undefined ? { startSeconds } : {}),
    ...(endSeconds !== undefined ? { endSeconds } : {}),
    category,
    maxResults,
    ...(nextToken ? { nextToken } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Page tokens

const TOKEN_CONTEXT = Buffer.from('opentrail/LookupEvents/v1\n', 'utf8');

interface TokenPayload {
  readonly v: 1;
  /** Digest of the parameters the token is valid for. */
  readonly p: string;
  /** Sort key of the last event returned. */
  readonly c: string;
}

/** A digest of what a page token binds: attribute, time range (whole seconds), category. */
export function parameterDigest(request: LookupRequest): string {
  const canonical = JSON.stringify([
    request.category,
    request.attribute?.key ?? null,
    request.attribute?.value ?? null,
    request.startSeconds ?? null,
    request.endSeconds ?? null,
  ]);
  return createHash('sha256').update(canonical, 'utf8').digest('base64url').slice(0, 22);
}

export async function encodeToken(
  mac: MacPort,
  request: LookupRequest,
  cursor: string,
): Promise<string> {
  const payload: TokenPayload = { v: 1, p: parameterDigest(request), c: cursor };
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  const tag = await mac.generate(Buffer.concat([TOKEN_CONTEXT, body]));
  return `${body.toString('base64url')}.${Buffer.from(tag).toString('base64url')}`;
}

/** The cursor of a token this API issued for these parameters; InvalidNextTokenException otherwise. */
export async function decodeToken(
  mac: MacPort,
  request: LookupRequest,
  token: string,
): Promise<string> {
  const invalid = (why: string): ApiError => bad('InvalidNextTokenException', `NextToken: ${why}`);
  const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(token);
  if (!match || token.length > 4096) throw invalid('is not a token this API issued');
  const body = Buffer.from(match[1]!, 'base64url');
  const tag = Buffer.from(match[2]!, 'base64url');
  // Refused before the MAC is asked: KMS VerifyMac rejects some malformed MACs as bad requests.
  if (tag.length !== TOKEN_MAC_BYTES) throw invalid('is not a token this API issued');
  if (!(await mac.verify(Buffer.concat([TOKEN_CONTEXT, body]), tag)))
    throw invalid('is not a token this API issued (it fails authentication)');
  let payload: TokenPayload;
  try {
    payload = JSON.parse(body.toString('utf8')) as TokenPayload;
  } catch {
    throw invalid('is not a token this API issued');
  }
  if (payload.v !== 1 || typeof payload.c !== 'string')
    throw invalid('is not a token this API issued');
  if (payload.p !== parameterDigest(request))
    throw invalid(
      'was issued for other LookupAttributes, StartTime, EndTime or EventCategory; repeat the first request’s parameters with it',
    );
  return payload.c;
}

// ---------------------------------------------------------------------------------------------
// Lookup

/** `YYYY-MM-DDTHH:MM:SSZ` of epoch seconds, clamped to years 0000–9999. */
export function isoSeconds(seconds: number): string {
  return formatIsoSeconds(Math.min(Math.max(seconds * 1000, MIN_ISO_MS), MAX_ISO_MS));
}

/** The inclusive sort-key range of a request at `nowMs` (the 90-day window applied). */
export function sortKeyRange(request: LookupRequest, nowMs: number): { lo: string; hi: string } {
  const windowStart = Math.floor(nowMs / 1000) - HISTORY_WINDOW_SECONDS;
  const start = Math.max(request.startSeconds ?? windowStart, windowStart);
  // "$" sorts after every sort key of that second ("#" follows the 20-char time).
  const hi =
    request.endSeconds === undefined
      ? '9999-12-31T23:59:59Z$'
      : `${isoSeconds(request.endSeconds)}$`;
  return { lo: isoSeconds(start), hi };
}

/** Byte-order comparison of sort keys (DynamoDB's order of S keys). */
export function compareSortKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The partitions a request reads (one per write shard), or the record partition for EventId. */
export function partitionsFor(request: LookupRequest): string[] {
  const attribute = request.attribute;
  if (attribute?.key === 'EventId') return [`E#${attribute.value}`];
  return Array.from({ length: HISTORY_TABLE.writeShards }, (_, shard) =>
    indexPartitionKey(
      request.category,
      attribute ? (attribute.key as Exclude<AttributeKey, 'EventId'>) : undefined,
      attribute?.value ?? '',
      shard,
    ),
  );
}

interface Stream {
  readonly pk: string;
  buffer: string[];
  hi: string;
  /** The sort key the next read must drop (already seen: the range is inclusive). */
  exclude?: string;
  done: boolean;
}

/**
 * The first `count` sort keys in [lo, hi] across the partitions, newest first (a k-way merge
 * that reads each partition only as far as the merge needs it), without `exclude`.
 */
export async function mergePartitions(
  store: HistoryStore,
  partitions: readonly string[],
  range: { lo: string; hi: string; exclude?: string },
  count: number,
): Promise<string[]> {
  if (compareSortKeys(range.lo, range.hi) > 0) return [];
  const streams: Stream[] = partitions.map((pk) => ({
    pk,
    buffer: [],
    hi: range.hi,
    ...(range.exclude !== undefined ? { exclude: range.exclude } : {}),
    done: false,
  }));
  const fill = async (stream: Stream, want: number): Promise<void> => {
    const drop = stream.exclude !== undefined ? 1 : 0;
    const { sortKeys, more } = await store.queryIndex({
      pk: stream.pk,
      lo: range.lo,
      hi: stream.hi,
      limit: want + drop,
    });
    const fresh = sortKeys.filter((sk) => sk !== stream.exclude);
    stream.buffer.push(...fresh);
    const last = sortKeys[sortKeys.length - 1];
    if (last !== undefined) {
      stream.hi = last;
      stream.exclude = last;
    }
    stream.done = !more || sortKeys.length === 0;
  };
  const out: string[] = [];
  const first = Math.ceil(count / streams.length) + 1;
  await Promise.all(streams.map((s) => fill(s, first)));
  while (out.length < count) {
    const empty = streams.filter((s) => s.buffer.length === 0 && !s.done);
    if (empty.length > 0) await Promise.all(empty.map((s) => fill(s, count - out.length)));
    let best: Stream | undefined;
    for (const s of streams) {
      const head = s.buffer[0];
      if (head !== undefined && (!best || compareSortKeys(head, best.buffer[0]!) > 0)) best = s;
    }
    if (!best) break;
    out.push(best.buffer.shift()!);
  }
  return out;
}

export interface LookupEvent {
  readonly EventId?: string;
  readonly EventName?: string;
  readonly ReadOnly?: string;
  readonly AccessKeyId?: string;
  readonly EventTime: number;
  readonly EventSource?: string;
  readonly Username?: string;
  readonly Resources: { ResourceType?: string; ResourceName?: string }[];
  readonly CloudTrailEvent: string;
}

export interface LookupResponse {
  Events: LookupEvent[];
  NextToken?: string;
}

/** The response entry of a stored record. */
export function toLookupEvent(item: HistoryRecordItem): LookupEvent {
  const d = derivedFields(JSON.parse(item.j) as Json);
  return {
    ...(d.eventId ? { EventId: d.eventId } : {}),
    ...(d.eventName ? { EventName: d.eventName } : {}),
    ...(d.readOnly ? { ReadOnly: d.readOnly } : {}),
    ...(d.accessKeyId ? { AccessKeyId: d.accessKeyId } : {}),
    EventTime: Date.parse(item.t) / 1000,
    ...(d.eventSource ? { EventSource: d.eventSource } : {}),
    ...(d.username ? { Username: d.username } : {}),
    Resources: d.resources.map((r) => ({
      ...(r.type ? { ResourceType: r.type } : {}),
      ...(r.arn ? { ResourceName: r.arn } : {}),
    })),
    CloudTrailEvent: item.j,
  };
}

export interface LookupDeps {
  readonly store: HistoryStore;
  readonly mac: MacPort;
  readonly now: () => number;
  /** Counts records an index item pointed to but that were not found (never expected). */
  readonly onMissingRecord?: (key: { pk: string; sk: string }) => void;
}

/** LookupEvents (docs/formats.md#lookupevents). Throws ApiError for bad input. */
export async function lookupEvents(raw: Json, deps: LookupDeps): Promise<LookupResponse> {
  const request = parseLookupRequest(raw);
  const cursor = request.nextToken
    ? await decodeToken(deps.mac, request, request.nextToken)
    : undefined;
  const range = sortKeyRange(request, deps.now());
  const hi = cursor !== undefined && compareSortKeys(cursor, range.hi) < 0 ? cursor : range.hi;
  const want = request.maxResults + 1;

  let page: HistoryRecordItem[];
  if (
    request.attribute?.key === 'EventId' &&
    Buffer.byteLength(request.attribute.value, 'utf8') > MAX_EVENT_ID_BYTES
  ) {
    // No such event can be stored (planIndex skips it), and DynamoDB refuses the key.
    page = [];
  } else if (request.attribute?.key === 'EventId') {
    const items = (await deps.store.queryRecords(`E#${request.attribute.value}`))
      .filter((item) => item.c === request.category)
      .map((item) => ({ item, sk: sortKeyOf(item.t, request.attribute!.value, item.sk) }))
      .filter(
        ({ sk }) =>
          compareSortKeys(sk, range.lo) >= 0 && compareSortKeys(sk, hi) <= 0 && sk !== cursor,
      )
      .sort((a, b) => compareSortKeys(b.sk, a.sk));
    page = items.slice(0, want).map(({ item }) => item);
  } else {
    const sortKeys = await mergePartitions(
      deps.store,
      partitionsFor(request),
      { lo: range.lo, hi, ...(cursor !== undefined ? { exclude: cursor } : {}) },
      want,
    );
    const keys = sortKeys.slice(0, request.maxResults).map(recordKeyOf);
    const found = new Map(
      (await deps.store.getRecords(keys)).map((item) => [`${item.pk}\u0000${item.sk}`, item]),
    );
    page = [];
    for (const key of keys) {
      const item = found.get(`${key.pk}\u0000${key.sk}`);
      if (item) page.push(item);
      else deps.onMissingRecord?.(key);
    }
    if (sortKeys.length > request.maxResults) {
      // A sentinel: there is more after this page (its record is not needed).
      page.push({ pk: '', sk: '', t: '', c: request.category, j: '', x: 0 });
    }
  }

  const events: LookupEvent[] = [];
  let bytes = 20;
  let last: string | undefined;
  let more = page.length > request.maxResults;
  for (const item of page.slice(0, request.maxResults)) {
    const event = toLookupEvent(item);
    const size = Buffer.byteLength(JSON.stringify(event), 'utf8') + 1;
    if (events.length > 0 && bytes + size > MAX_PAGE_BYTES - 2048) {
      more = true;
      break;
    }
    events.push(event);
    bytes += size;
    last = sortKeyOf(item.t, item.pk.slice(2), item.sk);
  }
  const response: LookupResponse = { Events: events };
  if (more && last !== undefined) response.NextToken = await encodeToken(deps.mac, request, last);
  return response;
}

// ---------------------------------------------------------------------------------------------
// Indexer

export interface IndexerRecord {
  readonly sequenceNumber: string;
  readonly data: Uint8Array;
}

export interface IndexBatchResult {
  /** Events written for the first time. */
  readonly indexed: number;
  /** Events whose record item already existed (re-delivered): rewritten index items only. */
  readonly duplicates: number;
  readonly skipped: Readonly<Record<string, number>>;
  /** Sequence number of the first record that failed (Lambda's batchItemFailures), if any. */
  readonly firstFailure?: string;
  readonly error?: unknown;
}

/**
 * Indexes a batch in stream order, a few events at a time. Per event the record item is put
 * first (conditional: a re-delivery finds it and counts as a duplicate), then its index items;
 * keys are a function of the event, so re-running any part writes the same items and an event
 * never appears twice. A crash between the two leaves a record no index points to: invisible,
 * and rewritten with its index items when the batch is retried.
 */
export async function indexBatch(
  records: readonly IndexerRecord[],
  store: HistoryStore,
  concurrency = 8,
): Promise<IndexBatchResult> {
  const skipped: Record<string, number> = {};
  let indexed = 0;
  let duplicates = 0;
  for (let i = 0; i < records.length; i += concurrency) {
    const slice = records.slice(i, i + concurrency);
    const outcomes = await Promise.allSettled(
      slice.map(async (record) => {
        const plan = planIndex(Buffer.from(record.data).toString('utf8'));
        if (plan.kind === 'skip') {
          skipped[plan.reason] = (skipped[plan.reason] ?? 0) + 1;
          return;
        }
        const put = await store.putRecord(plan.record);
        await store.putIndex(plan.index);
        if (put === 'created') indexed++;
        else duplicates++;
      }),
    );
    const failed = outcomes.findIndex((o) => o.status === 'rejected');
    if (failed >= 0) {
      return {
        indexed,
        duplicates,
        skipped,
        firstFailure: slice[failed]!.sequenceNumber,
        error: (outcomes[failed] as PromiseRejectedResult).reason,
      };
    }
  }
  return { indexed, duplicates, skipped };
}
