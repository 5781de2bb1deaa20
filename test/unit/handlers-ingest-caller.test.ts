/**
 * The ingest handler's wiring of provenance: the caller from API Gateway's request context, a
 * 403 without a verified principal, the `{requestId, eventIDs}` log line, and the settings it
 * reads from its environment.
 */
import '../fixtures/quiet-powertools';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import {
  callerOf,
  createIngestHandler,
  maxEventAgeMsOf,
  producerRulesOf,
  type IngestLogger,
} from '../../lambda/handlers/ingest';
import { MemoryRecordStream } from '../fixtures/memory-ports';
import { completeRecord, DEPLOYMENT_ACCOUNT, NOW_MS, PRODUCER_ACCOUNT } from '../fixtures/records';

const PRINCIPAL = `arn:aws:sts::${PRODUCER_ACCOUNT}:assumed-role/Producer/alice`;

/** The proxy event API Gateway passes for a SigV4-signed request by PRINCIPAL. */
function eventOf(body: string, identity: Record<string, unknown> = {}): APIGatewayProxyEvent {
  return {
    body,
    isBase64Encoded: false,
    requestContext: {
      requestId: 'gw-request-1',
      requestTimeEpoch: NOW_MS + 5,
      identity: {
        userArn: PRINCIPAL,
        accountId: PRODUCER_ACCOUNT,
        principalOrgId: 'o-a1b2c3d4e5',
        sourceIp: '203.0.113.7',
        ...identity,
      },
    },
  } as unknown as APIGatewayProxyEvent;
}

const bodyOf = (...records: Record<string, unknown>[]): string =>
  JSON.stringify({
    auditEvents: records.map((record, i) => ({ id: `e${i}`, eventData: JSON.stringify(record) })),
  });

function handlerWith(stream: MemoryRecordStream) {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const log: IngestLogger = {
    info: (message, fields) => void lines.push({ level: 'info', message, fields }),
    error: (message, fields) => void lines.push({ level: 'error', message, fields }),
  };
  const handler = createIngestHandler(
    {
      stream,
      accountId: DEPLOYMENT_ACCOUNT,
      checkRecipients: true,
      now: () => NOW_MS,
      newEventId: () => '00000000-0000-4000-8000-000000000001',
      sleep: async () => {},
    },
    log,
  );
  return { handler, lines };
}

describe('callerOf', () => {
  it('reads principal, account, organization, source IP, request id and receive time', () => {
    expect(callerOf(eventOf('{}'), NOW_MS)).toEqual({
      principalArn: PRINCIPAL,
      accountId: PRODUCER_ACCOUNT,
      principalOrgId: 'o-a1b2c3d4e5',
      sourceIp: '203.0.113.7',
      requestId: 'gw-request-1',
      receivedAtMs: NOW_MS + 5,
    });
  });

  it('leaves out an organization the request context does not have', () => {
    expect(callerOf(eventOf('{}', { principalOrgId: null }), NOW_MS)).not.toHaveProperty(
      'principalOrgId',
    );
  });

  it.each([
    ['userArn', 'requestContext.identity.userArn'],
    ['accountId', 'requestContext.identity.accountId'],
  ])('names the missing %s', (field, missing) => {
    expect(callerOf(eventOf('{}', { [field]: null }), NOW_MS)).toBe(missing);
  });
});

describe('the ingest handler', () => {
  it('stamps the request context into the stored record', async () => {
    // Arrange
    const stream = new MemoryRecordStream();
    const { handler } = handlerWith(stream);

    // Act
    const response = await handler(eventOf(bodyOf(completeRecord())));

    // Assert
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(stream.delivered[0]!.text)).toMatchObject({
      opentrailProvenance: {
        principalArn: PRINCIPAL,
        accountId: PRODUCER_ACCOUNT,
        principalOrgId: 'o-a1b2c3d4e5',
        sourceIPAddress: '203.0.113.7',
        requestId: 'gw-request-1',
        receivedAt: new Date(NOW_MS + 5).toISOString(),
      },
    });
  });

  it('refuses a request without a verified principal with 403, naming the field, and stores nothing', async () => {
    // Arrange
    const stream = new MemoryRecordStream();
    const { handler } = handlerWith(stream);

    // Act
    const response = await handler(eventOf(bodyOf(completeRecord()), { userArn: null }));

    // Assert
    expect(response.statusCode).toBe(403);
    expect(JSON.parse(response.body)).toEqual({
      __type: 'AccessDeniedException',
      message: expect.stringContaining('requestContext.identity.userArn') as unknown,
    });
    expect(stream.calls).toEqual([]);
  });

  it('logs the request id and the eventIDs it accepted', async () => {
    // Arrange
    const stream = new MemoryRecordStream();
    const { handler, lines } = handlerWith(stream);
    const body = bodyOf(
      completeRecord({ eventID: 'event-a' }),
      completeRecord({ eventID: 'event-b', recipientAccountId: '333333333333' }),
      completeRecord({ eventID: 'event-c' }),
    );

    // Act
    await handler(eventOf(body));

    // Assert
    expect(lines).toEqual([
      {
        level: 'info',
        message: 'PutAuditEvents',
        fields: { requestId: 'gw-request-1', eventIDs: ['event-a', 'event-c'], failed: 1 },
      },
    ]);
  });
});

describe('settings from the environment', () => {
  it.each<[string | undefined, number | undefined]>([
    [undefined, 7 * 86_400_000],
    ['', 7 * 86_400_000],
    ['3600', 3_600_000],
    ['0', undefined],
  ])('OPENTRAIL_MAX_EVENT_AGE_SECONDS=%p is a limit of %p ms', (value, ms) => {
    expect(maxEventAgeMsOf(value)).toBe(ms);
  });

  it('refuses a maxEventAge that is not whole seconds, naming the variable', () => {
    expect(() => maxEventAgeMsOf('7d')).toThrow(
      'OPENTRAIL_MAX_EVENT_AGE_SECONDS: "7d" must be a whole number of seconds',
    );
  });

  it('reads producer rules, and refuses invalid ones naming the variable and the rule', () => {
    expect(producerRulesOf('[{"caller":"*","eventSources":["*.example.com"]}]')).toEqual([
      { caller: '*', eventSources: ['*.example.com'] },
    ]);
    expect(producerRulesOf(undefined)).toEqual([]);
    expect(() => producerRulesOf('[{"caller":"bob"}]')).toThrow(
      /^OPENTRAIL_PRODUCER_RULES: producerRules\[0\]\.caller is "bob"/,
    );
    expect(() => producerRulesOf('[')).toThrow(/^OPENTRAIL_PRODUCER_RULES: not JSON/);
  });
});
