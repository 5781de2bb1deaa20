/**
 * Group items keyed by their newest second (docs/formats.md#lookupevents): a LookupEvents page
 * reads about a page's worth of entries and a few seconds more, never a whole minute of one
 * value, and every page of every layout of items (short, long, retried, split) is exact.
 * Counted on what the in-memory store really reads (entries of the group items it returns).
 */
import fc from 'fast-check';
import { HmacMac } from '../../lambda/adapters/mac';
import {
  compareSortKeys,
  groupEntries,
  groupSecond,
  indexBatch,
  LEGACY_EMPTY_RECHECK_MS,
  LONG_PREFIX,
  lookupEvents,
  MIN_WINDOW_ENTRIES,
  WINDOW_SECONDS,
  type LookupResponse,
} from '../../lambda/core/history';
import { MemoryHistoryStore } from '../fixtures/memory-history';
import { expectedIds } from '../fixtures/history-truth';
import { fastCheckSeed } from '../fixtures/lookup-requests';
import { legacyItems } from '../fixtures/legacy-history';
import type { HistoryStore } from '../../lambda/core/ports';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const mac = new HmacMac(Buffer.alloc(32, 9));
const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 19) + 'Z';

/** A management event at `ms`; readOnly true unless told. */
function record(id: string, ms: number, extra: Record<string, unknown> = {}) {
  return {
    eventVersion: '1.11',
    eventID: id,
    eventTime: iso(ms),
    eventSource: 'ec2.amazonaws.com',
    eventName: 'DescribeInstances',
    eventCategory: 'Management',
    managementEvent: true,
    readOnly: true,
    userIdentity: { type: 'IAMUser', userName: 'busy', accessKeyId: 'AKIAEXAMPLE' },
    ...extra,
  };
}

async function indexInBatches(
  store: MemoryHistoryStore,
  records: readonly Record<string, unknown>[],
  size: number,
): Promise<void> {
  for (let i = 0; i < records.length; i += size) {
    const slice = records.slice(i, i + size);
    const result = await indexBatch(
      slice.map((r, j) => ({
        sequenceNumber: String(i + j),
        data: Buffer.from(JSON.stringify(r)),
      })),
      store,
    );
    expect(result.firstFailure).toBeUndefined();
  }
}

/** Pages a lookup to the end; the entries the store read for each page. */
async function pages(
  store: MemoryHistoryStore,
  request: Record<string, unknown>,
  pageSize: number,
  limit = Infinity,
): Promise<{ ids: string[]; entriesPerPage: number[] }> {
  const ids: string[] = [];
  const entriesPerPage: number[] = [];
  let token: string | undefined;
  do {
    store.entriesRead = 0;
    const page: LookupResponse = await lookupEvents(
      { ...request, MaxResults: pageSize, ...(token ? { NextToken: token } : {}) },
      { store, mac, now: () => NOW },
    );
    entriesPerPage.push(store.entriesRead);
    ids.push(...page.Events.map((e) => e.EventId!));
    token = page.NextToken;
  } while (token && entriesPerPage.length < limit);
  return { ids, entriesPerPage };
}

describe('a busy minute of one value: 400 events a second, batches of 100', () => {
  const RATE = 400;
  const start = NOW - 3600_000;
  // Stream order: oldest first, as the indexer receives them.
  const records = Array.from({ length: RATE * 60 }, (_, n) =>
    record(`busy-${String(n).padStart(6, '0')}`, start + Math.floor((n * 1000) / RATE)),
  );
  const store = new MemoryHistoryStore();
  beforeAll(() => indexInBatches(store, records, 100));

  it('reads about a second of the value for the first page, not the minute (24,000 entries)', async () => {
    const { ids, entriesPerPage } = await pages(store, {}, 50, 1);
    expect(ids).toEqual(expectedIds(records, { nowMs: NOW }).slice(0, 50));
    // The newest second's items (400 entries) and the next item that shows it complete.
    expect(entriesPerPage[0]).toBeLessThanOrEqual(2 * RATE);
  });

  it('reads at most a window and two seconds of the value per page while paging down it', async () => {
    const request = { LookupAttributes: [{ AttributeKey: 'ReadOnly', AttributeValue: 'true' }] };
    const { ids, entriesPerPage } = await pages(store, request, 50, 40);
    expect(ids).toEqual(expectedIds(records, { nowMs: NOW }).slice(0, ids.length));
    // Items keyed up to WINDOW_SECONDS − 1 above the cursor may list entries below it; then
    // the cursor's second and the item that shows it complete. The minute is 60 × RATE.
    for (const entries of entriesPerPage)
      expect(entries).toBeLessThanOrEqual((WINDOW_SECONDS + 2) * RATE);
  });
});

describe('sparse traffic: one event every 7 s, batches of 100 spanning 700 s', () => {
  const records = Array.from({ length: 1200 }, (_, n) =>
    record(`sparse-${String(n).padStart(5, '0')}`, NOW - 86400_000 + n * 7000),
  );
  const store = new MemoryHistoryStore();
  beforeAll(() => indexInBatches(store, records, 100));

  it('stores the sparse minutes as long items, one per batch and minute', () => {
    const items = [...store.groups.get('mR$true')!.values()];
    const minutes = new Set(records.map((r) => r.eventTime.slice(0, 16))).size;
    // A batch that ends inside a minute splits it in two: at most one more item per batch.
    expect(items.length).toBeLessThanOrEqual(minutes + 12);
    const long = items.filter((item) => item.sk.startsWith(LONG_PREFIX)).length;
    expect(long).toBeGreaterThanOrEqual(minutes - 12);
  });

  it('pages every event exactly once, reading about a minute of entries per page', async () => {
    const { ids, entriesPerPage } = await pages(store, {}, 5);
    expect(ids).toEqual(expectedIds(records, { nowMs: NOW }));
    // Long items keyed up to 59 s above the cursor, the cursor's and the next minute's, each
    // of at most 9 events (a minute split by a batch edge is two items): 4 minutes' worth.
    for (const entries of entriesPerPage) expect(entries).toBeLessThanOrEqual(4 * 9);
  });
});

describe('short and long items, split and retried batches (fast-check)', () => {
  /** Events clustered in a few seconds (busy windows) and scattered (sparse rest). */
  const events = fc.array(
    fc.record({
      second: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 600 })),
      name: fc.constantFrom('A', 'B', 'C'),
      readOnly: fc.boolean(),
    }),
    { minLength: 1, maxLength: 400 },
  );

  it('answers every lookup exactly, in order, at any page size and time range', async () => {
    const seed = fastCheckSeed('history pages');
    await fc.assert(
      fc.asyncProperty(
        events,
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 1, max: 50 }),
        fc.option(fc.tuple(fc.integer({ min: 0, max: 600 }), fc.integer({ min: 0, max: 600 }))),
        fc.boolean(),
        async (spec, batchSize, pageSize, range, retry) => {
          const base = NOW - 7200_000;
          const records = spec
            .map((e, n) =>
              record(`ev-${String(n).padStart(4, '0')}`, base + e.second * 1000, {
                eventName: e.name,
                readOnly: e.readOnly,
              }),
            )
            .sort((a, b) => a.eventTime.localeCompare(b.eventTime));
          const store = new MemoryHistoryStore();
          await indexInBatches(store, records, batchSize);
          // A retry that starts elsewhere writes other group items listing the same events.
          if (retry) await indexInBatches(store, records.slice(Math.floor(records.length / 3)), 37);
          const times = range
            ? {
                StartTime: base / 1000 + Math.min(...range),
                EndTime: base / 1000 + Math.max(...range),
              }
            : {};
          for (const attribute of [undefined, 'A', 'true']) {
            const request = {
              ...times,
              ...(attribute === undefined
                ? {}
                : {
                    LookupAttributes: [
                      attribute === 'true'
                        ? { AttributeKey: 'ReadOnly', AttributeValue: 'true' }
                        : { AttributeKey: 'EventName', AttributeValue: attribute },
                    ],
                  }),
            };
            const { ids } = await pages(store, request, pageSize);
            expect(ids).toEqual(
              expectedIds(records, {
                ...(attribute === undefined
                  ? {}
                  : attribute === 'true'
                    ? { key: 'ReadOnly', value: 'true' }
                    : { key: 'EventName', value: attribute }),
                ...(range ? { start: times.StartTime, end: times.EndTime } : {}),
                nowMs: NOW,
              }),
            );
          }
          // Every item names a second no older than any entry it lists, and short items span
          // less than WINDOW_SECONDS.
          for (const partition of store.groups.values())
            for (const item of partition.values()) {
              const second = Date.parse(groupSecond(item.sk));
              const entries = groupEntries(item);
              const oldest = Date.parse(entries[entries.length - 1]!.slice(0, 20));
              expect(Date.parse(entries[0]!.slice(0, 20))).toBe(second);
              if (!item.sk.startsWith(LONG_PREFIX))
                expect(second - oldest).toBeLessThan(WINDOW_SECONDS * 1000);
            }
        },
      ),
      { seed, numRuns: 60 },
    );
  });

  it('gives a busy window items of its own and leaves the sparse rest to one item', async () => {
    const store = new MemoryHistoryStore();
    const base = NOW - 7200_000;
    const records = [
      ...Array.from({ length: MIN_WINDOW_ENTRIES }, (_, n) => record(`w-${n}`, base + 1000)),
      ...Array.from({ length: 5 }, (_, n) => record(`s-${n}`, base + 20_000 + n * 7000)),
    ];
    await indexInBatches(store, records, 100);
    const keys = [...store.groups.get('mR$true')!.keys()].sort();
    expect(keys.map((sk) => (sk.startsWith(LONG_PREFIX) ? 'long' : 'short'))).toEqual([
      'short',
      'long',
    ]);
  });
});

describe('compareSortKeys', () => {
  it('orders like DynamoDB (UTF-8 bytes), astral and private-use characters included', () => {
    const unit = fc.constantFrom('a', 'z', '#', '\u0001', '\u00e9', '\uffff', '\ue000', '😀', '𝄞');
    const key = fc.array(unit, { maxLength: 6 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(key, key, (a, b) => {
        const bytes = Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
        expect(Math.sign(compareSortKeys(a, b))).toBe(bytes);
      }),
      { seed: fastCheckSeed('compareSortKeys'), numRuns: 2000 },
    );
  });
});

describe('version-1 partitions on a table that never held them', () => {
  it('are checked once per store, skipped while empty, and checked again after the re-check time', async () => {
    const memory = new MemoryHistoryStore();
    let legacyQueries = 0;
    const store: HistoryStore = {
      putRecord: (item) => memory.putRecord(item),
      putRecords: (items) => memory.putRecords(items),
      putGroups: (items) => memory.putGroups(items),
      queryGroups: (q) => memory.queryGroups(q),
      queryIndex: (q) => {
        legacyQueries++;
        return memory.queryIndex(q);
      },
      queryRecords: (pk) => memory.queryRecords(pk),
      getRecords: (keys) => memory.getRecords(keys),
    };
    const records = Array.from({ length: 120 }, (_, n) =>
      record(`new-${String(n).padStart(3, '0')}`, NOW - 600_000 + n * 1000),
    );
    await indexInBatches(memory, records, 50);
    const ids = async (now: number): Promise<string[]> => {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const page: LookupResponse = await lookupEvents(
          { MaxResults: 50, ...(token ? { NextToken: token } : {}) },
          { store, mac, now: () => now },
        );
        out.push(...page.Events.map((e) => e.EventId!));
        token = page.NextToken;
      } while (token);
      return out;
    };
    expect(await ids(NOW)).toEqual(expectedIds(records, { nowMs: NOW }));
    // One check per shard (8), then nothing for the other pages.
    expect(legacyQueries).toBe(8);

    // An indexer of the version before writes an old-layout event (a deployment in progress).
    const old = record('old-000', NOW - 300_500);
    const legacy = legacyItems(JSON.stringify(old));
    await memory.putRecord(legacy.record);
    await memory.putLegacyIndex(legacy.index);
    const later = NOW + LEGACY_EMPTY_RECHECK_MS + 1000;
    expect(await ids(later)).toEqual(expectedIds([...records, old], { nowMs: later }));
    expect(legacyQueries).toBeGreaterThan(8);
  });
});
