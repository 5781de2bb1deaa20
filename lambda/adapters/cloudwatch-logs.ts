import {
  CreateLogStreamCommand,
  PutLogEventsCommand,
  type CloudWatchLogsClient,
} from '@aws-sdk/client-cloudwatch-logs';
import type { LogEventSink } from '../core/ports';

/**
 * LogEventSink over CloudWatch Logs. Streams are created on first use: a PutLogEvents that
 * finds no stream creates it (an existing one is fine) and is sent again once.
 */
export class CloudWatchLogEventSink implements LogEventSink {
  private readonly known = new Set<string>();

  constructor(private readonly client: CloudWatchLogsClient) {}

  async putLogEvents(
    logGroupName: string,
    logStreamName: string,
    events: readonly { timestamp: number; message: string }[],
  ): Promise<void> {
    const command = new PutLogEventsCommand({
      logGroupName,
      logStreamName,
      logEvents: events.map((e) => ({ timestamp: e.timestamp, message: e.message })),
    });
    const id = `${logGroupName}\n${logStreamName}`;
    try {
      await this.client.send(command);
    } catch (error) {
      if ((error as Error).name !== 'ResourceNotFoundException' || this.known.has(id)) throw error;
      await this.client
        .send(new CreateLogStreamCommand({ logGroupName, logStreamName }))
        .catch((e: unknown) => {
          if ((e as Error).name !== 'ResourceAlreadyExistsException') throw e;
        });
      await this.client.send(command);
    }
    this.known.add(id);
  }
}
