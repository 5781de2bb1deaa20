import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type Server,
} from 'node:http';
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

describe('opentrail proxy signs only what its user meant', () => {
  let upstream: Server;
  let forwarded: number;
  let signer: jest.Mock;
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;

  beforeEach(async () => {
    forwarded = 0;
    signer = jest.fn((request: { headers: Record<string, string> }) =>
      Promise.resolve({ ...request.headers, authorization: 'signed' }),
    );
    upstream = createServer((_request, response) => {
      forwarded++;
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      response.end('{"Events":[]}');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
  });

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  const start = async (allowWrites = false) => {
    proxy = await startProxy({
      endpoint: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`,
      port: 0,
      signer,
      allowWrites,
    });
    return proxy;
  };

  /** A request with any headers (fetch cannot set Host or send a forbidden Origin). */
  const send = (
    url: string,
    options: { method?: string; path?: string; headers?: Record<string, string>; body?: string },
  ): Promise<{ status: number; body: string }> => {
    const target = new URL(url);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: target.hostname,
          port: Number(target.port),
          method: options.method ?? 'POST',
          path: options.path ?? target.pathname,
          headers: options.headers,
        },
        (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString()));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end(options.body);
    });
  };

  it('refuses a cross-origin text/plain POST from a web page: nothing signed, nothing forwarded', async () => {
    const { url } = await start(true);

    const answer = await send(url, {
      path: `${new URL(url).pathname}/`,
      headers: {
        origin: 'https://evil.example',
        'content-type': 'text/plain',
        'x-amz-target': 'CloudTrail_20131101.LookupEvents',
      },
      body: '{"MaxResults":50}',
    });

    expect(answer.status).toBe(403);
    expect(answer.body).toContain('Origin header');
    expect(signer).not.toHaveBeenCalled();
    expect(forwarded).toBe(0);
  });

  it('refuses another Host (DNS rebinding) and a request without the token of the run', async () => {
    const { url } = await start(true);
    const { port, pathname } = new URL(url);
    const lookup = { 'x-amz-target': 'CloudTrail_20131101.LookupEvents' };

    const rebound = await send(url, {
      path: `${pathname}/`,
      headers: { ...lookup, host: `evil.example:${port}` },
      body: '{}',
    });
    const noToken = await send(url, { path: '/', headers: lookup, body: '{}' });
    const wrongToken = await send(url, {
      path: `/${'0'.repeat(32)}/`,
      headers: lookup,
      body: '{}',
    });

    expect([rebound.status, noToken.status, wrongToken.status]).toEqual([403, 403, 403]);
    expect(noToken.body).toContain('token');
    expect(signer).not.toHaveBeenCalled();
    expect(forwarded).toBe(0);
  });

  it('prints a URL with a fresh token each run, which a stock CloudTrailClient uses as its endpoint', async () => {
    const first = await start();
    const firstUrl = first.url;
    await first.close();
    proxy = undefined;
    const { url } = await start();
    const client = new CloudTrailClient({
      endpoint: url,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'STOCK', secretAccessKey: 'stock' },
    });
    try {
      const response = await client.send(new LookupEventsCommand({ MaxResults: 1 }));

      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/[0-9a-f]{32}$/);
      expect(new URL(url).pathname).not.toBe(new URL(firstUrl).pathname);
      expect(response.Events).toEqual([]);
      expect(forwarded).toBe(1);
    } finally {
      client.destroy();
    }
  });

  it('forwards only the read operations unless --allow-writes', async () => {
    const readOnly = await start(false);
    const path = `${new URL(readOnly.url).pathname}`;
    const put = {
      path: `${path}/PutAuditEvents`,
      headers: { 'content-type': 'application/json' },
      body: '{}',
    };
    const close = {
      path: `${path}/`,
      headers: { 'x-amz-target': 'Opentrail.CloseDigestPeriod' },
      body: '{}',
    };

    const refusedPut = await send(readOnly.url, put);
    const refusedClose = await send(readOnly.url, close);
    const read = await send(readOnly.url, {
      path: `${path}/`,
      headers: { 'x-amz-target': 'CloudTrail_20131101.GetTrailStatus' },
      body: '{}',
    });
    expect([refusedPut.status, refusedClose.status, read.status]).toEqual([403, 403, 200]);
    expect(refusedPut.body).toContain('--allow-writes');
    expect(forwarded).toBe(1);
    await readOnly.close();

    const writable = await start(true);
    const writablePath = new URL(writable.url).pathname;
    const allowed = await send(writable.url, { ...put, path: `${writablePath}/PutAuditEvents` });
    expect(allowed.status).toBe(200);
    expect(forwarded).toBe(2);
  });
});
