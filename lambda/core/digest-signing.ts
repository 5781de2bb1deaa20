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
 * - the chain state lost or rolled back: the head is rebuilt from the newest digest in S3.
 */
import { inParallel } from './concurrency';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { TrailConfig } from './config';
import {
  buildDigest,
  digestFolderFor,
  makeReservation,
  newestDigestKey,
  nextEnd,
  nextStart,
  streamId,
  validatedTrails,
  type DigestPlace,
} from './digest-chain';
import {
  DIGEST_SIGNATURE_ALGORITHM,
  fingerprintOfPublicKey,
  parseDigest,
  parseDigestTime,
  serializeDigest,
  signingString,
} from './digest-format';
import { sha256Hex } from './logfile';
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
  readonly signer: DigestSigner;
  readonly metrics: MetricsSink;
  readonly now: () => number;
  /** @default DEFAULT_LOOKBACK_MS */
  readonly lookbackMs?: number;
  /** Most digests per stream in one run (the rest next run). @default 500 */
  readonly maxDigestsPerStream?: number;
  /** Streams signed at once. @default 4 */
  readonly concurrency?: number;
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

/** The stored digest differs from what its reservation gives: never overwritten, fail loudly. */
export class DigestConflictError extends Error {
  override readonly name = 'DigestConflictError';
}

const GZIP_LEVEL = 6;

/** Signs every digest due now (and, with `closeAtMs`, closes the open period at that time). */
export async function signDueDigests(
  deps: DigestSigningDeps,
  options: { readonly closeAtMs?: number } = {},
): Promise<SignedDigest[]> {
  const trails = new Map(validatedTrails(deps.trails).map((t) => [t.name, t]));
  const streams = (await deps.chain.listStreams()).filter((s) => trails.has(s.trail));
  const fingerprint = fingerprintOfPublicKey(await deps.signer.publicKeySpki());
  const nowMs = deps.now();
  const closeAtMs =
    options.closeAtMs === undefined ? undefined : Math.floor(options.closeAtMs / 1000) * 1000;
  const signed: SignedDigest[] = [];
  await inParallel(streams, deps.concurrency ?? 4, async (stream) => {
    const place: DigestPlace = {
      trail: trails.get(stream.trail)!,
      account: stream.account,
      region: stream.region,
      homeRegion: deps.homeRegion,
      bucket: deps.bucket,
    };
    signed.push(...(await signStream(deps, place, stream, fingerprint, nowMs, closeAtMs)));
  });
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
  fingerprint: string,
  nowMs: number,
  closeAtMs: number | undefined,
): Promise<SignedDigest[]> {
  const id = streamId(stream);
  const out: SignedDigest[] = [];
  let head = (await deps.chain.getHead(id)) ?? (await rebuildHead(deps, place, id));
  for (let count = 0; count < (deps.maxDigestsPerStream ?? 500); count++) {
    const startMs = nextStart(head, stream, deps.periodMs);
    const endMs = nextEnd(startMs, nowMs, deps.periodMs, closeAtMs);
    if (endMs === undefined) break;
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
    const written = await writeDigest(deps, reservation, stream.account, fingerprint);
    await deps.pause?.('before-move-head', id);
    const moved = await deps.chain.moveHead(id, written.head, head?.endMs);
    // Lost the race: someone moved the head (to this very digest: positions are unique).
    head = moved ? written.head : await deps.chain.getHead(id);
    out.push(written.result);
  }
  return out;
}

async function writeDigest(
  deps: DigestSigningDeps,
  reservation: DigestReservation,
  account: string,
  fingerprint: string,
): Promise<{ head: DigestChainHead; result: SignedDigest }> {
  const digestId = `${reservation.bucket}/${reservation.key}`;
  const claimed = new Set<string>();
  await inParallel(reservation.candidates, 16, async (c) => {
    if (await deps.manifest.claim(c.bucket, c.key, digestId)) claimed.add(`${c.bucket}/${c.key}`);
  });
  const digest = buildDigest(reservation, account, fingerprint, claimed);
  const json = serializeDigest(digest);
  const sha256 = sha256Hex(json);
  const previousSignature = reservation.previous?.signature ?? null;
  const signature = (
    await deps.signer.sign(Buffer.from(signingString(digest, sha256, previousSignature), 'utf8'))
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
  if (outcome === 'exists') head = await checkExisting(deps, reservation, json, head);
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

/** The stored digest must be ours byte for byte (or differ only by a changed signing key). */
async function checkExisting(
  deps: DigestSigningDeps,
  reservation: DigestReservation,
  json: Buffer,
  ours: DigestChainHead,
): Promise<DigestChainHead> {
  const stored = await deps.objects.getWithMetadata(reservation.bucket, reservation.key);
  if (!stored)
    throw new DigestConflictError(
      `s3://${ours.bucket}/${ours.key} vanished after a conditional create refused`,
    );
  const storedJson = gunzipSync(stored.body);
  if (storedJson.equals(json)) return ours;
  const signature = stored.metadata.signature;
  try {
    const theirs = parseDigest(storedJson);
    const mine = JSON.parse(json.toString('utf8')) as { digestPublicKeyFingerprint: string };
    const same = serializeDigest({
      ...theirs,
      digestPublicKeyFingerprint: mine.digestPublicKeyFingerprint,
    });
    if (same.equals(json) && signature && storedJson.equals(serializeDigest(theirs))) {
      return { ...ours, sha256: sha256Hex(storedJson), signature };
    }
  } catch {
    // Not a digest at all: reported below.
  }
  throw new DigestConflictError(
    `s3://${ours.bucket}/${ours.key} exists with other content than its reservation gives; a digest is never overwritten (inspect it and the chain state)`,
  );
}

/**
 * The head from the newest digest of this trail in S3 (written to the state table), or
 * undefined when the chain has no digest yet.
 */
export async function rebuildHead(
  deps: Pick<DigestSigningDeps, 'objects' | 'chain'>,
  place: DigestPlace,
  id: string,
): Promise<DigestChainHead | undefined> {
  const keys = await deps.objects.listKeys(place.bucket, digestFolderFor(place));
  const key = newestDigestKey(keys, place);
  if (key === undefined) return undefined;
  const stored = await deps.objects.getWithMetadata(place.bucket, key);
  const signature = stored?.metadata.signature;
  if (!stored || !signature) {
    throw new DigestConflictError(
      `cannot rebuild the chain head from s3://${place.bucket}/${key}: no signature metadata`,
    );
  }
  const json = gunzipSync(stored.body);
  const digest = parseDigest(json);
  const head: DigestChainHead = {
    endMs: parseDigestTime(digest.digestEndTime),
    bucket: place.bucket,
    key,
    sha256: sha256Hex(json),
    signature,
  };
  if (await deps.chain.moveHead(id, head, undefined)) return head;
  return deps.chain.getHead(id);
}
