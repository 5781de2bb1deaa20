/**
 * The digests already in S3 that the signer meets (see the crash windows and the lost chain
 * state in digest-signing.ts): a stored digest at the position being written, the newest digest
 * when the head is gone, the digests after a rolled-back head. Each is adopted only when it
 * verifies under a deployment key and links to the chain; otherwise the stream stops.
 */
import { inParallel } from './concurrency';
import { gunzipSync } from 'node:zlib';
import { digestFolderFor, digestKeysOf, newestDigestKey, type DigestPlace } from './digest-chain';
import {
  formatDigestTime,
  parseDigest,
  parseDigestTime,
  serializeDigest,
  signingString,
  verifyDigestSignature,
  type DigestFile,
} from './digest-format';
import type { DigestSigningDeps, SignedDigest } from './digest-signing-deps';
import { windowText, type HeldKey } from './digest-signing-keys';
import { sha256Hex } from './logfile';
import type { DigestChainHead, DigestReservation } from './ports';

/** The stored digest differs from what its reservation gives: never overwritten, fail loudly. */
export class DigestConflictError extends Error {
  override readonly name: string = 'DigestConflictError';
}

/**
 * A digest in S3 newer than the chain head that does not verify under a deployment key or does
 * not link to the head: it is not adopted, and nothing is signed over it.
 */
export class DigestAdoptionError extends DigestConflictError {
  override readonly name = 'DigestAdoptionError';
}

/**
 * The stored digest must be ours byte for byte with our signature, or differ only by a changed
 * signing key and verify under that deployment key.
 */
export async function checkExisting(
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
export async function adoptNewerDigests(
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
