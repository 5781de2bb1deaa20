import { createHmac, timingSafeEqual } from 'node:crypto';
import { GenerateMacCommand, VerifyMacCommand, type KMSClient } from '@aws-sdk/client-kms';
import type { MacPort } from '../core/ports';

/** MacPort over a KMS HMAC key (HMAC_256, GENERATE_VERIFY_MAC): the key never leaves KMS. */
export class KmsMac implements MacPort {
  constructor(
    private readonly client: KMSClient,
    private readonly keyId: string,
  ) {}

  async generate(message: Uint8Array): Promise<Uint8Array> {
    const response = await this.client.send(
      new GenerateMacCommand({ KeyId: this.keyId, MacAlgorithm: 'HMAC_SHA_256', Message: message }),
    );
    if (!response.Mac) throw new Error('KMS GenerateMac returned no Mac');
    return response.Mac;
  }

  async verify(message: Uint8Array, mac: Uint8Array): Promise<boolean> {
    if (mac.length === 0) return false;
    try {
      const response = await this.client.send(
        new VerifyMacCommand({
          KeyId: this.keyId,
          MacAlgorithm: 'HMAC_SHA_256',
          Message: message,
          Mac: mac,
        }),
      );
      return response.MacValid === true;
    } catch (error) {
      // KMS answers a MAC that does not verify with KMSInvalidMacException.
      if ((error as Error).name === 'KMSInvalidMacException') return false;
      throw error;
    }
  }
}

/** MacPort over an HMAC-SHA-256 key held in memory (the embedded runtime's key file). */
export class HmacMac implements MacPort {
  constructor(private readonly key: Uint8Array) {
    if (key.length < 32) throw new Error('an HMAC key needs at least 32 bytes');
  }

  generate(message: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(createHmac('sha256', this.key).update(message).digest());
  }

  verify(message: Uint8Array, mac: Uint8Array): Promise<boolean> {
    const expected = createHmac('sha256', this.key).update(message).digest();
    return Promise.resolve(mac.length === expected.length && timingSafeEqual(expected, mac));
  }
}
