/**
 * An HTTP fault proxy between the embedded runtime's AWS SDK clients and its emulators
 * (OPENTRAIL_FAULT_PROXY_PORT, lambda/adapters/clients.ts `connectViaPort`): every connection
 * the clients open lands here with its Host header unchanged, and the proxy forwards it to that
 * host on 127.0.0.1 — unless a rule answers for the emulator: S3's 503 SlowDown, DynamoDB's
 * throttling errors, a reset connection (an emulator restarting), or a request held until the
 * test releases it (to widen a crash window). Nothing in the runtime is stubbed.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export type Service = 's3' | 'dynamodb' | 'kinesis';

/** One request as the proxy saw it. */
export interface SeenRequest {
  readonly service: Service;
  readonly method: string;
  readonly path: string;
  /** The operation: X-Amz-Target's name for DynamoDB and Kinesis, `METHOD` for S3. */
  readonly operation: string;
  readonly body: Buffer;
  readonly headers: IncomingMessage['headers'];
}

export type FaultAction =
  | { readonly kind: 'slowdown' }
  | {
      readonly kind: 'throttle';
      readonly code?: 'ThrottlingException' | 'ProvisionedThroughputExceededException';
    }
  | { readonly kind: 'reset' }
  | { readonly kind: 'hold' }
  | { readonly kind: 'delay'; readonly ms: number };

export interface FaultRule {
  readonly name: string;
  readonly service: Service;
  readonly when?: (request: SeenRequest) => boolean;
  readonly action: FaultAction;
}

export interface FaultProxy {
  readonly port: number;
  /** Adds a rule; the returned function removes it (and releases what it holds). */
  inject(rule: FaultRule): () => void;
  /** Requests each rule answered (or held) so far, by rule name. */
  readonly injected: Readonly<Record<string, number>>;
  /** Requests forwarded, by `service operation`. */
  readonly forwarded: Readonly<Record<string, number>>;
  /** Called with every request and the emulator's answer body, for counting. */
  observe(observer: (request: SeenRequest, status: number, body: Buffer) => void): void;
  close(): Promise<void>;
}

function serviceOf(request: IncomingMessage): { service: Service; operation: string } {
  const target = String(request.headers['x-amz-target'] ?? '');
  if (target.startsWith('DynamoDB_'))
    return { service: 'dynamodb', operation: target.split('.')[1] ?? target };
  if (target.startsWith('Kinesis_'))
    return { service: 'kinesis', operation: target.split('.')[1] ?? target };
  return { service: 's3', operation: request.method ?? 'GET' };
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function answer(response: ServerResponse, seen: SeenRequest, action: FaultAction): void {
  if (action.kind === 'slowdown') {
    response.writeHead(503, { 'Content-Type': 'application/xml' });
    response.end(
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
    );
    return;
  }
  if (action.kind === 'throttle') {
    const code =
      action.code ??
      (seen.service === 'dynamodb'
        ? 'ProvisionedThroughputExceededException'
        : 'ThrottlingException');
    const prefix = seen.service === 'dynamodb' ? 'com.amazonaws.dynamodb.v20120810#' : '';
    response.writeHead(400, { 'Content-Type': 'application/x-amz-json-1.0' });
    response.end(
      JSON.stringify({ __type: `${prefix}${code}`, message: 'Rate exceeded (fault proxy)' }),
    );
    return;
  }
  response.socket?.destroy();
}

/** Starts the proxy on 127.0.0.1, port 0. */
export async function startFaultProxy(): Promise<FaultProxy> {
  const rules = new Set<FaultRule>();
  const held = new Map<FaultRule, (() => void)[]>();
  const injected: Record<string, number> = {};
  const forwarded: Record<string, number> = {};
  const observers: ((request: SeenRequest, status: number, body: Buffer) => void)[] = [];

  const forward = (request: IncomingMessage, response: ServerResponse, seen: SeenRequest): void => {
    const [hostname, port] = String(request.headers.host ?? '').split(':');
    if (hostname !== '127.0.0.1' && hostname !== 'localhost') {
      response.writeHead(421).end(`fault proxy: refusing Host ${request.headers.host}`);
      return;
    }
    const key = `${seen.service} ${seen.operation}`;
    forwarded[key] = (forwarded[key] ?? 0) + 1;
    const upstream = httpRequest(
      {
        host: '127.0.0.1',
        port: Number(port ?? 80),
        method: request.method,
        path: request.url,
        headers: request.headers,
      },
      (reply) => {
        const chunks: Buffer[] = [];
        reply.on('data', (c: Buffer) => chunks.push(c));
        reply.on('end', () => {
          const body = Buffer.concat(chunks);
          for (const observer of observers) observer(seen, reply.statusCode ?? 0, body);
          if (!response.headersSent) {
            response.writeHead(reply.statusCode ?? 502, reply.headers);
            response.end(body);
          }
        });
        reply.on('error', () => response.socket?.destroy());
      },
    );
    upstream.on('error', () => response.socket?.destroy());
    upstream.end(seen.body);
  };

  const server: Server = createServer((request, response) => {
    void readBody(request).then((body) => {
      const { service, operation } = serviceOf(request);
      const seen: SeenRequest = {
        headers: request.headers,
        service,
        operation,
        method: request.method ?? 'GET',
        path: request.url ?? '/',
        body,
      };
      const rule = [...rules].find((r) => r.service === service && (r.when?.(seen) ?? true));
      if (!rule) return forward(request, response, seen);
      injected[rule.name] = (injected[rule.name] ?? 0) + 1;
      if (rule.action.kind === 'hold') {
        const list = held.get(rule) ?? [];
        list.push(() => forward(request, response, seen));
        held.set(rule, list);
        return;
      }
      if (rule.action.kind === 'delay') {
        setTimeout(() => forward(request, response, seen), rule.action.ms);
        return;
      }
      answer(response, seen, rule.action);
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    port,
    inject(rule) {
      rules.add(rule);
      return () => {
        rules.delete(rule);
        for (const release of held.get(rule) ?? []) release();
        held.delete(rule);
      };
    },
    injected,
    forwarded,
    observe(observer) {
      observers.push(observer);
    },
    close: () =>
      new Promise<void>((resolve) => {
        rules.clear();
        for (const list of held.values()) for (const release of list) release();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
