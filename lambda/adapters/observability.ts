import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricsSink } from '../core/ports';

/** The metrics namespace of every opentrail metric. */
export const METRICS_NAMESPACE = 'opentrail';

/** Structured JSON logs (Powertools), one logger per handler. */
export function createLogger(serviceName: string): Logger {
  return new Logger({ serviceName });
}

/** EMF metrics (Powertools), published by the handler at the end of each invocation. */
export function createMetrics(serviceName: string): Metrics {
  return new Metrics({ namespace: METRICS_NAMESPACE, serviceName });
}

/** MetricsSink over Powertools Metrics. */
export function metricsSink(metrics: Metrics): MetricsSink {
  return { count: (name, value) => metrics.addMetric(name, MetricUnit.Count, value) };
}
