import type { EventBus } from '../../lambda/core/ports';
import type { TrailConfig } from '../../lambda/core/config';
import { createPublisherHandler } from '../../lambda/handlers/publisher';
import { LocalEventBus, LocalLogEventSink } from '../fanout-files';
import type { RuntimeComponent } from '../runtime-context';

/** Most records per publisher batch (Lambda's default for Kinesis). */
const PUBLISHER_BATCH_SIZE = 100;

/** The log group a trail's CloudWatch Logs events go to in the embedded runtime. */
export function localLogGroupName(trail: TrailConfig): string {
  return trail.cloudWatchLogs?.logGroupName ?? `/opentrail/${trail.name}`;
}

/** The SNS topic named in a trail's delivery notices in the embedded runtime. */
export function localTopicArn(trail: TrailConfig, region: string, accountId: string): string {
  return (
    trail.deliveryNotices?.topicArn ?? `arn:aws:sns:${region}:${accountId}:opentrail-${trail.name}`
  );
}

export interface FanoutComponentOptions {
  /** Test hook: wraps the local bus (e.g. to fail a call after its write, as a crash would). */
  readonly wrapBus?: (bus: EventBus) => EventBus;
}

/**
 * Test hook (OPENTRAIL_FAULT_PUBLISH_DELAY_MS): a pause AFTER each bus write, before the batch
 * is checkpointed, so a test can SIGKILL the runtime between the two.
 */
function delayedAfterWrite(bus: EventBus, delayMs: number): EventBus {
  if (!(delayMs > 0)) return bus;
  return {
    putEvents: async (events) => {
      const results = await bus.putEvents(events);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      return results;
    },
  };
}

/**
 * The publisher on its own stream consumer, polling every second whatever --flush-seconds
 * says: every record to the local bus (`<data-dir>/eventbridge/events.jsonl`; `--forward-to`
 * POSTs from that file, behind a cursor, so a slow target never holds the publisher), and to CloudWatch Logs files for every trail (its selectors apply), so a
 * replay shows everything it sent. Files: local/fanout-files.ts.
 */
export function createFanoutComponent(options: FanoutComponentOptions = {}): RuntimeComponent {
  return {
    name: 'fanout',
    start: (context) => {
      const bus = new LocalEventBus({
        dataDir: context.dataDir,
        forwardTo: context.options.forwardTo,
        metrics: context.metrics,
        log: context.log,
      });
      context.onClose(() => bus.close());
      const delayed = delayedAfterWrite(
        bus,
        Number(process.env.OPENTRAIL_FAULT_PUBLISH_DELAY_MS ?? 0),
      );
      const publisher = createPublisherHandler({
        bus: options.wrapBus ? options.wrapBus(delayed) : delayed,
        metrics: context.metrics,
        logs: new LocalLogEventSink(context.dataDir),
        logGroups: context.trails.map((trail) => ({
          trail,
          logGroupName: localLogGroupName(trail),
        })),
        now: Date.now,
      });
      return context.consumer({
        name: 'publisher',
        invoke: publisher,
        batchSize: PUBLISHER_BATCH_SIZE,
        batchWindowMs: 0,
        pollIntervalMs: 1000,
      });
    },
  };
}

export const fanoutComponent = createFanoutComponent();
