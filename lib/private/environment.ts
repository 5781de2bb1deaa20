import { Token } from 'aws-cdk-lib';

/** Lambda's limit on the environment: keys plus values, all variables together. */
export const LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096;

/**
 * What an unresolved value (a bucket name, a table name, the account) is counted as: the
 * longest such names CloudFormation can generate are well under this, so the estimate errs on
 * the safe side.
 */
export const UNRESOLVED_VALUE_ESTIMATE_BYTES = 255;

/** Estimated size in bytes of a Lambda environment, as Lambda counts it (UTF-8 keys + values). */
export function environmentSizeBytes(environment: Readonly<Record<string, string>>): number {
  let total = 0;
  for (const [key, value] of Object.entries(environment)) {
    total += Buffer.byteLength(key, 'utf8');
    total += Token.isUnresolved(value)
      ? UNRESOLVED_VALUE_ESTIMATE_BYTES
      : Buffer.byteLength(value, 'utf8');
  }
  return total;
}

/** The variables by size, largest first, as `NAME (n bytes)`, for error messages. */
export function largestVariables(environment: Readonly<Record<string, string>>, count = 3): string {
  return Object.entries(environment)
    .map(([key, value]) => ({
      key,
      size:
        Buffer.byteLength(key, 'utf8') +
        (Token.isUnresolved(value)
          ? UNRESOLVED_VALUE_ESTIMATE_BYTES
          : Buffer.byteLength(value, 'utf8')),
    }))
    .sort((a, b) => b.size - a.size)
    .slice(0, count)
    .map(({ key, size }) => `${key} (${size} bytes)`)
    .join(', ');
}
