import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DEPLOYMENT_DIMENSION, METRICS_NAMESPACE } from '../core/metrics';
import type { MetricsSink } from '../core/ports';

export { METRICS_NAMESPACE } from '../core/metrics';

/** Structured JSON logs (Powertools), one logger per handler. */
export function createLogger(serviceName: string): Logger {
  return new Logger({ serviceName });
}

/**
 * EMF metrics (Powertools), published by the handler at the end of each invocation. Each metric
 * has the dimensions `service` and, when `deployment` is set (in Lambda: the stack name, which
 * the handler reads from `OPENTRAIL_DEPLOYMENT`), `deployment`, so that deployments sharing an account and region
 * keep their own series.
 */
export function createMetrics(serviceName: string, deployment: string | undefined): Metrics {
  return new Metrics({
    namespace: METRICS_NAMESPACE,
    serviceName,
    ...(deployment ? { defaultDimensions: { [DEPLOYMENT_DIMENSION]: deployment } } : {}),
  });
}

/** MetricsSink over Powertools Metrics. */
export function metricsSink(metrics: Metrics): MetricsSink {
  return {
    count: (name, value) => metrics.addMetric(name, MetricUnit.Count, value),
    seconds: (name, value) => metrics.addMetric(name, MetricUnit.Seconds, value),
  };
}
