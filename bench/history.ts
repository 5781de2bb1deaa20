/**
 * Event history benchmark (issue 4). Reports, never judges:
 *
 * 1. Lookup latency p50/p99 per attribute kind (first page, MaxResults 50, in-process
 *    lookupEvents over the DynamoDB adapter on dynalite) and consumed read capacity per page
 *    (ReturnConsumedCapacity TOTAL, which dynalite computes the way DynamoDB does: Query at
 *    4 KB units of the items read, BatchGetItem per item rounded up to 4 KB, halved for
 *    eventually consistent reads), at two history sizes, with the ratio between them.
 *    Large histories are loaded by writing the indexer's own items (planIndex, planGroups, in
 *    batches of 500 as the deployed mapping delivers them) directly, in parallel, not through
 *    the HTTP API. The bulk records are small synthetic ones (≈ 450 bytes) to keep the
 *    in-memory emulator within RAM; records up to 4 KB cost the same read units.
 * 2. dynamodbWriteUnitsPerEvent: write units as billed per accepted event, per table and in
 *    total, counted by the dynalite proxy while the packager and the indexer handler process
 *    real-size records (see writeUnitFigures).
 * 3. Ingest-to-lookup visibility in the embedded runtime: one event put through
 *    PutAuditEvents, then LookupEvents by EventId every 50 ms until it shows (the issue: ≤ 5 s).
 */
import './quiet'; // before anything that loads a Lambda handler module
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { createClients, EMULATOR_CREDENTIALS } from '../lambda/adapters/clients';
import { documentClient } from '../lambda/adapters/dynamodb';
import { DynamoHistoryStore, type CapacityMeter } from '../lambda/adapters/history';
import { HmacMac } from '../lambda/adapters/mac';
import { LOOKUP_EVENTS_TARGET } from '../lambda/core/contracts';
import {
  BatchWriteCommand,
  type BatchWriteCommandOutput,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { lookupEvents, planGroups, planIndex } from '../lambda/core/history';
import type { HistoryGroupItem, HistoryRecordItem } from '../lambda/core/ports';
import { ensureHistoryTable } from '../local/components/history';
import { DEFAULT_DEDUP_WINDOW_SECONDS, DEFAULT_TRAIL } from '../lambda/core/config';
import { packageBatch } from '../lambda/core/packager';
import type { PackagerDeps } from '../lambda/core/packager-types';
import { DynamoDedupStore, DynamoManifestStore } from '../lambda/adapters/dynamodb';
import { S3ObjectStore } from '../lambda/adapters/s3';
import { createIndexerHandler } from '../lambda/handlers/indexer';
import { batchOf } from '../test/fixtures/kinesis-events';
import { clientsFor, destroyClients } from '../test/support/emulator-clients';
import { startLimitsProxy } from '../test/support/limited-dynalite';
import {
  freshRuntime,
  normaliseAll,
  realRecords,
  streamBatches,
  syntheticRecordTexts,
} from './lib';
import { STREAM_BATCH } from './settings';
import type { BenchFigure } from './lib';

const dynalite = createRequire(__filename)('dynalite') as (options: object) => Server;

const DAY_MS = 86400_000;
const KINDS: readonly {
  kind: string;
  attribute?: (n: number) => { key: string; value: string };
}[] = [
  { kind: 'none' },
  { kind: 'EventId', attribute: (n) => ({ key: 'EventId', value: eventId(n) }) },
  { kind: 'EventName', attribute: (n) => ({ key: 'EventName', value: `Operation${n % 40}` }) },
  { kind: 'ReadOnly', attribute: (n) => ({ key: 'ReadOnly', value: n % 2 ? 'true' : 'false' }) },
  { kind: 'Username', attribute: (n) => ({ key: 'Username', value: `user-${n % 200}` }) },
  { kind: 'ResourceType', attribute: () => ({ key: 'ResourceType', value: 'AWS::S3::Bucket' }) },
  { kind: 'ResourceName', attribute: (n) => ({ key: 'ResourceName', value: `bucket-${n % 500}` }) },
  { kind: 'EventSource', attribute: () => ({ key: 'EventSource', value: 'busy.amazonaws.com' }) },
  {
    kind: 'AccessKeyId',
    attribute: (n) => ({ key: 'AccessKeyId', value: `AKIA${String(n % 300).padStart(16, '0')}` }),
  },
];

function eventId(n: number): string {
  return `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
}

/** Bulk record n: spread over 85 days, newest first; half the events from one busy source. */
function bulkRecord(n: number, total: number, nowMs: number): string {
  const t = new Date(nowMs - 60_000 - Math.floor((n / total) * 85 * DAY_MS));
  return JSON.stringify({
    eventVersion: '1.11',
    eventID: eventId(n),
    eventTime: t.toISOString().slice(0, 19) + 'Z',
    eventSource: n % 2 ? 'busy.amazonaws.com' : `svc${n % 17}.amazonaws.com`,
    eventName: `Operation${n % 40}`,
    awsRegion: 'us-east-1',
    eventCategory: 'Management',
    managementEvent: true,
    readOnly: n % 2 === 1,
    userIdentity: {
      type: 'IAMUser',
      userName: `user-${n % 200}`,
      principalId: 'AIDAEXAMPLE',
      accessKeyId: `AKIA${String(n % 300).padStart(16, '0')}`,
    },
    resources:
      n % 3 === 0 ? [{ ARN: `arn:aws:s3:::bucket-${n % 500}`, type: 'AWS::S3::Bucket' }] : [],
  });
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The indexer's batch size on the deployed event-source mapping (lib/event-history.ts). */
const INDEXER_BATCH = 500;

/**
 * Loads events `from`..`to` as the indexer stores them, batch by batch (INDEXER_BATCH events
 * in stream order, so group items list what one batch lists), written with plain
 * BatchWriteItem requests, 8 at a time (the conditional record puts would only be slower).
 */
async function load(
  documents: DynamoDBDocumentClient,
  table: string,
  from: number,
  to: number,
  total: number,
  nowMs: number,
): Promise<void> {
  const items: (HistoryRecordItem | HistoryGroupItem)[] = [];
  for (let start = from; start < to; start += INDEXER_BATCH) {
    const events: { sortKey: string; partitions: readonly string[] }[] = [];
    for (let n = start; n < Math.min(to, start + INDEXER_BATCH); n++) {
      const plan = planIndex(bulkRecord(n, total, nowMs));
      if (plan.kind === 'index') {
        items.push(plan.record);
        events.push(plan);
      }
    }
    items.push(...planGroups(events));
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < items.length) {
        const chunk = items.slice(next, next + 25);
        next += 25;
        let requests: unknown[] | undefined = chunk.map((Item) => ({ PutRequest: { Item } }));
        while (requests && requests.length > 0) {
          const response: BatchWriteCommandOutput = await documents.send(
            new BatchWriteCommand({ RequestItems: { [table]: requests as never } }),
          );
          requests = response.UnprocessedItems?.[table];
        }
      }
    }),
  );
}

export async function runHistoryBench(options: {
  quick: boolean;
  log: (line: string) => void;
  /** History sizes of the lookup figures (two, smaller first); default by `quick`. */
  sizes?: readonly [number, number];
}): Promise<BenchFigure[]> {
  const sizes = options.sizes ?? (options.quick ? [2_000, 20_000] : [10_000, 200_000]);
  const samples = options.quick ? 10 : 30;
  const figures: BenchFigure[] = [];
  const nowMs = Date.now();

  const server = dynalite({ createTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients = createClients({
    region: 'us-east-1',
    dynamodbEndpoint: endpoint,
    credentials: EMULATOR_CREDENTIALS,
  });
  try {
    await ensureHistoryTable(clients.dynamodb, 'history-bench');
    const meter: CapacityMeter = { read: 0, write: 0 };
    const store = new DynamoHistoryStore(documentClient(clients.dynamodb), 'history-bench', meter);
    const mac = new HmacMac(Buffer.alloc(32, 1));

    // Bulk events are numbered by age; the largest size is loaded in steps, and every event
    // of a smaller history is also in the larger one (numbers are spread over the same 85
    // days for the final size, so the smaller history is the newest part of it).
    const largest = sizes[sizes.length - 1]!;
    const perSize = new Map<number, Map<string, { p50: number; p99: number; rcu: number }>>();
    let loaded = 0;
    for (const size of sizes) {
      const t0 = performance.now();
      await load(documentClient(clients.dynamodb), 'history-bench', loaded, size, largest, nowMs);
      loaded = size;
      options.log(
        `history: ${size} events loaded (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
      const results = new Map<string, { p50: number; p99: number; rcu: number }>();
      for (const { kind, attribute } of KINDS) {
        const latencies: number[] = [];
        const units: number[] = [];
        for (let i = 0; i < samples; i++) {
          const a = attribute?.(Math.floor((i * size) / samples));
          const request = a
            ? { LookupAttributes: [{ AttributeKey: a.key, AttributeValue: a.value }] }
            : {};
          meter.read = 0;
          const t = performance.now();
          await lookupEvents({ ...request, MaxResults: 50 }, { store, mac, now: () => nowMs });
          latencies.push(performance.now() - t);
          units.push(meter.read);
        }
        const r = {
          p50: percentile(latencies, 50),
          p99: percentile(latencies, 99),
          rcu: percentile(units, 50),
        };
        results.set(kind, r);
        options.log(
          `history: ${size} events, ${kind}: p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, ${r.rcu} RCU/page`,
        );
      }
      perSize.set(size, results);
    }
    const [small, large] = sizes as [number, number];
    for (const { kind } of KINDS) {
      const a = perSize.get(small)!.get(kind)!;
      const b = perSize.get(large)!.get(kind)!;
      figures.push(
        {
          name: `history lookup p50, ${kind}, ${large} events`,
          value: b.p50,
          unit: 'ms',
          baseline: { name: `${small} events`, value: a.p50 },
        },
        {
          name: `history lookup p99, ${kind}, ${large} events`,
          value: b.p99,
          unit: 'ms',
          baseline: { name: `${small} events`, value: a.p99 },
        },
        {
          name: `history read capacity per page, ${kind}, ${large} events`,
          value: b.rcu,
          unit: 'RCU',
          baseline: { name: `${small} events`, value: a.rcu },
          notes: `ratio ${(b.rcu / a.rcu).toFixed(2)} (ReturnConsumedCapacity TOTAL from dynalite)`,
        },
      );
    }
  } finally {
    clients.dynamodb.destroy();
    server.close();
  }

  figures.push(...(await writeUnitFigures(options)));

  // Visibility in the embedded runtime.
  const runtime = await freshRuntime({ flushSeconds: 60 });
  try {
    const cloudtrail = { endpoint: runtime.endpoints.api };
    const visibility: number[] = [];
    for (let i = 0; i < (options.quick ? 3 : 10); i++) {
      const id = randomUUID();
      const record = {
        eventVersion: '1.11',
        eventID: id,
        eventTime: new Date().toISOString().slice(0, 19) + 'Z',
        eventSource: 'bench.amazonaws.com',
        eventName: 'Visible',
        awsRegion: 'us-east-1',
        userIdentity: { type: 'IAMUser', userName: 'bench' },
      };
      const t0 = performance.now();
      const put = await fetch(`${cloudtrail.endpoint}/PutAuditEvents`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ auditEvents: [{ id: 'a', eventData: JSON.stringify(record) }] }),
      });
      if (!put.ok) throw new Error(`PutAuditEvents: HTTP ${put.status}`);
      for (;;) {
        const response = await fetch(`${cloudtrail.endpoint}/`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-amz-json-1.1',
            'x-amz-target': LOOKUP_EVENTS_TARGET,
          },
          body: JSON.stringify({
            LookupAttributes: [{ AttributeKey: 'EventId', AttributeValue: id }],
          }),
        });
        const page = (await response.json()) as { Events?: unknown[] };
        if ((page.Events ?? []).length > 0) break;
        if (performance.now() - t0 > 30_000) throw new Error('event not visible after 30 s');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      visibility.push((performance.now() - t0) / 1000);
    }
    figures.push({
      name: 'history ingest-to-lookup visibility, embedded runtime (p50)',
      value: percentile(visibility, 50),
      unit: 's',
      baseline: { name: 'issue target', value: 5 },
      notes: `max ${Math.max(...visibility).toFixed(2)} s over ${visibility.length} events; indexer polls every second`,
    });
    options.log(
      `history: visibility p50 ${percentile(visibility, 50).toFixed(2)} s, max ${Math.max(...visibility).toFixed(2)} s`,
    );
  } finally {
    await runtime.close();
  }
  return figures;
}

/** Live traffic in the write-unit figures: events this many ms apart, in stream order. */
const LIVE_EVENT_SPACING_MS = 10;
/**
 * Indexer batch sizes of the live write-unit figures: what one poll a second finds at 100
 * events/s, the deployed mapping's maximum (lib/event-history.ts), and the embedded runtime's.
 */
const LIVE_INDEXER_BATCHES = [100, 500, 1000] as const;

/**
 * dynamodbWriteUnitsPerEvent: write units as billed (test/support/write-units.ts) per accepted
 * event, per table and in total, counted by the dynalite proxy while the packager (real
 * DynamoDB and S3 adapters) and the indexer handler process the same real-size records on the
 * emulators. Records are the real fixtures with new eventIDs, in two traffic shapes: live
 * (eventTime 10 ms apart) with indexer batches of 100, 500 and 1,000 events, and a replay of
 * old logs (the fixtures' own eventTimes, spread over years; batches of 500). Group items
 * are per (key, value, minute) of a batch, so the history table's units fall as batches grow.
 */
export async function writeUnitFigures(options: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<BenchFigure[]> {
  const count = options.quick ? 1_000 : 5_000;
  const runtime = await freshRuntime({ flushSeconds: 60, components: [] });
  const proxy = await startLimitsProxy(runtime.endpoints.dynamodb);
  const clients = clientsFor({ ...runtime.endpoints, dynamodb: proxy.endpoint });
  const figures: BenchFigure[] = [];
  try {
    const documents = documentClient(clients.dynamodb);
    const historyTable = 'history-units';
    await ensureHistoryTable(clients.dynamodb, historyTable);
    const shapes = [
      ...LIVE_INDEXER_BATCHES.map((batch) => ({
        shape: `live, indexer batches of ${batch}`,
        batch,
        live: true,
      })),
      {
        shape: `replay of old logs, indexer batches of ${INDEXER_BATCH}`,
        batch: INDEXER_BATCH,
        live: false,
      },
    ];
    let firstSequence = 1;
    for (const { shape, batch, live } of shapes) {
      const start = Date.now() - count * LIVE_EVENT_SPACING_MS;
      const texts = syntheticRecordTexts(realRecords(), count, `units-${shape}`).map((text, n) => {
        if (!live) return text;
        const record = JSON.parse(text) as Record<string, unknown>;
        const eventTime = new Date(start + n * LIVE_EVENT_SPACING_MS).toISOString();
        return JSON.stringify({ ...record, eventTime: `${eventTime.slice(0, 19)}Z` });
      });
      const deps: PackagerDeps = {
        trails: [DEFAULT_TRAIL],
        bucket: runtime.endpoints.bucket,
        objects: new S3ObjectStore(clients.s3),
        manifest: new DynamoManifestStore(documents, runtime.endpoints.manifestTable),
        dedup: new DynamoDedupStore(documents, runtime.endpoints.dedupTable),
        metrics: { count: () => undefined },
        dedupWindowMs: DEFAULT_DEDUP_WINDOW_SECONDS * 1000,
        now: Date.now,
      };
      proxy.writeUnits.reset();
      const records = normaliseAll(texts);
      for (const shard of streamBatches(records, {
        batchSize: STREAM_BATCH,
        shards: 1,
        arrivalMs: Date.now(),
        firstSequence,
      }))
        for (const b of shard) await packageBatch(b, deps);
      const indexer = createIndexerHandler({
        store: new DynamoHistoryStore(documents, historyTable),
        metrics: { count: () => undefined },
      });
      for (let i = 0; i < records.length; i += batch) {
        const event = batchOf(
          'shardId-000000000000',
          records.slice(i, i + batch).map((r) => r.text),
          firstSequence + i,
          Date.now(),
        );
        const result = await indexer(event);
        if (result.batchItemFailures.length > 0) throw new Error('history: indexing failed');
      }
      firstSequence += count;
      const perEvent = (units: number): number => units / count;
      const tableNames = {
        history: historyTable,
        dedup: runtime.endpoints.dedupTable,
        manifest: runtime.endpoints.manifestTable,
      };
      const tables = Object.fromEntries(
        Object.entries(tableNames).map(([name, table]) => [name, proxy.writeUnits.units(table)]),
      );
      const total = proxy.writeUnits.units();
      options.log(
        `history: dynamodbWriteUnitsPerEvent (${shape}): total ${perEvent(total).toFixed(3)}, ` +
          Object.entries(tables)
            .map(([name, units]) => `${name} ${perEvent(units).toFixed(3)}`)
            .join(', ') +
          ` (${JSON.stringify(proxy.writeUnits.byTable())})`,
      );
      figures.push({
        name: `dynamodbWriteUnitsPerEvent, all tables, ${shape}`,
        value: perEvent(total),
        unit: 'WU/event',
        baseline: { name: 'issue 14 target', value: 2.5 },
        notes: `${count} accepted real-size events; ${Object.entries(tables)
          .map(([name, units]) => `${name} ${perEvent(units).toFixed(3)}`)
          .join(', ')}`,
      });
      for (const [name, units] of Object.entries(tables))
        figures.push({
          name: `dynamodbWriteUnitsPerEvent, ${name} table, ${shape}`,
          value: perEvent(units),
          unit: 'WU/event',
          ...(name === 'history' ? { baseline: { name: 'issue 14 target', value: 1.5 } } : {}),
          notes: `items written per event ${(proxy.writeUnits.items(tableNames[name as keyof typeof tableNames]) / count).toFixed(3)}`,
        });
    }
  } finally {
    destroyClients(clients);
    await proxy.close();
    await runtime.close();
  }
  return figures;
}

if (require.main === module) {
  runHistoryBench({
    quick: process.argv.includes('--quick'),
    log: (line) => process.stderr.write(`${line}\n`),
  })
    .then((figures) => process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`))
    .catch((error: unknown) => {
      process.stderr.write(`${String(error)}\n`);
      process.exitCode = 1;
    });
}
