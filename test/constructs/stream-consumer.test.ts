import { Duration, Stack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { EventStream } from '../../lib';
import { EventFanout } from '../../lib/event-fanout';
import { EventHistory } from '../../lib/event-history';
import { LogPackager } from '../../lib/log-packager';
import { testStack } from './support/app';

type Consumer = {
  consumer: {
    metricIteratorAge(p?: cloudwatch.MetricOptions): cloudwatch.Metric;
    metricErrors(p?: cloudwatch.MetricOptions): cloudwatch.Metric;
    metricThrottles(p?: cloudwatch.MetricOptions): cloudwatch.Metric;
    metricFailedBatches(p?: cloudwatch.MetricOptions): cloudwatch.Metric;
  };
  metricThrottles(p?: cloudwatch.MetricOptions): cloudwatch.Metric;
  metricFailedBatches(p?: cloudwatch.MetricOptions): cloudwatch.Metric;
  failedRecordsBucket: s3.IBucket;
};

const builders: Record<string, (stack: Stack, extra: Record<string, unknown>) => Consumer> = {
  packager: (stack, extra) => {
    const events = new EventStream(stack, 'Events');
    const logBucket = new s3.Bucket(stack, 'Logs');
    return new LogPackager(stack, 'Packager', { stream: events.stream, logBucket, ...extra });
  },
  indexer: (stack, extra) => {
    const events = new EventStream(stack, 'Events');
    return new EventHistory(stack, 'History', { stream: events.stream, ...extra });
  },
  publisher: (stack, extra) => {
    const events = new EventStream(stack, 'Events');
    return new EventFanout(stack, 'Fanout', { stream: events.stream, ...extra });
  },
};

describe.each(Object.keys(builders))('stream consumer of the %s', (name) => {
  const build = builders[name]!;

  it('exposes iterator age, errors, throttles and failed batches on its own function and bucket', () => {
    const stack = testStack();
    const c = build(stack, {});
    const resolve = (m: cloudwatch.Metric) =>
      stack.resolve(m.toMetricConfig().metricStat) as {
        namespace: string;
        metricName: string;
        dimensions: unknown[];
      };
    const throttles = resolve(c.metricThrottles());
    expect(throttles).toMatchObject({ namespace: 'AWS/Lambda', metricName: 'Throttles' });
    expect(throttles.dimensions).toEqual([
      expect.objectContaining({ name: 'FunctionName', value: expect.anything() }),
    ]);
    expect(resolve(c.consumer.metricIteratorAge())).toMatchObject({
      metricName: 'IteratorAge',
      statistic: 'Maximum',
      dimensions: throttles.dimensions,
    });
    expect(resolve(c.consumer.metricErrors())).toMatchObject({
      metricName: 'Errors',
      dimensions: throttles.dimensions,
    });
    const failed = resolve(c.metricFailedBatches());
    expect(failed).toMatchObject({ namespace: 'AWS/S3', metricName: 'PutRequests' });
    expect(failed.dimensions).toEqual(
      expect.arrayContaining([
        { name: 'BucketName', value: stack.resolve(c.failedRecordsBucket.bucketName) },
        { name: 'FilterId', value: 'FailedRecords' },
      ]),
    );
  });

  it.each<[Record<string, unknown>, RegExp]>([
    [{ batchSize: 0 }, /batchSize is 0.*Lambda reads 1-10000 records per Kinesis batch/s],
    [
      { maxBatchingWindow: Duration.seconds(301) },
      /maxBatchingWindow .*use Duration\.seconds\(300\) or less/s,
    ],
    [
      { retryAttempts: -1 },
      /retryAttempts is -1.*Retries must be bounded \(no -1\): a batch that keeps failing goes to the failed-records bucket/s,
    ],
    [
      { maxRecordAge: Duration.days(8) },
      /maxRecordAge .*60 seconds to 7 days \(no infinite age\)/s,
    ],
  ])('refuses %p with the same message as the other consumers', (extra, message) => {
    expect(() => build(testStack(), extra)).toThrow(message);
  });
});
