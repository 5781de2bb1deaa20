/**
 * Bench area `cost`: dollars per million accepted events, split by component, without and with
 * fan-out, from units this run counts and a dated price table (docs/cost.md).
 *
 * Counted here, per accepted event, by running the code a deployment runs:
 * - API Gateway requests and ingest invocations: the request bodies `opentrail put-events`
 *   builds (100 entries each), through putAuditEvents into an in-memory stream, which also
 *   counts the Kinesis records and their bytes (data + partition key).
 * - The packager (batches of 1,000 from one shard: a busy shard fills every batch), the
 *   indexer (500) and the publisher (100) on those records: packageBatch and indexBatch over
 *   the real DynamoDB and S3 adapters on dynalite and s3rver, whose every DynamoDB call asks
 *   for ReturnConsumedCapacity TOTAL (dynalite computes it as DynamoDB does; a failed
 *   conditional write is billed as one unit), and every S3 call is counted with its bytes;
 *   publishBatch into a bus that counts entries, 64 KB chunks and PutEvents calls.
 * MODELLED (no emulator can count them): Lambda GB-seconds, KMS requests and CloudWatch Logs
 * bytes, from the assumptions named below; the output says which lines they are.
 */
import './quiet'; // before anything that loads a Lambda handler module
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { documentClient, DynamoDedupStore, DynamoManifestStore } from '../lambda/adapters/dynamodb';
import { DynamoDigestChainStore } from '../lambda/adapters/dynamodb-digests';
import { DynamoHistoryStore } from '../lambda/adapters/history';
import { S3ObjectStore } from '../lambda/adapters/s3';
import { DEFAULT_DEDUP_WINDOW_SECONDS, DEFAULT_TRAIL } from '../lambda/core/config';
import type { FanoutEvent } from '../lambda/core/fanout';
import { indexBatch } from '../lambda/core/history';
import { putAuditEvents } from '../lambda/core/ingest';
import { packageBatch } from '../lambda/core/packager';
import { publishBatch } from '../lambda/core/publisher';
import { DIGEST_CHAIN_TABLE, ensureChainTable } from '../local/components/digest';
import { ensureHistoryTable } from '../local/components/history';
import { LOCAL_DEFAULTS } from '../local/runtime';
import { MemoryMetrics, MemoryRecordStream } from '../test/fixtures/memory-ports';
import { clientsFor, destroyClients } from '../test/support/emulator-clients';
import {
  freshRuntime,
  realRecords,
  requestBodies,
  sleep,
  streamBatches,
  syntheticRecordTexts,
  type BenchFigure,
} from './lib';
import { BENCH_CALLER } from './ingest';
import { REQUEST_ENTRIES } from './settings';

// ---------------------------------------------------------------------------------------------
// Prices

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

function perUnit(prices: PriceTable, id: PriceId): number {
  const price = prices.prices[id];
  return price.usd / price.per;
}

// ---------------------------------------------------------------------------------------------
// The model

/**
 * Lambda settings of the deployed functions (lib/: ingest 512 MB, packager 1,024 MB, indexer
 * and publisher 512 MB, all arm64) and the batch sizes of their event-source mappings.
 */
export const FUNCTIONS = {
  ingest: { memoryGb: 0.5, batchSize: 1 },
  packager: { memoryGb: 1, batchSize: 1_000 },
  indexer: { memoryGb: 0.5, batchSize: 500 },
  publisher: { memoryGb: 0.5, batchSize: 100 },
} as const;

/**
 * MODELLED billed duration per invocation, ms: a fixed part (SDK round trips: one PutRecords
 * for ingest; dedup reads, claims, manifest rows and the S3 PUT for the packager; the writes of
 * the indexer; PutEvents calls of the publisher) plus a CPU part per record. Assumptions, not
 * measurements: this machine cannot run Lambda. Change them here and docs/cost.md together.
 */
export const MODELLED_MS = {
  ingest: { perInvocation: 30, perRecord: 0.1 },
  packager: { perInvocation: 400, perRecord: 1 },
  indexer: { perInvocation: 200, perRecord: 1.5 },
  publisher: { perInvocation: 150, perRecord: 0.5 },
} as const;

/** MODELLED CloudWatch Logs bytes: START/END/REPORT plus one summary line per invocation. */
export const LOG_BYTES_PER_INVOCATION = 700;
/** MODELLED API Gateway access-log line per request. */
export const ACCESS_LOG_BYTES_PER_REQUEST = 500;
/**
 * Fixed resources of the default stack, from its synthesized template (the masked snapshot in
 * test/constructs/__snapshots__/opentrail-stack.test.ts.snap): customer managed keys, alarms.
 */
export const DEFAULT_STACK = { kmsKeys: 8, alarms: 11, fanoutAlarms: 3 } as const;
const HOURS_PER_MONTH = 730;
const GB = 1024 ** 3;
const KB = 1024;
const PUT_PAYLOAD_UNIT_BYTES = 25 * KB;
const EVENTBRIDGE_CHUNK_BYTES = 64 * KB;

/** What one run counted, per accepted event (all fields are per event unless named). */
export interface CountedUnits {
  readonly events: number;
  readonly apiRequests: number;
  /** Kinesis data in, each record rounded up to 1 KB (on-demand billing). */
  readonly kinesisBilledBytesIn: number;
  /** Kinesis bytes of the records as stored (what each consumer reads). */
  readonly kinesisBytes: number;
  readonly kinesisPutPayloadUnits: number;
  readonly invocations: { ingest: number; packager: number; indexer: number; publisher: number };
  /** Write and read units per table (`packager` tables: dedup, manifest, digest registry). */
  readonly dynamodb: Readonly<
    Record<string, { write: number; read: number; failedWrites: number }>
  >;
  readonly s3Puts: number;
  readonly s3Gets: number;
  readonly s3StoredBytes: number;
  readonly eventBridgeEntries: number;
  readonly eventBridgeCalls: number;
}

export interface CostLine {
  readonly component: string;
  readonly basis: 'measured' | 'MODELLED';
  /** Units per event, in the unit named. */
  readonly unitsPerEvent: number;
  readonly unit: string;
  readonly usdPerMillion: number;
  readonly fanoutOnly: boolean;
}

export interface CostReport {
  readonly lines: readonly CostLine[];
  readonly withoutFanout: number;
  readonly withFanout: number;
  /** Recurring per month kept, per million events stored (S3 log files, 90 days of history). */
  readonly storage: readonly CostLine[];
  readonly fixedMonthly: readonly { item: string; usd: number }[];
  readonly cloudTrailPerMillion: number;
}

/** Dollars per million events from counted units and a price table. Pure. */
export function priceUnits(units: CountedUnits, prices: PriceTable): CostReport {
  const n = units.events;
  const per = (value: number): number => value / n;
  const lines: CostLine[] = [];
  const line = (
    component: string,
    basis: CostLine['basis'],
    unitsPerEvent: number,
    unit: string,
    price: number,
    fanoutOnly = false,
  ): void => {
    lines.push({
      component,
      basis,
      unitsPerEvent,
      unit,
      usdPerMillion: unitsPerEvent * price * 1e6,
      fanoutOnly,
    });
  };
  line(
    'API Gateway REST requests',
    'measured',
    per(units.apiRequests),
    'requests',
    perUnit(prices, 'apiGateway.restRequest'),
  );
  const consumers = ['packager', 'indexer'] as const;
  for (const name of ['ingest', ...consumers, 'publisher'] as const) {
    const invocations = per(units.invocations[name]);
    const fanoutOnly = name === 'publisher';
    line(
      `Lambda ${name} invocations`,
      'measured',
      invocations,
      'invocations',
      perUnit(prices, 'lambda.request'),
      fanoutOnly,
    );
    const ms = MODELLED_MS[name];
    const recordsPerInvocation = invocations > 0 ? 1 / invocations : 0;
    const gbSeconds =
      invocations *
      FUNCTIONS[name].memoryGb *
      ((ms.perInvocation + ms.perRecord * recordsPerInvocation) / 1000);
    line(
      `Lambda ${name} duration (arm64)`,
      'MODELLED',
      gbSeconds,
      'GB-s',
      perUnit(prices, 'lambda.arm64GbSecond'),
      fanoutOnly,
    );
  }
  line(
    'Kinesis on-demand data in (1 KB rounding)',
    'measured',
    per(units.kinesisBilledBytesIn) / GB,
    'GB',
    perUnit(prices, 'kinesis.onDemandDataInGb'),
  );
  for (const consumer of [...consumers, 'publisher'] as const)
    line(
      `Kinesis on-demand data out (${consumer})`,
      'measured',
      per(units.kinesisBytes) / GB,
      'GB',
      perUnit(prices, 'kinesis.onDemandDataOutGb'),
      consumer === 'publisher',
    );
  for (const [table, used] of Object.entries(units.dynamodb)) {
    line(
      `DynamoDB ${table} writes`,
      'measured',
      per(used.write),
      'WRU',
      perUnit(prices, 'dynamodb.writeRequestUnit'),
    );
    line(
      `DynamoDB ${table} reads`,
      'measured',
      per(used.read),
      'RRU',
      perUnit(prices, 'dynamodb.readRequestUnit'),
    );
  }
  line(
    'S3 PUT requests',
    'measured',
    per(units.s3Puts),
    'requests',
    perUnit(prices, 's3.putRequest'),
  );
  line(
    'S3 GET requests',
    'measured',
    per(units.s3Gets),
    'requests',
    perUnit(prices, 's3.getRequest'),
  );
  // S3 Bucket Keys and the data-key caches of DynamoDB and Kinesis make KMS requests a matter
  // of time, not of events: they are in the fixed costs (one Sign per digest, hourly).
  line('KMS requests', 'MODELLED', 0, 'requests', perUnit(prices, 'kms.request'));
  const invocations = (names: readonly (keyof CountedUnits['invocations'])[]): number =>
    names.reduce((sum, name) => sum + per(units.invocations[name]), 0);
  line(
    'CloudWatch Logs (function logs, access logs)',
    'MODELLED',
    (invocations(['ingest', ...consumers]) * LOG_BYTES_PER_INVOCATION +
      per(units.apiRequests) * ACCESS_LOG_BYTES_PER_REQUEST) /
      GB,
    'GB',
    perUnit(prices, 'cloudWatchLogs.ingestedGb'),
  );
  line(
    'CloudWatch Logs (publisher function logs)',
    'MODELLED',
    (invocations(['publisher']) * LOG_BYTES_PER_INVOCATION) / GB,
    'GB',
    perUnit(prices, 'cloudWatchLogs.ingestedGb'),
    true,
  );
  line(
    'EventBridge custom events (64 KB chunks)',
    'measured',
    per(units.eventBridgeEntries),
    'events',
    perUnit(prices, 'eventBridge.customEvent'),
    true,
  );

  const sum = (ls: readonly CostLine[]): number => ls.reduce((s, l) => s + l.usdPerMillion, 0);
  const storage: CostLine[] = [
    {
      component: 'S3 log files and digests, per month kept',
      basis: 'measured',
      unitsPerEvent: per(units.s3StoredBytes) / GB,
      unit: 'GB-month',
      usdPerMillion: (per(units.s3StoredBytes) / GB) * perUnit(prices, 's3.storageGbMonth') * 1e6,
      fanoutOnly: false,
    },
  ];
  const hourly = (id: PriceId, count: number): number =>
    count * HOURS_PER_MONTH * perUnit(prices, id);
  const fixedMonthly = [
    {
      item: 'Kinesis on-demand stream-hours (1 stream)',
      usd: hourly('kinesis.onDemandStreamHour', 1),
    },
    {
      item: `KMS customer managed keys (${DEFAULT_STACK.kmsKeys})`,
      usd: DEFAULT_STACK.kmsKeys * perUnit(prices, 'kms.keyMonth'),
    },
    {
      item: `CloudWatch alarms (${DEFAULT_STACK.alarms}, ${DEFAULT_STACK.fanoutAlarms} of them fan-out's)`,
      usd: DEFAULT_STACK.alarms * perUnit(prices, 'cloudWatch.alarmMonth'),
    },
    {
      item: 'digest signer per (trail, account, region): hourly run, digest PUT and Sign',
      usd:
        HOURS_PER_MONTH *
        (perUnit(prices, 'lambda.request') +
          perUnit(prices, 's3.putRequest') +
          perUnit(prices, 'kms.request')),
    },
  ];
  const base = lines.filter((l) => !l.fanoutOnly);
  return {
    lines,
    withoutFanout: sum(base),
    withFanout: sum(lines),
    storage,
    fixedMonthly,
    cloudTrailPerMillion: perUnit(prices, 'cloudTrail.additionalManagementEventCopy') * 1e6,
  };
}

/** The provisioned alternative: PUT payload units per event and the shard-hour price. */
export function provisionedKinesis(
  units: CountedUnits,
  prices: PriceTable,
): { usdPerMillion: number; usdPerShardMonth: number } {
  return {
    usdPerMillion:
      (units.kinesisPutPayloadUnits / units.events) *
      perUnit(prices, 'kinesis.putPayloadUnit') *
      1e6,
    usdPerShardMonth: HOURS_PER_MONTH * perUnit(prices, 'kinesis.shardHour'),
  };
}

// ---------------------------------------------------------------------------------------------
// Counting

interface DynamoMeter {
  readonly tables: Map<string, { write: number; read: number; failedWrites: number }>;
}

const WRITE_COMMANDS = new Set([
  'PutItemCommand',
  'UpdateItemCommand',
  'DeleteItemCommand',
  'BatchWriteItemCommand',
  'TransactWriteItemsCommand',
]);
const READ_COMMANDS = new Set([
  'GetItemCommand',
  'BatchGetItemCommand',
  'QueryCommand',
  'ScanCommand',
  'TransactGetItemsCommand',
]);

interface Consumed {
  TableName?: string;
  CapacityUnits?: number;
  WriteCapacityUnits?: number;
  ReadCapacityUnits?: number;
}

/** Asks every DynamoDB call for its consumed capacity and adds it up per table. */
function meterDynamo(client: DynamoDBClient, meter: DynamoMeter): void {
  const entry = (table: string): { write: number; read: number; failedWrites: number } => {
    let e = meter.tables.get(table);
    if (!e) meter.tables.set(table, (e = { write: 0, read: 0, failedWrites: 0 }));
    return e;
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      const input = args.input as { ReturnConsumedCapacity?: string; TableName?: string };
      const write = WRITE_COMMANDS.has(command);
      if (write || READ_COMMANDS.has(command)) input.ReturnConsumedCapacity = 'TOTAL';
      try {
        const result = await next(args);
        const output = result.output as { ConsumedCapacity?: Consumed | Consumed[] };
        const consumed = output.ConsumedCapacity;
        for (const c of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
          const units =
            c.CapacityUnits ?? (write ? c.WriteCapacityUnits : c.ReadCapacityUnits) ?? 0;
          const e = entry(c.TableName ?? input.TableName ?? '?');
          if (write) e.write += units;
          else e.read += units;
        }
        return result;
      } catch (error) {
        // DynamoDB bills a failed conditional write (at least one unit); its error has no count.
        if (write && (error as Error).name === 'ConditionalCheckFailedException') {
          const e = entry(input.TableName ?? '?');
          e.write += 1;
          e.failedWrites += 1;
        }
        throw error;
      }
    },
    { step: 'initialize', name: 'opentrailCostMeter' },
  );
}

interface S3Meter {
  puts: number;
  gets: number;
  storedBytes: number;
}

/** Counts S3 requests by price class, and the bytes PUT. */
function meterS3(client: S3Client, meter: S3Meter): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      if (/^(Put|Copy|List|CreateMultipart|UploadPart|CompleteMultipart)/.test(command)) {
        meter.puts++;
        const body = (args.input as { Body?: unknown }).Body;
        if (body instanceof Uint8Array) meter.storedBytes += body.byteLength;
        else if (typeof body === 'string') meter.storedBytes += Buffer.byteLength(body);
      } else meter.gets++;
      return next(args);
    },
    { step: 'initialize', name: 'opentrailCostMeter' },
  );
}

const HISTORY_TABLE_NAME = 'opentrail-cost-history';

/** Runs `events` real-size events through every consumer and counts what they used. */
export async function countUnits(
  events: number,
  log: (line: string) => void,
): Promise<CountedUnits> {
  const texts = syntheticRecordTexts(realRecords(), events, 'cost');
  const bodies = requestBodies(texts, REQUEST_ENTRIES);
  const stream = new MemoryRecordStream();
  let accepted = 0;
  for (const body of bodies) {
    const result = await putAuditEvents(body, BENCH_CALLER, {
      stream,
      accountId: LOCAL_DEFAULTS.accountId,
      checkRecipients: false,
      now: Date.now,
      newEventId: randomUUID,
      sleep,
    });
    if (result.failed.length > 0) throw new Error(`ingest refused ${result.failed.length} entries`);
    accepted += JSON.parse(body).auditEvents.length as number;
  }
  let billedIn = 0;
  let bytes = 0;
  let payloadUnits = 0;
  for (const record of stream.delivered) {
    const size = Buffer.byteLength(record.text) + Buffer.byteLength(record.partitionKey);
    billedIn += Math.ceil(size / KB) * KB;
    bytes += size;
    payloadUnits += Math.ceil(size / PUT_PAYLOAD_UNIT_BYTES);
  }
  log(`ingest: ${bodies.length} requests, ${stream.delivered.length} stream records`);

  const runtime = await freshRuntime({ flushSeconds: 60, components: [] });
  const clients = clientsFor(runtime.endpoints);
  const dynamo: DynamoMeter = { tables: new Map() };
  const s3: S3Meter = { puts: 0, gets: 0, storedBytes: 0 };
  try {
    await ensureChainTable(clients.dynamodb);
    await ensureHistoryTable(clients.dynamodb, HISTORY_TABLE_NAME);
    meterDynamo(clients.dynamodb, dynamo);
    meterS3(clients.s3, s3);
    const documents = documentClient(clients.dynamodb);
    const stored = stream.delivered.map(({ text }) => ({
      text,
      eventID: (JSON.parse(text) as { eventID: string }).eventID,
    }));
    const batches = (size: number) =>
      // The stream's records as ingest stored them (stamped: normalising them again refuses them).
      streamBatches(stored, {
        batchSize: size,
        shards: 1,
        arrivalMs: Date.now(),
      }).flat();

    const packagerBatches = batches(FUNCTIONS.packager.batchSize);
    // One set of adapters, as one warm Lambda container keeps them (the digest registry
    // remembers the streams it has told).
    const packagerDeps = {
      trails: [DEFAULT_TRAIL],
      bucket: runtime.endpoints.bucket,
      objects: new S3ObjectStore(clients.s3),
      manifest: new DynamoManifestStore(documents, runtime.endpoints.manifestTable),
      dedup: new DynamoDedupStore(documents, runtime.endpoints.dedupTable),
      streams: new DynamoDigestChainStore(documents, DIGEST_CHAIN_TABLE),
      metrics: new MemoryMetrics(),
      dedupWindowMs: DEFAULT_DEDUP_WINDOW_SECONDS * 1000,
      now: Date.now,
    };
    for (const batch of packagerBatches) {
      const result = await packageBatch(batch, packagerDeps);
      const filed = result.files.reduce((sum, f) => sum + f.records, 0);
      if (filed !== batch.records.length)
        throw new Error(`packager filed ${filed} of ${batch.records.length} records`);
    }
    log(`packager: ${packagerBatches.length} batches`);

    const history = new DynamoHistoryStore(documents, HISTORY_TABLE_NAME);
    const indexerBatches = batches(FUNCTIONS.indexer.batchSize);
    for (const batch of indexerBatches) await indexBatch(batch.records, history);
    log(`indexer: ${indexerBatches.length} batches`);

    let entries = 0;
    let calls = 0;
    const bus = {
      putEvents: async (events: readonly FanoutEvent[]) => {
        calls++;
        for (const event of events) entries += Math.ceil(event.sizeBytes / EVENTBRIDGE_CHUNK_BYTES);
        return events.map(() => ({ ok: true as const }));
      },
    };
    const publisherBatches = batches(FUNCTIONS.publisher.batchSize);
    for (const batch of publisherBatches)
      await publishBatch(batch.records, { bus, metrics: new MemoryMetrics(), now: Date.now });
    log(`publisher: ${publisherBatches.length} batches, ${calls} PutEvents calls`);

    const tableNames: Record<string, string> = {
      [runtime.endpoints.dedupTable]: 'dedup',
      [runtime.endpoints.manifestTable]: 'manifest',
      [DIGEST_CHAIN_TABLE]: 'digest registry',
      [HISTORY_TABLE_NAME]: 'history',
    };
    return {
      events: accepted,
      apiRequests: bodies.length,
      kinesisBilledBytesIn: billedIn,
      kinesisBytes: bytes,
      kinesisPutPayloadUnits: payloadUnits,
      invocations: {
        ingest: bodies.length,
        packager: packagerBatches.length,
        indexer: indexerBatches.length,
        publisher: publisherBatches.length,
      },
      dynamodb: Object.fromEntries(
        [...dynamo.tables].map(([table, used]) => [tableNames[table] ?? table, used]),
      ),
      s3Puts: s3.puts,
      s3Gets: s3.gets,
      s3StoredBytes: s3.storedBytes,
      eventBridgeEntries: entries,
      eventBridgeCalls: calls,
    };
  } finally {
    destroyClients(clients);
    await runtime.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Output

const money = (usd: number): string =>
  `$${usd.toLocaleString('en-US', { minimumFractionDigits: 3, maximumFractionDigits: 3 })}`;

/** The report as text: one line per component, totals, storage and fixed costs apart. */
export function formatReport(report: CostReport, prices: PriceTable): string {
  const rows = report.lines.map(
    (l) =>
      `  ${l.basis.padEnd(8)}  ${(l.component + (l.fanoutOnly ? ' [fan-out]' : '')).padEnd(52)} ` +
      `${l.unitsPerEvent.toPrecision(3).padStart(10)} ${l.unit.padEnd(11)} ${money(l.usdPerMillion).padStart(9)}`,
  );
  const unverified = Object.entries(prices.prices)
    .filter(([, p]) => !p.verified)
    .map(([id]) => id);
  return [
    `cost per million events, ${prices.region} prices as of ${prices.asOf} (per event units, $ per million events):`,
    ...rows,
    `  total without fan-out ${money(report.withoutFanout)}, with fan-out ${money(report.withFanout)} per million events ` +
      `(CloudTrail, an additional copy of management events: ${money(report.cloudTrailPerMillion)})`,
    ...report.storage.map(
      (l) => `  apart, ${l.component}: ${money(l.usdPerMillion)} per million events`,
    ),
    `  fixed per month: ${report.fixedMonthly.map((f) => `${f.item} ${money(f.usd)}`).join('; ')}`,
    `  prices not re-read at the source on ${prices.asOf}: ${unverified.join(', ') || 'none'}`,
  ].join('\n');
}

export async function runCostBench(options: {
  quick: boolean;
  log: (line: string) => void;
  pricesPath?: string;
}): Promise<BenchFigure[]> {
  const prices = loadPrices(options.pricesPath ?? DEFAULT_PRICES);
  const units = await countUnits(options.quick ? 2_000 : 10_000, options.log);
  const report = priceUnits(units, prices);
  for (const line of formatReport(report, prices).split('\n')) options.log(line);
  const provisioned = provisionedKinesis(units, prices);
  const baseline = {
    name: 'CloudTrail, additional copy of management events',
    value: report.cloudTrailPerMillion,
  };
  const dynamoWrites = Object.values(units.dynamodb).reduce((s, t) => s + t.write, 0);
  return [
    {
      name: 'cost per million events, without fan-out',
      value: report.withoutFanout,
      unit: '$',
      baseline,
      notes: `${prices.region} ${prices.asOf}; target ≤ $2.00`,
    },
    {
      name: 'cost per million events, with fan-out',
      value: report.withFanout,
      unit: '$',
      baseline,
      notes: `${prices.region} ${prices.asOf}; target ≤ $3.00`,
    },
    {
      name: 'DynamoDB write units per accepted event, all tables',
      value: dynamoWrites / units.events,
      unit: 'WRU',
      notes: Object.entries(units.dynamodb)
        .map(([t, u]) => `${t} ${(u.write / units.events).toFixed(2)}`)
        .join(', '),
    },
    {
      name: 'cost: fixed per month, default stack',
      value: report.fixedMonthly.reduce((s, f) => s + f.usd, 0),
      unit: '$',
      notes: report.fixedMonthly.map((f) => `${f.item} ${money(f.usd)}`).join('; '),
    },
    {
      name: 'cost: Kinesis provisioned instead of on-demand',
      value: provisioned.usdPerMillion,
      unit: '$ per million events',
      notes: `PUT payload units only; plus ${money(provisioned.usdPerShardMonth)} per shard-month`,
    },
  ];
}
