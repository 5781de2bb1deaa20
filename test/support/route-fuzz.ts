/**
 * Property-based fuzzing of the embedded runtime's HTTP routes (docs/guarantees.md#hostile-input):
 * PutAuditEvents bodies and LookupEvents requests built by fast-check, sent to a running
 * runtime. Every answer must be a well-formed one of the documented answers and never a 5xx.
 * Used by the reliability suite (test/reliability) at two sizes.
 */
import { createHash, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import {
  LOOKUP_EVENTS_TARGET,
  MAX_ENTRIES_PER_REQUEST,
  MAX_RECORD_BYTES,
  MAX_REQUEST_BYTES,
} from '../../lambda/core/contracts';
import { ATTRIBUTE_KEYS } from '../../lambda/core/history-keys';

/** One request the fuzzer sent: its route, a short description, the status it got. */
export interface FuzzAnswer {
  readonly route: 'PutAuditEvents' | 'LookupEvents';
  readonly status: number;
  readonly body: unknown;
}

/** What a fuzz run found: one line per broken rule, and the eventIDs ingest accepted. */
export interface FuzzReport {
  readonly seed: number;
  readonly cases: number;
  readonly statuses: Record<string, number>;
  readonly problems: string[];
  /** eventID → SHA-256 of each distinct eventData accepted under it. */
  readonly accepted: Map<string, Set<string>>;
}

const KIB = 1024;
const SOURCES = ['iam.amazonaws.com', 's3.amazonaws.com', 'payments.example.com', ''];
const NAMES = ['CreateUser', 'ListUsers', 'PutObject', 'Charge', ''];

/** Text that stresses encodings: astral characters, escapes, lone surrogates, NUL, BOM. */
const awkwardText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('\ud800', '\udfff', '\u0000', '\ufeff', '🙂', '../..', '%00', '"', '\\'),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);

/** A string whose length sits at or around a limit. */
function aroundLimit(limit: number): fc.Arbitrary<string> {
  return fc
    .integer({ min: -2, max: 2 })
    .chain((delta) =>
      fc.constantFrom('a', 'é', '🙂').map((ch) => ch.repeat(Math.max(0, limit + delta))),
    );
}

function eventTime(): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc
      .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date(Date.now() + 3_600_000) })
      .map((d) =>
        Number.isNaN(d.getTime())
          ? '2020-01-01T00:00:00Z'
          : d.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      ),
    fc.constant(new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')),
    fc.constantFrom('2024-13-01T00:00:00Z', '2024-02-30T00:00:00Z', 'yesterday', '', 0, null),
    fc.integer(),
  );
}

/** A record: mostly plausible, with any field replaced by anything, sizes near the caps. */
function record(eventIds: readonly string[], big: boolean): fc.Arbitrary<Record<string, unknown>> {
  return fc
    .record(
      {
        eventVersion: fc.constantFrom('1.08', '1.09', '1.11'),
        eventTime: eventTime(),
        eventSource: fc.oneof(fc.constantFrom(...SOURCES), awkwardText),
        eventName: fc.oneof(fc.constantFrom(...NAMES), awkwardText),
        awsRegion: fc.constantFrom('us-east-1', 'eu-west-3', '', 'not a region'),
        eventID: fc.oneof(fc.constantFrom(...eventIds), fc.uuid(), awkwardText, aroundLimit(2000)),
        readOnly: fc.oneof(fc.boolean(), fc.constant('true')),
        recipientAccountId: fc.constantFrom('123456789012', '999999999999', '12345', 'x'),
        userIdentity: fc.oneof(
          fc.record({
            type: fc.constantFrom('IAMUser', 'AssumedRole', 'Root', 'AWSService'),
            arn: fc.constantFrom('arn:aws:iam::123456789012:user/alice', 'arn:x'),
            accountId: fc.constant('123456789012'),
            userName: awkwardText,
            accessKeyId: fc.constantFrom('AKIAEXAMPLE', ''),
          }),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        requestParameters: fc.oneof(
          { weight: 3, arbitrary: fc.constant(null) },
          {
            weight: 3,
            arbitrary: fc.dictionary(awkwardText, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
          },
          {
            weight: big ? 1 : 0,
            arbitrary: aroundLimit(100 * KIB - 16).map((s) => ({ p: s })),
          },
        ),
        userAgent: fc.oneof(awkwardText, aroundLimit(4 * KIB - 2)),
        errorCode: awkwardText,
        resources: fc.array(
          fc.record({ type: awkwardText, ARN: awkwardText }, { requiredKeys: [] }),
          { maxLength: 3 },
        ),
        extra: fc.jsonValue({ maxDepth: 3 }),
      },
      { requiredKeys: [] },
    )
    .chain((r) =>
      big
        ? fc.oneof(
            { weight: 8, arbitrary: fc.constant(r) },
            // Near the 256 KB record cap.
            {
              weight: 1,
              arbitrary: fc.constant({
                ...r,
                responseElements: { pad: 'x'.repeat(MAX_RECORD_BYTES - 2 * KIB) },
              }),
            },
            {
              weight: 1,
              arbitrary: fc.constant({ ...r, additionalEventData: { pad: 'y'.repeat(28 * KIB) } }),
            },
          )
        : fc.constant(r),
    );
}

function entry(eventIds: readonly string[], big = true): fc.Arbitrary<unknown> {
  return fc.oneof(
    {
      weight: 40,
      arbitrary: fc
        .record({
          id: fc.oneof(
            { weight: 12, arbitrary: fc.stringMatching(/^[-_A-Za-z0-9]{1,12}$/) },
            { weight: 1, arbitrary: aroundLimit(128) },
            { weight: 1, arbitrary: awkwardText },
          ),
          record: record(eventIds, big),
          checksum: fc.constantFrom('right', 'wrong', 'none', 'garbage'),
          dataAs: fc.constantFrom('json', 'json', 'json', 'not-json', 'array', 'number'),
        })
        .map(({ id, record: r, checksum, dataAs }) => {
          const eventData =
            dataAs === 'json'
              ? JSON.stringify(r)
              : dataAs === 'not-json'
                ? JSON.stringify(r).slice(0, -1)
                : dataAs === 'array'
                  ? JSON.stringify([r])
                  : '42';
          const sum = createHash('sha256').update(eventData).digest('base64');
          return {
            id,
            eventData,
            ...(checksum === 'right' ? { eventDataChecksum: sum } : {}),
            ...(checksum === 'wrong' ? { eventDataChecksum: sum.replace(/^./, 'A') } : {}),
            ...(checksum === 'garbage' ? { eventDataChecksum: '***' } : {}),
          };
        }),
    },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
    {
      weight: 1,
      arbitrary: fc.record({ id: fc.jsonValue({ maxDepth: 1 }), eventData: fc.jsonValue() }),
    },
  );
}

/** A PutAuditEvents body: bytes, with its shape, size and encoding all in play. */
export function putAuditEventsBody(): fc.Arbitrary<Buffer> {
  const eventIds = Array.from({ length: 6 }, () => randomUUID());
  const entries = fc.oneof(
    { weight: 8, arbitrary: fc.array(entry(eventIds), { minLength: 1, maxLength: 8 }) },
    { weight: 1, arbitrary: fc.constant([]) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(MAX_ENTRIES_PER_REQUEST, MAX_ENTRIES_PER_REQUEST + 1)
        .chain((n) => fc.array(entry(eventIds, false), { minLength: n, maxLength: n })),
    },
    // The same id twice: DuplicatedAuditEventId.
    { weight: 1, arbitrary: entry(eventIds).map((e) => [e, e]) },
  );
  const json = fc.oneof(
    { weight: 10, arbitrary: entries.map((auditEvents) => ({ auditEvents })) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.record({ auditEvents: fc.jsonValue({ maxDepth: 2 }) }) },
  );
  return fc.oneof(
    { weight: 12, arbitrary: json.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
    // Not JSON, invalid UTF-8, a BOM, an empty body.
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
    {
      weight: 1,
      arbitrary: json.map((v) =>
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(v) ?? '')]),
      ),
    },
    // Around the 1 MiB body limit.
    {
      weight: 1,
      arbitrary: fc.integer({ min: -2, max: 2 }).map((delta) => {
        const head = '{"auditEvents":[{"id":"big","eventData":"';
        const tail = '"}]}';
        const pad = MAX_REQUEST_BYTES + delta - head.length - tail.length;
        return Buffer.from(head + 'z'.repeat(Math.max(0, pad)) + tail);
      }),
    },
  );
}

/** A LookupEvents request: target, content type and body. */
export function lookupEventsRequest(): fc.Arbitrary<{ target: string; body: Buffer }> {
  const attribute = fc.record(
    {
      AttributeKey: fc.oneof(fc.constantFrom(...ATTRIBUTE_KEYS), awkwardText),
      AttributeValue: fc.oneof(awkwardText, aroundLimit(2000), fc.jsonValue({ maxDepth: 1 })),
    },
    { requiredKeys: [] },
  );
  const time = fc.oneof(
    fc.integer({ min: 0, max: 4_102_444_800 }),
    fc.double(),
    fc.constantFrom('1700000000', 'now', -1, 1e20, null),
  );
  const request = fc.record(
    {
      LookupAttributes: fc.oneof(
        fc.array(attribute, { maxLength: 2 }),
        fc.jsonValue({ maxDepth: 1 }),
      ),
      StartTime: time,
      EndTime: time,
      EventCategory: fc.oneof(fc.constant('insight'), awkwardText),
      MaxResults: fc.oneof(fc.integer({ min: -1, max: 51 }), fc.double(), fc.string()),
      NextToken: fc.oneof(awkwardText, fc.base64String({ maxLength: 300 })),
    },
    { requiredKeys: [] },
  );
  // Valid requests too, so the paths past validation (queries, pages, tokens) are fuzzed.
  const wellFormed = fc.record(
    {
      LookupAttributes: fc.array(
        fc.record({
          AttributeKey: fc.constantFrom(...ATTRIBUTE_KEYS),
          AttributeValue: fc.oneof(
            fc.constantFrom('CreateUser', 'iam.amazonaws.com', 'false', 'alice'),
            awkwardText.filter((v) => v.length > 0),
          ),
        }),
        { maxLength: 1 },
      ),
      StartTime: fc.integer({ min: 0, max: 2_000_000_000 }),
      EndTime: fc.integer({ min: 2_000_000_000, max: 4_102_444_800 }),
      MaxResults: fc.integer({ min: 1, max: 50 }),
    },
    { requiredKeys: [] },
  );
  return fc.record({
    target: fc.constantFrom(
      LOOKUP_EVENTS_TARGET,
      LOOKUP_EVENTS_TARGET,
      LOOKUP_EVENTS_TARGET,
      'CloudTrail_20131101.LookupEvents',
      'CloudTrail_20131101.NoSuchOperation',
      '',
    ),
    body: fc.oneof(
      { weight: 10, arbitrary: request.map((r) => Buffer.from(JSON.stringify(r))) },
      { weight: 10, arbitrary: wellFormed.map((r) => Buffer.from(JSON.stringify(r))) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b)) },
    ),
  });
}

async function send(
  url: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { method: 'POST', headers, body });
  return { status: response.status, text: await response.text() };
}

/** The documented answers of PutAuditEvents (docs/formats.md#putauditevents). */
function checkPutAnswer(
  body: Buffer,
  status: number,
  text: string,
  accepted: Map<string, Set<string>>,
): string | undefined {
  let answer: Record<string, unknown>;
  try {
    answer = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return `PutAuditEvents ${status}: answer is not JSON: ${text.slice(0, 120)}`;
  }
  // 400, or 413 past API Gateway's own 10 MiB payload limit (docs/formats.md#whole-request-errors).
  if (status === 400 || status === 413) {
    return typeof answer.__type === 'string' && typeof answer.message === 'string'
      ? undefined
      : `PutAuditEvents ${status} without {__type, message}: ${text.slice(0, 120)}`;
  }
  if (status !== 200) return `PutAuditEvents answered ${status}: ${text.slice(0, 200)}`;
  let sent: { id: string; eventData: string }[];
  try {
    sent = (
      JSON.parse(body.toString('utf8').replace(/^\ufeff/, '')) as {
        auditEvents: { id: string; eventData: string }[];
      }
    ).auditEvents;
  } catch {
    return `PutAuditEvents 200 for a body that is not JSON: ${body.subarray(0, 60).toString('hex')}`;
  }
  const successful = answer.successful as { id: string; eventID: string }[];
  const failed = answer.failed as { id: string; errorCode: string; errorMessage: string }[];
  if (!Array.isArray(successful) || !Array.isArray(failed))
    return `PutAuditEvents 200 without successful/failed lists: ${text.slice(0, 120)}`;
  const ids = [...successful, ...failed].map((e) => e.id).sort();
  const sentIds = sent.map((e) => e.id).sort();
  if (JSON.stringify(ids) !== JSON.stringify(sentIds))
    return `PutAuditEvents: entries ${JSON.stringify(sentIds).slice(0, 80)} answered as ${JSON.stringify(ids).slice(0, 80)} (each must be in exactly one list)`;
  for (const f of failed) {
    if (f.errorCode === 'InternalFailure' || f.errorCode === 'Throttling')
      return `PutAuditEvents: entry ${f.id} failed with ${f.errorCode}: ${f.errorMessage}`;
    if (typeof f.errorMessage !== 'string' || f.errorMessage.length === 0)
      return `PutAuditEvents: entry ${f.id} failed without a message`;
  }
  for (const s of successful) {
    const data = sent.find((e) => e.id === s.id)!.eventData;
    const hashes = accepted.get(s.eventID) ?? new Set<string>();
    hashes.add(createHash('sha256').update(data).digest('hex'));
    accepted.set(s.eventID, hashes);
  }
  return undefined;
}

function checkLookupAnswer(status: number, text: string): string | undefined {
  let answer: Record<string, unknown>;
  try {
    answer = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return `LookupEvents ${status}: answer is not JSON: ${text.slice(0, 120)}`;
  }
  if (status === 200)
    return Array.isArray(answer.Events)
      ? undefined
      : `LookupEvents 200 without Events: ${text.slice(0, 120)}`;
  if (status === 400 || status === 404)
    return typeof answer.__type === 'string' || typeof answer.message === 'string'
      ? undefined
      : `LookupEvents ${status} without an error type: ${text.slice(0, 120)}`;
  return `LookupEvents answered ${status}: ${text.slice(0, 200)}`;
}

/**
 * Sends `runs` fuzzed requests to each route of the runtime at `api` and reports every
 * answer that breaks the documented contract. `progress` is called every 500 cases.
 */
export async function fuzzRoutes(options: {
  readonly api: string;
  readonly runs: number;
  readonly seed: number;
  readonly progress?: (line: string) => void;
}): Promise<FuzzReport> {
  const { api, runs, seed } = options;
  const problems: string[] = [];
  const statuses: Record<string, number> = {};
  const accepted = new Map<string, Set<string>>();
  let cases = 0;
  const count = (route: string, status: number): void => {
    const key = `${route} ${status}`;
    statuses[key] = (statuses[key] ?? 0) + 1;
    if (++cases % 500 === 0) options.progress?.(`${cases} cases, ${problems.length} problems`);
  };
  await fc.assert(
    fc.asyncProperty(putAuditEventsBody(), async (body) => {
      const { status, text } = await send(
        `${api}/PutAuditEvents`,
        { 'Content-Type': 'application/json' },
        body,
      );
      count('PutAuditEvents', status);
      const problem = checkPutAnswer(body, status, text, accepted);
      if (problem) problems.push(problem);
    }),
    { seed, numRuns: runs, endOnFailure: false },
  );
  await fc.assert(
    fc.asyncProperty(lookupEventsRequest(), async ({ target, body }) => {
      const { status, text } = await send(
        `${api}/`,
        { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': target },
        body,
      );
      count('LookupEvents', status);
      const problem = checkLookupAnswer(status, text);
      if (problem) problems.push(problem);
    }),
    { seed, numRuns: runs, endOnFailure: false },
  );
  return { seed, cases, statuses, problems, accepted };
}
