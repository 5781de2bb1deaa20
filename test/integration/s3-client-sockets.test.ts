/**
 * createClients' `s3MaxSockets` (validate-logs opens one connection per read in flight): with
 * more requests at once than the AWS SDK's default of 50 connections, each gets its own.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createClients, destroyClients } from '../../lambda/adapters/clients';

const REQUESTS = 60;

/** An S3 stand-in that holds every GET until `REQUESTS` are open at once (or a second passed). */
async function holdingServer(): Promise<{ server: Server; endpoint: string; peak: () => number }> {
  const open: ServerResponse[] = [];
  let peak = 0;
  let timer: NodeJS.Timeout | undefined;
  const release = (): void => {
    clearTimeout(timer);
    for (const response of open.splice(0)) response.end('object');
  };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    open.push(response);
    peak = Math.max(peak, open.length);
    clearTimeout(timer);
    // Only so that a client capped below REQUESTS still finishes: the peak is what is checked.
    if (open.length >= REQUESTS) release();
    else timer = setTimeout(release, 1000);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, endpoint: `http://127.0.0.1:${port}`, peak: () => peak };
}

async function peakWith(s3MaxSockets?: number): Promise<number> {
  const { server, endpoint, peak } = await holdingServer();
  const clients = createClients({
    region: 'us-east-1',
    s3Endpoint: endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    ...(s3MaxSockets !== undefined ? { s3MaxSockets } : {}),
  });
  try {
    await Promise.all(
      Array.from({ length: REQUESTS }, (_, i) =>
        clients.s3
          .send(new GetObjectCommand({ Bucket: 'bucket', Key: `key-${i}` }))
          .then((response) => response.Body!.transformToString()),
      ),
    );
    return peak();
  } finally {
    destroyClients(clients);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('createClients s3MaxSockets', () => {
  it('opens a connection for each of 60 requests at once with s3MaxSockets 64', async () => {
    expect(await peakWith(64)).toBe(REQUESTS);
  });

  it("keeps the AWS SDK's 50 connections without it", async () => {
    expect(await peakWith()).toBe(50);
  });
});
