/**
 * Log-file integrity validation (docs/formats.md#what-validation-checks), over an `ObjectReader` port (S3 or a local
 * copy). Per chain — one (account, source region, trail name, home region) — it walks the
 * digests in the requested range NEWEST first and checks, for each:
 *
 * - it is one gzip member of a well-formed digest (else `invalid format`);
 * - its stored `digestS3Bucket`/`digestS3Object` are where it was read (else `has been moved
 *   from its original location`; a moved copy is then left out of the chain);
 * - its signature (user metadata `signature`) under the key its fingerprint names;
 * - the chain, which the AWS CLI does not check: its `previousDigest*` fields name the next older
 *   digest found, and equal that digest's real SHA-256 and signature, and the older digest's
 *   period ends where this one starts;
 * - no period is missing between two digests (a gap), nor before the oldest one when it names
 *   a previous digest that ends inside the range;
 * - every log file it lists exists, is one gzip member with nothing after it, and its
 *   uncompressed SHA-256 matches (digest-validate-logfile.ts: a gunzip + SHA-256's cost; the
 *   CLI runs it on worker threads through `checkLogBytes`).
 *
 * Missing digests (see docs/guarantees.md#tamper-evidence): every period without its digest gets
 * its own `Digest file\ts3://B/K\tINVALID: not found` line, the key it would have. Between two
 * digests found that is every period of the gap. Before the oldest and after the newest digest
 * found it depends on what is known from outside the bucket: with a `ChainExpectation` (from
 * GetTrailStatus or `--expect`), every period from max(start, first period) to the newest due
 * one (ended at least `graceMs` ago, or at or before the head the signer recorded) is
 * expected, so deleting the newest digests, or all of them, is reported. Without one, only the
 * previous digest the oldest one names is (when it ends inside the range).
 *
 * Log files no digest names (a forged or orphaned file) are reported too, where that can be
 * judged: a file under a validated chain's log folder whose minute stamp lies in a period that
 * is due and inside the range, named by no digest of any trail of that bucket, prefix, account
 * and region (digests after the range are read, oldest first, until every such file is named
 * or none is left).
 *
 * Results arrive through `onResult` in a stable order (digest, then its log files), while the
 * I/O runs concurrently (bounded).
 *
 * This module walks the chains and checks the files; digest-validate-plan.ts finds the chains and
 * plans the expected periods, digest-validate-chain.ts judges each pair of digests and
 * digest-validate-report.ts formats and orders the results (their public names are re-exported
 * here).
 */
import { createHash } from 'node:crypto';
import {
  DIGEST_SIGNATURE_ALGORITHM,
  digestRegionFolder,
  parseDigest,
  parseDigestKey,
  parseDigestTime,
  signingString,
  verifyDigestSignature,
  type DigestFile,
} from './digest-format';
import {
  DEFAULT_DIGEST_GRACE_MS,
  DEFAULT_VALIDATE_CONCURRENCY,
  dayFolders,
  findChains,
  HOUR_MS,
  Limiter,
  tailPeriods,
  type ChainEntry,
  type ChainId,
  type FoundChain,
  type ValidateLogsOptions,
} from './digest-validate-plan';
import {
  OrderedEmitter,
  REASONS,
  type ValidationResult,
  type ValidationSummary,
} from './digest-validate-report';
import { judge, missing, type JudgeContext, type LoadedDigest } from './digest-validate-chain';
import { digestGzipMember } from './digest-validate-logfile';
import { GzipFormatError } from './gzip-stream';
import { logFolder, parseLogFileKey } from './layout';
import { readGzipMember } from './logfile';

export {
  DEFAULT_DIGEST_GRACE_MS,
  DEFAULT_VALIDATE_CONCURRENCY,
  gapPeriods,
  tailPeriods,
  type ChainExpectation,
  type Period,
  type ValidateLogsOptions,
  type WindowedPublicKey,
} from './digest-validate-plan';
export {
  formatResult,
  REASONS,
  type ValidationProgress,
  type ValidationResult,
  type ValidationSummary,
} from './digest-validate-report';

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  // One copy at most: a body that came in one chunk is used as it is.
  return chunks.length === 1
    ? Buffer.from(chunks[0]!.buffer, chunks[0]!.byteOffset, chunks[0]!.byteLength)
    : Buffer.concat(chunks);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Validates every chain found in the range; resolves with the summary once all is reported. */
export async function validateLogs(options: ValidateLogsOptions): Promise<ValidationSummary> {
  const { reader, bucket } = options;
  const concurrency = options.concurrency ?? DEFAULT_VALIDATE_CONCURRENCY;
  const io = new Limiter(concurrency);
  const counts = { digestsValid: 0, digestsInvalid: 0, logsValid: 0, logsInvalid: 0 };
  let uncompressedBytes = 0;
  let known = 0;
  let done = 0;
  let foundStartMs: number | undefined;
  let foundEndMs: number | undefined;
  const progress = (): void => options.onProgress?.({ done, total: known, uncompressedBytes });
  const emitter = new OrderedEmitter(concurrency * 4, (result) => {
    if (result.kind === 'digest') counts[result.valid ? 'digestsValid' : 'digestsInvalid']++;
    else counts[result.valid ? 'logsValid' : 'logsInvalid']++;
    done++;
    progress();
    options.onResult(result);
  });

  const periodMs = options.periodMs ?? HOUR_MS;
  const where: JudgeContext = { bucket, periodMs, startMs: options.startMs };
  const graceMs = options.graceMs ?? DEFAULT_DIGEST_GRACE_MS;
  /** `bucket/key` of every log file a digest read names. */
  const named = new Set<string>();
  const loaded = new Set<string>();

  const chains = await findChains(options, io);
  for (const chain of chains) {
    known += chain.entries.length;
    progress();
    await walkChain(chain);
  }
  await emitter.drain();
  for (const result of await unlistedLogFiles()) emitter.now(result);
  await emitter.drain();
  return {
    startMs: options.startMs,
    endMs: options.endMs,
    ...(foundStartMs !== undefined && foundEndMs !== undefined ? { foundStartMs, foundEndMs } : {}),
    digests: { valid: counts.digestsValid, invalid: counts.digestsInvalid },
    logs: { valid: counts.logsValid, invalid: counts.logsInvalid },
    chains: chains.filter((c) => c.entries.length > 0).length,
    uncompressedBytes,
  };

  /**
   * Log files under the log folders of the chains validated whose minute stamp lies in a due
   * period inside the range and that no digest names. Digests not read yet (other trails of
   * the folder, later ones) are read oldest first until every such file is named.
   */
  async function unlistedLogFiles(): Promise<ValidationResult[]> {
    const dueMs = options.nowMs - graceMs;
    const folders = new Map<string, ChainId & { dueMs: number }>();
    for (const { id, expectation } of chains) {
      const place = JSON.stringify([id.prefix, id.organizationId, id.account, id.region]);
      const chainDueMs = Math.max(dueMs, expectation?.headEndMs ?? -Infinity);
      const known = folders.get(place);
      if (!known || known.dueMs < chainDueMs) folders.set(place, { ...id, dueMs: chainDueMs });
    }
    const results: ValidationResult[] = [];
    for (const folder of folders.values()) {
      const logRoot = logFolder({ ...folder, deliveryMs: 0 }).slice(0, -'1970/01/01/'.length);
      const lastMs = Math.min(options.endMs, folder.dueMs);
      if (lastMs < options.startMs) continue;
      const days = await dayFolders(reader, bucket, io, logRoot, options.startMs, lastMs);
      const unnamed: string[] = [];
      for (const keys of await Promise.all(
        days.map((day) => io.run(() => reader.list(bucket, day))),
      )) {
        for (const key of keys) {
          const parts = parseLogFileKey(key);
          if (!parts || parts.kind !== 'CloudTrail' || parts.account !== folder.account) continue;
          if (parts.region !== folder.region || parts.prefix !== folder.prefix) continue;
          if (parts.organizationId !== folder.organizationId) continue;
          const s = parts.stamp;
          const stampMs = Date.UTC(
            +s.slice(0, 4),
            +s.slice(4, 6) - 1,
            +s.slice(6, 8),
            +s.slice(9, 11),
            +s.slice(11, 13),
          );
          const closesMs = Math.floor(stampMs / periodMs) * periodMs + periodMs;
          if (stampMs < Math.floor(options.startMs / 60_000) * 60_000 || stampMs > options.endMs)
            continue;
          if (closesMs > folder.dueMs) continue;
          if (!named.has(`${bucket}/${key}`)) unnamed.push(key);
        }
      }
      if (unnamed.length === 0) continue;
      // Digests of every trail of this folder not read yet, from the range start to now.
      const digestRoot = digestRegionFolder(folder);
      const digestDays = await dayFolders(
        reader,
        bucket,
        io,
        digestRoot,
        options.startMs,
        options.nowMs + HOUR_MS,
      );
      const later = (
        await Promise.all(digestDays.map((day) => io.run(() => reader.list(bucket, day))))
      )
        .flat()
        .flatMap((key) => {
          const parts = parseDigestKey(key);
          return parts && parts.endMs > options.startMs && !loaded.has(key)
            ? [{ key, endMs: parts.endMs }]
            : [];
        })
        .sort((a, b) => a.endMs - b.endMs);
      const left = new Set(unnamed);
      for (const entry of later) {
        if (left.size === 0) break;
        const digest = await io.run(() => readDigestQuietly(entry.key));
        for (const file of digest?.logFiles ?? [])
          if (file.s3Bucket === bucket) left.delete(file.s3Object);
      }
      for (const key of [...left].sort())
        results.push({ kind: 'log', bucket, key, valid: false, reason: REASONS.unlisted });
    }
    return results;
  }

  /** A digest read only for the log files it names (not judged): undefined when unreadable. */
  async function readDigestQuietly(key: string): Promise<DigestFile | undefined> {
    try {
      const opened = await reader.open(bucket, key, { metadata: false });
      if (!opened) return undefined;
      return parseDigest(readGzipMember(await readAll(opened.body)).data);
    } catch {
      return undefined;
    }
  }

  async function loadDigest(entry: ChainEntry, homeRegion: string): Promise<LoadedDigest> {
    loaded.add(entry.key);
    return io.run(async () => {
      let opened;
      try {
        opened = await reader.open(bucket, entry.key);
      } catch (error) {
        return { entry, status: 'invalid', reason: REASONS.unreadable(message(error)) };
      }
      // Listed a moment ago, gone now: deleted while we looked.
      if (!opened) return { entry, status: 'invalid', reason: REASONS.notFound };
      let bytes: Buffer;
      try {
        bytes = await readAll(opened.body);
      } catch (error) {
        return { entry, status: 'invalid', reason: REASONS.unreadable(message(error)) };
      }
      let json: Buffer;
      try {
        const member = readGzipMember(bytes);
        if (member.trailingBytes > 0) throw new GzipFormatError('bytes after the gzip member');
        json = member.data;
      } catch {
        return { entry, status: 'invalid', reason: REASONS.invalidFormat };
      }
      const sha256 = createHash('sha256').update(json).digest('hex');
      const signature = opened.metadata.signature;
      const base = { entry, sha256, ...(signature !== undefined ? { signature } : {}) };
      let digest: DigestFile;
      try {
        digest = parseDigest(json);
      } catch {
        return { ...base, status: 'invalid', reason: REASONS.invalidFormat };
      }
      if (digest.digestS3Bucket !== bucket || digest.digestS3Object !== entry.key)
        return { ...base, status: 'moved', reason: REASONS.moved, digest };
      const key = options.publicKeys.get(digest.digestPublicKeyFingerprint);
      const publicKey = key === undefined || Buffer.isBuffer(key) ? key : key.der;
      if (!publicKey) {
        return {
          ...base,
          status: 'invalid',
          reason: REASONS.publicKey(homeRegion, digest.digestPublicKeyFingerprint),
          digest,
        };
      }
      const algorithm = opened.metadata['signature-algorithm'];
      const verified =
        signature !== undefined &&
        algorithm === DIGEST_SIGNATURE_ALGORITHM &&
        verifyDigestSignature(
          signingString(digest, sha256, digest.previousDigestSignature),
          signature,
          publicKey,
        );
      if (!verified) return { ...base, status: 'invalid', reason: REASONS.signature, digest };
      if (key !== undefined && !Buffer.isBuffer(key)) {
        const endMs = parseDigestTime(digest.digestEndTime);
        if (endMs < key.validFromMs || (key.validUntilMs !== undefined && endMs > key.validUntilMs))
          return {
            ...base,
            status: 'invalid',
            reason: REASONS.keyWindow(
              digest.digestPublicKeyFingerprint,
              endMs,
              key.validFromMs,
              key.validUntilMs,
            ),
            digest,
          };
      }
      return { ...base, status: 'valid', digest };
    });
  }

  async function checkLogFile(file: DigestFile['logFiles'][number]): Promise<ValidationResult> {
    const result = (valid: boolean, reason?: string): ValidationResult => ({
      kind: 'log',
      bucket: file.s3Bucket,
      key: file.s3Object,
      valid,
      ...(reason !== undefined ? { reason } : {}),
    });
    return io.run(async () => {
      let opened;
      try {
        opened = await reader.open(file.s3Bucket, file.s3Object, { metadata: false });
      } catch (error) {
        return result(false, REASONS.unreadable(message(error)));
      }
      if (!opened) return result(false, REASONS.notFound);
      let bytes: Buffer;
      try {
        bytes = await readAll(opened.body);
      } catch (error) {
        return result(false, REASONS.unreadable(message(error)));
      }
      try {
        const digest = options.checkLogBytes
          ? await options.checkLogBytes(bytes, { bucket: file.s3Bucket, key: file.s3Object })
          : digestGzipMember(bytes);
        uncompressedBytes += digest.uncompressedBytes;
        if (digest.trailingBytes > 0) return result(false, REASONS.trailing);
        if (digest.sha256 !== file.hashValue) return result(false, REASONS.hash);
        return result(true);
      } catch (error) {
        if (error instanceof GzipFormatError) return result(false, REASONS.invalidFormat);
        return result(false, REASONS.unreadable(message(error)));
      }
    });
  }

  async function walkChain(chain: FoundChain): Promise<void> {
    const { id, entries } = chain;
    // Newest first; loads run ahead of the walk by `concurrency` digests.
    const newestFirst = [...entries].reverse();
    if (chain.expectation) {
      // The tail: due periods after the newest digest found (or after the chain's start).
      const fromMs = newestFirst[0]?.endMs ?? chain.floorMs ?? chain.expectation.firstStartMs;
      const tail = tailPeriods(fromMs, {
        periodMs,
        dueMs: options.nowMs - graceMs,
        beforeMs: options.endMs,
        ...(chain.expectation.headEndMs !== undefined
          ? { headEndMs: chain.expectation.headEndMs }
          : {}),
        ...(chain.expectation.earlyClosedEndsMs
          ? { earlyEndsMs: chain.expectation.earlyClosedEndsMs }
          : {}),
      }).filter((p) => p.endMs > options.startMs);
      for (const result of missing(bucket, id, tail.reverse())) emitter.now(result);
    }
    const loads = new Map<number, Promise<LoadedDigest>>();
    const load = (i: number): Promise<LoadedDigest> => {
      let pending = loads.get(i);
      if (!pending) {
        pending = loadDigest(newestFirst[i]!, id.homeRegion);
        loads.set(i, pending);
      }
      return pending;
    };
    let newer: LoadedDigest | undefined;
    const settle = async (older: LoadedDigest | undefined): Promise<void> => {
      if (!newer) return;
      for (const result of judge(where, chain, newer, older)) emitter.now(result);
      if (newer.digest)
        for (const file of newer.digest.logFiles) named.add(`${file.s3Bucket}/${file.s3Object}`);
      if (newer.status === 'valid') {
        const d = newer.digest;
        const startMs = Math.max(options.startMs, parseDigestTime(d.digestStartTime));
        const endMs = Math.min(options.endMs, parseDigestTime(d.digestEndTime));
        foundStartMs = foundStartMs === undefined ? startMs : Math.min(foundStartMs, startMs);
        foundEndMs = foundEndMs === undefined ? endMs : Math.max(foundEndMs, endMs);
        known += d.logFiles.length;
        for (const file of d.logFiles) {
          await emitter.submit(
            checkLogFile(file).catch((error: unknown): ValidationResult => ({
              kind: 'log',
              bucket: file.s3Bucket,
              key: file.s3Object,
              valid: false,
              reason: REASONS.unreadable(message(error)),
            })),
          );
        }
      }
    };
    for (let i = 0; i < newestFirst.length; i++) {
      for (let j = i; j < Math.min(newestFirst.length, i + concurrency); j++) void load(j);
      const current = await load(i);
      loads.delete(i);
      if (current.status === 'moved') {
        // A copy (or a move) is not part of the chain: report it and pair around it.
        emitter.now({
          kind: 'digest',
          bucket,
          key: current.entry.key,
          valid: false,
          reason: current.reason,
        });
        continue;
      }
      await settle(current);
      newer = current;
    }
    await settle(undefined);
  }
}
