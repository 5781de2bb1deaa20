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
    context.route('POST /PutAuditEvents', ingest);
    return Promise.resolve();
  },
};
