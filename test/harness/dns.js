import fs from 'node:fs';
import { createRequire } from 'node:module';
const dns2 = createRequire(import.meta.url)('dns2');
const { Packet } = dns2;
const TYPE_NAME = new Map(Object.entries(Packet.TYPE).map(([k, v]) => [v, k]));
function split255(s) {
    const b = Buffer.from(s, 'utf8');
    const parts = [];
    for (let i = 0; i < b.length; i += 255)
        parts.push(b.subarray(i, i + 255).toString('latin1'));
    return parts.length ? parts : [''];
}
function answer(zone, req, queries) {
    const res = Packet.createResponseFromRequest(req);
    res.header.aa = 1;
    const q = req.questions[0];
    if (!q)
        return res;
    const name = q.name.toLowerCase().replace(/\.$/, '');
    const type = TYPE_NAME.get(q.type) ?? String(q.type);
    queries.push(`${name} ${type}`);
    const node = zone[name];
    if (!node) {
        res.header.rcode = 3; // NXDOMAIN
        return res;
    }
    const base = { name: q.name, class: Packet.CLASS.IN, ttl: node.TTL ?? 300 };
    if (type === 'TXT')
        for (const t of node.TXT ?? [])
            res.answers.push({ ...base, type: Packet.TYPE.TXT, data: split255(t) });
    if (type === 'A')
        for (const a of node.A ?? [])
            res.answers.push({ ...base, type: Packet.TYPE.A, address: a });
    if (type === 'AAAA')
        for (const a of node.AAAA ?? [])
            res.answers.push({ ...base, type: Packet.TYPE.AAAA, address: a });
    if (type === 'MX')
        for (const m of node.MX ?? [])
            res.answers.push({ ...base, type: Packet.TYPE.MX, ...m });
    return res;
}
async function bindUdp(port) {
    const udp = new dns2.UDPServer({ type: 'udp4' });
    await new Promise((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, '127.0.0.1', () => {
            udp.off('error', reject);
            resolve();
        });
    });
    return udp;
}
/**
 * Starts the server. `zone` is the records, a path to a JSON file of them, or 'silent' for a server that reads
 * every query and never answers (a resolver that times out).
 */
export async function startFixtureDns(zone) {
    const silent = zone === 'silent';
    const records = silent ? {} : typeof zone === 'string' ? JSON.parse(fs.readFileSync(zone, 'utf8')) : zone;
    const queries = [];
    // UDP first on a free port, then TCP on the same number; another process may hold that TCP port, so retry.
    for (let attempt = 0;; attempt++) {
        const udp = await bindUdp(0);
        const port = udp.address().port;
        const tcp = new dns2.TCPServer();
        const ok = await new Promise((resolve) => {
            tcp.once('error', () => resolve(false));
            tcp.listen(port, '127.0.0.1', () => resolve(true));
        });
        if (!ok) {
            udp.close();
            if (attempt > 20)
                throw new Error('no free port for the fixture DNS server');
            continue;
        }
        const handle = (req, send) => {
            if (silent) {
                queries.push(`${req.questions[0]?.name ?? '?'} (not answered)`);
                return;
            }
            send(answer(records, req, queries));
        };
        udp.on('request', handle);
        tcp.on('request', handle);
        const conns = new Set();
        tcp.on('connection', (c) => {
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
                await new Promise((r) => udp.close(() => r()));
                for (const c of conns)
                    c.destroy();
                await new Promise((r) => tcp.close(() => r()));
            },
        };
    }
}
//# sourceMappingURL=dns.js.map