// The PROXY protocol parser (HAProxy's proxy-protocol.txt): v1 lines, v2 binary headers with TLVs, every way a
// header can be cut or wrong, every split point, and the header read off a real loopback socket.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseProxyHeader, ProxyHeaderError, readProxyHeader, sniffProxyHeader, V2_MAX, V2_SIGNATURE } from './proxy-protocol.ts';

const v1 = (s: string) => Buffer.from(s, 'latin1');

/** A v2 header: version/command, family/transport, the address block and TLVs. */
function v2(cmd: number, fam: number, addr: Buffer, tlvs: [number, Buffer][] = []): Buffer {
  const t = Buffer.concat(tlvs.map(([type, value]) => Buffer.concat([Buffer.from([type, value.length >> 8, value.length & 0xff]), value])));
  const len = Buffer.alloc(2);
  len.writeUInt16BE(addr.length + t.length);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20 | cmd, fam]), len, addr, t]);
}

function inet4(src: string, dst: string, sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src.split('.').map(Number)).copy(b, 0);
  Buffer.from(dst.split('.').map(Number)).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}

const inet6 = (): Buffer => {
  const b = Buffer.alloc(36);
  Buffer.from('20010db8000000000000000000000001', 'hex').copy(b, 0);
  Buffer.from('20010db8000000000000000000000002', 'hex').copy(b, 16);
  b.writeUInt16BE(51_000, 32);
  b.writeUInt16BE(993, 34);
  return b;
};

const error = (b: Buffer) => {
  try {
    parseProxyHeader(b);
  } catch (err) {
    expect(err).toBeInstanceOf(ProxyHeaderError);
    return (err as Error).message;
  }
  throw new Error('no error');
};

describe('version 1', () => {
  it('reads TCP4 and TCP6 lines, leaving what follows', () => {
    const b = v1('PROXY TCP4 192.0.2.7 198.51.100.1 56324 143\r\na LOGIN x y\r\n');
    const r = parseProxyHeader(b)!;
    expect(r.header).toEqual({ version: 1, command: 'proxy', family: 'tcp4', source: { address: '192.0.2.7', port: 56_324 }, destination: { address: '198.51.100.1', port: 143 }, tlvs: [] });
    expect(b.subarray(r.length).toString()).toBe('a LOGIN x y\r\n');
    const six = parseProxyHeader(v1('PROXY TCP6 2001:DB8:0:0::7 2001:db8::1 65535 0\r\n'))!.header;
    expect(six).toMatchObject({ family: 'tcp6', source: { address: '2001:db8::7', port: 65_535 }, destination: { address: '2001:db8::1', port: 0 } });
  });

  it('takes UNKNOWN with or without the rest of the line, and no address from it', () => {
    expect(parseProxyHeader(v1('PROXY UNKNOWN\r\n'))).toEqual({ header: expect.objectContaining({ family: 'unknown', source: null }), length: 15 });
    expect(parseProxyHeader(v1('PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n'))!.header.source).toBeNull();
  });

  it('refuses malformed lines, naming what is wrong', () => {
    expect(error(v1('PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n'))).toMatch(/is not "PROXY TCP4\|TCP6/);
    expect(error(v1('PROXY TCP5 192.0.2.7 198.51.100.1 1 2\r\n'))).toMatch(/is not "PROXY TCP4\|TCP6/);
    expect(error(v1('PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n'))).toMatch(/not an IPv4 address/);
    expect(error(v1('PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n'))).toMatch(/not an IPv6 address/);
    expect(error(v1('PROXY TCP4 192.0.2.7 198.51.100.1 65536 143\r\n'))).toMatch(/port "65536"/);
    expect(error(v1('PROXY TCP4 192.0.2.7 198.51.100.1 0143 143\r\n'))).toMatch(/port "0143"/);
    expect(error(v1('PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n'))).toMatch(/is not "PROXY/);
    expect(error(v1('PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n'))).toMatch(/not ended by CRLF/);
  });

  it('refuses a line longer than 107 octets, with or without its end', () => {
    expect(error(v1(`PROXY UNKNOWN ${'x'.repeat(100)}\r\n`))).toMatch(/longer than 107/);
    expect(error(v1(`PROXY UNKNOWN ${'x'.repeat(100)}`))).toMatch(/longer than 107/);
    expect(parseProxyHeader(v1(`PROXY UNKNOWN ${'x'.repeat(90)}`))).toBeNull();
  });
});

describe('version 2', () => {
  it('reads TCP over IPv4 with TLVs, and leaves what follows', () => {
    const h = v2(1, 0x11, inet4('203.0.113.9', '10.0.0.2', 40_000, 993), [
      [0x01, Buffer.from('imap')],
      [0xea, Buffer.from('vpce-0123')],
      [0x04, Buffer.alloc(0)],
    ]);
    const r = parseProxyHeader(Buffer.concat([h, Buffer.from([0x16, 0x03])]))!;
    expect(r.length).toBe(h.length);
    expect(r.header).toMatchObject({ version: 2, command: 'proxy', family: 'tcp4', source: { address: '203.0.113.9', port: 40_000 }, destination: { address: '10.0.0.2', port: 993 } });
    expect(r.header.tlvs.map((t) => [t.type, t.value.toString()])).toEqual([[1, 'imap'], [0xea, 'vpce-0123'], [4, '']]);
  });

  it('reads TCP over IPv6; LOCAL, AF_UNSPEC, AF_UNIX and UDP give no client address', () => {
    expect(parseProxyHeader(v2(1, 0x21, inet6()))!.header).toMatchObject({ family: 'tcp6', source: { address: '2001:db8::1', port: 51_000 }, destination: { address: '2001:db8::2', port: 993 } });
    expect(parseProxyHeader(v2(0, 0x11, inet4('203.0.113.9', '10.0.0.2', 1, 2)))!.header).toMatchObject({ command: 'local', source: null });
    expect(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0)))!.header).toMatchObject({ command: 'local', family: 'unknown', source: null });
    expect(parseProxyHeader(v2(1, 0x31, Buffer.alloc(216)))!.header).toMatchObject({ family: 'unknown', source: null });
    expect(parseProxyHeader(v2(1, 0x12, inet4('203.0.113.9', '10.0.0.2', 1, 2)))!.header.source).toBeNull();
  });

  it('refuses a bad version, command, family, short address block or cut TLV', () => {
    const ok = v2(1, 0x11, inet4('203.0.113.9', '10.0.0.2', 1, 2));
    const bad = (i: number, v: number) => Buffer.concat([ok.subarray(0, i), Buffer.from([v]), ok.subarray(i + 1)]);
    expect(error(bad(12, 0x11))).toMatch(/version 1/);
    expect(error(bad(12, 0x22))).toMatch(/unknown command 2/);
    expect(error(bad(13, 0x41))).toMatch(/unknown address family 4/);
    expect(error(bad(13, 0x13))).toMatch(/unknown transport 3/);
    expect(error(v2(1, 0x21, inet4('203.0.113.9', '10.0.0.2', 1, 2)))).toMatch(/address block of 12 octets, the family needs 36/);
    const cut = v2(1, 0x11, Buffer.concat([inet4('203.0.113.9', '10.0.0.2', 1, 2), Buffer.from([0x01, 0x00, 0x09, 0x61])]));
    expect(error(cut)).toMatch(/TLV 0x1 longer than the header/);
    expect(error(v2(1, 0x11, Buffer.concat([inet4('203.0.113.9', '10.0.0.2', 1, 2), Buffer.from([0x01, 0x00])])))).toMatch(/TLV cut short/);
  });

  it(`refuses a header over ${V2_MAX} octets from its length field, before reading it`, () => {
    const head = v2(1, 0x11, inet4('203.0.113.9', '10.0.0.2', 1, 2)).subarray(0, 16);
    head.writeUInt16BE(V2_MAX, 14);
    expect(error(head)).toMatch(/of 4112 octets, more than 4096/);
    const tlv: [number, Buffer][] = [[0xe0, Buffer.alloc(V2_MAX - 16 - 12 - 3)]];
    expect(parseProxyHeader(v2(1, 0x11, inet4('203.0.113.9', '10.0.0.2', 1, 2), tlv))!.length).toBe(V2_MAX);
  });
});

describe('garbage and splits', () => {
  it('refuses anything that is not a header at its first wrong octet', () => {
    expect(error(v1('a LOGIN x y\r\n'))).toMatch(/did not start with a PROXY protocol header/);
    expect(error(v1('PROXX'))).toMatch(/did not start/);
    expect(error(Buffer.from([0x16, 0x03, 0x01]))).toMatch(/did not start/);
    expect(error(Buffer.concat([V2_SIGNATURE.subarray(0, 5), Buffer.from([0x0a])]))).toMatch(/did not start/);
    expect(sniffProxyHeader(v1('PRO'))).toBe('more');
    expect(sniffProxyHeader(v1('PROXY '))).toBe('yes');
    expect(sniffProxyHeader(V2_SIGNATURE)).toBe('yes');
    expect(sniffProxyHeader(v1('* OK'))).toBe('no');
  });

  const headers = {
    'v1 TCP4': v1('PROXY TCP4 192.0.2.7 198.51.100.1 56324 143\r\n'),
    'v1 UNKNOWN': v1('PROXY UNKNOWN\r\n'),
    'v2 TCP6 with a TLV': v2(1, 0x21, inet6(), [[0x02, Buffer.from('mail.example.org')]]),
  };
  for (const [name, h] of Object.entries(headers)) {
    it(`${name}: every strict prefix wants more, the whole header is read the same`, () => {
      const whole = parseProxyHeader(h)!;
      for (let i = 0; i < h.length; i++) expect(parseProxyHeader(h.subarray(0, i)), `prefix of ${i}`).toBeNull();
      expect(whole.length).toBe(h.length);
    });

    it(`${name}: over a socket split at every octet, the header comes off and the rest stays for the session`, async () => {
      const rest = Buffer.from('a CAPABILITY\r\n');
      for (let i = 1; i < h.length + rest.length; i++) {
        const wire = Buffer.concat([h, rest]);
        const { header, after } = await overSocket([wire.subarray(0, i), wire.subarray(i)]);
        expect(header).toEqual(parseProxyHeader(h)!.header);
        expect(after).toBe(rest.toString());
      }
    }, 20_000);
  }

  it('a connection that closes mid-header, stays silent or sends garbage is refused', async () => {
    await expect(overSocket([v1('PROXY TCP4 192.0.2.7')])).rejects.toThrow(/closed before its PROXY protocol header was complete/);
    await expect(overSocket([v1('PROXY TCP4 192.0.2.7')], false)).rejects.toThrow(/no complete PROXY protocol header within 200 ms/);
    await expect(overSocket([v1('a LOGIN x y\r\n')], false)).rejects.toThrow(/did not start/);
  });
});

/** Writes `parts` to a loopback server that reads the header, then collects what the session would read. */
async function overSocket(parts: Buffer[], end = true): Promise<{ header: unknown; after: string }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  const got = new Promise<{ header: unknown; after: string }>((resolve, reject) => {
    server.once('connection', (s) => {
      readProxyHeader(s, 200).then((header) => {
        let after = '';
        s.resume();
        s.on('data', (d) => (after += d.toString()));
        s.on('end', () => resolve({ header, after }));
      }, (err) => {
        s.destroy();
        reject(err);
      });
    });
  });
  const c = net.connect(port, '127.0.0.1');
  c.setNoDelay(true);
  c.on('error', () => undefined);
  for (const p of parts) {
    await new Promise<void>((r) => c.write(p, () => r()));
    // A pause between the parts, so that they arrive as separate segments.
    await new Promise((r) => setImmediate(r));
  }
  if (end) c.end();
  try {
    return await got;
  } finally {
    c.destroy();
    server.close();
  }
}
