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
 * same.
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
    return { destination: this.bucket.bucketArn };
  }
}
