/**
 * The digest signer use case (docs/formats.md#digest-files): for each trail with log-file validation on and
 * each (account, region) the packager has registered, write the digest of every elapsed
 * period, in order, chained and signed — empty periods included, several after an outage.
 *
 * One chain position = one reservation, keyed by (stream, start = previous end). Steps:
 *   1. read the head (or rebuild it from the newest digest in S3 when the state is gone);
 *   2. reserve the position: the first writer's reservation wins (conditional create) and
 *      fixes the end, the previous digest and the candidate manifest rows;
 *   3. claim each candidate row for this digest (conditional update: set `digest` unless
 *      another digest has it). Claims are never released, so every run of the reservation
 *      finds the same outcome; a file whose claim fails is listed by the digest that has it;
 *   4. build the digest from the reservation and the claims (pure), sign it (RSASSA-PKCS1
 *      v1.5 is deterministic), create the object with a conditional write;
 *   5. move the head forward, conditionally on where it was.
 *
 * Crash windows, each closed:
 * - after the reservation, before the claims: a re-run finds the reservation and claims the
 *   same rows for the same digest id (a claim that is already ours succeeds again);
 * - after the claims, before the write: a re-run reads the same reservation, meets the same
 *   claims and builds the same bytes and signature; the rows are listed by no other digest in
 *   the meantime because the next position cannot be reserved before the head moves;
 * - after the digest write, before the head moves: a re-run rebuilds the same bytes, finds
 *   the object (`exists`), checks it holds exactly those bytes, then moves the head; should
 *   the signing key have changed in between, the stored digest is adopted when it differs
 *   only by the key fingerprint (its own signature goes into the head);
 * - racing signers: both may do steps 2-4 for the same position; they share one reservation
 *   and produce identical bytes, so the conditional create keeps one object, and only one
 *   head move from the same previous end succeeds — the chain cannot fork or skip.
 * - the chain state lost or rolled back (a point-in-time restore of the table): on every run
 *   the digests in S3 after the head are read; each must verify under a deployment key and
 *   link to the one before it (the first to the head), and then the newest becomes the head;
 *   any that does not stops this stream with a DigestAdoptionError and nothing is signed over
 *   it. With no head at all, the newest digest is adopted when its signature verifies.
 *
 * Keys (see docs/guarantees.md#digest-chain): a digest is signed with the key whose validity
 * window contains its end — after an outage across a key change, the periods that ended
 * before the change are signed with the previous key — and a period no window contains stops
 * the stream with a DigestKeyWindowError rather than be signed with a key a validator must
 * reject.
 */
import { inParallel } from './concurrency';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { TrailConfig } from './config';
import {
  buildDigest,
  digestFolderFor,
  digestKeyFor,
  digestKeysOf,
  makeReservation,
  newestDigestKey,
  nextEnd,
  nextStart,
  periodEnd,
  streamId,
  validatedTrails,
  type DigestPlace,
} from './digest-chain';
import {
  DIGEST_SIGNATURE_ALGORITHM,
  fingerprintOfPublicKey,
  formatDigestTime,
  parseDigest,
  parseDigestTime,
  pkcs1FromSpki,
  serializeDigest,
  signingString,
  verifyDigestSignature,
  type DigestFile,
} from './digest-format';
import { sha256Hex } from './logfile';
import { OLDEST_UNDIGESTED_PERIOD_AGE } from './metrics';
import type {
  DigestChainHead,
  DigestChainStore,
  DigestManifest,
  DigestObjectStore,
  DigestReservation,
  DigestSigner,
  DigestStreamRef,
  MetricsSink,
} from './ports';

/** Default reach back before a period's start for rows the index showed late: 24 hours. */
export const DEFAULT_LOOKBACK_MS = 24 * 3600 * 1000;

export interface DigestSigningDeps {
  readonly trails: readonly TrailConfig[];
  /** The log bucket: digests go beside the log files. */
  readonly bucket: string;
  /** The deployment's region (HOMEREGION in digest keys). */
  readonly homeRegion: string;
  readonly periodMs: number;
  readonly chain: DigestChainStore;
  readonly manifest: DigestManifest;
  readonly objects: DigestObjectStore;
  /** The current signing key. */
  readonly signer: DigestSigner;
  /**
   * Start of the current key's validity window (epoch ms): it signs no period that ended
   * before it.
   * @default - no lower bound
   */
  readonly signerValidFromMs?: number;
  /**
   * The keys that signed before the current one, with their windows: a period that ended in
   * one of those windows (an outage across a key change) is signed with that key, and digests
   * in S3 signed with them can be adopted.
   * @default - none
   */
  readonly previousKeys?: readonly PreviousSigningKey[];
  readonly metrics: MetricsSink;
  readonly now: () => number;
  /** @default DEFAULT_LOOKBACK_MS */
  readonly lookbackMs?: number;
  /** Most digests per stream in one run (the rest next run). @default 500 */
  readonly maxDigestsPerStream?: number;
  /** Streams signed at once. @default 4 */
  readonly concurrency?: number;
  /**
   * Told, after each run (failed runs too), every chain with a period that has ended without a
   * digest (none: an empty list), so the handler can log the chains behind; the metric
   * `OldestUndigestedPeriodAgeSeconds` carries only their maximum.
   */
  readonly reportBacklog?: (chains: readonly UndigestedChain[]) => void;
  /** Test hook: awaited between reading the head and writing it (race tests). */
  readonly pause?: (point: 'after-read-head' | 'before-move-head', stream: string) => Promise<void>;
}

export interface SignedDigest {
  readonly stream: string;
  readonly bucket: string;
  readonly key: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly logFiles: number;
  /** False when another signer had already created the object. */
  readonly created: boolean;
}

/** A digest chain with a period that has ended and has no digest yet. */
export interface UndigestedChain {
  readonly stream: string;
  /** Start of its oldest undigested period (epoch ms). */
  readonly startMs: number;
  /** Seconds since that period ended. */
  readonly ageSeconds: number;
}

/** Where a stream's signing got to: its head once read, and after each digest. */
interface StreamProgress {
  loaded: boolean;
  head: DigestChainHead | undefined;
}

/**
 * The oldest undigested period of a chain whose head is `head`, or undefined when every period
 * that has ended at `nowMs` is signed.
 */
function undigested(
  stream: DigestStreamRef,
  head: DigestChainHead | undefined,
  periodMs: number,
  nowMs: number,
): UndigestedChain | undefined {
  const startMs = nextStart(head, stream, periodMs);
  const endMs = periodEnd(startMs, periodMs);
  if (endMs > nowMs) return undefined;
  return { stream: streamId(stream), startMs, ageSeconds: Math.floor((nowMs - endMs) / 1000) };
}

/** A key that signed digests before the current one, and the window in which it did. */
export interface PreviousSigningKey {
  readonly signer: DigestSigner;
  /** Earliest digest end it signs (epoch ms). */
  readonly validFromMs: number;
  /** Latest digest end it signs (epoch ms): the key change. */
  readonly validUntilMs: number;
}

/** The stored digest differs from what its reservation gives: never overwritten, fail loudly. */
export class DigestConflictError extends Error {
  override readonly name: string = 'DigestConflictError';
}

/** No signing key's validity window contains the end of the period due: nothing is signed. */
export class DigestKeyWindowError extends Error {
  override readonly name = 'DigestKeyWindowError';
}

/**
 * A digest in S3 newer than the chain head that does not verify under a deployment key or does
 * not link to the head: it is not adopted, and nothing is signed over it.
 */
export class DigestAdoptionError extends DigestConflictError {
  override readonly name = 'DigestAdoptionError';
}

/** A key the signer holds, its fingerprint and public key, and its window (inclusive). */
interface HeldKey {
  readonly signer: DigestSigner;
  readonly fingerprint: string;
  readonly pkcs1: Buffer;
  readonly fromMs: number;
  readonly untilMs: number;
}

/** Every key of the deployment, current first. */
async function heldKeys(deps: DigestSigningDeps): Promise<HeldKey[]> {
  const held = async (signer: DigestSigner, fromMs: number, untilMs: number): Promise<HeldKey> => {
    const spki = await signer.publicKeySpki();
    return {
      signer,
      fingerprint: fingerprintOfPublicKey(spki),
      pkcs1: pkcs1FromSpki(spki),
      fromMs,
      untilMs,
    };
  };
  return Promise.all([
    held(deps.signer, deps.signerValidFromMs ?? -Infinity, Infinity),
    ...(deps.previousKeys ?? []).map((k) => held(k.signer, k.validFromMs, k.validUntilMs)),
  ]);
}

function windowText(k: HeldKey): string {
  const time = (ms: number) => (Number.isFinite(ms) ? formatDigestTime(ms) : '…');
  return `${k.fingerprint} [${time(k.fromMs)}, ${time(k.untilMs)}]`;
}

/**
 * The key to sign a digest ending at `endMs` with: the one whose window contains it (the newer
 * one at a key change, where two windows touch).
 */
function keyForEnd(keys: readonly HeldKey[], endMs: number, digest: string): HeldKey {
  const fits = keys.filter((k) => k.fromMs <= endMs && endMs <= k.untilMs);
  const key = fits.sort((a, b) => b.fromMs - a.fromMs)[0];
  if (key) return key;
  throw new DigestKeyWindowError(
    `no signing key's validity window contains digestEndTime ${formatDigestTime(endMs)} of ${digest}; keys: ${keys.map(windowText).join(', ')}. Nothing was signed for this stream. Pass the key that was current then in previousKeys (with its window), or move the current key's validFrom back to before this time.`,
  );
}

const GZIP_LEVEL = 6;

/** Signs every digest due now (and, with `closeAtMs`, closes the open period at that time). */
export async function signDueDigests(
  deps: DigestSigningDeps,
  options: { readonly closeAtMs?: number } = {},
): Promise<SignedDigest[]> {
  const trails = new Map(validatedTrails(deps.trails).map((t) => [t.name, t]));
  const streams = (await deps.chain.listStreams()).filter((s) => trails.has(s.trail));
  const keys = await heldKeys(deps);
  const nowMs = deps.now();
  const closeAtMs =
    options.closeAtMs === undefined ? undefined : Math.floor(options.closeAtMs / 1000) * 1000;
  const signed: SignedDigest[] = [];
  const behind: UndigestedChain[] = [];
  try {
    await inParallel(streams, deps.concurrency ?? 4, async (stream) => {
      const place: DigestPlace = {
        trail: trails.get(stream.trail)!,
        account: stream.account,
        region: stream.region,
        homeRegion: deps.homeRegion,
        bucket: deps.bucket,
      };
      const progress: StreamProgress = { loaded: false, head: undefined };
      try {
        signed.push(...(await signStream(deps, place, stream, keys, nowMs, closeAtMs, progress)));
      } finally {
        // A chain whose head could not be read is not counted: the run's error says so.
        const late = progress.loaded
          ? undigested(stream, progress.head, deps.periodMs, nowMs)
          : undefined;
        if (late) behind.push(late);
      }
    });
  } finally {
    // One series per deployment: the oldest over every chain (a series per chain costs money).
    deps.metrics.seconds?.(
      OLDEST_UNDIGESTED_PERIOD_AGE,
      behind.reduce((max, c) => Math.max(max, c.ageSeconds), 0),
    );
    deps.reportBacklog?.(behind.sort((a, b) => b.ageSeconds - a.ageSeconds));
  }
  deps.metrics.count('DigestsWritten', signed.filter((d) => d.created).length);
  deps.metrics.count(
    'DigestLogFiles',
    signed.reduce((sum, d) => sum + (d.created ? d.logFiles : 0), 0),
  );
  return signed.sort((a, b) =>
    a.stream === b.stream ? a.endMs - b.endMs : a.stream < b.stream ? -1 : 1,
  );
}

async function signStream(
  deps: DigestSigningDeps,
  place: DigestPlace,
  stream: DigestStreamRef,
  keys: readonly HeldKey[],
  nowMs: number,
  closeAtMs: number | undefined,
  progress: StreamProgress,
): Promise<SignedDigest[]> {
  const id = streamId(stream);
  const out: SignedDigest[] = [];
  const stored = await deps.chain.getHead(id);
  let head = stored
    ? await adoptNewerDigests(deps, place, id, stored, keys, out)
    : await rebuildHead(deps, place, id, keys);
  progress.loaded = true;
  progress.head = head;
  for (let count = 0; count < (deps.maxDigestsPerStream ?? 500); count++) {
    const startMs = nextStart(head, stream, deps.periodMs);
    const endMs = nextEnd(startMs, nowMs, deps.periodMs, closeAtMs);
    if (endMs === undefined) break;
    // Before anything is written for this period: no key, no reservation.
    const key = keyForEnd(keys, endMs, `s3://${place.bucket}/${digestKeyFor(place, endMs)}`);
    await deps.pause?.('after-read-head', id);
    const reservation =
      (await deps.chain.getReservation(id, startMs)) ??
      (await deps.chain.reserve(
        makeReservation(
          place,
          startMs,
          endMs,
          head ?? null,
          await deps.manifest.unclaimed(
            id,
            new Date(startMs - (deps.lookbackMs ?? DEFAULT_LOOKBACK_MS)).toISOString(),
            new Date(endMs).toISOString(),
          ),
        ),
      ));
    const written = await writeDigest(deps, reservation, stream.account, key, keys);
    await deps.pause?.('before-move-head', id);
    const moved = await deps.chain.moveHead(id, written.head, head?.endMs);
    // Lost the race: someone moved the head (to this very digest: positions are unique).
    head = moved ? written.head : await deps.chain.getHead(id);
    progress.head = head;
    out.push(written.result);
  }
  return out;
}

async function writeDigest(
  deps: DigestSigningDeps,
  reservation: DigestReservation,
  account: string,
  key: HeldKey,
  keys: readonly HeldKey[],
): Promise<{ head: DigestChainHead; result: SignedDigest }> {
  const digestId = `${reservation.bucket}/${reservation.key}`;
  const claimed = new Set<string>();
  await inParallel(reservation.candidates, 16, async (c) => {
    if (await deps.manifest.claim(c.bucket, c.key, digestId)) claimed.add(`${c.bucket}/${c.key}`);
  });
  const digest = buildDigest(reservation, account, key.fingerprint, claimed);
  const json = serializeDigest(digest);
  const sha256 = sha256Hex(json);
  const previousSignature = reservation.previous?.signature ?? null;
  const signature = (
    await key.signer.sign(Buffer.from(signingString(digest, sha256, previousSignature), 'utf8'))
  ).toString('hex');
  const outcome = await deps.objects.putIfAbsent({
    bucket: reservation.bucket,
    key: reservation.key,
    body: gzipSync(json, { level: GZIP_LEVEL }),
    contentType: 'application/json',
    contentEncoding: 'gzip',
    metadata: { signature, 'signature-algorithm': DIGEST_SIGNATURE_ALGORITHM },
  });
  let head: DigestChainHead = {
    endMs: reservation.endMs,
    bucket: reservation.bucket,
    key: reservation.key,
    sha256,
    signature,
  };
  if (outcome === 'exists') head = await checkExisting(deps, reservation, json, head, keys);
  return {
    head,
    result: {
      stream: reservation.stream,
      bucket: reservation.bucket,
      key: reservation.key,
      startMs: reservation.startMs,
      endMs: reservation.endMs,
      logFiles: digest.logFiles.length,
      created: outcome === 'created',
    },
  };
}

/**
 * The stored digest must be ours byte for byte with our signature, or differ only by a changed
 * signing key and verify under that deployment key.
 */
async function checkExisting(
  deps: DigestSigningDeps,
  reservation: DigestReservation,
  json: Buffer,
  ours: DigestChainHead,
  keys: readonly HeldKey[],
): Promise<DigestChainHead> {
  const stored = await deps.objects.getWithMetadata(reservation.bucket, reservation.key);
  if (!stored)
    throw new DigestConflictError(
      `s3://${ours.bucket}/${ours.key} vanished after a conditional create refused`,
    );
  const storedJson = gunzipSync(stored.body);
  const signature = stored.metadata.signature;
  // Signatures are deterministic: the same bytes signed with the same key carry ours.
  if (storedJson.equals(json) && signature === ours.signature) return ours;
  try {
    const theirs = parseDigest(storedJson);
    const mine = JSON.parse(json.toString('utf8')) as { digestPublicKeyFingerprint: string };
    const same = serializeDigest({
      ...theirs,
      digestPublicKeyFingerprint: mine.digestPublicKeyFingerprint,
    });
    const theirKey = keys.find((k) => k.fingerprint === theirs.digestPublicKeyFingerprint);
    const sha256 = sha256Hex(storedJson);
    if (
      same.equals(json) &&
      signature &&
      storedJson.equals(serializeDigest(theirs)) &&
      theirKey &&
      reservation.endMs >= theirKey.fromMs &&
      reservation.endMs <= theirKey.untilMs &&
      verifyDigestSignature(
        signingString(theirs, sha256, theirs.previousDigestSignature),
        signature,
        theirKey.pkcs1,
      )
    ) {
      return { ...ours, sha256, signature };
    }
  } catch {
    // Not a digest at all: reported below.
  }
  throw new DigestConflictError(
    `s3://${ours.bucket}/${ours.key} exists with other content or signature than its reservation gives; a digest is never overwritten (inspect it and the chain state)`,
  );
}

/**
 * The head from the newest digest of this trail in S3 (written to the state table), or
 * undefined when the chain has no digest yet. The digest is adopted only when its signature
 * verifies under a deployment key whose window contains its end.
 */
export async function rebuildHead(
  deps: Pick<DigestSigningDeps, 'objects' | 'chain'>,
  place: DigestPlace,
  id: string,
  keys: readonly HeldKey[],
): Promise<DigestChainHead | undefined> {
  const keysInS3 = await deps.objects.listKeys(place.bucket, digestFolderFor(place));
  const key = newestDigestKey(keysInS3, place);
  if (key === undefined) return undefined;
  const { head } = await verifiedDigest(deps, place, key, keys);
  if (await deps.chain.moveHead(id, head, undefined)) return head;
  return deps.chain.getHead(id);
}

/**
 * Compares the head with the digests in S3 after it (a restored or rolled-back chain table
 * lags behind S3): each must verify under a deployment key and link to the one before it, the
 * first to the head; then the newest becomes the head and each is reported as not created.
 * Their log files are claimed for them again (a no-op unless the manifest was restored too).
 */
async function adoptNewerDigests(
  deps: DigestSigningDeps,
  place: DigestPlace,
  id: string,
  head: DigestChainHead,
  keys: readonly HeldKey[],
  out: SignedDigest[],
): Promise<DigestChainHead> {
  const listed = await deps.objects.listKeys(place.bucket, digestFolderFor(place), head.key);
  const newer = digestKeysOf(listed, place).filter((k) => k > head.key);
  if (newer.length === 0) return head;
  let current = head;
  const adopted: SignedDigest[] = [];
  for (const key of newer) {
    const { digest, head: next } = await verifiedDigest(deps, place, key, keys);
    const links: [string, unknown, unknown][] = [
      ['previousDigestS3Bucket', digest.previousDigestS3Bucket, current.bucket],
      ['previousDigestS3Object', digest.previousDigestS3Object, current.key],
      ['previousDigestHashValue', digest.previousDigestHashValue, current.sha256],
      ['previousDigestSignature', digest.previousDigestSignature, current.signature],
      ['digestStartTime', digest.digestStartTime, formatDigestTime(current.endMs)],
    ];
    const broken = links.find(([, theirs, ours]) => theirs !== ours);
    if (broken) {
      throw new DigestAdoptionError(
        `s3://${place.bucket}/${key} is newer than the chain head s3://${current.bucket}/${current.key} but does not link to it: ${broken[0]} is ${JSON.stringify(broken[1])}, the head gives ${JSON.stringify(broken[2])}. Nothing is signed for ${id} until this is resolved (inspect the object and the chain table).`,
      );
    }
    const digestId = `${place.bucket}/${key}`;
    await inParallel(digest.logFiles, 16, async (f) => {
      await deps.manifest.claim(f.s3Bucket, f.s3Object, digestId);
    });
    adopted.push({
      stream: id,
      bucket: place.bucket,
      key,
      startMs: current.endMs,
      endMs: next.endMs,
      logFiles: digest.logFiles.length,
      created: false,
    });
    current = next;
  }
  if (!(await deps.chain.moveHead(id, current, head.endMs))) {
    // Another signer moved it first; carry on from where it is.
    return (await deps.chain.getHead(id)) ?? current;
  }
  out.push(...adopted);
  return current;
}

/** Reads a digest of this trail and checks its signature, key window and name. */
async function verifiedDigest(
  deps: Pick<DigestSigningDeps, 'objects'>,
  place: DigestPlace,
  key: string,
  keys: readonly HeldKey[],
): Promise<{ digest: DigestFile; head: DigestChainHead }> {
  const where = `s3://${place.bucket}/${key}`;
  const refuse = (rule: string): never => {
    throw new DigestAdoptionError(
      `cannot adopt ${where} as the chain head: ${rule}. Nothing is signed over it (inspect the object and the chain table).`,
    );
  };
  const stored = await deps.objects.getWithMetadata(place.bucket, key);
  if (!stored) return refuse('it vanished after it was listed');
  const signature = stored.metadata.signature;
  if (!signature) return refuse('no signature metadata');
  let json: Buffer;
  let digest: DigestFile;
  try {
    json = gunzipSync(stored.body);
    digest = parseDigest(json);
  } catch (error) {
    return refuse(`not a gzip'd digest file (${(error as Error).message})`);
  }
  if (digest.digestS3Bucket !== place.bucket || digest.digestS3Object !== key) {
    refuse(`it names itself s3://${digest.digestS3Bucket}/${digest.digestS3Object}`);
  }
  const endMs = parseDigestTime(digest.digestEndTime);
  const signer = keys.find((k) => k.fingerprint === digest.digestPublicKeyFingerprint);
  if (!signer) {
    refuse(
      `digestPublicKeyFingerprint ${digest.digestPublicKeyFingerprint} is no deployment key (${keys.map((k) => k.fingerprint).join(', ')})`,
    );
  }
  const sha256 = sha256Hex(json);
  if (
    !verifyDigestSignature(
      signingString(digest, sha256, digest.previousDigestSignature),
      signature,
      signer!.pkcs1,
    )
  ) {
    refuse(`its signature does not verify under key ${signer!.fingerprint}`);
  }
  if (endMs < signer!.fromMs || endMs > signer!.untilMs) {
    refuse(
      `digestEndTime ${digest.digestEndTime} lies outside the window of its key ${windowText(signer!)}`,
    );
  }
  return { digest, head: { endMs, bucket: place.bucket, key, sha256, signature } };
}
