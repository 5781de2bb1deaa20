import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ObjectStore } from '../core/ports';
import { isNotFound, isPreconditionFailed } from './aws-errors';

/**
 * ObjectStore over S3. Conditional create uses `If-None-Match: *` (real S3, and the embedded
 * s3rver as vendored and changed in local/s3rver/).
 */
export class S3ObjectStore implements ObjectStore {
  constructor(private readonly client: S3Client) {}

  async putIfAbsent(object: {
    bucket: string;
    key: string;
    body: Uint8Array;
    contentType: string;
    contentEncoding?: string;
    metadata?: Readonly<Record<string, string>>;
  }): Promise<'created' | 'exists'> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: object.bucket,
          Key: object.key,
          Body: object.body,
          ContentType: object.contentType,
          ContentEncoding: object.contentEncoding,
          ...(object.metadata ? { Metadata: { ...object.metadata } } : {}),
          IfNoneMatch: '*',
        }),
      );
      return 'created';
    } catch (error) {
      if (isPreconditionFailed(error)) return 'exists';
      throw error;
    }
  }

  async get(bucket: string, key: string): Promise<Uint8Array | undefined> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return await response.Body!.transformToByteArray();
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}
