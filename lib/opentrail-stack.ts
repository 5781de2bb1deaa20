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
      description: 'Batches the packager gave up; opentrail redrive replays them into the packager',
      value: trail.packager.failedRecordsBucket.bucketName,
    });
    // Every consumer's failed-records bucket: `opentrail redrive --outputs FILE` reads each one.
    new CfnOutput(this, 'IndexerFailedRecordsBucketName', {
      description: 'Batches the indexer gave up; opentrail redrive replays them into the indexer',
      value: trail.history.failedRecordsBucket.bucketName,
    });
    new CfnOutput(this, 'PublisherFailedRecordsBucketName', {
      description:
        'Batches the publisher gave up; opentrail redrive replays them into the publisher',
      value: trail.fanout.failedRecordsBucket.bucketName,
    });
    new CfnOutput(this, 'ManifestTableName', { value: trail.packager.manifestTable.tableName });
    new CfnOutput(this, 'DedupTableName', { value: trail.packager.dedupTable.tableName });
    new CfnOutput(this, 'EventBusName', {
      description: 'opentrail.* events ("AWS API Call via CloudTrail", …) are published here',
      value: trail.fanout.eventBus.eventBusName,
    });
    new CfnOutput(this, 'HistoryTableName', { value: trail.history.table.tableName });
    if (trail.monitoring) {
      new CfnOutput(this, 'AlarmTopicArn', {
        description:
          'Every alarm notifies this SNS topic: subscribe to it (docs/operations.md#runbook)',
        value: trail.monitoring.alarmTopic.topicArn,
      });
      new CfnOutput(this, 'DashboardName', { value: trail.monitoring.dashboard.dashboardName });
    }
    if (trail.digests) {
      new CfnOutput(this, 'DigestSigningKeyArn', {
        description: 'KMS key that signs the digest files (its public key: ListPublicKeys)',
        value: trail.digests.signingKey.keyArn,
      });
    }
  }
}
