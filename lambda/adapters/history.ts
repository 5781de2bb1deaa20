import {
  BatchWriteCommand,
  type BatchWriteCommandOutput,
  PutCommand,
  QueryCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { ConsumedCapacity } from '@aws-sdk/client-dynamodb';
import { BATCH_RETRY_POLICY, BATCH_RETRY_TIMER, batchGetAll } from './dynamodb';
import { retryFailedItems } from '../core/retry';
import type { HistoryGroupItem, HistoryRecordItem, HistoryStore } from '../core/ports';
import { HISTORY_TABLE } from '../core/tables';
import { isConditionFailure } from './aws-errors';

/** Capacity units the store consumed (DynamoDB's ReturnConsumedCapacity TOTAL), for benches. */
export interface CapacityMeter {
  read: number;
  write: number;
}

const BATCH_WRITE_LIMIT = 25;
/** An index item's table key, to match an unprocessed copy to the item sent. */
const groupItemIdentity = (item: HistoryGroupItem | undefined): string =>
  `${item?.[HISTORY_TABLE.partitionKey]}\n${item?.[HISTORY_TABLE.sortKey]}`;

/**
 * The history table (core/tables.ts, HISTORY_TABLE). Group Queries are strongly consistent
 * (paging relies on every stored event being seen); Queries of the version-1 index, which
 * nothing writes any more, and record reads are eventually consistent, record reads retried
 * consistently for what they miss (a record is written before the group items listing it).
 */
export class DynamoHistoryStore implements HistoryStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly meter?: CapacityMeter,
  ) {}

  private get capacity(): { ReturnConsumedCapacity?: 'TOTAL' } {
    return this.meter ? { ReturnConsumedCapacity: 'TOTAL' } : {};
  }

  private count(
    kind: 'read' | 'write',
    consumed: ConsumedCapacity | ConsumedCapacity[] | undefined,
  ): void {
    if (!this.meter || !consumed) return;
    for (const c of Array.isArray(consumed) ? consumed : [consumed])
      this.meter[kind] += c.CapacityUnits ?? 0;
  }

  async putRecord(item: HistoryRecordItem): Promise<'created' | 'exists'> {
    try {
      const response = await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: item,
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': HISTORY_TABLE.partitionKey },
          ...this.capacity,
        }),
      );
      this.count('write', response.ConsumedCapacity);
      return 'created';
    } catch (error) {
      if (isConditionFailure(error)) return 'exists';
      throw error;
    }
  }

  /**
   * One BatchGetItem (keys only, eventually consistent) for the items already stored, then
   * BatchWriteItem in 25s for the others: two requests per 25-100 events instead of one
   * conditional PutItem each (docs/design.md#indexer). The write units are the same.
   */
  async putRecords(items: readonly HistoryRecordItem[]): Promise<('created' | 'exists')[]> {
    const identity = (item: { pk?: unknown; sk?: unknown } | undefined): string =>
      `${String(item?.pk)}\u0000${String(item?.sk)}`;
    const stored = new Set(
      (
        await batchGetAll(
          this.client,
          this.table,
          items.map((item) => ({
            [HISTORY_TABLE.partitionKey]: item.pk,
            [HISTORY_TABLE.sortKey]: item.sk,
          })),
          {
            consistent: false,
            ...(this.meter ? { returnConsumedCapacity: 'TOTAL' as const } : {}),
            onResponse: (response) => this.count('read', response.ConsumedCapacity),
          },
        )
      ).map(identity),
    );
    const missing = items.filter((item) => !stored.has(identity(item)));
    await this.batchPut(missing, identity, 'record');
    return items.map((item) => (stored.has(identity(item)) ? 'exists' : 'created'));
  }

  async putGroups(items: readonly HistoryGroupItem[]): Promise<void> {
    await this.batchPut(items, groupItemIdentity, 'group');
  }

  /** BatchWriteItem puts, 25 at a time, resending only what DynamoDB left unprocessed. */
  private async batchPut<T extends HistoryRecordItem | HistoryGroupItem>(
    items: readonly T[],
    identity: (item: T) => string,
    what: 'record' | 'group',
  ): Promise<void> {
    for (let i = 0; i < items.length; i += BATCH_WRITE_LIMIT) {
      const { unfinished, attempts } = await retryFailedItems(
        items.slice(i, i + BATCH_WRITE_LIMIT),
        async (chunk) => {
          const response: BatchWriteCommandOutput = await this.client.send(
            new BatchWriteCommand({
              RequestItems: { [this.table]: chunk.map((item) => ({ PutRequest: { Item: item } })) },
              ...this.capacity,
            }),
          );
          this.count('write', response.ConsumedCapacity);
          return (response.UnprocessedItems?.[this.table] ?? []).map(
            (request) => request.PutRequest?.Item as T,
          );
        },
        BATCH_RETRY_POLICY,
        BATCH_RETRY_TIMER,
        identity,
      );
      if (unfinished.length > 0)
        throw new Error(
          `history: ${unfinished.length} ${what} writes stayed unprocessed after ${attempts} BatchWriteItem calls`,
        );
    }
  }

  async queryGroups(query: {
    pk: string;
    lo: string;
    hi: string;
    limit: number;
    next?: unknown;
  }): Promise<{ items: HistoryGroupItem[]; next?: unknown }> {
    const response = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :lo AND :hi',
        ExpressionAttributeNames: {
          '#pk': HISTORY_TABLE.partitionKey,
          '#sk': HISTORY_TABLE.sortKey,
        },
        ExpressionAttributeValues: { ':pk': query.pk, ':lo': query.lo, ':hi': query.hi },
        ScanIndexForward: false,
        ConsistentRead: true,
        Limit: query.limit,
        ...(query.next !== undefined
          ? { ExclusiveStartKey: query.next as Record<string, unknown> }
          : {}),
        ...this.capacity,
      }),
    );
    this.count('read', response.ConsumedCapacity);
    return {
      items: (response.Items ?? []) as HistoryGroupItem[],
      ...(response.LastEvaluatedKey !== undefined ? { next: response.LastEvaluatedKey } : {}),
    };
  }

  async queryIndex(query: {
    pk: string;
    lo: string;
    hi: string;
    limit: number;
  }): Promise<{ sortKeys: string[]; more: boolean }> {
    const response = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :lo AND :hi',
        ExpressionAttributeNames: {
          '#pk': HISTORY_TABLE.partitionKey,
          '#sk': HISTORY_TABLE.sortKey,
        },
        ExpressionAttributeValues: { ':pk': query.pk, ':lo': query.lo, ':hi': query.hi },
        ProjectionExpression: '#sk',
        ScanIndexForward: false,
        ConsistentRead: false,
        Limit: query.limit,
        ...this.capacity,
      }),
    );
    this.count('read', response.ConsumedCapacity);
    return {
      sortKeys: (response.Items ?? []).map((item) => item[HISTORY_TABLE.sortKey] as string),
      more: response.LastEvaluatedKey !== undefined,
    };
  }

  async queryRecords(pk: string): Promise<HistoryRecordItem[]> {
    const items: HistoryRecordItem[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const response = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': HISTORY_TABLE.partitionKey },
          ExpressionAttributeValues: { ':pk': pk },
          ConsistentRead: true,
          ExclusiveStartKey: start,
          ...this.capacity,
        }),
      );
      this.count('read', response.ConsumedCapacity);
      items.push(...((response.Items ?? []) as HistoryRecordItem[]));
      start = response.LastEvaluatedKey;
    } while (start);
    return items;
  }

  async getRecords(keys: readonly { pk: string; sk: string }[]): Promise<HistoryRecordItem[]> {
    const found = await this.batchGet(keys, false);
    const seen = new Set(found.map((item) => `${item.pk}\u0000${item.sk}`));
    const missing = keys.filter((key) => !seen.has(`${key.pk}\u0000${key.sk}`));
    return missing.length === 0 ? found : [...found, ...(await this.batchGet(missing, true))];
  }

  private async batchGet(
    keys: readonly { pk: string; sk: string }[],
    consistent: boolean,
  ): Promise<HistoryRecordItem[]> {
    const items = await batchGetAll(
      this.client,
      this.table,
      keys.map((key) => ({
        [HISTORY_TABLE.partitionKey]: key.pk,
        [HISTORY_TABLE.sortKey]: key.sk,
      })),
      {
        consistent,
        ...(this.meter ? { returnConsumedCapacity: 'TOTAL' as const } : {}),
        onResponse: (response) => this.count('read', response.ConsumedCapacity),
      },
    );
    return items as unknown as HistoryRecordItem[];
  }
}
