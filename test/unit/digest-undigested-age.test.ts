/**
 * The signer's `OldestUndigestedPeriodAgeSeconds`: one value per run, the maximum over every
 * chain, emitted by failed runs too, with the chains behind reported for the log.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalRsaSigner } from '../../lambda/adapters/local-signer';
import { DEFAULT_TRAIL } from '../../lambda/core/config';
import { signDueDigests } from '../../lambda/core/digest-signing';
import type { DigestSigningDeps, UndigestedChain } from '../../lambda/core/digest-signing-deps';
import type {
  DigestChainHead,
  DigestChainStore,
  DigestReservation,
  DigestStreamRef,
} from '../../lambda/core/ports';

const HOUR = 3600_000;
/** 12:30, half an hour into a period. */
const NOW = Date.UTC(2026, 0, 1, 12, 30, 0);

/** Chains of the given streams; writes of the accounts in `failingAccounts` fail. */
class Chains implements DigestChainStore {
  readonly heads = new Map<string, DigestChainHead>();
  constructor(
    private readonly streams: DigestStreamRef[],
    private readonly failingAccounts: ReadonlySet<string> = new Set(),
  ) {}
  register() {
    return Promise.resolve();
  }
  listStreams() {
    return Promise.resolve(this.streams);
  }
  getHead(id: string) {
    return Promise.resolve(this.heads.get(id));
  }
  moveHead(id: string, next: DigestChainHead) {
    this.heads.set(id, next);
    return Promise.resolve(true);
  }
  getReservation() {
    return Promise.resolve(undefined);
  }
  reserve(r: DigestReservation) {
    const account = r.stream.split('#')[1]!;
    return this.failingAccounts.has(account)
      ? Promise.reject(new Error(`injected: reserve ${r.stream}`))
      : Promise.resolve(r);
  }
}

const stream = (account: string, firstSeenMs: number): DigestStreamRef => ({
  trail: DEFAULT_TRAIL.name,
  account,
  region: 'us-east-1',
  firstSeenMs,
});

let keyDir: string;
let signer: LocalRsaSigner;
beforeAll(async () => {
  keyDir = mkdtempSync(join(tmpdir(), 'opentrail-age-'));
  signer = await LocalRsaSigner.open(keyDir);
});
afterAll(() => rmSync(keyDir, { recursive: true, force: true }));

async function run(
  chain: DigestChainStore,
  extra: Partial<DigestSigningDeps> = {},
): Promise<{ seconds: number[]; reported: (readonly UndigestedChain[])[]; error?: unknown }> {
  const seconds: number[] = [];
  const reported: (readonly UndigestedChain[])[] = [];
  const deps: DigestSigningDeps = {
    trails: [DEFAULT_TRAIL],
    bucket: 'logs',
    homeRegion: 'us-east-1',
    periodMs: HOUR,
    chain,
    manifest: { unclaimed: () => Promise.resolve([]), claim: () => Promise.resolve(true) },
    objects: {
      putIfAbsent: () => Promise.resolve('created'),
      getWithMetadata: () => Promise.resolve(undefined),
      listKeys: () => Promise.resolve([]),
    },
    signer,
    metrics: {
      count: () => undefined,
      seconds: (name, value) => {
        expect(name).toBe('OldestUndigestedPeriodAgeSeconds');
        seconds.push(value);
      },
    },
    reportBacklog: (chains) => reported.push(chains),
    now: () => NOW,
    ...extra,
  };
  try {
    await signDueDigests(deps);
    return { seconds, reported };
  } catch (error) {
    return { seconds, reported, error };
  }
}

describe('OldestUndigestedPeriodAgeSeconds', () => {
  it('is 0 when there is no chain', async () => {
    const { seconds, reported } = await run(new Chains([]));
    expect(seconds).toEqual([0]);
    expect(reported).toEqual([[]]);
  });

  it('is 0 once a run has signed every period that has ended', async () => {
    const { seconds, reported, error } = await run(
      new Chains([stream('111111111111', NOW - 3 * HOUR)]),
    );
    expect(error).toBeUndefined();
    expect(seconds).toEqual([0]);
    expect(reported).toEqual([[]]);
  });

  it('is the age of the oldest period left when a run stops early (the per-run cap)', async () => {
    // First seen at 09:30: periods 09-10, 10-11, 11-12 are due; one is signed, 10-11 is left.
    const { seconds, reported } = await run(new Chains([stream('111111111111', NOW - 3 * HOUR)]), {
      maxDigestsPerStream: 1,
    });
    expect(seconds).toEqual([1.5 * 3600]);
    expect(reported[0]).toEqual([
      {
        stream: `${DEFAULT_TRAIL.name}#111111111111#us-east-1`,
        startMs: Date.UTC(2026, 0, 1, 10),
        ageSeconds: 1.5 * 3600,
      },
    ]);
  });

  it('is emitted by a failed run, the maximum over every chain, each chain behind reported', async () => {
    const chains = new Chains(
      [stream('111111111111', NOW - 2 * HOUR), stream('222222222222', NOW - 5 * HOUR)],
      new Set(['111111111111', '222222222222']),
    );
    const { seconds, reported, error } = await run(chains);
    expect(error).toBeInstanceOf(Error);
    // 07:30 → its first period 07-08 ended 4.5 h ago; 10:30 → 10-11 ended 1.5 h ago.
    expect(seconds).toEqual([4.5 * 3600]);
    expect(reported[0]!.map((c) => [c.stream.split('#')[1], c.ageSeconds])).toEqual([
      ['222222222222', 4.5 * 3600],
      ['111111111111', 1.5 * 3600],
    ]);
  });
});
