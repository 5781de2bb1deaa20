/**
 * Reading event history (docs/formats.md#lookupevents): the sort-key range of a request, the
 * partitions it reads and a k-way merge of their sort keys, newest first, reading each source
 * only as far as the page needs. Pure: I/O goes through the HistoryStore port.
 */
import type { HistoryStore } from './ports';
import { formatIsoSeconds, MAX_ISO_MS, MIN_ISO_MS } from './contracts';
import {
  allEventsPartitions,
  compareSortKeys,
  groupPartitionKey,
  HISTORY_WINDOW_SECONDS,
  indexPartitionKey,
  type AttributeKey,
} from './history-keys';
import {
  groupEntries,
  groupSecond,
  LONG_PREFIX,
  LONG_WINDOW_SECONDS,
  secondOf,
  WINDOW_SECONDS,
  type GroupKind,
} from './history-groups';
import type { LookupRequest } from './history-request';
import { HISTORY_TABLE } from './tables';

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

/**
 * The version-1 index partitions a request reads (one per write shard): items written before
 * grouped index items, read for 90 days after the upgrade (docs/formats.md#lookupevents).
 */
export function legacyPartitionsFor(request: LookupRequest): string[] {
  const attribute = request.attribute;
  return Array.from({ length: HISTORY_TABLE.writeShards }, (_, shard) =>
    indexPartitionKey(
      request.category,
      attribute ? (attribute.key as Exclude<AttributeKey, 'EventId'>) : undefined,
      attribute?.value ?? '',
      shard,
    ),
  );
}

/** The group partitions a request reads: its (key, value), or the three ReadOnly ones. */
export function groupPartitionsFor(request: LookupRequest): string[] {
  const attribute = request.attribute;
  if (!attribute) return allEventsPartitions(request.category);
  return [
    groupPartitionKey(
      request.category,
      attribute.key as Exclude<AttributeKey, 'EventId'>,
      attribute.value,
    ),
  ];
}

/** The sort keys in a range, newest first, from one partition; `peek` reads as needed. */
export interface SortKeySource {
  /** The newest sort key not yet taken, or undefined when the source is exhausted. */
  peek(): Promise<string | undefined>;
  take(): void;
}

export interface Range {
  readonly lo: string;
  readonly hi: string;
  /** The sort key the page must not repeat (the cursor: the range is inclusive). */
  readonly exclude?: string;
}

function inRange(sk: string, range: Range): boolean {
  return (
    compareSortKeys(sk, range.lo) >= 0 && compareSortKeys(sk, range.hi) <= 0 && sk !== range.exclude
  );
}

/** A version-1 index partition, read `want` pointer items at a time. */
function legacySource(
  store: HistoryStore,
  pk: string,
  range: Range,
  want: () => number,
): SortKeySource {
  const buffer: string[] = [];
  let hi = range.hi;
  let exclude = range.exclude;
  let done = false;
  return {
    async peek() {
      while (buffer.length === 0 && !done) {
        const drop = exclude !== undefined ? 1 : 0;
        const { sortKeys, more } = await store.queryIndex({
          pk,
          lo: range.lo,
          hi,
          limit: want() + drop,
        });
        buffer.push(...sortKeys.filter((sk) => sk !== exclude));
        const last = sortKeys[sortKeys.length - 1];
        if (last !== undefined) {
          hi = last;
          exclude = last;
        }
        done = !more || sortKeys.length === 0;
      }
      return buffer[0];
    },
    take() {
      buffer.shift();
    },
  };
}

/**
 * Group items the first Query of a source reads; later Queries read as many as the events
 * still wanted need at the entries per item seen so far (at most MAX_GROUP_READ).
 */
const FIRST_GROUP_READ = 4;
const MAX_GROUP_READ = 100;

/** `YYYY-MM-DDTHH:MM:SSZ` `seconds` after a sort key's (or bound's) second, clamped. */
function secondsAfter(sortKey: string, seconds: number): string {
  return isoSeconds(Date.parse(secondOf(sortKey)) / 1000 + seconds);
}

/**
 * The short or long group items of a partition (docs/design.md#event-history-table). Items
 * come newest second first, and an item keyed by second S lists nothing newer than S, so once
 * an item keyed S has been read every entry newer than S has been too: those are released,
 * sorted, one second at a time. The Query starts WINDOW_SECONDS (short) or a minute (long)
 * above the range, where the newest item that can list an entry of the range is keyed.
 */
function groupSource(
  store: HistoryStore,
  pk: string,
  kind: GroupKind,
  range: Range,
  want: () => number,
): SortKeySource {
  const prefix = kind === 'long' ? LONG_PREFIX : '';
  const span = kind === 'long' ? LONG_WINDOW_SECONDS : WINDOW_SECONDS;
  const lo = `${prefix}${secondOf(range.lo)}`;
  // "$" sorts after "#": every item of that second.
  const hi = `${prefix}${secondsAfter(range.hi, span - 1)}$`;
  // Released keys, consumed from `head` (a busy second holds thousands: no shift() per key).
  let ready: string[] = [];
  let head = 0;
  /** Entries read and not yet released, by second. */
  const pending = new Map<string, Set<string>>();
  let next: unknown;
  let done = false;
  let itemsRead = 0;
  let entriesRead = 0;
  /** Releases every pending second newer than `below` (all of them without it). */
  const release = (below?: string): void => {
    const seconds = [...pending.keys()].filter((s) => below === undefined || s > below);
    if (seconds.length === 0) return;
    const out = head === ready.length ? [] : ready.slice(head);
    for (const second of seconds.sort().reverse()) {
      const keys = [...pending.get(second)!].sort((a, b) => compareSortKeys(b, a));
      for (const key of keys) out.push(key);
      pending.delete(second);
    }
    ready = out;
    head = 0;
  };
  return {
    async peek() {
      while (head === ready.length && !done) {
        const limit =
          itemsRead === 0
            ? Math.min(FIRST_GROUP_READ, want() + 1)
            : Math.min(MAX_GROUP_READ, Math.ceil(want() / (entriesRead / itemsRead)) + 1);
        const page = await store.queryGroups({
          pk,
          lo,
          hi,
          limit,
          ...(next !== undefined ? { next } : {}),
        });
        for (const item of page.items) {
          release(groupSecond(item.sk));
          const entries = groupEntries(item);
          itemsRead++;
          entriesRead += entries.length;
          for (const sk of entries) {
            if (!inRange(sk, range)) continue;
            const second = secondOf(sk);
            const keys = pending.get(second) ?? new Set<string>();
            pending.set(second, keys);
            keys.add(sk);
          }
        }
        next = page.next;
        if (next === undefined) {
          release();
          done = true;
        }
      }
      return ready[head];
    },
    take() {
      if (head < ready.length) head++;
    },
  };
}

/**
 * The first `count` sort keys in [lo, hi] across the sources, newest first, without
 * `exclude`: a k-way merge that reads each source only as far as the merge needs it. A sort
 * key in two sources (an event indexed in both layouts, or by two deliveries of a batch) is
 * returned once.
 */
export async function mergeSources(
  sources: readonly SortKeySource[],
  count: number,
  out: string[] = [],
): Promise<string[]> {
  while (out.length < count) {
    const heads = await Promise.all(sources.map((s) => s.peek()));
    let best: string | undefined;
    for (const head of heads)
      if (head !== undefined && (best === undefined || compareSortKeys(head, best) > 0))
        best = head;
    if (best === undefined) break;
    heads.forEach((head, i) => {
      if (head === best) sources[i]!.take();
    });
    out.push(best);
  }
  return out;
}

/**
 * How long a version-1 partition found empty is skipped before it is checked again. Nothing
 * writes that layout any more, so an empty partition stays empty; the re-check only covers an
 * indexer of the version before still running while a deployment replaces it.
 */
export const LEGACY_EMPTY_RECHECK_MS = 15 * 60_000;

/** Per store: version-1 partitions and whether they held any item when last checked. */
const legacyChecks = new WeakMap<HistoryStore, Map<string, { empty: boolean; atMs: number }>>();

/**
 * The version-1 partitions of a request that hold items: each is checked with one Query of
 * one item over the whole partition, then remembered for this store (a table that never held
 * that layout costs 8 Queries once, not 8 per page).
 */
async function legacyPartitionsToRead(
  store: HistoryStore,
  request: LookupRequest,
  nowMs: number,
): Promise<string[]> {
  const checks = legacyChecks.get(store) ?? new Map<string, { empty: boolean; atMs: number }>();
  legacyChecks.set(store, checks);
  const partitions = legacyPartitionsFor(request);
  const held = await Promise.all(
    partitions.map(async (pk) => {
      const known = checks.get(pk);
      if (known && (!known.empty || nowMs - known.atMs < LEGACY_EMPTY_RECHECK_MS))
        return !known.empty;
      const { sortKeys } = await store.queryIndex({
        pk,
        lo: '0000',
        hi: '9999-12-31T23:59:59Z$',
        limit: 1,
      });
      checks.set(pk, { empty: sortKeys.length === 0, atMs: nowMs });
      return sortKeys.length > 0;
    }),
  );
  return partitions.filter((_, i) => held[i]);
}

/**
 * The first `count` sort keys of a (non-EventId) request in the range, newest first: the
 * group partitions merged with the version-1 partitions that hold items (dual reads, for 90
 * days after the upgrade: docs/formats.md#lookupevents).
 */
export async function readSortKeys(
  store: HistoryStore,
  request: LookupRequest,
  range: Range,
  count: number,
  nowMs: number = Date.now(),
): Promise<string[]> {
  if (compareSortKeys(range.lo, range.hi) > 0) return [];
  const legacy = await legacyPartitionsToRead(store, request, nowMs);
  const out: string[] = [];
  const first = Math.ceil(count / HISTORY_TABLE.writeShards) + 1;
  const sources = [
    ...groupPartitionsFor(request).flatMap((pk) =>
      (['short', 'long'] as const).map((kind) =>
        groupSource(store, pk, kind, range, () => Math.max(1, count - out.length)),
      ),
    ),
    ...legacy.map((pk) => {
      let reads = 0;
      // The first read asks each shard for its share of the page, later ones for the rest.
      return legacySource(store, pk, range, () => (reads++ === 0 ? first : count - out.length));
    }),
  ];
  return mergeSources(sources, count, out);
}
