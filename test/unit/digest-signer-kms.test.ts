import '../fixtures/quiet-powertools';
import {
  constants,
  createHash,
  generateKeyPairSync,
  privateEncrypt,
  sign as rsaSign,
  verify,
} from 'node:crypto';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { KmsDigestSigner, kmsPublicKeySources } from '../../lambda/adapters/kms-signer';
import { kmsSigningKeys } from '../../lambda/handlers/digest-signer';
import { fingerprintOfPublicKey } from '../../lambda/core/digest-format';
import { createListPublicKeys } from '../../lambda/core/public-keys';

const kms = mockClient(KMSClient);
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const spki = publicKey.export({ type: 'spki', format: 'der' });
const pkcs1 = publicKey.export({ type: 'pkcs1', format: 'der' });
const KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

beforeEach(() => {
  kms.reset();
  kms.on(GetPublicKeyCommand).resolves({ KeyId: KEY, PublicKey: spki, KeySpec: 'RSA_2048' });
  kms.on(SignCommand).callsFake((input: { Message: Uint8Array }) => {
    // What KMS does for MessageType DIGEST: PKCS#1 v1.5 over the given SHA-256, no hashing.
    const digestInfo = Buffer.concat([
      Buffer.from('3031300d060960864801650304020105000420', 'hex'),
      Buffer.from(input.Message),
    ]);
    return {
      KeyId: KEY,
      Signature: privateEncrypt(
        { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
        digestInfo,
      ),
    };
  });
});

describe('KmsDigestSigner', () => {
  it('signs the SHA-256 of the message as a DIGEST with RSASSA_PKCS1_V1_5_SHA_256', async () => {
    const signer = new KmsDigestSigner(new KMSClient({ region: 'us-east-1' }), KEY);
    const message = Buffer.from('2026-01-01T01:00:00Z\nbucket/key\nabc\nnull', 'utf8');

    const signature = await signer.sign(message);

    const calls = kms.commandCalls(SignCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input).toEqual({
      KeyId: KEY,
      Message: createHash('sha256').update(message).digest(),
      MessageType: 'DIGEST',
      SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256',
    });
    expect(verify('sha256', message, publicKey, signature)).toBe(true);
    expect(signature.equals(rsaSign('sha256', message, privateKey))).toBe(true);
  });

  it('reads the SPKI public key once, and its fingerprint is the MD5 of the PKCS#1 form', async () => {
    const signer = new KmsDigestSigner(new KMSClient({ region: 'us-east-1' }), KEY);
    const first = await signer.publicKeySpki();
    await signer.publicKeySpki();
    expect(kms.commandCalls(GetPublicKeyCommand)).toHaveLength(1);
    expect(first.equals(spki)).toBe(true);
    expect(fingerprintOfPublicKey(first)).toBe(createHash('md5').update(pkcs1).digest('hex'));
    expect(fingerprintOfPublicKey(first)).not.toBe(createHash('md5').update(spki).digest('hex'));
  });

  it('refuses a key that is not RSA_2048', async () => {
    kms.on(GetPublicKeyCommand).resolves({ KeyId: KEY, PublicKey: spki, KeySpec: 'ECC_NIST_P256' });
    const signer = new KmsDigestSigner(new KMSClient({ region: 'us-east-1' }), KEY);
    await expect(signer.publicKeySpki()).rejects.toThrow(/RSA_2048/);
  });

  it('ListPublicKeys over KMS serves the PKCS#1 DER in base64', async () => {
    const list = createListPublicKeys(
      kmsPublicKeySources(new KMSClient({ region: 'us-east-1' }), [{ keyId: KEY, validFromMs: 0 }]),
      () => Date.UTC(2026, 0, 1),
    );
    const response = await list({});
    expect(response.PublicKeyList).toEqual([
      {
        Value: pkcs1.toString('base64'),
        ValidityStartTime: 0,
        ValidityEndTime: 253_402_300_799,
        Fingerprint: createHash('md5').update(pkcs1).digest('hex'),
      },
    ]);
  });
});

describe('kmsSigningKeys (the deployed signer’s key list)', () => {
  const OLD = 'arn:aws:kms:us-east-1:123456789012:key/0000aaaa-0000-0000-0000-000000000000';
  const configs = [
    { keyId: OLD, validFrom: '2026-01-01T00:00:00Z', validUntil: '2026-06-01T00:00:00Z' },
    { keyId: KEY, validFrom: '2026-06-01T00:00:00Z' },
  ];

  it('gives the current key’s window start and each previous key as a KMS signer with its window', async () => {
    const keys = kmsSigningKeys(new KMSClient({ region: 'us-east-1' }), KEY, configs);

    expect(keys.signerValidFromMs).toBe(Date.UTC(2026, 5, 1));
    expect(
      keys.previousKeys.map((k) => [
        (k.signer as KmsDigestSigner).keyId,
        k.validFromMs,
        k.validUntilMs,
      ]),
    ).toEqual([[OLD, Date.UTC(2026, 0, 1), Date.UTC(2026, 5, 1)]]);
    await keys.previousKeys[0]!.signer.sign(Buffer.from('m'));
    expect(kms.commandCalls(SignCommand)[0]!.args[0].input.KeyId).toBe(OLD);
  });

  it('refuses a list whose current key is not the key the signer signs with', () => {
    expect(() => kmsSigningKeys(new KMSClient({ region: 'us-east-1' }), OLD, configs)).toThrow(
      `the current digest key of OPENTRAIL_DIGEST_PUBLIC_KEYS is ${KEY}, not OPENTRAIL_DIGEST_KEY_ID ${OLD}`,
    );
  });
});
