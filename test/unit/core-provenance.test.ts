/**
 * Provenance (docs/formats.md#provenance, #content-hash): the stamp ingest appends to every
 * record, the refusal of a producer-supplied one, the one content hash, the per-producer rules
 * (eventSource patterns, recipients, replay), maxEventAge, the 12-digit recipient and the
 * partition key.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_TRAIL, type ProducerRule } from '../../lambda/core/config';
import { canonicalJson, contentHash, storedRecordHash } from '../../lambda/core/content-hash';
import { opentrailEventKey } from '../../lambda/core/event-key';
import { planIndex } from '../../lambda/core/history-keys';
import {
  partitionKeyOf,
  putAuditEvents,
  type Caller,
  type IngestDeps,
  type PutAuditEventsResult,
} from '../../lambda/core/ingest';
import {
  matchesPattern,
  producerRulesProblem,
  rulesOfRecipientAllowList,
} from '../../lambda/core/provenance';
import { packageBatch } from '../../lambda/core/packager';
import type { PackagerResult } from '../../lambda/core/packager-types';
import {
  MemoryDedupStore,
  MemoryManifestStore,
  MemoryMetrics,
  MemoryObjectStore,
  MemoryRecordStream,
} from '../fixtures/memory-ports';
import {
  completeRecord,
  DEPLOYMENT_ACCOUNT,
  minimalRecord,
  NOW_MS,
  PRODUCER_ACCOUNT,
} from '../fixtures/records';

const DAY_MS = 86_400_000;
const OTHER_ACCOUNT = '222222222222';

const ALICE: Caller = {
  principalArn: `arn:aws:sts::${PRODUCER_ACCOUNT}:assumed-role/Producer/alice`,
  accountId: PRODUCER_ACCOUNT,
  principalOrgId: 'o-a1b2c3d4e5',
  sourceIp: '203.0.113.7',
  requestId: 'request-1',
  receivedAtMs: NOW_MS + 234,
};
/** ALICE again, in another request: other request id, source IP and receive time. */
const ALICE_AGAIN: Caller = {
  ...ALICE,
  sourceIp: '198.51.100.9',
  requestId: 'request-2',
  receivedAtMs: NOW_MS + 60_000,
};
const BOB: Caller = {
  ...ALICE,
  principalArn: `arn:aws:sts::${OTHER_ACCOUNT}:assumed-role/Producer/bob`,
  accountId: OTHER_ACCOUNT,
};

function deps(stream: MemoryRecordStream, overrides: Partial<IngestDeps> = {}): IngestDeps {
  let n = 0;
  return {
    stream,
    accountId: DEPLOYMENT_ACCOUNT,
    checkRecipients: false,
    now: () => NOW_MS,
    newEventId: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
    sleep: async () => {},
    ...overrides,
  };
}

function bodyOf(...records: readonly (Record<string, unknown> | string)[]): string {
  return JSON.stringify({
    auditEvents: records.map((record, i) => ({
      id: `e${i}`,
      eventData: typeof record === 'string' ? record : JSON.stringify(record),
    })),
  });
}

async function send(
  caller: Caller,
  overrides: Partial<IngestDeps>,
  ...records: readonly (Record<string, unknown> | string)[]
): Promise<{ result: PutAuditEventsResult; stored: Record<string, unknown>[] }> {
  const stream = new MemoryRecordStream();
  const result = await putAuditEvents(bodyOf(...records), caller, deps(stream, overrides));
  return {
    result,
    stored: stream.delivered.map((d) => JSON.parse(d.text) as Record<string, unknown>),
  };
}

const isoSeconds = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19)}Z`;
const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

describe('the provenance stamp', () => {
  it('is appended as the last member, from the caller, after the producer text and normalised fields', async () => {
    // Arrange
    const record = minimalRecord();

    // Act
    const stream = new MemoryRecordStream();
    await putAuditEvents(bodyOf(record), ALICE, deps(stream));

    // Assert
    const text = stream.delivered[0]!.text;
    expect(text.startsWith(JSON.stringify(record).slice(0, -1))).toBe(true);
    const stored = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(stored).at(-1)).toBe('opentrailProvenance');
    expect(
      text.endsWith(`,"opentrailProvenance":${JSON.stringify(stored.opentrailProvenance)}}`),
    ).toBe(true);
    expect(stored.opentrailProvenance).toEqual({
      principalArn: ALICE.principalArn,
      accountId: PRODUCER_ACCOUNT,
      principalOrgId: 'o-a1b2c3d4e5',
      sourceIPAddress: '203.0.113.7',
      requestId: 'request-1',
      receivedAt: '2024-05-01T12:00:00.234Z',
      contentHash: contentHash(stored),
    });
    expect(Object.keys(stored.opentrailProvenance as object)).toEqual([
      'principalArn',
      'accountId',
      'principalOrgId',
      'sourceIPAddress',
      'requestId',
      'receivedAt',
      'contentHash',
    ]);
  });

  it('has no principalOrgId when the request context has none', async () => {
    const { principalOrgId: _, ...noOrg } = ALICE;

    const { stored } = await send(noOrg, {}, minimalRecord());

    expect(stored[0]!.opentrailProvenance).not.toHaveProperty('principalOrgId');
    expect(stored[0]!.opentrailProvenance).toMatchObject({ principalArn: ALICE.principalArn });
  });

  it.each<[string, string]>([
    [
      'a plain member',
      JSON.stringify(minimalRecord({ opentrailProvenance: { principalArn: 'x' } })),
    ],
    ['a null member', JSON.stringify(minimalRecord({ opentrailProvenance: null }))],
    [
      'a stamp carrying its own contentHash',
      JSON.stringify(
        minimalRecord({
          opentrailProvenance: { principalArn: ALICE.principalArn, contentHash: 'a'.repeat(64) },
        }),
      ),
    ],
    [
      'a member whose name is spelled with a JSON escape',
      JSON.stringify(minimalRecord()).replace(/}$/, ',"opentrail\\u0050rovenance":"forged"}'),
    ],
  ])(
    'a producer-supplied stamp (%s) is refused per entry, naming the field and the rule, and the other entries are stored',
    async (_, forged) => {
      // Act
      const { result, stored } = await send(ALICE, {}, forged, minimalRecord({ n: 1 }));

      // Assert
      expect(result.failed).toEqual([
        {
          id: 'e0',
          errorCode: 'InvalidData',
          errorMessage: expect.stringMatching(
            /^opentrailProvenance: set by opentrail from the verified caller, a producer may not supply it/,
          ) as unknown,
        },
      ]);
      expect(result.successful.map((s) => s.id)).toEqual(['e1']);
      expect(stored).toHaveLength(1);
      expect((stored[0]!.opentrailProvenance as { principalArn: string }).principalArn).toBe(
        ALICE.principalArn,
      );
    },
  );

  it('the 256 KiB record limit counts the stamp', async () => {
    // Arrange: a complete record (nothing appended but the stamp) of exactly `bytes` bytes.
    const ofBytes = (bytes: number): string => {
      const base = completeRecord({ padding: '' });
      const size = Buffer.byteLength(JSON.stringify(base), 'utf8');
      return JSON.stringify({ ...base, padding: 'p'.repeat(bytes - size) });
    };
    const stampBytes = Buffer.byteLength(
      `,"opentrailProvenance":${JSON.stringify({
        principalArn: ALICE.principalArn,
        accountId: ALICE.accountId,
        principalOrgId: ALICE.principalOrgId,
        sourceIPAddress: ALICE.sourceIp,
        requestId: ALICE.requestId,
        receivedAt: new Date(ALICE.receivedAtMs).toISOString(),
        contentHash: 'f'.repeat(64),
      })}`,
      'utf8',
    );

    // Act
    const atCap = await send(ALICE, {}, ofBytes(256 * 1024 - stampBytes));
    const overCap = await send(ALICE, {}, ofBytes(256 * 1024 - stampBytes + 1));

    // Assert
    expect(atCap.result.failed).toEqual([]);
    expect(Buffer.byteLength(JSON.stringify(atCap.stored[0]), 'utf8')).toBe(256 * 1024);
    expect(overCap.result.failed).toEqual([
      {
        id: 'e0',
        errorCode: 'FieldTooLong',
        errorMessage:
          '(record): 262145 bytes of JSON with the opentrailProvenance stamp, over the 262144-byte cap',
      },
    ]);
  });
});

describe('contentHash', () => {
  const stampedBy = async (caller: Caller): Promise<Record<string, unknown>> =>
    (await send(caller, {}, completeRecord())).stored[0]!;

  it('is the same for two stamps of the same principal (other request id, IP and receive time)', async () => {
    // Act
    const first = await stampedBy(ALICE);
    const resend = await stampedBy(ALICE_AGAIN);

    // Assert
    expect(first).not.toEqual(resend);
    expect(contentHash(resend)).toBe(contentHash(first));
    expect(opentrailEventKey({ detail: resend })).toBe(opentrailEventKey({ detail: first }));
  });

  it('differs for the same record sent by another principal', async () => {
    const fromAlice = await stampedBy(ALICE);
    const fromBob = await stampedBy(BOB);

    expect(contentHash(fromBob)).not.toBe(contentHash(fromAlice));
    expect(opentrailEventKey({ detail: fromBob })).not.toBe(
      opentrailEventKey({ detail: fromAlice }),
    );
  });

  it('differs when any other member of the record differs', async () => {
    const first = await stampedBy(ALICE);

    expect(contentHash({ ...first, eventName: 'DeleteUser' })).not.toBe(contentHash(first));
  });

  it.each<[string, string]>([
    ['plain ASCII', 'ListUsers'],
    ['a quote and a backslash', 'a"b\\c'],
    ['control characters', 'tab\there\nnul\u0000 esc\u001f'],
    ['a lone surrogate', 'x\ud800y'],
    ['a surrogate pair', 'smile \ud83d\ude00'],
    ['line and paragraph separators, DEL', '\u2028\u2029\u007f'],
  ])('writes strings and member names as JSON.stringify does (%s)', (_, text) => {
    expect(canonicalJson(text)).toBe(JSON.stringify(text));
    expect(canonicalJson({ [text]: text })).toBe(
      `{${JSON.stringify(text)}:${JSON.stringify(text)}}`,
    );
  });

  it('of a record without a stamp is the hex SHA-256 of its canonical JSON', () => {
    const record = completeRecord();

    expect(contentHash(record)).toBe(sha256Hex(canonicalJson(record)));
  });

  it("keys the event history's record item, so a resend by the same principal overwrites one item", async () => {
    // Arrange
    const first = await stampedBy(ALICE);
    const resend = await stampedBy(ALICE_AGAIN);
    const other = await stampedBy(BOB);

    // Act
    const keyOf = (record: Record<string, unknown>): unknown => {
      const plan = planIndex(JSON.stringify(record));
      return plan.kind === 'index' ? { pk: plan.record.pk, sk: plan.record.sk } : plan;
    };

    // Assert
    expect(keyOf(resend)).toEqual(keyOf(first));
    expect(keyOf(other)).not.toEqual(keyOf(first));
    expect(keyOf(first)).toEqual({
      pk: `E#${String(first.eventID)}`,
      sk: contentHash(first).slice(0, 16),
    });
  });
});

describe('storedRecordHash: what dedup claims and history items key a record by', () => {
  const text = '{"eventID":"e1","eventTime":"2026-11-25T06:00:00Z", "eventName":"Get"}';

  it('is the SHA-256 of the text for a record without a stamp, as before provenance, so a pre-upgrade record retried after the upgrade matches its claims and items', () => {
    const fields = JSON.parse(text) as Record<string, unknown>;
    expect(storedRecordHash(fields, text)).toBe(
      createHash('sha256').update(text, 'utf8').digest('hex'),
    );
    expect(storedRecordHash(fields, text)).not.toBe(contentHash(fields));
  });

  it('is contentHash for a stamped record, so a resend by the same principal matches', () => {
    const stamped = (requestId: string): string =>
      `${text.slice(0, -1)},"opentrailProvenance":{"principalArn":"arn:aws:iam::111111111111:user/a","accountId":"111111111111","sourceIPAddress":"10.0.0.1","requestId":"${requestId}","receivedAt":"2026-11-25T06:00:01.000Z"}}`;
    const first = stamped('r1');
    const resend = stamped('r2');
    const hash = (t: string): string =>
      storedRecordHash(JSON.parse(t) as Record<string, unknown>, t);
    expect(hash(first)).toBe(contentHash(JSON.parse(first) as Record<string, unknown>));
    expect(hash(resend)).toBe(hash(first));
  });
});

describe('the contentHash ingest carries in the stamp', () => {
  const carried = (record: Record<string, unknown>): unknown =>
    (record.opentrailProvenance as { contentHash?: unknown }).contentHash;

  it.each<[string, Caller, Record<string, unknown> | string]>([
    ['a minimal record (fields filled in by ingest)', ALICE, minimalRecord()],
    ['a complete record', ALICE, completeRecord()],
    ['a caller without an organization', BOB, completeRecord()],
    [
      'members needing escapes, non-ASCII text and numbers as written',
      ALICE,
      minimalRecord({ note: 'é\u2028"\\ 😀', n: 1e21, f: 0.1, list: [null, true, { b: 1, a: 2 }] }),
    ],
    [
      'a member name given twice (the last one counts, as JSON.parse reads it)',
      ALICE,
      JSON.stringify(minimalRecord({ eventName: 'First' })).replace(/}$/, ',"eventName":"Second"}'),
    ],
    [
      "a producer's own top-level contentHash member (content like any other)",
      ALICE,
      minimalRecord({ contentHash: 'b'.repeat(64) }),
    ],
  ])(
    "is the contentHash of the record as stored, as the stamp's last member (%s)",
    async (_, caller, record) => {
      // Act
      const { result, stored } = await send(caller, {}, record);

      // Assert
      expect(result.failed).toEqual([]);
      const hash = carried(stored[0]!);
      expect(hash).toBe(contentHash(stored[0]!));
      expect(hash).toMatch(/^[0-9a-f]{64}$/);
      expect(Object.keys(stored[0]!.opentrailProvenance as object).at(-1)).toBe('contentHash');
    },
  );

  it('is left out of contentHash, so a record stamped before ingest carried it hashes the same', async () => {
    // Arrange
    const { stored } = await send(ALICE, {}, completeRecord());
    const { contentHash: _, ...stampBefore } = stored[0]!.opentrailProvenance as Record<
      string,
      unknown
    >;

    // Act
    const before = contentHash({ ...stored[0]!, opentrailProvenance: stampBefore });

    // Assert
    expect(before).toBe(carried(stored[0]!));
  });

  it('is what storedRecordHash returns when well-formed, without recomputing it', () => {
    const stamp = `"opentrailProvenance":{"principalArn":"arn:aws:iam::111111111111:user/a","accountId":"111111111111","sourceIPAddress":"10.0.0.1","requestId":"r1","receivedAt":"2026-11-25T06:00:01.000Z","contentHash":"${'c'.repeat(64)}"}`;
    const text = `{"eventID":"e1","eventTime":"2026-11-25T06:00:00Z",${stamp}}`;

    expect(storedRecordHash(JSON.parse(text) as Record<string, unknown>, text)).toBe(
      'c'.repeat(64),
    );
  });

  it.each<[string, unknown]>([
    ['upper-case hex', 'C'.repeat(64)],
    ['too short', 'c'.repeat(63)],
    ['not hex', 'g'.repeat(64)],
    ['a number', 42],
    ['null', null],
  ])('is recomputed by storedRecordHash when malformed (%s)', (_, value) => {
    const fields = {
      eventID: 'e1',
      opentrailProvenance: { principalArn: 'arn:aws:iam::111111111111:user/a', contentHash: value },
    };

    expect(storedRecordHash(fields, JSON.stringify(fields))).toBe(contentHash(fields));
  });
});

describe('packageBatch dedups by the carried contentHash', () => {
  /** Packages each list of stored texts as one batch, in order, into one bucket. */
  async function packageAll(...batches: string[][]): Promise<PackagerResult[]> {
    const deps = {
      trails: [DEFAULT_TRAIL],
      bucket: 'log-bucket',
      objects: new MemoryObjectStore(),
      manifest: new MemoryManifestStore(),
      dedup: new MemoryDedupStore(),
      metrics: new MemoryMetrics(),
      dedupWindowMs: DAY_MS,
      now: () => NOW_MS,
    };
    const results: PackagerResult[] = [];
    for (const [b, texts] of batches.entries()) {
      const records = texts.map((text, i) => ({
        sequenceNumber: String(b * 1000 + i + 1).padStart(56, '4'),
        partitionKey: 'p',
        data: Buffer.from(text, 'utf8'),
        arrivalMs: NOW_MS + b * 1000 + i,
      }));
      results.push(await packageBatch({ shardId: 'shardId-000000000000', records }, deps));
    }
    return results;
  }
  const storedBy = async (caller: Caller, record: Record<string, unknown>): Promise<string> => {
    const stream = new MemoryRecordStream();
    await putAuditEvents(bodyOf(record), caller, deps(stream));
    return stream.delivered[0]!.text;
  };

  it('a resend by the same principal is a duplicate; the same record from another principal is kept as a conflict', async () => {
    // Arrange
    const record = completeRecord();

    // Act
    const [first, resend, other] = await packageAll(
      [await storedBy(ALICE, record)],
      [await storedBy(ALICE_AGAIN, record)],
      [await storedBy(BOB, record)],
    );

    // Assert
    expect(first!.files).toHaveLength(1);
    expect(resend).toMatchObject({ files: [], duplicates: 1, conflicts: 0 });
    expect(other).toMatchObject({ duplicates: 0, conflicts: 1 });
    expect(other!.files).toHaveLength(1);
  });

  it('a record stamped before ingest carried the hash, then its resend stamped after: one record', async () => {
    // Arrange: the pre-upgrade stamp is today's without its contentHash member.
    const after = await storedBy(ALICE_AGAIN, completeRecord());
    const before = (await storedBy(ALICE, completeRecord())).replace(
      /,"contentHash":"[0-9a-f]{64}"}}$/,
      '}}',
    );
    expect(before).not.toContain('contentHash');

    // Act
    const [first, resend] = await packageAll([before], [after]);

    // Assert
    expect(first!.files).toHaveLength(1);
    expect(resend).toMatchObject({ files: [], duplicates: 1, conflicts: 0 });
  });
});

describe('the Kinesis partition key', () => {
  it('is the hex SHA-256 of the eventID, whatever the producer writes', async () => {
    // Arrange: two records with one eventID, one of them with a producer-chosen key-like field.
    const eventID = 'shared-event-id';

    // Act
    const stream = new MemoryRecordStream();
    await putAuditEvents(
      bodyOf(
        completeRecord({ eventID }),
        completeRecord({ eventID, partitionKey: 'hot-shard', eventName: 'Other' }),
      ),
      ALICE,
      deps(stream),
    );

    // Assert
    expect(partitionKeyOf(eventID)).toBe(sha256Hex(eventID));
    expect(stream.delivered.map((d) => d.partitionKey)).toEqual([
      sha256Hex(eventID),
      sha256Hex(eventID),
    ]);
  });
});

describe('producer rules: eventSource patterns', () => {
  const sources = (...eventSources: string[]): Record<string, unknown>[] =>
    eventSources.map((eventSource) => minimalRecord({ eventSource }));

  it.each<[string, ProducerRule[], string[], string[]]>([
    ['no rules', [], ['iam.amazonaws.com', 'app.mycompany.com'], []],
    [
      "a rule for the caller's account",
      [{ caller: PRODUCER_ACCOUNT, eventSources: ['*.mycompany.com'] }],
      ['app.mycompany.com'],
      ['iam.amazonaws.com'],
    ],
    [
      "a rule for the caller's organization",
      [{ caller: 'o-a1b2c3d4e5', eventSources: ['s3.amazonaws.com'] }],
      ['s3.amazonaws.com'],
      ['iam.amazonaws.com'],
    ],
    [
      "a rule for the caller's principal ARN pattern, and one for its account: the lists add up",
      [
        {
          caller: `arn:aws:sts::${PRODUCER_ACCOUNT}:assumed-role/Producer/*`,
          eventSources: ['a.*'],
        },
        { caller: PRODUCER_ACCOUNT, eventSources: ['b.example.com'] },
      ],
      ['a.example.com', 'b.example.com'],
      ['c.example.com'],
    ],
    [
      'a rule for another caller only',
      [{ caller: OTHER_ACCOUNT, eventSources: ['*.mycompany.com'] }],
      ['iam.amazonaws.com'],
      [],
    ],
    [
      'a rule for every caller (*)',
      [{ caller: '*', eventSources: ['*.mycompany.com'] }],
      ['x.mycompany.com'],
      ['iam.amazonaws.com'],
    ],
  ])('with %s, the caller may write exactly the allowed sources', async (_, rules, ok, refused) => {
    // Act
    const { result, stored } = await send(
      ALICE,
      { producerRules: rules },
      ...sources(...ok, ...refused),
    );

    // Assert
    expect(stored.map((r) => r.eventSource)).toEqual(ok);
    expect(result.failed.map((f) => f.errorCode)).toEqual(refused.map(() => 'InvalidData'));
  });

  it('a refused entry names its eventSource and the pattern list', async () => {
    const { result } = await send(
      ALICE,
      { producerRules: [{ caller: PRODUCER_ACCOUNT, eventSources: ['*.mycompany.com', 'x.*'] }] },
      minimalRecord({ eventSource: 'iam.amazonaws.com' }),
    );

    expect(result.failed).toEqual([
      {
        id: 'e0',
        errorCode: 'InvalidData',
        errorMessage:
          'eventSource: "iam.amazonaws.com" is not one this caller may write; its allowed eventSource patterns are ["*.mycompany.com","x.*"]',
      },
    ]);
  });

  it.each<[string, string, boolean]>([
    ['*.mycompany.com', 'app.mycompany.com', true],
    ['*.mycompany.com', 'mycompany.com', false],
    ['*.mycompany.com', 'app.mycompany.com.evil.org', false],
    ['s3.amazonaws.com', 's3.amazonaws.com', true],
    ['s3.amazonaws.com', 's3xamazonaws.com', false],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'acb', false],
    ['ab*ba', 'aba', false],
    ['*', '', true],
  ])('pattern %s matches %s: %p', (pattern, text, matches) => {
    expect(matchesPattern(pattern, text)).toBe(matches);
  });
});

describe('producer rules: recipients', () => {
  it('a caller writes for its own account and the accounts its rules list, and no other', async () => {
    // Arrange
    const rules: ProducerRule[] = [
      { caller: PRODUCER_ACCOUNT, recipientAccountIds: [OTHER_ACCOUNT] },
    ];

    // Act
    const { result, stored } = await send(
      ALICE,
      { checkRecipients: true, producerRules: rules },
      minimalRecord({ recipientAccountId: PRODUCER_ACCOUNT }),
      minimalRecord({ recipientAccountId: OTHER_ACCOUNT }),
      minimalRecord({ recipientAccountId: '333333333333' }),
    );

    // Assert
    expect(stored.map((r) => r.recipientAccountId)).toEqual([PRODUCER_ACCOUNT, OTHER_ACCOUNT]);
    expect(result.failed).toEqual([
      {
        id: 'e2',
        errorCode: 'InvalidRecipient',
        errorMessage: `recipientAccountId: 333333333333 is not the caller's account (${PRODUCER_ACCOUNT}) nor one it may write for (${OTHER_ACCOUNT})`,
      },
    ]);
  });

  it('the legacy allow-list still means "any account"', async () => {
    const { result } = await send(
      ALICE,
      {
        checkRecipients: true,
        producerRules: rulesOfRecipientAllowList({ accounts: [PRODUCER_ACCOUNT] }),
      },
      minimalRecord({ recipientAccountId: '333333333333' }),
    );

    expect(result.failed).toEqual([]);
  });

  it.each(['1234', '1234567890123', '12345678901a', 'opentrail'])(
    'recipientAccountId %s is refused: it must be 12 digits',
    async (recipient) => {
      const { result, stored } = await send(
        ALICE,
        {},
        minimalRecord({ recipientAccountId: recipient }),
      );

      expect(stored).toEqual([]);
      expect(result.failed).toEqual([
        {
          id: 'e0',
          errorCode: 'InvalidData',
          errorMessage: `recipientAccountId: "${recipient}" must be an AWS account id of 12 digits`,
        },
      ]);
    },
  );
});

describe('maxEventAge', () => {
  const SEVEN_DAYS_MS = 7 * DAY_MS;
  const aged = (ms: number): Record<string, unknown> =>
    minimalRecord({ eventTime: isoSeconds(NOW_MS - ms) });

  it('refuses an event older than the limit, naming eventTime and the limit, and keeps one at the limit', async () => {
    // Act
    const { result, stored } = await send(
      ALICE,
      { maxEventAgeMs: SEVEN_DAYS_MS },
      aged(SEVEN_DAYS_MS),
      aged(SEVEN_DAYS_MS + 1000),
    );

    // Assert
    expect(stored.map((r) => r.eventTime)).toEqual([isoSeconds(NOW_MS - SEVEN_DAYS_MS)]);
    expect(result.failed).toEqual([
      {
        id: 'e1',
        errorCode: 'InvalidData',
        errorMessage: `eventTime: ${isoSeconds(NOW_MS - SEVEN_DAYS_MS - 1000)} is older than the deployment's maxEventAge of 7 days; only producers allowed to replay may send older events`,
      },
    ]);
  });

  it('lets a caller whose rule allows replay send older events', async () => {
    const { result } = await send(
      ALICE,
      {
        maxEventAgeMs: SEVEN_DAYS_MS,
        producerRules: [{ caller: PRODUCER_ACCOUNT, allowReplay: true }],
      },
      aged(400 * DAY_MS),
    );

    expect(result.failed).toEqual([]);
  });

  it('does not let another caller replay through someone else’s rule', async () => {
    const { result } = await send(
      BOB,
      {
        maxEventAgeMs: SEVEN_DAYS_MS,
        producerRules: [{ caller: PRODUCER_ACCOUNT, allowReplay: true }],
      },
      aged(400 * DAY_MS),
    );

    expect(result.failed.map((f) => f.errorCode)).toEqual(['InvalidData']);
  });

  it('without a limit (the embedded runtime) accepts events of any age', async () => {
    const { result } = await send(ALICE, {}, aged(3650 * DAY_MS));

    expect(result.failed).toEqual([]);
  });
});

describe('producerRulesProblem', () => {
  it.each<[string, unknown, string | undefined]>([
    ['valid rules', [{ caller: '*' }, { caller: 'o-a1b2c3d4e5', allowReplay: true }], undefined],
    ['not an array', { caller: '*' }, 'producerRules must be an array of rules'],
    [
      'a caller that names nobody',
      [{ caller: 'alice' }],
      'producerRules[0].caller is "alice"; it must be a 12-digit account id, an Organization id (o-…), a principal ARN (arn:…, * as wildcard) or *',
    ],
    [
      'an eventSources list with an empty pattern',
      [{ caller: '*', eventSources: [''] }],
      'producerRules[0].eventSources must be a non-empty array of eventSource patterns (* as wildcard), e.g. ["*.mycompany.com"]',
    ],
    [
      'a recipient of 11 digits',
      [{ caller: '*', recipientAccountIds: ['12345678901'] }],
      'producerRules[0].recipientAccountIds must be an array of 12-digit account ids (or "*" for any account)',
    ],
    [
      'allowReplay as a string',
      [{ caller: '*', allowReplay: 'yes' }],
      'producerRules[0].allowReplay must be true or false',
    ],
  ])('%s: %p', (_, rules, problem) => {
    expect(producerRulesProblem(rules)).toBe(problem);
  });
});
