// Logging a user in to the submission server behind the proxy: connect (plain, STARTTLS or implicit TLS), check
// the greeting, EHLO, tell it who the client is (XCLIENT, when offered), send Postern's own AUTH PLAIN and read the
// answer.
import { loginUpstream, Unavailable, upgrade, type LineReader, type LoginResult, type UpstreamConfig } from '../upstream.ts';

export interface LoginRequest {
  user: Buffer;
  password: Buffer;
  /** Postern's name in EHLO. */
  hostname: string;
  /** The client's address and Postern's session id, for XCLIENT; null when not forwarded. */
  client: { ip: string; port: number; session: string } | null;
}

/** RFC 4954 §4: an AUTH line may be 12288 octets; Postern keeps to a short one and uses a continuation beyond. */
const MAX_AUTH_LINE = 500;
const MAX_REPLY_LINES = 100;

/** One whole reply (RFC 5321 §4.2.1). */
async function reply(r: LineReader): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  for (;;) {
    const l = await r.line();
    const m = /^([2-5][0-9]{2})([ -]|$)(.*)$/.exec(l);
    if (!m) throw new Unavailable('server_protocol', `unexpected line ${JSON.stringify(l.slice(0, 200))}`);
    if (lines.length >= MAX_REPLY_LINES) throw new Unavailable('server_protocol', 'reply too long');
    lines.push(m[3]);
    if (m[2] !== '-') return { code: Number(m[1]), lines };
  }
}

/** EHLO; the server's keywords (the lines after its greeting line). */
async function ehlo(socket: { write(s: string): unknown }, r: LineReader, hostname: string): Promise<string[]> {
  socket.write(`EHLO ${hostname}\r\n`);
  const res = await reply(r);
  if (res.code !== 250) throw new Unavailable('server_ehlo', `${res.code} ${res.lines.join(' ')}`.slice(0, 200));
  return res.lines.slice(1);
}

const xtext = (s: string) => s.replace(/[^\x21-\x2a\x2c-\x3c\x3e-\x7e]/g, (c) => `+${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);

/**
 * Logs in on a new server connection. The outcome comes from the server's answer only. The user name and password
 * travel base64-encoded in AUTH PLAIN whatever the client used, so that no byte of theirs can end the line early.
 * On success, text is the server's 235 text and capabilities its EHLO keywords.
 */
export async function upstreamLogin(cfg: UpstreamConfig, req: LoginRequest, onWarning: (reason: string, detail: string) => void): Promise<LoginResult> {
  return loginUpstream(cfg, async (c) => {
    let { socket, reader: r } = c;
    const greeting = await reply(r);
    if (greeting.code !== 220) throw new Unavailable('server_greeting', `${greeting.code} ${greeting.lines.join(' ')}`.slice(0, 200));
    let keywords = await ehlo(socket, r, req.hostname);
    const has = (k: string) => keywords.some((w) => w.toUpperCase().split(' ')[0] === k);
    if (cfg.tls === 'starttls') {
      if (!has('STARTTLS')) throw new Unavailable('server_starttls', 'STARTTLS not offered');
      socket.write('STARTTLS\r\n');
      const st = await reply(r);
      if (st.code !== 220) throw new Unavailable('server_starttls', `${st.code} ${st.lines.join(' ')}`.slice(0, 200));
      ({ socket, reader: r } = await upgrade(c, cfg, onWarning));
      keywords = await ehlo(socket, r, req.hostname);
    }
    // Dovecot offers XCLIENT only to login_trusted_networks, Postfix to smtpd_authorized_xclient_hosts; after it
    // the server greets again, as to a new client (Postfix's XCLIENT_README).
    if (req.client && has('XCLIENT')) {
      const { ip, port, session } = req.client;
      const offered = keywords.find((w) => w.toUpperCase().startsWith('XCLIENT'))!.toUpperCase().split(' ').slice(1);
      const attrs = [`ADDR=${ip.includes(':') ? `IPV6:${ip}` : ip}`, `PORT=${port}`, ...(offered.includes('SESSION') ? [`SESSION=${xtext(session)}`] : [])];
      socket.write(`XCLIENT ${attrs.join(' ')}\r\n`);
      const x = await reply(r);
      if (x.code === 220) keywords = await ehlo(socket, r, req.hostname);
      else onWarning('server_xclient', `${x.code} ${x.lines.join(' ')}`.slice(0, 200));
    }
    const auth = keywords.find((w) => /^AUTH[ =]/i.test(w));
    if (!auth || !/\bPLAIN\b/i.test(auth)) throw new Unavailable('server_auth', 'AUTH PLAIN not offered');
    const plain = Buffer.concat([Buffer.from([0]), req.user, Buffer.from([0]), req.password]).toString('base64');
    if (`AUTH PLAIN ${plain}\r\n`.length <= MAX_AUTH_LINE) socket.write(`AUTH PLAIN ${plain}\r\n`);
    else {
      socket.write('AUTH PLAIN\r\n');
      const go = await reply(r);
      if (go.code !== 334) {
        socket.destroy();
        return { kind: 'rejected', text: `${go.code} ${go.lines.join(' ')}` };
      }
      socket.write(`${plain}\r\n`);
    }
    const res = await reply(r);
    if (res.code !== 235) {
      socket.destroy();
      return { kind: 'rejected', text: `${res.code} ${res.lines.join(' ')}` };
    }
    const rest = r.detach();
    return { kind: 'ok', socket, text: `${res.code} ${res.lines.join(' ')}`, capabilities: keywords, rest };
  });
}
