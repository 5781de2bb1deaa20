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
 *   uncompressed SHA-256 matches (log files are streamed, never held whole).
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
 */
import { createHash } from 'node:crypto';
import {
  DIGEST_SIGNATURE_ALGORITHM,
  digestKey,
  digestRegionFolder,
  formatDigestTime,
  parseDigest,
  parseDigestKey,
  parseDigestTime,
  signingString,
  verifyDigestSignature,
  type DigestFile,
} from './digest-format';
import { digestGzipStream, GzipFormatError } from './gzip-stream';
import { logFolder, parseLogFileKey } from './layout';
import { readGzipMember } from './logfile';
import type { ObjectReader } from './ports';

/** One line of the report: a digest file, a log file, or a missing digest (a gap). */
export interface ValidationResult {
  readonly kind: 'digest' | 'log';
  readonly bucket: string;
  readonly key: string;
  readonly valid: boolean;
  /** Why it is invalid, in the AWS CLI's words where it has them (after "INVALID: "). */
  readonly reason?: string;
}

/** The AWS CLI's line for a result: `Digest file\ts3://B/K\tvalid` or `...\tINVALID: reason`. */
export function formatResult(result: ValidationResult): string {
  const what = result.kind === 'digest' ? 'Digest file' : 'Log file';
  return `${what}\ts3://${result.bucket}/${result.key}\t${result.valid ? 'valid' : `INVALID: ${result.reason}`}`;
}

export const REASONS = {
  notFound: 'not found',
  invalidFormat: 'invalid format',
  signature: 'signature verification failed',
  moved: 'has been moved from its original location',
  hash: "hash value doesn't match",
  trailing: 'unexpected data after end of compressed stream',
  previousLocation: "previous digest location doesn't match",
  previousHash: "previous digest hash value doesn't match",
  previousSignature: "previous digest signature doesn't match",
  previousPeriod: "previous digest period doesn't end where this one starts",
  publicKey: (region: string, fingerprint: string) =>
    `public key not found in region ${region} for fingerprint ${fingerprint}`,
  keyWindow: (fingerprint: string, endMs: number, fromMs: number, untilMs: number | undefined) =>
    `digestEndTime ${formatDigestTime(endMs)} lies outside the validity of public key ${fingerprint} (${formatDigestTime(fromMs)} to ${untilMs === undefined ? 'now' : formatDigestTime(untilMs)})`,
  unlisted: 'not listed in any digest file',
  unreadable: (message: string) => `could not be read: ${message}`,
} as const;

export interface ValidateLogsOptions {
  readonly reader: ObjectReader;
  /** The bucket holding the digests. */
  readonly bucket: string;
  /** Key prefix, without leading or trailing slash. */
  readonly prefix?: string;
  /** Only this organization folder; absent: keys without one, and every `o-...` folder. */
  readonly organizationId?: string;
  /** Accounts to validate; absent: every account folder found. */
  readonly accounts?: readonly string[];
  /** Source regions (REGION folders) to validate; absent: every region folder found. */
  readonly regions?: readonly string[];
  /** Only digests of this trail; absent: every trail found (each its own chain). */
  readonly trailName?: string;
  /** Only digests of trails in this home region; absent: any. */
  readonly homeRegion?: string;
  readonly startMs: number;
  readonly endMs: number;
  /** The present: listing stops one hour past min(end, now). */
  readonly nowMs: number;
  /**
   * Public keys by fingerprint (hex MD5 of the PKCS#1 DER): PKCS#1 (or SPKI) DER, alone (a
   * `--public-key` file: any digest time accepted) or with the validity window ListPublicKeys
   * gave it (a digest whose `digestEndTime` lies outside it is INVALID).
   */
  readonly publicKeys: ReadonlyMap<string, Buffer | WindowedPublicKey>;
  /**
   * What is known about chains from outside the bucket (GetTrailStatus, `--expect`): their
   * missing tail and start are reported. Absent: neither can be judged.
   */
  readonly expectations?: readonly ChainExpectation[];
  /** Length of a regular digest period. @default 1 hour */
  readonly periodMs?: number;
  /** How long after a period ends its digest may still be on its way. @default DEFAULT_DIGEST_GRACE_MS */
  readonly graceMs?: number;
  /** Objects read at once. @default 16 */
  readonly concurrency?: number;
  readonly onResult: (result: ValidationResult) => void;
  /** Called as work completes, for a progress display. */
  readonly onProgress?: (progress: ValidationProgress) => void;
}

/** A public key with the window in which it signed (ListPublicKeys). */
export interface WindowedPublicKey {
  readonly der: Buffer;
  readonly validFromMs: number;
  /** Absent: no end (the current key). */
  readonly validUntilMs?: number;
}

/** One chain as GetTrailStatus (or `--expect TRAIL,ACCOUNT,REGION,FIRST`) describes it. */
export interface ChainExpectation {
  readonly trailName: string;
  readonly account: string;
  /** The source region (REGION folder). */
  readonly region: string;
  /** HOMEREGION of its digest keys; absent: the validation's home region, else `region`. */
  readonly homeRegion?: string;
  /** Start of the chain's first period (epoch ms). */
  readonly firstStartMs: number;
  /** digestEndTime of the newest digest the signer recorded (its head), when known. */
  readonly headEndMs?: number;
  /** Ends of the periods closed early (`opentrail digest`): boundaries besides the aligned ones. */
  readonly earlyClosedEndsMs?: readonly number[];
}

/**
 * Default grace: on AWS the signer runs hourly at minute 5 (`scheduleMinute`), EventBridge
 * Scheduler retries a failed run for up to 50 minutes and a run lasts at most 5 minutes, so a
 * period's digest is written within 60 minutes of its end; the next hourly run is the retry
 * after that. One hour therefore never reports a digest that is merely late.
 */
export const DEFAULT_DIGEST_GRACE_MS = 3_600_000;

/** A period of a chain: [startMs, endMs). */
export interface Period {
  readonly startMs: number;
  readonly endMs: number;
}

/**
 * The periods of a gap between a digest ending at `fromMs` (or the chain's first period start)
 * and one starting at `toMs`, newest first. Regular periods end on aligned boundaries, or at an
 * early close (`earlyEndsMs`), so walking back from `toMs` names each missing digest by its end
 * (an early close not in `earlyEndsMs`, deleted with its neighbours, is named as the aligned
 * period holding it). Periods ending at or before `afterMs` (the range start) are left out.
 */
export function gapPeriods(
  fromMs: number,
  toMs: number,
  periodMs: number,
  afterMs = -Infinity,
  earlyEndsMs: readonly number[] = [],
): Period[] {
  const periods: Period[] = [];
  let endMs = toMs;
  while (endMs > fromMs && endMs > afterMs) {
    let startMs = Math.max(fromMs, Math.floor((endMs - 1) / periodMs) * periodMs);
    for (const early of earlyEndsMs) if (early > startMs && early < endMs) startMs = early;
    periods.push({ startMs, endMs });
    endMs = startMs;
  }
  return periods;
}

/**
 * The periods after a chain's newest digest found (ending at `fromMs`) that are due: each ends
 * at or before `dueMs` (now − grace) or at or before `headEndMs` (the signer recorded it) and
 * starts before `beforeMs` (the range end). Oldest first; early closes (`headEndMs`,
 * `earlyEndsMs`) are followed.
 */
export function tailPeriods(
  fromMs: number,
  options: {
    periodMs: number;
    dueMs: number;
    beforeMs: number;
    headEndMs?: number;
    earlyEndsMs?: readonly number[];
  },
): Period[] {
  const { periodMs, headEndMs } = options;
  const limitMs = Math.max(options.dueMs, headEndMs ?? -Infinity);
  const boundaries = [
    ...(options.earlyEndsMs ?? []),
    ...(headEndMs !== undefined ? [headEndMs] : []),
  ];
  const periods: Period[] = [];
  let startMs = fromMs;
  for (;;) {
    let endMs = Math.floor(startMs / periodMs) * periodMs + periodMs;
    for (const early of boundaries) if (early > startMs && early < endMs) endMs = early;
    if (endMs > limitMs || startMs >= options.beforeMs) return periods;
    periods.push({ startMs, endMs });
    startMs = endMs;
  }
}

export interface ValidationProgress {
  /** Digest and log files checked so far, and known so far. */
  readonly done: number;
  readonly total: number;
  readonly uncompressedBytes: number;
}

export interface ValidationSummary {
  readonly startMs: number;
  readonly endMs: number;
  /** The range the valid digests cover, clamped to the requested one; absent: none valid. */
  readonly foundStartMs?: number;
  readonly foundEndMs?: number;
  readonly digests: { readonly valid: number; readonly invalid: number };
  readonly logs: { readonly valid: number; readonly invalid: number };
  /** Chains (account, region, trail, home region) with at least one digest in range. */
  readonly chains: number;
  /** Uncompressed bytes of the log files hashed. */
  readonly uncompressedBytes: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const ORG_FOLDER = /^o-[a-z0-9]{10,32}$/;

/** A digest key found in a listing. */
interface ChainEntry {
  readonly key: string;
  readonly endMs: number;
}

/** One chain's identity, with what its keys are built from. */
interface ChainId {
  readonly prefix?: string;
  readonly organizationId?: string;
  readonly account: string;
  readonly region: string;
  readonly trailName: string;
  readonly homeRegion: string;
}

type LoadedDigest = {
  readonly entry: ChainEntry;
  /** hex SHA-256 of the uncompressed bytes, when they could be gunzipped. */
  readonly sha256?: string;
  /** The metadata signature as stored. */
  readonly signature?: string;
} & (
  | { readonly status: 'valid'; readonly digest: DigestFile }
  | { readonly status: 'moved' | 'invalid'; readonly reason: string; readonly digest?: DigestFile }
);

/** Runs at most `limit` tasks at once. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/**
 * Emits results in submission order while they complete in any order; `submit` waits while
 * `window` results are outstanding, so a fast producer cannot run ahead without bound.
 */
class OrderedEmitter {
  private readonly queue: { done: boolean; results: ValidationResult[] }[] = [];
  private outstanding = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(
    private readonly window: number,
    private readonly emit: (result: ValidationResult) => void,
  ) {}

  now(result: ValidationResult): void {
    this.queue.push({ done: true, results: [result] });
    this.flush();
  }

  async submit(work: Promise<ValidationResult>): Promise<void> {
    while (this.outstanding >= this.window)
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    const slot = { done: false, results: [] as ValidationResult[] };
    this.queue.push(slot);
    this.outstanding++;
    void work.then((result) => {
      slot.results.push(result);
      slot.done = true;
      this.outstanding--;
      this.waiting.shift()?.();
      this.flush();
    });
  }

  async drain(): Promise<void> {
    while (this.queue.length > 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private flush(): void {
    while (this.queue.length > 0 && this.queue[0]!.done) {
      for (const result of this.queue.shift()!.results) this.emit(result);
    }
    if (this.queue.length === 0) for (const wake of this.waiting.splice(0)) wake();
  }
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Validates every chain found in the range; resolves with the summary once all is reported. */
export async function validateLogs(options: ValidateLogsOptions): Promise<ValidationSummary> {
  const { reader, bucket } = options;
  const concurrency = options.concurrency ?? 16;
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
      try {
        const digest = await digestGzipStream(opened.body);
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

  /** `not found` lines for missing periods of a chain, newest first. */
  function missing(id: ChainId, periods: readonly Period[]): ValidationResult[] {
    return periods.map((p) => ({
      kind: 'digest',
      bucket,
      key: digestKey({ ...id, endMs: p.endMs }),
      valid: false,
      reason: REASONS.notFound,
    }));
  }

  /** The newer digest's own line plus what its pairing with the next older one reveals. */
  function judge(
    chain: FoundChain,
    newer: LoadedDigest,
    older: LoadedDigest | undefined,
  ): ValidationResult[] {
    const { id } = chain;
    const early = chain.expectation?.earlyClosedEndsMs ?? [];
    const line = (valid: boolean, reason?: string): ValidationResult => ({
      kind: 'digest',
      bucket,
      key: newer.entry.key,
      valid,
      ...(reason !== undefined ? { reason } : {}),
    });
    if (newer.status !== 'valid') return [line(false, newer.reason)];
    const d = newer.digest;
    const startMs = parseDigestTime(d.digestStartTime);
    if (!older) {
      // The oldest digest found in range: what came before it is known from a digest before
      // the range or from the chain's expectation; otherwise only the one it names.
      if (chain.floorMs !== undefined)
        return [
          line(true),
          ...missing(id, gapPeriods(chain.floorMs, startMs, periodMs, options.startMs, early)),
        ];
      if (d.previousDigestS3Object !== null && startMs > options.startMs)
        return [
          line(true),
          {
            kind: 'digest',
            bucket: d.previousDigestS3Bucket ?? bucket,
            key: d.previousDigestS3Object,
            valid: false,
            reason: REASONS.notFound,
          },
        ];
      return [line(true)];
    }
    // Present but unreadable or unsigned: already reported on its own line; nothing to compare.
    const olderEndMs =
      older.status === 'valid' ? parseDigestTime(older.digest.digestEndTime) : older.entry.endMs;
    const namesOlder =
      d.previousDigestS3Bucket === bucket && d.previousDigestS3Object === older.entry.key;
    if (olderEndMs < startMs && !namesOlder)
      return [
        line(true),
        ...missing(id, gapPeriods(olderEndMs, startMs, periodMs, -Infinity, early)),
      ];
    if (!namesOlder) return [line(false, REASONS.previousLocation)];
    if (older.status !== 'valid') return [line(true)];
    if (d.previousDigestHashValue !== older.sha256) return [line(false, REASONS.previousHash)];
    if (d.previousDigestSignature !== older.signature)
      return [line(false, REASONS.previousSignature)];
    if (olderEndMs !== startMs) return [line(false, REASONS.previousPeriod)];
    return [line(true)];
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
      for (const result of missing(id, tail.reverse())) emitter.now(result);
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
      for (const result of judge(chain, newer, older)) emitter.now(result);
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

/** One chain to validate: its digests in range, and what is known of it from outside. */
interface FoundChain {
  readonly id: ChainId;
  readonly entries: ChainEntry[];
  readonly expectation?: ChainExpectation;
  /** Where missing periods before the oldest digest in range may start; absent: unknown. */
  readonly floorMs?: number;
}

const ymd = (iso: string): string => `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}`;

/**
 * The `YYYY/MM/DD/` folders of `regionFolder` for the days from `fromMs` to `toMs`: each day of
 * a short span, the year, month and day folders that exist for a long one.
 */
async function dayFolders(
  reader: ObjectReader,
  bucket: string,
  io: Limiter,
  regionFolder: string,
  fromMs: number,
  toMs: number,
): Promise<string[]> {
  const firstDay = new Date(Math.floor(fromMs / DAY_MS) * DAY_MS).toISOString();
  const lastDay = new Date(toMs).toISOString();
  const [first, last] = [ymd(firstDay), ymd(lastDay)];
  const spanDays = Math.round(
    (Date.parse(lastDay.slice(0, 10)) - Date.parse(firstDay.slice(0, 10))) / DAY_MS,
  );
  if (spanDays <= 7) {
    const days: string[] = [];
    for (let day = Date.parse(firstDay.slice(0, 10)); day <= toMs; day += DAY_MS)
      days.push(`${regionFolder}${ymd(new Date(day).toISOString())}/`);
    return days;
  }
  const within = (folder: string, length: number): boolean => {
    const name = folder.slice(regionFolder.length, -1);
    return name >= first.slice(0, length) && name <= last.slice(0, length);
  };
  const years = (await io.run(() => reader.listFolders(bucket, regionFolder))).filter((f) =>
    within(f, 4),
  );
  const months = (await Promise.all(years.map((y) => io.run(() => reader.listFolders(bucket, y)))))
    .flat()
    .filter((f) => within(f, 7));
  return (await Promise.all(months.map((m) => io.run(() => reader.listFolders(bucket, m)))))
    .flat()
    .filter((f) => within(f, 10));
}

/** Lists the digest keys in range, grouped into chains, oldest first in each. */
async function findChains(options: ValidateLogsOptions, io: Limiter): Promise<FoundChain[]> {
  const { reader, bucket } = options;
  const root = options.prefix ? `${options.prefix}/AWSLogs/` : 'AWSLogs/';
  const lastName = (folder: string): string => folder.slice(0, -1).split('/').pop()!;

  // Account folders, with the organization folder each sits in.
  const accountFolders: { organizationId?: string; account: string }[] = [];
  const addAccounts = async (organizationId: string | undefined): Promise<void> => {
    const base = organizationId ? `${root}${organizationId}/` : root;
    if (options.accounts) {
      for (const account of options.accounts)
        accountFolders.push({ ...(organizationId ? { organizationId } : {}), account });
      return;
    }
    for (const folder of await io.run(() => reader.listFolders(bucket, base))) {
      const name = lastName(folder);
      if (!ORG_FOLDER.test(name))
        accountFolders.push({ ...(organizationId ? { organizationId } : {}), account: name });
    }
  };
  if (options.organizationId) {
    await addAccounts(options.organizationId);
  } else {
    await addAccounts(undefined);
    const organizations = (await io.run(() => reader.listFolders(bucket, root)))
      .map(lastName)
      .filter((name) => ORG_FOLDER.test(name));
    for (const organizationId of organizations) await addAccounts(organizationId);
  }

  // The days whose folders may hold a digest ending in (start, end + 1 h], the covering one of
  // `end` included; never past the present.
  const lastMs = Math.min(options.endMs, options.nowMs) + HOUR_MS;

  const chains = new Map<string, { id: ChainId; entries: ChainEntry[] }>();
  await Promise.all(
    accountFolders.map(async ({ organizationId, account }) => {
      const folderParts = {
        ...(options.prefix ? { prefix: options.prefix } : {}),
        ...(organizationId ? { organizationId } : {}),
        account,
      };
      const regions =
        options.regions ??
        (
          await io.run(() =>
            reader.listFolders(bucket, digestRegionFolder({ ...folderParts, region: '' })),
          )
        ).map(lastName);
      const regionDays = await Promise.all(
        regions.map(async (region) => ({
          region,
          days: await dayFolders(
            reader,
            bucket,
            io,
            digestRegionFolder({ ...folderParts, region }),
            options.startMs,
            lastMs,
          ),
        })),
      );
      await Promise.all(
        regionDays.flatMap(({ region, days }) =>
          days.map(async (day) => {
            const keys = await io.run(() => reader.list(bucket, day));
            for (const key of keys) {
              const parts = parseDigestKey(key);
              if (
                !parts ||
                parts.account !== account ||
                parts.region !== region ||
                parts.organizationId !== organizationId ||
                (options.trailName !== undefined && parts.trailName !== options.trailName) ||
                (options.homeRegion !== undefined && parts.homeRegion !== options.homeRegion)
              )
                continue;
              const id: ChainId = {
                ...folderParts,
                region,
                trailName: parts.trailName,
                homeRegion: parts.homeRegion,
              };
              const chainKey = JSON.stringify([
                organizationId,
                account,
                region,
                parts.trailName,
                parts.homeRegion,
              ]);
              let chain = chains.get(chainKey);
              if (!chain) {
                chain = { id, entries: [] };
                chains.set(chainKey, chain);
              }
              chain.entries.push({ key, endMs: parts.endMs });
            }
          }),
        ),
      );
    }),
  );

  // Chains known from outside the bucket: matched to the ones found, or empty (all deleted).
  const expected = new Map<string, ChainExpectation>();
  for (const expectation of options.expectations ?? []) {
    const homeRegion = expectation.homeRegion ?? options.homeRegion ?? expectation.region;
    const chainKey = JSON.stringify([
      options.organizationId,
      expectation.account,
      expectation.region,
      expectation.trailName,
      homeRegion,
    ]);
    expected.set(chainKey, expectation);
    if (!chains.has(chainKey)) {
      chains.set(chainKey, {
        id: {
          ...(options.prefix ? { prefix: options.prefix } : {}),
          ...(options.organizationId ? { organizationId: options.organizationId } : {}),
          account: expectation.account,
          region: expectation.region,
          trailName: expectation.trailName,
          homeRegion,
        },
        entries: [],
      });
    }
  }

  const result: FoundChain[] = [];
  for (const chainKey of [...chains.keys()].sort()) {
    const chain = chains.get(chainKey)!;
    const expectation = expected.get(chainKey);
    const sorted = chain.entries.sort((a, b) =>
      a.endMs !== b.endMs ? a.endMs - b.endMs : a.key < b.key ? -1 : a.key > b.key ? 1 : 0,
    );
    // In range: every digest ending after the start and up to the end, and the one after that
    // (it covers the end).
    const inRange: ChainEntry[] = [];
    let beforeEndMs: number | undefined;
    for (const entry of sorted) {
      if (entry.endMs <= options.startMs) {
        beforeEndMs = entry.endMs;
        continue;
      }
      inRange.push(entry);
      if (entry.endMs >= options.endMs) break;
    }
    const floors = [expectation?.firstStartMs, beforeEndMs].filter(
      (ms): ms is number => ms !== undefined,
    );
    if (inRange.length > 0 || expectation)
      result.push({
        id: chain.id,
        entries: inRange,
        ...(expectation ? { expectation } : {}),
        ...(floors.length > 0 ? { floorMs: Math.max(...floors) } : {}),
      });
  }
  return result;
}
