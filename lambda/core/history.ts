/**
 * Event history (docs/formats.md#lookupevents): which records are indexed and under which keys, the derived
 * fields of LookupEvents, request validation, lookup planning (a k-way merge of sharded Query
 * streams, newest first) and authenticated page tokens. This module plans lookups and index
 * batches; history-keys.ts holds the key layout, history-groups.ts the group index items,
 * history-read.ts the merge of sort keys, history-request.ts the request validation,
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
import {
  compareSortKeys,
  derivedFields,
  MAX_EVENT_ID_BYTES,
  planIndex,
  recordKeyOf,
  recordText,
  sortKeyOf,
  type Json,
} from './history-keys';
import { planGroups } from './history-groups';
import { readSortKeys, sortKeyRange } from './history-read';
import { parseLookupRequest } from './history-request';
import { decodeToken, encodeToken } from './history-tokens';

export { LOOKUP_EVENTS_TARGET } from './contracts';
export * from './history-keys';
export * from './history-groups';
export * from './history-read';
export * from './history-request';
export * from './history-tokens';

/** A page's response stays under 5 MB. */
export const MAX_PAGE_BYTES = 5_000_000;

// ---------------------------------------------------------------------------------------------
// Lookup

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
  const text = recordText(item);
  const d = derivedFields(JSON.parse(text) as Json);
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
    CloudTrailEvent: text,
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
  /** More events follow the page's records (known from the sort keys read). */
  let moreKeys = false;
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
    const sortKeys = await readSortKeys(
      deps.store,
      request,
      { lo: range.lo, hi, ...(cursor !== undefined ? { exclude: cursor } : {}) },
      want,
      deps.now(),
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
    moreKeys = sortKeys.length > request.maxResults;
  }

  const events: LookupEvent[] = [];
  let bytes = 20;
  let last: string | undefined;
  let more = moreKeys || page.length > request.maxResults;
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

/** Record items per HistoryStore.putRecords call (BatchGetItem's limit). */
export const RECORD_PUT_CHUNK = 100;

/**
 * Indexes a batch (docs/design.md#event-history-table). First the record items, in stream order,
 * RECORD_PUT_CHUNK to a putRecords call and a few calls at a time (a re-delivery finds its
 * items stored and counts as a duplicate); then the group items of every event whose record
 * was stored: per (key, value, minute) of the batch, one item per busy second and
 * one for the rest (history-groups.ts). Group keys are a digest of their content, so
 * re-running the same batch writes the same items; a retry that starts elsewhere writes other
 * groups listing the same sort keys, which lookups return once. A crash before the group items
 * leaves records no group lists: invisible, and listed when the batch is retried from the
 * reported record (the first record of the first failed call).
 */
export async function indexBatch(
  records: readonly IndexerRecord[],
  store: HistoryStore,
  concurrency = 4,
): Promise<IndexBatchResult> {
  const skipped: Record<string, number> = {};
  const planned: { at: number; sortKey: string; partitions: readonly string[] }[] = [];
  const items: {
    at: number;
    item: HistoryRecordItem;
    sortKey: string;
    partitions: readonly string[];
  }[] = [];
  let indexed = 0;
  let duplicates = 0;
  let failure: { at: number; error: unknown } | undefined;
  for (let at = 0; at < records.length; at++) {
    let plan: ReturnType<typeof planIndex>;
    try {
      plan = planIndex(Buffer.from(records[at]!.data).toString('utf8'));
    } catch (error) {
      failure = { at, error };
      break;
    }
    if (plan.kind === 'skip') skipped[plan.reason] = (skipped[plan.reason] ?? 0) + 1;
    else items.push({ at, item: plan.record, sortKey: plan.sortKey, partitions: plan.partitions });
  }
  const chunks: (typeof items)[] = [];
  for (let i = 0; i < items.length; i += RECORD_PUT_CHUNK)
    chunks.push(items.slice(i, i + RECORD_PUT_CHUNK));
  for (let i = 0; i < chunks.length && !failure; i += concurrency) {
    const slice = chunks.slice(i, i + concurrency);
    const outcomes = await Promise.allSettled(
      slice.map((chunk) => store.putRecords(chunk.map((entry) => entry.item))),
    );
    outcomes.forEach((outcome, j) => {
      const chunk = slice[j]!;
      if (outcome.status === 'rejected') {
        if (!failure || chunk[0]!.at < failure.at)
          failure = { at: chunk[0]!.at, error: outcome.reason };
        return;
      }
      outcome.value.forEach((put, k) => {
        if (put === 'created') indexed++;
        else duplicates++;
        const { at, sortKey, partitions } = chunk[k]!;
        planned.push({ at, sortKey, partitions });
      });
    });
  }
  // Only events before the first failure are listed: the retry starts at that record.
  const listed = planned.filter((event) => !failure || event.at < failure.at);
  try {
    await store.putGroups(planGroups(listed));
  } catch (error) {
    // Which events a failed group write leaves unlisted is not known: retry them all.
    const first = listed.reduce((min, event) => Math.min(min, event.at), records.length);
    if (!failure || first < failure.at) failure = { at: first, error };
  }
  if (!failure) return { indexed, duplicates, skipped };
  return {
    indexed,
    duplicates,
    skipped,
    firstFailure: records[failure.at]!.sequenceNumber,
    error: failure.error,
  };
}
