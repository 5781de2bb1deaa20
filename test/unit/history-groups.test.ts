/**
 * Group index items (docs/formats.md#lookupevents): split before DynamoDB's 400 KB item
 * limit, idempotent across re-deliveries and retries, read together with the version-1 layout
 * (dual reads), at a read cost that does not grow with the history. Counted on what the
 * in-memory store really holds (which checks every item against DynamoDB's limits).
 */
import { randomBytes } from 'node:crypto';
import {
  groupEntries,
  groupItemBytes,
  groupItems,
  groupSecond,
  indexBatch,
  RECORD_PUT_CHUNK,
  lookupEvents,
  MAX_ITEM_BYTES,
  sortKeyOf,
  type LookupResponse,
} from '../../lambda/core/history';
import type { HistoryGroupItem, HistoryStore } from '../../lambda/core/ports';
import { HmacMac } from '../../lambda/adapters/mac';
import {
  compareSortKeys,
  groupPartitionsFor,
  readSortKeys,
  sortKeyRange,
} from '../../lambda/core/history';
import { planGroups } from '../../lambda/core/history-groups';
import { parseLookupRequest } from '../../lambda/core/history-request';
import { documentItemSizeBytes } from '../support/dynamo-limits';
import { MemoryHistoryStore } from '../fixtures/memory-history';
import { expectedIds } from '../fixtures/history-truth';
import { legacyItems } from '../fixtures/legacy-history';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const mac = new HmacMac(Buffer.alloc(32, 9));
const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 19) + 'Z';

function record(n: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    eventVersion: '1.11',
    eventID: `ev-${String(n).padStart(5, '0')}`,
    eventTime: iso(NOW - 3600_000 - Math.floor(n / 3) * 1000),
    eventSource: n % 4 === 0 ? 'iam.amazonaws.com' : 'ec2.amazonaws.com',
    eventName: ['ListUsers', 'RunInstances', 'GetUser'][n % 3],
    awsRegion: 'us-east-1',
    eventCategory: 'Management',
    managementEvent: true,
    ...(n % 5 === 0 ? {} : { readOnly: n % 2 === 0 }),
    userIdentity: { type: 'IAMUser', userName: `user-${n % 7}`, accessKeyId: `AKIA${n % 3}` },
    ...overrides,
  };
}

const batch = (records: readonly Record<string, unknown>[], first = 0) =>
  records.map((r, i) => ({
    sequenceNumber: String(first + i),
    data: Buffer.from(JSON.stringify(r)),
  }));

async function all(
  store: HistoryStore,
  request: Record<string, unknown>,
  pageSize: number,
): Promise<string[]> {
  const ids: string[] = [];
  let token: string | undefined;
  do {
    const page: LookupResponse = await lookupEvents(
      { ...request, MaxResults: pageSize, ...(token ? { NextToken: token } : {}) },
      { store, mac, now: () => NOW },
    );
    ids.push(...page.Events.map((e) => e.EventId!));
    token = page.NextToken;
  } while (token);
  return ids;
}

/** Every group item the store holds, with the sort keys each lists. */
function storedGroups(store: MemoryHistoryStore): { item: HistoryGroupItem; entries: string[] }[] {
  return [...store.groups.values()].flatMap((partition) =>
    [...partition.values()].map((item) => ({ item, entries: groupEntries(item) })),
  );
}

const QUERIES: Record<string, unknown>[] = [
  {},
  { LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'RunInstances' }] },
  { LookupAttributes: [{ AttributeKey: 'ReadOnly', AttributeValue: 'false' }] },
  { LookupAttributes: [{ AttributeKey: 'Username', AttributeValue: 'user-3' }] },
  { LookupAttributes: [{ AttributeKey: 'EventSource', AttributeValue: 'iam.amazonaws.com' }] },
];

function truth(records: readonly Record<string, unknown>[], query: Record<string, unknown>) {
  const attribute = (
    query.LookupAttributes as { AttributeKey: string; AttributeValue: string }[]
  )?.[0];
  return expectedIds(records, {
    ...(attribute ? { key: attribute.AttributeKey, value: attribute.AttributeValue } : {}),
    nowMs: NOW,
  });
}

describe('group items at DynamoDB’s 400 KB item limit', () => {
  /** Sort keys of one minute with incompressible eventIDs of `bytes` characters. */
  const minuteOfKeys = (count: number, bytes: number): string[] =>
    Array.from({ length: count }, (_, n) =>
      sortKeyOf(
        `2026-11-25T10:15:${String(n % 60).padStart(2, '0')}Z`,
        randomBytes(bytes).toString('base64').slice(0, bytes),
        n.toString(16).padStart(16, '0'),
      ),
    ).sort((a, b) => Buffer.compare(Buffer.from(b), Buffer.from(a)));

  it('splits a group listing over 400 KB into items under the limit that list every event once', () => {
    const keys = minuteOfKeys(1500, 900);
    const items = groupItems('mR$true', keys, 1);
    expect(items.length).toBeGreaterThan(1);
    for (const item of items)
      expect(documentItemSizeBytes({ ...item })).toBeLessThanOrEqual(MAX_ITEM_BYTES);
    expect(items.flatMap((item) => groupEntries(item))).toEqual(keys);
    // Parts are filled, not cut small: together they need few more items than the bytes do.
    const bytes = items.reduce((n, item) => n + documentItemSizeBytes({ ...item }), 0);
    expect(items.length).toBeLessThanOrEqual(Math.ceil(bytes / (MAX_ITEM_BYTES * 0.75)));
  });

  it('halves a part whose compressed entries would still pass 409,600 bytes', () => {
    const keys = minuteOfKeys(700, 900);
    // An entry budget past the item limit: only the size check on the item itself splits.
    const items = groupItems('mR$true', keys, 1, 'long', 10 * MAX_ITEM_BYTES);
    expect(items.length).toBe(2);
    for (const item of items) {
      const size = documentItemSizeBytes({ ...item });
      expect(size).toBeLessThanOrEqual(MAX_ITEM_BYTES);
      expect(size).toBeGreaterThan(MAX_ITEM_BYTES / 2 - 10_000);
      expect(groupItemBytes(item)).toBeGreaterThanOrEqual(size);
    }
    expect(items.flatMap((item) => groupEntries(item))).toEqual(keys);
  });

  it('indexes a minute of one value larger than an item and pages through it exactly', async () => {
    const store = new MemoryHistoryStore();
    const records = Array.from({ length: 600 }, (_, n) =>
      record(n, {
        eventID: `${String(n).padStart(4, '0')}-${randomBytes(600).toString('base64')}`,
        eventTime: iso(NOW - 3600_000),
        readOnly: true,
      }),
    );
    const result = await indexBatch(batch(records), store);
    expect(result.firstFailure).toBeUndefined();
    const readOnly = [...store.groups.get('mR$true')!.values()];
    expect(readOnly.length).toBeGreaterThan(1);
    const readOnlyTrue = {
      LookupAttributes: [{ AttributeKey: 'ReadOnly', AttributeValue: 'true' }],
    };
    for (const size of [50, 7])
      expect(await all(store, readOnlyTrue, size)).toEqual(truth(records, readOnlyTrue));
  });
});

describe('writes per batch', () => {
  const records = Array.from({ length: 300 }, (_, n) => record(n));

  it('writes one group item per (key, value, minute) of a batch, listing each event once per key', async () => {
    const store = new MemoryHistoryStore();
    await indexBatch(batch(records), store);
    const groups = storedGroups(store);
    const perPartition = new Map<string, string[]>();
    for (const { item, entries } of groups)
      perPartition.set(item.pk, [...(perPartition.get(item.pk) ?? []), ...entries]);
    for (const entries of perPartition.values()) expect(new Set(entries).size).toBe(entries.length);
    const minutes = new Set(groups.map(({ item }) => groupSecond(item.sk).slice(0, 16)));
    expect(groups.length).toBeLessThanOrEqual(perPartition.size * minutes.size);
    expect(groups.length).toBeLessThan(records.length / 2);
    expect(store.records.size).toBe(records.length);
  });

  it('writes the same items when the same batch is delivered again', async () => {
    const store = new MemoryHistoryStore();
    await indexBatch(batch(records), store);
    const before = storedGroups(store)
      .map(({ item }) => `${item.pk}|${item.sk}`)
      .sort();
    const again = await indexBatch(batch(records), store);
    expect(again).toMatchObject({ indexed: 0, duplicates: records.length });
    expect(
      storedGroups(store)
        .map(({ item }) => `${item.pk}|${item.sk}`)
        .sort(),
    ).toEqual(before);
    expect(store.records.size).toBe(records.length);
  });

  it('returns each event once after a retry that starts elsewhere in the batch', async () => {
    const store = new MemoryHistoryStore();
    await indexBatch(batch(records), store);
    await indexBatch(batch(records.slice(100), 100), store);
    // The retry listed events 100.. again, under other group ids...
    const listed = storedGroups(store)
      .filter(({ item }) => item.pk === 'mN$RunInstances')
      .reduce((n, { entries }) => n + entries.length, 0);
    expect(listed).toBeGreaterThan(records.filter((r) => r.eventName === 'RunInstances').length);
    // ...and lookups still return every event exactly once, in order.
    for (const query of QUERIES)
      for (const size of [7, 50])
        expect(await all(store, query, size)).toEqual(truth(records, query));
  });

  it('reports the first record when a group write fails, and the retry completes the index', async () => {
    const store = new MemoryHistoryStore();
    let fail = true;
    const flaky: HistoryStore = {
      putRecord: (item) => store.putRecord(item),
      putRecords: (items) => store.putRecords(items),
      putGroups: async (items) => {
        if (fail) throw Object.assign(new Error('throttled'), { name: 'ThrottlingException' });
        return store.putGroups(items);
      },
      queryGroups: (q) => store.queryGroups(q),
      queryIndex: (q) => store.queryIndex(q),
      queryRecords: (pk) => store.queryRecords(pk),
      getRecords: (keys) => store.getRecords(keys),
    };
    const first = await indexBatch(batch(records.slice(0, 40), 1000), flaky);
    expect(first.firstFailure).toBe('1000');
    expect(store.records.size).toBe(40);
    expect(await all(store, {}, 50)).toEqual([]);
    fail = false;
    expect(
      (await indexBatch(batch(records.slice(0, 40), 1000), flaky)).firstFailure,
    ).toBeUndefined();
    expect(await all(store, {}, 50)).toEqual(truth(records.slice(0, 40), {}));
  });

  it('lists only the events before a failed record write, and reports the first record of that write', async () => {
    const store = new MemoryHistoryStore();
    // Record items go RECORD_PUT_CHUNK to a call: a failure in the second call (events
    // 100..199) leaves the first call's events listed and names event 100 for the retry.
    const poisoned = 'E#ev-00112';
    const flaky: HistoryStore = {
      putRecord: (item) => store.putRecord(item),
      putRecords: async (items) => {
        if (items.some((item) => item.pk === poisoned)) throw new Error('throttled');
        return store.putRecords(items);
      },
      putGroups: (items) => store.putGroups(items),
      queryGroups: (q) => store.queryGroups(q),
      queryIndex: (q) => store.queryIndex(q),
      queryRecords: (pk) => store.queryRecords(pk),
      getRecords: (keys) => store.getRecords(keys),
    };
    expect(RECORD_PUT_CHUNK).toBe(100);
    const result = await indexBatch(batch(records.slice(0, 250), 500), flaky, 1);
    expect(result.firstFailure).toBe('600');
    const listed = new Set(storedGroups(store).flatMap(({ entries }) => entries));
    const ids = [...listed].map((sk) => sk.slice(21, sk.indexOf('\u0001')));
    expect(new Set(ids)).toEqual(new Set(records.slice(0, 100).map((r) => r.eventID)));

    const retried = await indexBatch(batch(records.slice(100, 250), 600), store);
    expect(retried).toMatchObject({ indexed: 150, duplicates: 0 });
  });
});

describe('dual reads: a table holding both layouts', () => {
  /** Events 0..199: odd ones in the version-1 layout (as 23b3f31 wrote them), even ones now. */
  const records = Array.from({ length: 200 }, (_, n) => record(n));
  let store: MemoryHistoryStore;

  beforeAll(async () => {
    store = new MemoryHistoryStore();
    for (const [n, r] of records.entries()) {
      if (n % 2 === 0) continue;
      const legacy = legacyItems(JSON.stringify(r));
      await store.putRecord(legacy.record);
      await store.putLegacyIndex(legacy.index);
    }
    await indexBatch(batch(records.filter((_, n) => n % 2 === 0)), store);
    // One event re-delivered after the upgrade: in both layouts, returned once.
    await indexBatch(batch([records[1]!], 900), store);
  });

  it('holds items of both layouts', () => {
    expect([...store.partitions.keys()].some((pk) => /^m[A-Z]#\d#/.test(pk))).toBe(true);
    expect([...store.groups.keys()].every((pk) => /^m[A-Z]\$/.test(pk))).toBe(true);
    expect([...store.records.values()].filter((item) => item.j !== undefined)).toHaveLength(100);
    expect([...store.records.values()].filter((item) => item.z !== undefined)).toHaveLength(100);
  });

  it.each([1, 7, 50])(
    'answers every lookup across both layouts in order, pages of %i',
    async (size) => {
      for (const query of QUERIES)
        expect(await all(store, query, size)).toEqual(truth(records, query));
    },
  );

  it('serves one page that spans both layouts', async () => {
    const page = await lookupEvents({ MaxResults: 10 }, { store, mac, now: () => NOW });
    const ids = page.Events.map((e) => Number(e.EventId!.slice(3)));
    expect(ids.some((n) => n % 2 === 0)).toBe(true);
    expect(ids.some((n) => n % 2 === 1)).toBe(true);
    expect(page.Events.map((e) => e.EventId)).toEqual(truth(records, {}).slice(0, 10));
  });

  it('finds an old-layout event by EventId', async () => {
    const byId = { LookupAttributes: [{ AttributeKey: 'EventId', AttributeValue: 'ev-00003' }] };
    const page = await lookupEvents(byId, { store, mac, now: () => NOW });
    expect(page.Events.map((e) => e.EventId)).toEqual(['ev-00003']);
    expect(JSON.parse(page.Events[0]!.CloudTrailEvent)).toEqual(records[3]);
  });
});

describe('read cost', () => {
  it('reads the same group entries for a first page whatever the history size', async () => {
    const read = async (count: number): Promise<number> => {
      const store = new MemoryHistoryStore();
      const records = Array.from({ length: count }, (_, n) => record(n));
      for (let i = 0; i < records.length; i += 500)
        await indexBatch(batch(records.slice(i, i + 500), i), store);
      store.entriesRead = 0;
      await lookupEvents(QUERIES[1]!, { store, mac, now: () => NOW });
      return store.entriesRead;
    };
    const small = await read(2000);
    expect(small).toBeGreaterThan(50);
    // The same items but, where a source has nothing newer, one small item further back.
    expect(await read(8000)).toBeLessThanOrEqual(small + 20);
    // About a page's worth: the 51 events a page needs plus what shares their items.
    expect(small).toBeLessThan(2000 / 3 / 2);
  });
});

describe('a minute holding very many events of one value', () => {
  it('pages it without overflowing the call stack, newest first (200,000 sort keys in one minute)', async () => {
    const request = parseLookupRequest({
      LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'Busy' }],
    });
    const [pk] = groupPartitionsFor(request);
    const minute = iso(NOW - 60_000).slice(0, 16);
    const sortKeys = Array.from({ length: 200_000 }, (_, n) =>
      sortKeyOf(`${minute}:${String(n % 60).padStart(2, '0')}Z`, `busy-${n}`, 'h'.repeat(16)),
    );
    const store = new MemoryHistoryStore();
    await store.putGroups(planGroups(sortKeys.map((sortKey) => ({ sortKey, partitions: [pk!] }))));

    const keys = await readSortKeys(store, request, sortKeyRange(request, NOW), 5);

    const newest = [...sortKeys].sort((a, b) => compareSortKeys(b, a)).slice(0, 5);
    expect(keys).toEqual(newest);
  });
});
