/**
 * The embedded runtime cannot be used to escape or be reached from a web page
 * (docs/security.md#the-local-runtime): the reproduced path escape (an anonymous
 * `DELETE /..%2Fvictim` removed a sibling of the data directory), keys and upload ids that name
 * paths outside the store, the Host/Origin guard in front of all three emulators, and the
 * run's access key in endpoints.json (mode 0600, data directory 0700) handed to stock tools by
 * `opentrail env`. What is stored is counted: every file under the temporary directory.
 */
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Sha256 } from '@aws-crypto/sha256-js';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { createClients, destroyClients } from '../../lambda/adapters/clients';
import { register as registerEnv } from '../../cli/env';
import { register as registerValidateLogs } from '../../cli/validate-logs';
import { ensureBucket, startEmulators, type Emulators } from '../../local/emulators';
import { startRuntime } from '../../local/runtime';
import { buildChain, CHAIN_PUBLIC_PEM, s3Sink, writeAll } from '../fixtures/validate-chain';
import { runCommand } from '../support/cli-command';
import { credentialsInEnv } from '../support/emulator-clients';

const REGION = 'us-east-1';
const BUCKET = 'security-test';

let work: string;
let emulators: Emulators | undefined;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'opentrail-emulator-security-'));
});

afterEach(async () => {
  await emulators?.close();
  emulators = undefined;
  rmSync(work, { recursive: true, force: true });
});

/** Every file under `dir`, relative, with its bytes as text. */
function filesUnder(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) walk(full);
      else files[relative(dir, full)] = readFileSync(full, 'utf8');
    }
  };
  walk(dir);
  return files;
}

/** Files not under the LevelDB directories of dynalite and kinesalite. */
function outsideLevelDb(files: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(files).filter(([path]) => !/^data\/(dynamodb|kinesis)\//.test(path)),
  );
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTP request with the path sent verbatim (fetch would resolve "..") and any Host. */
function raw(
  endpoint: string,
  options: { method: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<Answer> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: Number(url.port),
        method: options.method,
        path: options.path,
        headers: options.headers,
      },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The same request, signed with SigV4 for s3 with `credentials` (path used as sent). */
async function signed(
  endpoint: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  options: { method: string; path: string; body?: string },
): Promise<Answer> {
  const url = new URL(endpoint);
  const [path, query = ''] = options.path.split('?');
  const signer = new SignatureV4({
    service: 's3',
    region: REGION,
    sha256: Sha256,
    credentials,
    uriEscapePath: false,
  });
  const request = await signer.sign({
    method: options.method,
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: path!,
    query: Object.fromEntries(new URLSearchParams(query)),
    headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
  });
  return raw(endpoint, {
    method: options.method,
    path: options.path,
    headers: request.headers,
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
}

/** A signed request with a body and a content type (signed as an unsigned payload). */
async function signedWithBody(
  endpoint: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  options: { method: string; path: string; contentType: string; body: string },
): Promise<Answer> {
  const url = new URL(endpoint);
  const [path, query = ''] = options.path.split('?');
  const signer = new SignatureV4({
    service: 's3',
    region: REGION,
    sha256: Sha256,
    credentials,
    uriEscapePath: false,
  });
  const request = await signer.sign({
    method: options.method,
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: path!,
    query: Object.fromEntries(new URLSearchParams(query)),
    headers: {
      host: url.host,
      'content-type': options.contentType,
      'content-length': String(Buffer.byteLength(options.body)),
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
    },
  });
  return raw(endpoint, {
    method: options.method,
    path: options.path,
    headers: request.headers,
    body: options.body,
  });
}

describe('the embedded S3 keeps every request inside its store', () => {
  it('refuses DELETE /..%2Fvictim and every other name or key that leads outside, and nothing outside changes', async () => {
    const dataDir = join(work, 'data');
    // The store is <dataDir>/s3: "/..%2Fvictim" names <dataDir>/victim, a sibling of the store
    // (as <dataDir>/dynamodb is), and "../../victim" a sibling of the data directory.
    for (const dir of [join(dataDir, 'victim'), join(work, 'victim')]) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'precious.txt'), 'keep me');
    }
    emulators = await startEmulators({ dataDir });
    const { s3Endpoint, credentials } = emulators;
    const clients = createClients({ region: REGION, s3Endpoint, credentials });
    try {
      await ensureBucket(clients.s3, BUCKET);
      const before = filesUnder(work);

      // The reproduction: anonymous, then signed with the run's own key.
      const anonymous = await raw(s3Endpoint, { method: 'DELETE', path: '/..%2Fvictim' });
      const anonymousInside = await raw(s3Endpoint, { method: 'DELETE', path: `/${BUCKET}` });
      const attempts = await Promise.all([
        signed(s3Endpoint, credentials, { method: 'DELETE', path: '/..%2Fvictim' }),
        signed(s3Endpoint, credentials, { method: 'DELETE', path: '/..' }),
        signed(s3Endpoint, credentials, { method: 'PUT', path: '/..%2Fvictim' }),
        signed(s3Endpoint, credentials, {
          method: 'PUT',
          path: `/${BUCKET}/../../victim/planted`,
          body: 'x',
        }),
        signed(s3Endpoint, credentials, {
          method: 'PUT',
          path: `/${BUCKET}/..%2F..%2Fvictim%2Fplanted`,
          body: 'x',
        }),
        signed(s3Endpoint, credentials, {
          method: 'DELETE',
          path: `/${BUCKET}/..%2F..%2Fvictim%2Fprecious.txt`,
        }),
        signed(s3Endpoint, credentials, {
          method: 'PUT',
          path: `/${BUCKET}/k?partNumber=1&uploadId=..%2F..%2F..%2Fvictim`,
          body: 'x',
        }),
        signed(s3Endpoint, credentials, {
          method: 'PUT',
          path: `/${BUCKET}/k?partNumber=..%2F..%2Fplanted&uploadId=${'a'.repeat(32)}`,
          body: 'x',
        }),
      ]);

      // Every file outside the emulators' LevelDB directories unchanged (LevelDB tidies its own
      // files after opening), and those directories still there.
      expect(outsideLevelDb(filesUnder(work))).toEqual(outsideLevelDb(before));
      for (const dir of ['s3', 'dynamodb', 'kinesis'])
        expect(statSync(join(dataDir, dir)).isDirectory()).toBe(true);
      expect(filesUnder(join(work, 'victim'))).toEqual({ 'precious.txt': 'keep me' });
      expect(filesUnder(join(dataDir, 'victim'))).toEqual({ 'precious.txt': 'keep me' });
      // Names are checked before anything else; a valid name still needs the run's key.
      expect([anonymous.status, anonymous.body]).toEqual([
        400,
        expect.stringContaining('<Code>InvalidBucketName</Code>'),
      ]);
      expect([anonymousInside.status, anonymousInside.body]).toEqual([
        403,
        expect.stringContaining('<Code>AccessDenied</Code>'),
      ]);
      expect(
        attempts.map((answer) => [answer.status, /<Code>(\w+)<\/Code>/.exec(answer.body)?.[1]]),
      ).toEqual([
        [400, 'InvalidBucketName'],
        [400, 'InvalidBucketName'],
        [400, 'InvalidBucketName'],
        [400, 'InvalidArgument'],
        [400, 'InvalidArgument'],
        [400, 'InvalidArgument'],
        [404, 'NoSuchUpload'],
        [400, 'InvalidArgument'],
      ]);
      const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
      expect(listed.KeyCount).toBe(0);
    } finally {
      destroyClients(clients);
    }
  });
});

describe('the embedded S3 survives hostile bodies', () => {
  it('refuses POST Object with malformed multipart (the dicer crash) and __proto__ XML with S3 errors, and keeps serving', async () => {
    emulators = await startEmulators({ dataDir: join(work, 'data') });
    const { s3Endpoint, credentials } = emulators;
    const clients = createClients({ region: REGION, s3Endpoint, credentials });
    try {
      await ensureBucket(clients.s3, BUCKET);
      await clients.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'kept', Body: 'kept' }));
      const boundary = '----opentrail';
      // A part header line beginning with a space: dicer's HeaderParser threw outside any handler
      // and ended the process (GHSA-wm7h-9275-46v2).
      const multipart = await signedWithBody(s3Endpoint, credentials, {
        method: 'POST',
        path: `/${BUCKET}`,
        contentType: `multipart/form-data; boundary=${boundary}`,
        body: `--${boundary}\r\n Content-Disposition: form-data; name="key"\r\n\r\nplanted\r\n--${boundary}--`,
      });
      const deleteXml = await signedWithBody(s3Endpoint, credentials, {
        method: 'POST',
        path: `/${BUCKET}?delete=`,
        contentType: 'application/xml',
        body: '<Delete><Object><Key>kept</Key></Object><__proto__><polluted>yes</polluted></__proto__></Delete>',
      });
      const taggingXml = await signedWithBody(s3Endpoint, credentials, {
        method: 'PUT',
        path: `/${BUCKET}/kept?tagging=`,
        contentType: 'application/xml',
        body: '<Tagging><TagSet><constructor><prototype><polluted>yes</polluted></prototype></constructor></TagSet></Tagging>',
      });

      expect([multipart.status, /<Code>(\w+)<\/Code>/.exec(multipart.body)?.[1]]).toEqual([
        501,
        'NotImplemented',
      ]);
      expect(multipart.body).toContain('POST Object');
      for (const answer of [deleteXml, taggingXml]) {
        expect([answer.status, /<Code>(\w+)<\/Code>/.exec(answer.body)?.[1]]).toEqual([
          400,
          'MalformedXML',
        ]);
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      // Still serving, and nothing was written or deleted.
      const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
      expect((listed.Contents ?? []).map((object) => object.Key)).toEqual(['kept']);
    } finally {
      destroyClients(clients);
    }
  });
});

describe("the CLI signs with the runtime's key only for the runtime", () => {
  const USER_KEY = { accessKeyId: 'AKIAUSEROWNKEY000001', secretAccessKey: 'the-users-own-secret' };
  const CHAIN_START = Date.UTC(2024, 2, 5, 0, 0, 0);
  const validate = (flags: string[]) =>
    runCommand(registerValidateLogs, 'validate-logs', [
      '--trail-arn',
      'arn:aws:cloudtrail:us-east-1:111111111111:trail/opentrail',
      '--region',
      'us-east-1',
      '--start-time',
      '2024-03-04T22:00:00Z',
      '--end-time',
      '2024-03-05T04:00:00Z',
      '--public-key',
      join(work, 'key.pem'),
      '--s3-bucket',
      BUCKET,
      ...flags,
    ]);

  it('validate-logs --s3-endpoint on localhost (a MinIO) uses the standard chain; --endpoints uses the file', async () => {
    // An S3 on localhost that knows only the user's own key, as MinIO or LocalStack would.
    emulators = await startEmulators({ dataDir: join(work, 'minio'), credentials: USER_KEY });
    const clients = createClients({ region: REGION, ...emulators });
    const restoreEnv = credentialsInEnv(USER_KEY);
    try {
      await ensureBucket(clients.s3, BUCKET);
      await writeAll(
        s3Sink(clients.s3, BUCKET),
        buildChain({ bucket: BUCKET, startMs: CHAIN_START, periods: 3 }).objects,
      );
      writeFileSync(join(work, 'key.pem'), CHAIN_PUBLIC_PEM);
      const endpointsFile = join(work, 'endpoints.json');
      writeFileSync(
        endpointsFile,
        JSON.stringify({ s3: emulators.s3Endpoint, bucket: BUCKET, ...USER_KEY }),
      );

      const viaFlag = await validate(['--s3-endpoint', emulators.s3Endpoint]);
      // The user's environment holds other credentials: the file's key is used for its S3.
      process.env.AWS_ACCESS_KEY_ID = 'AKIASOMEONEELSE00001';
      process.env.AWS_SECRET_ACCESS_KEY = 'not-this-s3s-secret';
      const viaFile = await validate(['--endpoints', endpointsFile]);
      const flagOverFile = await validate([
        '--endpoints',
        endpointsFile,
        '--s3-endpoint',
        emulators.s3Endpoint.replace('127.0.0.1', 'localhost'),
      ]);

      expect(viaFlag.exitCode).toBe(0);
      expect(viaFlag.stdout).toContain('3/3 digest files valid');
      expect(viaFile.exitCode).toBe(0);
      expect(viaFile.stdout).toContain('3/3 digest files valid');
      // An endpoint the file does not name gets the environment's (here wrong) credentials.
      expect(flagOverFile.exitCode).toBe(1);
    } finally {
      restoreEnv();
      destroyClients(clients);
    }
  });
});

describe('the emulators refuse web pages', () => {
  it.each([
    ['s3', 's3Endpoint', 'GET', '/'],
    ['dynamodb', 'dynamodbEndpoint', 'POST', '/'],
    ['kinesis', 'kinesisEndpoint', 'POST', '/'],
  ] as const)(
    '%s answers 403 to an Origin header or a foreign Host, with no CORS grant, and serves 127.0.0.1',
    async (_name, key, method, path) => {
      emulators = await startEmulators({ dataDir: join(work, 'data') });
      const endpoint = emulators[key];
      const port = new URL(endpoint).port;
      // A cross-origin "simple" request a web page can send without a preflight.
      const body = '{}';
      const fromPage = await raw(endpoint, {
        method,
        path,
        headers: { origin: 'https://evil.example', 'content-type': 'text/plain' },
        body,
      });
      const rebound = await raw(endpoint, {
        method,
        path,
        headers: { host: `evil.example:${port}`, 'content-type': 'text/plain' },
        body,
      });
      const otherPort = await raw(endpoint, {
        method,
        path,
        headers: { host: `127.0.0.1:${Number(port) === 1 ? 2 : 1}` },
        body,
      });
      const local = await raw(endpoint, {
        method,
        path,
        headers: { host: `localhost:${port}`, 'content-type': 'text/plain' },
        body,
      });

      for (const refused of [fromPage, rebound, otherPort]) {
        expect(refused.status).toBe(403);
        expect(refused.headers['access-control-allow-origin']).toBeUndefined();
        expect(refused.body).toMatch(/AccessDenied/);
      }
      expect(fromPage.body).toContain('Origin header');
      expect(rebound.body).toContain('evil.example');
      // Served (the emulator's own answer, whatever it makes of an empty request).
      expect(local.body).not.toMatch(/only 127\.0\.0\.1 or localhost|Origin header/);
    },
  );

  it('a DynamoDB CreateTable from a web page creates nothing', async () => {
    emulators = await startEmulators({ dataDir: join(work, 'data') });
    const target = (operation: string) => ({
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `DynamoDB_20120810.${operation}`,
      authorization:
        'AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
      'x-amz-date': '20260101T000000Z',
    });
    const create = JSON.stringify({
      TableName: 'planted',
      AttributeDefinitions: [{ AttributeName: 'k', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'k', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    });

    const refused = await raw(emulators.dynamodbEndpoint, {
      method: 'POST',
      path: '/',
      headers: { ...target('CreateTable'), origin: 'https://evil.example' },
      body: create,
    });
    const tables = await raw(emulators.dynamodbEndpoint, {
      method: 'POST',
      path: '/',
      headers: target('ListTables'),
      body: '{}',
    });

    expect(refused.status).toBe(403);
    expect(tables.status).toBe(200);
    expect(JSON.parse(tables.body)).toEqual({ TableNames: [] });
  });
});

describe("the run's access key", () => {
  it('is in endpoints.json (0600, data directory 0700), and `opentrail env` hands it to a shell that then reads S3', async () => {
    const dataDir = join(work, 'runtime');
    mkdirSync(dataDir, { mode: 0o755 });
    const runtime = await startRuntime({ dataDir, port: 0, flushSeconds: 1, components: [] });
    try {
      const endpointsFile = join(dataDir, 'endpoints.json');
      const file = JSON.parse(readFileSync(endpointsFile, 'utf8')) as Record<string, string>;
      expect(statSync(endpointsFile).mode & 0o777).toBe(0o600);
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      expect(file.accessKeyId).toMatch(/^OTL[0-9A-F]{18}$/);
      expect(file.secretAccessKey).toHaveLength(40);

      const { stdout, exitCode } = await runCommand(registerEnv, 'env', ['--data-dir', dataDir]);
      expect(exitCode).toBe(0);
      // What `eval "$(npx opentrail env)"` leaves in a shell.
      const shell = execFileSync('bash', ['-c', `${stdout}\nenv`], {
        env: { PATH: process.env.PATH, AWS_SESSION_TOKEN: 'stale', AWS_PROFILE: 'work' },
        encoding: 'utf8',
      });
      const vars = Object.fromEntries(
        shell
          .split('\n')
          .filter((line) => line.startsWith('AWS_'))
          .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
      );
      expect(vars).toEqual({
        AWS_ACCESS_KEY_ID: file.accessKeyId,
        AWS_SECRET_ACCESS_KEY: file.secretAccessKey,
        AWS_REGION: 'us-east-1',
        AWS_ENDPOINT_URL_S3: runtime.endpoints.s3,
        AWS_ENDPOINT_URL_DYNAMODB: runtime.endpoints.dynamodb,
        AWS_ENDPOINT_URL_KINESIS: runtime.endpoints.kinesis,
        AWS_ENDPOINT_URL_CLOUDTRAIL: runtime.endpoints.api,
      });
      const clients = createClients({
        region: vars.AWS_REGION!,
        s3Endpoint: vars.AWS_ENDPOINT_URL_S3!,
        credentials: {
          accessKeyId: vars.AWS_ACCESS_KEY_ID!,
          secretAccessKey: vars.AWS_SECRET_ACCESS_KEY!,
        },
      });
      try {
        const listed = await clients.s3.send(
          new ListObjectsV2Command({ Bucket: runtime.endpoints.bucket }),
        );
        expect(listed.$metadata.httpStatusCode).toBe(200);
      } finally {
        destroyClients(clients);
      }
    } finally {
      await runtime.close();
    }
  });

  it('`opentrail env` names the missing runtime', async () => {
    await expect(
      runCommand(registerEnv, 'env', ['--data-dir', join(work, 'none')]),
    ).rejects.toThrow(/no running runtime: .*endpoints\.json does not exist/);
  });
});
