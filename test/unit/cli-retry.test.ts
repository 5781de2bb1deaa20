import { retrying, type RetryPolicy } from '../../cli/shared/retry';

const FAST: RetryPolicy = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 };
class Transient extends Error {}

describe('retrying, the one retry helper', () => {
  it('retries retryable failures and resolves with the first success', async () => {
    const seen: number[] = [];
    const value = await retrying(
      async (n) => {
        seen.push(n);
        if (n < 3) throw new Transient(`try ${n}`);
        return 'ok';
      },
      (e) => e instanceof Transient,
      FAST,
    );
    expect(value).toBe('ok');
    expect(seen).toEqual([1, 2, 3]);
  });

  it('gives up after maxAttempts with the last error', async () => {
    let calls = 0;
    await expect(
      retrying(
        async (n) => {
          calls++;
          throw new Transient(`try ${n}`);
        },
        (e) => e instanceof Transient,
        FAST,
      ),
    ).rejects.toThrow('try 3');
    expect(calls).toBe(3);
  });

  it('does not retry an error that is not retryable', async () => {
    let calls = 0;
    await expect(
      retrying(
        async () => {
          calls++;
          throw new Error('HTTP 400');
        },
        (e) => e instanceof Transient,
        FAST,
      ),
    ).rejects.toThrow('HTTP 400');
    expect(calls).toBe(1);
  });
});
