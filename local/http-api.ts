/**
 * The embedded runtime's API: plain HTTP on 127.0.0.1, each request turned into the API
 * Gateway proxy event the deployed handler receives. Requests are accepted whatever their
 * SigV4 signature (the server binds to loopback only), so stock AWS clients work.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';

/** API Gateway's own payload limit. */
const MAX_REQUEST_BYTES = 10 * 1024 * 1024;

export type ProxyHandler = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

/** Routes: `METHOD /path` → handler (the API Gateway resource). */
export type Routes = Readonly<Record<string, ProxyHandler>>;

function send(
  response: ServerResponse,
  statusCode: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  response.writeHead(statusCode, { 'Content-Type': 'application/json', ...headers });
  response.end(body);
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ __type: code, message });
}

/** The body, or undefined past API Gateway's limit (the rest is left unread). */
function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        request.off('data', onData);
        request.pause();
        resolve(undefined);
      } else chunks.push(chunk);
    };
    request.on('data', onData);
    request.once('end', () => resolve(Buffer.concat(chunks)));
    request.once('error', reject);
  });
}

function toProxyEvent(
  request: IncomingMessage,
  url: URL,
  resource: string,
  body: Buffer,
): APIGatewayProxyEvent {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (typeof value === 'string') headers[name] = value;
    else if (Array.isArray(value)) headers[name] = value.join(',');
  }
  const query = Object.fromEntries(url.searchParams.entries());
  const now = new Date();
  return {
    resource,
    path: url.pathname,
    httpMethod: request.method ?? 'GET',
    headers,
    multiValueHeaders: {},
    queryStringParameters: Object.keys(query).length > 0 ? query : null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: body.toString('utf8'),
    isBase64Encoded: false,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      authorizer: null,
      protocol: `HTTP/${request.httpVersion}`,
      httpMethod: request.method ?? 'GET',
      path: url.pathname,
      stage: 'local',
      requestId: randomUUID(),
      requestTimeEpoch: now.getTime(),
      resourceId: 'local',
      resourcePath: resource,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        user: null,
        userAgent: headers['user-agent'] ?? null,
        userArn: null,
      },
    },
  };
}

/** Starts the API on 127.0.0.1 (port 0: any free port). */
export async function startHttpApi(
  routes: Routes,
  port: number,
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      const path = url.pathname.replace(/\/+$/, '') || '/';
      const handler = routes[`${request.method ?? 'GET'} ${path}`];
      if (!handler) {
        send(
          response,
          404,
          errorBody(
            'UnknownOperationException',
            `${request.method ?? ''} ${url.pathname}: no such route; routes are ${Object.keys(routes).join(', ')}`,
          ),
        );
        return;
      }
      const body = await readBody(request);
      if (body === undefined) {
        // The rest of the body is never read: the connection cannot carry another request, so
        // say so (a client would otherwise reuse it and see its next request reset), then close.
        response.once('finish', () => request.socket.destroy());
        send(
          response,
          413,
          errorBody(
            'RequestTooLargeException',
            `body: over API Gateway's ${MAX_REQUEST_BYTES}-byte limit`,
          ),
          { Connection: 'close' },
        );
        return;
      }
      const result = await handler(toProxyEvent(request, url, path, body));
      send(
        response,
        result.statusCode,
        result.body,
        Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)])),
      );
    })().catch((error: unknown) => {
      if (!response.headersSent)
        send(response, 500, errorBody('InternalFailure', (error as Error).message));
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
