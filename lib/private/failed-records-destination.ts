import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';

/**
 * An S3 on-failure destination for a stream event-source mapping, with narrower grants than
 * `aws-lambda-event-sources.S3OnFailureDestination`: that one calls `bucket.grantReadWrite`,
 * which would let the function delete (including `s3:DeleteObjectVersion`) the very records
 * kept for redrive. Lambda needs only `s3:PutObject` and `s3:ListBucket` (plus the bucket key,
 * which `grantPut` covers) to write a failed batch, so that is all this grants.
 * The configuration it renders (`DestinationConfig.OnFailure.Destination` = bucket ARN) is the
 * same. The bucket's policy (a bucket created in this app) denies `s3:PutObject` to every
 * principal but the consumer's role, so nothing else can plant a batch for redrive.
 */
export class FailedRecordsDestination implements lambda.IEventSourceDlq {
  constructor(private readonly bucket: s3.IBucket) {}

  public bind(
    _target: lambda.IEventSourceMapping,
    targetHandler: lambda.IFunction,
  ): lambda.DlqDestinationConfig {
    this.bucket.grantPut(targetHandler);
    iam.Grant.addToPrincipal({
      grantee: targetHandler,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
    });
    // Only this consumer's role writes here: what redrive replays must be what Lambda gave up.
    const role = targetHandler.role;
    if (role) {
      this.bucket.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'OnlyTheConsumerWrites',
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: ['s3:PutObject'],
          resources: [this.bucket.arnForObjects('*')],
          conditions: { ArnNotEquals: { 'aws:PrincipalArn': role.roleArn } },
        }),
      );
    }
    return { destination: this.bucket.bucketArn };
  }
}

/** Id of the S3 request-metrics filter on a failed-records bucket (for PutRequests). */
export const FAILED_RECORDS_METRICS_ID = 'FailedRecords';

/**
 * Objects written to a failed-records bucket (S3 request metric `PutRequests`, sum, 5 minutes):
 * each is a batch an event-source mapping gave up; `opentrail redrive` puts it back. The bucket
 * needs the request-metrics filter {@link FAILED_RECORDS_METRICS_ID}.
 */
export function failedBatchesMetric(
  bucket: s3.IBucket,
  props?: cloudwatch.MetricOptions,
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: 'AWS/S3',
    metricName: 'PutRequests',
    dimensionsMap: { BucketName: bucket.bucketName, FilterId: FAILED_RECORDS_METRICS_ID },
    statistic: 'Sum',
    period: Duration.minutes(5),
    ...props,
  });
}
