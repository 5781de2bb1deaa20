/**
 * SNS delivery notices (docs/formats.md#sns): the message CloudTrail publishes after each log-file
 * write. Pure.
 */

/** The notice body: the JSON string `{"s3Bucket":"…","s3ObjectKey":["…"]}`. */
export function deliveryNoticeMessage(bucket: string, key: string): string {
  return JSON.stringify({ s3Bucket: bucket, s3ObjectKey: [key] });
}
