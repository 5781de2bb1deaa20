/**
 * DynamoDB's size limits in UTF-8 bytes, at the real limits (400 KB item, 2,048-byte partition
 * key, 1,024-byte sort key), and the digest chain store keeping every item under them however
 * many log files a period has. The store runs over a document-client double that refuses what
 * DynamoDB refuses, sized independently of the code under test.
 */
import { randomBytes } from 'node:crypto';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDigestChainStore } from '../../lambda/adapters/dynamodb-digests';
import {
  checkItemLimits,
  DynamoLimitError,
  itemBytes,
  MAX_ITEM_BYTES,
  MAX_PARTITION_KEY_BYTES,
  MAX_SORT_KEY_BYTES,
} from '../../lambda/adapters/dynamodb-limits';
import type { DigestCandidate } from '../../lambda/core/ports';

const KEYS = { partitionKey: 'pk', sortKey: 'sk' };

describe('DynamoDB limits in UTF-8 bytes', () => {
  it.each([
    ['ASCII', 'a', 2048],
    ['2-byte é', 'é', 1024],
    ['3-byte €', '€', 682],
    ['4-byte 𝄞', '𝄞', 512],
  ])('a partition key of %s up to 2,048 bytes passes, one byte more is refused', (_, ch, n) => {
    const pk = ch
      .repeat(n)
      .padEnd(n + (MAX_PARTITION_KEY_BYTES - Buffer.byteLength(ch.repeat(n))), 'a');
    expect(Buffer.byteLength(pk)).toBe(MAX_PARTITION_KEY_BYTES);
    expect(() => checkItemLimits('t', { pk, sk: 's' }, KEYS)).not.toThrow();
    const over = () => checkItemLimits('t', { pk: `${pk}a`, sk: 's' }, KEYS);
    expect(over).toThrow(DynamoLimitError);
    expect(over).toThrow('t: partition key pk is 2049 bytes in UTF-8; DynamoDB allows 2048');
  });

  it('a sort key of 1,024 bytes passes and of 1,025 is refused, counted in bytes not characters', () => {
    const sk = `${'€'.repeat(341)}a`; // 342 characters, 1,024 bytes
    expect(() => checkItemLimits('t', { pk: 'p', sk }, KEYS)).not.toThrow();
    expect(() => checkItemLimits('t', { pk: 'p', sk: `${sk}a` }, KEYS)).toThrow(
      `t: sort key sk is ${MAX_SORT_KEY_BYTES + 1} bytes in UTF-8; DynamoDB allows ${MAX_SORT_KEY_BYTES}`,
    );
  });

  it('an item of exactly 400 KB (names included) passes, one byte more is refused', () => {
    // pk (2 + 1) + sk (2 + 1) + gz (2 + body)
    const body = MAX_ITEM_BYTES - 8;
    const item = { pk: 'p', sk: 's', gz: Buffer.alloc(body) };
    expect(itemBytes(item)).toBe(MAX_ITEM_BYTES);
    expect(() => checkItemLimits('t', item, KEYS)).not.toThrow();
    expect(() => checkItemLimits('t', { ...item, gz: Buffer.alloc(body + 1) }, KEYS)).toThrow(
      `t: item "p" / "s" is ${MAX_ITEM_BYTES + 1} bytes; DynamoDB allows ${MAX_ITEM_BYTES} per item`,
    );
  });

  it.each([
    ['a UTF-8 string by its bytes', { ab: 'é€' }, 2 + 5],
    ['a number by its significant digits', { n: 123456789 }, 1 + 6],
    ['a binary by its length', { b: Buffer.alloc(10) }, 1 + 10],
    ['null and booleans as one byte', { a: null, b: true }, 2 + 2],
    ['a map with 3 bytes of overhead and its names', { m: { xy: 'z' } }, 1 + 3 + 1 + 2 + 1],
    ['a list with 3 bytes of overhead and 1 per element', { l: ['a', 'b'] }, 1 + 3 + 2 + 2],
  ])('sizes %s', (_, item, bytes) => {
    expect(itemBytes(item)).toBe(bytes);
  });
});

/**
 * A document client double over a Map: PutItem (with attribute_not_exists), GetItem, and
 * Query with begins_with on the sort key. It refuses items over 400 KB and keys over their
 * limits the way DynamoDB does, with its own size count (strings and binaries by bytes).
 */
function limitedDocumentClient() {
  const items = new Map<string, Record<string, unknown>>();
  const puts: number[] = [];
  const size = (item: Record<string, unknown>): number =>
    Object.entries(item).reduce((n, [name, v]) => {
      const value =
        v instanceof Uint8Array
          ? v.byteLength
          : typeof v === 'string'
            ? Buffer.byteLength(v)
            : Buffer.byteLength(JSON.stringify(v ?? null));
      return n + Buffer.byteLength(name) + value;
    }, 0);
  const id = (pk: unknown, sk: unknown) => `${String(pk)}\u0000${String(sk)}`;
  const client = {
    send: (command: { constructor: { name: string }; input: unknown }) => {
      const input = command.input as {
        Item: Record<string, unknown>;
        Key: Record<string, unknown>;
        ConditionExpression?: string;
        ExpressionAttributeValues: Record<string, string>;
      };
      switch (command.constructor.name) {
        case 'PutCommand': {
          const item = input.Item;
          const bytes = size(item);
          puts.push(bytes);
          if (bytes > 400 * 1024) {
            const error = new Error('Item size has exceeded the maximum allowed size');
            error.name = 'ValidationException';
            return Promise.reject(error);
          }
          if (input.ConditionExpression && items.has(id(item.pk, item.sk))) {
            const error = new Error('The conditional request failed');
            error.name = 'ConditionalCheckFailedException';
            return Promise.reject(error);
          }
          items.set(id(item.pk, item.sk), item);
          return Promise.resolve({});
        }
        case 'GetCommand':
          return Promise.resolve({ Item: items.get(id(input.Key.pk, input.Key.sk)) });
        case 'QueryCommand': {
          const values = input.ExpressionAttributeValues;
          const found = [...items.values()]
            .filter((i) => i.pk === values[':pk'] && String(i.sk).startsWith(values[':prefix']!))
            .sort((a, b) => (String(a.sk) < String(b.sk) ? -1 : 1));
          return Promise.resolve({ Items: found });
        }
        default:
          return Promise.reject(new Error(`unexpected ${command.constructor.name}`));
      }
    },
  };
  return { client: client as unknown as DynamoDBDocumentClient, items, puts };
}

function candidates(n: number): DigestCandidate[] {
  return Array.from({ length: n }, (_, i) => ({
    bucket: 'opentrail-logs-123456789012',
    key: `AWSLogs/123456789012/CloudTrail/eu-west-1/2026/01/01/123456789012_CloudTrail_eu-west-1_20260101T0000Z_${String(i).padStart(16, '0')}.json.gz`,
    sha256: randomBytes(32).toString('hex'),
    oldestEventTime: '2026-01-01T00:00:00Z',
    newestEventTime: '2026-01-01T00:59:59Z',
  }));
}

describe('digest chain store within DynamoDB limits', () => {
  it.each([1, 6_500, 50_000])(
    'reserves a period of %i log files in items of at most 400 KB and reads every one back',
    async (n) => {
      const db = limitedDocumentClient();
      const store = new DynamoDigestChainStore(db.client, 'chain');
      const all = candidates(n);
      const reservation = {
        stream: 'audit#123456789012#eu-west-1',
        startMs: Date.UTC(2026, 0, 1),
        endMs: Date.UTC(2026, 0, 1, 1),
        bucket: 'opentrail-logs-123456789012',
        key: 'digest-key',
        previous: null,
        candidates: all,
      };

      await store.reserve(reservation);
      const read = await store.getReservation(reservation.stream, reservation.startMs);

      expect(Math.max(...db.puts)).toBeLessThanOrEqual(400 * 1024);
      expect(read?.candidates).toEqual(all);
    },
  );

  it('a racing signer that reserves second reads the winner’s candidates, not its own', async () => {
    const db = limitedDocumentClient();
    const first = new DynamoDigestChainStore(db.client, 'chain');
    const second = new DynamoDigestChainStore(db.client, 'chain');
    const base = {
      stream: 's#1#r',
      startMs: 0,
      endMs: 1000,
      bucket: 'b',
      key: 'k',
      previous: null,
    };
    await first.reserve({ ...base, candidates: candidates(3) });
    const winner = await first.getReservation('s#1#r', 0);

    const got = await second.reserve({ ...base, candidates: candidates(9_000) });

    expect(got).toEqual(winner);
    expect(got.candidates).toHaveLength(3);
  });

  it('refuses, before writing, a stream whose registry key would exceed the 1,024-byte sort key', async () => {
    const db = limitedDocumentClient();
    const store = new DynamoDigestChainStore(db.client, 'chain');
    await expect(
      store.register({
        trail: 'é'.repeat(510),
        account: '123456789012',
        region: 'eu-west-1',
        firstSeenMs: 0,
      }),
    ).rejects.toThrow(/chain: sort key sk is 1,?0[0-9]{2} bytes in UTF-8; DynamoDB allows 1024/);
    expect(db.puts).toEqual([]);
  });
});
