import { createHash } from 'node:crypto';
import {
  AuditBatcher,
  bodyBytes,
  checksumOf,
  deriveEntryId,
  ENTRY_ID_PATTERN,
  requestBody,
  type Batch,
  type BatchableRecord,
} from '../../cli/shared/audit-batcher';

function rec(n: number, id: string | null = `id-${n}`, size = 20): BatchableRecord {
  const eventID = id ?? undefined;
  const text = JSON.stringify({ eventID, pad: 'x'.repeat(size) });
  return {
    source: 'f.json',
    position: `[${n}]`,
    text,
    ...(eventID !== undefined ? { eventID } : {}),
  };
}

function batchAll(records: readonly BatchableRecord[], batcher: AuditBatcher) {
  const batches: Batch[] = [];
  const tooLarge: string[] = [];
  records.forEach((record, index) => {
    const added = batcher.add(record, index + 1);
    if (added.flushed) batches.push(added.flushed);
    if (added.tooLarge) tooLarge.push(record.position);
  });
  const last = batcher.flush();
  if (last) batches.push(last);
  return { batches, tooLarge };
}

describe('PutAuditEvents batching', () => {
  it('closes a batch at the entry limit', () => {
    const records = Array.from({ length: 250 }, (_, i) => rec(i));
    const { batches } = batchAll(records, new AuditBatcher());
    expect(batches.map((b) => b.entries.length)).toEqual([100, 100, 50]);
  });

  it('honours a smaller --batch-size', () => {
    const { batches } = batchAll(
      Array.from({ length: 7 }, (_, i) => rec(i)),
      new AuditBatcher({ maxEntries: 3 }),
    );
    expect(batches.map((b) => b.entries.length)).toEqual([3, 3, 1]);
  });

  it('closes a batch before its serialised body would pass the byte limit, measured exactly', () => {
    const records = Array.from({ length: 40 }, (_, i) => rec(i, `id-${i}`, 30_000));
    const { batches } = batchAll(records, new AuditBatcher());
    expect(batches.length).toBeGreaterThan(1);
    for (const batch of batches) {
      const body = requestBody(batch.entries);
      expect(Buffer.byteLength(body)).toBe(batch.bytes);
      expect(batch.bytes).toBeLessThanOrEqual(1_048_576);
    }
    // Each batch is full: the next record would not have fit.
    for (let i = 0; i < batches.length - 1; i++) {
      const next = batches[i + 1]!.entries[0]!;
      expect(bodyBytes([...batches[i]!.entries.map((e) => e.bytes), next.bytes])).toBeGreaterThan(
        1_048_576,
      );
    }
    expect(batches.flatMap((b) => b.entries).length).toBe(40);
  });

  it('counts multi-byte characters and escapes in bytes', () => {
    const record: BatchableRecord = {
      source: 's',
      position: 'record',
      text: JSON.stringify({ eventID: 'e', s: 'é"\n😀' }),
    };
    const batch = batchAll([record], new AuditBatcher()).batches[0]!;
    expect(batch.bytes).toBe(Buffer.byteLength(requestBody(batch.entries)));
  });

  it('refuses a record too large for any request on its own, and keeps batching the rest', () => {
    const records = [rec(1), rec(2, 'big', 2_000), rec(3)];
    const { batches, tooLarge } = batchAll(records, new AuditBatcher({ maxBytes: 1_000 }));
    expect(tooLarge).toEqual(['[2]']);
    expect(batches.flatMap((b) => b.entries.map((e) => e.position))).toEqual(['[1]', '[3]']);
  });

  it('gives every entry an id of [-_A-Za-z0-9]{1,128}, unique within its request', () => {
    const records = [
      rec(1, 'a1b2c3d4-0000-1111-2222-333344445555'),
      rec(2, 'same'),
      rec(3, 'same'),
      rec(4, null),
      rec(5, '!!!'),
      rec(6, 'x'.repeat(300)),
      rec(7, 'x'.repeat(300)),
      rec(8, 'with spaces/and:colons'),
    ];
    const { batches } = batchAll(records, new AuditBatcher());
    const ids = batches[0]!.entries.map((e) => e.event.id);
    for (const id of ids) expect(id).toMatch(ENTRY_ID_PATTERN);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.slice(0, 5)).toEqual([
      'a1b2c3d4-0000-1111-2222-333344445555',
      'same',
      'same_3',
      'record_4',
      'record_5',
    ]);
    expect(ids[7]).toBe('withspacesandcolons');
  });

  it('reuses an eventID as id in the next request even when an earlier request used it', () => {
    const { batches } = batchAll(
      [rec(1, 'dup'), rec(2, 'dup')],
      new AuditBatcher({ maxEntries: 1 }),
    );
    expect(batches.map((b) => b.entries[0]!.event.id)).toEqual(['dup', 'dup']);
  });

  it('chooses an id again when the record moves to a new batch', () => {
    const { batches } = batchAll(
      [rec(1, 'dup'), rec(2, 'dup', 900)],
      new AuditBatcher({ maxBytes: 1_100 }),
    );
    expect(batches.map((b) => b.entries.map((e) => e.event.id))).toEqual([['dup'], ['dup']]);
  });

  it('sends the record text as eventData with its base64 SHA-256 as eventDataChecksum', () => {
    const record = rec(1);
    const entry = batchAll([record], new AuditBatcher()).batches[0]!.entries[0]!;
    expect(entry.event.eventData).toBe(record.text);
    expect(entry.event.eventDataChecksum).toBe(
      createHash('sha256').update(record.text).digest('base64'),
    );
    expect(checksumOf('é')).toBe(
      createHash('sha256').update(Buffer.from('é', 'utf8')).digest('base64'),
    );
  });
});

describe('deriveEntryId', () => {
  it.each([
    [
      'a GUID',
      'f1e2d3c4-b5a6-9788-0011-223344556677',
      new Set<string>(),
      1,
      'f1e2d3c4-b5a6-9788-0011-223344556677',
    ],
    ['no eventID', undefined, new Set<string>(), 9, 'record_9'],
    ['a non-string eventID', 42, new Set<string>(), 9, 'record_9'],
    ['a taken eventID', 'e', new Set(['e']), 12, 'e_12'],
    ['a fallback that is taken too', 'e', new Set(['e', 'e_12']), 12, 'e_12_1'],
  ])('derives from %s', (_name, eventID, taken, ordinal, expected) => {
    expect(deriveEntryId(eventID, ordinal, taken)).toBe(expected);
  });

  it('never exceeds 128 characters', () => {
    const long = 'a'.repeat(200);
    expect(deriveEntryId(long, 1, new Set())).toHaveLength(128);
    const fallback = deriveEntryId(long, 123456, new Set(['a'.repeat(128)]));
    expect(fallback).toMatch(ENTRY_ID_PATTERN);
    expect(fallback.endsWith('_123456')).toBe(true);
  });
});
