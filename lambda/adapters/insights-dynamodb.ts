/**
 * The Insights table (core/insights-live.ts, INSIGHTS_TABLE) over DynamoDB: counters, detector
 * state and cursor in one table, told apart by partition (docs/design.md#insights):
 *
 * - `m#<minute>` / `o|<series hash>|<n>`: the on-time count of a series for minute M, and
 *   `m#<minute>` / `l|<minute>|<series hash>|<n>`: a late count delivered in that minute. One
 *   Query per judged minute reads both. `n` numbers overflow items (INSIGHTS_TABLE.maxFilesPerItem).
 *   Attributes: `k` series key (JSON), `mi` minute, `n` calls, `b` markers of the files
 *   counted (string set), `u|…`, `g|…`, `e|…` per-value counts of userIdentityArn, userAgent and
 *   errorCode, `x` TTL.
 * - `state` / `<series hash>`: one series' detector state, gzip JSON in `s`.
 * - `cursor` / `cursor`: the last minute judged (`j`) and when counting began (`since`).
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import {
  BatchWriteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import type { Attribute, AttributeCounts, MinuteCount, SeriesKey } from '../core/insights-counts';
import type { SeriesSnapshot } from '../core/insights-series';
import type { CountPlacement, InsightCountStore, InsightStateStore } from '../core/insights-live';
import { INSIGHTS_TABLE } from '../core/tables';
import { isConditionFailure } from './aws-errors';

const PK = INSIGHTS_TABLE.partitionKey;
const SK = INSIGHTS_TABLE.sortKey;
const TTL = INSIGHTS_TABLE.ttlAttribute;
/** Counters are read within minutes; two days leave room for an outage's catch-up. */
const COUNT_TTL_SECONDS = 2 * 86_400;
/** DynamoDB's item limit (dynalite does not enforce it). */
const ITEM_MAX_BYTES = 400 * 1024;
const BATCH_WRITE_LIMIT = 25;
/** Attribute-name prefixes of the per-value counts, one per attribution attribute. */
const PREFIX: Record<Attribute, string> = {
  userIdentityArn: 'u|',
  userAgent: 'g|',
  errorCode: 'e|',
};

const ATTRIBUTE_NAMES = Object.keys(PREFIX) as Attribute[];

function seriesHash(key: SeriesKey): string {
  const id = JSON.stringify([
    key.insightType,
    key.account,
    key.region,
    key.eventSource,
    key.eventName,
    key.errorCode ?? '',
  ]);
  return createHash('sha256').update(id).digest('base64url').slice(0, 22);
}

function minutePartition(minute: number): string {
  return `m#${minute}`;
}

/** Counters, written by the packager and read by the scheduled detector. */
export class DynamoInsightCountStore implements InsightCountStore {
  /** UpdateItem calls made (tests count writes per batch). */
  writes = 0;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async add(placement: CountPlacement, marker: string): Promise<'added' | 'counted'> {
    const { count, readAt, late } = placement;
    const base = late ? `l|${count.minute}|${seriesHash(count.key)}` : `o|${seriesHash(count.key)}`;
    const names: Record<string, string> = {
      '#n': 'n',
      '#b': 'b',
      '#k': 'k',
      '#mi': 'mi',
      '#x': TTL,
    };
    const values: Record<string, unknown> = {
      ':n': count.calls,
      ':b': new Set([marker]),
      ':m': marker,
      ':k': JSON.stringify(count.key),
      ':mi': count.minute,
      ':x': Math.floor(readAt * 60 + COUNT_TTL_SECONDS),
      ':max': INSIGHTS_TABLE.maxFilesPerItem,
    };
    const adds = ['#n :n', '#b :b'];
    let i = 0;
    for (const attribute of ATTRIBUTE_NAMES)
      for (const [value, n] of Object.entries(count.attributions[attribute])) {
        names[`#a${i}`] = `${PREFIX[attribute]}${value}`;
        values[`:a${i}`] = n;
        adds.push(`#a${i} :a${i}`);
        i += 1;
      }
    // Overflow items in order: a file's marker is in the first item that had room for it.
    for (let n = 0; ; n += 1) {
      const key = { [PK]: minutePartition(readAt), [SK]: `${base}|${n}` };
      try {
        this.writes += 1;
        await this.client.send(
          new UpdateCommand({
            TableName: this.table,
            Key: key,
            UpdateExpression: `ADD ${adds.join(', ')} SET #k = :k, #mi = :mi, #x = :x`,
            ConditionExpression:
              'attribute_not_exists(#b) OR (NOT contains(#b, :m) AND size(#b) < :max)',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          }),
        );
        return 'added';
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
      const existing = await this.client.send(
        new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }),
      );
      const markers = existing.Item?.b as Set<string> | undefined;
      if (markers?.has(marker)) return 'counted';
    }
  }

  async countsAt(minute: number): Promise<{ onTime: MinuteCount[]; late: MinuteCount[] }> {
    const onTime: MinuteCount[] = [];
    const late: MinuteCount[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page: QueryCommandOutput = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': PK },
          ExpressionAttributeValues: { ':pk': minutePartition(minute) },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        const attributions: AttributeCounts = { userIdentityArn: {}, userAgent: {}, errorCode: {} };
        for (const [name, value] of Object.entries(item))
          for (const attribute of ATTRIBUTE_NAMES)
            if (name.startsWith(PREFIX[attribute]))
              attributions[attribute][name.slice(PREFIX[attribute].length)] = Number(value);
        const count: MinuteCount = {
          key: JSON.parse(item.k as string) as SeriesKey,
          minute: Number(item.mi),
          calls: Number(item.n),
          attributions,
        };
        (String(item[SK]).startsWith('l|') ? late : onTime).push(count);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return { onTime, late };
  }
}

/** Detector state and cursor. */
export class DynamoInsightStateStore implements InsightStateStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async cursor(): Promise<{ judged: number; sinceMs: number } | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.table,
        Key: { [PK]: 'cursor', [SK]: 'cursor' },
        ConsistentRead: true,
      }),
    );
    return Item ? { judged: Number(Item.j), sinceMs: Number(Item.since) } : undefined;
  }

  async saveCursor(cursor: { judged: number; sinceMs: number }): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.table,
        Item: { [PK]: 'cursor', [SK]: 'cursor', j: cursor.judged, since: cursor.sinceMs },
      }),
    );
  }

  async series(): Promise<SeriesSnapshot[]> {
    const out: SeriesSnapshot[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page: QueryCommandOutput = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': PK },
          ExpressionAttributeValues: { ':pk': 'state' },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? [])
        out.push(JSON.parse(gunzipSync(item.s as Uint8Array).toString('utf8')) as SeriesSnapshot);
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async saveSeries(series: readonly SeriesSnapshot[]): Promise<void> {
    await this.write(
      series.map((snap) => {
        const body = gzipSync(JSON.stringify(snap));
        if (body.length + 200 > ITEM_MAX_BYTES)
          throw new Error(
            `Insights state of series ${snap.id} is ${body.length} bytes compressed; DynamoDB's item limit is ${ITEM_MAX_BYTES}`,
          );
        return { PutRequest: { Item: { [PK]: 'state', [SK]: seriesHash(snap.key), s: body } } };
      }),
    );
  }

  async deleteSeries(ids: readonly string[]): Promise<void> {
    await this.write(
      ids.map((id) => {
        const [insightType, account, region, eventSource, eventName, errorCode] = JSON.parse(
          id,
        ) as string[];
        const key = {
          account: account!,
          region: region!,
          eventSource: eventSource!,
          eventName: eventName!,
          insightType: insightType as SeriesKey['insightType'],
          ...(errorCode ? { errorCode } : {}),
        };
        return { DeleteRequest: { Key: { [PK]: 'state', [SK]: seriesHash(key) } } };
      }),
    );
  }

  private async write(requests: Record<string, unknown>[]): Promise<void> {
    for (let i = 0; i < requests.length; i += BATCH_WRITE_LIMIT) {
      let pending: Record<string, unknown>[] = requests.slice(i, i + BATCH_WRITE_LIMIT);
      for (let attempt = 0; pending.length > 0; attempt += 1) {
        if (attempt > 8)
          throw new Error(`Insights state: ${pending.length} writes stayed unprocessed`);
        if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** attempt)));
        const response = await this.client.send(
          new BatchWriteCommand({ RequestItems: { [this.table]: pending } }),
        );
        pending = response.UnprocessedItems?.[this.table] ?? [];
      }
    }
  }
}
