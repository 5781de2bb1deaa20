import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type {
  DedupClaim,
  DedupItem,
  DedupStore,
  ManifestEntry,
  ManifestRow,
  ManifestStore,
} from '../core/ports';
import { retryFailedItems, type RetryPolicy, type RetryTimer } from '../core/retry';
import { DEDUP_TABLE, MANIFEST_TABLE } from '../core/tables';
import { isConditionFailure } from './aws-errors';

const BATCH_GET_LIMIT = 100;

export function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/**
 * Unprocessed-item retries of BatchGetItem and BatchWriteItem: 8 calls per
 * chunk at most, 50 ms doubling to 1 s, with jitter; then the caller's batch fails and is
 * retried whole.
 */
export const BATCH_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 8,
  baseDelayMs: 50,
  maxDelayMs: 1000,
};

export const BATCH_RETRY_TIMER: RetryTimer = {
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * Identity of a key or item for matching DynamoDB's unprocessed copies to the caller's own:
 * its attributes in name order.
 */
export function attributesIdentity(item: Record<string, unknown>): string {
  return JSON.stringify(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * BatchGetItem in chunks of 100, retrying unprocessed keys (core/retry.ts) under
 * BATCH_RETRY_POLICY; keys still unprocessed then throw, and the caller's batch is retried.
 */
export async function batchGetAll(
  client: DynamoDBDocumentClient,
  table: string,
  keys: readonly Record<string, unknown>[],
  options: {
    readonly consistent: boolean;
    readonly returnConsumedCapacity?: 'TOTAL';
    readonly onResponse?: (response: BatchGetCommandOutput) => void;
  },
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < keys.length; i += BATCH_GET_LIMIT) {
    const { unfinished, attempts } = await retryFailedItems(
      keys.slice(i, i + BATCH_GET_LIMIT),
      async (request) => {
        const response: BatchGetCommandOutput = await client.send(
          new BatchGetCommand({
            RequestItems: { [table]: { Keys: [...request], ConsistentRead: options.consistent } },
            ...(options.returnConsumedCapacity
              ? { ReturnConsumedCapacity: options.returnConsumedCapacity }
              : {}),
          }),
        );
        options.onResponse?.(response);
        items.push(...((response.Responses?.[table] ?? []) as Record<string, unknown>[]));
        return response.UnprocessedKeys?.[table]?.Keys ?? [];
      },
      BATCH_RETRY_POLICY,
      BATCH_RETRY_TIMER,
      attributesIdentity,
    );
    if (unfinished.length > 0) {
      throw new Error(
        `${table}: ${unfinished.length} keys still unprocessed after ${attempts} BatchGetItem rounds`,
      );
    }
  }
  return items;
}

function batchGet(
  client: DynamoDBDocumentClient,
  table: string,
  keys: Record<string, string>[],
): Promise<Record<string, unknown>[]> {
  return batchGetAll(client, table, keys, { consistent: true });
}

/** The delivery manifest table (see core/tables.ts). */
export class DynamoManifestStore implements ManifestStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async reserve(entry: ManifestEntry): Promise<void> {
    const pk = `${entry.bucket}/${entry.key}`;
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            [MANIFEST_TABLE.partitionKey]: pk,
            ...entry,
            state: 'pending',
            [MANIFEST_TABLE.indexPartitionKey]: `${entry.trail}#${entry.account}#${entry.region}`,
          },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': MANIFEST_TABLE.partitionKey },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const existing = await this.client.send(
        new GetCommand({
          TableName: this.table,
          Key: { [MANIFEST_TABLE.partitionKey]: pk },
          ConsistentRead: true,
        }),
      );
      if (existing.Item?.sha256 !== entry.sha256) {
        throw new Error(
          `manifest row for s3://${pk} records SHA-256 ${String(existing.Item?.sha256)}, not ${entry.sha256}: a key never gets two contents`,
        );
      }
    }
  }

  async markDelivered(bucket: string, key: string, deliveredAt: string): Promise<void> {
    // if_not_exists keeps the first delivery time: a retry never moves a file to a later digest.
    await this.client.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { [MANIFEST_TABLE.partitionKey]: `${bucket}/${key}` },
        UpdateExpression: 'SET #state = :delivered, #at = if_not_exists(#at, :at)',
        ConditionExpression: 'attribute_exists(#pk)',
        ExpressionAttributeNames: {
          '#state': 'state',
          '#at': MANIFEST_TABLE.indexSortKey,
          '#pk': MANIFEST_TABLE.partitionKey,
        },
        ExpressionAttributeValues: { ':delivered': 'delivered', ':at': deliveredAt },
      }),
    );
  }

  async getMany(objects: readonly { bucket: string; key: string }[]): Promise<ManifestRow[]> {
    const unique = [...new Set(objects.map((o) => `${o.bucket}/${o.key}`))];
    const items = await batchGet(
      this.client,
      this.table,
      unique.map((pk) => ({ [MANIFEST_TABLE.partitionKey]: pk })),
    );
    return items.map((item) => {
      const {
        [MANIFEST_TABLE.partitionKey]: _pk,
        [MANIFEST_TABLE.indexPartitionKey]: _stream,
        ...row
      } = item;
      return row as unknown as ManifestRow;
    });
  }
}

/** A claim as stored: short attribute names (core/tables.ts, DEDUP_TABLE). */
interface StoredClaim {
  readonly h: string;
  readonly r: string;
  readonly s: string;
  readonly b: string;
  readonly t: number;
  readonly k: string;
}

function toStored(claim: DedupClaim): StoredClaim {
  return {
    h: claim.hash,
    r: claim.trail,
    s: claim.record,
    b: claim.batch,
    t: claim.arrivalMs,
    k: claim.key,
  };
}

/**
 * A stored claim in the domain's names. Claims written before dedup went per trail (no `r`,
 * `k` a list) are left out: they name no trail, so they cannot decide for one.
 */
function fromStored(value: unknown): DedupClaim[] {
  const claim = value as Partial<StoredClaim>;
  if (typeof claim.r !== 'string' || typeof claim.s !== 'string' || typeof claim.k !== 'string')
    return [];
  return [
    {
      hash: String(claim.h),
      trail: claim.r,
      record: claim.s,
      batch: String(claim.b),
      arrivalMs: Number(claim.t),
      key: claim.k,
    },
  ];
}

/** The dedup claims table (see core/tables.ts). */
export class DynamoDedupStore implements DedupStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async getMany(eventIds: readonly string[]): Promise<Map<string, DedupItem>> {
    const items = await batchGet(
      this.client,
      this.table,
      [...new Set(eventIds)].map((id) => ({ [DEDUP_TABLE.partitionKey]: id })),
    );
    return new Map(
      items.map((item) => [
        item[DEDUP_TABLE.partitionKey] as string,
        {
          eventId: item[DEDUP_TABLE.partitionKey] as string,
          claims: ((item.claims as unknown[] | undefined) ?? []).flatMap(fromStored),
          ver: item.ver as number,
        },
      ]),
    );
  }

  async put(item: DedupItem, expectedVer: number, expiresAtEpochSeconds: number): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            [DEDUP_TABLE.partitionKey]: item.eventId,
            claims: item.claims.map(toStored),
            ver: expectedVer + 1,
            [DEDUP_TABLE.ttlAttribute]: expiresAtEpochSeconds,
          },
          ...(expectedVer === 0
            ? {
                ConditionExpression: 'attribute_not_exists(#pk)',
                ExpressionAttributeNames: { '#pk': DEDUP_TABLE.partitionKey },
              }
            : {
                ConditionExpression: '#ver = :ver',
                ExpressionAttributeNames: { '#ver': 'ver' },
                ExpressionAttributeValues: { ':ver': expectedVer },
              }),
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }
}
