/**
 * Runs `work` over `items` with at most `limit` calls in flight. On the first failure no new
 * item is started; the calls already running are awaited, then that failure is thrown (so a
 * failed batch leaves no work running behind the caller's back, racing its retry).
 */
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (!failure && next < items.length) {
      try {
        await work(items[next++]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  });
  await Promise.all(workers);
  if (failure) throw failure.error;
}
