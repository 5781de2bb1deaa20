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
import { gzipSync } from 'node:zlib';
import {
  buildDigest,
  digestKeyFor,
  makeReservation,
  nextEnd,
  nextStart,
  periodEnd,
  streamId,
  validatedTrails,
  type DigestPlace,
} from './digest-chain';
import { DIGEST_SIGNATURE_ALGORITHM, serializeDigest, signingString } from './digest-format';
import { adoptNewerDigests, checkExisting, rebuildHead } from './digest-adoption';
import {
  DEFAULT_LOOKBACK_MS,
  type DigestSigningDeps,
  type SignedDigest,
  type UndigestedChain,
} from './digest-signing-deps';
import { heldKeys, keyForEnd, type HeldKey } from './digest-signing-keys';
import { sha256Hex } from './logfile';
import { OLDEST_UNDIGESTED_PERIOD_AGE } from './metrics';
import type { DigestChainHead, DigestReservation, DigestStreamRef } from './ports';

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
