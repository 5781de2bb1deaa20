/**
 * The embedded runtime (`npm start`): the whole write path on 127.0.0.1 with no AWS account.
 * s3rver, dynalite and kinesalite keep their data under the data dir; the same handler
 * modules that run in Lambda run here, fed by an HTTP server (API Gateway proxy events) and a
 * stream poller (Lambda Kinesis events, retried whole, on-failure records to S3).
 */
import { randomUUID } from 'node:crypto';
import type { KinesisStreamEvent } from 'aws-lambda';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_TRAIL } from '../lambda/core/config';
import { validateTrailConfigs } from '../lambda/core/selectors';
import { DEDUP_TABLE, MANIFEST_TABLE } from '../lambda/core/tables';
import { createClients, destroyClients } from '../lambda/adapters/clients';
import { documentClient } from '../lambda/adapters/dynamodb';
import { createQueryHandler, type Operation } from '../lambda/handlers/query';
import { CheckpointStore } from './checkpoints';
import { DEFAULT_COMPONENTS } from './components';
import { startEmulators } from './emulators';
import { checkEndpoints } from '../lambda/core/contracts';
import { writeJsonAtomic } from './files';
import { HEALTH_ROUTE, newestArrivalMs, type HealthStatus } from './health';
import { startHttpApi, type ProxyHandler } from './http-api';
import { StreamPoller, type FailureRecord } from './kinesis-poller';
import {
  LOCAL_DEFAULTS,
  type ConsumerSpec,
  type Endpoints,
  type LogFn,
  type Runtime,
  type RuntimeContext,
  type RuntimeOptions,
} from './runtime-context';

export {
  LOCAL_DEFAULTS,
  type ConsumerSpec,
  type Endpoints,
  type LogFn,
  type Runtime,
  type RuntimeComponent,
  type RuntimeContext,
  type RuntimeOptions,
} from './runtime-context';

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

/**
 * The delivery manifest's table as the embedded runtime creates it (keys and the `byStream`
 * index of lambda/core/tables.ts), for tests that create one beside their own emulators too.
 */
export function manifestTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
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
  };
}

async function ensureTables(dynamodb: DynamoDBClient): Promise<void> {
  await dynamodb
    .send(new CreateTableCommand(manifestTableDefinition(LOCAL_DEFAULTS.manifestTable)))
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

/** The fault proxy every emulator connection goes through, when a test asks for one. */
function faultProxyPort(options: RuntimeOptions): { connectViaPort?: number } {
  const port = options.faultProxyPort ?? Number(process.env.OPENTRAIL_FAULT_PROXY_PORT ?? 0);
  return port > 0 ? { connectViaPort: port } : {};
}

/** Starts the runtime; resolves once every part is up and endpoints.json is written. */
export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const dataDir = resolve(options.dataDir);
  const region = options.region ?? LOCAL_DEFAULTS.region;
  const accountId = options.accountId ?? LOCAL_DEFAULTS.accountId;
  const trails = options.trails ?? [DEFAULT_TRAIL];
  const log: LogFn = options.log ?? (() => undefined);
  const problems = validateTrailConfigs(trails, Math.max(trails.length, 5));
  if (problems.length > 0) {
    throw new Error(`invalid trail configuration:\n- ${problems.join('\n- ')}`);
  }

  // Owner only: endpoints.json holds the S3 secret, and the emulators' files are the archive.
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  const lock = await takeLock(dataDir);
  const emulators = await startEmulators({ dataDir, silent: true });
  const clients = createClients({
    region,
    s3Endpoint: emulators.s3Endpoint,
    dynamodbEndpoint: emulators.dynamodbEndpoint,
    kinesisEndpoint: emulators.kinesisEndpoint,
    credentials: emulators.credentials,
    ...faultProxyPort(options),
  });
  // Run last to first: components, then clients, emulators and the lock.
  const cleanups: (() => Promise<void>)[] = [
    () => rm(lock, { force: true }),
    () => emulators.close(),
    () => Promise.resolve(destroyClients(clients)),
  ];
  const close = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error: unknown) =>
        log('shutdown step failed', { error: String(error) }),
      );
    }
  };
  try {
    await ensureBuckets(clients.s3, [LOCAL_DEFAULTS.bucket, LOCAL_DEFAULTS.failedBucket]);
    await ensureTables(clients.dynamodb);
    const streamArn = await ensureStream(clients.kinesis, options.shards ?? LOCAL_DEFAULTS.shards);

    const routes: Record<string, ProxyHandler> = {};
    const operations = new Map<string, Operation>();
    const extraEndpoints: Record<string, string> = {};
    const counters = new Map<string, number>();
    // Each consumer's iterator age at its latest batch (ms): the status line's lag.
    const lags = new Map<string, number>();
    const context: RuntimeContext = {
      options,
      dataDir,
      region,
      accountId,
      trails,
      clients,
      documents: documentClient(clients.dynamodb),
      names: LOCAL_DEFAULTS,
      streamArn,
      metrics: { count: (name, value) => counters.set(name, (counters.get(name) ?? 0) + value) },
      log,
      route: (key, handler) => {
        if (routes[key]) throw new Error(`route ${key} is served twice`);
        routes[key] = handler;
      },
      operation: (target, operation) => {
        if (operations.has(target)) throw new Error(`operation ${target} is served twice`);
        operations.set(target, operation);
      },
      consumer: (spec) => startConsumer(context, spec, cleanups, lags),
      every: (name, intervalMs, task) => cleanups.push(schedule(name, intervalMs, task, log)),
      endpoint: (key, value) => {
        extraEndpoints[key] = value;
      },
      onClose: (cleanup) => {
        cleanups.push(cleanup);
      },
    };
    for (const component of options.components ?? DEFAULT_COMPONENTS) {
      await component.start(context);
    }
    if (operations.size > 0) routes['POST /'] = createQueryHandler(operations);
    const health = (): HealthStatus => ({
      eventsIn: counters.get('EventsAccepted') ?? 0,
      logFilesWritten: counters.get('LogFilesDelivered') ?? 0,
      digestsSigned: counters.get('DigestsWritten') ?? 0,
      lagSeconds: lags.size === 0 ? null : Math.max(...lags.values()) / 1000,
    });
    routes[HEALTH_ROUTE] = () =>
      Promise.resolve({ statusCode: 200, body: JSON.stringify(health()) });

    const api = await startHttpApi(routes, options.port);
    cleanups.push(() => api.close());

    const endpoints: Endpoints = {
      ...extraEndpoints,
      api: api.url,
      s3: emulators.s3Endpoint,
      dynamodb: emulators.dynamodbEndpoint,
      kinesis: emulators.kinesisEndpoint,
      bucket: LOCAL_DEFAULTS.bucket,
      region,
      accountId,
      failedBucket: LOCAL_DEFAULTS.failedBucket,
      stream: LOCAL_DEFAULTS.stream,
      lambda: api.url,
      manifestTable: LOCAL_DEFAULTS.manifestTable,
      dedupTable: LOCAL_DEFAULTS.dedupTable,
      accessKeyId: emulators.credentials.accessKeyId,
      secretAccessKey: emulators.credentials.secretAccessKey,
    };
    const endpointsFile = join(dataDir, 'endpoints.json');
    checkEndpoints(endpoints, endpointsFile);
    await writeJsonAtomic(endpointsFile, endpoints, 0o600);
    // Removed first on close: nobody should find the address of a runtime that is stopping.
    cleanups.push(() => rm(endpointsFile, { force: true }));
    return { endpoints, dataDir, close, health };
  } catch (error) {
    await close();
    throw error;
  }
}

async function startConsumer(
  context: RuntimeContext,
  spec: ConsumerSpec,
  cleanups: (() => Promise<void>)[],
  lags: Map<string, number>,
): Promise<void> {
  const { clients, names, region, accountId, options } = context;
  const invoke: ConsumerSpec['invoke'] = (event) => {
    const newest = newestArrivalMs(event);
    if (newest !== undefined) lags.set(spec.name, Math.max(0, Date.now() - newest));
    return spec.invoke(event);
  };
  const onFailure = async (record: FailureRecord): Promise<void> => {
    const at = new Date();
    const day = at.toISOString().slice(0, 10).replace(/-/g, '/');
    const stamp = at.toISOString().slice(0, 19).replace(/:/g, '.');
    await clients.s3.send(
      new PutObjectCommand({
        Bucket: names.failedBucket,
        Key: `aws/lambda/${spec.name}/${record.KinesisBatchInfo.shardId}/${day}/${stamp}-${randomUUID()}`,
        Body: JSON.stringify(record),
        ContentType: 'application/json',
      }),
    );
  };
  const functionName = `opentrail-${spec.name}`;
  const functionArn = `arn:aws:lambda:${region}:${accountId}:function:${functionName}`;
  // Lambda's Invoke API for this consumer, so `opentrail redrive` replays a given-up batch into
  // the consumer that gave it up (by name, as redrive calls it against an endpoint override,
  // and by ARN).
  const invokeRoute = invocationRoute(spec);
  for (const id of [functionName, encodeURIComponent(functionArn)])
    context.route(`POST /2015-03-31/functions/${id}/invocations`, invokeRoute);
  const poller = new StreamPoller({
    kinesis: clients.kinesis,
    streamName: names.stream,
    streamArn: context.streamArn,
    region,
    functionArn,
    batchSize: spec.batchSize,
    batchWindowMs: spec.batchWindowMs,
    pollIntervalMs: spec.pollIntervalMs ?? 1000,
    maxRetries: options.maxRetries ?? 5,
    retryBaseMs: options.retryBaseMs ?? 1000,
    checkpoints: await CheckpointStore.open(context.dataDir, spec.name),
    invoke,
    onFailure,
    log: (message, fields) => context.log(message, { consumer: spec.name, ...fields }),
  });
  await poller.start();
  cleanups.push(() => poller.stop());
}

/**
 * `POST /2015-03-31/functions/NAME/invocations` (RequestResponse) for one consumer, answering as
 * Lambda does: 200 with the handler's response, or 200 with `X-Amz-Function-Error: Unhandled`
 * and `{errorType, errorMessage}` when it throws; 400 for a body that is not a Kinesis event.
 */
function invocationRoute(spec: ConsumerSpec): ProxyHandler {
  return async (request) => {
    let event: unknown;
    try {
      event = JSON.parse(request.body ?? '');
    } catch {
      event = undefined;
    }
    const records = (event as { Records?: unknown } | undefined)?.Records;
    if (!Array.isArray(records) || records.length === 0) {
      return {
        statusCode: 400,
        body: JSON.stringify({
          __type: 'InvalidRequestContentException',
          message: `body: a Kinesis event {"Records":[...]} with at least one record is required by ${spec.name}`,
        }),
      };
    }
    try {
      const response = await spec.invoke(event as KinesisStreamEvent);
      return { statusCode: 200, body: JSON.stringify(response ?? null) };
    } catch (error) {
      return {
        statusCode: 200,
        headers: { 'X-Amz-Function-Error': 'Unhandled' },
        body: JSON.stringify({
          errorType: (error as Error).name,
          errorMessage: (error as Error).message,
        }),
      };
    }
  };
}

/** A periodic task; returns its cleanup, which waits for a run in progress. */
function schedule(name: string, intervalMs: number, task: () => Promise<void>, log: LogFn) {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = (): void => {
    running = task()
      .catch((error: unknown) => log('scheduled task failed', { task: name, error: String(error) }))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, intervalMs);
  return async (): Promise<void> => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
