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
 * bytes, from the assumptions named in cost-model.ts; the output says which lines they are.
 * The prices: cost-prices.ts; the meters on the emulator clients: cost-meters.ts.
 */
import './quiet'; // before anything that loads a Lambda handler module
import { randomUUID } from 'node:crypto';
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
import {
  EVENTBRIDGE_CHUNK_BYTES,
  FUNCTIONS,
  formatReport,
  KB,
  PUT_PAYLOAD_UNIT_BYTES,
  money,
  priceUnits,
  provisionedKinesis,
  type CountedUnits,
} from './cost-model';
import { meterDynamo, meterS3, type DynamoMeter, type S3Meter } from './cost-meters';
import { DEFAULT_PRICES, loadPrices } from './cost-prices';

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
    const batches = (size: number) =>
      // The stream's records as ingest stored them (stamped): not normalised a second time.
      streamBatches(
        stream.delivered.map((r) => ({
          text: r.text,
          eventID: (JSON.parse(r.text) as { eventID: string }).eventID,
        })),
        {
          batchSize: size,
          shards: 1,
          arrivalMs: Date.now(),
        },
      ).flat();

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
