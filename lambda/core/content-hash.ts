/**
 * The one content hash of a record (docs/formats.md#content-hash): what the packager's dedup,
 * the event history's keys and the fan-out event key (core/event-key.ts) compare records by.
 *
 * `contentHash(record)` = lower-case hex SHA-256 of the UTF-8 bytes of the RFC 8785 canonical
 * JSON of the record, after removing the provenance stamp's per-request members
 * (`opentrailProvenance.sourceIPAddress`, `.requestId`, `.receivedAt`) and the stamp's own
`contentHash` member (the value ingest carries there). The stamp's principal
 * (`principalArn`, `accountId`, `principalOrgId`) stays in: a resend of the same record by the
 * same principal hashes the same (a duplicate), while the same record sent by another principal
 * does not (two callers vouching for one event are both kept, as a conflict). A record without
 * a stamp hashes as its whole canonical JSON.
 *
 * Pure: no SDK, no I/O (node:crypto only, through core/logfile.ts's sha256Hex).
 */
import {
  CONTENT_HASH_PATTERN,
  PROVENANCE_FIELD,
  PROVENANCE_HASH_MEMBER,
  PROVENANCE_PER_REQUEST_MEMBERS,
} from './contracts';
import { sha256Hex } from './logfile';

/** Strings JSON.stringify writes unchanged between quotes: nothing it escapes, no surrogate. */
const PLAIN_STRING = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** JSON.stringify of a string, without the call for the usual string that needs no escape. */
function quoted(text: string): string {
  return PLAIN_STRING.test(text) ? `"${text}"` : JSON.stringify(text);
}

/** RFC 8785 canonical JSON of a JSON value (what JSON.parse returns). */
export function canonicalJson(value: unknown): string {
  if (typeof value === 'string') return quoted(value);
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    // undefined, functions and symbols have no JSON form; JSON.stringify drops such members.
    if (text === undefined) throw new TypeError(`${typeof value} is not a JSON value`);
    return text;
  }
  // Appended to one string, not mapped and joined: ingest hashes every record it takes.
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const item: unknown = value[i];
      out += item === undefined ? 'null' : canonicalJson(item);
    }
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  let out = '{';
  for (const name of Object.keys(record).sort()) {
    const member = record[name];
    if (member === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${quoted(name)}:${canonicalJson(member)}`;
  }
  return `${out}}`;
}

/** The record as hashed: its stamp without the per-request members and the carried hash. */
function hashedForm(record: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const stamp = record[PROVENANCE_FIELD];
  if (typeof stamp !== 'object' || stamp === null || Array.isArray(stamp)) return record;
  const principal: Record<string, unknown> = { ...(stamp as Record<string, unknown>) };
  for (const member of PROVENANCE_PER_REQUEST_MEMBERS) delete principal[member];
  delete principal[PROVENANCE_HASH_MEMBER];
  return { ...record, [PROVENANCE_FIELD]: principal };
}

/** Hex SHA-256 of a record's content (see the module comment for exactly what is hashed). */
export function contentHash(record: Readonly<Record<string, unknown>>): string {
  return sha256Hex(canonicalJson(hashedForm(record)));
}

/**
 * contentHash of a record already in its hashed form (a stamp without per-request members or
 * hash), as ingest builds it: no copy of the record to strip them.
 */
export function contentHashOfHashedForm(record: Readonly<Record<string, unknown>>): string {
  return sha256Hex(canonicalJson(record));
}

/**
 * The contentHash ingest carries in a record's stamp (`opentrailProvenance.contentHash`), when it
 * is there and well-formed; undefined otherwise (a record stamped before ingest carried it, or a
 * record without a stamp). Trusted because only ingest writes stamps: it refuses any entry that
 * holds `opentrailProvenance`, and only ingest may write to the stream
 * (docs/security.md#provenance).
 */
export function carriedContentHash(fields: Readonly<Record<string, unknown>>): string | undefined {
  const stamp = fields[PROVENANCE_FIELD];
  if (typeof stamp !== 'object' || stamp === null) return undefined;
  const hash = (stamp as Record<string, unknown>)[PROVENANCE_HASH_MEMBER];
  return typeof hash === 'string' && CONTENT_HASH_PATTERN.test(hash) ? hash : undefined;
}

/**
 * The hash dedup claims and history items key a stored record by: `contentHash(fields)` for a
 * stamped record (the hash its stamp carries, else computed); for one without a stamp, the
 * SHA-256 of its text, as opentrail keyed every record before provenance
 * (docs/formats.md#content-hash). Ingest stamps every record it takes now, so only a record
 * that entered the stream before the upgrade has no stamp; when a batch of those is retried or
 * redriven after the upgrade, its hash still matches the dedup claims and history items written
 * for it before, and nothing is stored twice.
 */
export function storedRecordHash(fields: Readonly<Record<string, unknown>>, text: string): string {
  if (!(PROVENANCE_FIELD in fields)) return sha256Hex(text);
  return carriedContentHash(fields) ?? contentHash(fields);
}
