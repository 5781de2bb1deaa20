/**
 * GetTrailStatus and DescribeTrails (lambda/core/trail-status.ts) through the query handler,
 * over the chain-state and manifest tables in dynalite and the digests in s3rver; then
 * validate-logs fed by them through --endpoint (no --expect, no key file): what it learns finds
 * deleted newest digests, and ListPublicKeys windows refuse a digest signed outside them.
 */
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudTrailClient, GetTrailStatusCommand } from '@aws-sdk/client-cloudtrail';
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import {
  createClients,
  destroyClients,
  EMULATOR_CREDENTIALS,
  type Clients,
} from '../../lambda/adapters/clients';
import { DynamoDeliveryLog } from '../../lambda/adapters/dynamodb-deliveries';
import { DynamoDigestChainStore } from '../../lambda/adapters/dynamodb-digests';
import { documentClient } from '../../lambda/adapters/dynamodb';
import { fingerprintOfPublicKey } from '../../lambda/core/digest-format';
import { sha256Hex } from '../../lambda/core/logfile';
import { createListPublicKeys, LIST_PUBLIC_KEYS_TARGET } from '../../lambda/core/public-keys';
import { manifestTableDefinition } from '../../local/runtime';
import {
  createDescribeTrails,
  createGetTrailStatus,
  DESCRIBE_TRAILS_TARGET,
  GET_TRAIL_STATUS_TARGET,
} from '../../lambda/core/trail-status';
import { createQueryHandler, type Operation } from '../../lambda/handlers/query';
import { ensureChainTable, DIGEST_CHAIN_TABLE } from '../../local/components/digest';
import { ensureBucket, startEmulators, type Emulators } from '../../local/emulators';
import { runValidateLogs } from '../../cli/shared/validate-run';
import { resolveValidateSettings } from '../../cli/shared/validate-settings';
import {
  buildChain,
  CHAIN_KEY,
  s3Sink,
  writeAll,
  type BuiltChain,
} from '../fixtures/validate-chain';
import { credentialsInEnv } from '../support/emulator-clients';

const HOUR = 3_600_000;
const CHAIN_START = Date.UTC(2024, 2, 5, 0, 0, 0);
const MANIFEST = 'trail-status-manifest';
const ACCOUNT = '111111111111';
const STREAM = `opentrail#${ACCOUNT}#us-east-1`;
const LAST_DELIVERY = '2024-03-05T05:40:00.000Z';

let work: string;
let emulators: Emulators;
/** The S3 emulator's key in AWS_* env vars: the standard chain of --s3-endpoint runs. */
let restoreEnv: () => void = () => undefined;
let clients: Clients;
let server: Server;
let endpoint: string;
/** The signing key's window as ListPublicKeys serves it; a test may narrow it. */
let keyWindow: { validFromMs: number; validUntilMs?: number };
let buckets = 0;

async function createManifestTable(): Promise<void> {
  await clients.dynamodb.send(new CreateTableCommand(manifestTableDefinition(MANIFEST)));
  for (let i = 0; i < 200; i++) {
    const table = await clients.dynamodb.send(new DescribeTableCommand({ TableName: MANIFEST }));
    if (table.Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'opentrail-trail-status-'));
  emulators = await startEmulators({ dataDir: join(work, 'emulators') });
  restoreEnv = credentialsInEnv(emulators.credentials);
  clients = createClients({
    region: 'us-east-1',
    s3Endpoint: emulators.s3Endpoint,
    dynamodbEndpoint: emulators.dynamodbEndpoint,
    credentials: emulators.credentials,
  });
  await ensureChainTable(clients.dynamodb);
  await createManifestTable();
  const documents = documentClient(clients.dynamodb);
  const chain = new DynamoDigestChainStore(documents, DIGEST_CHAIN_TABLE);
  // The packager registered the stream 10 minutes into the chain's first hour; a delivered
  // manifest row; the head at the sixth digest (what the signer recorded).
  await chain.register({
    trail: 'opentrail',
    account: ACCOUNT,
    region: 'us-east-1',
    firstSeenMs: CHAIN_START + 600_000,
  });
  await documents.send(
    new PutCommand({
      TableName: MANIFEST,
      Item: {
        pk: 'b/k',
        stream: STREAM,
        deliveredAt: LAST_DELIVERY,
        state: 'delivered',
      },
    }),
  );
  const head = buildChain({ bucket: 'status-1', startMs: CHAIN_START, periods: 6 }).digests[5]!;
  await chain.moveHead(
    STREAM,
    {
      endMs: CHAIN_START + 6 * HOUR,
      bucket: 'status-1',
      key: head.key,
      sha256: sha256Hex(Buffer.from('x')),
      signature: head.signature,
    },
    undefined,
  );
  const spki = createPublicKey(CHAIN_KEY).export({ type: 'spki', format: 'der' });
  keyWindow = { validFromMs: CHAIN_START };
  const deps = {
    trails: [{ name: 'opentrail', logFileValidation: true }],
    bucket: 'status-1',
    homeRegion: 'us-east-1',
    chain,
    deliveries: new DynamoDeliveryLog(documents, MANIFEST),
    periodMs: HOUR,
    graceMs: HOUR,
  };
  const handler = createQueryHandler(
    new Map<string, Operation>([
      [GET_TRAIL_STATUS_TARGET, createGetTrailStatus(deps)],
      [DESCRIBE_TRAILS_TARGET, createDescribeTrails(deps)],
      [
        LIST_PUBLIC_KEYS_TARGET,
        (request: Record<string, unknown>) =>
          createListPublicKeys(
            [{ keyId: 'fixture', ...keyWindow, publicKeySpki: () => Promise.resolve(spki) }],
            Date.now,
          )(request),
      ],
    ]),
  );
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      void handler({
        headers: request.headers as Record<string, string>,
        body,
        isBase64Encoded: false,
      } as unknown as APIGatewayProxyEvent).then((result) => {
        response.writeHead(result.statusCode, result.headers as Record<string, string>);
        response.end(result.body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  restoreEnv();
  destroyClients(clients);
  await new Promise((resolve) => server.close(resolve));
  await emulators.close();
  rmSync(work, { recursive: true, force: true });
});

function sdk(): CloudTrailClient {
  return new CloudTrailClient({
    region: 'us-east-1',
    endpoint,
    credentials: EMULATOR_CREDENTIALS,
  });
}

describe('GetTrailStatus', () => {
  it("answers the SDK's GetTrailStatusCommand with the latest delivery and digest times", async () => {
    const client = sdk();
    try {
      const status = await client.send(new GetTrailStatusCommand({ Name: 'opentrail' }));

      expect(status).toMatchObject({
        IsLogging: true,
        LatestDeliveryTime: new Date(LAST_DELIVERY.replace('.000', '').replace(/Z$/, '.000Z')),
        LatestDigestDeliveryTime: new Date(CHAIN_START + 6 * HOUR),
        StartLoggingTime: new Date(CHAIN_START + 600_000),
        TimeLoggingStarted: new Date(CHAIN_START + 600_000).toISOString(),
      });
    } finally {
      client.destroy();
    }
  });

  it('names each chain with its first period and head, accepting a trail ARN', async () => {
    const response = await fetch(`${endpoint}/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': GET_TRAIL_STATUS_TARGET,
      },
      body: JSON.stringify({ Name: `arn:aws:cloudtrail:us-east-1:${ACCOUNT}:trail/opentrail` }),
    });

    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      OpentrailDigestPeriodSeconds: 3600,
      OpentrailDigestGraceSeconds: 3600,
      OpentrailDigestChains: [
        {
          AccountId: ACCOUNT,
          Region: 'us-east-1',
          HomeRegion: 'us-east-1',
          FirstDigestStartTime: CHAIN_START / 1000,
          LatestDigestEndTime: (CHAIN_START + 6 * HOUR) / 1000,
        },
      ],
    });
  });

  it.each<[string, unknown, string]>([
    ['an unknown trail', { Name: 'nope' }, 'TrailNotFoundException'],
    ['no Name', {}, 'InvalidTrailNameException'],
  ])('answers 400 for %s, naming the field', async (_name, body, type) => {
    const response = await fetch(`${endpoint}/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': GET_TRAIL_STATUS_TARGET,
      },
      body: JSON.stringify(body),
    });

    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      __type: type,
      message: expect.stringMatching(/^Name: /),
    });
  });
});

describe('validate-logs fed by GetTrailStatus and ListPublicKeys', () => {
  async function validate(
    tamper: (chain: BuiltChain, bucket: string) => Promise<void>,
  ): Promise<{ code: number; lines: string[]; chain: BuiltChain; bucket: string }> {
    // Every test uses the bucket the trail status names (DescribeTrails: status-1).
    const bucket = 'status-1';
    if (buckets++ === 0) await ensureBucket(clients.s3, bucket);
    const chain = buildChain({ bucket, startMs: CHAIN_START, periods: 6 });
    const sink = s3Sink(clients.s3, bucket);
    await writeAll(sink, chain.objects);
    await tamper(chain, bucket);
    const settings = resolveValidateSettings(
      {
        startTime: '2024-03-05T00:00:00Z',
        endTime: '2024-03-05T06:00:00Z',
        s3Bucket: bucket,
        s3Endpoint: emulators.s3Endpoint,
        endpoint,
      },
      {},
      Date.now(),
    );
    if (typeof settings === 'string') throw new Error(settings);
    let stderr = '';
    const code = await runValidateLogs(
      settings,
      { verbose: false, output: 'text', concurrency: 8, sign: 'never', nowMs: Date.now() },
      { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) } },
    );
    return {
      code,
      lines: stderr.split('\n').filter((line) => line.includes('\tINVALID: ')),
      chain,
      bucket,
    };
  }

  afterEach(() => {
    keyWindow = { validFromMs: CHAIN_START };
  });

  it('finds the deleted newest digests (and their log files) from the head, and exits 1', async () => {
    const removed: string[] = [];
    const result = await validate(async (chain, bucket) => {
      for (const d of chain.digests.slice(4)) {
        for (const key of [d.key, ...d.logKeys]) {
          await s3Sink(clients.s3, bucket).remove(key);
          removed.push(key);
        }
      }
    });

    expect(result.code).toBe(1);
    expect(result.lines).toEqual(
      [5, 4].map(
        (i) =>
          `Digest file\ts3://${result.bucket}/${result.chain.digests[i]!.key}\tINVALID: not found`,
      ),
    );
    // Put back for the next test.
    await writeAll(
      s3Sink(clients.s3, result.bucket),
      result.chain.objects.filter((o) => removed.includes(o.key)),
    );
  });

  it("refuses the digests that end after their key's validity window", async () => {
    keyWindow = { validFromMs: CHAIN_START, validUntilMs: CHAIN_START + 4 * HOUR };
    const fingerprint = fingerprintOfPublicKey(
      createPublicKey(CHAIN_KEY).export({ type: 'pkcs1', format: 'der' }),
    );

    const result = await validate(() => Promise.resolve());

    expect(result.code).toBe(1);
    expect(result.lines).toEqual(
      [5, 4].map(
        (i) =>
          `Digest file\ts3://${result.bucket}/${result.chain.digests[i]!.key}\tINVALID: digestEndTime ${result.chain.digests[i]!.digest.digestEndTime} lies outside the validity of public key ${fingerprint} (2024-03-05T00:00:00Z to 2024-03-05T04:00:00Z)`,
      ),
    );
  });

  it('exits 0 on the untouched chain with the whole window', async () => {
    const result = await validate(() => Promise.resolve());

    expect(result).toMatchObject({ code: 0, lines: [] });
  });
});
