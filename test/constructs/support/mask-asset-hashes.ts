/**
 * Snapshot serializer: masks what changes when only code (not infrastructure) changes, so a
 * snapshot diff always means an infrastructure diff. Masks every 64-hex string (asset hashes
 * in S3 keys, asset ids) and the bootstrap asset bucket names.
 */
const HEX64 = /[0-9a-f]{64}/g;
const ASSET_BUCKET = /cdk-[a-z0-9]+-assets-[^"\s]*/g;

function mask(value: string): string {
  return value.replace(HEX64, '[ASSET-HASH]').replace(ASSET_BUCKET, '[ASSET-BUCKET]');
}

export const maskAssetHashes = {
  test(value: unknown): boolean {
    return typeof value === 'string' && mask(value) !== value;
  },
  serialize(value: string): string {
    return `"${mask(value)}"`;
  },
};
