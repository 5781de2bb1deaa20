/**
 * Health at a glance: the one-line status `opentrail local` prints every minute and
 * `opentrail status` prints for a running runtime or a deployment (docs/cli.md#opentrail-status).
 */

/** What the line says. */
export interface HealthStatus {
  /** Events accepted by PutAuditEvents (a resend counts again). */
  readonly eventsIn: number;
  /** Log files the packager wrote. */
  readonly logFilesWritten: number;
  /** Digests the signer wrote. */
  readonly digestsSigned: number;
  /**
   * How far the stream consumers are behind: the largest iterator age (seconds) of each
   * consumer's latest batch; null before any batch.
   */
  readonly lagSeconds: number | null;
}

/** The route of a running embedded runtime that answers its {@link HealthStatus} as JSON. */
export const HEALTH_ROUTE = 'GET /opentrail/status';

/** `events in 12, log files 3, digests 1, lag 2 s` (`lag -` before any batch). */
export function formatHealthLine(status: HealthStatus): string {
  const lag = status.lagSeconds === null ? '-' : `${Math.round(status.lagSeconds)} s`;
  return `events in ${status.eventsIn}, log files ${status.logFilesWritten}, digests ${status.digestsSigned}, lag ${lag}`;
}

/** A Kinesis event's newest arrival time (epoch ms), or undefined for an empty batch. */
export function newestArrivalMs(event: unknown): number | undefined {
  const records = (event as { Records?: { kinesis?: { approximateArrivalTimestamp?: number } }[] })
    .Records;
  let newest: number | undefined;
  for (const r of records ?? []) {
    const seconds = r.kinesis?.approximateArrivalTimestamp;
    if (typeof seconds === 'number') newest = Math.max(newest ?? 0, seconds * 1000);
  }
  return newest;
}
