/**
 * LookupEvents never answers bad input with a 5xx: property-based, through the query handler,
 * over an in-memory history store that enforces DynamoDB's limits in UTF-8 bytes (a key the
 * core would send past 2,048 / 1,024 bytes fails there as on AWS, and becomes a 500).
 */
import '../fixtures/quiet-powertools';
import fc from 'fast-check';
import { HmacMac } from '../../lambda/adapters/mac';
import { indexBatch, LOOKUP_EVENTS_TARGET, lookupEvents } from '../../lambda/core/history';
import { createQueryHandler } from '../../lambda/handlers/query';
import { MemoryHistoryStore } from '../fixtures/memory-history';
import {
  fastCheckSeed,
  lookupBody,
  lookupEvent,
  text,
  wireProblem,
} from '../fixtures/lookup-requests';

/** CloudTrail's count (API reference, LookupAttribute): "_", " ", "," and "\n" count twice. */
const cloudTrailLength = (value: string) => value.length + (value.match(/[_ ,\n]/g)?.length ?? 0);

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const NOW_SECONDS = NOW / 1000;
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 19) + 'Z';

/** Stored events with long, multi-byte and astral values (some keyed by their hash). */
const RECORDS = [
  { eventID: 'e-1', userName: 'alice', arn: 'arn:aws:s3:::bucket' },
  { eventID: 'x'.repeat(128), userName: 'é'.repeat(600), arn: `arn:aws:s3:::${'😀'.repeat(300)}` },
  {
    eventID: 'e-3',
    userName: 'a\u0308\u0323 😀',
    arn: `arn:aws:iam::1:role/${'\u3042'.repeat(400)}`,
  },
  { eventID: 'e-4', userName: '_ ,\n', arn: 'arn:aws:s3:::other' },
].map((r, n) =>
  JSON.stringify({
    eventVersion: '1.11',
    eventID: r.eventID,
    eventTime: iso(NOW - (n + 1) * 3600_000),
    eventSource: 's3.amazonaws.com',
    eventName: 'GetObject',
    eventCategory: 'Management',
    readOnly: true,
    userIdentity: { type: 'IAMUser', userName: r.userName, accessKeyId: 'AKIAEXAMPLE' },
    resources: [{ type: 'AWS::S3::Object', ARN: r.arn }],
  }),
);

describe('LookupEvents over every request shape (fast-check)', () => {
  const store = new MemoryHistoryStore();
  const mac = new HmacMac(Buffer.alloc(32, 9));
  const handler = createQueryHandler(
    new Map([
      [LOOKUP_EVENTS_TARGET, (request) => lookupEvents(request, { store, mac, now: () => NOW })],
    ]),
  );
  const call = (body: string) => handler(lookupEvent(body));
  const validTokens: string[] = [];

  beforeAll(async () => {
    const result = await indexBatch(
      RECORDS.map((r, n) => ({ sequenceNumber: String(n), data: Buffer.from(r) })),
      store,
    );
    expect(result.indexed).toBe(RECORDS.length);
    for (const request of [
      { MaxResults: 1 },
      { MaxResults: 1, LookupAttributes: [{ AttributeKey: 'ReadOnly', AttributeValue: 'true' }] },
      { MaxResults: 2, EventCategory: undefined, StartTime: NOW_SECONDS - 86400 },
    ]) {
      const page = JSON.parse((await call(JSON.stringify(request))).body) as { NextToken?: string };
      expect(typeof page.NextToken).toBe('string');
      validTokens.push(page.NextToken!);
    }
  });

  it('answers every request with a 200 or a 400 in CloudTrail’s shape naming the field', async () => {
    const seed = fastCheckSeed('LookupEvents, in-memory store');
    await fc.assert(
      fc.asyncProperty(lookupBody(NOW_SECONDS, validTokens), async (body) => {
        const response = await call(body);
        const problem = wireProblem(response);
        if (problem) throw new Error(`${problem}\nrequest: ${body.slice(0, 300)}`);
      }),
      { seed, numRuns: 3000 },
    );
  });

  it('refuses a value over 2,000 characters (CloudTrail’s count) for every key, with InvalidLookupAttributesException', async () => {
    const seed = fastCheckSeed('LookupEvents, over-long values');
    const keys = ['EventId', 'EventName', 'Username', 'ResourceName', 'AccessKeyId'] as const;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...keys), text, async (key, value) => {
        const response = await call(
          JSON.stringify({ LookupAttributes: [{ AttributeKey: key, AttributeValue: value }] }),
        );
        expect(wireProblem(response)).toBeUndefined();
        const body = JSON.parse(response.body) as { __type?: string; message?: string };
        if (cloudTrailLength(value) > 2000) {
          expect(response.statusCode).toBe(400);
          expect(body.__type).toBe('InvalidLookupAttributesException');
          expect(body.message).toMatch(/^LookupAttributes\[0\]\.AttributeValue: at most 2000/);
        }
      }),
      { seed, numRuns: 300 },
    );
  });

  it.each([
    ['1,500 two-byte characters (3,000 bytes)', 'é'.repeat(1500)],
    ['1,000 astral characters (4,000 bytes, 2,000 UTF-16 units)', '😀'.repeat(1000)],
    ['2,000 three-byte characters with no "_"', '\u3042'.repeat(2000)],
  ])(
    'an EventId of %s, within CloudTrail’s length but too long for a key, finds nothing (200, no Query)',
    async (_, value) => {
      const before = store.queries;
      const response = await call(
        JSON.stringify({ LookupAttributes: [{ AttributeKey: 'EventId', AttributeValue: value }] }),
      );
      expect(response.statusCode).toBe(200);
      expect(JSON.parse(response.body)).toEqual({ Events: [] });
      expect(store.queries).toBe(before);
    },
  );

  it('counts "_", " ", "," and line feeds twice, as CloudTrail does', async () => {
    const at = (value: string) =>
      call(
        JSON.stringify({ LookupAttributes: [{ AttributeKey: 'Username', AttributeValue: value }] }),
      );
    expect((await at('_'.repeat(1000))).statusCode).toBe(200);
    const over = await at('_'.repeat(1000) + 'a');
    expect(over.statusCode).toBe(400);
    expect(JSON.parse(over.body)).toEqual({
      __type: 'InvalidLookupAttributesException',
      message:
        'LookupAttributes[0].AttributeValue: at most 2000 characters ("_", " ", "," and line feeds count as two), got 2001',
    });
  });

  it('refuses an unpaired surrogate by name and rule', async () => {
    const response = await call(
      '{"LookupAttributes":[{"AttributeKey":"Username","AttributeValue":"ab\\ud800"}]}',
    );
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body)).toEqual({
      __type: 'InvalidLookupAttributesException',
      message:
        'LookupAttributes[0].AttributeValue: must be Unicode text; character 2 is an unpaired UTF-16 surrogate',
    });
  });

  it('finds events by long multi-byte and astral values (keys hashed past 1,024 bytes)', async () => {
    for (const [key, value] of [
      ['Username', 'é'.repeat(600)],
      ['ResourceName', `arn:aws:s3:::${'😀'.repeat(300)}`],
      ['Username', 'a\u0308\u0323 😀'],
      ['EventId', 'x'.repeat(128)],
    ] as const) {
      const response = await call(
        JSON.stringify({ LookupAttributes: [{ AttributeKey: key, AttributeValue: value }] }),
      );
      expect(response.statusCode).toBe(200);
      expect((JSON.parse(response.body) as { Events: unknown[] }).Events).toHaveLength(1);
    }
  });
});
