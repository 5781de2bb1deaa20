/**
 * `opentrail validate-logs` as a process: a chain built with digest-format and a node:crypto key
 * (independent of the signer), in the embedded S3 and in a directory; public keys from files
 * (PEM and DER) and from a ListPublicKeys endpoint. The tamper matrix runs in-process in
 * test/integration/validate-logs.test.ts; this checks the wiring and the exit codes.
 */
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClients, destroyClients, type Clients } from '../../lambda/adapters/clients';
import { fingerprintOfPublicKey } from '../../lambda/core/digest-format';
import { ensureBucket, type Emulators } from '../../local/emulators';
import { startLimitedEmulators } from '../support/limited-dynalite';
import {
  buildChain,
  CHAIN_KEY,
  CHAIN_PUBLIC_PEM,
  dirSink,
  s3Sink,
  writeAll,
} from '../fixtures/validate-chain';
import { runCli, runCliIntoHead } from './harness';
import { credentialsInEnv } from '../support/emulator-clients';

const BUCKET = 'validate-cli';
const START = Date.UTC(2024, 2, 5, 0, 0, 0);
const RANGE = ['--start-time', '2024-03-05T00:00:00Z', '--end-time', '2024-03-05T05:00:00Z'];

let work: string;
let emulators: Emulators;
/** The S3 emulator's key in AWS_* env vars: the standard chain of --s3-endpoint runs. */
let restoreEnv: () => void = () => undefined;
let clients: Clients;
let server: Server;
let keyEndpoint: string;
const requests: { target: string | undefined; body: string }[] = [];
const chain = buildChain({ bucket: BUCKET, startMs: START, periods: 4 });

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'opentrail-validate-cli-'));
  emulators = await startLimitedEmulators({ dataDir: join(work, 'emulators') });
  restoreEnv = credentialsInEnv(emulators.credentials);
  clients = createClients({
    region: 'us-east-1',
    s3Endpoint: emulators.s3Endpoint,
    credentials: emulators.credentials,
  });
  await ensureBucket(clients.s3, BUCKET);
  await writeAll(s3Sink(clients.s3, BUCKET), chain.objects);
  await writeAll(dirSink(join(work, 'copy')), chain.objects);
  writeFileSync(join(work, 'key.pem'), CHAIN_PUBLIC_PEM);
  writeFileSync(
    join(work, 'key.der'),
    createPublicKey(CHAIN_KEY).export({ type: 'spki', format: 'der' }),
  );
  const der = createPublicKey(CHAIN_KEY).export({ type: 'pkcs1', format: 'der' });
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      requests.push({ target: request.headers['x-amz-target'] as string | undefined, body });
      response.setHeader('content-type', 'application/x-amz-json-1.1');
      response.end(
        JSON.stringify({
          PublicKeyList: [
            {
              Value: der.toString('base64'),
              ValidityStartTime: 0,
              ValidityEndTime: 4102444800,
              Fingerprint: fingerprintOfPublicKey(der),
            },
          ],
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  keyEndpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  restoreEnv();
  destroyClients(clients);
  await new Promise((resolve) => server.close(resolve));
  await emulators.close();
  rmSync(work, { recursive: true, force: true });
});

describe('opentrail validate-logs', () => {
  it('exits 0 on an untouched chain in the embedded S3, keys from ListPublicKeys', async () => {
    const result = await runCli([
      'validate-logs',
      '--trail-arn',
      'arn:aws:cloudtrail:us-east-1:111111111111:trail/opentrail',
      '--s3-bucket',
      BUCKET,
      '--s3-endpoint',
      emulators.s3Endpoint,
      '--endpoint',
      keyEndpoint,
      ...RANGE,
    ]);

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('4/4 digest files valid\n8/8 log files valid\n');
    // The SDK's X-Amz-Target (`CloudTrail_20131101.ListPublicKeys`, as CloudTrail accepts it).
    expect(requests.at(-1)?.target).toMatch(/CloudTrail_20131101\.ListPublicKeys$/);
    expect(JSON.parse(requests.at(-1)!.body)).toMatchObject({ StartTime: START / 1000 });
  });

  it('exits 0 on the downloaded copy with PEM and DER key files, and 1 once a log file is gone', async () => {
    const args = [
      'validate-logs',
      '--s3-bucket',
      BUCKET,
      '--local-dir',
      join(work, 'copy'),
      '--public-key',
      join(work, 'key.pem'),
      '--public-key',
      join(work, 'key.der'),
      '--output',
      'json',
      ...RANGE,
    ];

    const before = await runCli(args);
    rmSync(join(work, 'copy', ...chain.logKeys[3]!.split('/')));
    const after = await runCli(args);

    expect(before.code).toBe(0);
    expect(JSON.parse(before.stdout)).toMatchObject({ logs: { valid: 8, invalid: 0 } });
    expect(after.code).toBe(1);
    expect(JSON.parse(after.stdout)).toMatchObject({
      logs: { valid: 7, invalid: 1 },
      invalid: [{ kind: 'log', key: chain.logKeys[3], reason: 'not found' }],
    });
  });

  it('refuses to run without public keys, naming the flags', async () => {
    const result = await runCli(['validate-logs', '--s3-bucket', BUCKET, ...RANGE]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--public-key FILE (repeatable) or --endpoint URL');
  });

  it('stops quietly with exit code 141 when the reader of its output goes away (| head -1)', async () => {
    // Enough files that --verbose keeps writing well after the first line has been read.
    const dir = join(work, 'piped');
    await writeAll(
      dirSink(dir),
      buildChain({ bucket: BUCKET, startMs: START, periods: 4, logsPerPeriod: 50 }).objects,
    );

    const result = await runCliIntoHead([
      'validate-logs',
      '--s3-bucket',
      BUCKET,
      '--local-dir',
      dir,
      '--public-key',
      join(work, 'key.pem'),
      '--verbose',
      ...RANGE,
    ]);

    expect(result.head).toMatch(/^Validating log files for trail all trails between /);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(141);
  });
});
