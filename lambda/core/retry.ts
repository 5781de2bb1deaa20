/**
 * The one retry helper: bounded attempts with exponential backoff and jitter, for batch calls
 * that report a failure per item (Kinesis PutRecords `FailedRecordCount`, EventBridge PutEvents
 * `FailedEntryCount`, DynamoDB BatchWriteItem `UnprocessedItems` and BatchGetItem
 * `UnprocessedKeys`, PutAuditEvents' per-entry errors) and, as a batch of one, for calls that
 * succeed or fail whole ({@link retrying}).
 *
 * Guarantees every caller relies on: only items the last call reported failed are sent again,
 * each at most once per attempt, as the caller's own objects (never a copy a response handed
 * back), so an item that got through is never sent twice by the retry; after
 * `policy.maxAttempts` calls the items still failing are handed back, not dropped. Pure: the
 * sleep and the random source come from the caller.
 */

export interface RetryPolicy {
  /** Attempts in all, the first one included. */
  readonly maxAttempts: number;
  /** Delay before the second attempt, before jitter. */
  readonly baseDelayMs: number;
  /** Cap on any one delay, before jitter. */
  readonly maxDelayMs: number;
}

export interface RetryTimer {
  readonly sleep: (ms: number) => Promise<void>;
  /** A number in [0, 1). @default Math.random */
  readonly random?: () => number;
}

/**
 * Delay after failed attempt `attempt` (1-based): "equal jitter", half of the exponential step
 * fixed and half random, so retries from parallel callers spread out yet never collapse to 0.
 */
export function backoffDelayMs(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

export interface ItemRetryOutcome<T> {
  /** Items still failing after the last attempt, in the order they were given (empty: all done). */
  readonly unfinished: T[];
  /** Calls made. */
  readonly attempts: number;
  /** Items sent again, counted once per resend. */
  readonly resent: number;
}

/**
 * Sends `items` with `send`, which resolves with the items of that call that failed and are
 * worth another attempt (items that failed for good are the caller's to record, and are not
 * returned). Those are sent again after {@link backoffDelayMs}, until none is left or
 * `policy.maxAttempts` calls were made. `send` may return equal copies of the items (as
 * DynamoDB's unprocessed items are): `identify` maps both to the same value, and the caller's
 * own item is what is sent again. An item reported failed that the call did not send is a
 * defect in `send` and throws.
 */
export async function retryFailedItems<T>(
  items: readonly T[],
  send: (pending: readonly T[], attempt: number) => Promise<readonly T[]>,
  policy: RetryPolicy,
  timer: RetryTimer,
  identify: (item: T) => unknown = (item) => item,
): Promise<ItemRetryOutcome<T>> {
  let pending: readonly T[] = items;
  let resent = 0;
  let attempt = 0;
  while (pending.length > 0) {
    attempt++;
    const reported = await send(pending, attempt);
    const byId = new Map(pending.map((item) => [identify(item), item]));
    const failing = new Set<T>();
    for (const item of reported) {
      const own = byId.get(identify(item));
      if (own === undefined)
        throw new Error(`retry: attempt ${attempt} reported failed an item it was not sent`);
      failing.add(own);
    }
    // The caller's order, whatever order the response used.
    const failed = pending.filter((item) => failing.has(item));
    if (failed.length === 0) break;
    if (attempt >= policy.maxAttempts) return { unfinished: failed, attempts: attempt, resent };
    await timer.sleep(backoffDelayMs(attempt, policy, timer.random));
    resent += failed.length;
    pending = failed;
  }
  return { unfinished: [], attempts: attempt, resent };
}

/**
 * Runs `call` until it resolves, retrying the errors `isRetryable` accepts with
 * {@link backoffDelayMs} between attempts, at most `policy.maxAttempts` in all; the last error,
 * or any error not retryable, is thrown as it is. {@link retryFailedItems} with one item.
 */
export async function retrying<T>(
  call: (attempt: number) => Promise<T>,
  isRetryable: (error: unknown) => boolean,
  policy: RetryPolicy,
  timer: RetryTimer,
): Promise<T> {
  const only = Symbol('call');
  let value: { readonly result: T } | undefined;
  let lastError: unknown;
  await retryFailedItems(
    [only],
    async (pending, attempt) => {
      try {
        value = { result: await call(attempt) };
        return [];
      } catch (error) {
        if (!isRetryable(error)) throw error;
        lastError = error;
        return pending;
      }
    },
    policy,
    timer,
  );
  if (value === undefined) throw lastError;
  return value.result;
}
