/**
 * Event history in the embedded runtime: the history table on dynalite, the indexer on its
 * own stream consumer polling every second (whatever --flush-seconds says, so lookups see an
 * event within about a second), and LookupEvents behind `POST /`. Page tokens are
 * authenticated with an HMAC key kept in `<data-dir>/keys/history-token.key` (created on first
 * start, mode 0600), never in an environment variable.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { LOOKUP_EVENTS_TARGET, lookupEvents } from '../../lambda/core/history';
import { HISTORY_TABLE } from '../../lambda/core/tables';
import { DynamoHistoryStore } from '../../lambda/adapters/history';
import { HmacMac } from '../../lambda/adapters/mac';
import { createIndexerHandler } from '../../lambda/handlers/indexer';
import type { RuntimeComponent } from '../runtime-context';

/** The history table of the embedded runtime. */
export const LOCAL_HISTORY_TABLE = 'opentrail-history';

/** Creates the history table unless it exists (no TTL on dynalite: reads enforce the window). */
export async function ensureHistoryTable(
  dynamodb: DynamoDBClient,
  table = LOCAL_HISTORY_TABLE,
): Promise<void> {
  await dynamodb
    .send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: HISTORY_TABLE.partitionKey, AttributeType: 'S' },
          { AttributeName: HISTORY_TABLE.sortKey, AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: HISTORY_TABLE.partitionKey, KeyType: 'HASH' },
          { AttributeName: HISTORY_TABLE.sortKey, KeyType: 'RANGE' },
        ],
      }),
    )
    .catch((error: unknown) => {
      if ((error as Error).name !== 'ResourceInUseException') throw error;
    });
  for (let i = 0; i < 200; i++) {
    const described = await dynamodb.send(new DescribeTableCommand({ TableName: table }));
    if (described.Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`table ${table} did not become active`);
}

/** The page-token key: `<data-dir>/keys/history-token.key`, 32 random bytes made once. */
export async function loadTokenKey(dataDir: string): Promise<Buffer> {
  const dir = join(dataDir, 'keys');
  const file = join(dir, 'history-token.key');
  try {
    const key = await readFile(file);
    if (key.length >= 32) return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  try {
    await writeFile(file, key, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readFile(file);
  }
}

/** How often the indexer polls the stream, whatever --flush-seconds says. */
const INDEXER_POLL_MS = 1000;

export const historyComponent: RuntimeComponent = {
  name: 'history',
  start: async (context) => {
    await ensureHistoryTable(context.clients.dynamodb);
    const store = new DynamoHistoryStore(context.documents, LOCAL_HISTORY_TABLE);
    const mac = new HmacMac(await loadTokenKey(context.dataDir));
    const lookup = (request: Record<string, unknown>): Promise<unknown> =>
      lookupEvents(request, { store, mac, now: Date.now });
    context.operation(LOOKUP_EVENTS_TARGET, lookup);
    context.endpoint('historyTable', LOCAL_HISTORY_TABLE);
    await context.consumer({
      name: 'indexer',
      invoke: createIndexerHandler({ store, metrics: context.metrics }),
      batchSize: 1000,
      batchWindowMs: 0,
      pollIntervalMs: INDEXER_POLL_MS,
    });
  },
};
