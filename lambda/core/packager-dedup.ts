/**
 * The packager's dedup step (core/packager.ts, core/dedup.ts): where each claimed object
 * stands, the decision per (record, trail), and the claims written before any file.
 */
import { inParallel } from './concurrency';
import { decide, type Candidate, type ObjectState } from './dedup';
import { uncompressedSha256Async } from './logfile';
import type { DedupItem, ManifestRow } from './ports';
import {
  DedupRaceError,
  type PackagerDeps,
  type Parsed,
  type PlannedFile,
  type StreamBatch,
} from './packager-types';

/** A record's copy for one trail: the record and the file it goes to. */
export interface Copy {
  readonly parsed: Parsed;
  readonly file: PlannedFile;
}

export interface DedupOutcome {
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
export async function applyDedup(
  batch: StreamBatch,
  batchId: string,
  copies: readonly Copy[],
  deps: PackagerDeps,
): Promise<DedupOutcome> {
  // Only an eventID that more than one record of the batch holds can meet a copy kept earlier
  // in the batch: the others skip that check and the key string it needs.
  const firstWith = new Map<string, Parsed>();
  const repeated = new Set<string>();
  for (const { parsed } of copies) {
    const first = firstWith.get(parsed.record.eventID);
    if (first === undefined) firstWith.set(parsed.record.eventID, parsed);
    else if (first !== parsed) repeated.add(parsed.record.eventID);
  }
  const ids = [...firstWith.keys()];
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
    const copy = repeated.has(eventId)
      ? `${file.trail.name}\n${eventId}\n${parsed.hash}`
      : undefined;
    if (copy !== undefined && keptInBatch.has(copy)) {
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
    if (copy !== undefined) keptInBatch.add(copy);
  }
  const windowSeconds = Math.ceil(deps.dedupWindowMs / 1000);
  await inParallel([...changed], deps.claimConcurrency ?? 32, async (eventId) => {
    const item = items.get(eventId)!;
    let newestMs = -Infinity;
    for (const claim of item.claims) if (claim.arrivalMs > newestMs) newestMs = claim.arrivalMs;
    const expiresAt = Math.ceil(newestMs / 1000) + windowSeconds + 86_400;
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
