// The monitor's listeners behind a load balancer (monitor.proxy_protocol): over real sockets in front of a real
// Dovecot, a PROXY header from a trusted address gives the session its client address (events, live policies, the
// address Dovecot is told), on the IMAP port, the implicit-TLS port (v2 before the handshake) and POP3; a header
// from an untrusted address, or a bad one from a trusted address, closes the connection with a protocol error.
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { startTestPostern, until, type TestPostern } from '../harness/postern.ts';
import { missing } from '../harness/services.ts';
import { closedAfterEach, dovecotForSuite, storedEvents } from '../harness/proxy-suite.ts';
import { RawImap } from '../harness/imap-client.ts';
import { RawPop3 } from '../harness/pop3-client.ts';
import { addPolicy } from '../../src/policy/admin.ts';
import { V2_SIGNATURE } from '../../src/monitor/proxy-protocol.ts';

const why = await missing('dovecot');

const ALICE = 'alice@localhost';
const ALICE_PW = 'Correct-Horse-7';

const open = closedAfterEach();

/** A v2 PROXY header for TCP over IPv6 with one TLV, as a load balancer sends it. */
function v2Tcp6(src: string, sport: number): Buffer {
  const addr = Buffer.alloc(36);
  Buffer.from(expand6(src), 'hex').copy(addr, 0);
  Buffer.from(expand6('::1'), 'hex').copy(addr, 16);
  addr.writeUInt16BE(sport, 32);
  addr.writeUInt16BE(993, 34);
  const tlv = Buffer.from([0x02, 0x00, 0x04, ...Buffer.from('imap')]);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(addr.length + tlv.length);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x21]), len, addr, tlv]);
}

/** An IPv6 address written out as 32 hex digits. */
function expand6(a: string): string {
  const [head, tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

describe.skipIf(why)('PROXY protocol on the monitor listeners', () => {
  const dovecot = dovecotForSuite({ alice: ALICE_PW });

  async function postern(trusted: string[]): Promise<TestPostern & { imap: number; imaps: number; pop3: number }> {
    const dv = dovecot();
    const p = await startTestPostern(
      `[monitor.proxy_protocol]\ntrusted = ${JSON.stringify(trusted)}\nheader_timeout_s = 1\n` +
        `[monitor.imap]\nenabled = true\nfailure_delay_ms = 0\n[monitor.imap.upstream]\nhost = "127.0.0.1"\nport = ${dv.imapPort}\n` +
        `[monitor.pop3]\nenabled = true\nfailure_delay_ms = 0\n[monitor.pop3.upstream]\nhost = "127.0.0.1"\nport = ${dv.pop3Port}\n`,
    );
    open.push(p);
    const { imap, pop3 } = p.app.monitor;
    return Object.assign(p, { imap: imap!.port, imaps: imap!.tlsPort!, pop3: pop3!.port });
  }

  it('IMAP through a v1 header from trusted 127.0.0.1: the header\'s address in the events, the policies and Dovecot\'s log', async () => {
    const p = await postern(['127.0.0.1']);
    const c = await RawImap.connect(p.imap, { localAddress: '127.0.0.1' });
    open.push(c);
    c.write('PROXY TCP4 203.0.113.77 127.0.0.1 40123 143\r\n');
    expect(await c.until(/\r\n/)).toMatch(/^\* OK/);
    expect(await c.cmd('a', `LOGIN ${ALICE} wrong`)).toMatch(/^a NO/m);
    const mark = dovecot().log().length;
    expect(await c.cmd('b', `LOGIN ${ALICE} ${ALICE_PW}`)).toMatch(/^b OK/m);
    c.close();
    expect((await storedEvents(p, 'imap.connect'))[0]).toMatchObject({ ip: '203.0.113.77', data: { port: 40_123 } });
    expect((await storedEvents(p, 'auth.failed'))[0]).toMatchObject({ ip: '203.0.113.77', data: { user: ALICE, protocol: 'imap' } });
    expect((await storedEvents(p, 'auth.succeeded'))[0]).toMatchObject({ ip: '203.0.113.77', data: { user: ALICE, protocol: 'imap' } });
    // Postern forwards the client's address to Dovecot (ID x-originating-ip), which logs it with the login.
    await until(() => dovecot().log().slice(mark).includes('203.0.113.77'), 5_000, "the client's address in Dovecot's log");

    // A block policy on the header's address refuses the connection, though the socket comes from 127.0.0.1.
    await addPolicy(p.app.store.db, { target_kind: 'ip', target: '203.0.113.77', action: 'block', reason: 'test block', ttl_s: 600 });
    await p.app.policies.load();
    const d = await RawImap.connect(p.imap);
    open.push(d);
    d.write('PROXY TCP4 203.0.113.77 127.0.0.1 40124 143\r\n');
    expect(await d.until(/\r\n/)).toMatch(/^\* BYE/);
    const e = await RawImap.connect(p.imap);
    open.push(e);
    e.write('PROXY TCP4 203.0.113.78 127.0.0.1 40125 143\r\n');
    expect(await e.until(/\r\n/)).toMatch(/^\* OK/);
    expect((await storedEvents(p, 'imap.connect.refused')).map((x) => x.ip)).toEqual(['203.0.113.77']);
  });

  it('the implicit-TLS port: a v2 header with a TLV before the handshake; POP3 with a v1 header', async () => {
    const p = await postern(['127.0.0.0/8']);
    const raw = net.connect(p.imaps, '127.0.0.1');
    await new Promise((r) => raw.once('connect', r));
    // The header and the ClientHello in one write: the handshake must start from the octets after the header.
    let header: Buffer | null = v2Tcp6('2001:db8::42', 50_505);
    const bridge = new Duplex({
      write(chunk: Buffer, _enc, cb) {
        raw.write(header ? Buffer.concat([header, chunk]) : chunk, cb);
        header = null;
      },
      read() {},
    });
    raw.on('data', (d) => bridge.push(d));
    raw.on('end', () => bridge.push(null));
    const t = tls.connect({ socket: bridge, rejectUnauthorized: false });
    const greeting = await new Promise<string>((resolve, reject) => {
      t.once('data', (d) => resolve(d.toString()));
      t.once('error', reject);
    });
    expect(greeting).toMatch(/^\* OK/);
    t.write(`a LOGIN ${ALICE} ${ALICE_PW}\r\n`);
    await until(async () => (await storedEvents(p, 'auth.succeeded')).length === 1, 5_000, 'the login');
    t.destroy();
    raw.destroy();
    const [ok] = await storedEvents(p, 'auth.succeeded');
    expect(ok).toMatchObject({ ip: '2001:db8::42', data: { user: ALICE, tls: { version: expect.stringMatching(/^TLS/) } } });

    const c = await RawPop3.connect(p.pop3);
    open.push(c);
    c.write('PROXY TCP4 198.51.100.9 127.0.0.1 61000 110\r\n');
    expect(await c.line()).toMatch(/^\+OK/);
    expect(await c.cmd(`USER ${ALICE}`)).toMatch(/^\+OK/);
    expect(await c.cmd('PASS wrong')).toMatch(/^-ERR/);
    const failed = await storedEvents(p, 'auth.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ ip: '198.51.100.9', data: { protocol: 'pop3' } });
  });

  it('a header from an untrusted address is a protocol error; a trusted balancer\'s bad or missing header closes the connection', async () => {
    const p = await postern(['127.0.0.2']);
    // From 127.0.0.1, not trusted: greeted as any client, then closed at the header.
    const c = await RawImap.connect(p.imap, { localAddress: '127.0.0.1' });
    open.push(c);
    expect(await c.until(/\r\n/)).toMatch(/^\* OK/);
    c.write('PROXY TCP4 203.0.113.1 127.0.0.1 1 143\r\n');
    await until(() => c.closed, 3_000, 'the close');
    // The same on the implicit-TLS port, before any handshake.
    const raw = net.connect(p.imaps, '127.0.0.1');
    raw.on('error', () => undefined);
    await new Promise((r) => raw.once('connect', r));
    raw.write(v2Tcp6('2001:db8::1', 1));
    await new Promise((r) => raw.once('close', r));
    // From the trusted 127.0.0.2: garbage instead of a header, and silence, both closed.
    const g = await RawImap.connect(p.imap, { localAddress: '127.0.0.2' });
    open.push(g);
    g.write('a LOGIN alice secret\r\n');
    await until(() => g.closed, 3_000, 'the close of garbage');
    const s = await RawImap.connect(p.imap, { localAddress: '127.0.0.2' });
    open.push(s);
    await until(() => s.closed, 3_000, 'the header timeout');
    expect(g.transcript + s.transcript).toBe('');
    const errors = await storedEvents(p, 'imap.protocol_error');
    expect(errors.map((e) => [e.ip, e.data.kind, String(e.data.detail)])).toEqual([
      ['127.0.0.1', 'proxy_header', 'a PROXY protocol header from an address not in monitor.proxy_protocol.trusted'],
      ['127.0.0.1', 'proxy_header', 'a PROXY protocol header from an address not in monitor.proxy_protocol.trusted'],
      ['127.0.0.2', 'proxy_header', 'the connection did not start with a PROXY protocol header'],
      ['127.0.0.2', 'proxy_header', 'no complete PROXY protocol header within 1000 ms'],
    ]);
    expect(await storedEvents(p, 'auth.failed')).toHaveLength(0);
  });
});
