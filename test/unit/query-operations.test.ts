import { generateKeyPairSync } from 'node:crypto';
import { GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { ENV } from '../../lambda/core/config';
import { fingerprintOfPublicKey } from '../../lambda/core/digest-format';
import {
  listPublicKeysFromEnvironment,
  lookupEventsFromEnvironment,
} from '../../lambda/handlers/query-operations';

const kms = mockClient(KMSClient);
const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const spki = publicKey.export({ type: 'spki', format: 'der' });
const pkcs1 = publicKey.export({ type: 'pkcs1', format: 'der' });
const KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const VARIABLES = [
  ENV.DIGEST_PUBLIC_KEYS,
  ENV.HISTORY_TABLE,
  ENV.HISTORY_TOKEN_KEY_ID,
  'AWS_REGION',
];

let saved: Record<string, string | undefined>;
beforeEach(() => {
  saved = Object.fromEntries(VARIABLES.map((name) => [name, process.env[name]]));
  for (const name of VARIABLES) delete process.env[name];
  kms.reset();
  kms.on(GetPublicKeyCommand).resolves({ KeyId: KEY, PublicKey: spki, KeySpec: 'RSA_2048' });
});
afterEach(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('the query operations, composed from the Lambda environment', () => {
  it('leaves both operations out when their configuration is absent', () => {
    expect(listPublicKeysFromEnvironment()).toBeUndefined();
    expect(lookupEventsFromEnvironment()).toBeUndefined();
  });

  it('needs both the history table and the token key for LookupEvents', async () => {
    process.env.AWS_REGION = 'us-east-1'; // Lambda always sets it
    process.env[ENV.HISTORY_TABLE] = 'history';
    expect(lookupEventsFromEnvironment()).toBeUndefined();

    process.env[ENV.HISTORY_TOKEN_KEY_ID] = KEY;
    const lookupEvents = lookupEventsFromEnvironment();
    // Bound to core's LookupEvents: a bad request is refused before any store is read.
    await expect(lookupEvents!({ MaxResults: 0 })).rejects.toMatchObject({
      code: 'InvalidMaxResultsException',
    });
  });

  it('serves ListPublicKeys from the keys in OPENTRAIL_DIGEST_PUBLIC_KEYS, read from KMS', async () => {
    process.env[ENV.DIGEST_PUBLIC_KEYS] = JSON.stringify([
      { keyId: KEY, validFrom: '2026-01-01T00:00:00Z' },
    ]);

    const listPublicKeys = listPublicKeysFromEnvironment()!;
    const response = (await listPublicKeys({ StartTime: 1767225600 })) as {
      PublicKeyList: { Value: string; ValidityStartTime: number; Fingerprint: string }[];
    };

    expect(response.PublicKeyList).toEqual([
      expect.objectContaining({
        Value: pkcs1.toString('base64'),
        ValidityStartTime: 1767225600,
        Fingerprint: fingerprintOfPublicKey(spki),
      }),
    ]);
    expect(kms.commandCalls(GetPublicKeyCommand).map((call) => call.args[0].input)).toEqual([
      { KeyId: KEY },
    ]);
  });
});
