/**
 * The cost bench's price tables (docs/cost.md): the price ids its model uses, the dated table
 * it reads (bench/prices/us-east-1.json, or --prices FILE) and the checks that table must pass.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The price ids the model uses; a --prices file must give every one. */
export const PRICE_IDS = [
  'apiGateway.restRequest',
  'lambda.request',
  'lambda.arm64GbSecond',
  'kinesis.shardHour',
  'kinesis.putPayloadUnit',
  'kinesis.onDemandStreamHour',
  'kinesis.onDemandDataInGb',
  'kinesis.onDemandDataOutGb',
  'dynamodb.writeRequestUnit',
  'dynamodb.readRequestUnit',
  'dynamodb.storageGbMonth',
  's3.putRequest',
  's3.getRequest',
  's3.storageGbMonth',
  'kms.keyMonth',
  'kms.request',
  'eventBridge.customEvent',
  'cloudWatchLogs.ingestedGb',
  'cloudWatch.alarmMonth',
  'cloudTrail.additionalManagementEventCopy',
] as const;
export type PriceId = (typeof PRICE_IDS)[number];

export interface Price {
  /** Dollars per `per` units. */
  readonly usd: number;
  readonly per: number;
  readonly unit: string;
  readonly source: string;
  readonly verified: boolean;
}

export interface PriceTable {
  readonly region: string;
  readonly asOf: string;
  readonly prices: Readonly<Record<PriceId, Price>>;
}

export const DEFAULT_PRICES = join(__dirname, 'prices', 'us-east-1.json');

/** Reads and checks a price table; errors name the file, the field and the rule. */
export function loadPrices(path: string): PriceTable {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`--prices ${path}: not a readable JSON file (${(error as Error).message})`);
  }
  const fail = (field: string, rule: string): never => {
    throw new Error(`--prices ${path}: ${field} ${rule}`);
  };
  const table = raw as Record<string, unknown> | null;
  if (typeof table !== 'object' || table === null) return fail('the file', 'must be an object');
  if (typeof table.region !== 'string' || table.region === '')
    fail('region', 'must name the AWS region the prices are for, e.g. "us-east-1"');
  if (typeof table.asOf !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(table.asOf))
    fail('asOf', 'must be the date the prices were read, as YYYY-MM-DD');
  const prices = table.prices as Record<string, Record<string, unknown>> | undefined;
  if (typeof prices !== 'object' || prices === null) return fail('prices', 'must be an object');
  for (const id of PRICE_IDS) {
    const price = prices[id];
    if (typeof price !== 'object' || price === null)
      fail(`prices["${id}"]`, 'is missing (every price the model uses must be given)');
    if (typeof price!.usd !== 'number' || !Number.isFinite(price!.usd) || price!.usd < 0)
      fail(`prices["${id}"].usd`, 'must be a number ≥ 0 (dollars per `per` units)');
    if (typeof price!.per !== 'number' || !(price!.per > 0))
      fail(`prices["${id}"].per`, 'must be a number > 0 (how many units `usd` buys)');
  }
  return raw as PriceTable;
}

/** Dollars per unit of one price. */
export function perUnit(prices: PriceTable, id: PriceId): number {
  const price = prices.prices[id];
  return price.usd / price.per;
}
