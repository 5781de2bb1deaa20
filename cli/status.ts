/**
 * `opentrail status`: one line — events in, log files written, digests signed, lag — for a
 * running embedded runtime (`--endpoints FILE`: its `GET /opentrail/status`) or a deployment
 * (`--stack-name NAME`: the stack's outputs from CloudFormation DescribeStacks, the figures from
 * CloudWatch GetMetricData over the last `--minutes`). IAM for a deployment:
 * `cloudformation:DescribeStacks` on the stack and `cloudwatch:GetMetricData` (docs/cli.md#opentrail-status).
 */
import { readFile } from 'node:fs/promises';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  CloudWatchClient,
  GetMetricDataCommand,
  type MetricDataQuery,
} from '@aws-sdk/client-cloudwatch';
import type { Command } from 'commander';
import { parseEndpoints } from '../lambda/core/contracts';
import { DEPLOYMENT_DIMENSION, METRICS_NAMESPACE, SERVICE_DIMENSION } from '../lambda/core/metrics';
import { formatHealthLine, type HealthStatus } from '../local/health';
import { integerInRange, outputOption, type OutputFormat } from './shared/options';
import { errorMessage, PROCESS_STREAMS, writeJson, type OutputStreams } from './shared/output';

/** The figures of a running embedded runtime, from its `GET /opentrail/status`. */
export async function runtimeHealth(api: string): Promise<HealthStatus> {
  const response = await fetch(`${api.replace(/\/$/, '')}/opentrail/status`, {
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok)
    throw new Error(`${api}: GET /opentrail/status answered HTTP ${response.status}: ${text}`);
  return JSON.parse(text) as HealthStatus;
}

export interface DeploymentClients {
  readonly cloudFormation: CloudFormationClient;
  readonly cloudWatch: CloudWatchClient;
}

/**
 * The figures of a deployment over the last `minutes`: events in = the stream's
 * `IncomingRecords`, log files = the packager's `LogFilesDelivered`, digests = the signer's
 * `DigestsWritten` (EMF, dimensions `service` and `deployment` = the stack name), lag = the
 * stream's newest `GetRecords.IteratorAgeMilliseconds` (maximum over its consumers).
 */
export async function deploymentHealth(
  clients: DeploymentClients,
  stackName: string,
  minutes: number,
  now: Date = new Date(),
): Promise<HealthStatus> {
  const described = await clients.cloudFormation.send(
    new DescribeStacksCommand({ StackName: stackName }),
  );
  const stack = described.Stacks?.[0];
  if (!stack) throw new Error(`stack ${stackName} not found`);
  const streamName = stack.Outputs?.find((o) => o.OutputKey === 'StreamName')?.OutputValue;
  if (!streamName) {
    throw new Error(
      `stack ${stackName} has no StreamName output: is it an opentrail stack (OpentrailStack)?`,
    );
  }
  const deployment = stack.StackName ?? stackName;
  const windowSeconds = minutes * 60;
  const sum = (id: string, namespace: string, metricName: string, dims: Record<string, string>) =>
    ({
      Id: id,
      MetricStat: {
        Metric: {
          Namespace: namespace,
          MetricName: metricName,
          Dimensions: Object.entries(dims).map(([Name, Value]) => ({ Name, Value })),
        },
        Period: windowSeconds,
        Stat: 'Sum',
      },
    }) satisfies MetricDataQuery;
  const emf = (service: string) => ({
    [SERVICE_DIMENSION]: service,
    [DEPLOYMENT_DIMENSION]: deployment,
  });
  const queries: MetricDataQuery[] = [
    sum('eventsIn', 'AWS/Kinesis', 'IncomingRecords', { StreamName: streamName }),
    sum('logFiles', METRICS_NAMESPACE, 'LogFilesDelivered', emf('packager')),
    sum('digests', METRICS_NAMESPACE, 'DigestsWritten', emf('digest-signer')),
    {
      Id: 'lag',
      MetricStat: {
        Metric: {
          Namespace: 'AWS/Kinesis',
          MetricName: 'GetRecords.IteratorAgeMilliseconds',
          Dimensions: [{ Name: 'StreamName', Value: streamName }],
        },
        Period: 60,
        Stat: 'Maximum',
      },
    },
  ];
  const values = new Map<string, number[]>();
  let nextToken: string | undefined;
  do {
    const page = await clients.cloudWatch.send(
      new GetMetricDataCommand({
        MetricDataQueries: queries,
        StartTime: new Date(now.getTime() - windowSeconds * 1000),
        EndTime: now,
        ScanBy: 'TimestampDescending',
        NextToken: nextToken,
      }),
    );
    for (const result of page.MetricDataResults ?? []) {
      const id = result.Id ?? '';
      values.set(id, [...(values.get(id) ?? []), ...(result.Values ?? [])]);
    }
    nextToken = page.NextToken;
  } while (nextToken);
  const total = (id: string) => (values.get(id) ?? []).reduce((a, b) => a + b, 0);
  // Newest first (TimestampDescending): the current lag, not the worst of the window.
  const latestLag = values.get('lag')?.[0];
  return {
    eventsIn: total('eventsIn'),
    logFilesWritten: total('logFiles'),
    digestsSigned: total('digests'),
    lagSeconds: latestLag === undefined ? null : latestLag / 1000,
  };
}

interface StatusFlags {
  endpoints?: string;
  stackName?: string;
  region?: string;
  minutes: number;
  output: OutputFormat;
}

export function register(
  program: Command,
  streams: OutputStreams = PROCESS_STREAMS,
  deploymentClients: (region: string | undefined) => DeploymentClients = (region) => ({
    cloudFormation: new CloudFormationClient(region ? { region } : {}),
    cloudWatch: new CloudWatchClient(region ? { region } : {}),
  }),
): void {
  program
    .command('status')
    .description(
      'one line of health: events in, log files written, digests signed, lag — of a running embedded runtime or a deployed stack',
    )
    .option(
      '--endpoints <file>',
      "a running embedded runtime's endpoints.json (default .opentrail/endpoints.json unless --stack-name)",
    )
    .option('--stack-name <name>', 'a deployed opentrail stack: its outputs and CloudWatch metrics')
    .option('--region <region>', "the stack's region (default: the AWS SDK's, e.g. AWS_REGION)")
    .option(
      '--minutes <n>',
      'with --stack-name: the window the counts cover, in minutes',
      integerInRange(1, 1440),
      60,
    )
    .addOption(outputOption())
    .addHelpText(
      'after',
      `
Embedded runtime: GET <api>/opentrail/status, counts since it started (opentrail local prints
the same line every minute). Deployment: CloudFormation DescribeStacks (the StreamName output),
then CloudWatch GetMetricData: events in = the stream's IncomingRecords, log files = the
packager's LogFilesDelivered and digests = the signer's DigestsWritten (namespace opentrail,
dimensions service and deployment = the stack name), summed over --minutes; lag = the stream's
newest GetRecords.IteratorAgeMilliseconds. IAM: cloudformation:DescribeStacks on the stack,
cloudwatch:GetMetricData (no resource-level permissions). Exit 1 when the figures cannot be read.`,
    )
    .action(async (flags: StatusFlags) => {
      try {
        if (flags.stackName !== undefined && flags.endpoints !== undefined) {
          throw new Error('give --endpoints or --stack-name, not both');
        }
        let status: HealthStatus;
        if (flags.stackName !== undefined) {
          status = await deploymentHealth(
            deploymentClients(flags.region),
            flags.stackName,
            flags.minutes,
          );
        } else {
          const file = flags.endpoints ?? '.opentrail/endpoints.json';
          const api = parseEndpoints(await readFile(file, 'utf8'), `--endpoints ${file}`).api;
          if (api === undefined) throw new Error(`--endpoints ${file}: field api is required`);
          status = await runtimeHealth(api);
        }
        if (flags.output === 'json') writeJson(streams, status);
        else streams.stdout.write(`${formatHealthLine(status)}\n`);
      } catch (error) {
        streams.stderr.write(`opentrail status: ${errorMessage(error)}\n`);
        process.exitCode = 1;
      }
    });
}
