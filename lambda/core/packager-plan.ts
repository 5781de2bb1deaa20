/**
 * The packager's first step (core/packager.ts): each stream record parsed and checked, the
 * trails that keep it, and the files the batch's records go to.
 */
import { isUtf8 } from 'node:buffer';
import type { TrailConfig } from './config';
import { logFileKey, PATH_SEGMENT_PATTERN, uniqueFrom } from './layout';
import { storedRecordHash } from './content-hash';
import {
  UnprocessableRecordError,
  type Parsed,
  type PlannedFile,
  type StreamBatch,
  type StreamRecord,
} from './packager-types';
import { trailAccepts, type SelectableRecord } from './selectors';

const SEGMENT = new RegExp(PATH_SEGMENT_PATTERN);

/**
 * Parses and checks one stream record. With `counting` (Insights on) it keeps the fields
 * Insights counts by; without, only those the file needs, so no part of the parsed tree
 * (a userIdentity, say) outlives the parse.
 */
export function parse(
  record: StreamRecord,
  trails: readonly TrailConfig[],
  counting: boolean,
): Parsed {
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
    // Bytes that are not UTF-8 were read with replacement characters: the file holds those.
    data: isUtf8(data) ? data : Buffer.from(text, 'utf8'),
    record: counting
      ? {
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
        }
      : {
          eventID: fields.eventID as string,
          eventTime: fields.eventTime as string,
          awsRegion: fields.awsRegion as string,
          recipientAccountId: fields.recipientAccountId as string,
        },
    trails: keptBy,
    ...(counting && keptBy[0] ? { countedFor: keptBy[0].name } : {}),
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
export function countingTrail(
  trails: readonly TrailConfig[],
  record: SelectableRecord,
): string | undefined {
  return trails.find((trail) => keeps(trail, record))?.name;
}

/** Groups records into files, one per (trail, account, region, kind), in stream order. */
export function planFiles(batch: StreamBatch, records: Parsed[], bucket: string): PlannedFile[] {
  const first = batch.records[0]!.sequenceNumber;
  const last = batch.records[batch.records.length - 1]!.sequenceNumber;
  let deliveryMs = -Infinity;
  for (const r of batch.records) if (r.arrivalMs > deliveryMs) deliveryMs = r.arrivalMs;
  const files: PlannedFile[] = [];
  // Found by the record's own strings, one map per level: no key string built per record.
  const byTrail = new Map<TrailConfig, Map<string, Map<string, FileSlot>>>();
  for (const parsed of records) {
    const account = parsed.record.recipientAccountId;
    const region = parsed.record.awsRegion;
    const kind = parsed.insight ? 'CloudTrail-Insight' : 'CloudTrail';
    for (const trail of parsed.trails) {
      let byAccount = byTrail.get(trail);
      if (byAccount === undefined)
        byTrail.set(trail, (byAccount = new Map<string, Map<string, FileSlot>>()));
      let byRegion = byAccount.get(account);
      if (byRegion === undefined) byAccount.set(account, (byRegion = new Map<string, FileSlot>()));
      let slot = byRegion.get(region);
      if (slot === undefined) byRegion.set(region, (slot = {}));
      let file = slot[kind];
      if (file === undefined) {
        const id = `${trail.name}\n${account}\n${region}\n${kind}`;
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
        file = slot[kind] = { trail, kind, account, region, key, records: [] };
        files.push(file);
      }
      file.records.push(parsed);
    }
  }
  return files;
}

/** A (trail, account, region)'s files, one per kind. */
type FileSlot = { [kind in PlannedFile['kind']]?: PlannedFile };
