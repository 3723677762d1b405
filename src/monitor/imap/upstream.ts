// Logging a user in to the IMAP server behind the proxy: connect (plain, STARTTLS or implicit TLS), check the
// greeting, tell it who the client is (ID), send Postern's own LOGIN and read the tagged answer.
import type net from 'node:net';
import { loginUpstream, Unavailable, upgrade, type LineReader, type LoginResult, type UpstreamConfig } from '../upstream.ts';
import { astring, capabilitiesIn, idList } from './wire.ts';

export interface LoginRequest {
  user: Buffer;
  password: Buffer;
  /** Fields for the server's ID: the client's own (x-* removed) and, when configured, the client's address. */
  id: [string, string][];
}

/** Reads to the tagged reply of `tag`, collecting capabilities seen on the way. */
async function tagged(r: LineReader, tag: string, caps?: string[]): Promise<{ status: string; text: string }> {
  for (;;) {
    const l = await r.line();
    if (l.startsWith('* ')) {
      if (/^\* BYE/i.test(l)) throw new Unavailable('server_bye', l.slice(0, 200));
      const c = capabilitiesIn(l);
      if (c && caps) caps.splice(0, caps.length, ...c);
      continue;
    }
    if (l.startsWith('+')) return { status: '+', text: l.slice(1).trim() };
    const m = /^(\S+) (OK|NO|BAD)(?: (.*))?$/i.exec(l);
    if (!m || m[1] !== tag) throw new Unavailable('server_protocol', `unexpected line ${JSON.stringify(l.slice(0, 200))}`);
    const c = capabilitiesIn(l);
    if (c && caps) caps.splice(0, caps.length, ...c);
    return { status: m[2].toUpperCase(), text: m[3] ?? '' };
  }
}

/**
 * Logs in on a new server connection. The outcome comes from the server's tagged reply only; a server that greets
 * with PREAUTH (a session nobody authenticated, or a STARTTLS stripper's trick, IM-10), refuses STARTTLS, or
 * does not take LITERAL+ (Postern forwards every literal non-synchronising) is not used.
 */
export async function upstreamLogin(cfg: UpstreamConfig, req: LoginRequest, onWarning: (reason: string, detail: string) => void): Promise<LoginResult> {
  // On success, text is the tagged OK's text after `OK ` (a [CAPABILITY] code in it is rewritten before the client
  // sees it) and rest the bytes after the tagged OK.
  return loginUpstream(cfg, async (c) => {
    let { socket, reader: r } = c;
    const greeting = await r.line();
    if (!/^\* OK\b/i.test(greeting)) throw new Unavailable(/^\* PREAUTH/i.test(greeting) ? 'server_preauth' : 'server_greeting', greeting.slice(0, 200));
    let caps = capabilitiesIn(greeting) ?? [];
    if (cfg.tls === 'starttls') {
      socket.write('P0 STARTTLS\r\n');
      const st = await tagged(r, 'P0');
      if (st.status !== 'OK') throw new Unavailable('server_starttls', st.text.slice(0, 200));
      ({ socket, reader: r } = await upgrade(c, cfg, onWarning));
      caps = [];
      socket.write('P1 CAPABILITY\r\n');
      await tagged(r, 'P1', caps);
    }
    const literalPlus = caps.some((c) => c.toUpperCase() === 'LITERAL+');
    if (req.id.length) {
      socket.write(`P2 ID ${idList(req.id)}\r\n`);
      await tagged(r, 'P2');
    }
    // LOGIN with each value quoted or as a literal, never the client's bytes (IM-12).
    const user = astring(req.user, literalPlus);
    const pass = astring(req.password, literalPlus);
    socket.write(Buffer.concat([Buffer.from('P3 LOGIN '), user.text.subarray(0, user.sync ? user.text.indexOf(0x0a) + 1 : undefined)]));
    if (user.sync) {
      await expectContinue(r);
      socket.write(user.text.subarray(user.text.indexOf(0x0a) + 1));
    }
    socket.write(Buffer.concat([Buffer.from(' '), pass.text.subarray(0, pass.sync ? pass.text.indexOf(0x0a) + 1 : undefined)]));
    if (pass.sync) {
      await expectContinue(r);
      socket.write(pass.text.subarray(pass.text.indexOf(0x0a) + 1));
    }
    socket.write('\r\n');
    const after: string[] = [];
    const res = await tagged(r, 'P3', after);
    if (res.status !== 'OK') {
      socket.destroy();
      return { kind: 'rejected', text: res.text };
    }
    if (!after.length) {
      socket.write('P4 CAPABILITY\r\n');
      await tagged(r, 'P4', after);
    }
    if (!after.some((c) => c.toUpperCase() === 'LITERAL+')) {
      socket.end('P5 LOGOUT\r\n');
      throw new Unavailable('server_no_literal_plus', 'the server does not advertise LITERAL+ after login');
    }
    const rest = r.detach();
    return { kind: 'ok', socket, text: res.text, capabilities: after, rest };
  });
}

async function expectContinue(r: LineReader): Promise<void> {
  const c = await tagged(r, 'P3');
  if (c.status !== '+') throw new Unavailable('server_protocol', `literal refused: ${c.status} ${c.text.slice(0, 200)}`);
}
