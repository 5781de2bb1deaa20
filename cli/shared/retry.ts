/** Bounded retries with exponential backoff and jitter, shared by the CLI commands. */

export interface RetryPolicy {
  /** Attempts in all, the first one included. */
  readonly maxAttempts: number;
  /** Delay before the second attempt, before jitter. */
  readonly baseDelayMs: number;
  /** Cap on any one delay. */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
};

/**
 * Delay after failed attempt `attempt` (1-based): "equal jitter", half of the exponential step
 * fixed and half random, so retries from parallel requests spread out yet never collapse to 0.
 */
export function backoffDelayMs(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `attempt` until it resolves, retrying errors `isRetryable` accepts with
 * {@link backoffDelayMs} between attempts, at most `policy.maxAttempts` in all; the last error,
 * or any error not retryable, is thrown as it is. For calls that succeed or fail whole; calls
 * that retry only the failed part of a batch keep their own loop over that part.
 */
export async function retrying<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  isRetryable: (error: unknown) => boolean,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  random?: () => number,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (!isRetryable(error) || n >= policy.maxAttempts) throw error;
      await sleep(backoffDelayMs(n, policy, random));
    }
  }
}
