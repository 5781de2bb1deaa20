/**
 * Group index items (docs/formats.md#lookupevents): per indexer batch and lookup partition, items
 * that list the sort keys of the batch's events, keyed by the newest second they list, so a
 * lookup reads a page's worth of items and never a whole minute of them. Pure (CPU only:
 * hashing and zlib).
 *
 * A minute's sort keys of one batch and partition are cut into seconds; a second
 * with MIN_WINDOW_ENTRIES or more gets items of its own ("short" items: they span less than
 * WINDOW_SECONDS), the sparse rest of the minute shares items that are short when they happen
 * to span less than WINDOW_SECONDS and "long" (key prefix `L`, spanning up to a minute)
 * otherwise. A reader of short items therefore finds every entry of second S in items keyed
 * from S to S + WINDOW_SECONDS − 1, and of long items in items keyed from S to S + 59.
 */
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { HistoryGroupItem } from './ports';
import { compareSortKeys, HISTORY_TTL_SECONDS, MAX_ITEM_BYTES } from './history-keys';

/**
 * The most entry bytes (before compression) one group item holds: compressed, they stay under
 * MAX_ITEM_BYTES with room for the keys (deflate grows incompressible input by well under 1 %).
 */
export const MAX_GROUP_ENTRY_BYTES = 360_000;
/** A short group item spans less than this many seconds (its newest to its oldest entry). */
export const WINDOW_SECONDS = 1;
/** A long group item spans less than a minute: all its entries share one minute. */
export const LONG_WINDOW_SECONDS = 60;
/** Entries a second of one batch and partition needs to get items of its own. */
export const MIN_WINDOW_ENTRIES = 16;
/** Sort-key prefix of long group items (it sorts after every digit: a range of its own). */
export const LONG_PREFIX = 'L';

/** Characters of a sort key's second, `YYYY-MM-DDTHH:MM:SSZ`. */
const SECOND_CHARS = 20;
/** Characters of a sort key's minute, `YYYY-MM-DDTHH:MM`. */
const MINUTE_CHARS = 16;
/** Characters of a sort key that a group entry leaves out, `YYYY-MM-DDTHH:MM:`. */
const ENTRY_PREFIX_CHARS = MINUTE_CHARS + 1;

export type GroupKind = 'short' | 'long';

/** The second (`YYYY-MM-DDTHH:MM:SSZ`) a group item's sort key names: its newest entry's. */
export function groupSecond(groupSortKey: string): string {
  return groupSortKey.startsWith(LONG_PREFIX)
    ? groupSortKey.slice(LONG_PREFIX.length, LONG_PREFIX.length + SECOND_CHARS)
    : groupSortKey.slice(0, SECOND_CHARS);
}

/** The second of an event's sort key. */
export function secondOf(sortKey: string): string {
  return sortKey.slice(0, SECOND_CHARS);
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
  const prefix = `${groupSecond(item.sk).slice(0, MINUTE_CHARS)}:`;
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
 * The group items of one list of sort keys (newest first, all of one minute): split into parts
 * of at most `maxEntryBytes` entry bytes, each part one item keyed by its newest second and
 * checked against DynamoDB's 400 KB (halved again in the unexpected case it does not fit). The
 * group id is a digest of the whole list, so writing the same batch again writes the same items.
 */
export function groupItems(
  pk: string,
  sortKeys: readonly string[],
  x: number,
  kind: GroupKind = 'short',
  maxEntryBytes = MAX_GROUP_ENTRY_BYTES,
): HistoryGroupItem[] {
  const prefix = kind === 'long' ? LONG_PREFIX : '';
  const id = createHash('sha256')
    .update(`${pk}\u0000${prefix}\u0000${sortKeys.join('\u0000')}`, 'utf8')
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
      sk: `${prefix}${secondOf(entries[0]!)}#${id}#${items.length}`,
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

/** Seconds within its minute of a sort key (0–59; a leap second's 60 counts as 59). */
function secondOfMinute(sortKey: string): number {
  return Math.min(59, Number(sortKey.slice(MINUTE_CHARS + 1, MINUTE_CHARS + 3)));
}

/**
 * One minute's sort keys (newest first) as lists for items: a list per WINDOW_SECONDS window with
 * at least MIN_WINDOW_ENTRIES keys (short), and the rest of the minute as one list, short when
 * it spans less than WINDOW_SECONDS, long otherwise.
 */
export function minuteLists(sorted: readonly string[]): { kind: GroupKind; keys: string[] }[] {
  const windows = new Map<number, string[]>();
  for (const sk of sorted) {
    const w = Math.floor(secondOfMinute(sk) / WINDOW_SECONDS);
    const keys = windows.get(w) ?? [];
    windows.set(w, keys);
    keys.push(sk);
  }
  const lists: { kind: GroupKind; keys: string[] }[] = [];
  const rest: string[] = [];
  for (const keys of windows.values()) {
    if (keys.length >= MIN_WINDOW_ENTRIES) lists.push({ kind: 'short', keys });
    else for (const sk of keys) rest.push(sk);
  }
  if (rest.length > 0) {
    const span = secondOfMinute(rest[0]!) - secondOfMinute(rest[rest.length - 1]!);
    lists.push({ kind: span < WINDOW_SECONDS ? 'short' : 'long', keys: rest });
  }
  return lists;
}

/** The group items that list `events` (one batch's planned events), per partition and minute. */
export function planGroups(
  events: readonly { readonly sortKey: string; readonly partitions: readonly string[] }[],
): HistoryGroupItem[] {
  const groups = new Map<string, Map<string, Set<string>>>();
  for (const { sortKey, partitions } of events) {
    const minute = sortKey.slice(0, MINUTE_CHARS);
    for (const pk of partitions) {
      const byMinute = groups.get(pk) ?? new Map<string, Set<string>>();
      groups.set(pk, byMinute);
      const keys = byMinute.get(minute) ?? new Set<string>();
      byMinute.set(minute, keys);
      keys.add(sortKey);
    }
  }
  const items: HistoryGroupItem[] = [];
  for (const [pk, byMinute] of groups) {
    for (const [minute, keys] of byMinute) {
      const sorted = [...keys].sort((a, b) => compareSortKeys(b, a));
      // TTL a day past the window from the minute's last second (none of it expires early).
      const x = Math.floor(Date.parse(`${minute}:59Z`) / 1000) + HISTORY_TTL_SECONDS;
      for (const list of minuteLists(sorted))
        for (const item of groupItems(pk, list.keys, x, list.kind)) items.push(item);
    }
  }
  return items;
}
