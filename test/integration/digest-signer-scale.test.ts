/**
 * The digest chain outgrows nothing (see docs/guarantees.md#digest-chain): one period of
 * 50,000 log files signed against dynalite and s3rver — one digest listing each exactly once,
 * every chain-table item under DynamoDB's 400 KB, the digest validating — and a reservation
 * written in the layout before parts (candidates inline) still signed from after the upgrade.
 */
import '../fixtures/quiet-powertools';
import { mkdtempSync, rmSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { documentClient } from '../../lambda/adapters/dynamodb';
import {
  DynamoDigestChainStore,
  DynamoDigestManifest,
} from '../../lambda/adapters/dynamodb-digests';
import { MAX_ITEM_BYTES } from '../../lambda/adapters/dynamodb-limits';
import { LocalRsaSigner } from '../../lambda/adapters/local-signer';
import { S3DigestStore } from '../../lambda/adapters/s3-digests';
import { fingerprintOfPublicKey } from '../../lambda/core/digest-format';
import { signDueDigests } from '../../lambda/core/digest-signing';
import { validateLogs, type ValidationResult } from '../../lambda/core/digest-validate';
import type { ObjectReader } from '../../lambda/core/ports';
import { CHAIN_TABLE } from '../../lambda/core/tables';
import { DIGEST_CHAIN_TABLE, ensureChainTable } from '../../local/components/digest';
import { startRuntime, type Runtime } from '../../local/runtime';
import { clientsFor, destroyClients } from '../e2e/harness';
import { SCALE_ACCOUNT, signLargePeriod, type ScaleEndpoints } from '../fixtures/digest-scale';
import type { Clients } from '../../lambda/adapters/clients';

const FILES = 50_000;
const DYNALITE_FILES = 1_000;

let dataDir: string;
let runtime: Runtime;
let clients: Clients;
let signer: LocalRsaSigner;
let endpoints: ScaleEndpoints;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'opentrail-digest-scale-'));
  runtime = await startRuntime({ dataDir, port: 0, flushSeconds: 1, components: [] });
  clients = clientsFor(runtime.endpoints);
  await ensureChainTable(clients.dynamodb);
  signer = await LocalRsaSigner.open(join(dataDir, 'keys'));
  endpoints = {
    region: 'eu-north-1',
    s3: runtime.endpoints.s3,
    dynamodb: runtime.endpoints.dynamodb,
    bucket: runtime.endpoints.bucket,
    manifestTable: runtime.endpoints.manifestTable,
    accessKeyId: runtime.endpoints.accessKeyId,
    secretAccessKey: runtime.endpoints.secretAccessKey,
    chainTable: DIGEST_CHAIN_TABLE,
  };
});

afterAll(async () => {
  if (clients) destroyClients(clients);
  if (runtime) await runtime.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** An ObjectReader over objects held in memory (the log files were never uploaded). */
function memoryReader(objects: Map<string, { body: Buffer; metadata: Record<string, string> }>) {
  const reader: ObjectReader = {
    list: (_bucket, prefix) =>
      Promise.resolve([...objects.keys()].filter((k) => k.startsWith(prefix))),
    listFolders: (_bucket, prefix) =>
      Promise.resolve([
        ...new Set(
          [...objects.keys()]
            .filter((k) => k.startsWith(prefix) && k.indexOf('/', prefix.length) > 0)
            .map((k) => k.slice(0, k.indexOf('/', prefix.length) + 1)),
        ),
      ]),
    open: (_bucket, key) => {
      const o = objects.get(key);
      if (!o) return Promise.resolve(undefined);
      return Promise.resolve({
        body: (async function* () {
          yield o.body;
        })(),
        metadata: o.metadata,
      });
    },
  };
  return reader;
}

describe('digest signer at scale', () => {
  it(`signs one period of ${FILES.toLocaleString('en-US')} log files: one digest listing each once, every chain item under 400 KB, and it validates`, async () => {
    // The chain table on dynalite (the adapter under test), the manifest rows in memory:
    // dynalite serves a few hundred claims a second (the smaller test below claims for real).
    const run = await signLargePeriod({
      endpoints,
      files: FILES,
      trail: 'scale',
      signer,
      manifest: 'memory',
    });

    // One digest, every file listed exactly once, none other.
    expect(run.digests.map((d) => [d.logFiles, d.created])).toEqual([[FILES, true]]);
    const listed = run.digest.logFiles.map((f) => f.s3Object);
    expect(new Set(listed).size).toBe(FILES);
    expect([...listed].sort()).toEqual([...run.logFiles.keys()].sort());
    expect(run.cost.largestChainItemBytes).toBeLessThanOrEqual(MAX_ITEM_BYTES);
    expect(run.cost.dynamodbRequests['UpdateItem manifest']).toBe(FILES);
    expect(run.cost.kmsSignRequests).toBe(1);
    // One digest object, written once: S3 requests do not grow with the files it lists.
    expect(run.cost.s3Requests).toEqual({ ListObjectsV2: 1, PutObject: 1 });

    // The reservation reads back whole from its parts.
    const reservation = await new DynamoDigestChainStore(
      documentClient(clients.dynamodb),
      DIGEST_CHAIN_TABLE,
    ).getReservation(`scale#${SCALE_ACCOUNT}#${endpoints.region}`, Date.UTC(2026, 0, 1));
    expect(reservation?.candidates).toHaveLength(FILES);

    // validate-logs' core over the stored digest and the log files: all valid.
    const digestKey = run.digests[0]!.key;
    const stored = (await new S3DigestStore(clients.s3).getWithMetadata(
      endpoints.bucket,
      digestKey,
    ))!;
    const objects = new Map<string, { body: Buffer; metadata: Record<string, string> }>();
    objects.set(digestKey, { body: Buffer.from(stored.body), metadata: stored.metadata });
    for (const [key, body] of run.logFiles) objects.set(key, { body, metadata: {} });
    const der = createPublicKey({
      key: await signer.publicKeySpki(),
      format: 'der',
      type: 'spki',
    }).export({ type: 'pkcs1', format: 'der' });
    const invalid: ValidationResult[] = [];
    const summary = await validateLogs({
      reader: memoryReader(objects),
      bucket: endpoints.bucket,
      accounts: [SCALE_ACCOUNT],
      regions: [endpoints.region],
      trailName: 'scale',
      startMs: Date.UTC(2026, 0, 1),
      endMs: Date.UTC(2026, 0, 1, 1),
      nowMs: Date.UTC(2026, 0, 1, 2),
      publicKeys: new Map([[fingerprintOfPublicKey(der), der]]),
      onResult: (r) => {
        if (!r.valid) invalid.push(r);
      },
    });
    expect(invalid).toEqual([]);
    expect(summary.digests).toEqual({ valid: 1, invalid: 0 });
    expect(summary.logs).toEqual({ valid: FILES, invalid: 0 });
  }, 120_000);

  it(`signs one period of ${DYNALITE_FILES.toLocaleString('en-US')} log files with every manifest row and claim on dynalite`, async () => {
    const run = await signLargePeriod({
      endpoints,
      files: DYNALITE_FILES,
      trail: 'scale-dynalite',
      signer,
    });

    expect(run.digests.map((d) => [d.logFiles, d.created])).toEqual([[DYNALITE_FILES, true]]);
    const listed = run.digest.logFiles.map((f) => f.s3Object);
    expect([...new Set(listed)].sort()).toEqual([...run.logFiles.keys()].sort());
    expect(listed).toHaveLength(DYNALITE_FILES);
    expect(run.cost.dynamodbRequests['UpdateItem manifest']).toBe(DYNALITE_FILES);
  }, 60_000);

  it('a reservation stored before parts existed (candidates inline) is still signed from after the upgrade', async () => {
    const region = 'eu-south-1';
    const trail = 'legacy';
    const stream = `${trail}#${SCALE_ACCOUNT}#${region}`;
    const documents = documentClient(clients.dynamodb);
    const chain = new DynamoDigestChainStore(documents, DIGEST_CHAIN_TABLE);
    const startMs = Date.UTC(2026, 0, 1);
    await chain.register({ trail, account: SCALE_ACCOUNT, region, firstSeenMs: startMs });
    // The old layout: the candidates gzip'd inline in the reservation item.
    const key = `AWSLogs/${SCALE_ACCOUNT}/CloudTrail/${region}/2026/01/01/${SCALE_ACCOUNT}_CloudTrail_${region}_20260101T0000Z_legacy0000000001.json.gz`;
    const candidate = {
      bucket: endpoints.bucket,
      key,
      sha256: 'a'.repeat(64),
      oldestEventTime: '2026-01-01T00:00:00Z',
      newestEventTime: '2026-01-01T00:00:00Z',
    };
    const digestKey = `AWSLogs/${SCALE_ACCOUNT}/CloudTrail-Digest/${region}/2026/01/01/${SCALE_ACCOUNT}_CloudTrail-Digest_${region}_${trail}_${endpoints.region}_20260101T010000Z.json.gz`;
    await documents.send(
      new PutCommand({
        TableName: DIGEST_CHAIN_TABLE,
        Item: {
          [CHAIN_TABLE.partitionKey]: `res#${stream}`,
          [CHAIN_TABLE.sortKey]: String(startMs).padStart(13, '0'),
          endMs: startMs + 3_600_000,
          bucket: endpoints.bucket,
          key: digestKey,
          previous: null,
          candidatesGz: gzipSync(JSON.stringify([candidate])),
        },
      }),
    );
    await documents.send(
      new PutCommand({
        TableName: endpoints.manifestTable,
        Item: {
          pk: `${endpoints.bucket}/${key}`,
          ...candidate,
          trail,
          account: SCALE_ACCOUNT,
          region,
          recordCount: 1,
          state: 'delivered',
          stream,
          deliveredAt: new Date(startMs + 5000).toISOString(),
        },
      }),
    );

    const signed = await signDueDigests({
      trails: [{ name: trail, logFileValidation: true }],
      bucket: endpoints.bucket,
      homeRegion: endpoints.region,
      periodMs: 3_600_000,
      chain,
      manifest: new DynamoDigestManifest(documents, endpoints.manifestTable),
      objects: new S3DigestStore(clients.s3),
      signer,
      metrics: { count: () => undefined },
      now: () => startMs + 3_600_000 + 1,
    });

    expect(signed.map((d) => [d.key, d.logFiles, d.created])).toEqual([[digestKey, 1, true]]);
    expect((await chain.getHead(stream))?.key).toBe(digestKey);
  });
});
