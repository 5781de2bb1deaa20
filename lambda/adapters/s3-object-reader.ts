import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { ObjectReader, OpenedObject } from '../core/ports';
import { isNotFound } from './aws-errors';

/**
 * ObjectReader over S3 (path-style against an emulator, see clients.ts): paginated listings,
 * and objects opened as streams (the body is consumed as it arrives, never buffered whole).
 */
export class S3ObjectReader implements ObjectReader {
  constructor(private readonly s3: S3Client) {}

  async list(bucket: string, prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  async listFolders(bucket: string, prefix: string): Promise<string[]> {
    const folders: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          Delimiter: '/',
          ContinuationToken: token,
        }),
      );
      for (const common of page.CommonPrefixes ?? [])
        if (common.Prefix !== undefined) folders.push(common.Prefix);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return folders;
  }

  async open(bucket: string, key: string): Promise<OpenedObject | undefined> {
    try {
      const response = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const body = response.Body as AsyncIterable<Uint8Array> | undefined;
      return {
        body: body ?? (async function* () {})(),
        metadata: Object.fromEntries(
          Object.entries(response.Metadata ?? {}).map(([name, value]) => [
            name.toLowerCase(),
            value,
          ]),
        ),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}
