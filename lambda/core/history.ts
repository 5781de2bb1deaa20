/**
 * Event history (docs/formats.md#lookupevents): which records are indexed and under which keys, the derived
 * fields of LookupEvents, request validation, lookup planning (a k-way merge of sharded Query
 * streams, newest first) and authenticated page tokens. This module plans lookups and index
 * batches; history-keys.ts holds the key layout, history-request.ts the request validation,
 * history-tokens.ts the page tokens (all re-exported here). Pure: I/O goes through the
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
import type { HistoryRecordItem, HistoryStore, MacPort } from './ports';
import { formatIsoSeconds, MAX_ISO_MS, MIN_ISO_MS } from './contracts';
import {
  derivedFields,
  HISTORY_WINDOW_SECONDS,
  indexPartitionKey,
  MAX_EVENT_ID_BYTES,
  planIndex,
  recordKeyOf,
  sortKeyOf,
  type AttributeKey,
  type Json,
} from './history-keys';
import { parseLookupRequest, type LookupRequest } from './history-request';
import { decodeToken, encodeToken } from './history-tokens';
import { HISTORY_TABLE } from './tables';

export { LOOKUP_EVENTS_TARGET } from './contracts';
export * from './history-keys';
export * from './history-request';
export * from './history-tokens';

/** A page's response stays under 5 MB. */
export const MAX_PAGE_BYTES = 5_000_000;

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
