/**
 * PutAuditEvents through the embedded runtime's HTTP API (real ingest handler, kinesalite,
 * packager, s3rver, dynalite): the per-entry codes of docs/formats.md#putauditevents for every kind of bad
 * record, the good entries of the same request reaching log files, and the whole-request
 * errors. No bad input may be answered with a 5xx.
 */
import '../fixtures/quiet-powertools';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clients } from '../../lambda/adapters/clients';
import { ingestComponent } from '../../local/components/ingest';
import { packagerComponent } from '../../local/components/packager';
import { startRuntime, type Runtime } from '../../local/runtime';
import { clientsFor, destroyClients, waitFor } from '../e2e/harness';
import { checkLogFiles, type LogCheck } from '../support/log-check';
import { minimalRecord, objectOfJsonBytes, stringOfJsonBytes } from '../fixtures/records';

jest.setTimeout(40_000);

const KIB = 1024;
/** Caps of docs/formats.md#size-limits, in UTF-8 bytes of the field's JSON. */
const CAPS = {
  requestParameters: 100 * KIB,
  responseElements: 100 * KIB,
  additionalEventData: 28 * KIB,
  userAgent: 4 * KIB,
  errorCode: 4 * KIB,
  errorMessage: 4 * KIB,
  requestID: 4 * KIB,
} as const;
const RECORD_CAP = 256 * KIB;
/**
 * Bytes the embedded runtime's provenance stamp adds to a record (docs/formats.md#provenance):
 * the local principal, a client on 127.0.0.1, a UUID request id, a millisecond receive time,
 * the record's contentHash.
 */
const LOCAL_STAMP_BYTES = Buffer.byteLength(
  `,"opentrailProvenance":${JSON.stringify({
    principalArn: 'arn:aws:iam::123456789012:user/opentrail-local',
    accountId: '123456789012',
    sourceIPAddress: '127.0.0.1',
    requestId: randomUUID(),
    receivedAt: new Date().toISOString(),
    contentHash: 'f'.repeat(64),
  })}`,
  'utf8',
);
const BODY_CAP = 1_048_576;

/** Marks every record this file sends, so log files can be searched for exactly them. */
const RUN = randomUUID().slice(0, 8);

let dataDir: string;
let runtime: Runtime;
let clients: Clients;
/** Every status a bad input got, for the no-5xx check at the end. */
const statuses: { what: string; status: number }[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'opentrail-handlers-ingest-'));
  // Without the digest signer: a digest period closing mid-test would put digest files among
  // the log files that checkLogFiles reads.
  runtime = await startRuntime({
    dataDir,
    port: 0,
    flushSeconds: 0.2,
    retryBaseMs: 20,
    components: [ingestComponent, packagerComponent],
  });
  clients = clientsFor(runtime.endpoints);
});

afterAll(async () => {
  if (clients) destroyClients(clients);
  if (runtime) await runtime.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Reply {
  readonly status: number;
  readonly contentType: string | null;
  readonly body: unknown;
}

async function post(
  what: string,
  body: string | Buffer,
  path = '/PutAuditEvents',
  method = 'POST',
): Promise<Reply> {
  const response = await fetch(`${runtime.endpoints.api}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    ...(method === 'GET' ? {} : { body }),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Left as text: the assertions on the shape will say so.
  }
  statuses.push({ what, status: response.status });
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: parsed,
  };
}

interface Entry {
  readonly id: string;
  readonly eventData: string;
  readonly eventDataChecksum?: string;
}

const requestOf = (entries: readonly Entry[]): string => JSON.stringify({ auditEvents: entries });
const checksum = (text: string): string =>
  createHash('sha256').update(text, 'utf8').digest('base64');

/** A valid record carrying `probe`, so it can be found in (or shown absent from) the log files. */
function record(probe: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return minimalRecord({ ingestProbe: `${RUN}:${probe}`, ...overrides });
}

function without(field: string, probe: string): Record<string, unknown> {
  const r = record(probe);
  delete r[field];
  return r;
}

const utcSeconds = (ms: number): string => new Date(ms).toISOString().slice(0, 19) + 'Z';

interface BadCase {
  readonly name: string;
  readonly eventData: string;
  readonly eventDataChecksum?: string;
  readonly code: 'InvalidData' | 'FieldNotFound' | 'FieldTooLong' | 'InvalidChecksum';
  /** What the message must name. */
  readonly field: string;
}

interface GoodCase {
  readonly name: string;
  readonly eventData: string;
  readonly eventDataChecksum?: string;
}

function badCases(): BadCase[] {
  const cases: BadCase[] = [];
  const bad = (
    name: string,
    r: Record<string, unknown>,
    code: BadCase['code'],
    field: string,
  ): void => {
    cases.push({ name, eventData: JSON.stringify(r), code, field });
  };
  // Not JSON, not an object.
  for (const [name, eventData] of [
    ['not JSON: truncated', '{"eventTime":'],
    ['not JSON: empty string', ''],
    ['not JSON: bare word', 'undefined'],
  ] as const) {
    cases.push({ name, eventData, code: 'InvalidData', field: 'eventData' });
  }
  for (const [name, eventData] of [
    ['not an object: array', '[{"eventTime":"2024-05-01T11:59:00Z"}]'],
    ['not an object: string', '"a record"'],
    ['not an object: number', '42'],
    ['not an object: null', 'null'],
    ['not an object: boolean', 'true'],
  ] as const) {
    cases.push({ name, eventData, code: 'InvalidData', field: 'eventData' });
  }
  // Each required field missing.
  for (const field of ['eventTime', 'eventSource', 'eventName', 'awsRegion', 'userIdentity']) {
    bad(`missing ${field}`, without(field, `bad:missing-${field}`), 'FieldNotFound', field);
  }
  // Wrong types and malformed values.
  const wrong: [string, Record<string, unknown>, string][] = [
    ['eventSource is a number', { eventSource: 42 }, 'eventSource'],
    ['eventSource is empty', { eventSource: '' }, 'eventSource'],
    ['eventName is null', { eventName: null }, 'eventName'],
    ['awsRegion is an array', { awsRegion: ['us-east-1'] }, 'awsRegion'],
    ['awsRegion holds a path', { awsRegion: 'us-east-1/../x' }, 'awsRegion'],
    ['userIdentity is a string', { userIdentity: 'alice' }, 'userIdentity'],
    [
      'userIdentity.sessionContext.attributes.mfaAuthenticated is a boolean',
      {
        userIdentity: {
          type: 'AssumedRole',
          sessionContext: { attributes: { mfaAuthenticated: true } },
        },
      },
      'userIdentity.sessionContext.attributes.mfaAuthenticated',
    ],
    ['eventTime is a number', { eventTime: 1_714_564_740 }, 'eventTime'],
    ['eventTime has a space, not T', { eventTime: '2024-05-01 11:59:00' }, 'eventTime'],
    ['eventTime has milliseconds', { eventTime: '2024-05-01T11:59:00.000Z' }, 'eventTime'],
    ['eventTime is not a real date', { eventTime: '2024-02-30T00:00:00Z' }, 'eventTime'],
    [
      'eventTime is 20 minutes in the future',
      { eventTime: utcSeconds(Date.now() + 20 * 60_000) },
      'eventTime',
    ],
    ['readOnly is the string "true"', { readOnly: 'true' }, 'readOnly'],
    ['managementEvent is a string', { managementEvent: 'yes' }, 'managementEvent'],
    ['requestParameters is a string', { requestParameters: 'a=b' }, 'requestParameters'],
    ['responseElements is an array', { responseElements: [1] }, 'responseElements'],
    ['resources is an object', { resources: { ARN: 'arn:aws:s3:::b' } }, 'resources'],
    ['eventVersion is 2.0', { eventVersion: '2.0' }, 'eventVersion'],
    ['eventID is a number', { eventID: 7 }, 'eventID'],
    [
      'recipientAccountId is a number',
      { recipientAccountId: 123_456_789_012 },
      'recipientAccountId',
    ],
    ['userAgent is a number', { userAgent: 5 }, 'userAgent'],
  ];
  for (const [name, overrides, field] of wrong)
    bad(name, record(`bad:${name}`, overrides), 'InvalidData', field);
  // Checksums.
  const text = JSON.stringify(record('bad:checksum of other text'));
  cases.push({
    name: 'checksum of another text',
    eventData: text,
    eventDataChecksum: checksum(`${text} `),
    code: 'InvalidChecksum',
    field: 'eventDataChecksum',
  });
  const text2 = JSON.stringify(record('bad:checksum is hex'));
  cases.push({
    name: 'checksum in hex, not base64',
    eventData: text2,
    eventDataChecksum: createHash('sha256').update(text2).digest('hex'),
    code: 'InvalidChecksum',
    field: 'eventDataChecksum',
  });
  return cases;
}

function goodCases(): GoodCase[] {
  const good = (name: string, overrides: Record<string, unknown> = {}): GoodCase => ({
    name,
    eventData: JSON.stringify(record(`good:${name}`, overrides)),
  });
  const withChecksum = JSON.stringify(record('good:with its checksum'));
  return [
    good('minimal, no eventID'),
    good('with eventID', { eventID: `good-${RUN}-1` }),
    {
      name: 'with its checksum',
      eventData: withChecksum,
      eventDataChecksum: checksum(withChecksum),
    },
    good('eventTime 10 minutes in the future', { eventTime: utcSeconds(Date.now() + 10 * 60_000) }),
    good('userIdentity without type, anonymous principal', {
      userIdentity: { accountId: 'ANONYMOUS_PRINCIPAL', principalId: 'ANONYMOUS_PRINCIPAL' },
    }),
    good('old eventVersion, service source IP, errorCode alone', {
      eventVersion: '1.01',
      sourceIPAddress: 'AWS Internal',
      errorCode: 'AccessDenied',
    }),
    good('made-up region', { awsRegion: 'xx-madeup-9' }),
    good('null requestParameters and responseElements', {
      requestParameters: null,
      responseElements: null,
    }),
    good('unknown fields', { someFutureField: { nested: [1, 'two', 12345678901234567890] } }),
  ];
}

/** Over-cap records (FieldTooLong) and records exactly at the caps (accepted). */
function sizeCases(): { bad: BadCase[]; good: GoodCase[] } {
  const bad: BadCase[] = [];
  for (const [field, cap] of Object.entries(CAPS)) {
    const value =
      field === 'requestParameters' ||
      field === 'responseElements' ||
      field === 'additionalEventData'
        ? objectOfJsonBytes(cap + 1)
        : stringOfJsonBytes(cap + 1);
    bad.push({
      name: `${field} one byte over its cap`,
      eventData: JSON.stringify(record(`bad:${field} over`, { [field]: value })),
      code: 'FieldTooLong',
      field,
    });
  }
  // 'é' is 2 UTF-8 bytes: about 2,048 characters, 4,097 bytes.
  bad.push({
    name: 'userAgent over its cap in UTF-8 bytes, under it in characters',
    eventData: JSON.stringify(
      record('bad:userAgent multibyte', { userAgent: stringOfJsonBytes(CAPS.userAgent + 1, 'é') }),
    ),
    code: 'FieldTooLong',
    field: 'userAgent',
  });
  const atCaps = Object.fromEntries(
    Object.entries(CAPS).map(([field, cap]) => [
      field,
      field === 'requestParameters' ||
      field === 'responseElements' ||
      field === 'additionalEventData'
        ? objectOfJsonBytes(cap)
        : stringOfJsonBytes(cap),
    ]),
  );
  return {
    bad,
    good: [
      {
        name: 'every capped field exactly at its cap',
        eventData: JSON.stringify(record('good:at caps', atCaps)),
      },
    ],
  };
}

/**
 * A record whose text is `bytes` long: every normalised field present, so ingest appends
 * only its provenance stamp to the text as sent (JSON.stringify output is already minified).
 */
function recordOfBytes(bytes: number, probe: string): string {
  const base = record(probe, {
    eventVersion: '1.11',
    eventID: `${RUN}-${bytes}`,
    eventType: 'AwsApiCall',
    eventCategory: 'Management',
    managementEvent: true,
    recipientAccountId: '123456789012',
    padding: '',
  });
  const size = Buffer.byteLength(JSON.stringify(base), 'utf8');
  return JSON.stringify({ ...base, padding: 'p'.repeat(bytes - size) });
}

/** Sends the entries (ids `e0`, `e1`, …) and returns each entry's outcome. */
async function send(
  what: string,
  entries: readonly (BadCase | GoodCase)[],
): Promise<{
  reply: Reply;
  outcome: Map<
    string,
    { list: 'successful' | 'failed'; eventID?: string; errorCode?: string; errorMessage?: string }
  >;
}> {
  const body = requestOf(
    entries.map((c, i) => ({
      id: `e${i}`,
      eventData: c.eventData,
      ...(c.eventDataChecksum ? { eventDataChecksum: c.eventDataChecksum } : {}),
    })),
  );
  expect(Buffer.byteLength(body)).toBeLessThanOrEqual(BODY_CAP);
  const reply = await post(what, body);
  const result = reply.body as {
    successful: { id: string; eventID: string }[];
    failed: { id: string; errorCode: string; errorMessage: string }[];
  };
  const outcome = new Map<
    string,
    { list: 'successful' | 'failed'; eventID?: string; errorCode?: string; errorMessage?: string }
  >();
  const seen: string[] = [];
  for (const s of result.successful ?? []) {
    seen.push(s.id);
    outcome.set(s.id, { list: 'successful', eventID: s.eventID });
  }
  for (const f of result.failed ?? []) {
    seen.push(f.id);
    outcome.set(f.id, { list: 'failed', errorCode: f.errorCode, errorMessage: f.errorMessage });
  }
  // Every entry in exactly one list.
  expect(seen.sort()).toEqual(entries.map((_, i) => `e${i}`).sort());
  return { reply, outcome };
}

function probesIn(check: LogCheck): Map<string, Record<string, unknown>[]> {
  const found = new Map<string, Record<string, unknown>[]>();
  for (const { record: r } of check.records) {
    const probe = r.ingestProbe;
    if (typeof probe === 'string' && probe.startsWith(`${RUN}:`))
      found.set(probe, [...(found.get(probe) ?? []), r]);
  }
  return found;
}

/** Waits until every probe in `expected` is in a log file, then returns the whole check. */
async function logFilesHolding(expected: readonly string[], timeoutMs = 25_000): Promise<LogCheck> {
  return waitFor(`${expected.length} records in log files`, timeoutMs, async () => {
    const check = await checkLogFiles(clients, runtime.endpoints);
    const found = probesIn(check);
    return expected.every((probe) => found.has(`${RUN}:${probe}`)) ? check : undefined;
  });
}

test('each bad entry gets its documented code and a message naming the field, while the good entries of the same request are stored once', async () => {
  // Arrange: bad and good entries interleaved, over three requests (each under 1 MiB).
  const sizes = sizeCases();
  const requests: (BadCase | GoodCase)[][] = [
    interleave(badCases(), goodCases()),
    [...sizes.bad, ...sizes.good],
    [
      {
        name: 'record of exactly 256 KiB once stamped',
        eventData: recordOfBytes(RECORD_CAP - LOCAL_STAMP_BYTES, 'good:record at cap'),
      },
      {
        name: 'record one byte over 256 KiB once stamped',
        eventData: recordOfBytes(RECORD_CAP - LOCAL_STAMP_BYTES + 1, 'bad:record over'),
        code: 'FieldTooLong',
        field: '(record)',
      },
    ],
  ];

  // Act
  const sent = [];
  for (const [i, entries] of requests.entries())
    sent.push({ entries, ...(await send(`per-entry request ${i}`, entries)) });

  // Assert: the response, entry by entry (a mismatch shows the message the entry got).
  const expected: object[] = [];
  const actual: object[] = [];
  const goodProbes: { probe: string; eventID: string }[] = [];
  for (const { entries, reply, outcome } of sent) {
    expect(reply.status).toBe(200);
    entries.forEach((c, i) => {
      const got = outcome.get(`e${i}`)!;
      if ('code' in c) {
        const namesField = got.errorMessage?.includes(c.field) ?? false;
        expected.push({ name: c.name, list: 'failed', errorCode: c.code, namesField: true });
        actual.push({
          name: c.name,
          list: got.list,
          errorCode: got.errorCode,
          namesField,
          ...(got.errorCode === c.code && namesField ? {} : { message: got.errorMessage }),
        });
      } else {
        expected.push({ name: c.name, list: 'successful' });
        actual.push({
          name: c.name,
          list: got.list,
          ...(got.list === 'failed' ? { errorCode: got.errorCode, message: got.errorMessage } : {}),
        });
        goodProbes.push({
          probe: (JSON.parse(c.eventData) as { ingestProbe: string }).ingestProbe,
          eventID: got.eventID!,
        });
      }
    });
  }
  expect(actual).toEqual(expected);

  // Assert: the good entries reach log files exactly once, as reported; nothing refused does.
  const check = await logFilesHolding(goodProbes.map((g) => g.probe.slice(RUN.length + 1)));
  expect(check.problems).toEqual([]);
  const found = probesIn(check);
  for (const { probe, eventID } of goodProbes) {
    expect({
      probe,
      copies: found.get(probe)?.length,
      eventID: found.get(probe)?.[0]?.eventID,
    }).toEqual({ probe, copies: 1, eventID });
  }
  expect([...found.keys()].filter((probe) => probe.startsWith(`${RUN}:bad:`))).toEqual([]);
});

function interleave<A, B>(a: readonly A[], b: readonly B[]): (A | B)[] {
  const out: (A | B)[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) out.push(a[i]!);
    if (i < b.length) out.push(b[i]!);
  }
  return out;
}

const entry = (probe: string, id = probe.replace(/[^-_A-Za-z0-9]/g, '-')): Entry => ({
  id,
  eventData: JSON.stringify(record(probe)),
});

describe('whole-request errors are HTTP 400 {"__type","message"} and store nothing', () => {
  const tooMany = requestOf(
    Array.from({ length: 101 }, (_, i) => entry(`rejected:too-many-${i}`, `e${i}`)),
  );
  const cases: [string, string, RegExp, string?][] = [
    ['body is not JSON', '{"auditEvents": [', /body/],
    ['body is empty', '', /body|auditEvents/],
    ['body is JSON null', 'null', /auditEvents/],
    ['body is an array', '[]', /auditEvents/],
    ['{} without auditEvents', '{}', /auditEvents/],
    ['auditEvents is an object', '{"auditEvents":{}}', /auditEvents/],
    ['auditEvents is empty', '{"auditEvents":[]}', /auditEvents/],
    ['101 entries', tooMany, /auditEvents/],
    [
      'an entry is not an object',
      `{"auditEvents":[${JSON.stringify(entry('rejected:beside-number'))},42]}`,
      /auditEvents\[1\]/,
    ],
    ['an id with a space', requestOf([entry('rejected:space-id', 'a b')]), /id/],
    ['an id of 129 characters', requestOf([entry('rejected:long-id', 'x'.repeat(129))]), /id/],
    [
      'an entry without id',
      `{"auditEvents":[{"eventData":${JSON.stringify(JSON.stringify(record('rejected:no-id')))}}]}`,
      /id/,
    ],
    [
      'eventData is an object',
      requestOf([{ id: 'a', eventData: record('rejected:object-data') as unknown as string }]),
      /eventData/,
    ],
    [
      'eventDataChecksum is a number',
      requestOf([
        { ...entry('rejected:numeric-checksum', 'a'), eventDataChecksum: 5 as unknown as string },
      ]),
      /eventDataChecksum/,
    ],
    [
      'duplicate ids',
      requestOf([
        entry('rejected:dup-1', 'same'),
        entry('rejected:other', 'other'),
        entry('rejected:dup-2', 'same'),
      ]),
      /same/,
      'DuplicatedAuditEventId',
    ],
  ];

  // Rows as objects: a row shorter than the callback's arity would make jest pass `done`.
  test.each(cases.map(([name, body, names, code]) => ({ name, body, names, code })))(
    '$name',
    async ({ name, body, names, code }) => {
      const reply = await post(`whole request: ${name}`, body);

      expect(reply.status).toBe(400);
      expect(reply.contentType).toMatch(/^application\/json/);
      expect(Object.keys(reply.body as object).sort()).toEqual(['__type', 'message']);
      const { __type, message } = reply.body as { __type: string; message: string };
      expect(__type).toMatch(code ? new RegExp(`^${code}$`) : /^[A-Za-z]+$/);
      expect(message).toMatch(names);
    },
  );

  test('none of the refused requests left a record in the log files', async () => {
    // A request sent after them, spread over both shards: once it is filed, anything the
    // refused requests had put on the stream before it would be filed too.
    const sentinels = Array.from({ length: 12 }, (_, i) => entry(`sentinel:${i}`, `s${i}`));
    const reply = await post('sentinels', requestOf(sentinels));
    expect(reply.status).toBe(200);

    const check = await logFilesHolding(sentinels.map((_, i) => `sentinel:${i}`));

    expect(
      [...probesIn(check).keys()].filter((probe) => probe.startsWith(`${RUN}:rejected:`)),
    ).toEqual([]);
  });
});

describe('request size', () => {
  /** A request of `count` entries padded to exactly `bytes` bytes of body. */
  function bodyOfBytes(bytes: number, count: number, probe: string): string {
    const entries = Array.from({ length: count }, (_, i) => ({
      id: `e${i}`,
      eventData: JSON.stringify(record(`${probe}:${i}`, { padding: '' })),
    }));
    const base = Buffer.byteLength(requestOf(entries), 'utf8');
    const share = Math.floor((bytes - base) / count);
    const padded = entries.map((e, i) => {
      const extra = i === count - 1 ? bytes - base - share * (count - 1) : share;
      return {
        ...e,
        eventData: JSON.stringify(record(`${probe}:${i}`, { padding: 'p'.repeat(extra) })),
      };
    });
    const body = requestOf(padded);
    expect(Buffer.byteLength(body, 'utf8')).toBe(bytes);
    return body;
  }

  test('a body of exactly 1,048,576 bytes is accepted and its entries are stored', async () => {
    const body = bodyOfBytes(BODY_CAP, 5, 'limit');

    const reply = await post('body at the limit', body);

    expect(reply.status).toBe(200);
    expect((reply.body as { successful: unknown[]; failed: unknown[] }).failed).toEqual([]);
    const check = await logFilesHolding(Array.from({ length: 5 }, (_, i) => `limit:${i}`));
    expect(check.problems).toEqual([]);
  });

  test('a body of 1,048,577 bytes is refused whole with 400', async () => {
    const reply = await post('body one byte over', bodyOfBytes(BODY_CAP + 1, 5, 'rejected:over'));

    expect(reply.status).toBe(400);
    expect(Object.keys(reply.body as object).sort()).toEqual(['__type', 'message']);
    expect((reply.body as { message: string }).message).toMatch(/1048576|1,048,576/);
  });

  test("a body over API Gateway's 10 MiB gets 413 and the client's next request on the same keep-alive agent works", async () => {
    // Found by the route fuzzer (test/support/route-fuzz.ts): the 413 left the connection
    // half read and open, and the client's next request on it was reset.
    const huge = await fetch(`${runtime.endpoints.api}/PutAuditEvents`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: 'x'.repeat(11_000_000),
    });
    expect(huge.status).toBe(413);
    expect(huge.headers.get('connection')).toBe('close');
    await huge.text();

    const next = await post('the request after a 413', '1.5');

    expect(next.status).toBe(400);
    expect((next.body as { __type: string }).__type).toBe('ValidationException');
  });

  test('a body under the limit in characters but over it in UTF-8 bytes is refused with 400', async () => {
    const entries = [
      {
        id: 'a',
        eventData: JSON.stringify(record('rejected:multibyte', { padding: 'é'.repeat(530_000) })),
      },
    ];
    const body = requestOf(entries);
    expect(body.length).toBeLessThan(BODY_CAP);
    expect(Buffer.byteLength(body, 'utf8')).toBeGreaterThan(BODY_CAP);

    const reply = await post('multibyte body over the limit', body);

    expect(reply.status).toBe(400);
    expect(Object.keys(reply.body as object).sort()).toEqual(['__type', 'message']);
  });

  test("a body over API Gateway's 10 MiB payload limit is a 4xx in the error shape", async () => {
    const reply = await post('body over 10 MiB', Buffer.alloc(10 * 1024 * 1024 + 1, 0x20));

    expect(reply.status).toBeGreaterThanOrEqual(400);
    expect(reply.status).toBeLessThan(500);
    expect(Object.keys(reply.body as object).sort()).toEqual(['__type', 'message']);
  });
});

test.each([
  ['POST', '/PutAuditEvent'],
  ['POST', '/PutAuditEvents/extra'],
  ['GET', '/PutAuditEvents'],
  ['PUT', '/PutAuditEvents'],
])('an unknown route (%s %s) is 404 in the error shape', async (method, path) => {
  const reply = await post(
    `route ${method} ${path}`,
    requestOf([entry('rejected:route')]),
    path,
    method,
  );

  expect(reply.status).toBe(404);
  expect(reply.contentType).toMatch(/^application\/json/);
  expect(Object.keys(reply.body as object).sort()).toEqual(['__type', 'message']);
  expect((reply.body as { message: string }).message).toContain(path);
});

test('deeply nested requestParameters under the cap are answered per entry (never a 5xx), and the other entries still stored', async () => {
  // 15,000 levels of {"a":…}: ~90 KB, under the 100 KiB cap.
  const depth = 15_000;
  const nested = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  const text = JSON.stringify(record('deep')).replace(/}$/, `,"requestParameters":${nested}}`);
  const body = requestOf([{ id: 'deep', eventData: text }, entry('deep-neighbour', 'neighbour')]);

  const response = await fetch(`${runtime.endpoints.api}/PutAuditEvents`, { method: 'POST', body });
  const reply = (await response.json()) as {
    successful?: { id: string }[];
    failed?: { id: string; errorCode: string }[];
  };

  expect({ status: response.status, body: reply }).toEqual({
    status: 200,
    body: expect.objectContaining({
      successful: expect.arrayContaining([expect.objectContaining({ id: 'neighbour' })]),
    }) as unknown,
  });
  const ids = [...(reply.successful ?? []), ...(reply.failed ?? [])].map((e) => e.id).sort();
  expect(ids).toEqual(['deep', 'neighbour']);
});

test('no bad input was answered with a 5xx', () => {
  expect(statuses.length).toBeGreaterThan(20);
  expect(statuses.filter((s) => s.status >= 500)).toEqual([]);
});
