import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lambdaInvoker } from '../../cli/shared/redrive-adapters';

const ARN = 'arn:aws:lambda:eu-west-1:111122223333:function:opentrail-packager';
const FAST = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 };

interface Seen {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** Lambda's Invoke API on 127.0.0.1: records each request, answers with `reply`. */
async function fakeLambda(
  reply: (n: number) => { status: number; body: string; headers?: Record<string, string> },
): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      seen.push({
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const r = reply(seen.length);
      response.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
      response.end(r.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

/** A loopback endpoint is no longer signed with fixed credentials: tests give theirs. */
const TEST_KEY = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };

describe('lambdaInvoker (the AWS SDK LambdaClient)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it('posts the event to the function by name, RequestResponse, signed for lambda in its region', async () => {
    const fake = await fakeLambda(() => ({ status: 200, body: '{"batchItemFailures":[]}' }));
    server = fake.server;
    const invoke = lambdaInvoker({
      endpoint: fake.url,
      retry: FAST,
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
    });
    const outcome = await invoke(ARN, { Records: [{ n: 1 }] });
    expect(outcome).toEqual({ payload: { batchItemFailures: [] } });
    expect(fake.seen).toHaveLength(1);
    expect(fake.seen[0]!.url).toBe('/2015-03-31/functions/opentrail-packager/invocations');
    expect(fake.seen[0]!.headers['x-amz-invocation-type']).toBe('RequestResponse');
    expect(JSON.parse(fake.seen[0]!.body)).toEqual({ Records: [{ n: 1 }] });
    expect(fake.seen[0]!.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/eu-west-1\/lambda\/aws4_request, /,
    );
  });

  it('returns the function error with its message, without retrying', async () => {
    const fake = await fakeLambda(() => ({
      status: 200,
      body: '{"errorType":"Error","errorMessage":"bus down"}',
      headers: { 'x-amz-function-error': 'Unhandled' },
    }));
    server = fake.server;
    const outcome = await lambdaInvoker({ endpoint: fake.url, retry: FAST, credentials: TEST_KEY })(
      ARN,
      { Records: [] },
    );
    expect(outcome.functionError).toBe('Unhandled: bus down');
    expect(fake.seen).toHaveLength(1);
  });

  it('retries 5xx up to --max-attempts, and does not retry a 4xx, naming the function and status', async () => {
    const failing = await fakeLambda(() => ({ status: 503, body: '{"message":"try later"}' }));
    server = failing.server;
    await expect(
      lambdaInvoker({ endpoint: failing.url, retry: FAST, credentials: TEST_KEY })(ARN, {
        Records: [],
      }),
    ).rejects.toThrow(/^Invoke opentrail-packager: HTTP 503 /);
    expect(failing.seen).toHaveLength(3);
    await new Promise<void>((resolve) => failing.server.close(() => resolve()));

    const missing = await fakeLambda(() => ({
      status: 404,
      body: '{"message":"Function not found"}',
      headers: { 'x-amzn-errortype': 'ResourceNotFoundException' },
    }));
    server = missing.server;
    await expect(
      lambdaInvoker({ endpoint: missing.url, retry: FAST, credentials: TEST_KEY })(ARN, {
        Records: [],
      }),
    ).rejects.toThrow('Invoke opentrail-packager: HTTP 404 Function not found');
    expect(missing.seen).toHaveLength(1);
  });
});
