/**
 * Write units as billed, counted by the dynalite proxy (test/support/limited-dynalite.ts) for
 * every write any client sends: the figures the bench's dynamodbWriteUnitsPerEvent rests on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchWriteCommand, DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  createClients,
  destroyClients,
  EMULATOR_CREDENTIALS,
  type Clients,
} from '../../lambda/adapters/clients';
import { documentClient } from '../../lambda/adapters/dynamodb';
import { ensureHistoryTable } from '../../local/components/history';
import { manifestTableDefinition } from '../../local/runtime';
import { LOCAL_DEFAULTS } from '../../local/runtime-context';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { documentItemSizeBytes } from '../support/dynamo-limits';
import { startLimitedEmulators, type LimitedEmulators } from '../support/limited-dynalite';

const TABLE = 'units';

/** A plain item of exactly `bytes` bytes as DynamoDB counts them. */
function itemOf(sk: string, bytes: number): Record<string, unknown> {
  const item = { pk: 'p', sk, j: '' };
  item.j = 'x'.repeat(bytes - documentItemSizeBytes(item));
  expect(documentItemSizeBytes(item)).toBe(bytes);
  return item;
}

describe('write units counted by the dynalite proxy', () => {
  let dir: string;
  let emulators: LimitedEmulators;
  let clients: Clients;
  const documents = () => documentClient(clients.dynamodb);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opentrail-units-'));
    emulators = await startLimitedEmulators({ dataDir: dir });
    clients = createClients({
      region: 'us-east-1',
      dynamodbEndpoint: emulators.dynamodbEndpoint,
      credentials: EMULATOR_CREDENTIALS,
    });
    await ensureHistoryTable(clients.dynamodb, TABLE);
    await clients.dynamodb.send(
      new CreateTableCommand(manifestTableDefinition(LOCAL_DEFAULTS.manifestTable)),
    );
  });

  beforeEach(() => emulators.limits.writeUnits.reset());

  afterAll(async () => {
    destroyClients(clients);
    await emulators.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('bills a put of exactly 1,024 bytes 1 unit and one of 1,025 bytes 2', async () => {
    await documents().send(new PutCommand({ TableName: TABLE, Item: itemOf('a', 1024) }));
    expect(emulators.limits.writeUnits.units(TABLE)).toBe(1);
    await documents().send(new PutCommand({ TableName: TABLE, Item: itemOf('b', 1025) }));
    expect(emulators.limits.writeUnits.units(TABLE)).toBe(3);
  });

  it('bills a put refused by its condition', async () => {
    const item = itemOf('c', 3000);
    await documents().send(new PutCommand({ TableName: TABLE, Item: item }));
    await expect(
      documents().send(
        new PutCommand({
          TableName: TABLE,
          Item: item,
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    expect(emulators.limits.writeUnits.byTable()[TABLE]!.PutItem).toEqual({
      requests: 2,
      items: 2,
      units: 6,
      conditionFailures: 1,
    });
  });

  it('bills each item of a BatchWriteItem by its own size', async () => {
    await documents().send(
      new BatchWriteCommand({
        RequestItems: {
          [TABLE]: [
            { PutRequest: { Item: itemOf('d1', 100) } },
            { PutRequest: { Item: itemOf('d2', 1025) } },
            { PutRequest: { Item: itemOf('d3', 5000) } },
          ],
        },
      }),
    );
    expect(emulators.limits.writeUnits.byTable()[TABLE]!.BatchWriteItem).toEqual({
      requests: 1,
      items: 3,
      units: 1 + 2 + 5,
      conditionFailures: 0,
    });
  });

  it('bills an UpdateItem by the item after the update, and a DeleteItem by the item deleted', async () => {
    await documents().send(new PutCommand({ TableName: TABLE, Item: itemOf('e', 500) }));
    await documents().send(
      new UpdateCommand({
        TableName: TABLE,
        Key: { pk: 'p', sk: 'e' },
        UpdateExpression: 'SET more = :m',
        ExpressionAttributeValues: { ':m': 'y'.repeat(2000) },
      }),
    );
    await documents().send(new DeleteCommand({ TableName: TABLE, Key: { pk: 'p', sk: 'e' } }));
    const units = emulators.limits.writeUnits.byTable()[TABLE]!;
    expect(units.UpdateItem!.units).toBe(3);
    expect(units.DeleteItem!.units).toBe(3);
  });

  it('does not bill a write refused for a size limit', async () => {
    await expect(
      documents().send(new PutCommand({ TableName: TABLE, Item: itemOf('f', 400 * 1024 + 1) })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    expect(emulators.limits.writeUnits.units()).toBe(0);
  });

  it('bills the manifest’s byStream index once a file is marked delivered', async () => {
    const table = LOCAL_DEFAULTS.manifestTable;
    const pk = 'opentrail-logs/AWSLogs/123456789012/CloudTrail/x.json.gz';
    await documents().send(
      new PutCommand({ TableName: table, Item: { pk, state: 'pending', stream: 't#1#r' } }),
    );
    expect(emulators.limits.writeUnits.units(table)).toBe(1);
    await documents().send(
      new UpdateCommand({
        TableName: table,
        Key: { pk },
        UpdateExpression: 'SET #s = :d, deliveredAt = :t',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: { ':d': 'delivered', ':t': '2026-12-07T12:00:00.000Z' },
      }),
    );
    const units = emulators.limits.writeUnits.byTable()[table]!;
    expect(units.UpdateItem!.units).toBe(1);
    expect(units['UpdateItem byStream']!.units).toBe(1);
    expect(emulators.limits.writeUnits.units(table)).toBe(3);
  });
});
