/**
 * The EMF metrics contract shared by the handlers (which emit) and the constructs (whose alarms
 * and dashboard read): namespace, dimension names and the metric names an alarm watches.
 * Every metric carries `service` (the handler) and `deployment` (the stack name), so two
 * deployments in one account and region never share a series (docs/operations.md#metrics).
 */

/** The namespace of every opentrail EMF metric. */
export const METRICS_NAMESPACE = 'opentrail';

/** The dimension naming the handler that emitted the metric. */
export const SERVICE_DIMENSION = 'service';

/** The dimension naming the deployment (the stack name). */
export const DEPLOYMENT_DIMENSION = 'deployment';

/** The Lambda environment variable that carries the deployment's name to every handler. */
export const DEPLOYMENT_ENV = 'OPENTRAIL_DEPLOYMENT';

/**
 * Seconds since the oldest period that has ended without a digest ended: the maximum over every
 * digest chain of the deployment (one metric, not one per chain; the chains behind are logged).
 * 0 when every period that has ended is signed.
 */
export const OLDEST_UNDIGESTED_PERIOD_AGE = 'OldestUndigestedPeriodAgeSeconds';
