import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { DigestObjectStore } from '../core/ports';
import { S3ObjectStore } from './s3';
import { isNotFound } from './aws-errors';

/**
 * The log bucket as the digest signer sees it: conditional create with user metadata (the
 * signature), reads with metadata, and listings (to rebuild a chain head from S3).
 */
export class S3DigestStore extends S3ObjectStore implements DigestObjectStore {
  constructor(private readonly s3: S3Client) {
    super(s3);
  }

  async getWithMetadata(
    bucket: string,
    key: string,
  ): Promise<{ body: Uint8Array; metadata: Record<string, string> } | undefined> {
    try {
      const response = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return {
        body: await response.Body!.transformToByteArray(),
        metadata: { ...response.Metadata },
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async listKeys(bucket: string, prefix: string, startAfter?: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          ContinuationToken: token,
          ...(token === undefined && startAfter !== undefined ? { StartAfter: startAfter } : {}),
        }),
      );
      keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    // s3rver's order is patched to byte order; sort anyway so callers can rely on it.
    return keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
