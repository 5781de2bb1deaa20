import { createHash } from 'node:crypto';
import type { ProducerRule } from '../../lambda/core/config';
import { contentHash } from '../../lambda/core/content-hash';
import {
  MAX_BODY_BYTES,
  putAuditEvents,
  RequestError,
  type Caller,
  type IngestDeps,
  type PutAuditEventsResult,
} from '../../lambda/core/ingest';
import { MemoryRecordStream } from '../fixtures/memory-ports';
import {
  completeRecord,
  DEPLOYMENT_ACCOUNT,
  minimalRecord,
  NOW_MS,
  objectOfJsonBytes,
  PRODUCER_ACCOUNT,
  stringOfJsonBytes,
} from '../fixtures/records';

const KIB = 1024;
/** A verified producer, as the ingest handler builds it from the request context. */
const PRODUCER: Caller = {
  principalArn: `arn:aws:iam::${PRODUCER_ACCOUNT}:role/producer`,
  accountId: PRODUCER_ACCOUNT,
  sourceIp: '198.51.100.7',
  requestId: 'req-1',
  receivedAtMs: NOW_MS,
};
const NO_CALLER = PRODUCER;
const callerIn = (accountId: string, principalOrgId?: string): Caller => ({
  ...PRODUCER,
  principalArn: `arn:aws:iam::${accountId}:role/producer`,
  accountId,
  ...(principalOrgId !== undefined ? { principalOrgId } : {}),
});

interface Entry {
  id: string;
  eventData: string;
  eventDataChecksum?: string;
}

function uuids(): () => string {
  let n = 0;
  return () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
}

function depsWith(stream: MemoryRecordStream, overrides: Partial<IngestDeps> = {}): IngestDeps {
  return {
    stream,
    accountId: DEPLOYMENT_ACCOUNT,
    checkRecipients: false,
    now: () => NOW_MS,
    newEventId: uuids(),
    sleep: async () => {},
    ...overrides,
  };
}

function bodyOf(entries: readonly unknown[]): string {
  return JSON.stringify({ auditEvents: entries });
}

function entry(id: string, record: Record<string, unknown> = minimalRecord()): Entry {
  return { id, eventData: JSON.stringify(record) };
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function checksum(eventData: string): string {
  return createHash('sha256').update(eventData, 'utf8').digest('base64');
}

async function requestErrorOf(body: string, deps: IngestDeps): Promise<RequestError> {
  try {
    await putAuditEvents(body, NO_CALLER, deps);
  } catch (error) {
    if (error instanceof RequestError) return error;
    throw error;
  }
  throw new Error('expected the request to be rejected, but it was accepted');
}

function idsOf(result: PutAuditEventsResult): { successful: string[]; failed: string[] } {
  return {
    successful: result.successful.map((e) => e.id).sort(),
    failed: result.failed.map((e) => e.id).sort(),
  };
}

describe('putAuditEvents: whole-request rejections', () => {
  const hundredAndOne = Array.from({ length: 101 }, (_, i) => entry(`e${i}`));
  const tooLarge = bodyOf([entry('big', minimalRecord({ padding: 'x'.repeat(MAX_BODY_BYTES) }))]);

  it.each<[string, string, string]>([
    ['a body that is not JSON', '{"auditEvents": [', 'ValidationException'],
    ['an empty body', '', 'ValidationException'],
    ['a body that is an array', '[]', 'ValidationException'],
    ['a body that is a string', '"auditEvents"', 'ValidationException'],
    ['a body that is null', 'null', 'ValidationException'],
    ['a body without auditEvents', '{}', 'ValidationException'],
    ['auditEvents that is not an array', '{"auditEvents":{"id":"a"}}', 'ValidationException'],
    ['auditEvents that is empty', '{"auditEvents":[]}', 'ValidationException'],
    ['101 entries', bodyOf(hundredAndOne), 'ValidationException'],
    ['a body over 1,048,576 bytes', tooLarge, 'RequestTooLargeException'],
    [
      'two entries with the same id',
      bodyOf([entry('same'), entry('other'), entry('same')]),
      'DuplicatedAuditEventId',
    ],
    ['an empty id', bodyOf([entry('')]), 'ValidationException'],
    ['an id with a space', bodyOf([entry('has space')]), 'ValidationException'],
    ['an id with a dot', bodyOf([entry('a.b')]), 'ValidationException'],
    ['an id of 129 characters', bodyOf([entry('a'.repeat(129))]), 'ValidationException'],
    [
      'an id that is a number',
      bodyOf([{ id: 7, eventData: JSON.stringify(minimalRecord()) }]),
      'ValidationException',
    ],
    ['an entry that is not an object', bodyOf(['just a string']), 'ValidationException'],
    ['an entry without eventData', bodyOf([{ id: 'a' }]), 'ValidationException'],
    [
      'eventData that is an object, not a string',
      bodyOf([{ id: 'a', eventData: minimalRecord() }]),
      'ValidationException',
    ],
    [
      'a checksum that is not a string',
      bodyOf([{ ...entry('a'), eventDataChecksum: 5 }]),
      'ValidationException',
    ],
  ])('%s is rejected whole with %s and nothing reaches the stream', async (_, body, code) => {
    // Arrange
    const stream = new MemoryRecordStream();

    // Act
    const error = await requestErrorOf(body, depsWith(stream));

    // Assert
    expect(error.code).toBe(code);
    expect(error.message).not.toBe('');
    expect(stream.calls).toHaveLength(0);
  });

  it.each([
    ['100 entries', Array.from({ length: 100 }, (_, i) => entry(`e${i}`))],
    ['an id of 128 characters of [-_A-Za-z0-9]', [entry(`${'a'.repeat(125)}-_Z`)]],
  ])('%s are accepted', async (_, entries) => {
    // Arrange
    const stream = new MemoryRecordStream();

    // Act
    const result = await putAuditEvents(bodyOf(entries), NO_CALLER, depsWith(stream));

    // Assert
    expect(result.successful).toHaveLength(entries.length);
    expect(result.failed).toEqual([]);
  });

  it('a body of exactly 1,048,576 bytes is accepted', async () => {
    // Arrange: five records of about 200 KiB each, the last padded to the exact limit
    const records = Array.from({ length: 5 }, (_, i) =>
      minimalRecord({ padding: 'p'.repeat(200 * KIB), n: i }),
    );
    const draft = bodyOf(records.map((r, i) => entry(`e${i}`, r)));
    const deficit = MAX_BODY_BYTES - Buffer.byteLength(draft, 'utf8');
    records[4] = { ...records[4], padding: 'p'.repeat(200 * KIB + deficit) };
    const body = bodyOf(records.map((r, i) => entry(`e${i}`, r)));
    const stream = new MemoryRecordStream();

    // Act
    const result = await putAuditEvents(body, NO_CALLER, depsWith(stream));

    // Assert
    expect(Buffer.byteLength(body, 'utf8')).toBe(MAX_BODY_BYTES);
    expect(idsOf(result)).toEqual({ successful: ['e0', 'e1', 'e2', 'e3', 'e4'], failed: [] });
  });
});

describe('putAuditEvents: a bad entry fails alone', () => {
  const required = ['eventTime', 'eventSource', 'eventName', 'awsRegion', 'userIdentity'];
  const withoutField = (field: string): string => {
    const record = minimalRecord();
    delete record[field];
    return JSON.stringify(record);
  };
  const over = (field: string, cap: number, kind: 'string' | 'object'): string =>
    JSON.stringify(
      minimalRecord({
        [field]: kind === 'string' ? stringOfJsonBytes(cap + 1) : objectOfJsonBytes(cap + 1),
      }),
    );

  const cases: [string, Omit<Entry, 'id'>, string, string][] = [
    ['eventData that is not JSON', { eventData: '{"eventTime":' }, 'InvalidData', 'eventData'],
    [
      'eventData that is an array',
      { eventData: JSON.stringify([minimalRecord()]) },
      'InvalidData',
      'eventData',
    ],
    ['eventData that is a JSON string', { eventData: '"a record"' }, 'InvalidData', 'eventData'],
    ['eventData that is a number', { eventData: '42' }, 'InvalidData', 'eventData'],
    ['eventData that is null', { eventData: 'null' }, 'InvalidData', 'eventData'],
    ...required.map((field): [string, Omit<Entry, 'id'>, string, string] => [
      `a record without ${field}`,
      { eventData: withoutField(field) },
      'FieldNotFound',
      field,
    ]),
    ...(
      [
        ['requestParameters', 100 * KIB, 'object'],
        ['responseElements', 100 * KIB, 'object'],
        ['additionalEventData', 28 * KIB, 'object'],
        ['userAgent', 4 * KIB, 'string'],
        ['errorCode', 4 * KIB, 'string'],
        ['errorMessage', 4 * KIB, 'string'],
        ['requestID', 4 * KIB, 'string'],
      ] as const
    ).map(([field, cap, kind]): [string, Omit<Entry, 'id'>, string, string] => [
      `a ${field} over ${cap} bytes`,
      { eventData: over(field, cap, kind) },
      'FieldTooLong',
      field,
    ]),
    [
      'a userIdentity that is a string',
      { eventData: JSON.stringify(minimalRecord({ userIdentity: 'alice' })) },
      'InvalidData',
      'userIdentity',
    ],
    [
      'a readOnly that is the string "true"',
      { eventData: JSON.stringify(minimalRecord({ readOnly: 'true' })) },
      'InvalidData',
      'readOnly',
    ],
    [
      'a requestParameters that is an array',
      { eventData: JSON.stringify(minimalRecord({ requestParameters: [] })) },
      'InvalidData',
      'requestParameters',
    ],
    [
      'an eventVersion "2.0"',
      { eventData: JSON.stringify(minimalRecord({ eventVersion: '2.0' })) },
      'InvalidData',
      'eventVersion',
    ],
    [
      'an eventTime with fractional seconds',
      { eventData: JSON.stringify(minimalRecord({ eventTime: '2024-05-01T11:59:00.5Z' })) },
      'InvalidData',
      'eventTime',
    ],
    [
      'an eventTime 16 minutes in the future',
      { eventData: JSON.stringify(minimalRecord({ eventTime: '2024-05-01T12:16:00Z' })) },
      'InvalidData',
      'eventTime',
    ],
    [
      'a checksum of other data',
      { eventData: JSON.stringify(minimalRecord()), eventDataChecksum: checksum('something else') },
      'InvalidChecksum',
      'eventDataChecksum',
    ],
    [
      'a hex instead of base64 checksum',
      {
        eventData: JSON.stringify(minimalRecord()),
        eventDataChecksum: createHash('sha256')
          .update(JSON.stringify(minimalRecord()))
          .digest('hex'),
      },
      'InvalidChecksum',
      'eventDataChecksum',
    ],
  ];

  it.each(cases)(
    '%s fails with %s while the good entries around it are delivered',
    async (_, bad, code, field) => {
      // Arrange
      const stream = new MemoryRecordStream();
      const good1 = entry('good-1', minimalRecord({ eventName: 'First' }));
      const good2 = entry('good-2', completeRecord({ eventName: 'Second' }));
      const body = bodyOf([good1, { id: 'bad', ...bad }, good2]);

      // Act
      const result = await putAuditEvents(body, NO_CALLER, depsWith(stream));

      // Assert
      expect(idsOf(result)).toEqual({ successful: ['good-1', 'good-2'], failed: ['bad'] });
      expect(result.failed[0]).toEqual({
        id: 'bad',
        errorCode: code,
        errorMessage: expect.stringContaining(field),
      });
      expect(
        stream.delivered.map((d) => (JSON.parse(d.text) as { eventName: string }).eventName),
      ).toEqual(['First', 'Second']);
      expect(result.successful).toEqual([
        { id: 'good-1', eventID: '00000000-0000-4000-8000-000000000001' },
        { id: 'good-2', eventID: completeRecord().eventID },
      ]);
    },
  );

  it('a correct base64 SHA-256 checksum is accepted', async () => {
    // Arrange
    const stream = new MemoryRecordStream();
    const eventData = JSON.stringify(minimalRecord({ note: 'ünïcödé' }));

    // Act
    const result = await putAuditEvents(
      bodyOf([{ id: 'a', eventData, eventDataChecksum: checksum(eventData) }]),
      NO_CALLER,
      depsWith(stream),
    );

    // Assert
    expect(idsOf(result)).toEqual({ successful: ['a'], failed: [] });
  });

  it('every entry of a mixed request is in exactly one list', async () => {
    // Arrange
    const stream = new MemoryRecordStream();
    const entries = Array.from({ length: 100 }, (_, i) =>
      i % 3 === 0 ? { id: `e${i}`, eventData: '{' } : entry(`e${i}`, minimalRecord({ n: i })),
    );

    // Act
    const result = await putAuditEvents(bodyOf(entries), NO_CALLER, depsWith(stream));

    // Assert
    const all = [...result.successful.map((e) => e.id), ...result.failed.map((e) => e.id)].sort();
    expect(all).toEqual(entries.map((e) => e.id).sort());
    expect(result.failed).toHaveLength(34);
    expect(stream.delivered).toHaveLength(66);
  });
});

describe('putAuditEvents: delivery to the stream', () => {
  it('the partition key of each stream record is the hex SHA-256 of its eventID and the data is the stored, stamped text', async () => {
    // Arrange
    const stream = new MemoryRecordStream();
    const withId = completeRecord();
    const body = bodyOf([entry('with-id', withId), entry('without-id', minimalRecord())]);

    // Act
    const result = await putAuditEvents(body, NO_CALLER, depsWith(stream));

    // Assert
    expect(stream.delivered.map((d) => d.partitionKey)).toEqual(
      result.successful.map((s) => sha256Hex(s.eventID)),
    );
    expect(stream.delivered.map((d) => d.partitionKey)).toEqual([
      sha256Hex(withId.eventID as string),
      sha256Hex('00000000-0000-4000-8000-000000000001'),
    ]);
    expect(stream.delivered[0]!.text).toBe(
      `${JSON.stringify(withId).slice(0, -1)},"opentrailProvenance":${JSON.stringify({
        principalArn: PRODUCER.principalArn,
        accountId: PRODUCER_ACCOUNT,
        sourceIPAddress: '198.51.100.7',
        requestId: 'req-1',
        receivedAt: new Date(NOW_MS).toISOString(),
        contentHash: contentHash(JSON.parse(stream.delivered[0]!.text) as Record<string, unknown>),
      })}}`,
    );
    expect(JSON.parse(stream.delivered[1]!.text)).toMatchObject({
      eventID: '00000000-0000-4000-8000-000000000001',
    });
  });

  it.each(['ProvisionedThroughputExceededException', 'InternalFailure'])(
    'records Kinesis reports failed with %s once are retried and succeed',
    async (errorCode) => {
      // Arrange
      const stream = new MemoryRecordStream((records, call) =>
        records.map((_, i) => (call === 1 && i === 1 ? { errorCode, errorMessage: 'busy' } : 'ok')),
      );
      const body = bodyOf([
        entry('a', minimalRecord({ n: 0 })),
        entry('b', minimalRecord({ n: 1 })),
        entry('c', minimalRecord({ n: 2 })),
      ]);

      // Act
      const result = await putAuditEvents(body, NO_CALLER, depsWith(stream));

      // Assert
      expect(idsOf(result)).toEqual({ successful: ['a', 'b', 'c'], failed: [] });
      expect(stream.calls.map((c) => c.length)).toEqual([3, 1]);
      expect(stream.delivered).toHaveLength(3);
    },
  );

  it.each<[string, string]>([
    ['ProvisionedThroughputExceededException', 'Throttling'],
    ['InternalFailure', 'InternalFailure'],
    ['KMSThrottlingException', 'InternalFailure'],
  ])(
    'a record Kinesis fails with %s on every attempt is reported %s, the others succeed',
    async (kinesisCode, code) => {
      // Arrange
      const sleeps: number[] = [];
      const stream = new MemoryRecordStream((records) =>
        records.map((r) =>
          r.partitionKey === sha256Hex(completeRecord().eventID as string)
            ? { errorCode: kinesisCode, errorMessage: 'no' }
            : 'ok',
        ),
      );
      const body = bodyOf([entry('ok', minimalRecord()), entry('stuck', completeRecord())]);

      // Act
      const result = await putAuditEvents(
        body,
        NO_CALLER,
        depsWith(stream, { sleep: async (ms) => void sleeps.push(ms) }),
      );

      // Assert
      expect(idsOf(result)).toEqual({ successful: ['ok'], failed: ['stuck'] });
      expect(result.failed[0]).toMatchObject({ id: 'stuck', errorCode: code });
      expect(stream.calls).toHaveLength(4);
      expect(sleeps).toHaveLength(3);
    },
  );

  it('a PutRecords call that throws is retried and its records succeed', async () => {
    // Arrange
    const stream = new MemoryRecordStream((records, call) => {
      if (call === 1) throw new Error('socket hang up');
      return records.map(() => 'ok');
    });
    const body = bodyOf([entry('a', minimalRecord({ n: 0 })), entry('b', minimalRecord({ n: 1 }))]);

    // Act
    const result = await putAuditEvents(body, NO_CALLER, depsWith(stream));

    // Assert
    expect(idsOf(result)).toEqual({ successful: ['a', 'b'], failed: [] });
    expect(stream.calls).toHaveLength(2);
  });

  it('PutRecords calls that throw on every attempt report InternalFailure for each entry', async () => {
    // Arrange
    const stream = new MemoryRecordStream(() => {
      throw new Error('stream deleted');
    });
    const body = bodyOf([
      entry('a', minimalRecord({ n: 0 })),
      entry('b', minimalRecord({ n: 1 })),
      { id: 'bad', eventData: '[' },
    ]);

    // Act
    const result = await putAuditEvents(body, NO_CALLER, depsWith(stream, { maxAttempts: 3 }));

    // Assert
    expect(idsOf(result)).toEqual({ successful: [], failed: ['a', 'b', 'bad'] });
    expect(
      result.failed
        .filter((f) => f.errorCode === 'InternalFailure')
        .map((f) => f.id)
        .sort(),
    ).toEqual(['a', 'b']);
    expect(stream.calls).toHaveLength(3);
  });

  it('a request whose entries are all bad makes no PutRecords call', async () => {
    // Arrange
    const stream = new MemoryRecordStream();

    // Act
    const result = await putAuditEvents(
      bodyOf([{ id: 'a', eventData: '1' }]),
      NO_CALLER,
      depsWith(stream),
    );

    // Assert
    expect(idsOf(result)).toEqual({ successful: [], failed: ['a'] });
    expect(stream.calls).toHaveLength(0);
  });
});

describe('putAuditEvents: InvalidRecipient', () => {
  const OTHER = '222222222222';
  const cases: [string, string | undefined, Caller, ProducerRule[], boolean][] = [
    ['the caller writes for its own account', PRODUCER_ACCOUNT, PRODUCER, [], true],
    ['the caller writes for another account', OTHER, PRODUCER, [], false],
    [
      'the caller writes for another account, which its account may write for',
      OTHER,
      PRODUCER,
      [{ caller: PRODUCER_ACCOUNT, recipientAccountIds: [OTHER] }],
      true,
    ],
    [
      'the caller writes for another account than the one its account may write for',
      OTHER,
      PRODUCER,
      [{ caller: PRODUCER_ACCOUNT, recipientAccountIds: ['333333333333'] }],
      false,
    ],
    [
      'another account may write for the recipient, not the caller',
      OTHER,
      PRODUCER,
      [{ caller: '333333333333', recipientAccountIds: [OTHER] }],
      false,
    ],
    [
      'the caller writes for another account, which its principal ARN pattern may write for',
      OTHER,
      PRODUCER,
      [{ caller: `arn:aws:iam::${PRODUCER_ACCOUNT}:role/prod*`, recipientAccountIds: [OTHER] }],
      true,
    ],
    [
      'the caller writes for another account, its organization may write for any',
      OTHER,
      callerIn(PRODUCER_ACCOUNT, 'o-abcdefghij'),
      [{ caller: 'o-abcdefghij', recipientAccountIds: ['*'] }],
      true,
    ],
    [
      "another organization may write for any account, not the caller's",
      OTHER,
      callerIn(PRODUCER_ACCOUNT, 'o-abcdefghij'),
      [{ caller: 'o-zzzzzzzzzz', recipientAccountIds: ['*'] }],
      false,
    ],
    [
      'the record has no recipient and the caller is the deployment account',
      undefined,
      callerIn(DEPLOYMENT_ACCOUNT),
      [],
      true,
    ],
  ];

  it.each(cases)(
    'with the recipient rule on, when %s, acceptance is %p',
    async (_, recipient, caller, producerRules, accepted) => {
      // Arrange
      const stream = new MemoryRecordStream();
      const record =
        recipient === undefined
          ? minimalRecord()
          : minimalRecord({ recipientAccountId: recipient });
      const deps = depsWith(stream, { checkRecipients: true, producerRules });

      // Act
      const result = await putAuditEvents(bodyOf([entry('a', record)]), caller, deps);

      // Assert
      if (accepted) {
        expect(idsOf(result)).toEqual({ successful: ['a'], failed: [] });
      } else {
        expect(result.failed).toEqual([
          {
            id: 'a',
            errorCode: 'InvalidRecipient',
            errorMessage: expect.stringContaining('recipientAccountId'),
          },
        ]);
        expect(stream.delivered).toEqual([]);
      }
    },
  );

  it.each(cases)(
    'with the recipient rule off, when %s, the entry is accepted',
    async (_, recipient, caller) => {
      // Arrange
      const stream = new MemoryRecordStream();
      const record =
        recipient === undefined
          ? minimalRecord()
          : minimalRecord({ recipientAccountId: recipient });

      // Act
      const result = await putAuditEvents(bodyOf([entry('a', record)]), caller, depsWith(stream));

      // Assert
      expect(idsOf(result)).toEqual({ successful: ['a'], failed: [] });
    },
  );
});
