import { ApiError } from '../../lambda/core/api-error';
import {
  compareSortKeys,
  derivedFields,
  escapeEventId,
  indexBatch,
  lastSegment,
  lookupEvents,
  MAX_PAGE_BYTES,
  parseLookupRequest,
  planIndex,
  recordKeyOf,
  recordText,
  sortKeyOf,
  usernameOf,
  type LookupResponse,
} from '../../lambda/core/history';
import { HmacMac } from '../../lambda/adapters/mac';
import { MemoryHistoryStore } from '../fixtures/memory-history';
import { expectedIds } from '../fixtures/history-truth';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const mac = new HmacMac(Buffer.alloc(32, 7));

function iso(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19) + 'Z';
}

function record(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    eventVersion: '1.11',
    eventID: 'e-1',
    eventTime: iso(NOW - 60_000),
    eventSource: 'iam.amazonaws.com',
    eventName: 'ListUsers',
    awsRegion: 'us-east-1',
    eventCategory: 'Management',
    managementEvent: true,
    readOnly: true,
    userIdentity: {
      type: 'IAMUser',
      userName: 'alice',
      principalId: 'AIDA1',
      accessKeyId: 'AKIA1',
    },
    ...overrides,
  };
}

async function store(records: Record<string, unknown>[]): Promise<MemoryHistoryStore> {
  const s = new MemoryHistoryStore();
  const result = await indexBatch(
    records.map((r, i) => ({ sequenceNumber: String(i), data: Buffer.from(JSON.stringify(r)) })),
    s,
  );
  expect(result.firstFailure).toBeUndefined();
  return s;
}

async function all(
  s: MemoryHistoryStore,
  request: Record<string, unknown>,
  pageSize: number,
): Promise<string[]> {
  const ids: string[] = [];
  let token: string | undefined;
  do {
    const page: LookupResponse = await lookupEvents(
      { ...request, MaxResults: pageSize, ...(token ? { NextToken: token } : {}) },
      { store: s, mac, now: () => NOW },
    );
    expect(page.Events.length).toBeLessThanOrEqual(pageSize);
    ids.push(...page.Events.map((e) => e.EventId!));
    token = page.NextToken;
  } while (token);
  return ids;
}

async function errorOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiError) return error.code;
    throw error;
  }
  return 'no error';
}

describe('derived fields (docs/formats.md#lookupevents)', () => {
  it.each([
    ['userName wins', { type: 'AssumedRole', userName: 'bob', arn: 'arn:x/role/s' }, 'bob'],
    [
      'AssumedRole: after the last "/" of arn',
      { type: 'AssumedRole', arn: 'arn:aws:sts::1:assumed-role/r/session-1', principalId: 'P' },
      'session-1',
    ],
    [
      'FederatedUser: after the last "/"',
      { type: 'FederatedUser', arn: 'arn:aws:sts::1:federated-user/carol' },
      'carol',
    ],
    [
      'AssumedRole without arn: principalId',
      { type: 'AssumedRole', principalId: 'AROA:x' },
      'AROA:x',
    ],
    ['Root', { type: 'Root', principalId: '1', arn: 'arn:aws:iam::1:root' }, 'root'],
    [
      'AWSService: invokedBy',
      { type: 'AWSService', invokedBy: 'ec2.amazonaws.com' },
      'ec2.amazonaws.com',
    ],
    ['IAMUser without userName: principalId', { type: 'IAMUser', principalId: 'AIDA9' }, 'AIDA9'],
    ['no type: principalId', { principalId: 'anon' }, 'anon'],
    ['nothing', {}, undefined],
  ])('Username: %s', (_, identity, expected) => {
    expect(usernameOf({ userIdentity: identity })).toBe(expected);
  });

  it.each([
    [true, 'true'],
    [false, 'false'],
    ['true', undefined],
    [undefined, undefined],
  ])('ReadOnly of readOnly %p is %p', (readOnly, expected) => {
    expect(derivedFields(record({ readOnly })).readOnly).toBe(expected);
  });

  it.each([
    ['arn:aws:s3:::my-bucket', 'my-bucket'],
    ['arn:aws:iam::1:role/path/role-name', 'role-name'],
    ['arn:aws:ec2:us-east-1:1:instance/i-123', 'i-123'],
    ['plain', 'plain'],
  ])('ResourceName last segment of %s is %s', (arn, expected) => {
    expect(lastSegment(arn)).toBe(expected);
  });

  it('AccessKeyId only when non-empty', () => {
    expect(
      derivedFields(record({ userIdentity: { accessKeyId: '' } })).accessKeyId,
    ).toBeUndefined();
    expect(derivedFields(record()).accessKeyId).toBe('AKIA1');
  });
});

describe('what is indexed', () => {
  it.each([
    [{ eventCategory: 'Management' }, 'index'],
    [{ eventCategory: 'Data', managementEvent: false }, 'skip'],
    [{ eventCategory: 'NetworkActivity', managementEvent: false }, 'skip'],
    [{ eventCategory: 'Insight', eventType: 'AwsCloudTrailInsight' }, 'index'],
  ])('%p → %s', (overrides, kind) => {
    expect(planIndex(JSON.stringify(record(overrides))).kind).toBe(kind);
  });

  it('lists the event under one group partition per lookup key, and stores the record compressed', () => {
    const text = JSON.stringify(
      record({ resources: [{ ARN: 'arn:aws:iam::1:role/r', type: 'AWS::IAM::Role' }] }),
    );
    const plan = planIndex(text);
    if (plan.kind !== 'index') throw new Error('not indexed');
    expect([...plan.partitions].sort()).toEqual(
      [
        'mN$ListUsers',
        'mS$iam.amazonaws.com',
        'mR$true',
        'mU$alice',
        'mK$AKIA1',
        'mT$AWS::IAM::Role',
        'mM$arn:aws:iam::1:role/r',
        'mM$r',
      ].sort(),
    );
    expect(recordKeyOf(plan.sortKey)).toEqual({ pk: plan.record.pk, sk: plan.record.sk });
    expect(plan.record.j).toBeUndefined();
    expect(recordText(plan.record)).toBe(text);
    expect(plan.record.z!.length).toBeLessThan(Buffer.byteLength(text) / 2);
  });

  it('lists an event without readOnly under the ReadOnly partition no request can name', () => {
    const { readOnly: _, ...rest } = record();
    const plan = planIndex(JSON.stringify(rest));
    if (plan.kind !== 'index') throw new Error('not indexed');
    expect(plan.partitions).toContain('mR$');
    expect(plan.partitions.filter((pk) => pk.startsWith('mR'))).toEqual(['mR$']);
  });

  it('a re-delivered event is stored once', async () => {
    const s = await store([record(), record()]);
    expect(s.records.size).toBe(1);
    expect(await all(s, {}, 50)).toEqual(['e-1']);
  });
});

describe('sort keys', () => {
  const ids = [
    'a',
    'a\u0000',
    'a\u0001',
    'a\u0002',
    'a\u0003',
    'a!',
    'a#',
    'ab',
    'b',
    '',
    'é',
    '日本',
    '\u{1F600}',
    'a\u0000b',
  ];
  it('order by eventID in UTF-8 byte order within a second, and decode back', () => {
    const t = '2026-01-01T00:00:00Z';
    const bySortKey = [...ids].sort((x, y) =>
      compareSortKeys(sortKeyOf(t, x, 'h'), sortKeyOf(t, y, 'h')),
    );
    const byBytes = [...ids].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(bySortKey).toEqual(byBytes);
    for (const id of ids) expect(recordKeyOf(sortKeyOf(t, id, 'h')).pk).toBe(`E#${id}`);
    expect(escapeEventId('plain-guid')).toBe('plain-guid');
  });
});

describe('request validation', () => {
  it.each([
    [
      {
        LookupAttributes: [
          { AttributeKey: 'EventName', AttributeValue: 'a' },
          { AttributeKey: 'EventSource', AttributeValue: 'b' },
        ],
      },
      'InvalidLookupAttributesException',
    ],
    [
      { LookupAttributes: [{ AttributeKey: 'Region', AttributeValue: 'a' }] },
      'InvalidLookupAttributesException',
    ],
    [
      { LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: '' }] },
      'InvalidLookupAttributesException',
    ],
    [{ LookupAttributes: [{ AttributeKey: 'EventName' }] }, 'InvalidLookupAttributesException'],
    [{ StartTime: 200, EndTime: 100 }, 'InvalidTimeRangeException'],
    [{ StartTime: 'yesterday' }, 'InvalidTimeRangeException'],
    [{ MaxResults: 0 }, 'InvalidMaxResultsException'],
    [{ MaxResults: 51 }, 'InvalidMaxResultsException'],
    [{ MaxResults: 2.5 }, 'InvalidMaxResultsException'],
    [{ EventCategory: 'management' }, 'InvalidEventCategoryException'],
    [{ NextToken: '' }, 'InvalidNextTokenException'],
  ])('%j → %s', (request, code) => {
    let thrown: unknown;
    try {
      parseLookupRequest(request);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ApiError);
    expect(thrown).toMatchObject({ code, statusCode: 400 });
  });

  it('accepts fractional times within the same second as equal start and end', () => {
    expect(parseLookupRequest({ StartTime: 100.9, EndTime: 100.1 })).toMatchObject({
      startSeconds: 100,
      endSeconds: 100,
      maxResults: 50,
    });
  });
});

/** 120 events over 40 seconds, three per second, some sharing a second with others. */
function manyRecords(): Record<string, unknown>[] {
  return Array.from({ length: 120 }, (_, n) =>
    record({
      eventID: `id-${String((n * 37) % 120).padStart(3, '0')}`,
      eventTime: iso(NOW - 1000 * 3600 - Math.floor(n / 3) * 1000),
      eventName: ['ListUsers', 'GetUser', 'Create User ✓'][n % 3],
      readOnly: n % 4 === 0 ? undefined : n % 2 === 0,
    }),
  );
}

describe('lookup', () => {
  const records = manyRecords();
  let s: MemoryHistoryStore;
  beforeAll(async () => {
    s = await store(records);
  });

  it.each([1, 7, 50])('pages of %i equal the plain filter, in order', async (size) => {
    expect(await all(s, {}, size)).toEqual(expectedIds(records, { nowMs: NOW }));
    const q = {
      LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'Create User ✓' }],
    };
    expect(await all(s, q, size)).toEqual(
      expectedIds(records, { key: 'EventName', value: 'Create User ✓', nowMs: NOW }),
    );
    const start = (NOW - 1000 * 3600 - 20_000) / 1000 + 0.7;
    const end = (NOW - 1000 * 3600 - 5_000) / 1000 + 0.2;
    const ro = {
      LookupAttributes: [{ AttributeKey: 'ReadOnly', AttributeValue: 'false' }],
      StartTime: start,
      EndTime: end,
    };
    expect(await all(s, ro, size)).toEqual(
      expectedIds(records, { key: 'ReadOnly', value: 'false', start, end, nowMs: NOW }),
    );
  });

  it('reads about one page of index items, not the history', async () => {
    const big = await store(
      Array.from({ length: 2000 }, (_, n) =>
        record({ eventID: `b-${n}`, eventTime: iso(NOW - n * 1000) }),
      ),
    );
    big.itemsRead = 0;
    await lookupEvents({ MaxResults: 50 }, { store: big, mac, now: () => NOW });
    expect(big.itemsRead).toBeLessThan(120);
  });

  it('serves Insights events with EventCategory insight only', async () => {
    const mixed = await store([
      record({ eventID: 'mgmt' }),
      record({ eventID: 'insight', eventCategory: 'Insight', eventType: 'AwsCloudTrailInsight' }),
    ]);
    expect(await all(mixed, {}, 50)).toEqual(['mgmt']);
    expect(await all(mixed, { EventCategory: 'insight' }, 50)).toEqual(['insight']);
    const byId = { LookupAttributes: [{ AttributeKey: 'EventId', AttributeValue: 'insight' }] };
    expect(await all(mixed, byId, 50)).toEqual([]);
    expect(await all(mixed, { ...byId, EventCategory: 'insight' }, 50)).toEqual(['insight']);
  });

  it('never returns events older than 90 days, even when stored', async () => {
    const old = await store([
      record({ eventID: 'old', eventTime: iso(NOW - 91 * 86400_000) }),
      record({ eventID: 'new', eventTime: iso(NOW - 89 * 86400_000) }),
    ]);
    expect(await all(old, {}, 50)).toEqual(['new']);
    expect(
      await all(
        old,
        { LookupAttributes: [{ AttributeKey: 'EventId', AttributeValue: 'old' }] },
        50,
      ),
    ).toEqual([]);
    expect(await all(old, { StartTime: 0 }, 50)).toEqual(['new']);
  });

  it('keeps paging exact while events arrive, including at the boundary second', async () => {
    const live = await store(records);
    const first = await lookupEvents({ MaxResults: 7 }, { store: live, mac, now: () => NOW });
    const boundary = JSON.parse(first.Events[6]!.CloudTrailEvent) as Record<string, unknown>;
    await indexBatch(
      [
        record({ eventID: 'zzz-newer', eventTime: iso(NOW - 1000) }),
        record({ eventID: `${String(boundary.eventID)}-after`, eventTime: boundary.eventTime }),
        record({ eventID: 'a-before', eventTime: boundary.eventTime }),
      ].map((r, i) => ({ sequenceNumber: String(i), data: Buffer.from(JSON.stringify(r)) })),
      live,
    );
    const rest: string[] = [];
    let token = first.NextToken;
    while (token) {
      const page = await lookupEvents(
        { MaxResults: 7, NextToken: token },
        { store: live, mac, now: () => NOW },
      );
      rest.push(...page.Events.map((e) => e.EventId!));
      token = page.NextToken;
    }
    const seen = [...first.Events.map((e) => e.EventId!), ...rest];
    const original = expectedIds(records, { nowMs: NOW });
    expect(seen.filter((id) => original.includes(id))).toEqual(original);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('keeps a page under 5 MB with large records', async () => {
    const large = await store(
      Array.from({ length: 40 }, (_, n) =>
        record({ eventID: `l-${n}`, requestParameters: { blob: 'x'.repeat(200_000) } }),
      ),
    );
    const page = await lookupEvents({}, { store: large, mac, now: () => NOW });
    expect(Buffer.byteLength(JSON.stringify(page))).toBeLessThan(MAX_PAGE_BYTES);
    expect(page.Events.length).toBeLessThan(40);
    expect(page.NextToken).toBeDefined();
    expect(await all(large, {}, 50)).toHaveLength(40);
  });
});

describe('page tokens', () => {
  let s: MemoryHistoryStore;
  let token: string;
  const deps = () => ({ store: s, mac, now: () => NOW });
  beforeAll(async () => {
    s = await store(manyRecords());
    token = (await lookupEvents({ MaxResults: 5 }, deps())).NextToken!;
  });

  it('a token continues the same request', async () => {
    expect((await lookupEvents({ MaxResults: 5, NextToken: token }, deps())).Events).toHaveLength(
      5,
    );
  });

  it.each([
    [
      'tampered payload',
      (t: string) =>
        `${Buffer.from(Buffer.from(t.split('.')[0]!, 'base64url').toString().replace('"v":1', '"v":1 ')).toString('base64url')}.${t.split('.')[1]}`,
    ],
    ['tampered MAC', (t: string) => `${t.slice(0, -2)}${t.endsWith('AA') ? 'BB' : 'AA'}`],
    ['forged', () => `${Buffer.from('{"v":1,"p":"x","c":"2026"}').toString('base64url')}.AAAA`],
    ['garbage', () => 'not a token'],
    [
      'signed with another key',
      async () => {
        const other = await lookupEvents(
          { MaxResults: 5 },
          { ...deps(), mac: new HmacMac(Buffer.alloc(32, 9)) },
        );
        return other.NextToken!;
      },
    ],
  ])('%s → InvalidNextTokenException', async (_, make) => {
    const bad = await make(token);
    expect(await errorOf(lookupEvents({ MaxResults: 5, NextToken: bad }, deps()))).toBe(
      'InvalidNextTokenException',
    );
  });

  it.each([
    { LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'GetUser' }] },
    { StartTime: 1 },
    { EndTime: NOW / 1000 },
    { EventCategory: 'insight' },
  ])('reused with other parameters %j → InvalidNextTokenException', async (other) => {
    expect(await errorOf(lookupEvents({ ...other, NextToken: token }, deps()))).toBe(
      'InvalidNextTokenException',
    );
  });
});
