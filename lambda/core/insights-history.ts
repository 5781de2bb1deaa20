/**
 * Warm-up's read of the event history (docs/design.md#insights): LookupEvents' own use case
 * (history.ts) over the history store, by ReadOnly=false and a time range, page by page. The
 * handler passes a MAC whose key is made for the detector's process (an in-memory HMAC key), so
 * the detector needs no access to the deployment's page-token key. Pure: I/O through the ports.
 */
import { lookupEvents } from './history';
import type { CountableRecord } from './insights-counts';
import type { InsightHistorySource } from './insights-live';
import type { HistoryStore, MacPort } from './ports';

/** LookupEvents' largest page. */
const PAGE_SIZE = 50;

/**
 * Pages read at most on enabling (200,000 write calls, the newest): a few minutes of the
 * detector's run, well inside its timeout; a busier history seeds its most recent part.
 */
export const MAX_SEED_PAGES = 4_000;

export class LookupInsightHistorySource implements InsightHistorySource {
  /** Pages read (LookupEvents calls), over every read. */
  pages = 0;

  constructor(
    private readonly store: HistoryStore,
    private readonly mac: MacPort,
    private readonly now: () => number,
    private readonly maxPages = MAX_SEED_PAGES,
  ) {}

  async writeCalls(
    fromMs: number,
    toMs: number,
    onPage: (records: readonly CountableRecord[]) => void,
  ): Promise<{ complete: boolean }> {
    let token: string | undefined;
    let read = 0;
    do {
      const page = await lookupEvents(
        {
          LookupAttributes: [{ AttributeKey: 'ReadOnly', AttributeValue: 'false' }],
          StartTime: Math.floor(fromMs / 1000),
          // LookupEvents' EndTime is inclusive to the second.
          EndTime: Math.ceil(toMs / 1000) - 1,
          MaxResults: PAGE_SIZE,
          ...(token ? { NextToken: token } : {}),
        },
        { store: this.store, mac: this.mac, now: this.now },
      );
      this.pages += 1;
      read += 1;
      onPage(page.Events.map((event) => JSON.parse(event.CloudTrailEvent) as CountableRecord));
      token = page.NextToken;
    } while (token && read < this.maxPages);
    return { complete: token === undefined };
  }
}
