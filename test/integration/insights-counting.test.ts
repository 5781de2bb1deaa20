/**
 * Insights counters through the packager with its real adapters (s3rver, dynalite): each
 * (eventID, contentHash) is counted once through retries, bisected retries, resends and
 * redrives, and once across trails. Counted on what the Insights table really holds: every
 * counter item, summed per (series, minute).
 */
import '../fixtures/quiet-powertools';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamEvent } from 'aws-lambda';
import type { Clients } from '../../lambda/adapters/clients';
import {
  documentClient,
  DynamoDedupStore,
  DynamoManifestStore,
} from '../../lambda/adapters/dynamodb';
import { DynamoInsightCountStore } from '../../lambda/adapters/insights-dynamodb';
import { S3ObjectStore } from '../../lambda/adapters/s3';
import type { TrailConfig } from '../../lambda/core/config';
import { packageBatch } from '../../lambda/core/packager';
import type { PackagerDeps } from '../../lambda/core/packager-types';
import type { ManifestStore, ObjectStore } from '../../lambda/core/ports';
import { toStreamBatch } from '../../lambda/handlers/packager';
import { ensureInsightsTable, LOCAL_INSIGHTS_TABLE } from '../../local/components/insights';
import { startRuntime, type Runtime } from '../../local/runtime';
import { clientsFor, destroyClients, listKeys } from '../e2e/harness';
import { batchOf } from '../fixtures/kinesis-events';
import { InjectedFault, MemoryMetrics } from '../fixtures/memory-ports';
import { completeRecord } from '../fixtures/records';

jest.setTimeout(60_000);

const SHARD = 'shardId-000000000000';
/** Arrival 2024-05-01T12:00:00Z; the events are of 11:59 (on time). */
const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);
const DAY_MS = 86_400_000;
const EVENTS = 30;
const NAMES = ['CreateUser', 'DeleteUser', 'AttachUserPolicy'];

interface Env {
  dataDir: string;
  runtime: Runtime;
  clients: Clients;
  deps: (overrides?: Partial<PackagerDeps>) => PackagerDeps;
}

let env: Env | undefined;

beforeEach(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'opentrail-insights-counting-'));
  const runtime = await startRuntime({ dataDir, port: 0, flushSeconds: 0.2, components: [] });
  const clients = clientsFor(runtime.endpoints);
  await ensureInsightsTable(clients.dynamodb);
  const documents = documentClient(clients.dynamodb);
  const { bucket, manifestTable, dedupTable } = runtime.endpoints;
  env = {
    dataDir,
    runtime,
    clients,
    deps: (overrides = {}) => ({
      trails: [{ name: 'main', prefix: 'main' }],
      bucket,
      objects: new S3ObjectStore(clients.s3),
      manifest: new DynamoManifestStore(documents, manifestTable),
      dedup: new DynamoDedupStore(documents, dedupTable),
      metrics: new MemoryMetrics(),
      dedupWindowMs: DAY_MS,
      now: Date.now,
      insightCounts: new DynamoInsightCountStore(documents, LOCAL_INSIGHTS_TABLE),
      ...overrides,
    }),
  };
});

afterEach(async () => {
  if (!env) return;
  destroyClients(env.clients);
  await env.runtime.close();
  rmSync(env.dataDir, { recursive: true, force: true });
  env = undefined;
});

/** 30 write calls at 11:59 over 3 eventNames, each with its own eventID. */
function texts(tag = 'ev'): string[] {
  return Array.from({ length: EVENTS }, (_, i) =>
    JSON.stringify(
      completeRecord({
        eventID: `${tag}-${i}`,
        eventTime: `2024-05-01T11:59:${String(i).padStart(2, '0')}Z`,
        eventName: NAMES[i % NAMES.length],
        readOnly: false,
      }),
    ),
  );
}

/** eventName → calls, over every counter item in the Insights table. */
async function storedCalls(): Promise<Record<string, number>> {
  const documents = documentClient(env!.clients.dynamodb);
  const calls: Record<string, number> = {};
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new ScanCommand({ TableName: LOCAL_INSIGHTS_TABLE, ExclusiveStartKey: start }),
    );
    for (const item of page.Items ?? []) {
      if (typeof item.k !== 'string') continue;
      const name = (JSON.parse(item.k) as { eventName: string }).eventName;
      calls[name] = (calls[name] ?? 0) + Number(item.n);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return calls;
}

const EXPECTED = { CreateUser: 10, DeleteUser: 10, AttachUserPolicy: 10 };

/** Fails the first markDelivered call, before it takes effect (the file is written and counted). */
function failingFirstDelivery(store: ManifestStore): ManifestStore {
  let failed = false;
  return {
    reserve: (entry) => store.reserve(entry),
    markDelivered: (bucket, key, at) => {
      if (!failed) {
        failed = true;
        return Promise.reject(new InjectedFault('injected failure before markDelivered'));
      }
      return store.markDelivered(bucket, key, at);
    },
    getMany: (keys) => store.getMany(keys),
  };
}

/** The object is written, then the call fails: the batch stops before it counts. */
function failingAfterFirstWrite(store: ObjectStore): ObjectStore {
  let failed = false;
  return {
    putIfAbsent: async (object) => {
      const outcome = await store.putIfAbsent(object);
      if (!failed) {
        failed = true;
        throw new InjectedFault('injected failure after the S3 write');
      }
      return outcome;
    },
    get: (bucket, key) => store.get(bucket, key),
  };
}

async function run(event: KinesisStreamEvent, deps: PackagerDeps): Promise<void> {
  await packageBatch(toStreamBatch(event), deps);
}

describe('Insights counters hold each event once', () => {
  it('a batch retried after it counted (markDelivered failed) counts once', async () => {
    const event = batchOf(SHARD, texts(), 0, T0);
    const deps = env!.deps();
    await expect(
      run(event, { ...deps, manifest: failingFirstDelivery(deps.manifest) }),
    ).rejects.toThrow(InjectedFault);
    expect(await storedCalls()).toEqual(EXPECTED);

    await run(event, deps);

    expect(await storedCalls()).toEqual(EXPECTED);
  });

  it.each([
    ['after it counted', 'counted'],
    ['after the S3 write, before it counted', 'written'],
  ])('a batch that stopped %s and is retried bisected counts once', async (_, stoppedAt) => {
    const all = texts();
    const deps = env!.deps();
    const faulty =
      stoppedAt === 'counted'
        ? { ...deps, manifest: failingFirstDelivery(deps.manifest) }
        : { ...deps, objects: failingAfterFirstWrite(deps.objects) };
    await expect(run(batchOf(SHARD, all, 0, T0), faulty)).rejects.toThrow(InjectedFault);

    await run(batchOf(SHARD, all.slice(0, 15), 0, T0), deps);
    await run(batchOf(SHARD, all.slice(15), 15, T0 + 15), deps);

    expect(await storedCalls()).toEqual(EXPECTED);
    expect(await listKeys(env!.clients, env!.runtime.endpoints.bucket, 'main/')).toHaveLength(1);
  });

  it('a resend of the same events (new sequence numbers, within the dedup window) counts once', async () => {
    const deps = env!.deps();
    await run(batchOf(SHARD, texts(), 0, T0), deps);

    await run(batchOf(SHARD, texts(), 100, T0 + 30_000), deps);

    expect(await storedCalls()).toEqual(EXPECTED);
  });

  it.each([
    ['after it counted', 'counted'],
    ['before it counted', 'written'],
  ])('a batch given up %s and redriven later counts once', async (_, stoppedAt) => {
    const event = batchOf(SHARD, texts(), 0, T0);
    const deps = env!.deps();
    // Given up: every attempt of the mapping failed the same way.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const faulty =
        stoppedAt === 'counted'
          ? { ...deps, manifest: failingFirstDelivery(deps.manifest) }
          : { ...deps, objects: failingAfterFirstWrite(deps.objects) };
      await expect(run(event, faulty)).rejects.toThrow(InjectedFault);
    }

    await run(event, deps);

    expect(await storedCalls()).toEqual(EXPECTED);
  });

  it('events kept by two trails count once (for the first trail that keeps them)', async () => {
    const trails: TrailConfig[] = [
      { name: 'first', prefix: 'one' },
      { name: 'second', prefix: 'two' },
    ];
    await run(batchOf(SHARD, texts(), 0, T0), env!.deps({ trails }));

    expect(await storedCalls()).toEqual(EXPECTED);
    expect(await listKeys(env!.clients, env!.runtime.endpoints.bucket, 'two/')).toHaveLength(1);
  });

  it('a batch with new events after counted ones adds only the new ones', async () => {
    const deps = env!.deps();
    await run(batchOf(SHARD, texts(), 0, T0), deps);

    await run(batchOf(SHARD, texts('more'), 30, T0 + 1000), deps);

    expect(await storedCalls()).toEqual({ CreateUser: 20, DeleteUser: 20, AttachUserPolicy: 20 });
  });
});
