import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  type KeyObject,
} from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DigestSigner } from '../core/ports';

/** File name of the embedded runtime's signing key under `<data-dir>/keys/`. */
export const LOCAL_KEY_FILE = 'digest-signing-key.pem';

/**
 * DigestSigner over an RSA-2048 key in a PEM file (PKCS#8, mode 0600), for the embedded
 * runtime: the same RSASSA-PKCS1-v1_5/SHA-256 signatures KMS makes. The key is generated on
 * first start and kept, so digests written before a restart still validate.
 */
export class LocalRsaSigner implements DigestSigner {
  private constructor(
    readonly keyId: string,
    private readonly privateKey: KeyObject,
    /** When the key was made: the start of its validity window (epoch ms). */
    readonly createdMs: number,
  ) {}

  /** Opens `<dir>/digest-signing-key.pem`, creating the key (and dir) when absent. */
  static async open(dir: string): Promise<LocalRsaSigner> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, LOCAL_KEY_FILE);
    let pem = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (pem === undefined) {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const fresh = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      // 'wx': never replace a key another process wrote first (its digests name it).
      await writeFile(file, fresh, { mode: 0o600, flag: 'wx' }).catch(
        (error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') throw error;
        },
      );
      pem = await readFile(file, 'utf8');
    }
    const created = (await stat(file)).mtimeMs;
    return new LocalRsaSigner(
      `local:${LOCAL_KEY_FILE}`,
      createPrivateKey(pem),
      Math.floor(created),
    );
  }

  sign(message: Buffer): Promise<Buffer> {
    return Promise.resolve(sign('sha256', message, this.privateKey));
  }

  publicKeySpki(): Promise<Buffer> {
    return Promise.resolve(
      createPublicKey(this.privateKey).export({ type: 'spki', format: 'der' }),
    );
  }
}
