import { createHash } from 'node:crypto';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { ENV, type DigestKeyConfig } from '../core/config';
import type { PreviousSigningKey } from '../core/digest-signing';
import type { DigestSigner } from '../core/ports';
import { createListPublicKeys, keyWindows, type PublicKeySource } from '../core/public-keys';

/** The KMS signing algorithm of digests (FORMATS.md §4). */
export const KMS_SIGNING_ALGORITHM = 'RSASSA_PKCS1_V1_5_SHA_256';

/**
 * DigestSigner over a KMS asymmetric key (RSA_2048, SIGN_VERIFY). The message is hashed here
 * and sent as `MessageType: DIGEST`, so the string to sign never leaves the function and its
 * size never matters; the public key is fetched once (GetPublicKey returns SPKI DER).
 */
export class KmsDigestSigner implements DigestSigner {
  private publicKey: Promise<Buffer> | undefined;

  constructor(
    private readonly client: KMSClient,
    readonly keyId: string,
  ) {}

  async sign(message: Buffer): Promise<Buffer> {
    const response = await this.client.send(
      new SignCommand({
        KeyId: this.keyId,
        Message: createHash('sha256').update(message).digest(),
        MessageType: 'DIGEST',
        SigningAlgorithm: KMS_SIGNING_ALGORITHM,
      }),
    );
    if (!response.Signature) throw new Error(`KMS Sign with ${this.keyId} returned no signature`);
    return Buffer.from(response.Signature);
  }

  publicKeySpki(): Promise<Buffer> {
    this.publicKey ??= this.client
      .send(new GetPublicKeyCommand({ KeyId: this.keyId }))
      .then((response) => {
        if (!response.PublicKey)
          throw new Error(`KMS GetPublicKey of ${this.keyId} returned no key`);
        if (response.KeySpec !== undefined && response.KeySpec !== 'RSA_2048') {
          throw new Error(`digest key ${this.keyId} is ${response.KeySpec}; digests need RSA_2048`);
        }
        return Buffer.from(response.PublicKey);
      });
    this.publicKey.catch(() => (this.publicKey = undefined));
    return this.publicKey;
  }
}

/** The configured digest keys as ListPublicKeys sources, each read once from KMS. */
export function kmsPublicKeySources(
  client: KMSClient,
  keys: readonly { keyId: string; validFromMs: number; validUntilMs?: number }[],
): PublicKeySource[] {
  return keys.map((k) => {
    const signer = new KmsDigestSigner(client, k.keyId);
    return { ...k, publicKeySpki: () => signer.publicKeySpki() };
  });
}

/**
 * ListPublicKeys for the deployed query function: the keys of OPENTRAIL_DIGEST_PUBLIC_KEYS
 * (JSON DigestKeyConfig[]), or undefined when log-file validation is not deployed.
 */
export function listPublicKeysFromEnvironment():
  ((request: Record<string, unknown>) => Promise<unknown>) | undefined {
  const raw = process.env[ENV.DIGEST_PUBLIC_KEYS];
  if (!raw) return undefined;
  const client = new KMSClient({ region: process.env.AWS_REGION });
  return createListPublicKeys(
    kmsPublicKeySources(client, keyWindows(JSON.parse(raw) as DigestKeyConfig[])),
    Date.now,
  );
}

/**
 * The signer's keys from configuration (JSON DigestKeyConfig[], as ListPublicKeys serves
 * them): the current key's window start and every previous key with its window, each a KMS
 * signer. Throws naming the key when the current key of the list is not `currentKeyId`.
 */
export function kmsSigningKeys(
  client: KMSClient,
  currentKeyId: string,
  configs: readonly DigestKeyConfig[],
): { signerValidFromMs?: number; previousKeys: PreviousSigningKey[] } {
  const windows = keyWindows(configs);
  const current = windows.find((k) => k.validUntilMs === undefined);
  if (current && current.keyId !== currentKeyId) {
    throw new Error(
      `the current digest key of ${ENV.DIGEST_PUBLIC_KEYS} is ${current.keyId}, not ${ENV.DIGEST_KEY_ID} ${currentKeyId}`,
    );
  }
  return {
    ...(current ? { signerValidFromMs: current.validFromMs } : {}),
    previousKeys: windows.flatMap((k) =>
      k.validUntilMs === undefined
        ? []
        : [
            {
              signer: new KmsDigestSigner(client, k.keyId),
              validFromMs: k.validFromMs,
              validUntilMs: k.validUntilMs,
            },
          ],
    ),
  };
}
