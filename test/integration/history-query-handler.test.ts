/**
 * The deployed `POST /` handler serving LookupEvents from its environment: the table on
 * dynalite (through AWS_ENDPOINT_URL_DYNAMODB), page tokens through KMS GenerateMac/VerifyMac
 * (mocked: an HMAC as KMS would compute it).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GenerateMacCommand,
  KMSClient,
  KMSInvalidMacException,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { createClients, destroyClients, EMULATOR_CREDENTIALS } from '../../lambda/adapters/clients';
import { documentClient } from '../../lambda/adapters/dynamodb';
import { DynamoHistoryStore } from '../../lambda/adapters/history';
import { ENV } from '../../lambda/core/config';
import { indexBatch, LOOKUP_EVENTS_TARGET } from '../../lambda/core/history';
// Operations are built from the environment on the first call, after beforeAll set it.
import { handler } from '../../lambda/handlers/query';
import type { Emulators } from '../../local/emulators';
import { startLimitedEmulators } from '../support/limited-dynalite';
import { ensureHistoryTable } from '../../local/components/history';
import '../fixtures/quiet-powertools';

const KEY_ARN = 'arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000001';
const SECRET = Buffer.alloc(32, 3);

function request(body: unknown): APIGatewayProxyEvent {
  return {
    headers: { 'X-Amz-Target': LOOKUP_EVENTS_TARGET, 'Content-Type': 'application/x-amz-json-1.1' },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEvent;
}

describe('the deployed query handler: LookupEvents with KMS page tokens', () => {
  const kms = mockClient(KMSClient);
  const saved = { ...process.env };
  let dir: string;
  let emulators: Emulators;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opentrail-query-'));
    emulators = await startLimitedEmulators({ dataDir: dir });
    const clients = createClients({
      region: 'us-east-1',
      dynamodbEndpoint: emulators.dynamodbEndpoint,
      credentials: EMULATOR_CREDENTIALS,
    });
    await ensureHistoryTable(clients.dynamodb, 'history');
    const now = Date.now();
    await indexBatch(
      Array.from({ length: 5 }, (_, n) => ({
        sequenceNumber: String(n),
        data: Buffer.from(
          JSON.stringify({
            eventID: `event-${n}`,
            eventTime: new Date(now - n * 60_000).toISOString().slice(0, 19) + 'Z',
            eventSource: 'iam.amazonaws.com',
            eventName: 'ListUsers',
            eventCategory: 'Management',
            userIdentity: { type: 'IAMUser', userName: 'alice' },
          }),
        ),
      })),
      new DynamoHistoryStore(documentClient(clients.dynamodb), 'history'),
    );
    destroyClients(clients);
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_DYNAMODB: emulators.dynamodbEndpoint,
      AWS_ACCESS_KEY_ID: EMULATOR_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMULATOR_CREDENTIALS.secretAccessKey,
      [ENV.HISTORY_TABLE]: 'history',
      [ENV.HISTORY_TOKEN_KEY_ID]: KEY_ARN,
    });
    const mac = (message: Uint8Array): Buffer =>
      createHmac('sha256', SECRET).update(message).digest();
    kms
      .on(GenerateMacCommand)
      .callsFake((input: { Message: Uint8Array }) => ({ Mac: mac(input.Message) }));
    kms.on(VerifyMacCommand).callsFake((input: { Message: Uint8Array; Mac: Uint8Array }) => {
      const expected = mac(input.Message);
      if (expected.length !== input.Mac.length || !timingSafeEqual(expected, input.Mac))
        throw new KMSInvalidMacException({ message: 'invalid', $metadata: {} });
      return { MacValid: true };
    });
  });

  afterAll(async () => {
    process.env = saved;
    kms.restore();
    await emulators.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('pages with a KMS-authenticated token and refuses a tampered one', async () => {
    const first = await handler(request({ MaxResults: 2 }));
    expect(first.statusCode).toBe(200);
    const page = JSON.parse(first.body) as { Events: { EventId: string }[]; NextToken: string };
    expect(page.Events.map((e) => e.EventId)).toEqual(['event-0', 'event-1']);
    expect(kms.commandCalls(GenerateMacCommand)[0]!.args[0].input).toMatchObject({
      KeyId: KEY_ARN,
      MacAlgorithm: 'HMAC_SHA_256',
    });

    const second = await handler(request({ MaxResults: 2, NextToken: page.NextToken }));
    expect(
      (JSON.parse(second.body) as { Events: { EventId: string }[] }).Events.map((e) => e.EventId),
    ).toEqual(['event-2', 'event-3']);

    const [body, tag] = page.NextToken.split('.') as [string, string];
    const tampered = `${body}.${tag.startsWith('A') ? 'B' : 'A'}${tag.slice(1)}`;
    const refused = await handler(request({ MaxResults: 2, NextToken: tampered }));
    expect(refused.statusCode).toBe(400);
    expect(JSON.parse(refused.body)).toMatchObject({ __type: 'InvalidNextTokenException' });
  });

  it('refuses a token whose MAC is not 32 bytes without asking KMS', async () => {
    const first = JSON.parse((await handler(request({ MaxResults: 2 }))).body) as {
      NextToken: string;
    };
    const [body] = first.NextToken.split('.') as [string];
    const verifies = kms.commandCalls(VerifyMacCommand).length;
    for (const tag of ['AAAA', 'A'.repeat(4000)]) {
      const refused = await handler(request({ MaxResults: 2, NextToken: `${body}.${tag}` }));
      expect(refused.statusCode).toBe(400);
      expect(JSON.parse(refused.body)).toEqual({
        __type: 'InvalidNextTokenException',
        message: 'NextToken: is not a token this API issued',
      });
    }
    expect(kms.commandCalls(VerifyMacCommand)).toHaveLength(verifies);
  });
});
