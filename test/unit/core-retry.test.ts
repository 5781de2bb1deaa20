import {
  backoffDelayMs,
  retryFailedItems,
  retrying,
  type RetryPolicy,
} from '../../lambda/core/retry';

const POLICY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 250 };

/** A timer that records the delays asked for and never waits. */
function recordingTimer(random = (): number => 0.5): {
  sleeps: number[];
  sleep: (ms: number) => Promise<void>;
  random: () => number;
} {
  const sleeps: number[] = [];
  return { sleeps, sleep: async (ms) => void sleeps.push(ms), random };
}

interface Item {
  readonly id: string;
}

const items = (...ids: string[]): Item[] => ids.map((id) => ({ id }));

describe('retryFailedItems, the one retry helper', () => {
  it('gives up after maxAttempts calls and reports the items still failing, in their order', async () => {
    // Arrange
    const all = items('a', 'b', 'c', 'd');
    const timer = recordingTimer();
    const calls: string[][] = [];

    // Act
    const outcome = await retryFailedItems(
      all,
      async (pending) => {
        calls.push(pending.map((i) => i.id));
        // The response lists failures in its own order; 'b' and 'd' never get through.
        return pending.filter((i) => i.id === 'd' || i.id === 'b').reverse();
      },
      POLICY,
      timer,
    );

    // Assert
    expect(outcome.unfinished).toEqual([all[1], all[3]]);
    expect(outcome.unfinished[0]).toBe(all[1]);
    expect(outcome.attempts).toBe(4);
    expect(calls).toEqual([
      ['a', 'b', 'c', 'd'],
      ['b', 'd'],
      ['b', 'd'],
      ['b', 'd'],
    ]);
    expect(timer.sleeps).toHaveLength(3);
    expect(outcome.resent).toBe(6);
  });

  it('never sends again an item that got through, and sends each failed item once per retry', async () => {
    // Arrange: item i fails on its first i calls.
    const all = items('0', '1', '2', '3');
    const failuresLeft = new Map(all.map((item) => [item, Number(item.id)]));
    const sent = new Map<Item, number>();
    const batches: Item[][] = [];

    // Act
    const outcome = await retryFailedItems(
      all,
      async (pending) => {
        batches.push([...pending]);
        for (const item of pending) sent.set(item, (sent.get(item) ?? 0) + 1);
        const failing = pending.filter((item) => failuresLeft.get(item)! > 0);
        for (const item of failing) failuresLeft.set(item, failuresLeft.get(item)! - 1);
        // Reported twice: still sent once on the next call.
        return [...failing, ...failing];
      },
      POLICY,
      recordingTimer(),
    );

    // Assert
    expect(outcome).toEqual({ unfinished: [], attempts: 4, resent: 6 });
    expect([...sent.values()]).toEqual([1, 2, 3, 4]);
    expect(batches.map((b) => b.map((i) => i.id))).toEqual([
      ['0', '1', '2', '3'],
      ['1', '2', '3'],
      ['2', '3'],
      ['3'],
    ]);
  });

  it("sends the caller's own item again when the response hands back an equal copy", async () => {
    // Arrange
    const all = items('a', 'b');
    const batches: Item[][] = [];

    // Act
    await retryFailedItems(
      all,
      async (pending, attempt) => {
        batches.push([...pending]);
        return attempt === 1 ? [{ id: 'b' }] : [];
      },
      POLICY,
      recordingTimer(),
      (item) => item.id,
    );

    // Assert
    expect(batches[1]).toHaveLength(1);
    expect(batches[1]![0]).toBe(all[1]);
  });

  it('throws when a call reports failed an item it was not sent', async () => {
    // Arrange
    const all = items('a', 'b');

    // Act
    const run = retryFailedItems(
      all,
      async (pending, attempt) => (attempt === 1 ? [pending[0]!] : [all[1]!]),
      POLICY,
      recordingTimer(),
    );

    // Assert
    await expect(run).rejects.toThrow('retry: attempt 2 reported failed an item it was not sent');
  });

  it('makes no call for no items, and one call when nothing fails', async () => {
    // Arrange
    let calls = 0;
    const send = async (): Promise<Item[]> => {
      calls++;
      return [];
    };
    const timer = recordingTimer();

    // Act
    const none = await retryFailedItems([], send, POLICY, timer);
    const one = await retryFailedItems(items('a'), send, POLICY, timer);

    // Assert
    expect(none).toEqual({ unfinished: [], attempts: 0, resent: 0 });
    expect(one).toEqual({ unfinished: [], attempts: 1, resent: 0 });
    expect(calls).toBe(1);
    expect(timer.sleeps).toEqual([]);
  });

  it('waits the backoff between attempts: doubling from the base, capped, half of it jitter', async () => {
    // Arrange
    const low = recordingTimer(() => 0);
    const high = recordingTimer(() => 0.999999);
    const alwaysFails = async (pending: readonly Item[]): Promise<readonly Item[]> => pending;

    // Act
    await retryFailedItems(items('a'), alwaysFails, POLICY, low);
    await retryFailedItems(items('a'), alwaysFails, POLICY, high);

    // Assert: steps 100, 200, 250 (capped)
    expect(low.sleeps).toEqual([50, 100, 125]);
    expect(high.sleeps).toEqual([100, 200, 250]);
  });

  it.each<[number, number, number]>([
    [1, 0, 50],
    [1, 1, 100],
    [2, 0.5, 150],
    [3, 0, 125],
    [9, 1, 250],
  ])('backoffDelayMs after attempt %d with random %d is %d ms', (attempt, random, expected) => {
    expect(backoffDelayMs(attempt, POLICY, () => random)).toBe(expected);
  });
});

describe('retrying, a call that succeeds or fails whole', () => {
  class Transient extends Error {}

  it('resolves with the first success after retryable failures', async () => {
    // Arrange
    const timer = recordingTimer();
    const seen: number[] = [];

    // Act
    const value = await retrying(
      async (n) => {
        seen.push(n);
        if (n < 3) throw new Transient(`try ${n}`);
        return 'ok';
      },
      (error) => error instanceof Transient,
      POLICY,
      timer,
    );

    // Assert
    expect(value).toBe('ok');
    expect(seen).toEqual([1, 2, 3]);
    expect(timer.sleeps).toHaveLength(2);
  });

  it('resolves with a falsy result as it is', async () => {
    await expect(
      retrying(
        async () => undefined,
        () => true,
        POLICY,
        recordingTimer(),
      ),
    ).resolves.toBe(undefined);
  });

  it('throws the last error after maxAttempts, and a non-retryable error at once', async () => {
    // Arrange
    let calls = 0;
    const failing = async (n: number): Promise<never> => {
      calls++;
      throw n === 2 && calls > 4 ? new Error('HTTP 400') : new Transient(`try ${n}`);
    };
    const isRetryable = (error: unknown): boolean => error instanceof Transient;

    // Act
    const exhausted = retrying(failing, isRetryable, POLICY, recordingTimer());
    await expect(exhausted).rejects.toThrow('try 4');
    const fatal = retrying(failing, isRetryable, POLICY, recordingTimer());

    // Assert
    await expect(fatal).rejects.toThrow('HTTP 400');
    expect(calls).toBe(6);
  });
});
