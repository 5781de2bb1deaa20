import {
  minifyJson,
  normaliseRecord,
  RecordError,
  REQUIRED_FIELDS,
  type NormaliseContext,
} from '../../lambda/core/records';
import {
  completeRecord,
  DEPLOYMENT_ACCOUNT,
  FIXED_UUID,
  jsonBytes,
  loadStratusRecords,
  minimalRecord,
  NOW_MS,
  objectOfJsonBytes,
  stringOfJsonBytes,
} from '../fixtures/records';

const context: NormaliseContext = {
  accountId: DEPLOYMENT_ACCOUNT,
  nowMs: NOW_MS,
  newEventId: () => FIXED_UUID,
};
const NORMALISED_FIELDS = [
  'eventID',
  'eventVersion',
  'eventType',
  'eventCategory',
  'managementEvent',
  'recipientAccountId',
];
const KIB = 1024;

function refusalOf(eventData: string, ctx: NormaliseContext = context): RecordError {
  try {
    normaliseRecord(eventData, ctx);
  } catch (error) {
    if (error instanceof RecordError) return error;
    throw error;
  }
  throw new Error('expected the record to be refused, but it was accepted');
}

function stored(record: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(normaliseRecord(JSON.stringify(record), context).text) as Record<
    string,
    unknown
  >;
}

function without(record: Record<string, unknown>, field: string): Record<string, unknown> {
  const copy = { ...record };
  delete copy[field];
  return copy;
}

describe('normaliseRecord: required fields', () => {
  it.each(REQUIRED_FIELDS.map((field) => [field]))(
    'a record without %s is refused with FieldNotFound naming it',
    (field) => {
      // Arrange
      const eventData = JSON.stringify(without(minimalRecord(), field));

      // Act
      const error = refusalOf(eventData);

      // Assert
      expect({ code: error.code, field: error.field }).toEqual({ code: 'FieldNotFound', field });
      expect(error.message).toContain(field);
    },
  );
});

describe('normaliseRecord: field types', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['userIdentity is a string', { userIdentity: 'alice' }, 'userIdentity'],
    ['readOnly is the string "true"', { readOnly: 'true' }, 'readOnly'],
    [
      'requestParameters is an array',
      { requestParameters: [{ bucketName: 'b' }] },
      'requestParameters',
    ],
    ['responseElements is a string', { responseElements: 'ok' }, 'responseElements'],
    ['resources is an object, not an array', { resources: { ARN: 'arn:aws:s3:::b' } }, 'resources'],
    ['eventVersion is "2.0"', { eventVersion: '2.0' }, 'eventVersion'],
    ['awsRegion holds a "/"', { awsRegion: 'us-east-1/../x' }, 'awsRegion'],
    ['awsRegion holds a "."', { awsRegion: 'us.east.1' }, 'awsRegion'],
    ['eventTime is a number', { eventTime: 1714564740 }, 'eventTime'],
    ['managementEvent is a string', { managementEvent: 'true' }, 'managementEvent'],
    ['recipientAccountId holds a "/"', { recipientAccountId: '111/222' }, 'recipientAccountId'],
    ['eventSource is empty', { eventSource: '' }, 'eventSource'],
  ])('a record whose %s is refused with InvalidData naming the field', (_, overrides, field) => {
    // Arrange
    const eventData = JSON.stringify(minimalRecord(overrides));

    // Act
    const error = refusalOf(eventData);

    // Assert
    expect({ code: error.code, field: error.field }).toEqual({ code: 'InvalidData', field });
    expect(error.message).toContain(field);
  });

  it.each<[string, Record<string, unknown>]>([
    ['eventVersion "1.01" of an old archive', { eventVersion: '1.01' }],
    [
      'userIdentity without type',
      { userIdentity: { principalId: 'x', accountId: 'ANONYMOUS_PRINCIPAL' } },
    ],
    ['sourceIPAddress that is a service name', { sourceIPAddress: 'AWS Internal' }],
    ['errorCode without errorMessage', { errorCode: 'AccessDenied' }],
    ['a made-up region name', { awsRegion: 'moon-base-1' }],
    ['requestParameters null', { requestParameters: null, responseElements: null }],
    ['an unknown eventCategory', { eventCategory: 'SomethingNew' }],
    ['sessionCredentialFromConsole as the string "true"', { sessionCredentialFromConsole: 'true' }],
  ])('a record with %s is accepted', (_, overrides) => {
    // Arrange
    const eventData = JSON.stringify(minimalRecord(overrides));

    // Act
    const result = normaliseRecord(eventData, context);

    // Assert
    expect(JSON.parse(result.text)).toMatchObject(overrides);
  });
});

describe('normaliseRecord: size caps in UTF-8 bytes of the field JSON', () => {
  const caps: [string, number, 'string' | 'object'][] = [
    ['requestParameters', 100 * KIB, 'object'],
    ['responseElements', 100 * KIB, 'object'],
    ['additionalEventData', 28 * KIB, 'object'],
    ['userAgent', 4 * KIB, 'string'],
    ['errorCode', 4 * KIB, 'string'],
    ['errorMessage', 4 * KIB, 'string'],
    ['requestID', 4 * KIB, 'string'],
  ];
  const chars: [string, string][] = [
    ['ASCII', 'a'],
    ['2-byte é', 'é'],
    ['3-byte €', '€'],
    ['4-byte 😀', '😀'],
  ];
  const cases = caps.flatMap(([field, cap, kind]) =>
    chars.map(([label, char]) => [field, cap, kind, label, char] as const),
  );
  const valueOf = (kind: 'string' | 'object', bytes: number, char: string): unknown =>
    kind === 'string' ? stringOfJsonBytes(bytes, char) : objectOfJsonBytes(bytes, char);

  it.each(cases)(
    '%s of exactly %i bytes (%s, %s) is accepted',
    (field, cap, kind, _label, char) => {
      // Arrange
      const value = valueOf(kind, cap, char);
      const eventData = JSON.stringify(minimalRecord({ [field]: value }));

      // Act
      const result = normaliseRecord(eventData, context);

      // Assert
      expect(jsonBytes(value)).toBe(cap);
      expect((JSON.parse(result.text) as Record<string, unknown>)[field]).toEqual(value);
    },
  );

  it.each(cases)(
    '%s one byte over its %i-byte cap (%s, %s) is refused with FieldTooLong',
    (field, cap, kind, _label, char) => {
      // Arrange
      const value = valueOf(kind, cap + 1, char);
      const eventData = JSON.stringify(minimalRecord({ [field]: value }));

      // Act
      const error = refusalOf(eventData);

      // Assert
      expect(jsonBytes(value)).toBe(cap + 1);
      expect({ code: error.code, field: error.field }).toEqual({ code: 'FieldTooLong', field });
      expect(error.message).toContain(field);
    },
  );

  function recordOfBytes(bytes: number, char: string): string {
    const base = JSON.stringify(completeRecord({ padding: '' }));
    const padding = stringOfJsonBytes(bytes - Buffer.byteLength(base, 'utf8') + 2, char);
    const text = JSON.stringify(completeRecord({ padding }));
    expect(Buffer.byteLength(text, 'utf8')).toBe(bytes);
    return text;
  }

  it.each(chars)('a whole record of exactly 256 KiB (%s) is accepted unchanged', (_, char) => {
    // Arrange
    const eventData = recordOfBytes(256 * KIB, char);

    // Act
    const result = normaliseRecord(eventData, context);

    // Assert
    expect(result.text).toBe(eventData);
  });

  it.each(chars)(
    'a whole record one byte over 256 KiB (%s) is refused with FieldTooLong',
    (_, char) => {
      // Arrange
      const eventData = recordOfBytes(256 * KIB + 1, char);

      // Act
      const error = refusalOf(eventData);

      // Assert
      expect(error.code).toBe('FieldTooLong');
      expect(error.message).toContain(String(256 * KIB));
    },
  );
});

describe('normaliseRecord: eventTime', () => {
  it.each([
    ['unparseable', 'yesterday'],
    ['with fractional seconds', '2024-05-01T11:59:00.123Z'],
    ['without Z', '2024-05-01T11:59:00'],
    ['with an offset instead of Z', '2024-05-01T11:59:00+00:00'],
    ['with a space instead of T', '2024-05-01 11:59:00Z'],
    ['on a day that does not exist (2024-02-30)', '2024-02-30T00:00:00Z'],
    ['at hour 24', '2024-05-01T24:00:00Z'],
    ['16 minutes in the future', '2024-05-01T12:16:00Z'],
    ['15 minutes and 1 second in the future', '2024-05-01T12:15:01Z'],
  ])('an eventTime %s is refused with InvalidData', (_, eventTime) => {
    // Arrange
    const eventData = JSON.stringify(minimalRecord({ eventTime }));

    // Act
    const error = refusalOf(eventData);

    // Assert
    expect({ code: error.code, field: error.field }).toEqual({
      code: 'InvalidData',
      field: 'eventTime',
    });
  });

  it.each([
    ['14 minutes in the future', '2024-05-01T12:14:00Z'],
    ['exactly 15 minutes in the future', '2024-05-01T12:15:00Z'],
    ['years in the past', '2013-11-01T00:00:00Z'],
    ['on a leap day', '2024-02-29T23:59:59Z'],
  ])('an eventTime %s is accepted', (_, eventTime) => {
    // Arrange
    const eventData = JSON.stringify(minimalRecord({ eventTime }));

    // Act
    const result = normaliseRecord(eventData, context);

    // Assert
    expect(JSON.parse(result.text)).toMatchObject({ eventTime });
  });
});

describe('normaliseRecord: normalisation of absent fields', () => {
  it('an absent eventID becomes a new UUID, also returned as the eventID', () => {
    // Arrange
    const record = without(completeRecord(), 'eventID');

    // Act
    const result = normaliseRecord(JSON.stringify(record), context);

    // Assert
    expect(result.eventID).toBe(FIXED_UUID);
    expect(JSON.parse(result.text)).toEqual({ ...record, eventID: FIXED_UUID });
  });

  it.each<[string, unknown]>([
    ['eventVersion', '1.11'],
    ['eventType', 'AwsApiCall'],
    ['recipientAccountId', DEPLOYMENT_ACCOUNT],
  ])('an absent %s becomes %p', (field, value) => {
    // Arrange
    const record = without(completeRecord(), field);

    // Act
    const result = stored(record);

    // Assert
    expect(result).toEqual({ ...record, [field]: value });
  });

  it('an absent recipientAccountId is the deployment account in the result too', () => {
    // Arrange
    const record = without(completeRecord(), 'recipientAccountId');

    // Act
    const result = normaliseRecord(JSON.stringify(record), context);

    // Assert
    expect(result.recipientAccountId).toBe(DEPLOYMENT_ACCOUNT);
  });

  it.each<[boolean, string]>([
    [true, 'Management'],
    [false, 'Data'],
  ])('an absent eventCategory follows managementEvent %p → %s', (managementEvent, category) => {
    // Arrange: a data-plane operation, so managementEvent must win over the operation table
    const record = without(
      completeRecord({ eventSource: 's3.amazonaws.com', eventName: 'GetObject', managementEvent }),
      'eventCategory',
    );

    // Act
    const result = stored(record);

    // Assert
    expect(result).toEqual({ ...record, eventCategory: category });
  });

  const dataOperations: [string, string][] = [
    ['s3.amazonaws.com', 'GetObject'],
    ['s3.amazonaws.com', 'PutObject'],
    ['s3.amazonaws.com', 'DeleteObjects'],
    ['s3.amazonaws.com', 'ListObjectsV2'],
    ['s3.amazonaws.com', 'CompleteMultipartUpload'],
    ['s3.amazonaws.com', 'ListParts'],
    ['lambda.amazonaws.com', 'Invoke'],
    ['lambda.amazonaws.com', 'InvokeAsync'],
    ['dynamodb.amazonaws.com', 'GetItem'],
    ['dynamodb.amazonaws.com', 'Query'],
    ['dynamodb.amazonaws.com', 'TransactWriteItems'],
  ];
  it.each(dataOperations)(
    'without eventCategory and managementEvent, %s %s is a Data event',
    (eventSource, eventName) => {
      // Arrange
      const record = without(
        without(completeRecord({ eventSource, eventName }), 'eventCategory'),
        'managementEvent',
      );

      // Act
      const result = stored(record);

      // Assert
      expect(result).toEqual({ ...record, eventCategory: 'Data', managementEvent: false });
    },
  );

  const managementOperations: [string, string][] = [
    ['s3.amazonaws.com', 'CreateBucket'],
    ['s3.amazonaws.com', 'PutBucketPolicy'],
    ['lambda.amazonaws.com', 'CreateFunction20150331'],
    ['dynamodb.amazonaws.com', 'CreateTable'],
    ['iam.amazonaws.com', 'ListUsers'],
    ['ec2.amazonaws.com', 'GetObject'],
    ['sqs.amazonaws.com', 'Invoke'],
  ];
  it.each(managementOperations)(
    'without eventCategory and managementEvent, %s %s is a Management event',
    (eventSource, eventName) => {
      // Arrange
      const record = without(
        without(completeRecord({ eventSource, eventName }), 'eventCategory'),
        'managementEvent',
      );

      // Act
      const result = stored(record);

      // Assert
      expect(result).toEqual({ ...record, eventCategory: 'Management', managementEvent: true });
    },
  );

  it.each<[string, boolean]>([
    ['Management', true],
    ['Data', false],
    ['Insight', false],
    ['NetworkActivity', false],
  ])(
    'an absent managementEvent is derived from eventCategory %s → %p',
    (eventCategory, managementEvent) => {
      // Arrange
      const record = without(completeRecord({ eventCategory }), 'managementEvent');

      // Act
      const result = stored(record);

      // Assert
      expect(result).toEqual({ ...record, managementEvent });
    },
  );

  it('a minimal record gets every normalised field appended after its own fields', () => {
    // Arrange
    const record = minimalRecord();
    const eventData = JSON.stringify(record);

    // Act
    const result = normaliseRecord(eventData, context);

    // Assert
    expect(result.text.startsWith(eventData.slice(0, -1) + ',')).toBe(true);
    expect(JSON.parse(result.text)).toEqual({
      ...record,
      eventID: FIXED_UUID,
      eventVersion: '1.11',
      eventType: 'AwsApiCall',
      eventCategory: 'Management',
      managementEvent: true,
      recipientAccountId: DEPLOYMENT_ACCOUNT,
    });
  });

  it.each<[string, Record<string, unknown>]>([
    ['an old eventVersion', { eventVersion: '1.02' }],
    ['a console sign-in eventType', { eventType: 'AwsConsoleSignIn' }],
    [
      'a category that disagrees with the operation table',
      { eventSource: 's3.amazonaws.com', eventName: 'GetObject', eventCategory: 'Management' },
    ],
    [
      'a managementEvent that disagrees with eventCategory',
      { eventCategory: 'Data', managementEvent: true },
    ],
    ['another recipient account', { recipientAccountId: '222222222222' }],
    ['an eventID that is not a UUID', { eventID: 'my-own-id_1' }],
  ])(
    'present fields are never changed: a record with %s is stored byte for byte',
    (_, overrides) => {
      // Arrange
      const eventData = JSON.stringify(completeRecord(overrides));

      // Act
      const result = normaliseRecord(eventData, context);

      // Assert
      expect(result.text).toBe(eventData);
    },
  );
});

describe('normaliseRecord: the stored text is the producer text', () => {
  const producerText = `{
    "eventVersion": "1.08",
    "zeta": 12345678901234567890,
    "userIdentity": { "type": "Root", "accountId": "111111111111" },
    "price": 1.50,
    "eventTime": "2024-05-01T11:59:00Z",
    "eventSource": "s3.amazonaws.com",
    "note": "caf\\u00e9 \\"quoted  text\\" back\\\\slash\\ttab ü 漢字 😀  two  spaces",
    "eventName": "GetObject",
    "awsRegion": "eu-west-1",
    "sci": 6.02E+23,
    "nested": { "b": [ 1, 2.0, -0, true, null ], "a": "x" },
    "eventID": "11111111-2222-4333-8444-555555555555",
    "unknownField": { "keep": "me" }
  }\n`;
  const compact =
    '{"eventVersion":"1.08","zeta":12345678901234567890,"userIdentity":{"type":"Root","accountId":"111111111111"},' +
    '"price":1.50,"eventTime":"2024-05-01T11:59:00Z","eventSource":"s3.amazonaws.com",' +
    '"note":"caf\\u00e9 \\"quoted  text\\" back\\\\slash\\ttab ü 漢字 😀  two  spaces","eventName":"GetObject",' +
    '"awsRegion":"eu-west-1","sci":6.02E+23,"nested":{"b":[1,2.0,-0,true,null],"a":"x"},' +
    '"eventID":"11111111-2222-4333-8444-555555555555","unknownField":{"keep":"me"}}';

  it('keeps big integers, 1.50, unicode, escapes, key order and unknown fields byte for byte', () => {
    // Act
    const result = normaliseRecord(producerText, context);

    // Assert
    expect(result.text.slice(0, compact.length - 1)).toBe(compact.slice(0, -1));
  });

  it('appends only the absent normalised fields after the producer text', () => {
    // Act
    const result = normaliseRecord(producerText, context);

    // Assert
    const appended = JSON.parse(`{${result.text.slice(compact.length)}`) as Record<string, unknown>;
    expect(appended).toEqual({
      eventType: 'AwsApiCall',
      eventCategory: 'Data',
      managementEvent: false,
      recipientAccountId: DEPLOYMENT_ACCOUNT,
    });
    expect(result.eventID).toBe('11111111-2222-4333-8444-555555555555');
  });

  it('a record with every normalised field present is stored as its minified text exactly', () => {
    // Arrange
    const eventData = producerText.replace(
      '"eventName"',
      '"eventType":"AwsApiCall","eventCategory":"Data","managementEvent":false,"recipientAccountId":"111111111111","eventName"',
    );

    // Act
    const result = normaliseRecord(eventData, context);

    // Assert
    expect(result.text).toBe(minifyJson(eventData.trim()));
    expect(result.text).toContain('"zeta":12345678901234567890');
  });
});

describe('normaliseRecord: real CloudTrail records (stratus-red-team detonation logs)', () => {
  const records = loadStratusRecords();
  const realContext: NormaliseContext = { ...context, nowMs: Date.UTC(2030, 0, 1) };

  it('the fixture set holds all 310 records', () => {
    expect(records).toHaveLength(310);
  });

  it.each(records.map(({ file, index, record }) => [`${file} #${index}`, record] as const))(
    '%s passes and is stored unchanged apart from appended fields',
    (_, record) => {
      // Arrange: pretty-printed, so that minifying must give JSON.stringify's text back
      const eventData = JSON.stringify(record, null, 2);

      // Act
      const result = normaliseRecord(eventData, realContext);

      // Assert
      const out = JSON.parse(result.text) as Record<string, unknown>;
      const added = Object.keys(out).filter((key) => !(key in record));
      expect(added.every((key) => NORMALISED_FIELDS.includes(key))).toBe(true);
      expect(out).toEqual({
        ...record,
        ...Object.fromEntries(added.map((key) => [key, out[key]])),
      });
      expect(result.text.startsWith(JSON.stringify(record).slice(0, -1))).toBe(true);
    },
  );
});

describe('minifyJson', () => {
  it.each([
    ['whitespace between tokens', '{ "a" : 1 ,\n\t"b" :\r\n [ 1 , 2 ] }', '{"a":1,"b":[1,2]}'],
    ['strings with spaces', '{"a": "x y  z "}', '{"a":"x y  z "}'],
    [
      'escaped quotes followed by spaces',
      '{"a": "say \\" hi \\" ok", "b": 1}',
      '{"a":"say \\" hi \\" ok","b":1}',
    ],
    [
      'a backslash that ends a string',
      '{"a": "dir\\\\", "b" : "c d"}',
      '{"a":"dir\\\\","b":"c d"}',
    ],
    ['backslashes before spaces', '{"a": "x\\\\ y\\\\\\\\ z"}', '{"a":"x\\\\ y\\\\\\\\ z"}'],
    ['unicode escapes and raw unicode', '{"a": "\\u0020 ü 😀"}', '{"a":"\\u0020 ü 😀"}'],
    ['text that is already minified', '{"a":"b c"}', '{"a":"b c"}'],
  ])('removes only insignificant whitespace: %s', (_, input, expected) => {
    // Act
    const output = minifyJson(input);

    // Assert
    expect(output).toBe(expected);
    expect(JSON.parse(output)).toEqual(JSON.parse(input));
  });
});
