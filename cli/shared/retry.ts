/**
 * The CLI commands' retry policy and timer over the one retry helper (lambda/core/retry.ts):
 * bounded retries with exponential backoff and jitter.
 */
import {
  retrying as retryingWith,
  type RetryPolicy,
  type RetryTimer,
} from '../../lambda/core/retry';

export { backoffDelayMs, retryFailedItems, type RetryPolicy } from '../../lambda/core/retry';

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
};

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A real-time timer for the helper; `random` for tests that pin the jitter. */
export function realTimer(random?: () => number): RetryTimer {
  return { sleep, ...(random ? { random } : {}) };
}

/**
 * Runs `attempt` until it resolves, retrying errors `isRetryable` accepts with
 * `backoffDelayMs` between attempts, at most `policy.maxAttempts` in all; the last error,
 * or any error not retryable, is thrown as it is.
 */
export function retrying<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  isRetryable: (error: unknown) => boolean,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  random?: () => number,
): Promise<T> {
  return retryingWith(attempt, isRetryable, policy, realTimer(random));
}
