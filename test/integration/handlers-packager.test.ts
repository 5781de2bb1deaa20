/**
 * The packager handler with its real adapters (S3ObjectStore on s3rver, DynamoManifestStore and
 * DynamoDedupStore on dynalite), fed hand-built Lambda Kinesis events. Faults are injected by
 * wrapping a port; everything else is the emulators. The buckets and tables come from
 * startRuntime (with no components), so they are created exactly as the runtime creates them.
 */
import '../fixtures/quiet-powertools';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { KinesisStreamEvent } from 'aws-lambda';
import type { Clients } from '../../lambda/adapters/clients';
import {
  documentClient,
  DynamoDedupStore,
  DynamoManifestStore,
} from '../../lambda/adapters/dynamodb';
import { S3ObjectStore } from '../../lambda/adapters/s3';
import { DEFAULT_TRAIL } from '../../lambda/core/config';
import { readGzipMember, sha256Hex } from '../../lambda/core/logfile';
import { packageBatch } from '../../lambda/core/packager';
import type { PackagerDeps } from '../../lambda/core/packager-types';
import type { ManifestEntry, ManifestStore, ObjectStore } from '../../lambda/core/ports';
import { createPackagerHandler, toStreamBatch } from '../../lambda/handlers/packager';
import { startRuntime, type Runtime } from '../../local/runtime';
import { clientsFor, destroyClients, getObject, listKeys, manifestRows } from '../e2e/harness';
import { checkLogFiles } from '../support/log-check';
import { batchOf } from '../fixtures/kinesis-events';
import {
  InjectedFault,
  MemoryDedupStore,
  MemoryManifestStore,
  MemoryMetrics,
  MemoryObjectStore,
} from '../fixtures/memory-ports';
import { completeRecord } from '../fixtures/records';

jest.setTimeout(40_000);

const SHARD = 'shardId-000000000000';
/** Arrival time of the first batch: 2024-05-01T12:00:00Z. Keys carry it, never the clock. */
const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);
const DAY_MS = 86_400_000;

interface Env {
  readonly dataDir: string;
  readonly runtime: Runtime;
  readonly clients: Clients;
  readonly bucket: string;
  readonly metrics: MemoryMetrics;
  /** Real adapters over the emulators, with `overrides` (e.g. a faulty port). */
  readonly deps: (overrides?: Partial<PackagerDeps>) => PackagerDeps;
}

let env: Env | undefined;

async function start(): Promise<Env> {
  const dataDir = mkdtempSync(join(tmpdir(), 'opentrail-handlers-packager-'));
  const runtime = await startRuntime({
    dataDir,
    port: 0,
    flushSeconds: 0.2,
    retryBaseMs: 10,
    components: [],
  });
  const clients = clientsFor(runtime.endpoints);
  const documents = documentClient(clients.dynamodb);
  const metrics = new MemoryMetrics();
  const { bucket, manifestTable, dedupTable } = runtime.endpoints;
  env = {
    dataDir,
    runtime,
    clients,
    bucket,
    metrics,
    deps: (overrides = {}) => ({
      trails: [DEFAULT_TRAIL],
      bucket,
      objects: new S3ObjectStore(clients.s3),
      manifest: new DynamoManifestStore(documents, manifestTable),
      dedup: new DynamoDedupStore(documents, dedupTable),
      metrics,
      dedupWindowMs: DAY_MS,
      now: Date.now,
      ...overrides,
    }),
  };
  return env;
}

afterEach(async () => {
  if (!env) return;
  const { clients, runtime, dataDir } = env;
  env = undefined;
  destroyClients(clients);
  await runtime.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A stored record (as ingest leaves it: every normalised field present). */
function text(eventID: string, overrides: Record<string, unknown> = {}): string {
  return JSON.stringify(
    completeRecord({ eventID, recipientAccountId: '111111111111', ...overrides }),
  );
}

/** 12 records over 3 accounts × 2 regions: 6 files. */
function spreadTexts(tag: string): string[] {
  return Array.from({ length: 12 }, (_, i) =>
    text(`${tag}-${i}`, {
      recipientAccountId: `11111111111${i % 3}`,
      awsRegion: i % 2 ? 'eu-west-1' : 'us-east-1',
    }),
  );
}

/** What the same event gives with in-memory ports: the keys and bytes a correct run writes. */
async function reference(event: KinesisStreamEvent): Promise<Map<string, Buffer>> {
  const objects = new MemoryObjectStore();
  await packageBatch(toStreamBatch(event), {
    trails: [DEFAULT_TRAIL],
    bucket: env!.bucket,
    objects,
    manifest: new MemoryManifestStore(),
    dedup: new MemoryDedupStore(),
    metrics: new MemoryMetrics(),
    dedupWindowMs: DAY_MS,
    now: () => T0,
  });
  return new Map(
    [...objects.objects].map(([id, body]) => [id.slice(env!.bucket.length + 1), Buffer.from(body)]),
  );
}

async function bucketObjects(): Promise<Map<string, Buffer>> {
  const { clients, bucket } = env!;
  const keys = await listKeys(clients, bucket);
  return new Map(
    await Promise.all(
      keys.map(async (key) => [key, await getObject(clients, bucket, key)] as const),
    ),
  );
}

function recordsOf(gzip: Buffer): Record<string, unknown>[] {
  return (
    JSON.parse(readGzipMember(gzip).data.toString('utf8')) as { Records: Record<string, unknown>[] }
  ).Records;
}

/** eventID → the contents stored for it (record JSON), over every object. */
function storedByEventId(objects: Map<string, Buffer>): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const body of objects.values()) {
    for (const r of recordsOf(body))
      found.set(String(r.eventID), [...(found.get(String(r.eventID)) ?? []), JSON.stringify(r)]);
  }
  return found;
}

/** Succeeds the `nth` write, then throws: the object exists, the caller sees a failure. */
function failingAfterNthWrite(store: ObjectStore, nth: number): ObjectStore {
  let calls = 0;
  return {
    putIfAbsent: async (object) => {
      const outcome = await store.putIfAbsent(object);
      if (++calls === nth)
        throw new InjectedFault(
          `injected failure after writing s3://${object.bucket}/${object.key}`,
        );
      return outcome;
    },
    get: (bucket, key) => store.get(bucket, key),
  };
}

/** Throws on the first call of `method`, after the call took effect (if `after`) or before. */
function failingOnce(
  store: ManifestStore,
  method: 'reserve' | 'markDelivered',
  after: boolean,
): ManifestStore {
  let failed = false;
  const fail = (): void => {
    if (failed) return;
    failed = true;
    throw new InjectedFault(`injected failure in ${method}`);
  };
  return {
    reserve: async (entry) => {
      if (method === 'reserve' && !after) fail();
      await store.reserve(entry);
      if (method === 'reserve' && after) fail();
    },
    markDelivered: async (bucket, key, at) => {
      if (method === 'markDelivered' && !after) fail();
      await store.markDelivered(bucket, key, at);
      if (method === 'markDelivered' && after) fail();
    },
    getMany: (objects) => store.getMany(objects),
  };
}

describe('a batch retried after a failure resolves to the same keys and byte-identical objects, all delivered', () => {
  const faults: [string, (deps: PackagerDeps) => Partial<PackagerDeps>][] = [
    [
      'the 2nd S3 write succeeded, then threw',
      (deps) => ({ objects: failingAfterNthWrite(deps.objects, 2) }),
    ],
    [
      'marking a written file delivered threw before the update',
      (deps) => ({ manifest: failingOnce(deps.manifest, 'markDelivered', false) }),
    ],
    [
      'marking a written file delivered threw after the update',
      (deps) => ({ manifest: failingOnce(deps.manifest, 'markDelivered', true) }),
    ],
    [
      'the first manifest reserve threw (dedup claims already written)',
      (deps) => ({ manifest: failingOnce(deps.manifest, 'reserve', false) }),
    ],
  ];

  test.each(faults.map(([name, inject]) => ({ name, inject })))('$name', async ({ inject }) => {
    // Arrange
    const { deps, metrics } = await start();
    const event = batchOf(SHARD, spreadTexts('retry'), 1, T0);
    const expected = await reference(event);
    const healthy = deps();

    // Act: the first attempt fails, the retry (same event) succeeds.
    await expect(createPackagerHandler({ ...healthy, ...inject(healthy) })(event)).rejects.toThrow(
      InjectedFault,
    );
    const afterFailure = await bucketObjects();
    await createPackagerHandler(healthy)(event);
    const afterRetry = await bucketObjects();

    // Assert: same keys, same bytes as a clean run; nothing written first was changed.
    expect([...afterRetry.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [key, body] of afterRetry)
      expect({ key, same: body.equals(expected.get(key)!) }).toEqual({ key, same: true });
    for (const [key, body] of afterFailure)
      expect({ key, unchanged: body.equals(afterRetry.get(key)!) }).toEqual({
        key,
        unchanged: true,
      });
    // Every record once: the retry did not take its own records for duplicates.
    const stored = storedByEventId(afterRetry);
    expect([...stored.keys()].sort()).toEqual(
      Array.from({ length: 12 }, (_, i) => `retry-${i}`).sort(),
    );
    expect([...stored.values()].every((copies) => copies.length === 1)).toBe(true);
    expect(metrics.total('DuplicatesDropped')).toBe(0);
    // The manifest ends with every object delivered, nothing else, hashes matching.
    const rows = await manifestRows(env!.clients, env!.runtime.endpoints.manifestTable);
    expect(
      rows
        .map((r) => ({ key: r.key, state: r.state, sha256: r.sha256 }))
        .sort((a, b) => (a.key < b.key ? -1 : 1)),
    ).toEqual(
      [...expected]
        .map(([key, body]) => ({
          key,
          state: 'delivered',
          sha256: sha256Hex(readGzipMember(body).data),
        }))
        .sort((a, b) => (a.key < b.key ? -1 : 1)),
    );
    expect((await checkLogFiles(env!.clients, env!.runtime.endpoints)).problems).toEqual([]);
  });

  test('the S3 fault really came after a write: the first attempt left objects behind', async () => {
    const { deps } = await start();
    const event = batchOf(SHARD, spreadTexts('left'), 1, T0);
    const healthy = deps({ concurrency: 1 });

    await expect(
      createPackagerHandler({ ...healthy, objects: failingAfterNthWrite(healthy.objects, 2) })(
        event,
      ),
    ).rejects.toThrow(InjectedFault);

    const afterFailure = await bucketObjects();
    expect(afterFailure.size).toBe(2);
    // No orphan even mid-batch: each object has its manifest row; the one written just before
    // the fault is still pending.
    const rows = await manifestRows(env!.clients, env!.runtime.endpoints.manifestTable);
    const states = [...afterFailure.keys()]
      .map((key) => rows.find((r) => r.key === key)?.state)
      .sort();
    expect(states).toEqual(['delivered', 'pending']);
  });
});

test('a resend of identical events in a later batch is stored once and counted as DuplicatesDropped', async () => {
  // Arrange
  const { deps, metrics } = await start();
  const handler = createPackagerHandler(deps());
  const texts = Array.from({ length: 5 }, (_, i) => text(`resend-${i}`));
  await handler(batchOf(SHARD, texts, 1, T0));
  const afterFirst = await bucketObjects();

  // Act: the same five a minute later in another batch, with one new event.
  await handler(batchOf(SHARD, [...texts, text('resend-new')], 100, T0 + 60_000));

  // Assert
  const afterSecond = await bucketObjects();
  const stored = storedByEventId(afterSecond);
  expect([...stored].map(([id, copies]) => [id, copies.length]).sort()).toEqual(
    [...texts.map((_, i) => [`resend-${i}`, 1]), ['resend-new', 1]].sort(),
  );
  expect(metrics.total('DuplicatesDropped')).toBe(5);
  expect(afterSecond.size).toBe(afterFirst.size + 1);
  for (const [key, body] of afterFirst) expect(afterSecond.get(key)?.equals(body)).toBe(true);
});

test('a forged record reusing a stored eventID is kept beside the original in a later file and counted as DedupConflicts', async () => {
  // Arrange
  const { deps, metrics } = await start();
  const handler = createPackagerHandler(deps());
  const original = text('shared-id', { eventName: 'ListUsers' });
  const forged = text('shared-id', { eventName: 'DeleteTrail', sourceIPAddress: '203.0.113.9' });
  await handler(batchOf(SHARD, [original], 1, T0));
  const [firstKey, firstBody] = [...(await bucketObjects())][0]!;

  // Act
  await handler(batchOf(SHARD, [forged], 2, T0 + 60_000));

  // Assert: both contents stored, the original's file untouched, the forged one in a later file.
  const objects = await bucketObjects();
  expect(objects.size).toBe(2);
  expect(objects.get(firstKey)!.equals(firstBody)).toBe(true);
  const [laterKey, laterBody] = [...objects].find(([key]) => key !== firstKey)!;
  expect(laterKey > firstKey).toBe(true);
  expect(recordsOf(laterBody).map((r) => JSON.stringify(r))).toEqual([forged]);
  expect(storedByEventId(objects).get('shared-id')?.sort()).toEqual([original, forged].sort());
  expect(metrics.total('DedupConflicts')).toBe(1);
  expect(metrics.total('DuplicatesDropped')).toBe(0);

  // And neither content hides a later resend of the other: both resends are plain duplicates.
  await handler(batchOf(SHARD, [original, forged], 3, T0 + 120_000));
  expect((await bucketObjects()).size).toBe(2);
  expect(metrics.total('DuplicatesDropped')).toBe(2);
  expect(metrics.total('DedupConflicts')).toBe(1);
});

describe('conditional writes hold on the emulators', () => {
  test('an object already under a planned key with other content fails the batch and is never overwritten', async () => {
    // Arrange: another content planted under the key the batch will use.
    const { deps, clients, bucket } = await start();
    const event = batchOf(SHARD, [text('planted')], 1, T0);
    const [plannedKey] = [...(await reference(event)).keys()];
    const planted = gzipSync(Buffer.from('{"Records":[]}'));
    await clients.s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: plannedKey!, Body: planted }),
    );
    const handler = createPackagerHandler(deps());

    // Act / Assert: every attempt fails loudly, the planted object stays as it was.
    await expect(handler(event)).rejects.toThrow(/exists with other content/);
    await expect(handler(event)).rejects.toThrow(/exists with other content/);
    expect((await getObject(clients, bucket, plannedKey!)).equals(planted)).toBe(true);
    const rows = await manifestRows(clients, env!.runtime.endpoints.manifestTable);
    expect(rows.filter((r) => r.state === 'delivered')).toEqual([]);
  });

  test('racing creates of one key on s3rver: exactly one is created, the others see it exists', async () => {
    const { clients, bucket } = await start();
    const store = new S3ObjectStore(clients.s3);
    const bodies = Array.from({ length: 8 }, (_, i) => Buffer.from(`body ${i}`));

    const outcomes = await Promise.all(
      bodies.map((body) =>
        store.putIfAbsent({
          bucket,
          key: 'race/one-key.json',
          body,
          contentType: 'application/json',
        }),
      ),
    );

    expect(outcomes.filter((o) => o === 'created')).toHaveLength(1);
    const winner = bodies[outcomes.indexOf('created')]!;
    expect(Buffer.from((await store.get(bucket, 'race/one-key.json'))!).equals(winner)).toBe(true);
  });
});

describe("the manifest's reserve on dynalite", () => {
  const entry = (sha256: string): ManifestEntry => ({
    bucket: 'opentrail-logs',
    key: 'AWSLogs/111111111111/CloudTrail/us-east-1/2024/05/01/x.json.gz',
    trail: 'opentrail',
    account: '111111111111',
    region: 'us-east-1',
    sha256,
    oldestEventTime: '2024-05-01T11:59:00Z',
    newestEventTime: '2024-05-01T11:59:00Z',
    recordCount: 1,
  });
  const A = 'a'.repeat(64);
  const B = 'b'.repeat(64);

  test('refuses a second SHA-256 for one key, before and after delivery, and keeps the first row', async () => {
    // Arrange
    const { clients, runtime } = await start();
    const manifest = new DynamoManifestStore(
      documentClient(clients.dynamodb),
      runtime.endpoints.manifestTable,
    );
    await manifest.reserve(entry(A));

    // Act / Assert
    await expect(manifest.reserve(entry(A))).resolves.toBeUndefined();
    await expect(manifest.reserve(entry(B))).rejects.toThrow(/two contents/);
    await manifest.markDelivered(entry(A).bucket, entry(A).key, '2024-05-01T12:00:00.000Z');
    await expect(manifest.reserve(entry(B))).rejects.toThrow(/two contents/);
    await manifest.markDelivered(entry(A).bucket, entry(A).key, '2024-05-01T13:00:00.000Z');
    const rows = await manifest.getMany([{ bucket: entry(A).bucket, key: entry(A).key }]);
    expect(rows).toEqual([
      expect.objectContaining({
        sha256: A,
        state: 'delivered',
        deliveredAt: '2024-05-01T12:00:00.000Z',
      }),
    ]);
  });

  test('racing reserves of one key with different SHA-256s: exactly one wins', async () => {
    const { clients, runtime } = await start();
    const manifest = new DynamoManifestStore(
      documentClient(clients.dynamodb),
      runtime.endpoints.manifestTable,
    );
    const hashes = Array.from({ length: 8 }, (_, i) => String(i).repeat(64));

    const outcomes = await Promise.allSettled(hashes.map((sha) => manifest.reserve(entry(sha))));

    const winners = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [hashes[i]] : []));
    expect(winners).toHaveLength(1);
    expect(
      (await manifest.getMany([{ bucket: entry(A).bucket, key: entry(A).key }]))[0]?.sha256,
    ).toBe(winners[0]);
  });
});

test('over 1,000 log objects: listed page by page, every object is in the manifest and every delivered row has its object', async () => {
  // Arrange: 5 trails (each its own key prefix) × 5 accounts × 50 batches: 1,250 files in 25
  // folders (each batch's files get keys of their own, so batches share folders).
  const { deps, clients, runtime } = await start();
  const trails = Array.from({ length: 5 }, (_, t) => ({
    ...DEFAULT_TRAIL,
    name: `trail-${t}`,
    prefix: `p${t}`,
  }));
  const handler = createPackagerHandler(deps({ trails, concurrency: 8 }));
  const events = Array.from({ length: 50 }, (_, b) =>
    batchOf(
      `shardId-00000000000${b % 4}`,
      Array.from({ length: 5 }, (_, a) =>
        text(`many-${b}-${a}`, { recipientAccountId: `20000000000${a}` }),
      ),
      b * 10,
      T0 + b * 1000,
    ),
  );

  // Act: as Lambda does, shards in parallel, each shard's batches in order.
  await Promise.all(
    [0, 1, 2, 3].map(async (shard) => {
      for (const event of events.filter((_, b) => b % 4 === shard)) await handler(event);
    }),
  );

  // Assert
  const keys = await listKeys(clients, runtime.endpoints.bucket);
  expect(keys).toHaveLength(1_250);
  expect(new Set(keys).size).toBe(1_250);
  const rows = await manifestRows(clients, runtime.endpoints.manifestTable);
  const listed = new Set(keys);
  const inManifest = new Set(rows.map((r) => r.key));
  expect(keys.filter((key) => !inManifest.has(key))).toEqual([]);
  expect(rows.filter((r) => r.state !== 'delivered' || !listed.has(r.key))).toEqual([]);
});
