/**
 * The in-memory ports fail where DynamoDB fails: keys and items at DynamoDB's limits, counted
 * in UTF-8 bytes (exactly at the limit passes, one byte over fails with ValidationException).
 */
import type { DedupItem } from '../../lambda/core/ports';
import { MemoryHistoryStore } from '../fixtures/memory-history';
import { MemoryDedupStore, MemoryManifestStore } from '../fixtures/memory-ports';
import {
  documentItemSizeBytes,
  keyConditionOperands,
  MAX_ITEM_BYTES,
} from '../support/dynamo-limits';

const VALIDATION = { name: 'ValidationException' };
/** `n` bytes of text: "é" (2 bytes) as often as fits, then "a" for an odd byte. */
const bytesOf = (n: number): string => 'é'.repeat(Math.floor(n / 2)) + 'a'.repeat(n % 2);
/** A dedup item with nothing claimed yet (the one place that knows DedupItem's shape). */
const newDedupItem = (eventId: string): DedupItem => ({ eventId, claims: [], ver: 0 });
const record = (pk: string, sk = '0123456789abcdef', j = '{}') => ({
  pk,
  sk,
  t: '2026-01-01T00:00:00Z',
  c: 'm' as const,
  j,
  x: 1,
});

describe('partition keys: 2,048 UTF-8 bytes', () => {
  it.each([
    ['ASCII', 'a'.repeat(2048), 'a'.repeat(2049)],
    ['two-byte characters', bytesOf(2048), bytesOf(2049)],
    ['astral characters (4 bytes, 2 UTF-16 units)', '😀'.repeat(512), '😀'.repeat(512) + 'a'],
  ])('%s: exactly 2,048 bytes passes, 2,049 fails', async (_, fits, over) => {
    expect(Buffer.byteLength(fits)).toBe(2048);
    expect(Buffer.byteLength(over)).toBe(2049);
    const history = new MemoryHistoryStore();
    await expect(history.queryRecords(fits)).resolves.toEqual([]);
    await expect(history.queryRecords(over)).rejects.toMatchObject(VALIDATION);
    await expect(history.putRecord(record(fits))).resolves.toBe('created');
    await expect(history.putRecord(record(over))).rejects.toMatchObject(VALIDATION);
    expect(history.records.size).toBe(1);

    const dedup = new MemoryDedupStore();
    await expect(dedup.getMany([fits])).resolves.toEqual(new Map());
    await expect(dedup.getMany([over])).rejects.toMatchObject(VALIDATION);
    await expect(dedup.put(newDedupItem(fits), 0, 1)).resolves.toBe(true);
    await expect(dedup.put(newDedupItem(over), 0, 1)).rejects.toMatchObject(VALIDATION);
    expect([...dedup.items.keys()]).toEqual([fits]);
  });

  it('counts characters in bytes: 1,025 two-byte characters (1,025 characters) are over', async () => {
    const history = new MemoryHistoryStore();
    await expect(history.queryRecords('é'.repeat(1025))).rejects.toMatchObject(VALIDATION);
  });

  it('refuses an empty key value, as DynamoDB does', async () => {
    await expect(new MemoryHistoryStore().queryRecords('')).rejects.toMatchObject(VALIDATION);
  });

  it('the manifest refuses a bucket/key over 2,048 bytes', async () => {
    const manifest = new MemoryManifestStore();
    const entry = (key: string) => ({
      bucket: 'b',
      key,
      trail: 't',
      account: '123456789012',
      region: 'us-east-1',
      sha256: '0'.repeat(64),
      oldestEventTime: '2026-01-01T00:00:00Z',
      newestEventTime: '2026-01-01T00:00:00Z',
      recordCount: 1,
    });
    await expect(manifest.reserve(entry(bytesOf(2046)))).resolves.toBeUndefined();
    await expect(manifest.reserve(entry(bytesOf(2047)))).rejects.toMatchObject(VALIDATION);
    expect(manifest.rows.size).toBe(1);
  });
});

describe('sort keys: 1,024 UTF-8 bytes, also in Query key conditions', () => {
  it.each([
    ['ASCII', 'a'.repeat(1024), 'a'.repeat(1025)],
    ['two-byte characters', bytesOf(1024), bytesOf(1025)],
    [
      'three-byte characters with combining marks',
      '\u3042'.repeat(340) + 'e\u0301a',
      '\u3042'.repeat(340) + 'e\u0301aa',
    ],
  ])('%s: exactly 1,024 bytes passes, 1,025 fails', async (_, fits, over) => {
    expect(Buffer.byteLength(fits)).toBe(1024);
    expect(Buffer.byteLength(over)).toBeGreaterThan(1024);
    const history = new MemoryHistoryStore();
    const query = (lo: string, hi: string) => history.queryIndex({ pk: 'mA#0#', lo, hi, limit: 1 });
    await expect(query('a', fits)).resolves.toEqual({ sortKeys: [], more: false });
    await expect(query('a', over)).rejects.toMatchObject(VALIDATION);
    await expect(query(over, 'z')).rejects.toMatchObject(VALIDATION);
    await expect(
      history.putLegacyIndex([{ pk: 'mA#0#', sk: fits, x: 1 }]),
    ).resolves.toBeUndefined();
    await expect(history.putLegacyIndex([{ pk: 'mA#0#', sk: over, x: 1 }])).rejects.toMatchObject(
      VALIDATION,
    );
    await expect(history.getRecords([{ pk: 'E#x', sk: over }])).rejects.toMatchObject(VALIDATION);
    expect([...history.partitions.get('mA#0#')!.keys()]).toEqual([fits]);
  });

  it('resolves which key attribute each placeholder of a key condition is compared with', () => {
    expect([
      ...keyConditionOperands('#pk = :pk AND #sk BETWEEN :lo AND :hi', {
        '#pk': 'pk',
        '#sk': 'sk',
      }),
    ]).toEqual([
      [':pk', 'pk'],
      [':lo', 'sk'],
      [':hi', 'sk'],
    ]);
    expect([...keyConditionOperands('pk = :a and begins_with(sk, :b)')]).toEqual([
      [':a', 'pk'],
      [':b', 'sk'],
    ]);
  });
});

describe('items: 400 KB including attribute names', () => {
  it('an item of exactly 409,600 bytes passes, 409,601 fails (multi-byte text counted in bytes)', async () => {
    const base = record('E#big');
    const overhead = documentItemSizeBytes({ ...base, j: '' });
    const fits = bytesOf(MAX_ITEM_BYTES - overhead);
    const over = bytesOf(MAX_ITEM_BYTES - overhead + 1);
    expect(documentItemSizeBytes({ ...base, j: fits })).toBe(MAX_ITEM_BYTES);
    const history = new MemoryHistoryStore();
    await expect(history.putRecord({ ...base, j: fits })).resolves.toBe('created');
    await expect(
      history.putRecord({ ...base, sk: 'fedcba9876543210', j: over }),
    ).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringMatching(/Item size has exceeded the maximum allowed size/) as unknown,
    });
    expect(history.records.size).toBe(1);
  });

  it('counts attribute names, numbers, lists and maps as DynamoDB does', () => {
    // "a"(1) + "xyz"(3); "n"(1) + 12345 (3 digits pairs -> 3, +1); "l"(1) + L (3 + 2 x (1 + 1))
    expect(documentItemSizeBytes({ a: 'xyz' })).toBe(4);
    expect(documentItemSizeBytes({ n: 12345 })).toBe(1 + 4);
    expect(documentItemSizeBytes({ l: [true, null] })).toBe(1 + 3 + 2 + 2);
    expect(documentItemSizeBytes({ m: { k: 'v' } })).toBe(1 + 3 + 1 + 1 + 1);
  });
});
