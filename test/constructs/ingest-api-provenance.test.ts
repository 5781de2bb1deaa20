import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { ENV, type ProducerRule } from '../../lambda/core/config';
import { EventStream, IngestApi, type IngestApiOptions } from '../../lib';
import { testStack } from './support/app';

function ingestTemplate(options: IngestApiOptions = {}): Template {
  const stack = testStack();
  const events = new EventStream(stack, 'Events');
  new IngestApi(stack, 'Ingest', { ...options, stream: events.stream });
  return Template.fromStack(stack);
}

function ingestEnvironment(template: Template): Record<string, unknown> {
  const functions = template.findResources('AWS::Lambda::Function', {
    Properties: { Environment: { Variables: { [ENV.STREAM_NAME]: Match.anyValue() } } },
  });
  const [fn] = Object.values(functions);
  return (fn as { Properties: { Environment: { Variables: Record<string, unknown> } } }).Properties
    .Environment.Variables;
}

describe('IngestApi provenance settings', () => {
  it('limits event age to 7 days by default and passes no producer rules', () => {
    const variables = ingestEnvironment(ingestTemplate());

    expect(variables[ENV.MAX_EVENT_AGE_SECONDS]).toBe('604800');
    expect(variables[ENV.PRODUCER_RULES]).toBeUndefined();
  });

  it('passes maxEventAge in seconds, and 0 when the limit is turned off', () => {
    expect(
      ingestEnvironment(ingestTemplate({ maxEventAge: Duration.hours(36) }))[
        ENV.MAX_EVENT_AGE_SECONDS
      ],
    ).toBe('129600');
    expect(
      ingestEnvironment(ingestTemplate({ maxEventAge: Duration.seconds(0) }))[
        ENV.MAX_EVENT_AGE_SECONDS
      ],
    ).toBe('0');
  });

  it('passes the producer rules to the function as JSON', () => {
    const rules: ProducerRule[] = [
      { caller: '111122223333', eventSources: ['*.mycompany.com'] },
      { caller: 'o-a1b2c3d4e5', recipientAccountIds: ['444455556666'], allowReplay: true },
    ];

    const variables = ingestEnvironment(ingestTemplate({ producerRules: rules }));

    expect(JSON.parse(variables[ENV.PRODUCER_RULES] as string)).toEqual(rules);
  });

  it.each<[string, ProducerRule[], RegExp]>([
    [
      'a caller that is no account, organization, ARN or *',
      [{ caller: 'alice' }],
      /producerRules\[0\]\.caller is "alice"; it must be a 12-digit account id/,
    ],
    [
      'an empty eventSources list',
      [{ caller: '*', eventSources: [] }],
      /producerRules\[0\]\.eventSources must be a non-empty array/,
    ],
    [
      'a recipient that is not 12 digits',
      [{ caller: '111122223333' }, { caller: '*', recipientAccountIds: ['1234'] }],
      /producerRules\[1\]\.recipientAccountIds must be an array of 12-digit account ids/,
    ],
  ])('refuses producer rules with %s, naming the rule and the field', (_, rules, message) => {
    expect(() => ingestTemplate({ producerRules: rules })).toThrow(message);
  });

  it('refuses a maxEventAge of a fraction of a second', () => {
    expect(() => ingestTemplate({ maxEventAge: Duration.millis(1500) })).toThrow(/maxEventAge/);
  });
});
