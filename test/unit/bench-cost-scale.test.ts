import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { priceUnits, type CountedUnits } from '../../bench/cost-model';
import { DEFAULT_PRICES, loadPrices, PRICE_IDS } from '../../bench/cost-prices';
import { normaliseAll, realRecords, syntheticRecordTexts } from '../../bench/lib';
import { simulateSecond } from '../../bench/scale';

const dir = mkdtempSync(join(tmpdir(), 'opentrail-prices-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A price table as JSON: the shape a user edits. */
interface TableJson {
  asOf?: string;
  prices: Record<string, { usd: number }>;
}

/** The shipped table with one change, written to a file as a user's --prices would be. */
function pricesFile(change: (table: TableJson) => void): string {
  const table = JSON.parse(readFileSync(DEFAULT_PRICES, 'utf8')) as TableJson;
  change(table);
  const path = join(dir, `prices-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(table));
  return path;
}

/** A million events as the bench counts them, in round numbers. */
const UNITS: CountedUnits = {
  events: 1_000_000,
  apiRequests: 10_000,
  kinesisBilledBytesIn: 2048 * 1_000_000,
  kinesisBytes: 1400 * 1_000_000,
  kinesisPutPayloadUnits: 1_000_000,
  invocations: { ingest: 10_000, packager: 1_000, indexer: 2_000, publisher: 10_000 },
  dynamodb: { dedup: { write: 1_000_000, read: 0, failedWrites: 0 } },
  s3Puts: 1_000,
  s3Gets: 0,
  s3StoredBytes: 150 * 1_000_000,
  eventBridgeEntries: 1_000_000,
  eventBridgeCalls: 100_000,
};

describe('the cost price table', () => {
  it('ships dated us-east-1 prices with a source for every price the model uses', () => {
    const table = loadPrices(DEFAULT_PRICES);

    expect(table.region).toBe('us-east-1');
    expect(table.asOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    for (const id of PRICE_IDS) expect(table.prices[id].source).toMatch(/^https:\/\//);
    // The on-demand write price after the November 2024 cut, and CloudTrail's extra copy.
    expect(table.prices['dynamodb.writeRequestUnit'].usd).toBe(0.625);
    expect(table.prices['cloudTrail.additionalManagementEventCopy']).toMatchObject({
      usd: 2,
      per: 100_000,
    });
  });

  it.each([
    [
      'a missing price',
      (t: TableJson) => delete t.prices['dynamodb.writeRequestUnit'],
      'prices["dynamodb.writeRequestUnit"] is missing',
    ],
    [
      'a negative price',
      (t: TableJson) => (t.prices['s3.putRequest']!.usd = -1),
      'prices["s3.putRequest"].usd must be a number ≥ 0',
    ],
    [
      'no date',
      (t: TableJson) => delete t.asOf,
      'asOf must be the date the prices were read, as YYYY-MM-DD',
    ],
  ])('refuses a --prices file with %s, naming the field and the rule', (_, change, message) => {
    const path = pricesFile(change);

    expect(() => loadPrices(path)).toThrow(`--prices ${path}: ${message}`);
  });
});

describe('priceUnits', () => {
  it('prices each component per million events and keeps fan-out lines out of the base total', () => {
    const report = priceUnits(UNITS, loadPrices(DEFAULT_PRICES));
    const line = (name: string) => report.lines.find((l) => l.component === name)!;

    expect(line('API Gateway REST requests').usdPerMillion).toBeCloseTo(0.035, 6);
    expect(line('DynamoDB dedup writes').usdPerMillion).toBeCloseTo(0.625, 6);
    expect(line('S3 PUT requests').usdPerMillion).toBeCloseTo(0.005, 6);
    expect(line('Kinesis on-demand data in (1 KB rounding)').usdPerMillion).toBeCloseTo(
      (2048 * 1e6 * 0.08) / 1024 ** 3,
      6,
    );
    expect(line('EventBridge custom events (64 KB chunks)')).toMatchObject({
      fanoutOnly: true,
      usdPerMillion: 1,
    });
    expect(line('Lambda packager duration (arm64)').basis).toBe('MODELLED');
    expect(report.withFanout - report.withoutFanout).toBeCloseTo(
      report.lines.filter((l) => l.fanoutOnly).reduce((s, l) => s + l.usdPerMillion, 0),
      9,
    );
    expect(report.cloudTrailPerMillion).toBe(20);
  });

  it('follows a user price table: doubling the write price doubles the DynamoDB line', () => {
    const path = pricesFile((t) => (t.prices['dynamodb.writeRequestUnit']!.usd = 1.25));

    const report = priceUnits(UNITS, loadPrices(path));

    expect(report.lines.find((l) => l.component === 'DynamoDB dedup writes')!.usdPerMillion).toBe(
      1.25,
    );
  });
});

describe('simulateSecond (bench area scale)', () => {
  const texts = normaliseAll(syntheticRecordTexts(realRecords(), 2_000, 'scale-test')).map(
    (r) => r.text,
  );

  it("writes every event once and groups a batch's events of one key value into few items", () => {
    const loads = simulateSecond(texts);
    const management = texts.filter((t) => JSON.parse(t).eventCategory === 'Management').length;

    const hottest = loads.history.hottest();

    // Every event's record item is written (at least one unit each), plus the group items.
    expect(loads.history.total).toBeGreaterThan(texts.length);
    // The hottest key (a value every write shares, such as ReadOnly=false) gets one group item
    // per indexer batch and minute, listing its events: far fewer units than events.
    expect(hottest.units).toBeGreaterThan(0);
    expect(hottest.units).toBeLessThan(management / 4);
  });

  it('writes one dedup claim per new eventID, so no dedup key is hotter than 1 unit', () => {
    const loads = simulateSecond(texts);

    expect(loads.dedup.hottest().units).toBe(1);
    expect(loads.dedup.total).toBe(texts.length);
  });
});
