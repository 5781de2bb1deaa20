import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lookupEventsPaged } from '../../cli/lookup-events';
import { cloudTrailApiClient } from '../../cli/shared/cloudtrail-api';
import { fetchChainStatus, listPublicKeys } from '../../cli/shared/validate-api';

interface Seen {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
}

interface Reply {
  readonly status?: number;
  readonly body: string;
  readonly headers?: Record<string, string>;
}

/** An opentrail API on 127.0.0.1: records each request; `answer` replies per X-Amz-Target. */
class FakeApi {
  readonly seen: Seen[] = [];
  answer: (target: string, body: Record<string, unknown>) => Reply = () => ({ body: '{}' });
  url = '';
  private server?: Server;

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<
          string,
          unknown
        >;
        this.seen.push({ url: request.url ?? '', headers: request.headers, body });
        const reply = this.answer(String(request.headers['x-amz-target']), body);
        response.writeHead(reply.status ?? 200, {
          'content-type': 'application/x-amz-json-1.1',
          ...reply.headers,
        });
        response.end(reply.body);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/prod`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };

describe('the CLI’s CloudTrail client against an opentrail API', () => {
  const api = new FakeApi();
  beforeAll(() => api.start());
  afterAll(() => api.close());
  beforeEach(() => {
    api.seen.length = 0;
  });

  it('signs for execute-api (not cloudtrail) in the given region, under the stage path', async () => {
    api.answer = () => ({ body: '{"Events":[]}' });
    const client = cloudTrailApiClient(api.url, 'always', 'eu-west-1', {
      credentials: CREDENTIALS,
    });
    if (typeof client === 'string') throw new Error(client);
    await lookupEventsPaged({ client });
    client.destroy();
    expect(api.seen).toHaveLength(1);
    expect(api.seen[0]!.url).toBe('/prod/');
    expect(api.seen[0]!.headers['x-amz-target']).toMatch(/CloudTrail_20131101\.LookupEvents$/);
    expect(api.seen[0]!.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[^,]*host[^,]*x-amz-target/,
    );
  });

  it('sends no signature to a loopback endpoint under --sign auto, and asks for --region elsewhere', async () => {
    api.answer = () => ({ body: '{"Events":[]}' });
    const client = cloudTrailApiClient(api.url, 'auto', undefined, { env: {} });
    if (typeof client === 'string') throw new Error(client);
    await lookupEventsPaged({ client });
    client.destroy();
    expect(api.seen[0]!.headers.authorization).toBeUndefined();
    expect(
      cloudTrailApiClient('https://api.example.com/prod', 'auto', undefined, { env: {} }),
    ).toBe(
      '--region is required to sign requests to api.example.com (the host names no region and AWS_REGION is not set); or pass --sign never',
    );
  });

  it('pages LookupEvents up to --max-items and prints events in the wire form', async () => {
    api.answer = (_, body) => {
      const page = body.NextToken === undefined ? 1 : 2;
      return {
        body: JSON.stringify({
          Events: [
            {
              EventId: `e${page}`,
              EventName: 'PutObject',
              EventTime: 1700000000.5,
              Resources: [],
              CloudTrailEvent: '{}',
            },
          ],
          NextToken: `after-${page}`,
        }),
      };
    };
    const client = cloudTrailApiClient(api.url, 'never', undefined);
    if (typeof client === 'string') throw new Error(client);
    const result = await lookupEventsPaged({
      client,
      startTime: 1700000000,
      lookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'PutObject' }],
      maxResults: 1,
      maxItems: 2,
    });
    client.destroy();
    expect(JSON.stringify(result)).toBe(
      '{"Events":[{"EventId":"e1","EventName":"PutObject","EventTime":1700000000.5,"Resources":[],"CloudTrailEvent":"{}"},' +
        '{"EventId":"e2","EventName":"PutObject","EventTime":1700000000.5,"Resources":[],"CloudTrailEvent":"{}"}],"NextToken":"after-2"}',
    );
    expect(api.seen.map((s) => s.body)).toEqual([
      {
        LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'PutObject' }],
        StartTime: 1700000000,
        MaxResults: 1,
      },
      {
        LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'PutObject' }],
        StartTime: 1700000000,
        MaxResults: 1,
        NextToken: 'after-1',
      },
    ]);
  });

  it('words error answers as the AWS CLI does, and names the status when the body is not JSON', async () => {
    const client = cloudTrailApiClient(api.url, 'never', undefined);
    if (typeof client === 'string') throw new Error(client);
    api.answer = () => ({
      status: 400,
      body: '{"__type":"InvalidTimeRangeException","message":"StartTime is after EndTime"}',
    });
    await expect(lookupEventsPaged({ client })).rejects.toThrow(
      'An error occurred (InvalidTimeRangeException) when calling the LookupEvents operation: StartTime is after EndTime',
    );
    api.answer = () => ({ status: 502, body: '<html>Bad Gateway</html>' });
    await expect(lookupEventsPaged({ client })).rejects.toThrow(
      'An error occurred (HTTP_502) when calling the LookupEvents operation: <html>Bad Gateway</html>',
    );
    client.destroy();
  });

  it("keeps GetTrailStatus's opentrail members the SDK's model does not know", async () => {
    api.answer = (target) =>
      target.endsWith('.DescribeTrails')
        ? {
            body: JSON.stringify({
              trailList: [
                { Name: 'main', S3BucketName: 'b', LogFileValidationEnabled: true },
                { Name: 'other', S3BucketName: 'elsewhere', LogFileValidationEnabled: true },
              ],
            }),
          }
        : {
            body: JSON.stringify({
              IsLogging: true,
              OpentrailDigestPeriodSeconds: 3600,
              OpentrailDigestGraceSeconds: 900,
              OpentrailDigestChains: [
                {
                  AccountId: '111122223333',
                  Region: 'eu-west-1',
                  HomeRegion: 'eu-west-1',
                  FirstDigestStartTime: 1700000000,
                  LatestDigestEndTime: 1700003600,
                },
              ],
            }),
          };
    const client = cloudTrailApiClient(api.url, 'never', undefined);
    if (typeof client === 'string') throw new Error(client);
    const status = await fetchChainStatus(client, api.url, { bucket: 'b' });
    client.destroy();
    expect(api.seen.map((s) => s.body)).toEqual([{}, { Name: 'main' }]);
    expect(status).toEqual({
      expectations: [
        {
          trailName: 'main',
          account: '111122223333',
          region: 'eu-west-1',
          homeRegion: 'eu-west-1',
          firstStartMs: 1700000000000,
          headEndMs: 1700003600000,
        },
      ],
      unknown: [],
      periodSeconds: 3600,
      graceSeconds: 900,
    });
  });

  it('reads ListPublicKeys page by page with each key’s validity window, and names the operation on an error', async () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const der = publicKey.export({ type: 'pkcs1', format: 'der' });
    api.answer = (_, body) => ({
      body: JSON.stringify(
        body.NextToken === undefined
          ? {
              PublicKeyList: [
                {
                  Value: der.toString('base64'),
                  ValidityStartTime: 1700000000,
                  ValidityEndTime: 1700003600,
                },
              ],
              NextToken: 'n',
            }
          : { PublicKeyList: [] },
      ),
    });
    const client = cloudTrailApiClient(api.url, 'never', undefined);
    if (typeof client === 'string') throw new Error(client);
    const keys = await listPublicKeys(client, api.url, 1700000000000, 1700007200000);
    expect([...keys.values()]).toEqual([
      { der, validFromMs: 1700000000000, validUntilMs: 1700003600000 },
    ]);
    expect(api.seen.map((s) => s.body)).toEqual([
      { StartTime: 1700000000, EndTime: 1700007200 },
      { StartTime: 1700000000, EndTime: 1700007200, NextToken: 'n' },
    ]);
    api.answer = () => ({ status: 403, body: '{"message":"Missing Authentication Token"}' });
    await expect(listPublicKeys(client, api.url, 0, 1000)).rejects.toThrow(
      `ListPublicKeys ${api.url}: 403: Missing Authentication Token`,
    );
    client.destroy();
  });
});
