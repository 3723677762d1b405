// Logging a user in to the POP3 server behind the proxy: connect (plain, STLS or implicit TLS), check the
// greeting, tell it who the client is (XCLIENT, when offered), send Postern's own AUTH PLAIN and read the answer.
import type net from 'node:net';
import { loginUpstream, Unavailable, upgrade, type LineReader, type LoginResult, type UpstreamConfig } from '../upstream.ts';

export interface LoginRequest {
  user: Buffer;
  password: Buffer;
  /** The client's address and Postern's session id, for XCLIENT; null when not forwarded. */
  client: { ip: string; port: number; session: string } | null;
}

/** RFC 2449 §4: a command line is at most 255 octets, CRLF included. */
const MAX_COMMAND = 255;
const MAX_CAPABILITIES = 100;

async function status(r: LineReader): Promise<{ ok: boolean; text: string }> {
  const l = await r.line();
  const m = /^(\+OK|-ERR)(?: (.*))?$/i.exec(l);
  if (!m) throw new Unavailable('server_protocol', `unexpected line ${JSON.stringify(l.slice(0, 200))}`);
  return { ok: m[1].toUpperCase() === '+OK', text: m[2] ?? '' };
}

/** The server's CAPA list; empty when it does not know CAPA. */
async function capa(socket: net.Socket, r: LineReader): Promise<string[]> {
  socket.write('CAPA\r\n');
  if (!(await status(r)).ok) return [];
  const out: string[] = [];
  for (;;) {
    const l = await r.line();
    if (l === '.') return out;
    if (out.length >= MAX_CAPABILITIES) throw new Unavailable('server_protocol', 'CAPA list too long');
    out.push(l.replace(/^\.\./, '.'));
  }
}

/**
 * Logs in on a new server connection. The outcome comes from the server's answer only. The user name and password
 * travel base64-encoded in AUTH PLAIN whatever the client used, so that no byte of theirs (a space, or a CR LF from
 * a client's AUTH) can end the line early or start another command (the POP3 form of IM-12).
 */
export async function upstreamLogin(cfg: UpstreamConfig, req: LoginRequest, onWarning: (reason: string, detail: string) => void): Promise<LoginResult> {
  // On success, text is the server's +OK text and capabilities its CAPA list after login.
  return loginUpstream(cfg, async (c) => {
    let { socket, reader: r } = c;
    const greeting = await r.line();
    if (!/^\+OK\b/i.test(greeting)) throw new Unavailable('server_greeting', greeting.slice(0, 200));
    if (cfg.tls === 'starttls') {
      socket.write('STLS\r\n');
      const st = await status(r);
      if (!st.ok) throw new Unavailable('server_starttls', st.text.slice(0, 200));
      ({ socket, reader: r } = await upgrade(c, cfg, onWarning));
    }
    // Dovecot offers XCLIENT (`+OK [XCLIENT] …` in its greeting) only to login_trusted_networks; elsewhere the
    // command would count as a bad one.
    if (req.client && /^\+OK \[XCLIENT\]/i.test(greeting)) {
      const { ip, port, session } = req.client;
      socket.write(`XCLIENT ADDR=${ip} PORT=${port} SESSION=${session}\r\n`);
      const x = await status(r);
      if (!x.ok) onWarning('server_xclient', x.text.slice(0, 200));
    }
    const plain = Buffer.concat([Buffer.from([0]), req.user, Buffer.from([0]), req.password]).toString('base64');
    // RFC 5034 §4: an initial response that would make the line too long goes in a continuation instead.
    if (`AUTH PLAIN ${plain}\r\n`.length <= MAX_COMMAND) socket.write(`AUTH PLAIN ${plain}\r\n`);
    else {
      socket.write('AUTH PLAIN\r\n');
      const c = await r.line();
      if (!c.startsWith('+ ') && c !== '+') {
        const m = /^-ERR(?: (.*))?$/i.exec(c);
        if (!m) throw new Unavailable('server_protocol', `unexpected line ${JSON.stringify(c.slice(0, 200))}`);
        socket.destroy();
        return { kind: 'rejected', text: m[1] ?? '' };
      }
      socket.write(`${plain}\r\n`);
    }
    const res = await status(r);
    if (!res.ok) {
      socket.destroy();
      return { kind: 'rejected', text: res.text };
    }
    const capabilities = await capa(socket, r);
    const rest = r.detach();
    return { kind: 'ok', socket, text: res.text, capabilities, rest };
  });
}
