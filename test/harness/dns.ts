// A real DNS server on 127.0.0.1 (UDP and TCP on one free port, dns2) serving a fixture zone, so that SPF, DKIM,
// DMARC and ARC are checked against real DNS answers. A "silent" server takes queries and never answers.
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import { createRequire } from 'node:module';

/** Owner name (lower case, no trailing dot) to its records. TXT values longer than 255 octets are split on the wire. */
export type Zone = Record<
  string,
  { TXT?: string[]; A?: string[]; AAAA?: string[]; MX?: { exchange: string; priority: number }[]; /** seconds, default 300 */ TTL?: number }
>;

export interface FixtureDns {
  /** `127.0.0.1:port`, what options.dns_servers takes. */
  address: string;
  port: number;
  /** Queries answered so far, `name TYPE` (for asserting what was, or was not, asked). */
  queries: string[];
  close(): Promise<void>;
}

interface Dns2Packet {
  header: { id: number; rcode: number; aa: number };
  questions: { name: string; type: number }[];
  answers: unknown[];
}
interface Dns2 {
  Packet: {
    TYPE: Record<string, number>;
    CLASS: { IN: number };
    createResponseFromRequest(req: Dns2Packet): Dns2Packet;
  };
  UDPServer: new (opts: { type: 'udp4' }) => dgram.Socket & {
    on(ev: 'request', fn: (req: Dns2Packet, send: (res: Dns2Packet) => void) => void): void;
  };
  TCPServer: new () => net.Server & { on(ev: 'request', fn: (req: Dns2Packet, send: (res: Dns2Packet) => void) => void): void };
}

const dns2 = createRequire(import.meta.url)('dns2') as Dns2;
const { Packet } = dns2;
const TYPE_NAME = new Map(Object.entries(Packet.TYPE).map(([k, v]) => [v, k]));

function split255(s: string): string[] {
  const b = Buffer.from(s, 'utf8');
  const parts: string[] = [];
  for (let i = 0; i < b.length; i += 255) parts.push(b.subarray(i, i + 255).toString('latin1'));
  return parts.length ? parts : [''];
}

function answer(zone: Zone, req: Dns2Packet, queries: string[]): Dns2Packet {
  const res = Packet.createResponseFromRequest(req);
  res.header.aa = 1;
  const q = req.questions[0];
  if (!q) return res;
  const name = q.name.toLowerCase().replace(/\.$/, '');
  const type = TYPE_NAME.get(q.type) ?? String(q.type);
  queries.push(`${name} ${type}`);
  const node = zone[name];
  if (!node) {
    res.header.rcode = 3; // NXDOMAIN
    return res;
  }
  const base = { name: q.name, class: Packet.CLASS.IN, ttl: node.TTL ?? 300 };
  if (type === 'TXT') for (const t of node.TXT ?? []) res.answers.push({ ...base, type: Packet.TYPE.TXT, data: split255(t) });
  if (type === 'A') for (const a of node.A ?? []) res.answers.push({ ...base, type: Packet.TYPE.A, address: a });
  if (type === 'AAAA') for (const a of node.AAAA ?? []) res.answers.push({ ...base, type: Packet.TYPE.AAAA, address: a });
  if (type === 'MX') for (const m of node.MX ?? []) res.answers.push({ ...base, type: Packet.TYPE.MX, ...m });
  return res;
}

async function bindUdp(port: number): Promise<dgram.Socket & { on: (...a: never[]) => unknown }> {
  const udp = new dns2.UDPServer({ type: 'udp4' });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, '127.0.0.1', () => {
      udp.off('error', reject);
      resolve();
    });
  });
  return udp as never;
}

/**
 * Starts the server. `zone` is the records, a path to a JSON file of them, or 'silent' for a server that reads
 * every query and never answers (a resolver that times out).
 */
export async function startFixtureDns(zone: Zone | string | 'silent'): Promise<FixtureDns> {
  const silent = zone === 'silent';
  const records: Zone = silent ? {} : typeof zone === 'string' ? (JSON.parse(fs.readFileSync(zone, 'utf8')) as Zone) : zone;
  const queries: string[] = [];
  // UDP first on a free port, then TCP on the same number; another process may hold that TCP port, so retry.
  for (let attempt = 0; ; attempt++) {
    const udp = await bindUdp(0);
    const port = (udp.address() as net.AddressInfo).port;
    const tcp = new dns2.TCPServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!ok) {
      udp.close();
      if (attempt > 20) throw new Error('no free port for the fixture DNS server');
      continue;
    }
    const handle = (req: Dns2Packet, send: (res: Dns2Packet) => void) => {
      if (silent) {
        queries.push(`${req.questions[0]?.name ?? '?'} (not answered)`);
        return;
      }
      send(answer(records, req, queries));
    };
    (udp as unknown as { on: (e: 'request', f: typeof handle) => void }).on('request', handle);
    tcp.on('request', handle);
    const conns = new Set<net.Socket>();
    tcp.on('connection', (c: net.Socket) => {
      conns.add(c);
      c.unref();
      c.on('error', () => undefined);
      c.on('close', () => conns.delete(c));
    });
    // The servers must not keep a test process alive after its last test.
    udp.unref();
    tcp.unref();
    return {
      address: `127.0.0.1:${port}`,
      port,
      queries,
      close: async () => {
        await new Promise<void>((r) => udp.close(() => r()));
        for (const c of conns) c.destroy();
        await new Promise<void>((r) => tcp.close(() => r()));
      },
    };
  }
}
