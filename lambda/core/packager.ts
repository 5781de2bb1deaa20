/**
 * The packager use case: one Kinesis batch in, CloudTrail log files out (docs/formats.md#log-files, docs/formats.md#event-selectors).
 *
 * Determinism: a batch is retried whole, and everything it writes is a function of the batch
 * (its records, shard and sequence numbers, newest arrival time) and of dedup claims that its
 * records made. So a retry — or a redrive, which replays the same batch — resolves to the same
 * keys and the same bytes for every object it reserved. Dedup decides per (record, trail)
 * (core/dedup.ts, docs/guarantees.md#exactly-once).
 *
 * Crash windows, each closed:
 * - Dedup claims are written before any file. A crash after them: the retry finds its records'
 *   own claims and keeps the same events. A batch abandoned to the on-failure destination keeps
 *   its claims; its redrive finds them and completes what it reserved.
 * - A resend of content whose object another batch wrote but never marked delivered completes
 *   that object (marks it delivered, with its notice) instead of writing a second copy.
 * - The manifest row is written (state "pending", with the SHA-256) BEFORE the object: a crash
 *   after the S3 write and before the "delivered" update leaves an object that is in the
 *   manifest (no orphan); the retry finds the object, checks its content hash and marks it
 *   delivered. A crash after the pending row and before the object leaves a row without an
 *   object, which the retry fills with the same bytes; the digest signer takes delivered rows
 *   only.
 * - Objects are created with a conditional write (never overwritten). An existing object with
 *   other content fails the batch loudly rather than being replaced.
 */
import { gunzipSync } from 'node:zlib';
import { inParallel } from './concurrency';
import type { TrailConfig } from './config';
import { decide, type Candidate, type ObjectState } from './dedup';
import { countLogFile, type InsightCountStore } from './insights-live';
import type { CountableRecord } from './insights-counts';
import { logFileKey, parseLogFileKey, PATH_SEGMENT_PATTERN, uniqueFrom } from './layout';
import { storedRecordHash } from './content-hash';
import { encodeLogFileAsync, uncompressedSha256Async } from './logfile';
import type {
  DedupItem,
  DedupStore,
  DeliveryNotifier,
  ManifestRow,
  ManifestStore,
  MetricsSink,
  ObjectStore,
  StreamRegistry,
} from './ports';
import { trailAccepts, type SelectableRecord } from './selectors';

/** One stream record, decoded from the Lambda Kinesis event. */
export interface StreamRecord {
  readonly sequenceNumber: string;
  readonly partitionKey: string;
  readonly data: Uint8Array;
  /** Kinesis approximate arrival time, epoch ms. */
  readonly arrivalMs: number;
}

export interface StreamBatch {
  readonly shardId: string;
  readonly records: readonly StreamRecord[];
}

export interface PackagerDeps {
  readonly trails: readonly TrailConfig[];
  readonly bucket: string;
  readonly objects: ObjectStore;
  readonly manifest: ManifestStore;
  readonly dedup: DedupStore;
  readonly metrics: MetricsSink;
  readonly dedupWindowMs: number;
  /** Wall clock, for the manifest's delivery time only (never for keys or bytes). */
  readonly now: () => number;
  /** Files written at once. @default 8 */
  readonly concurrency?: number;
  /**
   * Dedup claims written at once: one small conditional write per kept record, bound by
   * round-trip latency rather than throughput. @default 32
   */
  readonly claimConcurrency?: number;
  /**
   * Delivery notices (docs/formats.md#delivery-notices), called after each file is marked delivered. At least
   * once: a retried batch notifies again for files it finds already written, since the crash
   * may have come between the write and the notice. A failing notifier fails the batch.
   * @default - no notices
   */
  readonly notifier?: DeliveryNotifier;
  /**
   * Registry of (trail, account, region) streams for the digest signer, told before each
   * file's manifest row (idempotent). @default - none (no digests)
   */
  readonly streams?: StreamRegistry;
  /**
   * Insights counters (docs/design.md#insights): each file's records are counted once, keyed
   * to the file, before it is marked delivered. @default - no counting (Insights off)
   */
  readonly insightCounts?: InsightCountStore;
}

/** A record the packager cannot file: the batch fails and goes to the on-failure destination. */
export class UnprocessableRecordError extends Error {
  override readonly name = 'UnprocessableRecordError';
  constructor(
    readonly sequenceNumber: string,
    reason: string,
  ) {
    super(`stream record ${sequenceNumber}: ${reason}`);
  }
}

/** Dedup claims changed under us (a concurrent writer): the batch is retried whole. */
export class DedupRaceError extends Error {
  override readonly name = 'DedupRaceError';
}

/**
 * A record as the packager keeps it through the batch: its text and the few fields it files
 * by. The parsed JSON tree is dropped as soon as the trails have looked at it, so a batch does
 * not hold a thousand object trees across its writes (they would outlive the young generation
 * and cost a full copy each in garbage collection).
 */
interface Parsed {
  readonly sequenceNumber: string;
  readonly text: string;
  /** The fields filing and Insights counting read (references into the parsed record). */
  readonly record: CountableRecord & {
    readonly eventID: string;
    readonly eventTime: string;
    readonly awsRegion: string;
    readonly recipientAccountId: string;
  };
  /** The trails that keep the record, in configuration order. */
  readonly trails: readonly TrailConfig[];
  readonly insight: boolean;
  /** storedRecordHash of the record: what dedup compares copies by. */
  readonly hash: string;
  readonly arrivalMs: number;
  /** The first trail (in configuration order) that keeps the record: Insights count it there. */
  readonly countedFor?: string;
}

interface PlannedFile {
  readonly trail: TrailConfig;
  readonly kind: 'CloudTrail' | 'CloudTrail-Insight';
  readonly account: string;
  readonly region: string;
  readonly key: string;
  readonly records: Parsed[];
}

export interface PackagerResult {
  readonly files: readonly {
    readonly key: string;
    readonly records: number;
    readonly sha256: string;
  }[];
  readonly duplicates: number;
  readonly conflicts: number;
}

const SEGMENT = new RegExp(PATH_SEGMENT_PATTERN);

function parse(record: StreamRecord, trails: readonly TrailConfig[]): Parsed {
  // A view on the record's bytes, not a copy of them.
  const { data } = record;
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UnprocessableRecordError(record.sequenceNumber, 'data is not JSON');
  }
  const fields = value as Record<string, unknown> | null;
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
    throw new UnprocessableRecordError(record.sequenceNumber, 'data is not a JSON object');
  }
  for (const field of ['eventID', 'eventTime', 'awsRegion', 'recipientAccountId']) {
    if (typeof fields[field] !== 'string') {
      throw new UnprocessableRecordError(
        record.sequenceNumber,
        `${field} is missing or not a string (records must come through PutAuditEvents)`,
      );
    }
  }
  if (
    !SEGMENT.test(fields.awsRegion as string) ||
    !SEGMENT.test(fields.recipientAccountId as string)
  ) {
    throw new UnprocessableRecordError(
      record.sequenceNumber,
      `awsRegion and recipientAccountId must match ${PATH_SEGMENT_PATTERN}`,
    );
  }
  const selectable = fields as SelectableRecord;
  const keptBy = trails.filter((trail) => keeps(trail, selectable));
  return {
    sequenceNumber: record.sequenceNumber,
    text,
    record: {
      eventID: fields.eventID as string,
      eventTime: fields.eventTime as string,
      awsRegion: fields.awsRegion as string,
      recipientAccountId: fields.recipientAccountId as string,
      eventSource: fields.eventSource,
      eventName: fields.eventName,
      userIdentity: fields.userIdentity,
      userAgent: fields.userAgent,
      errorCode: fields.errorCode,
      readOnly: fields.readOnly,
      managementEvent: fields.managementEvent,
      eventCategory: fields.eventCategory,
      eventType: fields.eventType,
    },
    trails: keptBy,
    ...(keptBy[0] ? { countedFor: keptBy[0].name } : {}),
    insight: isInsight(selectable),
    hash: storedRecordHash(fields, text),
    arrivalMs: record.arrivalMs,
  };
}

/** Insights events go to their own files (docs/formats.md#log-files, `CloudTrail-Insight`). */
function isInsight(record: SelectableRecord): boolean {
  return record.eventCategory === 'Insight' || record.eventType === 'AwsCloudTrailInsight';
}

/**
 * Whether a trail keeps a record. Insights records go to the trails whose insight selectors
 * name their type (all types when a trail has none); event selectors do not apply to them
 * (docs/formats.md#insights-events).
 */
function keeps(trail: TrailConfig, record: SelectableRecord): boolean {
  if (!isInsight(record)) return trailAccepts(trail, record);
  const type = (record as { insightDetails?: { insightType?: unknown } }).insightDetails
    ?.insightType;
  return trail.insightSelectors?.some((s) => s.InsightType === type) ?? true;
}

/** The trail a record is counted for by Insights: the first that keeps it. */
function countingTrail(
  trails: readonly TrailConfig[],
  record: SelectableRecord,
): string | undefined {
  return trails.find((trail) => keeps(trail, record))?.name;
}

/** Groups records into files, one per (trail, account, region, kind), in stream order. */
function planFiles(batch: StreamBatch, records: Parsed[], bucket: string): PlannedFile[] {
  const first = batch.records[0]!.sequenceNumber;
  const last = batch.records[batch.records.length - 1]!.sequenceNumber;
  let deliveryMs = -Infinity;
  for (const r of batch.records) if (r.arrivalMs > deliveryMs) deliveryMs = r.arrivalMs;
  const files = new Map<string, PlannedFile>();
  for (const parsed of records) {
    for (const trail of parsed.trails) {
      const account = parsed.record.recipientAccountId;
      const region = parsed.record.awsRegion;
      const kind = parsed.insight ? 'CloudTrail-Insight' : 'CloudTrail';
      const id = `${trail.name}\n${account}\n${region}\n${kind}`;
      let file = files.get(id);
      if (!file) {
        const unique = uniqueFrom(`${bucket}\n${batch.shardId}\n${first}\n${last}\n${id}`);
        const key = logFileKey({
          prefix: trail.prefix,
          organizationId: trail.organizationId,
          account,
          region,
          deliveryMs,
          unique,
          kind,
        });
        file = { trail, kind, account, region, key, records: [] };
        files.set(id, file);
      }
      file.records.push(parsed);
    }
  }
  return [...files.values()];
}

/** A record's copy for one trail: the record and the file it goes to. */
interface Copy {
  readonly parsed: Parsed;
  readonly file: PlannedFile;
}

interface DedupOutcome {
  /** The records kept, per file. */
  readonly kept: Map<PlannedFile, Set<Parsed>>;
  /** Copies dropped (a record counts once per trail it was dropped for). */
  readonly duplicates: number;
  readonly conflicts: number;
  /** Copies kept without a claim (flood bound or item size). */
  readonly unclaimed: number;
  /** Written objects of other batches that hold copies dropped here: marked delivered now. */
  readonly complete: readonly ManifestRow[];
}

/**
 * Where each object a claim names stands (see dedup.ts, ObjectState). A pending row of an object
 * in `probe` is `written` when the object is there with the row's content, else `reserved`;
 * other pending rows (this batch's own objects, whose bytes are fixed once reserved, and claims
 * that only eviction looks at) are `reserved` without a look.
 */
async function objectStates(
  keys: readonly string[],
  probe: ReadonlySet<string>,
  deps: PackagerDeps,
): Promise<{ stateOf: (key: string) => ObjectState; rows: Map<string, ManifestRow> }> {
  const unique = [...new Set(keys)];
  const rows = new Map(
    (unique.length > 0 ? await deps.manifest.getMany(unique.map(splitObjectId)) : []).map((row) => [
      `${row.bucket}/${row.key}`,
      row,
    ]),
  );
  const states = new Map<string, ObjectState>();
  await inParallel(unique, deps.concurrency ?? 8, async (id) => {
    const row = rows.get(id);
    if (row === undefined || row.state === 'delivered' || !probe.has(id)) {
      states.set(
        id,
        row === undefined ? 'none' : row.state === 'delivered' ? 'delivered' : 'reserved',
      );
      return;
    }
    const body = await deps.objects.get(row.bucket, row.key);
    states.set(
      id,
      body !== undefined && (await uncompressedSha256Async(body)) === row.sha256
        ? 'written'
        : 'reserved',
    );
  });
  return { stateOf: (key) => states.get(key) ?? 'none', rows };
}

/** Applies dedup per (record, trail) and writes the claims first (one write per changed item). */
async function applyDedup(
  batch: StreamBatch,
  batchId: string,
  copies: readonly Copy[],
  deps: PackagerDeps,
): Promise<DedupOutcome> {
  const ids = [...new Set(copies.map((c) => c.parsed.record.eventID))];
  const stored = await deps.dedup.getMany(ids);
  // One `bucket/key` string per file, not one per copy.
  const objectIds = new Map<PlannedFile, string>();
  for (const { file } of copies)
    if (!objectIds.has(file)) objectIds.set(file, `${deps.bucket}/${file.key}`);
  const keyOf = (file: PlannedFile): string => objectIds.get(file)!;
  const ownKeys = new Set(objectIds.values());
  const claims = [...stored.values()].flatMap((item) => item.claims);
  // Only a claim on the same content for the same trail can hold a copy of ours; the others
  // matter for eviction alone, where delivered or not is all that counts. (No stored claims,
  // the usual case for new events: nothing to probe, and no need to list the batch's content.)
  const relevant =
    claims.length === 0
      ? new Set<string>()
      : new Set(copies.map((c) => `${c.file.trail.name}\n${c.parsed.hash}`));
  const probe = new Set(
    claims
      .filter((claim) => relevant.has(`${claim.trail}\n${claim.hash}`))
      .map((claim) => claim.key)
      .filter((key) => !ownKeys.has(key)),
  );
  const { stateOf, rows } = await objectStates(
    [...claims.map((claim) => claim.key), ...ownKeys],
    probe,
    deps,
  );

  const items = new Map<string, DedupItem | undefined>(ids.map((id) => [id, stored.get(id)]));
  const changed = new Set<string>();
  const kept = new Map<PlannedFile, Set<Parsed>>();
  const keptInBatch = new Set<string>();
  const conflicting = new Set<Parsed>();
  const complete = new Map<string, ManifestRow>();
  let duplicates = 0;
  let unclaimed = 0;
  for (const { parsed, file } of copies) {
    const eventId = parsed.record.eventID;
    // A second copy within this batch would meet the first copy's claim, which is ours.
    const copy = `${file.trail.name}\n${eventId}\n${parsed.hash}`;
    if (keptInBatch.has(copy)) {
      duplicates++;
      continue;
    }
    const candidate: Candidate = {
      eventId,
      hash: parsed.hash,
      trail: file.trail.name,
      record: `${batch.shardId}:${parsed.sequenceNumber}`,
      batch: batchId,
      arrivalMs: parsed.arrivalMs,
      key: keyOf(file),
    };
    const decision = decide(items.get(eventId), candidate, deps.dedupWindowMs, stateOf);
    if (!decision.keep) {
      duplicates++;
      const row = decision.complete === undefined ? undefined : rows.get(decision.complete);
      if (row) complete.set(decision.complete!, row);
      continue;
    }
    if (decision.conflict) conflicting.add(parsed);
    if (decision.unclaimed) unclaimed++;
    if (decision.item) {
      items.set(eventId, decision.item);
      changed.add(eventId);
    }
    const set = kept.get(file) ?? new Set<Parsed>();
    set.add(parsed);
    kept.set(file, set);
    keptInBatch.add(copy);
  }
  const windowSeconds = Math.ceil(deps.dedupWindowMs / 1000);
  await inParallel([...changed], deps.claimConcurrency ?? 32, async (eventId) => {
    const item = items.get(eventId)!;
    const expiresAt =
      Math.ceil(Math.max(...item.claims.map((c) => c.arrivalMs)) / 1000) + windowSeconds + 86_400;
    const ok = await deps.dedup.put(item, stored.get(eventId)?.ver ?? 0, expiresAt);
    if (!ok)
      throw new DedupRaceError(
        `dedup claim for eventID ${eventId} changed during the batch; retrying the batch`,
      );
  });
  return {
    kept,
    duplicates,
    conflicts: conflicting.size,
    unclaimed,
    complete: [...complete.values()],
  };
}

function splitObjectId(id: string): { bucket: string; key: string } {
  const slash = id.indexOf('/');
  return { bucket: id.slice(0, slash), key: id.slice(slash + 1) };
}

/** The minute a log file was delivered, from its key's stamp (`YYYYMMDDTHHMMZ`). */
function deliveryMinute(key: string): number {
  const stamp = parseLogFileKey(key)?.stamp;
  if (!stamp) throw new Error(`${key}: not a log-file key`);
  const iso = `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:00Z`;
  return Date.parse(iso) / 60_000;
}

/**
 * Marks another batch's written object delivered (its records were dropped here as copies),
 * counting it for Insights first: that batch may have stopped before it counted.
 */
async function completeObject(row: ManifestRow, deps: PackagerDeps): Promise<void> {
  if (deps.insightCounts) {
    const body = await deps.objects.get(row.bucket, row.key);
    if (body === undefined) throw new Error(`s3://${row.bucket}/${row.key} vanished`);
    const records = (
      JSON.parse(gunzipSync(body).toString('utf8')) as { Records: SelectableRecord[] }
    ).Records.filter((record) => countingTrail(deps.trails, record) === row.trail);
    await countLogFile(
      deps.insightCounts,
      `${row.bucket}/${row.key}`,
      records,
      deliveryMinute(row.key),
    );
  }
  await deps.manifest.markDelivered(row.bucket, row.key, new Date(deps.now()).toISOString());
  await deps.notifier?.logFileDelivered({ trail: row.trail, bucket: row.bucket, key: row.key });
}

async function writeFile(
  file: PlannedFile,
  deps: PackagerDeps,
): Promise<{ key: string; records: number; sha256: string }> {
  const encoded = await encodeLogFileAsync(file.records.map((r) => r.text));
  // The oldest and newest eventTime as a sort would give them (UTF-16 order), in one pass.
  let oldestEventTime = file.records[0]!.record.eventTime;
  let newestEventTime = oldestEventTime;
  for (const { record } of file.records) {
    if (record.eventTime < oldestEventTime) oldestEventTime = record.eventTime;
    if (record.eventTime > newestEventTime) newestEventTime = record.eventTime;
  }
  // Before the manifest row, so the signer knows the stream before any of its files exists.
  await deps.streams?.register({
    trail: file.trail.name,
    account: file.account,
    region: file.region,
    firstSeenMs: deps.now(),
  });
  await deps.manifest.reserve({
    bucket: deps.bucket,
    key: file.key,
    trail: file.trail.name,
    account: file.account,
    region: file.region,
    sha256: encoded.sha256,
    oldestEventTime,
    newestEventTime,
    recordCount: file.records.length,
  });
  const outcome = await deps.objects.putIfAbsent({
    bucket: deps.bucket,
    key: file.key,
    body: encoded.gzip,
    contentType: 'application/json',
    contentEncoding: 'gzip',
  });
  if (outcome === 'exists') {
    const existing = await deps.objects.get(deps.bucket, file.key);
    if (existing === undefined || (await uncompressedSha256Async(existing)) !== encoded.sha256) {
      throw new Error(
        `s3://${deps.bucket}/${file.key} exists with other content; it is never overwritten`,
      );
    }
  }
  // Counted once the object exists and before it is delivered: see insights-live.ts.
  if (deps.insightCounts)
    await countLogFile(
      deps.insightCounts,
      `${deps.bucket}/${file.key}`,
      file.records.filter((r) => r.countedFor === file.trail.name).map((r) => r.record),
      deliveryMinute(file.key),
    );
  await deps.manifest.markDelivered(deps.bucket, file.key, new Date(deps.now()).toISOString());
  await deps.notifier?.logFileDelivered({
    trail: file.trail.name,
    bucket: deps.bucket,
    key: file.key,
  });
  return { key: file.key, records: file.records.length, sha256: encoded.sha256 };
}

/** Packages one batch. Throws to have the whole batch retried (never a partial result). */
export async function packageBatch(
  batch: StreamBatch,
  deps: PackagerDeps,
): Promise<PackagerResult> {
  if (batch.records.length === 0) return { files: [], duplicates: 0, conflicts: 0 };
  const parsed = batch.records.map((record) => parse(record, deps.trails));
  const batchId = `${batch.shardId}:${batch.records[0]!.sequenceNumber}:${batch.records[batch.records.length - 1]!.sequenceNumber}`;
  // Keys depend on the batch alone, so they are known before dedup decides what goes in.
  const allFiles = planFiles(batch, parsed, deps.bucket);
  const copies = allFiles.flatMap((file) =>
    file.records.map((record) => ({ parsed: record, file })),
  );
  const { kept, duplicates, conflicts, unclaimed, complete } = await applyDedup(
    batch,
    batchId,
    copies,
    deps,
  );
  await inParallel(complete, deps.concurrency ?? 8, (row) => completeObject(row, deps));
  const files = allFiles
    .map((file) => ({ ...file, records: file.records.filter((r) => kept.get(file)?.has(r)) }))
    .filter((file) => file.records.length > 0);
  const written: { key: string; records: number; sha256: string }[] = [];
  await inParallel(files, deps.concurrency ?? 8, async (file) => {
    written.push(await writeFile(file, deps));
  });
  deps.metrics.count('DuplicatesDropped', duplicates);
  deps.metrics.count('DedupConflicts', conflicts);
  deps.metrics.count('DedupClaimsSkipped', unclaimed);
  deps.metrics.count('LogFilesDelivered', written.length);
  deps.metrics.count(
    'RecordsDelivered',
    written.reduce((sum, f) => sum + f.records, 0),
  );
  written.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { files: written, duplicates, conflicts };
}
