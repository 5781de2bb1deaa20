/**
 * Bench area `scale`: a realistic 10,000 events/s mix replayed through the core key functions
 * (no emulator), printing the write units per second of the hottest partition key of every
 * table (docs/scale.md). DynamoDB serves about 1,000 write units/s per partition key; a key
 * above that throttles however the table scales.
 *
 * The mix: records drawn from the real fixtures (test/fixtures/cloudtrail-data) with
 * replacement, so eventSources, eventNames, readOnly, users, accounts and regions are as skewed
 * as there, each with a new eventID. Per simulated second, every table's items are keyed by the
 * functions the writers call:
 * - history: planIndex (lambda/core/history-keys.ts): the record item and every index item;
 * - dedup: decide (lambda/core/dedup.ts) on a new eventID, the claim item it would write;
 * - manifest: one row per log file, keyed `bucket/key` by logFileKey (lambda/core/layout.ts),
 *   written twice (reserve, delivered), and its `byStream` index, keyed by trail/account/region;
 * - digest registry: one put per stream and Lambda container (cached after), so ≤ 1 per file.
 * Write units: DynamoDB's count (per started KB of the item: names plus values).
 */
import './quiet';
import { DEFAULT_DEDUP_WINDOW_SECONDS, DEFAULT_TRAIL } from '../lambda/core/config';
import { decide, dedupItemBytes } from '../lambda/core/dedup';
import { planIndex } from '../lambda/core/history-keys';
import { planGroups } from '../lambda/core/history-groups';
import { itemBytes } from '../lambda/adapters/dynamodb-limits';
import { logFileKey, uniqueFrom } from '../lambda/core/layout';
import { sha256Hex } from '../lambda/core/logfile';
import { normaliseAll, realRecords, syntheticRecordTexts, type BenchFigure } from './lib';

/** The rate the issue asks a deployment to take. */
export const EVENTS_PER_SECOND = 10_000;
/** DynamoDB's per-partition-key write throughput. */
export const PARTITION_WRITE_UNITS_PER_SECOND = 1_000;
/** Packager batch size: records per log file at most (one file per account/region/batch). */
const PACKAGER_BATCH = 1_000;
/** Indexer batch size, as lib/event-history.ts deploys it. */
const INDEXER_BATCH = 500;
const KB = 1024;

/** Write units of one item written whole: a started KB each, at least one. */
export const writeUnits = (item: Record<string, unknown>): number =>
  Math.max(1, Math.ceil(itemBytes(item) / KB));

/** Write units per partition key of one table over one simulated second. */
export class PartitionLoad {
  private readonly units = new Map<string, number>();
  total = 0;

  add(partitionKey: string, units: number): void {
    this.units.set(partitionKey, (this.units.get(partitionKey) ?? 0) + units);
    this.total += units;
  }

  hottest(): { key: string; units: number } {
    let key = '';
    let units = 0;
    for (const [k, u] of this.units) if (u > units) [key, units] = [k, u];
    return { key, units };
  }
}

export interface TableLoads {
  readonly history: PartitionLoad;
  readonly dedup: PartitionLoad;
  readonly manifest: PartitionLoad;
  readonly 'manifest byStream index': PartitionLoad;
  readonly 'digest registry': PartitionLoad;
}

/** One second of `texts` (stored record texts) through the writers' key functions. */
export function simulateSecond(texts: readonly string[], bucket = 'opentrail-logs'): TableLoads {
  const loads: TableLoads = {
    history: new PartitionLoad(),
    dedup: new PartitionLoad(),
    manifest: new PartitionLoad(),
    'manifest byStream index': new PartitionLoad(),
    'digest registry': new PartitionLoad(),
  };
  const arrivalMs = Date.now();
  const streams = new Set<string>();
  for (let first = 0; first < texts.length; first += PACKAGER_BATCH) {
    const files = new Map<string, { account: string; region: string }>();
    const indexed: { sortKey: string; partitions: readonly string[] }[] = [];
    texts.slice(first, first + PACKAGER_BATCH).forEach((text, i) => {
      const plan = planIndex(text);
      if (plan.kind === 'index') {
        loads.history.add(plan.record.pk, writeUnits({ ...plan.record }));
        indexed.push({ sortKey: plan.sortKey, partitions: plan.partitions });
      }
      const record = JSON.parse(text) as {
        eventID: string;
        awsRegion: string;
        recipientAccountId: string;
      };
      const key = logFileKey({
        prefix: DEFAULT_TRAIL.prefix,
        organizationId: DEFAULT_TRAIL.organizationId,
        account: record.recipientAccountId,
        region: record.awsRegion,
        deliveryMs: arrivalMs,
        unique: uniqueFrom(
          `${bucket}\n${first}\n${record.recipientAccountId}\n${record.awsRegion}`,
        ),
        kind: 'CloudTrail',
      });
      files.set(key, { account: record.recipientAccountId, region: record.awsRegion });
      const decision = decide(
        undefined,
        {
          eventId: record.eventID,
          hash: sha256Hex(text),
          trail: DEFAULT_TRAIL.name,
          record: `shardId-000000000000:${first + i}`,
          batch: `shardId-000000000000:${first}`,
          arrivalMs,
          key: `${bucket}/${key}`,
        },
        DEFAULT_DEDUP_WINDOW_SECONDS * 1000,
        () => 'none',
      );
      if (decision.keep && decision.item)
        loads.dedup.add(record.eventID, Math.max(1, Math.ceil(dedupItemBytes(decision.item) / KB)));
    });
    // The indexer's batches (lib/event-history.ts deploys 500): one group item per (lookup key
    // and value, minute) of a batch.
    for (let g = 0; g < indexed.length; g += INDEXER_BATCH)
      for (const item of planGroups(indexed.slice(g, g + INDEXER_BATCH)))
        loads.history.add(item.pk, writeUnits({ ...item }));
    for (const [key, { account, region }] of files) {
      // reserve, then delivered: two writes of a small row; the index gets the delivered row.
      loads.manifest.add(`${bucket}/${key}`, 2);
      const stream = `${DEFAULT_TRAIL.name}#${account}#${region}`;
      loads['manifest byStream index'].add(stream, 1);
      if (!streams.has(stream)) loads['digest registry'].add('streams', 1);
      streams.add(stream);
    }
  }
  return loads;
}

export async function runScaleBench(options: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<BenchFigure[]> {
  const seconds = options.quick ? 1 : 5;
  const hottest = new Map<string, { key: string; units: number; total: number }>();
  for (let s = 0; s < seconds; s++) {
    const texts = normaliseAll(
      syntheticRecordTexts(realRecords(), EVENTS_PER_SECOND, `scale-${s}`),
    ).map((r) => r.text);
    const loads = simulateSecond(texts);
    for (const [table, load] of Object.entries(loads) as [string, PartitionLoad][]) {
      const hot = load.hottest();
      const seen = hottest.get(table);
      if (!seen || hot.units > seen.units) hottest.set(table, { ...hot, total: load.total });
    }
  }
  const figures: BenchFigure[] = [];
  for (const [table, hot] of hottest) {
    const verdict = hot.units <= PARTITION_WRITE_UNITS_PER_SECOND ? 'within' : 'ABOVE';
    options.log(
      `${table}: hottest partition key ${JSON.stringify(hot.key.slice(0, 60))} ${hot.units} WU/s ` +
        `(${verdict} ${PARTITION_WRITE_UNITS_PER_SECOND}); table ${hot.total} WU/s`,
    );
    figures.push({
      name: `scale: hottest ${table} partition key at ${EVENTS_PER_SECOND.toLocaleString('en-US')} events/s`,
      value: hot.units,
      unit: 'WU/s',
      notes: `key ${JSON.stringify(hot.key.slice(0, 60))}, ${verdict} DynamoDB's ${PARTITION_WRITE_UNITS_PER_SECOND} per key; whole table ${hot.total} WU/s; worst of ${seconds} simulated s`,
    });
  }
  return figures;
}
