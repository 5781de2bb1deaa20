/**
 * The signer use case over in-memory ports: what it signs and skips, early closes, the
 * never-overwrite rule, and the head rebuild. (Races and crashes against the emulators:
 * test/integration/digest-signer-chain.test.ts.)
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { parseDigest } from '../../lambda/core/digest-format';
import { DigestConflictError } from '../../lambda/core/digest-adoption';
import { signDueDigests } from '../../lambda/core/digest-signing';
import type { DigestSigningDeps } from '../../lambda/core/digest-signing-deps';
import type {
  DigestCandidate,
  DigestChainHead,
  DigestChainStore,
  DigestManifest,
  DigestObjectStore,
  DigestReservation,
  DigestStreamRef,
} from '../../lambda/core/ports';

const T0 = Date.UTC(2026, 0, 1);
const P = 60_000;
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

class MemoryChain implements DigestChainStore {
  streams: DigestStreamRef[] = [];
  heads = new Map<string, DigestChainHead>();
  reservations = new Map<string, DigestReservation>();
  register(s: DigestStreamRef) {
    if (
      !this.streams.some(
        (x) => x.trail === s.trail && x.account === s.account && x.region === s.region,
      )
    )
      this.streams.push(s);
    return Promise.resolve();
  }
  listStreams() {
    return Promise.resolve([...this.streams]);
  }
  getHead(id: string) {
    return Promise.resolve(this.heads.get(id));
  }
  moveHead(id: string, next: DigestChainHead, expected: number | undefined) {
    if (this.heads.get(id)?.endMs !== expected) return Promise.resolve(false);
    this.heads.set(id, next);
    return Promise.resolve(true);
  }
  getReservation(id: string, start: number) {
    return Promise.resolve(this.reservations.get(`${id}@${start}`));
  }
  reserve(r: DigestReservation) {
    const key = `${r.stream}@${r.startMs}`;
    if (!this.reservations.has(key)) this.reservations.set(key, r);
    return Promise.resolve(this.reservations.get(key)!);
  }
}

class MemoryManifest implements DigestManifest {
  rows: (DigestCandidate & { stream: string; deliveredAt: string; digest?: string })[] = [];
  unclaimed(stream: string, from: string, to: string) {
    return Promise.resolve(
      this.rows.filter(
        (r) => r.stream === stream && r.deliveredAt >= from && r.deliveredAt < to && !r.digest,
      ),
    );
  }
  claim(bucket: string, key: string, digestId: string) {
    const row = this.rows.find((r) => r.bucket === bucket && r.key === key)!;
    if (row.digest && row.digest !== digestId) return Promise.resolve(false);
    row.digest = digestId;
    return Promise.resolve(true);
  }
}

class MemoryObjects implements DigestObjectStore {
  objects = new Map<string, { body: Uint8Array; metadata: Record<string, string> }>();
  putIfAbsent(o: {
    bucket: string;
    key: string;
    body: Uint8Array;
    metadata?: Readonly<Record<string, string>>;
  }) {
    const id = `${o.bucket}/${o.key}`;
    if (this.objects.has(id)) return Promise.resolve('exists' as const);
    this.objects.set(id, { body: o.body, metadata: { ...o.metadata } });
    return Promise.resolve('created' as const);
  }
  getWithMetadata(bucket: string, key: string) {
    return Promise.resolve(this.objects.get(`${bucket}/${key}`));
  }
  listKeys(bucket: string, prefix: string) {
    return Promise.resolve(
      [...this.objects.keys()]
        .filter((id) => id.startsWith(`${bucket}/${prefix}`))
        .map((id) => id.slice(bucket.length + 1))
        .sort(),
    );
  }
}

function setup(nowMs: number) {
  const chain = new MemoryChain();
  const manifest = new MemoryManifest();
  const objects = new MemoryObjects();
  const deps = (now = nowMs, extra: Partial<DigestSigningDeps> = {}): DigestSigningDeps => ({
    trails: [
      { name: 'on', logFileValidation: true },
      { name: 'off', logFileValidation: false },
    ],
    bucket: 'logs',
    homeRegion: 'us-east-1',
    periodMs: P,
    chain,
    manifest,
    objects,
    signer: {
      keyId: 'k',
      sign: (m) => Promise.resolve(sign('sha256', m, privateKey)),
      publicKeySpki: () => Promise.resolve(publicKey.export({ type: 'spki', format: 'der' })),
    },
    metrics: { count: () => undefined },
    now: () => now,
    ...extra,
  });
  return { chain, manifest, objects, deps };
}

describe('signDueDigests', () => {
  it('signs streams of validated trails only', async () => {
    const w = setup(T0 + P + 1);
    await w.chain.register({ trail: 'on', account: '111111111111', region: 'r1', firstSeenMs: T0 });
    await w.chain.register({
      trail: 'off',
      account: '111111111111',
      region: 'r1',
      firstSeenMs: T0,
    });
    const result = await signDueDigests(w.deps());
    expect(result.map((d) => d.stream)).toEqual(['on#111111111111#r1']);
  });

  it('closes the open period at the given second, then the next period runs to the boundary', async () => {
    const w = setup(T0 + 20_500);
    await w.chain.register({ trail: 'on', account: '111111111111', region: 'r1', firstSeenMs: T0 });
    const early = await signDueDigests(w.deps(), { closeAtMs: T0 + 20_500 });
    expect(early.map((d) => [d.startMs - T0, d.endMs - T0])).toEqual([[0, 20_000]]);
    const regular = await signDueDigests(w.deps(T0 + P));
    expect(regular.map((d) => [d.startMs - T0, d.endMs - T0])).toEqual([[20_000, P]]);
  });

  it('writes at most maxDigestsPerStream in one run and continues in order on the next', async () => {
    const w = setup(T0 + 5 * P);
    await w.chain.register({ trail: 'on', account: '111111111111', region: 'r1', firstSeenMs: T0 });
    const first = await signDueDigests(w.deps(undefined, { maxDigestsPerStream: 2 }));
    const rest = await signDueDigests(w.deps());
    expect([...first, ...rest].map((d) => (d.endMs - T0) / P)).toEqual([1, 2, 3, 4, 5]);
  });

  it('never overwrites: a foreign object at the digest key fails the run loudly', async () => {
    const w = setup(T0 + P);
    await w.chain.register({ trail: 'on', account: '111111111111', region: 'r1', firstSeenMs: T0 });
    const key =
      'AWSLogs/111111111111/CloudTrail-Digest/r1/2026/01/01/111111111111_CloudTrail-Digest_r1_on_us-east-1_20260101T000100Z.json.gz';
    await w.objects.putIfAbsent({ bucket: 'logs', key, body: gzipSync('{"forged":true}') });
    await expect(signDueDigests(w.deps())).rejects.toBeInstanceOf(DigestConflictError);
    expect(gunzipSync(w.objects.objects.get(`logs/${key}`)!.body).toString()).toBe(
      '{"forged":true}',
    );
    expect(w.chain.heads.size).toBe(0);
  });

  it('never adopts a stored digest whose bytes are ours but whose signature is not', async () => {
    const w = setup(T0 + P);
    await w.chain.register({ trail: 'on', account: '111111111111', region: 'r1', firstSeenMs: T0 });
    const [written] = await signDueDigests(w.deps());
    // The signature metadata is replaced, the head lost, and the listing misses the object.
    const stored = w.objects.objects.get(`logs/${written!.key}`)!;
    stored.metadata.signature = 'ab'.repeat(256);
    w.chain.heads.clear();
    w.objects.listKeys = () => Promise.resolve([]);

    await expect(signDueDigests(w.deps())).rejects.toThrow(
      /exists with other content or signature than its reservation gives/,
    );
    expect(w.chain.heads.size).toBe(0);
  });

  it('a file claimed by an earlier digest is not listed again by a later reservation', async () => {
    const w = setup(T0 + P);
    await w.chain.register({ trail: 'on', account: '111111111111', region: 'r1', firstSeenMs: T0 });
    w.manifest.rows.push({
      stream: 'on#111111111111#r1',
      bucket: 'logs',
      key: 'a.json.gz',
      sha256: 'a'.repeat(64),
      oldestEventTime: '2026-01-01T00:00:00Z',
      newestEventTime: '2026-01-01T00:00:01Z',
      deliveredAt: new Date(T0 + 1000).toISOString(),
      digest: 'logs/some-other-digest',
    });
    const [digest] = await signDueDigests(w.deps());
    const stored = parseDigest(gunzipSync(w.objects.objects.get(`logs/${digest!.key}`)!.body));
    expect(stored.logFiles).toEqual([]);
  });
});
