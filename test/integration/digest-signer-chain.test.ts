/**
 * The digest signer against the real emulators (s3rver, dynalite): racing signers, a log file
 * that becomes visible across a period boundary, an outage of three periods, a crash between
 * the digest write and the head move, and a chain head rebuilt from S3. Time is a fake clock;
 * the chain is checked with node:crypto against the signer's public key.
 */
import '../fixtures/quiet-powertools';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { generateKeyPairSync, sign } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { documentClient, DynamoManifestStore } from '../../lambda/adapters/dynamodb';
import {
  DynamoDigestChainStore,
  DynamoDigestManifest,
} from '../../lambda/adapters/dynamodb-digests';
import { LocalRsaSigner } from '../../lambda/adapters/local-signer';
import { S3DigestStore } from '../../lambda/adapters/s3-digests';
import type { TrailConfig } from '../../lambda/core/config';
import {
  fingerprintOfPublicKey,
  parseDigest,
  pkcs1FromSpki,
  serializeDigest,
  signingString,
  verifyDigestSignature,
  type DigestFile,
} from '../../lambda/core/digest-format';
import { DigestAdoptionError } from '../../lambda/core/digest-adoption';
import { signDueDigests } from '../../lambda/core/digest-signing';
import type { DigestSigningDeps } from '../../lambda/core/digest-signing-deps';
import { DigestKeyWindowError } from '../../lambda/core/digest-signing-keys';
import { encodeLogFile, sha256Hex } from '../../lambda/core/logfile';
import { CHAIN_TABLE } from '../../lambda/core/tables';
import { DIGEST_CHAIN_TABLE, ensureChainTable } from '../../local/components/digest';
import { startRuntime, type Runtime } from '../../local/runtime';
import { clientsFor, destroyClients, getObject, listKeys, runCli } from '../e2e/harness';
import { credentialsInEnv } from '../support/emulator-clients';
import type { Clients } from '../../lambda/adapters/clients';

const PERIOD_MS = 10_000;
const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);
const ACCOUNT = '111122223333';

let dataDir: string;
let runtime: Runtime;
let restoreEnv = (): void => undefined;
let clients: Clients;
let signer: LocalRsaSigner;
let bucket: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'opentrail-digest-chain-'));
  runtime = await startRuntime({ dataDir, port: 0, flushSeconds: 1, components: [] });
  clients = clientsFor(runtime.endpoints);
  // validate-logs --s3-endpoint signs with the standard chain: the run's key, in the environment.
  restoreEnv = credentialsInEnv(runtime.endpoints);
  bucket = runtime.endpoints.bucket;
  await ensureChainTable(clients.dynamodb);
  signer = await LocalRsaSigner.open(join(dataDir, 'keys'));
});

afterAll(async () => {
  restoreEnv();
  if (clients) destroyClients(clients);
  if (runtime) await runtime.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Each test uses its own trail and region, so its stream and chain are its own. */
function world(region: string) {
  const TRAIL: TrailConfig = { name: `audit-${region}`, logFileValidation: true };
  const { documents } = { documents: documentsOf() };
  const chain = new DynamoDigestChainStore(documents, DIGEST_CHAIN_TABLE);
  const manifest = new DynamoManifestStore(documents, runtime.endpoints.manifestTable);
  const objects = new S3DigestStore(clients.s3);
  const deps = (nowMs: number, extra: Partial<DigestSigningDeps> = {}): DigestSigningDeps => ({
    trails: [TRAIL],
    bucket,
    homeRegion: 'us-east-1',
    periodMs: PERIOD_MS,
    chain,
    manifest: new DynamoDigestManifest(documents, runtime.endpoints.manifestTable),
    objects,
    signer,
    metrics: { count: () => undefined },
    now: () => nowMs,
    ...extra,
  });
  /** A delivered log file (manifest row) with a key minute and a delivery time. */
  const deliver = async (name: string, deliveredMs: number): Promise<string> => {
    const key = `AWSLogs/${ACCOUNT}/CloudTrail/${region}/2026/01/01/${ACCOUNT}_CloudTrail_${region}_20260101T0000Z_${name.padEnd(16, 'x')}.json.gz`;
    const encoded = encodeLogFile([JSON.stringify({ eventID: name, awsRegion: region })]);
    await manifest.reserve({
      bucket,
      key,
      trail: TRAIL.name,
      account: ACCOUNT,
      region,
      sha256: encoded.sha256,
      oldestEventTime: '2025-12-31T23:59:00Z',
      newestEventTime: '2025-12-31T23:59:30Z',
      recordCount: 1,
    });
    await objects.putIfAbsent({ bucket, key, body: encoded.gzip, contentType: 'application/json' });
    await manifest.markDelivered(bucket, key, new Date(deliveredMs).toISOString());
    return key;
  };
  const register = (firstSeenMs: number) =>
    chain.register({ trail: TRAIL.name, account: ACCOUNT, region, firstSeenMs });
  return { chain, deps, deliver, register, stream: `${TRAIL.name}#${ACCOUNT}#${region}` };
}

function documentsOf() {
  return documentClient(clients.dynamodb);
}

interface StoredDigest {
  readonly key: string;
  readonly json: Buffer;
  readonly digest: DigestFile;
  readonly signature: string;
}

/** Every digest of a region, oldest first, each checked against the signer's key and its predecessor. */
async function checkedChain(
  region: string,
  signers: readonly LocalRsaSigner[] = [signer],
): Promise<StoredDigest[]> {
  const store = new S3DigestStore(clients.s3);
  const keys = await store.listKeys(bucket, `AWSLogs/${ACCOUNT}/CloudTrail-Digest/${region}/`);
  const byFingerprint = new Map<string, Buffer>();
  for (const s of signers) {
    const spki = await s.publicKeySpki();
    byFingerprint.set(fingerprintOfPublicKey(spki), pkcs1FromSpki(spki));
  }
  const out: StoredDigest[] = [];
  for (const key of keys) {
    const stored = (await store.getWithMetadata(bucket, key))!;
    const json = gunzipSync(stored.body);
    const digest = parseDigest(json);
    const signature = stored.metadata.signature!;
    expect(stored.metadata['signature-algorithm']).toBe('SHA256withRSA');
    expect(digest.digestS3Object).toBe(key);
    const text = signingString(digest, sha256Hex(json), digest.previousDigestSignature);
    const publicKey = byFingerprint.get(digest.digestPublicKeyFingerprint);
    expect(publicKey).toBeDefined();
    expect(verifyDigestSignature(text, signature, publicKey!)).toBe(true);
    const previous = out[out.length - 1];
    if (previous) {
      expect(digest.digestStartTime).toBe(previous.digest.digestEndTime);
      expect(digest.previousDigestS3Object).toBe(previous.key);
      expect(digest.previousDigestHashValue).toBe(sha256Hex(previous.json));
      expect(digest.previousDigestSignature).toBe(previous.signature);
    } else {
      expect(digest.previousDigestSignature).toBeNull();
    }
    out.push({ key, json, digest, signature });
  }
  return out;
}

function listed(chain: StoredDigest[]): string[] {
  return chain.flatMap((d) => d.digest.logFiles.map((f) => f.s3Object));
}

/** A gate: the first caller at `point` waits until `open()`; `reached` resolves when it arrives. */
function gate(point: 'after-read-head' | 'before-move-head') {
  let open!: () => void;
  let arrived!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (arrived = resolve));
  let used = false;
  return {
    open,
    reached,
    pause: async (at: string): Promise<void> => {
      if (at !== point || used) return;
      used = true;
      arrived();
      await opened;
    },
  };
}

describe('digest signer chain', () => {
  it.each([
    ['after-read-head', 'us-west-1'],
    ['before-move-head', 'us-west-2'],
  ] as const)(
    'two signers racing for one period (one paused %s) write one digest, and a file that shows up late lands in exactly one digest',
    async (point, region) => {
      const w = world(region);
      await w.register(T0 + 1000);
      const early = await w.deliver('early', T0 + 2000);
      const now = T0 + PERIOD_MS + 500;
      const pausing = gate(point);
      const slow = signDueDigests(w.deps(now, { pause: pausing.pause }));
      await pausing.reached;
      // The other signer has clients and stores of its own, as another process would.
      const other = clientsFor(runtime.endpoints);
      const otherDocuments = documentClient(other.dynamodb);
      const fast = await signDueDigests(
        w.deps(now, {
          chain: new DynamoDigestChainStore(otherDocuments, DIGEST_CHAIN_TABLE),
          manifest: new DynamoDigestManifest(otherDocuments, runtime.endpoints.manifestTable),
          objects: new S3DigestStore(other.s3),
        }),
      ).finally(() => destroyClients(other));
      // Delivered inside the first period, visible only after it was reserved and signed.
      const late = await w.deliver('late', T0 + PERIOD_MS - 100);
      pausing.open();
      const slowResult = await slow;

      // Either both wrote the same digest (one created it), or the second found it in S3
      // through the head rebuild; either way one object, for one key.
      const both = [...fast, ...slowResult];
      expect(new Set(both.map((d) => d.key)).size).toBe(1);
      expect(both.filter((d) => d.created)).toHaveLength(1);
      await signDueDigests(w.deps(T0 + 2 * PERIOD_MS + 500));

      const chain = await checkedChain(region);
      expect(chain.map((d) => [d.digest.digestStartTime, d.digest.digestEndTime])).toEqual([
        ['2026-01-01T00:00:00Z', '2026-01-01T00:00:10Z'],
        ['2026-01-01T00:00:10Z', '2026-01-01T00:00:20Z'],
      ]);
      expect(chain.map((d) => d.digest.logFiles.map((f) => f.s3Object))).toEqual([[early], [late]]);
      expect(listed(chain).sort()).toEqual([early, late].sort());
    },
  );

  it('writes the three periods missed during an outage in order, the empty one included', async () => {
    const region = 'eu-west-1';
    const w = world(region);
    await w.register(T0 + 500);
    const first = await w.deliver('first', T0 + 3000);
    const third = await w.deliver('third', T0 + 2 * PERIOD_MS + 3000);

    const result = await signDueDigests(w.deps(T0 + 3 * PERIOD_MS + 200));

    expect(result.map((d) => [d.endMs - T0, d.logFiles, d.created])).toEqual([
      [PERIOD_MS, 1, true],
      [2 * PERIOD_MS, 0, true],
      [3 * PERIOD_MS, 1, true],
    ]);
    const chain = await checkedChain(region);
    expect(chain.map((d) => d.digest.logFiles.map((f) => f.s3Object))).toEqual([
      [first],
      [],
      [third],
    ]);
    expect(chain[1]!.digest).toMatchObject({
      newestEventTime: null,
      oldestEventTime: null,
      logFiles: [],
    });
    expect(chain[0]!.digest.previousDigestS3Object).toBeNull();
  });

  it('after a crash between the digest write and the head move, the re-run reproduces the same bytes and moves the head', async () => {
    const region = 'eu-west-2';
    const w = world(region);
    await w.register(T0);
    await w.deliver('one', T0 + 1000);
    const crashing = Object.create(w.chain) as DynamoDigestChainStore;
    crashing.moveHead = () => Promise.reject(new Error('crash before the head moves'));
    await expect(signDueDigests(w.deps(T0 + PERIOD_MS + 1, { chain: crashing }))).rejects.toThrow(
      'crash before the head moves',
    );
    const before = await checkedChain(region);
    expect(await w.chain.getHead(w.stream)).toBeUndefined();

    // The state is gone too: the head is rebuilt from S3, and the next digest chains to it.
    const rerun = await signDueDigests(w.deps(T0 + PERIOD_MS + 1));
    expect(rerun).toEqual([]);
    expect((await w.chain.getHead(w.stream))?.key).toBe(before[0]!.key);
    const next = await signDueDigests(w.deps(T0 + 2 * PERIOD_MS + 1));
    expect(next.map((d) => d.created)).toEqual([true]);
    const after = await checkedChain(region);
    expect(after.map((d) => d.key)).toEqual([before[0]!.key, next[0]!.key]);
    expect(after[0]!.json.equals(before[0]!.json)).toBe(true);
  });

  it('a re-run of a reserved period after its head was lost rebuilds the same digest, byte for byte', async () => {
    const region = 'ap-south-1';
    const w = world(region);
    await w.register(T0);
    await w.deliver('a', T0 + 1000);
    await w.deliver('b', T0 + 2000);
    const [written] = await signDueDigests(w.deps(T0 + PERIOD_MS + 1));
    const stored = await checkedChain(region);
    // Lose the head only: the reservation and claims stay; the S3 listing names the newest digest.
    await documentsOf().send(
      new DeleteCommand({
        TableName: DIGEST_CHAIN_TABLE,
        Key: {
          [CHAIN_TABLE.partitionKey]: `head#${w.stream}`,
          [CHAIN_TABLE.sortKey]: CHAIN_TABLE.headSortKey,
        },
      }),
    );
    const crashing = Object.create(w.chain) as DynamoDigestChainStore;
    crashing.getHead = () => Promise.resolve(undefined);
    crashing.listStreams = () => w.chain.listStreams();
    // A signer that ignores S3 (as if it crashed before the head moved) re-does the period.
    const noListing = Object.create(new S3DigestStore(clients.s3)) as S3DigestStore;
    noListing.listKeys = () => Promise.resolve([]);
    const again = await signDueDigests(
      w.deps(T0 + PERIOD_MS + 1, { chain: crashing, objects: noListing, maxDigestsPerStream: 1 }),
    );
    expect(again.map((d) => [d.key, d.created])).toEqual([[written!.key, false]]);
    const reread = await checkedChain(region);
    expect(reread[0]!.json.equals(stored[0]!.json)).toBe(true);
    expect(reread[0]!.signature).toBe(stored[0]!.signature);
  });

  it('after a crash between the claims and the write, the re-run writes the digest with the same files', async () => {
    const region = 'sa-east-1';
    const w = world(region);
    await w.register(T0);
    const one = await w.deliver('one', T0 + 1000);
    const failing = Object.create(new S3DigestStore(clients.s3)) as S3DigestStore;
    failing.putIfAbsent = () => Promise.reject(new Error('crash before the write'));
    await expect(signDueDigests(w.deps(T0 + PERIOD_MS + 1, { objects: failing }))).rejects.toThrow(
      'crash before the write',
    );
    // Meanwhile another file arrives; it must not join the reserved digest.
    const two = await w.deliver('two', T0 + PERIOD_MS - 1);

    await signDueDigests(w.deps(T0 + 2 * PERIOD_MS + 1));

    const chain = await checkedChain(region);
    expect(chain.map((d) => d.digest.logFiles.map((f) => f.s3Object))).toEqual([[one], [two]]);
  });

  it('a chain that crosses a key change validates, each digest under the key its fingerprint names', async () => {
    const region = 'ca-central-1';
    const w = world(region);
    const next = await LocalRsaSigner.open(join(dataDir, 'keys-next'));
    await w.register(T0);
    await w.deliver('before', T0 + 1000);
    await signDueDigests(w.deps(T0 + 2 * PERIOD_MS + 1));
    // The key changes while a digest is written but its head not yet moved: the stored digest
    // (old key) is adopted rather than overwritten.
    const crashing = Object.create(w.chain) as DynamoDigestChainStore;
    crashing.moveHead = () => Promise.reject(new Error('crash before the head moves'));
    await expect(
      signDueDigests(w.deps(T0 + 3 * PERIOD_MS + 1, { chain: crashing })),
    ).rejects.toThrow('crash before the head moves');
    // The old key signed every digest up to the change (3 periods in), the new one after it.
    const change = {
      signer: next,
      signerValidFromMs: T0 + 3 * PERIOD_MS,
      previousKeys: [{ signer, validFromMs: 0, validUntilMs: T0 + 3 * PERIOD_MS }],
    };
    const adopted = await signDueDigests(w.deps(T0 + 3 * PERIOD_MS + 1, change));
    expect(adopted.map((d) => d.created)).toEqual([false]);
    await w.deliver('after', T0 + 3 * PERIOD_MS + 1000);
    await signDueDigests(w.deps(T0 + 5 * PERIOD_MS + 1, change));

    const chain = await checkedChain(region, [signer, next]);
    const oldPrint = fingerprintOfPublicKey(await signer.publicKeySpki());
    const newPrint = fingerprintOfPublicKey(await next.publicKeySpki());
    expect(chain.map((d) => d.digest.digestPublicKeyFingerprint)).toEqual([
      oldPrint,
      oldPrint,
      oldPrint,
      newPrint,
      newPrint,
    ]);

    // opentrail validate-logs agrees, given both public keys.
    const keyFiles = await Promise.all(
      [signer, next].map(async (s, i) => {
        const file = join(dataDir, `public-${i}.der`);
        await writeFile(file, await s.publicKeySpki());
        return file;
      }),
    );
    const validated = await runCli([
      'validate-logs',
      '--s3-endpoint',
      runtime.endpoints.s3,
      '--s3-bucket',
      bucket,
      '--trail-name',
      `audit-${region}`,
      '--account-id',
      ACCOUNT,
      '--region',
      region,
      '--start-time',
      '2026-01-01T00:00:00Z',
      '--end-time',
      '2026-01-01T00:00:50Z',
      ...keyFiles.flatMap((f) => ['--public-key', f]),
    ]);
    expect(validated.stdout).toContain('5/5 digest files valid');
    expect(validated.stdout).toContain('2/2 log files valid');
    expect(validated.code).toBe(0);
  });
});

/** Every chain-table item of one stream (its head and reservations), as a backup holds them. */
async function chainItems(stream: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for (const pk of [`head#${stream}`, `res#${stream}`]) {
    const page = await documentsOf().send(
      new QueryCommand({
        TableName: DIGEST_CHAIN_TABLE,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': CHAIN_TABLE.partitionKey },
        ExpressionAttributeValues: { ':pk': pk },
        ConsistentRead: true,
      }),
    );
    items.push(...(page.Items ?? []));
  }
  return items;
}

/** A point-in-time restore of the stream's chain state: now exactly `backup`. */
async function restoreChainItems(stream: string, backup: Record<string, unknown>[]) {
  for (const item of await chainItems(stream)) {
    await documentsOf().send(
      new DeleteCommand({
        TableName: DIGEST_CHAIN_TABLE,
        Key: {
          [CHAIN_TABLE.partitionKey]: item[CHAIN_TABLE.partitionKey],
          [CHAIN_TABLE.sortKey]: item[CHAIN_TABLE.sortKey],
        },
      }),
    );
  }
  for (const item of backup) {
    await documentsOf().send(new PutCommand({ TableName: DIGEST_CHAIN_TABLE, Item: item }));
  }
}

/** Every object under a region's log and digest folders: key → bytes. */
async function storedObjects(region: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const folder of ['CloudTrail', 'CloudTrail-Digest']) {
    for (const key of await listKeys(clients, bucket, `AWSLogs/${ACCOUNT}/${folder}/${region}/`)) {
      out.set(key, await getObject(clients, bucket, key));
    }
  }
  return out;
}

/** Every log file under the region's log prefix is listed by exactly one digest. */
async function expectEveryLogFileListedOnce(region: string, chain: StoredDigest[]) {
  const logKeys = await listKeys(clients, bucket, `AWSLogs/${ACCOUNT}/CloudTrail/${region}/`);
  expect(listed(chain).sort()).toEqual(logKeys.sort());
}

function validateCli(region: string, endSeconds: number, keyFiles: string[]) {
  return runCli([
    'validate-logs',
    '--s3-endpoint',
    runtime.endpoints.s3,
    '--s3-bucket',
    bucket,
    '--trail-name',
    `audit-${region}`,
    '--account-id',
    ACCOUNT,
    '--region',
    region,
    '--start-time',
    '2026-01-01T00:00:00Z',
    '--end-time',
    new Date(T0 + endSeconds * 1000).toISOString().replace('.000', ''),
    ...keyFiles.flatMap((f) => ['--public-key', f]),
  ]);
}

async function publicKeyFiles(signers: readonly LocalRsaSigner[]): Promise<string[]> {
  return Promise.all(
    signers.map(async (s) => {
      const file = join(dataDir, `public-${fingerprintOfPublicKey(await s.publicKeySpki())}.der`);
      await writeFile(file, await s.publicKeySpki());
      return file;
    }),
  );
}

describe('digest signer after a point-in-time restore of the chain table', () => {
  it('adopts the digests written after the restore point (each verified and linked), then continues the chain, and validate-logs passes', async () => {
    const region = 'eu-central-1';
    const w = world(region);
    await w.register(T0);
    await w.deliver('a', T0 + 1000);
    await signDueDigests(w.deps(T0 + PERIOD_MS + 1));
    const backup = await chainItems(w.stream);
    await w.deliver('b', T0 + PERIOD_MS + 1000);
    await signDueDigests(w.deps(T0 + 2 * PERIOD_MS + 1));
    await w.deliver('c', T0 + 2 * PERIOD_MS + 1000);
    await signDueDigests(w.deps(T0 + 3 * PERIOD_MS + 1));
    await restoreChainItems(w.stream, backup);
    await w.deliver('d', T0 + 3 * PERIOD_MS + 1000);

    const result = await signDueDigests(w.deps(T0 + 4 * PERIOD_MS + 1));

    expect(result.map((d) => [(d.endMs - T0) / PERIOD_MS, d.logFiles, d.created])).toEqual([
      [2, 1, false],
      [3, 1, false],
      [4, 1, true],
    ]);
    const chain = await checkedChain(region);
    expect(chain).toHaveLength(4);
    expect(chain.map((d) => d.digest.logFiles.length)).toEqual([1, 1, 1, 1]);
    await expectEveryLogFileListedOnce(region, chain);
    expect((await w.chain.getHead(w.stream))?.key).toBe(chain[3]!.key);
    const validated = await validateCli(region, 40, await publicKeyFiles([signer]));
    expect(validated.stdout).toContain('4/4 digest files valid');
    expect(validated.stdout).toContain('4/4 log files valid');
    expect(validated.code).toBe(0);
  });

  it.each([
    ['signed with a key that is no deployment key', 'forged', /is no deployment key/],
    [
      'signed with the deployment key but not linked to the digest before it',
      'unlinked',
      /does not link to it: previousDigestHashValue/,
    ],
  ] as const)(
    'refuses a newest digest %s: a clear error, nothing signed over it, and again on the next run',
    async (_, kind, message) => {
      const region = kind === 'forged' ? 'eu-west-3' : 'me-south-1';
      const w = world(region);
      await w.register(T0);
      await w.deliver('a', T0 + 1000);
      await signDueDigests(w.deps(T0 + PERIOD_MS + 1));
      const backup = await chainItems(w.stream);
      await w.deliver('b', T0 + PERIOD_MS + 1000);
      await signDueDigests(w.deps(T0 + 2 * PERIOD_MS + 1));
      const [, second] = await checkedChain(region);
      // A third digest appears in S3 that this deployment did not write.
      const key3 = second!.key.replace('T000020Z', 'T000030Z');
      const digest: DigestFile = {
        ...second!.digest,
        digestStartTime: second!.digest.digestEndTime,
        digestEndTime: '2026-01-01T00:00:30Z',
        digestS3Object: key3,
        previousDigestS3Object: second!.key,
        previousDigestHashValue: kind === 'unlinked' ? 'f'.repeat(64) : sha256Hex(second!.json),
        previousDigestSignature: second!.signature,
        logFiles: [],
        newestEventTime: null,
        oldestEventTime: null,
      };
      const forger =
        kind === 'forged' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : undefined;
      if (forger) {
        digest.digestPublicKeyFingerprint = fingerprintOfPublicKey(
          forger.publicKey.export({ type: 'spki', format: 'der' }),
        );
      }
      const json = serializeDigest(digest);
      const text = Buffer.from(
        signingString(digest, sha256Hex(json), digest.previousDigestSignature),
      );
      const signature = forger
        ? sign('sha256', text, forger.privateKey).toString('hex')
        : (await signer.sign(text)).toString('hex');
      await clients.s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key3,
          Body: gzipSync(json),
          Metadata: { signature, 'signature-algorithm': 'SHA256withRSA' },
        }),
      );
      await restoreChainItems(w.stream, backup);
      await w.deliver('c', T0 + 3 * PERIOD_MS + 1000);
      const before = await storedObjects(region);
      const headBefore = await w.chain.getHead(w.stream);

      for (const now of [T0 + 4 * PERIOD_MS + 1, T0 + 5 * PERIOD_MS + 1]) {
        const run = signDueDigests(w.deps(now));
        await expect(run).rejects.toThrow(DigestAdoptionError);
        await expect(run).rejects.toThrow(message);
        await expect(run).rejects.toThrow(key3);
      }

      const after = await storedObjects(region);
      expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
      for (const [key, bytes] of before) expect(after.get(key)!.equals(bytes)).toBe(true);
      expect(await w.chain.getHead(w.stream)).toEqual(headBefore);
    },
  );
});

describe('digest signer keys across a key change', () => {
  const ROTATION = T0 + 2 * PERIOD_MS;

  it('after an outage across a key change, signs each period with the key whose window contains its end, and validate-logs passes', async () => {
    const region = 'ap-northeast-1';
    const w = world(region);
    const next = await LocalRsaSigner.open(join(dataDir, 'keys-rotation'));
    await w.register(T0);
    for (const [i, name] of ['w', 'x', 'y', 'z'].entries()) {
      await w.deliver(name, T0 + i * PERIOD_MS + 1000);
    }

    // Nothing was signed during the outage; the key changed at ROTATION meanwhile.
    const result = await signDueDigests(
      w.deps(T0 + 4 * PERIOD_MS + 1, {
        signer: next,
        signerValidFromMs: ROTATION,
        previousKeys: [{ signer, validFromMs: 0, validUntilMs: ROTATION }],
      }),
    );

    expect(result.map((d) => d.created)).toEqual([true, true, true, true]);
    const chain = await checkedChain(region, [signer, next]);
    const oldPrint = fingerprintOfPublicKey(await signer.publicKeySpki());
    const newPrint = fingerprintOfPublicKey(await next.publicKeySpki());
    expect(chain.map((d) => [d.digest.digestEndTime, d.digest.digestPublicKeyFingerprint])).toEqual(
      [
        ['2026-01-01T00:00:10Z', oldPrint],
        ['2026-01-01T00:00:20Z', newPrint], // ends at the change: both windows hold it, the new key signs
        ['2026-01-01T00:00:30Z', newPrint],
        ['2026-01-01T00:00:40Z', newPrint],
      ],
    );
    await expectEveryLogFileListedOnce(region, chain);
    const validated = await validateCli(region, 40, await publicKeyFiles([signer, next]));
    expect(validated.stdout).toContain('4/4 digest files valid');
    expect(validated.code).toBe(0);
  });

  it('stops with a clear error, signing nothing, when no key window contains a due period’s end; resumes once the previous key is given', async () => {
    const region = 'ap-southeast-2';
    const w = world(region);
    const next = await LocalRsaSigner.open(join(dataDir, 'keys-rotation'));
    await w.register(T0);
    await w.deliver('early', T0 + 1000);
    const onlyNew = { signer: next, signerValidFromMs: ROTATION };

    const run = signDueDigests(w.deps(T0 + 3 * PERIOD_MS + 1, onlyNew));

    await expect(run).rejects.toThrow(DigestKeyWindowError);
    await expect(run).rejects.toThrow(
      /no signing key's validity window contains digestEndTime 2026-01-01T00:00:10Z of s3:\/\/.*_20260101T000010Z\.json\.gz/,
    );
    expect(
      await listKeys(clients, bucket, `AWSLogs/${ACCOUNT}/CloudTrail-Digest/${region}/`),
    ).toEqual([]);
    expect(await w.chain.getHead(w.stream)).toBeUndefined();

    const resumed = await signDueDigests(
      w.deps(T0 + 3 * PERIOD_MS + 1, {
        ...onlyNew,
        previousKeys: [{ signer, validFromMs: 0, validUntilMs: ROTATION }],
      }),
    );
    expect(resumed.map((d) => d.created)).toEqual([true, true, true]);
    const chain = await checkedChain(region, [signer, next]);
    await expectEveryLogFileListedOnce(region, chain);
  });
});
