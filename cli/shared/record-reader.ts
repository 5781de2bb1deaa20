/**
 * Reads CloudTrail records from files, directories (as copied from a CloudTrail bucket) and
 * stdin, one file at a time, for `opentrail put-events`.
 *
 * Accepted shapes (parsed in record-text.ts): a single record object, an array of records, a log file
 * `{"Records":[...]}`, JSON Lines (one record per line); each optionally gzip-compressed
 * (`.json.gz`, detected by its magic bytes, not its name). Skipped and counted by reason:
 * digest files, Insights files and Insights records, files that are not JSON.
 *
 * Replaying opentrail's own log files: a record's `opentrailProvenance` stamp is dropped
 * (docs/formats.md#provenance), since ingest refuses a producer-supplied stamp and stamps the
 * replaying caller instead. The replayed record is a new statement by whoever replays it; the
 * original stamp stays in the original log file, whose digest chain still vouches for it.
 *
 * Memory: the file list (paths only) is built up front so progress can show a total; records
 * are read one file at a time and handed out one by one, so a directory of gigabytes never
 * sits in memory at once.
 */
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback } from 'node:zlib';
import { PROVENANCE_FIELD } from '../../lambda/core/contracts';
import { skipWhitespace, valueEnd } from './json-text';
import { parseRecordsText } from './record-text';

const gunzip = promisify(gunzipCallback);

/** `-` names stdin. */
export const STDIN = '-';

export type SkipReason =
  | 'digest-file'
  | 'insights-file'
  | 'insight-record'
  | 'not-json'
  | 'not-records'
  | 'empty-file'
  | 'symlinked-directory'
  | 'not-a-regular-file';

/** One record as read: its parsed value and its compact source text. */
export interface InputRecord {
  /** File path, or `-` for stdin. */
  readonly source: string;
  /** Where in the source: `Records[3]`, `[3]`, `line 5`, or `record`. */
  readonly position: string;
  readonly value: Record<string, unknown>;
  /** The record's JSON as written in the source, without insignificant whitespace. */
  readonly text: string;
}

/**
 * Rewrites a record before it is sent (its `text` is what is sent as eventData). The seam for
 * options that change records on the way, such as issue 4's `--rebase-time`.
 */
export type RecordTransform = (record: InputRecord) => InputRecord;

export type ReadEvent =
  | { readonly kind: 'record'; readonly record: InputRecord }
  /** An element that cannot be a record (not an object, a JSON Lines line that is not JSON). */
  | {
      readonly kind: 'invalid-record';
      readonly source: string;
      readonly position: string;
      readonly eventID?: string;
      readonly errorMessage: string;
    }
  | {
      readonly kind: 'skip';
      readonly source: string;
      readonly reason: SkipReason;
      readonly count: number;
    }
  /** A file that should hold records and cannot be read as such. */
  | {
      readonly kind: 'file-error';
      readonly source: string;
      readonly errorCode: string;
      readonly errorMessage: string;
    }
  | { readonly kind: 'file-done'; readonly source: string };

/** One file to read; `explicit` when named on the command line (or stdin) rather than found in a directory. */
export interface InputFile {
  readonly path: string;
  readonly explicit: boolean;
}

export interface InputPlan {
  readonly files: readonly InputFile[];
  /** Directory entries left out while walking (symlinked directories, sockets, …). */
  readonly skipped: readonly { readonly source: string; readonly reason: SkipReason }[];
}

/** Thrown for an input that does not exist or cannot be listed: nothing is sent then. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

const DIGEST_MARKER = 'CloudTrail-Digest';
const INSIGHT_MARKER = 'CloudTrail-Insight';
const INSIGHT_EVENT_TYPE = 'AwsCloudTrailInsight';
const JSON_NAME = /\.(json|jsonl|ndjson)(\.gz)?$/i;
const HEAD_BYTES = 512;

/**
 * Expands the inputs into the files to read: a directory is walked recursively and its files
 * sorted by path (code-unit order, so the order is the same on every machine); files and `-`
 * are kept in the order given.
 */
export async function planInputs(inputs: readonly string[]): Promise<InputPlan> {
  const files: InputFile[] = [];
  const skipped: { source: string; reason: SkipReason }[] = [];
  for (const input of inputs) {
    if (input === STDIN) {
      files.push({ path: STDIN, explicit: true });
      continue;
    }
    let info;
    try {
      info = await stat(input);
    } catch (error) {
      throw new InputError(
        `input ${input}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : String(error)}`,
      );
    }
    if (info.isDirectory()) {
      const found: string[] = [];
      await walk(input, found, skipped);
      found.sort();
      for (const file of found) files.push({ path: file, explicit: false });
    } else {
      files.push({ path: input, explicit: true });
    }
  }
  return { files, skipped };
}

async function walk(
  dir: string,
  found: string[],
  skipped: { source: string; reason: SkipReason }[],
): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw new InputError(`cannot list directory ${dir}: ${String(error)}`);
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      await walk(full, found, skipped);
    } else if (entry.isFile()) {
      found.push(full);
    } else if (entry.isSymbolicLink()) {
      // Linked files are read; linked directories are not followed (a link cycle would never end).
      const target = await stat(full).catch(() => undefined);
      if (target?.isFile()) found.push(full);
      else
        skipped.push({
          source: full,
          reason: target?.isDirectory() ? 'symlinked-directory' : 'not-a-regular-file',
        });
    } else {
      skipped.push({ source: full, reason: 'not-a-regular-file' });
    }
  }
}

/** Reads the planned files in order, yielding their records one by one. */
export async function* readPlannedInputs(
  plan: InputPlan,
  options: { readonly stdin?: NodeJS.ReadableStream } = {},
): AsyncGenerator<ReadEvent> {
  for (const skip of plan.skipped)
    yield { kind: 'skip', source: skip.source, reason: skip.reason, count: 1 };
  for (const file of plan.files) {
    yield* readFile(file, options.stdin ?? process.stdin);
    yield { kind: 'file-done', source: file.path };
  }
}

async function* readFile(file: InputFile, stdin: NodeJS.ReadableStream): AsyncGenerator<ReadEvent> {
  const source = file.path;
  const byName = source === STDIN ? undefined : skipReasonForPath(source);
  if (byName) {
    yield { kind: 'skip', source, reason: byName, count: 1 };
    return;
  }
  // A file that merely sits in a directory and does not claim to be JSON is skipped when it is
  // not; one named on the command line, or named *.json*, is an error when it is not.
  const strict = file.explicit || JSON_NAME.test(source);
  const notJson = (errorCode: string, message: string): ReadEvent =>
    strict
      ? { kind: 'file-error', source, errorCode, errorMessage: message }
      : { kind: 'skip', source, reason: 'not-json', count: 1 };

  let bytes: Buffer;
  try {
    if (source === STDIN) {
      bytes = await readStream(stdin);
    } else {
      const head = await readHead(source);
      if (!isGzip(head) && !looksLikeJson(head)) {
        yield notJson('NotJson', `${source} is not JSON (it does not start with { or [)`);
        return;
      }
      bytes = await readWhole(source);
    }
  } catch (error) {
    yield {
      kind: 'file-error',
      source,
      errorCode: 'UnreadableFile',
      errorMessage: `cannot read ${source}: ${String(error)}`,
    };
    return;
  }
  if (isGzip(bytes)) {
    try {
      bytes = await gunzip(bytes);
    } catch (error) {
      yield notJson(
        'InvalidGzip',
        `${source} is not a valid gzip file: ${(error as Error).message}`,
      );
      return;
    }
  }
  const text = bytes.toString('utf8');
  bytes = Buffer.alloc(0);
  const parsed = parseRecordsText(text);
  switch (parsed.kind) {
    case 'empty':
      yield { kind: 'skip', source, reason: 'empty-file', count: 1 };
      return;
    case 'digest':
      yield { kind: 'skip', source, reason: 'digest-file', count: 1 };
      return;
    case 'not-json':
      yield notJson('InvalidJson', `${source} is not valid JSON or JSON Lines: ${parsed.message}`);
      return;
    case 'not-records':
      yield strict
        ? {
            kind: 'file-error',
            source,
            errorCode: 'NotRecords',
            errorMessage: `${source}: ${parsed.message}`,
          }
        : { kind: 'skip', source, reason: 'not-records', count: 1 };
      return;
    case 'records':
      break;
  }
  let insights = 0;
  for (const item of parsed.items) {
    if (!item.ok) {
      yield {
        kind: 'invalid-record',
        source,
        position: item.position,
        ...(item.eventID !== undefined ? { eventID: item.eventID } : {}),
        errorMessage: item.message,
      };
    } else if (item.value.eventType === INSIGHT_EVENT_TYPE) {
      insights++;
    } else {
      yield {
        kind: 'record',
        record: withoutProvenance({
          source,
          position: item.position,
          value: item.value,
          text: item.text,
        }),
      };
    }
  }
  if (insights > 0) yield { kind: 'skip', source, reason: 'insight-record', count: insights };
}

/**
 * The record without its `opentrailProvenance` member (every copy of it, should the name
 * repeat), the other members' text unchanged; the record itself when it has none.
 */
export function withoutProvenance(record: InputRecord): InputRecord {
  if (!Object.prototype.hasOwnProperty.call(record.value, PROVENANCE_FIELD)) return record;
  const value = { ...record.value };
  delete value[PROVENANCE_FIELD];
  return { ...record, value, text: withoutMember(record.text, PROVENANCE_FIELD) };
}

/** Minified JSON object text without the top-level members named `name`. */
function withoutMember(text: string, name: string): string {
  const kept: string[] = [];
  let i = skipWhitespace(text, 1);
  while (i < text.length && text.charCodeAt(i) === 0x22) {
    const keyEnd = valueEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const valueStart = skipWhitespace(text, skipWhitespace(text, keyEnd) + 1);
    const end = valueEnd(text, valueStart);
    if (key !== name) kept.push(text.slice(i, end));
    i = skipWhitespace(text, end);
    if (text.charCodeAt(i) !== 0x2c) break;
    i = skipWhitespace(text, i + 1);
  }
  return `{${kept.join(',')}}`;
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** After an optional UTF-8 BOM and whitespace, a `{` or `[` (or nothing yet read). */
function looksLikeJson(head: Buffer): boolean {
  let i = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  while (
    i < head.length &&
    (head[i] === 0x20 || head[i] === 0x09 || head[i] === 0x0a || head[i] === 0x0d)
  )
    i++;
  return i === head.length || head[i] === 0x7b || head[i] === 0x5b;
}

async function readHead(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, HEAD_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function readWhole(file: string): Promise<Buffer> {
  return readStream(createReadStream(file));
}

async function readStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** The skip reason a path earns by its name alone (digest and Insights files), if any. */
export function skipReasonForPath(file: string): SkipReason | undefined {
  if (file.includes(DIGEST_MARKER)) return 'digest-file';
  if (file.includes(INSIGHT_MARKER)) return 'insights-file';
  return undefined;
}
