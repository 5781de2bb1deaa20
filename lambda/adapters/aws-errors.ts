/** Classifications of AWS SDK v3 errors that the adapters turn into port results. */

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** S3: the object (or key) does not exist. */
export function isNotFound(error: unknown): boolean {
  return httpStatus(error) === 404 || (error as Error).name === 'NoSuchKey';
}

/** S3: a conditional write (`If-None-Match: *`) found the key taken. */
export function isPreconditionFailed(error: unknown): boolean {
  return httpStatus(error) === 412 || (error as Error).name === 'PreconditionFailed';
}

/** DynamoDB: a ConditionExpression did not hold. */
export function isConditionFailure(error: unknown): boolean {
  return (error as Error).name === 'ConditionalCheckFailedException';
}
