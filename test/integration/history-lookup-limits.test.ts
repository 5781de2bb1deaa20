/**
 * DynamoDB's limits on dynalite, through the limits proxy the integration tests use
 * (test/support/limited-dynalite.ts): what dynalite alone lets through and DynamoDB refuses,
 * and LookupEvents over that store answering every request (fast-check) without a 5xx.
 */
import '../fixtures/quiet-powertools';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import {
  createClients,
  destroyClients,
  EMULATOR_CREDENTIALS,
  type Clients,
} from '../../lambda/adapters/clients';
import { documentClient } from '../../lambda/adapters/dynamodb';
import { DynamoHistoryStore } from '../../lambda/adapters/history';
import { HmacMac } from '../../lambda/adapters/mac';
import { indexBatch, LOOKUP_EVENTS_TARGET, lookupEvents } from '../../lambda/core/history';
import { createQueryHandler } from '../../lambda/handlers/query';
import { ensureHistoryTable } from '../../local/components/history';
import { fastCheckSeed, lookupBody, lookupEvent, wireProblem } from '../fixtures/lookup-requests';
import { documentItemSizeBytes, MAX_ITEM_BYTES } from '../support/dynamo-limits';
import { startLimitedEmulators, type LimitedEmulators } from '../support/limited-dynalite';

const TABLE = 'history';
const bytesOf = (n: number): string => 'é'.repeat(Math.floor(n / 2)) + 'a'.repeat(n % 2);
const VALIDATION = { name: 'ValidationException' };

describe('dynalite behind the limits proxy', () => {
  let dir: string;
  let emulators: LimitedEmulators;
  let proxied: Clients;
  let raw: Clients;

  const clientsAt = (dynamodbEndpoint: string) =>
    createClients({ region: 'us-east-1', dynamodbEndpoint, credentials: EMULATOR_CREDENTIALS });
  const put = (clients: Clients, item: Record<string, unknown>) =>
    documentClient(clients.dynamodb).send(new PutCommand({ TableName: TABLE, Item: item }));
  const query = (clients: Clients, pk: string, lo: string, hi: string) =>
    documentClient(clients.dynamodb).send(
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :lo AND :hi',
        ExpressionAttributeNames: { '#pk': 'pk', '#sk': 'sk' },
        ExpressionAttributeValues: { ':pk': pk, ':lo': lo, ':hi': hi },
      }),
    );
  /** Every item dynalite holds, read past the proxy. */
  const storedKeys = async (): Promise<string[]> => {
    const scan = await raw.dynamodb.send(new ScanCommand({ TableName: TABLE }));
    return (scan.Items ?? []).map((item) => `${item.pk?.S}|${item.sk?.S}`).sort();
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opentrail-limits-'));
    emulators = await startLimitedEmulators({ dataDir: dir });
    proxied = clientsAt(emulators.dynamodbEndpoint);
    raw = clientsAt(emulators.limits.target);
    await ensureHistoryTable(proxied.dynamodb, TABLE);
  });

  afterAll(async () => {
    destroyClients(proxied);
    destroyClients(raw);
    await emulators.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a partition key of 2,049 UTF-8 bytes that dynalite alone stores (1,025 characters)', async () => {
    const over = bytesOf(2049);
    await expect(put(proxied, { pk: over, sk: 'a' })).rejects.toMatchObject(VALIDATION);
    expect(await storedKeys()).toEqual([]);
    // dynalite alone counts characters: the same item goes in.
    await expect(put(raw, { pk: over, sk: 'raw' })).resolves.toBeDefined();
    await expect(put(proxied, { pk: bytesOf(2048), sk: 'a' })).resolves.toBeDefined();
    expect(await storedKeys()).toEqual([`${bytesOf(2048)}|a`, `${over}|raw`].sort());
  });

  it('refuses a Query whose key condition holds a value over the key limits', async () => {
    await expect(query(proxied, bytesOf(2048), 'a', bytesOf(1024))).resolves.toBeDefined();
    await expect(query(proxied, bytesOf(2049), 'a', 'b')).rejects.toMatchObject(VALIDATION);
    await expect(query(proxied, 'p', 'a', bytesOf(1025))).rejects.toMatchObject(VALIDATION);
    await expect(query(proxied, 'p', bytesOf(1025), 'z')).rejects.toMatchObject(VALIDATION);
    // dynalite alone answers the over-long Query.
    await expect(query(raw, bytesOf(2049), 'a', bytesOf(1025))).resolves.toBeDefined();
  });

  it('stores an item of exactly 400 KB and refuses one byte more (attribute names counted)', async () => {
    const base = { pk: 'big', sk: 'one', j: '' };
    const room = MAX_ITEM_BYTES - documentItemSizeBytes(base);
    await expect(put(proxied, { ...base, j: bytesOf(room) })).resolves.toBeDefined();
    await expect(put(proxied, { ...base, sk: 'two', j: bytesOf(room + 1) })).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringMatching(/^Item size has exceeded the maximum allowed size/) as unknown,
    });
    expect((await storedKeys()).filter((k) => k.startsWith('big|'))).toEqual(['big|one']);
    expect(emulators.limits.refused.map((r) => r.operation)).toContain('PutItem');
  });

  describe('LookupEvents through the query handler', () => {
    const NOW = Date.now();
    const handler = () => {
      const store = new DynamoHistoryStore(documentClient(proxied.dynamodb), TABLE);
      const mac = new HmacMac(Buffer.alloc(32, 5));
      return createQueryHandler(
        new Map([[LOOKUP_EVENTS_TARGET, (r) => lookupEvents(r, { store, mac, now: () => NOW })]]),
      );
    };

    beforeAll(async () => {
      const store = new DynamoHistoryStore(documentClient(proxied.dynamodb), TABLE);
      await indexBatch(
        ['alice', 'é'.repeat(600), '😀 a\u0308'].map((userName, n) => ({
          sequenceNumber: String(n),
          data: Buffer.from(
            JSON.stringify({
              eventID: `event-${n}`,
              eventTime: new Date(NOW - (n + 1) * 60_000).toISOString().slice(0, 19) + 'Z',
              eventSource: 'iam.amazonaws.com',
              eventName: 'ListUsers',
              eventCategory: 'Management',
              userIdentity: { type: 'IAMUser', userName },
            }),
          ),
        })),
        store,
      );
    });

    it('answers an EventId too long for a DynamoDB key with an empty page, not a 500', async () => {
      const response = await handler()(
        lookupEvent(
          JSON.stringify({
            LookupAttributes: [{ AttributeKey: 'EventId', AttributeValue: 'é'.repeat(1500) }],
          }),
        ),
      );
      expect(response.statusCode).toBe(200);
      expect(JSON.parse(response.body)).toEqual({ Events: [] });
    });

    it('answers every generated request with a 200 or a CloudTrail-shaped 400 (fast-check)', async () => {
      const call = handler();
      const first = JSON.parse((await call(lookupEvent('{"MaxResults":1}'))).body) as {
        NextToken: string;
      };
      const seed = fastCheckSeed('LookupEvents on dynalite behind the limits proxy');
      const refusedBefore = emulators.limits.refused.length;
      await fc.assert(
        fc.asyncProperty(lookupBody(Math.floor(NOW / 1000), [first.NextToken]), async (body) => {
          const problem = wireProblem(await call(lookupEvent(body)));
          if (problem) throw new Error(`${problem}\nrequest: ${body.slice(0, 300)}`);
        }),
        { seed, numRuns: 400 },
      );
      // Nothing the core sent was refused by the proxy: it checks limits before DynamoDB would.
      expect(emulators.limits.refused.slice(refusedBefore)).toEqual([]);
    });
  });
});
