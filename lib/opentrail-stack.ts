import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { AuditTrail, type AuditTrailProps } from './audit-trail';

export interface OpentrailStackProps extends StackProps, AuditTrailProps {}

/**
 * The deployable opentrail stack: one {@link AuditTrail}, and outputs naming what the CLI and
 * producers need (the PutAuditEvents URL, the stream, the buckets, the manifest table).
 */
export class OpentrailStack extends Stack {
  public readonly auditTrail: AuditTrail;

  constructor(scope: Construct, id: string, props: OpentrailStackProps = {}) {
    super(scope, id, props);
    this.auditTrail = new AuditTrail(this, 'AuditTrail', props);

    const trail = this.auditTrail;
    new CfnOutput(this, 'PutAuditEventsUrl', {
      description: 'POST here, SigV4-signed (service execute-api)',
      value: trail.ingest.putAuditEventsUrl,
    });
    new CfnOutput(this, 'ApiUrl', {
      description: 'Base URL of the opentrail API',
      value: trail.ingest.api.url,
    });
    new CfnOutput(this, 'StreamName', { value: trail.stream.streamName });
    new CfnOutput(this, 'LogBucketName', { value: trail.archive.bucket.bucketName });
    new CfnOutput(this, 'FailedRecordsBucketName', {
      description: 'Batches the packager gave up; opentrail redrive re-injects them',
      value: trail.packager.failedRecordsBucket.bucketName,
    });
    new CfnOutput(this, 'ManifestTableName', { value: trail.packager.manifestTable.tableName });
    new CfnOutput(this, 'DedupTableName', { value: trail.packager.dedupTable.tableName });
  }
}
