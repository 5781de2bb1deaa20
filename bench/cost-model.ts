/**
 * The cost model (docs/cost.md): dollars per million accepted events, by component, from the
 * units a run counted (cost.ts) and a price table (cost-prices.ts). Pure. The lines marked
 * MODELLED rest on the assumptions named here, not on counts.
 */
import { perUnit, type PriceId, type PriceTable } from './cost-prices';

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
export const KB = 1024;
export const PUT_PAYLOAD_UNIT_BYTES = 25 * KB;
export const EVENTBRIDGE_CHUNK_BYTES = 64 * KB;

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

export const money = (usd: number): string =>
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
