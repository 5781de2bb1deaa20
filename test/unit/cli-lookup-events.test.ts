import { parseLookupAttribute, parseTime, toCsv, toTable } from '../../cli/lookup-events';
import { rebaseTransform } from '../../cli/shared/rebase-time';

describe('lookup-events flags', () => {
  it.each([
    [
      'AttributeKey=EventName,AttributeValue=ConsoleLogin',
      [{ AttributeKey: 'EventName', AttributeValue: 'ConsoleLogin' }],
    ],
    [
      'AttributeKey=ResourceName,AttributeValue=arn:aws:s3:::a b,c',
      [{ AttributeKey: 'ResourceName', AttributeValue: 'arn:aws:s3:::a b,c' }],
    ],
    [
      '[{"AttributeKey":"Username","AttributeValue":"José"}]',
      [{ AttributeKey: 'Username', AttributeValue: 'José' }],
    ],
  ])('--lookup-attributes %s', (value, expected) => {
    expect(parseLookupAttribute(value)).toEqual(expected);
  });

  it('refuses a malformed --lookup-attributes', () => {
    expect(() => parseLookupAttribute('EventName=x')).toThrow('AttributeKey=K,AttributeValue=V');
  });

  it.each([
    ['1700000000', 1700000000],
    ['1700000000.5', 1700000000.5],
    ['2023-11-14T22:13:20Z', 1700000000],
    ['2023-11-14T22:13:20', 1700000000],
    ['2023-11-14T23:13:20+01:00', 1700000000],
  ])('--start-time %s is %d', (value, expected) => {
    expect(parseTime(value)).toBe(expected);
  });

  it('writes CSV with quoted fields and the record last', () => {
    const csv = toCsv([
      {
        EventId: 'e1',
        EventTime: 1700000000,
        EventName: 'Put "x", y',
        Resources: [{ ResourceType: 'AWS::S3::Bucket', ResourceName: 'b' }],
        CloudTrailEvent: '{"awsRegion":"eu-west-1","sourceIPAddress":"1.2.3.4"}',
      },
    ]).split('\r\n');
    expect(csv[1]).toBe(
      'e1,2023-11-14T22:13:20Z,,"Put ""x"", y",AWS::S3::Bucket,b,,,eu-west-1,,1.2.3.4,,"{""awsRegion"":""eu-west-1"",""sourceIPAddress"":""1.2.3.4""}"',
    );
  });
  it('quotes a field holding a comma, a quote and a line break as RFC 4180 says', () => {
    const csv = toCsv([
      { EventId: 'e2', EventTime: 1700000000, Username: 'a,b "c"\nd', ReadOnly: 'true' },
    ]);
    const lines = csv.split('\r\n');
    expect(lines[0]).toBe(
      'Event ID,Event time,User name,Event name,Resource type,Resource name,AWS access key,Event source,AWS region,Error code,Source IP address,Read-only,CloudTrail event',
    );
    // The embedded \n stays inside the quoted field; records end with CRLF, the last one too.
    expect(lines[1]).toBe('e2,2023-11-14T22:13:20Z,"a,b ""c""\nd",,,,,,,,,true,');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
  });
  it('writes --output table as aligned columns under a rule, then the count', () => {
    const table = toTable([
      { EventId: 'id-1', EventTime: 1700000000, EventName: 'PutObject', ReadOnly: 'false' },
      { EventId: 'id-22', EventTime: 1700000001, EventName: 'Get', Username: 'alice' },
    ]);
    expect(table.split('\n')).toEqual([
      'EventTime             EventName  Username  EventSource  ReadOnly  EventId',
      '--------------------  ---------  --------  -----------  --------  -------',
      '2023-11-14T22:13:20Z  PutObject                         false     id-1',
      '2023-11-14T22:13:21Z  Get        alice                            id-22',
      '2 events',
      '',
    ]);
  });
});

describe('put-events --rebase-time', () => {
  it('shifts eventTime in the text and the value, leaving the rest byte for byte', () => {
    const text = '{"eventID":"a","eventTime":"2024-01-01T00:00:00Z","n":1.50}';
    const shifted = rebaseTransform(86400 + 1)({
      source: 'f',
      position: 'x',
      text,
      value: JSON.parse(text) as Record<string, unknown>,
    });
    expect(shifted.text).toBe('{"eventID":"a","eventTime":"2024-01-02T00:00:01Z","n":1.50}');
    expect(shifted.value.eventTime).toBe('2024-01-02T00:00:01Z');
  });

  it('leaves a record without a valid eventTime alone', () => {
    const text = '{"eventTime":"yesterday"}';
    expect(
      rebaseTransform(5)({
        source: 'f',
        position: 'x',
        text,
        value: JSON.parse(text) as Record<string, unknown>,
      }).text,
    ).toBe(text);
  });
});
