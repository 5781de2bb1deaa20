import { randomUUID } from 'node:crypto';
import { KinesisRecordStream } from '../../lambda/adapters/kinesis';
import { createIngestHandler } from '../../lambda/handlers/ingest';
import type { RuntimeComponent } from '../runtime-context';

/** `POST /PutAuditEvents` → the ingest handler → kinesalite. */
export const ingestComponent: RuntimeComponent = {
  name: 'ingest',
  start: (context) => {
    const ingest = createIngestHandler({
      stream: new KinesisRecordStream(context.clients.kinesis, context.names.stream),
      accountId: context.accountId,
      // No caller identity here: the InvalidRecipient rule is off (docs/formats.md#per-entry-errors).
      now: Date.now,
      newEventId: randomUUID,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    });
    context.route('POST /PutAuditEvents', async (request) => {
      const response = await ingest(request);
      if (response.statusCode === 200) {
        // The status line's "events in": entries Kinesis acknowledged.
        const accepted = (JSON.parse(response.body) as { successful?: unknown[] }).successful;
        context.metrics.count('EventsAccepted', accepted?.length ?? 0);
      }
      return response;
    });
    return Promise.resolve();
  },
};
