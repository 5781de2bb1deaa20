/**
 * The per-copy dedup decision (docs/guarantees.md#exactly-once), one rule per row: which
 * copy is kept, which is dropped, which written object is completed, and what the item keeps.
 */
import {
  decide,
  dedupItemBytes,
  DYNAMODB_ITEM_MAX_BYTES,
  MAX_CLAIMS_PER_TRAIL,
  type Candidate,
  type ObjectState,
} from '../../lambda/core/dedup';
import type { DedupClaim, DedupItem } from '../../lambda/core/ports';

const HOUR = 3600_000;
const WINDOW = 24 * HOUR;
const T0 = Date.UTC(2024, 4, 1, 12);
const HASH = 'a'.repeat(64);

const CANDIDATE: Candidate = {
  eventId: 'e1',
  hash: HASH,
  trail: 't1',
  record: 'shard:100',
  batch: 'shard:100:110',
  arrivalMs: T0,
  key: 'bucket/new-object',
};

function claim(fields: Partial<DedupClaim>): DedupClaim {
  return {
    hash: HASH,
    trail: 't1',
    record: 'shard:1',
    batch: 'shard:1:9',
    arrivalMs: T0 - HOUR,
    key: 'bucket/old-object',
    ...fields,
  };
}

function states(map: Record<string, ObjectState>): (key: string) => ObjectState {
  return (key) => map[key] ?? 'none';
}

/** The claim the candidate itself adds. */
const OURS: DedupClaim = {
  hash: HASH,
  trail: 't1',
  record: 'shard:100',
  batch: 'shard:100:110',
  arrivalMs: T0,
  key: 'bucket/new-object',
};

describe('decide: a copy whose content the trail already holds', () => {
  it.each<[string, DedupClaim, ObjectState, { keep: false; complete?: string } | 'kept']>([
    ['delivered within the window: dropped', claim({}), 'delivered', { keep: false }],
    [
      'written within the window: dropped, the written object completed',
      claim({}),
      'written',
      { keep: false, complete: 'bucket/old-object' },
    ],
    ['reserved within the window: dropped', claim({}), 'reserved', { keep: false }],
    ['claimed but with no manifest row: kept', claim({}), 'none', 'kept'],
    [
      'exactly one window earlier: dropped',
      claim({ arrivalMs: T0 - WINDOW }),
      'delivered',
      { keep: false },
    ],
    [
      'one millisecond more than a window earlier: kept',
      claim({ arrivalMs: T0 - WINDOW - 1 }),
      'delivered',
      'kept',
    ],
    [
      'arrived a window later (a redrive of an older copy): dropped',
      claim({ arrivalMs: T0 + WINDOW }),
      'delivered',
      { keep: false },
    ],
    [
      'arrived more than a window later: kept',
      claim({ arrivalMs: T0 + WINDOW + 1 }),
      'delivered',
      'kept',
    ],
    [
      'in the very object this copy goes to: not a holder, kept',
      claim({ key: 'bucket/new-object' }),
      'delivered',
      'kept',
    ],
    ['for another trail: kept', claim({ trail: 't2' }), 'delivered', 'kept'],
  ])('held %s', (_name, stored, state, expected) => {
    const decision = decide(
      { eventId: 'e1', ver: 4, claims: [stored] },
      CANDIDATE,
      WINDOW,
      states({ [stored.key]: state }),
    );
    if (expected === 'kept') {
      expect(decision).toEqual({
        keep: true,
        conflict: false,
        item: { eventId: 'e1', ver: 4, claims: [stored, OURS] },
      });
    } else {
      expect(decision).toEqual(expected);
    }
  });
});

describe("decide: the record's own claim (a retry, a bisected retry, a redrive)", () => {
  const own = (fields: Partial<DedupClaim>) => claim({ record: CANDIDATE.record, ...fields });

  it.each<[string, ObjectState]>([
    ['delivered', 'delivered'],
    ['written', 'written'],
    ['reserved', 'reserved'],
  ])(
    'for the same object, %s: kept and the item left as it is, even past the window',
    (_n, state) => {
      const mine = own({ key: CANDIDATE.key, arrivalMs: T0 - 10 * WINDOW });
      expect(
        decide(
          { eventId: 'e1', ver: 2, claims: [mine] },
          CANDIDATE,
          WINDOW,
          states({ [mine.key]: state }),
        ),
      ).toEqual({ keep: true, conflict: false });
    },
  );

  it('for the same object not reserved yet, with no holder: kept, the item left as it is', () => {
    const mine = own({ key: CANDIDATE.key });
    expect(
      decide({ eventId: 'e1', ver: 2, claims: [mine] }, CANDIDATE, WINDOW, states({})),
    ).toEqual({
      keep: true,
      conflict: false,
    });
  });

  it('for the same object already reserved, while a resend holds it: kept (its bytes are fixed)', () => {
    const mine = own({ key: CANDIDATE.key, arrivalMs: T0 });
    const resend = claim({ record: 'shard:50', key: 'bucket/resend-object', arrivalMs: T0 - 1 });
    expect(
      decide(
        { eventId: 'e1', ver: 2, claims: [mine, resend] },
        CANDIDATE,
        WINDOW,
        states({ [CANDIDATE.key]: 'reserved', 'bucket/resend-object': 'delivered' }),
      ),
    ).toEqual({ keep: true, conflict: false });
  });

  it.each<[string, ObjectState, { keep: false; complete?: string }]>([
    ['delivered', 'delivered', { keep: false }],
    ['written', 'written', { keep: false, complete: 'bucket/resend-object' }],
  ])(
    'for the same object not reserved yet, while a resend holds it %s: dropped (the resend came first)',
    (_n, state, expected) => {
      const mine = own({ key: CANDIDATE.key, arrivalMs: T0 });
      const resend = claim({ record: 'shard:50', key: 'bucket/resend-object', arrivalMs: T0 - 1 });
      expect(
        decide(
          { eventId: 'e1', ver: 2, claims: [mine, resend] },
          CANDIDATE,
          WINDOW,
          states({ 'bucket/resend-object': state }),
        ),
      ).toEqual(expected);
    },
  );

  it.each<[string, ObjectState, { keep: false; complete?: string }]>([
    ['delivered: dropped', 'delivered', { keep: false }],
    [
      'written: dropped and that object completed',
      'written',
      { keep: false, complete: 'bucket/earlier-object' },
    ],
  ])('naming another object (batch boundaries changed) that is %s', (_n, state, expected) => {
    const mine = own({ key: 'bucket/earlier-object', arrivalMs: T0 - 10 * WINDOW });
    expect(
      decide(
        { eventId: 'e1', ver: 2, claims: [mine] },
        CANDIDATE,
        WINDOW,
        states({ [mine.key]: state }),
      ),
    ).toEqual(expected);
  });

  it.each<[string, ObjectState]>([
    ['reserved', 'reserved'],
    ['not reserved', 'none'],
  ])('naming another object that is only %s: replaced by a claim for this object', (_n, state) => {
    const mine = own({ key: 'bucket/earlier-object', batch: 'shard:90:120' });
    const other = claim({ trail: 't2', record: 'shard:7' });
    expect(
      decide(
        { eventId: 'e1', ver: 2, claims: [mine, other] },
        CANDIDATE,
        WINDOW,
        states({ [mine.key]: state }),
      ),
    ).toEqual({
      keep: true,
      conflict: false,
      item: { eventId: 'e1', ver: 2, claims: [other, OURS] },
    });
  });
});

describe('decide: new and conflicting content', () => {
  it('the first copy of an eventID is kept with its claim, version 0 (not stored yet)', () => {
    expect(decide(undefined, CANDIDATE, WINDOW, states({}))).toEqual({
      keep: true,
      conflict: false,
      item: { eventId: 'e1', ver: 0, claims: [OURS] },
    });
  });

  it.each<[string, DedupClaim[], boolean]>([
    ['other content for the same trail: a conflict', [claim({ hash: 'b'.repeat(64) })], true],
    [
      'other content for another trail only: no conflict',
      [claim({ hash: 'b'.repeat(64), trail: 't2' })],
      false,
    ],
    [
      'other content beside the same content (outside the window): no conflict',
      [claim({ hash: 'b'.repeat(64) }), claim({ arrivalMs: T0 - 2 * WINDOW })],
      false,
    ],
  ])('%s, kept beside it', (_n, claims, conflict) => {
    const decision = decide({ eventId: 'e1', ver: 1, claims }, CANDIDATE, WINDOW, states({}));
    expect(decision).toEqual({
      keep: true,
      conflict,
      item: { eventId: 'e1', ver: 1, claims: [...claims, OURS] },
    });
  });
});

describe('decide: the flood bound', () => {
  /** `n` claims of trail t1 with other contents, oldest first, past the window. */
  function flood(n: number, fields: (i: number) => Partial<DedupClaim> = () => ({})): DedupClaim[] {
    return Array.from({ length: n }, (_, i) =>
      claim({
        hash: String(i).padStart(64, '0'),
        record: `shard:${i}`,
        key: `bucket/object-${i}`,
        arrivalMs: T0 - 2 * WINDOW + i,
        ...fields(i),
      }),
    );
  }
  const delivered = () => 'delivered' as const;

  it(`keeps ${MAX_CLAIMS_PER_TRAIL} claims of the trail: the new one fits without evicting`, () => {
    const claims = flood(MAX_CLAIMS_PER_TRAIL - 1);
    const decision = decide({ eventId: 'e1', ver: 1, claims }, CANDIDATE, WINDOW, delivered);
    expect(decision).toMatchObject({
      keep: true,
      conflict: true,
      item: { claims: [...claims, OURS] },
    });
  });

  it('past the bound evicts exactly the oldest evictable claim, never the first delivered one', () => {
    const claims = [...flood(MAX_CLAIMS_PER_TRAIL), claim({ trail: 't2', record: 'shard:x' })];
    const decision = decide({ eventId: 'e1', ver: 1, claims }, CANDIDATE, WINDOW, delivered);
    expect(decision).toMatchObject({
      keep: true,
      conflict: true,
      // claim 0 is the first delivered one; claim 1 is the oldest evictable
      item: { claims: [claims[0], ...claims.slice(2), OURS] },
    });
  });

  it.each<[string, (i: number) => Partial<DedupClaim>, (key: string) => ObjectState]>([
    ['every claim is within the window', () => ({ arrivalMs: T0 - WINDOW }), delivered],
    ['no object is delivered (batches still retrying)', () => ({}), () => 'written'],
    [
      'only the first delivered claim could go',
      (i) => (i === 0 ? {} : { arrivalMs: T0 - WINDOW + i }),
      delivered,
    ],
  ])('when %s, nothing is evicted and the copy is kept unclaimed', (_n, fields, stateOf) => {
    const claims = flood(MAX_CLAIMS_PER_TRAIL, fields);
    expect(decide({ eventId: 'e1', ver: 1, claims }, CANDIDATE, WINDOW, stateOf)).toEqual({
      keep: true,
      conflict: true,
      unclaimed: true,
    });
  });

  it('under the bound nothing is evicted, however old the delivered claims', () => {
    const claims = flood(5);
    const decision = decide({ eventId: 'e1', ver: 1, claims }, CANDIDATE, WINDOW, delivered);
    expect(decision).toMatchObject({ keep: true, item: { claims: [...claims, OURS] } });
  });

  it('the first delivered claim is kept even when an undelivered claim is older', () => {
    const claims = flood(MAX_CLAIMS_PER_TRAIL);
    const decision = decide({ eventId: 'e1', ver: 1, claims }, CANDIDATE, WINDOW, (key) =>
      key === claims[0]!.key ? 'written' : 'delivered',
    );
    // claim 0 is still being written, claim 1 is the first delivered: claim 2 goes
    expect(decision).toMatchObject({
      keep: true,
      item: { claims: [claims[0], claims[1], ...claims.slice(3), OURS] },
    });
  });

  it("another trail's claims do not count towards this trail's bound", () => {
    const claims = flood(MAX_CLAIMS_PER_TRAIL - 1).concat(flood(5, () => ({ trail: 't2' })));
    const decision = decide({ eventId: 'e1', ver: 1, claims }, CANDIDATE, WINDOW, delivered);
    expect(decision).toMatchObject({ keep: true, item: { claims: [...claims, OURS] } });
  });
});

describe('decide: the DynamoDB item limit', () => {
  /** A stored item whose next version (with OURS added) is exactly `bytes` long. */
  function itemOf(bytes: number): DedupItem {
    const base: DedupItem = {
      eventId: 'e1',
      ver: 1,
      claims: [claim({ trail: 't2', key: '' }), OURS],
    };
    const pad = bytes - dedupItemBytes(base);
    return { eventId: 'e1', ver: 1, claims: [claim({ trail: 't2', key: 'x'.repeat(pad) })] };
  }

  it('an item of exactly 400 KB is written', () => {
    const stored = itemOf(DYNAMODB_ITEM_MAX_BYTES);
    const decision = decide(stored, CANDIDATE, WINDOW, states({}));
    expect(decision).toEqual({
      keep: true,
      conflict: false,
      item: { ...stored, claims: [...stored.claims, OURS] },
    });
    expect(dedupItemBytes({ ...stored, claims: [...stored.claims, OURS] })).toBe(400 * 1024);
  });

  it('one byte more is not written: the copy is kept unclaimed', () => {
    expect(decide(itemOf(DYNAMODB_ITEM_MAX_BYTES + 1), CANDIDATE, WINDOW, states({}))).toEqual({
      keep: true,
      conflict: false,
      unclaimed: true,
    });
  });

  it('counts UTF-8 bytes, not characters', () => {
    const ascii: DedupItem = { eventId: 'e1', ver: 1, claims: [claim({ key: 'x' })] };
    const euro: DedupItem = { eventId: 'e1', ver: 1, claims: [claim({ key: '\u20ac' })] };
    expect(dedupItemBytes(euro) - dedupItemBytes(ascii)).toBe(2);
  });
});
