/**
 * `opentrail status --stack-name`: the stack's outputs from CloudFormation and the figures from
 * CloudWatch, each read with the metric and dimensions the deployment really emits
 * (aws-sdk-client-mock: no emulator serves these two APIs).
 */
import {
  CloudFormationClient,
  DescribeStacksCommand,
  type Stack,
} from '@aws-sdk/client-cloudformation';
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import type { Command } from 'commander';
import { register } from '../../cli/status';
import type { OutputStreams } from '../../cli/shared/output';
import { runCommand } from '../support/cli-command';

const cfn = mockClient(CloudFormationClient);
const cw = mockClient(CloudWatchClient);
const clients = {
  cloudFormation: new CloudFormationClient({}),
  cloudWatch: new CloudWatchClient({}),
};
const status = (args: string[]) =>
  runCommand(
    (program: Command, streams: OutputStreams) => register(program, streams, () => clients),
    'status',
    args,
  );

const STACK: Stack = {
  StackName: 'Audit',
  StackStatus: 'UPDATE_COMPLETE',
  CreationTime: new Date(0),
  Outputs: [
    { OutputKey: 'ApiUrl', OutputValue: 'https://example.execute-api.us-east-1.amazonaws.com/v1/' },
    { OutputKey: 'StreamName', OutputValue: 'Audit-EventStream-abc' },
  ],
};

beforeEach(() => {
  cfn.reset();
  cw.reset();
});

describe('opentrail status --stack-name', () => {
  it('prints the window sums and the newest lag of the stack', async () => {
    // Arrange
    cfn.on(DescribeStacksCommand, { StackName: 'Audit' }).resolves({ Stacks: [STACK] });
    cw.on(GetMetricDataCommand)
      .resolvesOnce({
        MetricDataResults: [
          { Id: 'eventsIn', Values: [1000, 200] },
          { Id: 'logFiles', Values: [4] },
          { Id: 'lag', Values: [3000, 90_000] },
        ],
        NextToken: 'page-2',
      })
      .resolvesOnce({
        MetricDataResults: [
          { Id: 'digests', Values: [2] },
          { Id: 'eventsIn', Values: [34] },
        ],
      });

    // Act
    const { stdout, exitCode } = await status(['--stack-name', 'Audit', '--minutes', '30']);

    // Assert
    expect(exitCode).toBe(0);
    expect(stdout).toBe('events in 1234, log files 4, digests 2, lag 3 s\n');
    const calls = cw.commandCalls(GetMetricDataCommand);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.args[0].input.NextToken).toBe('page-2');
    const input = calls[0]!.args[0].input;
    expect(input.EndTime!.getTime() - input.StartTime!.getTime()).toBe(30 * 60_000);
    const byId = Object.fromEntries(input.MetricDataQueries!.map((q) => [q.Id, q.MetricStat]));
    expect(byId.eventsIn).toEqual({
      Metric: {
        Namespace: 'AWS/Kinesis',
        MetricName: 'IncomingRecords',
        Dimensions: [{ Name: 'StreamName', Value: 'Audit-EventStream-abc' }],
      },
      Period: 1800,
      Stat: 'Sum',
    });
    // The EMF series of this deployment only (a second stack in the account has its own).
    expect(byId.logFiles!.Metric).toEqual({
      Namespace: 'opentrail',
      MetricName: 'LogFilesDelivered',
      Dimensions: [
        { Name: 'service', Value: 'packager' },
        { Name: 'deployment', Value: 'Audit' },
      ],
    });
    expect(byId.digests!.Metric).toEqual({
      Namespace: 'opentrail',
      MetricName: 'DigestsWritten',
      Dimensions: [
        { Name: 'service', Value: 'digest-signer' },
        { Name: 'deployment', Value: 'Audit' },
      ],
    });
    expect(byId.lag).toMatchObject({
      Metric: { MetricName: 'GetRecords.IteratorAgeMilliseconds' },
      Stat: 'Maximum',
    });
  });

  it('answers JSON with --output json, lag null when the stream has no datapoint', async () => {
    cfn.on(DescribeStacksCommand).resolves({ Stacks: [STACK] });
    cw.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    const { stdout, exitCode } = await status(['--stack-name', 'Audit', '--output', 'json']);
    expect(exitCode).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      eventsIn: 0,
      logFilesWritten: 0,
      digestsSigned: 0,
      lagSeconds: null,
    });
  });

  it('exits 1 and reads no metric when the stack has no StreamName output', async () => {
    cfn.on(DescribeStacksCommand).resolves({
      Stacks: [{ ...STACK, Outputs: [{ OutputKey: 'Other', OutputValue: 'x' }] }],
    });
    const { stdout, exitCode } = await status(['--stack-name', 'Audit']);
    expect(exitCode).toBe(1);
    expect(stdout).toBe('');
    expect(cw.commandCalls(GetMetricDataCommand)).toHaveLength(0);
  });

  it('refuses --endpoints together with --stack-name', async () => {
    const { exitCode } = await status(['--stack-name', 'Audit', '--endpoints', 'x.json']);
    expect(exitCode).toBe(1);
    expect(cfn.commandCalls(DescribeStacksCommand)).toHaveLength(0);
  });
});
