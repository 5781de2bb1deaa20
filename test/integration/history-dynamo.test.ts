import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createClients,
  destroyClients,
  EMULATOR_CREDENTIALS,
  type Clients,
} from '../../lambda/adapters/clients';
import { documentClient } from '../../lambda/adapters/dynamodb';
import { DynamoHistoryStore, type CapacityMeter } from '../../lambda/adapters/history';
import { HmacMac } from '../../lambda/adapters/mac';
import { lookupEvents } from '../../lambda/core/history';
import type { HistoryStore } from '../../lambda/core/ports';
import { createIndexerHandler } from '../../lambda/handlers/indexer';
import { startLimitedEmulators, type LimitedEmulators } from '../support/limited-dynalite';
import { BatchWriteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { legacyItems } from '../fixtures/legacy-history';
import { ensureHistoryTable, loadTokenKey } from '../../local/components/history';
import { batchOf, sequenceNumber } from '../fixtures/kinesis-events';
import { expectedIds } from '../fixtures/history-truth';
import '../fixtures/quiet-powertools';

const NOW = Date.now();
const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 19) + 'Z';

/** 240 events: four per second, three event names, a few readOnly-less, some old. */
function records(): Record<string, unknown>[] {
  return Array.from({ length: 240 }, (_, n) => ({
    eventVersion: '1.11',
    eventID: `0000-${String((n * 7919) % 240).padStart(4, '0')}`,
    eventTime: iso(NOW - 3600_000 - Math.floor(n / 4) * 1000 - (n % 60 === 0 ? 95 * 86400_000 : 0)),
    eventSource: n % 5 === 0 ? 'ssm.amazonaws.com' : 'ec2.amazonaws.com',
    eventName: ['DescribeInstances', 'Start Session ✓', 'GetParameter'][n % 3],
    awsRegion: 'us-east-1',
    eventCategory: n % 11 === 0 ? 'Data' : 'Management',
    managementEvent: n % 11 !== 0,
    ...(n % 9 === 0 ? {} : { readOnly: n % 2 === 0 }),
    userIdentity: {
      type: 'IAMUser',
      userName: n % 2 ? 'alice' : 'bob',
      principalId: 'AIDA',
      accessKeyId: `AKIA${n % 4}`,
    },
    resources:
      n % 6 === 0
        ? [{ ARN: `arn:aws:ec2:us-east-1:1:instance/i-${n % 3}`, type: 'AWS::EC2::Instance' }]
        : [],
  }));
}

describe('event history on dynalite', () => {
  const input = records();
  let dir: string;
  let emulators: LimitedEmulators;
  let clients: Clients;
  let meter: CapacityMeter;
  let store: DynamoHistoryStore;
  let mac: HmacMac;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opentrail-history-'));
    emulators = await startLimitedEmulators({ dataDir: dir });
    clients = createClients({
      region: 'us-east-1',
      dynamodbEndpoint: emulators.dynamodbEndpoint,
      credentials: EMULATOR_CREDENTIALS,
    });
    await ensureHistoryTable(clients.dynamodb, 'history');
    meter = { read: 0, write: 0 };
    store = new DynamoHistoryStore(documentClient(clients.dynamodb), 'history', meter);
    mac = new HmacMac(await loadTokenKey(dir));
  });

  /** A client past the proxy, to see what dynalite holds. */
  const raw = () =>
    createClients({
      region: 'us-east-1',
      dynamodbEndpoint: emulators.limits.target,
      credentials: EMULATOR_CREDENTIALS,
    }).dynamodb;

  afterAll(async () => {
    destroyClients(clients);
    await emulators.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('indexes a batch, and a re-delivered batch adds nothing', async () => {
    const metrics = new Map<string, number>();
    const handler = createIndexerHandler({
      store,
      metrics: { count: (n, v) => metrics.set(n, (metrics.get(n) ?? 0) + v) },
    });
    const event = batchOf(
      'shardId-000000000000',
      input.map((r) => JSON.stringify(r)),
      1,
      NOW,
    );
    expect(await handler(event)).toEqual({ batchItemFailures: [] });
    expect(await handler(event)).toEqual({ batchItemFailures: [] });
    const management = input.filter((r) => r.eventCategory === 'Management').length;
    expect(metrics.get('HistoryIndexed')).toBe(management);
    expect(metrics.get('HistoryDuplicates')).toBe(management);
    expect(meter.write).toBeGreaterThan(0);
  });

  it.each([1, 7, 50])('answers as the plain filter does, pages of %i', async (size) => {
    const queries = [
      {},
      { LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'Start Session ✓' }] },
      {
        LookupAttributes: [{ AttributeKey: 'ReadOnly', AttributeValue: 'true' }],
        StartTime: (NOW - 3600_000 - 30_000) / 1000 + 0.5,
        EndTime: (NOW - 3600_000 - 10_000) / 1000 + 0.5,
      },
      { LookupAttributes: [{ AttributeKey: 'ResourceName', AttributeValue: 'i-1' }] },
      { LookupAttributes: [{ AttributeKey: 'EventId', AttributeValue: '0000-0007' }] },
    ];
    for (const query of queries) {
      const ids: string[] = [];
      let token: string | undefined;
      do {
        const page = await lookupEvents(
          { ...query, MaxResults: size, ...(token ? { NextToken: token } : {}) },
          { store, mac, now: () => NOW },
        );
        ids.push(...page.Events.map((e) => e.EventId!));
        token = page.NextToken;
      } while (token);
      const attribute = (
        query as { LookupAttributes?: { AttributeKey: string; AttributeValue: string }[] }
      ).LookupAttributes?.[0];
      expect(ids).toEqual(
        expectedIds(input, {
          ...(attribute ? { key: attribute.AttributeKey, value: attribute.AttributeValue } : {}),
          start: (query as { StartTime?: number }).StartTime,
          end: (query as { EndTime?: number }).EndTime,
          nowMs: NOW,
        }),
      );
    }
  });

  it('reports consumed read capacity for a page (ReturnConsumedCapacity)', async () => {
    meter.read = 0;
    await lookupEvents({ MaxResults: 50 }, { store, mac, now: () => NOW });
    expect(meter.read).toBeGreaterThan(0);
  });

  it('reports the first record of a failed record write so Lambda retries from there', async () => {
    // Record items go 100 to a call (RECORD_PUT_CHUNK): a poisoned item in the second call
    // fails that call, and the retry starts at its first record.
    const management = input.filter((r) => r.eventCategory === 'Management').slice(0, 150);
    expect(management).toHaveLength(150);
    const poisoned = `E#retry-${String(management[106]!.eventID)}`;
    const failing: HistoryStore = {
      ...store,
      putRecord: (item) => store.putRecord(item),
      putRecords: async (items) => {
        if (items.some((item) => item.pk === poisoned))
          throw Object.assign(new Error('throttled'), {
            name: 'ProvisionedThroughputExceededException',
          });
        return store.putRecords(items);
      },
      putGroups: (items) => store.putGroups(items),
      queryGroups: (q) => store.queryGroups(q),
      queryIndex: (q) => store.queryIndex(q),
      queryRecords: (pk) => store.queryRecords(pk),
      getRecords: (keys) => store.getRecords(keys),
    };
    const handler = createIndexerHandler({ store: failing, metrics: { count: () => undefined } });
    const texts = management.map((r) =>
      JSON.stringify({ ...r, eventID: `retry-${String(r.eventID)}` }),
    );
    const result = await handler(batchOf('shardId-000000000001', texts, 1000, NOW));
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: sequenceNumber(1100) }]);
  });

  it('answers one LookupEvents page from items of both layouts (version 1 and groups)', async () => {
    const table = 'history-upgrade';
    await ensureHistoryTable(clients.dynamodb, table);
    const documents = documentClient(clients.dynamodb);
    const upgraded = new DynamoHistoryStore(documents, table);
    const events = input
      .filter((r) => r.eventCategory === 'Management')
      .slice(0, 60)
      .map((r, n) => ({ ...r, eventID: `upgrade-${String(n).padStart(3, '0')}` }));
    // Every third event as 23b3f31's indexer stored it, the others through today's indexer.
    for (const [n, r] of events.entries()) {
      if (n % 3 !== 0) continue;
      const legacy = legacyItems(JSON.stringify(r));
      await documents.send(new PutCommand({ TableName: table, Item: legacy.record }));
      for (let i = 0; i < legacy.index.length; i += 25)
        await documents.send(
          new BatchWriteCommand({
            RequestItems: {
              [table]: legacy.index.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })),
            },
          }),
        );
    }
    const handler = createIndexerHandler({ store: upgraded, metrics: { count: () => undefined } });
    const fresh = events.filter((_, n) => n % 3 !== 0).map((r) => JSON.stringify(r));
    expect(await handler(batchOf('shardId-000000000002', fresh, 5000, NOW))).toEqual({
      batchItemFailures: [],
    });
    const rawClient = raw();
    const scan = await rawClient
      .send(new ScanCommand({ TableName: table }))
      .finally(() => rawClient.destroy());
    const pks = (scan.Items ?? []).map((item) => item.pk!.S!);
    expect(pks.some((pk) => /^m[A-Z]#\d#/.test(pk))).toBe(true);
    expect(pks.some((pk) => /^m[A-Z]\$/.test(pk))).toBe(true);

    const page = await lookupEvents({ MaxResults: 50 }, { store: upgraded, mac, now: () => NOW });
    const ids = page.Events.map((e) => e.EventId!);
    expect(ids).toEqual(expectedIds(events, { nowMs: NOW }).slice(0, 50));
    const layouts = new Set(ids.map((id) => Number(id.slice(-3)) % 3 === 0));
    expect(layouts).toEqual(new Set([true, false]));
    for (const query of [
      { LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'GetParameter' }] },
      { LookupAttributes: [{ AttributeKey: 'ReadOnly', AttributeValue: 'false' }] },
    ]) {
      const got: string[] = [];
      let token: string | undefined;
      do {
        const p = await lookupEvents(
          { ...query, MaxResults: 7, ...(token ? { NextToken: token } : {}) },
          { store: upgraded, mac, now: () => NOW },
        );
        got.push(...p.Events.map((e) => e.EventId!));
        token = p.NextToken;
      } while (token);
      const a = query.LookupAttributes[0]!;
      expect(got).toEqual(
        expectedIds(events, { key: a.AttributeKey, value: a.AttributeValue, nowMs: NOW }),
      );
    }
  });
});
