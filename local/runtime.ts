/**
 * The embedded runtime (`npm start`): the whole write path on 127.0.0.1 with no AWS account.
 * s3rver, dynalite and kinesalite keep their data under the data dir; the same handler
 * modules that run in Lambda run here, fed by an HTTP server (API Gateway proxy events) and a
 * stream poller (Lambda Kinesis events, retried whole, on-failure records to S3).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  DEFAULT_DEDUP_WINDOW_SECONDS,
  DEFAULT_TRAIL,
  type TrailConfig,
} from '../lambda/core/config';
import type { MetricsSink, ObjectStore } from '../lambda/core/ports';
import { validateTrailConfigs } from '../lambda/core/selectors';
import { DEDUP_TABLE, MANIFEST_TABLE } from '../lambda/core/tables';
import { createClients, destroyClients, EMULATOR_CREDENTIALS } from '../lambda/adapters/clients';
import { documentClient, DynamoDedupStore, DynamoManifestStore } from '../lambda/adapters/dynamodb';
import { KinesisRecordStream } from '../lambda/adapters/kinesis';
import { S3ObjectStore } from '../lambda/adapters/s3';
import { createIngestHandler } from '../lambda/handlers/ingest';
import { createPackagerHandler } from '../lambda/handlers/packager';
import { CheckpointStore } from './checkpoints';
import { startEmulators } from './emulators';
import { writeJsonAtomic } from './files';
import { startHttpApi } from './http-api';
import { StreamPoller, type FailureRecord } from './kinesis-poller';

export interface RuntimeOptions {
  readonly dataDir: string;
  /** API port on 127.0.0.1; 0 picks a free one. */
  readonly port: number;
  /** The packager's batching window. */
  readonly flushSeconds: number;
  readonly region?: string;
  readonly accountId?: string;
  readonly trails?: readonly TrailConfig[];
  readonly batchSize?: number;
  readonly shards?: number;
  /** Retries of a failed batch before it goes to the on-failure bucket. @default 5 */
  readonly maxRetries?: number;
  /** First retry delay in ms, doubling. @default 1000 */
  readonly retryBaseMs?: number;
  readonly dedupWindowSeconds?: number;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
  /**
   * Test hook: extra milliseconds before every log-file write, so a test can stop the runtime
   * in the middle of a batch. Also read from OPENTRAIL_FAULT_S3_DELAY_MS.
   */
  readonly s3WriteDelayMs?: number;
}

/** What `<data-dir>/endpoints.json` holds. */
export interface Endpoints {
  readonly api: string;
  readonly s3: string;
  readonly dynamodb: string;
  readonly kinesis: string;
  readonly bucket: string;
  readonly region: string;
  readonly accountId: string;
  readonly failedBucket: string;
  readonly stream: string;
  readonly manifestTable: string;
  readonly dedupTable: string;
}

export interface Runtime {
  readonly endpoints: Endpoints;
  readonly dataDir: string;
  close(): Promise<void>;
}

export const LOCAL_DEFAULTS = {
  region: 'us-east-1',
  accountId: '123456789012',
  bucket: 'opentrail-logs',
  failedBucket: 'opentrail-failed-records',
  stream: 'opentrail-events',
  manifestTable: 'opentrail-manifest',
  dedupTable: 'opentrail-dedup',
  batchSize: 1000,
  shards: 2,
} as const;

function ignoreExisting(...names: string[]) {
  return (error: unknown): void => {
    if (!names.includes((error as Error).name)) throw error;
  };
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not become ready`);
}

async function ensureBuckets(s3: S3Client, names: string[]): Promise<void> {
  for (const name of names) {
    await s3
      .send(new CreateBucketCommand({ Bucket: name }))
      .catch(ignoreExisting('BucketAlreadyOwnedByYou', 'BucketAlreadyExists'));
  }
}

async function ensureTables(dynamodb: DynamoDBClient): Promise<void> {
  await dynamodb
    .send(
      new CreateTableCommand({
        TableName: LOCAL_DEFAULTS.manifestTable,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: MANIFEST_TABLE.partitionKey, AttributeType: 'S' },
          { AttributeName: MANIFEST_TABLE.indexPartitionKey, AttributeType: 'S' },
          { AttributeName: MANIFEST_TABLE.indexSortKey, AttributeType: 'S' },
        ],
        KeySchema: [{ AttributeName: MANIFEST_TABLE.partitionKey, KeyType: 'HASH' }],
        GlobalSecondaryIndexes: [
          {
            IndexName: MANIFEST_TABLE.indexName,
            KeySchema: [
              { AttributeName: MANIFEST_TABLE.indexPartitionKey, KeyType: 'HASH' },
              { AttributeName: MANIFEST_TABLE.indexSortKey, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      }),
    )
    .catch(ignoreExisting('ResourceInUseException'));
  await dynamodb
    .send(
      new CreateTableCommand({
        TableName: LOCAL_DEFAULTS.dedupTable,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: DEDUP_TABLE.partitionKey, AttributeType: 'S' }],
        KeySchema: [{ AttributeName: DEDUP_TABLE.partitionKey, KeyType: 'HASH' }],
      }),
    )
    .catch(ignoreExisting('ResourceInUseException'));
  for (const table of [LOCAL_DEFAULTS.manifestTable, LOCAL_DEFAULTS.dedupTable]) {
    await until(
      `table ${table}`,
      async () =>
        (await dynamodb.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus ===
        'ACTIVE',
    );
  }
}

async function ensureStream(kinesis: KinesisClient, shards: number): Promise<string> {
  await kinesis
    .send(new CreateStreamCommand({ StreamName: LOCAL_DEFAULTS.stream, ShardCount: shards }))
    .catch(ignoreExisting('ResourceInUseException'));
  let arn = '';
  await until(`stream ${LOCAL_DEFAULTS.stream}`, async () => {
    const summary = await kinesis.send(
      new DescribeStreamSummaryCommand({ StreamName: LOCAL_DEFAULTS.stream }),
    );
    arn = summary.StreamDescriptionSummary?.StreamARN ?? '';
    return summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE';
  });
  return arn;
}

/** Refuses a second runtime on the same data dir (their emulators would corrupt each other). */
async function takeLock(dataDir: string): Promise<string> {
  const lock = join(dataDir, 'runtime.pid');
  const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
  if (holder && holder !== process.pid) {
    let alive = true;
    try {
      process.kill(holder, 0);
    } catch {
      alive = false;
    }
    if (alive)
      throw new Error(
        `another opentrail runtime (pid ${holder}) is using ${dataDir}; stop it or pass another --data-dir`,
      );
  }
  await writeFile(lock, `${process.pid}\n`);
  return lock;
}

function delayed(store: ObjectStore, delayMs: number): ObjectStore {
  if (delayMs <= 0) return store;
  return {
    putIfAbsent: async (object) => {
      await new Promise((r) => setTimeout(r, delayMs));
      return store.putIfAbsent(object);
    },
    get: (bucket, key) => store.get(bucket, key),
  };
}

/** Starts the runtime; resolves once every part is up and endpoints.json is written. */
export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const dataDir = resolve(options.dataDir);
  const region = options.region ?? LOCAL_DEFAULTS.region;
  const accountId = options.accountId ?? LOCAL_DEFAULTS.accountId;
  const trails = options.trails ?? [DEFAULT_TRAIL];
  const log = options.log ?? (() => undefined);
  const problems = validateTrailConfigs(trails, Math.max(trails.length, 5));
  if (problems.length > 0)
    throw new Error(`invalid trail configuration:\n- ${problems.join('\n- ')}`);

  await mkdir(dataDir, { recursive: true });
  const lock = await takeLock(dataDir);
  const emulators = await startEmulators({ dataDir, silent: true });
  const clients = createClients({
    region,
    s3Endpoint: emulators.s3Endpoint,
    dynamodbEndpoint: emulators.dynamodbEndpoint,
    kinesisEndpoint: emulators.kinesisEndpoint,
    credentials: EMULATOR_CREDENTIALS,
  });
  const cleanups: (() => Promise<void>)[] = [
    () => Promise.resolve(destroyClients(clients)),
    () => emulators.close(),
    () => rm(lock, { force: true }),
  ];
  const close = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0))
      await cleanup().catch((error: unknown) =>
        log('shutdown step failed', { error: String(error) }),
      );
  };
  try {
    await ensureBuckets(clients.s3, [LOCAL_DEFAULTS.bucket, LOCAL_DEFAULTS.failedBucket]);
    await ensureTables(clients.dynamodb);
    const streamArn = await ensureStream(clients.kinesis, options.shards ?? LOCAL_DEFAULTS.shards);

    const documents = documentClient(clients.dynamodb);
    const counters = new Map<string, number>();
    const metrics: MetricsSink = {
      count: (name, value) => counters.set(name, (counters.get(name) ?? 0) + value),
    };
    const ingest = createIngestHandler({
      stream: new KinesisRecordStream(clients.kinesis, LOCAL_DEFAULTS.stream),
      accountId,
      // No caller identity here: the InvalidRecipient rule is off (FORMATS.md §2).
      now: Date.now,
      newEventId: randomUUID,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    });
    const s3WriteDelayMs =
      options.s3WriteDelayMs ?? Number(process.env.OPENTRAIL_FAULT_S3_DELAY_MS ?? 0);
    const packager = createPackagerHandler({
      trails,
      bucket: LOCAL_DEFAULTS.bucket,
      objects: delayed(new S3ObjectStore(clients.s3), s3WriteDelayMs),
      manifest: new DynamoManifestStore(documents, LOCAL_DEFAULTS.manifestTable),
      dedup: new DynamoDedupStore(documents, LOCAL_DEFAULTS.dedupTable),
      metrics,
      dedupWindowMs: (options.dedupWindowSeconds ?? DEFAULT_DEDUP_WINDOW_SECONDS) * 1000,
      now: Date.now,
    });
    const functionArn = `arn:aws:lambda:${region}:${accountId}:function:opentrail-packager`;
    const onFailure = async (record: FailureRecord): Promise<void> => {
      const at = new Date();
      const day = at.toISOString().slice(0, 10).replace(/-/g, '/');
      const stamp = at.toISOString().slice(0, 19).replace(/:/g, '.');
      await clients.s3.send(
        new PutObjectCommand({
          Bucket: LOCAL_DEFAULTS.failedBucket,
          Key: `aws/lambda/packager/${record.KinesisBatchInfo.shardId}/${day}/${stamp}-${randomUUID()}`,
          Body: JSON.stringify(record),
          ContentType: 'application/json',
        }),
      );
    };
    const poller = new StreamPoller({
      kinesis: clients.kinesis,
      streamName: LOCAL_DEFAULTS.stream,
      streamArn,
      region,
      functionArn,
      batchSize: options.batchSize ?? LOCAL_DEFAULTS.batchSize,
      batchWindowMs: options.flushSeconds * 1000,
      pollIntervalMs: 1000,
      maxRetries: options.maxRetries ?? 5,
      retryBaseMs: options.retryBaseMs ?? 1000,
      checkpoints: await CheckpointStore.open(dataDir, 'packager'),
      invoke: packager,
      onFailure,
      log,
    });
    await poller.start();
    cleanups.unshift(() => poller.stop());

    const api = await startHttpApi({ 'POST /PutAuditEvents': ingest }, options.port);
    cleanups.unshift(() => api.close());

    const endpoints: Endpoints = {
      api: api.url,
      s3: emulators.s3Endpoint,
      dynamodb: emulators.dynamodbEndpoint,
      kinesis: emulators.kinesisEndpoint,
      bucket: LOCAL_DEFAULTS.bucket,
      region,
      accountId,
      failedBucket: LOCAL_DEFAULTS.failedBucket,
      stream: LOCAL_DEFAULTS.stream,
      manifestTable: LOCAL_DEFAULTS.manifestTable,
      dedupTable: LOCAL_DEFAULTS.dedupTable,
    };
    await writeJsonAtomic(join(dataDir, 'endpoints.json'), endpoints);
    cleanups.push(() => rm(join(dataDir, 'endpoints.json'), { force: true }));
    return { endpoints, dataDir, close };
  } catch (error) {
    await close();
    throw error;
  }
}
