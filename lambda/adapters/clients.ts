import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/** Where the AWS SDK clients point: real AWS when an endpoint is absent. */
export interface ClientOptions {
  readonly region: string;
  readonly s3Endpoint?: string;
  readonly dynamodbEndpoint?: string;
  readonly kinesisEndpoint?: string;
  /**
   * Fixed credentials, e.g. the embedded runtime's access key. Absent: the standard AWS
   * credential chain, resolved lazily on first use.
   */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /**
   * Test hook (the embedded runtime's OPENTRAIL_FAULT_PROXY_PORT): open every connection to
   * this port on 127.0.0.1 instead of the endpoint's, keeping the request and its Host header
   * unchanged, so a fault proxy there can route by Host and inject faults
   * (test/support/fault-proxy.ts). Plain HTTP endpoints only.
   */
  readonly connectViaPort?: number;
  /**
   * Connections the S3 client opens to one host at most (requests beyond wait for one).
   * @default 50 (the AWS SDK's)
   */
  readonly s3MaxSockets?: number;
}

export interface Clients {
  readonly s3: S3Client;
  readonly dynamodb: DynamoDBClient;
  readonly kinesis: KinesisClient;
}

/**
 * Placeholder credentials for dynalite and kinesalite (which check no signature) and for clients
 * that never sign. The embedded S3 accepts only its run's key (`Emulators.credentials`,
 * endpoints.json).
 */
export const EMULATOR_CREDENTIALS = { accessKeyId: 'opentrail', secretAccessKey: 'opentrail' };

/**
 * Builds the three clients. Against an endpoint override: path-style S3 addressing, checksums
 * only where an operation requires them (s3rver stores aws-chunked bodies verbatim), and
 * HTTP/1.1 for Kinesis (the SDK defaults to HTTP/2, which kinesalite does not speak).
 */
export function createClients(options: ClientOptions): Clients {
  const base = {
    region: options.region,
    ...(options.credentials ? { credentials: options.credentials } : {}),
  };
  const handler = (maxSockets?: number): NodeHttpHandler | undefined => {
    const port = options.connectViaPort;
    if (port === undefined) return undefined;
    const httpAgent = new Agent({ keepAlive: true, ...(maxSockets ? { maxSockets } : {}) });
    httpAgent.createConnection = () => connect({ host: '127.0.0.1', port });
    return new NodeHttpHandler({ httpAgent });
  };
  const via = (): { requestHandler?: NodeHttpHandler } => {
    const requestHandler = handler();
    return requestHandler ? { requestHandler } : {};
  };
  const s3Handler = (): { requestHandler?: NodeHttpHandler } => {
    const maxSockets = options.s3MaxSockets;
    const requestHandler =
      (options.s3Endpoint ? handler(maxSockets) : undefined) ??
      (maxSockets !== undefined
        ? new NodeHttpHandler({
            httpAgent: { keepAlive: true, maxSockets },
            httpsAgent: { keepAlive: true, maxSockets },
          })
        : undefined);
    return requestHandler ? { requestHandler } : {};
  };
  return {
    s3: new S3Client({
      ...base,
      ...(options.s3Endpoint
        ? {
            endpoint: options.s3Endpoint,
            forcePathStyle: true,
            requestChecksumCalculation: 'WHEN_REQUIRED' as const,
            responseChecksumValidation: 'WHEN_REQUIRED' as const,
          }
        : {}),
      ...s3Handler(),
    }),
    dynamodb: new DynamoDBClient({
      ...base,
      ...(options.dynamodbEndpoint ? { endpoint: options.dynamodbEndpoint, ...via() } : {}),
    }),
    kinesis: new KinesisClient({
      ...base,
      ...(options.kinesisEndpoint
        ? { endpoint: options.kinesisEndpoint, requestHandler: handler() ?? new NodeHttpHandler() }
        : {}),
    }),
  };
}

/** Closes the clients' sockets, so a process or a test can end. */
export function destroyClients(clients: Clients): void {
  clients.s3.destroy();
  clients.dynamodb.destroy();
  clients.kinesis.destroy();
}
