import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { FanoutEvent } from '../core/fanout';
import type { EventBus, PutEventResult } from '../core/ports';

/** EventBus over an EventBridge bus (PutEvents). */
export class EventBridgeBus implements EventBus {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly eventBusName: string,
  ) {}

  async putEvents(events: readonly FanoutEvent[]): Promise<PutEventResult[]> {
    const response = await this.client.send(
      new PutEventsCommand({
        Entries: events.map(({ entry }) => ({
          EventBusName: this.eventBusName,
          Source: entry.Source,
          DetailType: entry.DetailType,
          Detail: entry.Detail,
          Resources: [...entry.Resources],
          // An unreadable eventTime is left out: EventBridge then stamps the call's time.
          ...(Number.isFinite(Date.parse(entry.Time)) ? { Time: new Date(entry.Time) } : {}),
        })),
      }),
    );
    const entries = response.Entries ?? [];
    return events.map((_, i): PutEventResult => {
      const result = entries[i];
      if (!result)
        return { ok: false, errorCode: 'MissingResult', errorMessage: 'no result entry' };
      return result.ErrorCode
        ? { ok: false, errorCode: result.ErrorCode, errorMessage: result.ErrorMessage ?? '' }
        : { ok: true };
    });
  }
}
