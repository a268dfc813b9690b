// A TCP proxy a test can cut, restore or slow down, to make a real server unreachable or
// slow for the code under test (a database outage, a Redis partition, a laggy network)
// without touching the server.
import net, { type AddressInfo } from 'node:net';

export interface TcpProxy {
  port: number;
  /** From now on, holds back every server→client chunk this long (one delay for all, so order holds). */
  delayReplies(ms: number): void;
  /** Drops every open connection and refuses new ones until `restore()`. */
  cut(): void;
  restore(): void;
  /** How many client connections it has let through so far. */
  accepted(): number;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let blocked = false;
  let delay = 0;
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (blocked) {
      client.destroy();
      return;
    }
    accepted += 1;
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (delay === 0) client.write(chunk);
      else setTimeout(() => client.write(chunk), delay);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const dropAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    port,
    delayReplies: (ms) => {
      delay = ms;
    },
    cut: () => {
      blocked = true;
      dropAll();
    },
    restore: () => {
      blocked = false;
    },
    accepted: () => accepted,
    close: async () => {
      blocked = true;
      dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
