/**
 * A TCP proxy on 127.0.0.1 (port 0) that holds every chunk a client sends for `delayMs` before
 * passing it on, in order, to `target`: a request (one chunk for a GET) then reaches the server
 * `delayMs` late, as from a region away. Answers flow back undelayed.
 *
 * Bytes pass unchanged, so clients reach it through `connectViaPort`
 * (lambda/adapters/clients.ts) with the server's own endpoint: the Host header, and the SigV4
 * signature over it, stay the server's, which the embedded emulators' Host check
 * (local/http-guard.ts) requires. An HTTP proxy would have to rewrite Host and break both.
 */
import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpDelayProxy {
  readonly port: number;
  close(): Promise<void>;
}

export async function startTcpDelayProxy(
  target: { readonly host: string; readonly port: number },
  delayMs: number,
): Promise<TcpDelayProxy> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      setTimeout(() => upstream.write(chunk), delayMs);
    });
    client.on('end', () => setTimeout(() => upstream.end(), delayMs));
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
