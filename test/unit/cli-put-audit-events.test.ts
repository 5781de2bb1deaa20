import { chooseSigner } from '../../cli/put-events';
import { isLoopbackHost, regionFromHost } from '../../cli/shared/endpoint';
import { httpUrl, integerInRange } from '../../cli/shared/options';
import {
  interpretResponse,
  isRetryableStatus,
  putAuditEventsUrl,
} from '../../cli/shared/put-audit-events';
import { backoffDelayMs, DEFAULT_RETRY_POLICY } from '../../cli/shared/retry';
import { UNSIGNED } from '../../cli/shared/sigv4';

const IDS = ['a', 'b', 'c'];

describe('retry decision for a PutAuditEvents answer', () => {
  it('accepts successful entries, retries Throttling and InternalFailure, and keeps other codes final', () => {
    const body = JSON.stringify({
      successful: [{ id: 'a', eventID: 'e-a' }],
      failed: [
        { id: 'b', errorCode: 'Throttling', errorMessage: 'slow down' },
        {
          id: 'c',
          errorCode: 'InvalidData',
          errorMessage: 'eventTime: must be YYYY-MM-DDTHH:MM:SSZ',
        },
      ],
    });
    const outcomes = interpretResponse(200, body, IDS);
    expect(Object.fromEntries(outcomes)).toEqual({
      a: { kind: 'accepted' },
      b: { kind: 'retry', errorCode: 'Throttling', errorMessage: 'slow down' },
      c: {
        kind: 'failed',
        errorCode: 'InvalidData',
        errorMessage: 'eventTime: must be YYYY-MM-DDTHH:MM:SSZ',
      },
    });
  });

  it.each(['InternalFailure', 'Throttling'])('retries entries failed with %s', (code) => {
    const outcomes = interpretResponse(
      200,
      JSON.stringify({ successful: [], failed: [{ id: 'a', errorCode: code, errorMessage: 'm' }] }),
      ['a'],
    );
    expect(outcomes.get('a')?.kind).toBe('retry');
  });

  it.each(['InvalidData', 'FieldNotFound', 'FieldTooLong', 'InvalidChecksum', 'InvalidRecipient'])(
    'keeps %s final',
    (code) => {
      const outcomes = interpretResponse(
        200,
        JSON.stringify({
          successful: [],
          failed: [{ id: 'a', errorCode: code, errorMessage: 'm' }],
        }),
        ['a'],
      );
      expect(outcomes.get('a')?.kind).toBe('failed');
    },
  );

  it('retries an entry the answer does not mention', () => {
    const outcomes = interpretResponse(
      200,
      JSON.stringify({ successful: [{ id: 'a' }], failed: [] }),
      ['a', 'b'],
    );
    expect(outcomes.get('b')).toEqual(
      expect.objectContaining({ kind: 'retry', errorCode: 'MissingResult' }),
    );
  });

  it.each([429, 500, 502, 503, 504])('retries every entry on HTTP %i', (status) => {
    const outcomes = interpretResponse(status, '<html>busy</html>', IDS);
    expect([...outcomes.values()].every((o) => o.kind === 'retry')).toBe(true);
    expect(outcomes.get('a')).toEqual(expect.objectContaining({ errorCode: `HTTP_${status}` }));
  });

  it('fails every entry of a 400 whole-request error with its __type and message', () => {
    const outcomes = interpretResponse(
      400,
      JSON.stringify({
        __type: 'RequestTooLarge',
        message: 'body is 2000000 bytes; at most 1048576',
      }),
      IDS,
    );
    expect([...outcomes.values()]).toEqual(
      IDS.map(() => ({
        kind: 'failed',
        errorCode: 'RequestTooLarge',
        errorMessage: 'body is 2000000 bytes; at most 1048576',
      })),
    );
  });

  it('shortens a namespaced __type and retries a throttling one', () => {
    const outcomes = interpretResponse(
      400,
      JSON.stringify({ __type: 'com.amazonaws.x#ThrottlingException', message: 'rate' }),
      ['a'],
    );
    expect(outcomes.get('a')).toEqual({
      kind: 'retry',
      errorCode: 'ThrottlingException',
      errorMessage: 'rate',
    });
  });

  it('reports a non-JSON answer with its HTTP status', () => {
    expect(interpretResponse(403, 'Forbidden', ['a']).get('a')).toEqual({
      kind: 'failed',
      errorCode: 'HTTP_403',
      errorMessage: 'HTTP 403: Forbidden',
    });
    expect(interpretResponse(200, '<html>', ['a']).get('a')).toEqual(
      expect.objectContaining({ kind: 'failed', errorCode: 'HTTP_200' }),
    );
  });

  it('uses the message of an API Gateway error without __type', () => {
    expect(
      interpretResponse(403, '{"message":"Missing Authentication Token"}', ['a']).get('a'),
    ).toEqual({
      kind: 'failed',
      errorCode: 'HTTP_403',
      errorMessage: 'Missing Authentication Token',
    });
  });

  it.each([
    [200, false],
    [400, false],
    [404, false],
    [429, true],
    [500, true],
    [503, true],
  ])('status %i retryable: %s', (status, expected) => {
    expect(isRetryableStatus(status)).toBe(expected);
  });
});

describe('backoff', () => {
  it('grows exponentially with jitter between half and the whole step, capped', () => {
    const policy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1_000 };
    expect([1, 2, 3, 4, 5].map((a) => backoffDelayMs(a, policy, () => 0))).toEqual([
      50, 100, 200, 400, 500,
    ]);
    expect([1, 2, 3, 4, 5].map((a) => backoffDelayMs(a, policy, () => 1))).toEqual([
      100, 200, 400, 800, 1000,
    ]);
  });

  it('is bounded by default', () => {
    expect(DEFAULT_RETRY_POLICY.maxAttempts).toBe(5);
  });
});

describe('endpoints and signing', () => {
  it.each([
    ['localhost', true],
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['api.localhost', true],
    ['128.0.0.1', false],
    ['example.com', false],
    ['abc.execute-api.eu-west-1.amazonaws.com', false],
    ['localhost.example.com', false],
  ])('%s is loopback: %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });

  it('finds the region in an API Gateway host', () => {
    expect(regionFromHost('abc123.execute-api.eu-west-1.amazonaws.com')).toBe('eu-west-1');
    expect(regionFromHost('api.example.com')).toBeUndefined();
  });

  it('sends unsigned to loopback under auto and signs elsewhere', () => {
    expect(chooseSigner('http://127.0.0.1:4566', 'auto', undefined, {})).toBe(UNSIGNED);
    expect(
      typeof chooseSigner(
        'https://abc.execute-api.us-west-2.amazonaws.com/prod',
        'auto',
        undefined,
        {},
      ),
    ).toBe('function');
    expect(
      chooseSigner('https://abc.execute-api.us-west-2.amazonaws.com/prod', 'auto', undefined, {}),
    ).not.toBe(UNSIGNED);
    expect(chooseSigner('https://api.example.com', 'never', undefined, {})).toBe(UNSIGNED);
  });

  it('asks for --region when signing and no region is known', () => {
    expect(chooseSigner('https://api.example.com', 'auto', undefined, {})).toEqual(
      expect.stringContaining('--region is required'),
    );
    expect(
      typeof chooseSigner('https://api.example.com', 'auto', undefined, {
        AWS_REGION: 'eu-west-1',
      }),
    ).toBe('function');
    expect(typeof chooseSigner('http://localhost:1', 'always', 'us-east-1', {})).toBe('function');
  });

  it('appends /PutAuditEvents to the endpoint and channelArn as a query parameter', () => {
    expect(putAuditEventsUrl('http://127.0.0.1:3000/').href).toBe(
      'http://127.0.0.1:3000/PutAuditEvents',
    );
    expect(
      putAuditEventsUrl('https://h/prod', 'arn:aws:cloudtrail:us-east-1:1:channel/x').href,
    ).toBe(
      'https://h/prod/PutAuditEvents?channelArn=arn%3Aaws%3Acloudtrail%3Aus-east-1%3A1%3Achannel%2Fx',
    );
  });
});

describe('flag parsers', () => {
  it.each(['0', '101', '1.5', 'abc', '', '-3'])('rejects batch size %j with the rule', (value) => {
    expect(() => integerInRange(1, 100)(value)).toThrow('must be an integer from 1 to 100');
  });

  it('accepts integers in range', () => {
    expect(integerInRange(1, 100)('100')).toBe(100);
  });

  it.each(['ftp://x', 'not a url', 'http://h/?q=1'])('rejects endpoint %j', (value) => {
    expect(() => httpUrl(value)).toThrow(/must/);
  });

  it('strips trailing slashes from an endpoint', () => {
    expect(httpUrl('http://127.0.0.1:9/api//')).toBe('http://127.0.0.1:9/api');
  });
});
