import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudTrailClient, LookupEventsCommand } from '@aws-sdk/client-cloudtrail';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { startProxy } from '../../cli/proxy';
import { sigV4Signer } from '../../cli/shared/sigv4';

describe('opentrail proxy', () => {
  let upstream: Server;
  let seen: { url: string; headers: IncomingHttpHeaders; body: string }[];
  const saved = { ...process.env };

  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID = 'AKIDPROXYTEST';
    process.env.AWS_SECRET_ACCESS_KEY = 'secret';
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    seen = [];
    upstream = createServer((request, response) => {
      let body = '';
      request.on('data', (c: Buffer) => (body += c.toString()));
      request.on('end', () => {
        seen.push({ url: request.url ?? '', headers: request.headers, body });
        response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        response.end('{"Events":[]}');
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
  });

  afterAll(async () => {
    process.env = saved;
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('re-signs a stock CloudTrail client request for execute-api, on the stage path', async () => {
    const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
    const proxy = await startProxy({
      endpoint: base,
      port: 0,
      signer: sigV4Signer({ region: 'eu-west-1' }),
    });
    const client = new CloudTrailClient({
      endpoint: proxy.url,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'STOCK', secretAccessKey: 'stock' },
    });
    try {
      const response = await client.send(new LookupEventsCommand({ MaxResults: 3 }));
      expect(response.Events).toEqual([]);
      const [request] = seen;
      expect(request!.url).toBe('/v1/');
      expect(request!.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDPROXYTEST\/\d{8}\/eu-west-1\/execute-api\/aws4_request/,
      );
      expect(request!.headers['x-amz-target']).toMatch(/LookupEvents$/);
      expect(JSON.parse(request!.body)).toEqual({ MaxResults: 3 });
    } finally {
      client.destroy();
      await proxy.close();
    }
  });

  it('the CloudTrailClient configuration of docs/cli.md#from-code-the-aws-sdks-cloudtrailclient signs for execute-api directly', async () => {
    seen = [];
    const region = 'eu-west-1';
    const credentials = { accessKeyId: 'AKIDSDK', secretAccessKey: 'secret' };
    const client = new CloudTrailClient({
      region,
      endpoint: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`,
      credentials,
      signer: new SignatureV4({ service: 'execute-api', region, credentials, sha256: Sha256 }),
    });
    try {
      await client.send(new LookupEventsCommand({}));
      expect(seen[0]!.url).toBe('/v1/');
      expect(seen[0]!.headers.authorization).toMatch(
        /Credential=AKIDSDK\/\d{8}\/eu-west-1\/execute-api\/aws4_request/,
      );
    } finally {
      client.destroy();
    }
  });
});
