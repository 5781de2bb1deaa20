import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import {
  DEPLOYMENT_DIMENSION,
  METRICS_NAMESPACE,
  SERVICE_DIMENSION,
} from '../../lambda/core/metrics';

/**
 * An EMF metric one of the handlers emits (lambda/adapters/observability.ts), with the
 * dimensions it is emitted with: `service` and `deployment` (the stack name, which
 * {@link OpentrailFunction} passes to every handler). Sum over 5 minutes unless `props` says.
 */
export function emfMetric(
  scope: Construct,
  service: string,
  metricName: string,
  props?: cloudwatch.MetricOptions,
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: {
      [SERVICE_DIMENSION]: service,
      [DEPLOYMENT_DIMENSION]: Stack.of(scope).stackName,
    },
    statistic: 'Sum',
    period: Duration.minutes(5),
    ...props,
  });
}
