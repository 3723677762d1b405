// A logged-in IMAP session: client commands framed by the parser (streaming) and written to the server as they
// are framed; server responses passed back through ResponseStream. Postern still answers what would blind or
// confuse the monitor (COMPRESS, STARTTLS, a second login) and every framing error, itself.
import type net from 'node:net';
import { Relay } from '../relay.ts';
import type { ImapCommand, ParseError } from './parser.ts';
import { ResponseStream } from './responses.ts';
import type { ImapSession } from './session.ts';
import { clientCapabilities } from './wire.ts';
import { imapAction } from '../audit/imap.ts';

/** Commands refused after login, with the reason given to the client. */
const REFUSED: Record<string, string> = {
  COMPRESS: 'COMPRESS is not available through this server.',
  STARTTLS: 'STARTTLS is not available after login.',
  LOGIN: 'Already logged in.',
  AUTHENTICATE: 'Already logged in.',
};

export class Splice extends Relay<ImapSession> {
  protected readonly responses: ResponseStream;

  constructor(
    s: ImapSession,
    server: net.Socket,
    /** What the server advertised after login. */
    private readonly serverCaps: string[],
  ) {
    super(s, server, '* BYE Disconnected for inactivity.\r\n');
    const maxNonSync = s.ctx.cfg.max_nonsync_literal;
    this.responses = new ResponseStream((b) => this.toClient(b), (caps) => clientCapabilities(caps, maxNonSync));
  }

  /** Answers the client's login with the server's OK (capabilities as the client may use them) and starts relaying. */
  start(tag: string, text: string, rest: Buffer): void {
    const { s } = this;
    const caps = clientCapabilities(this.serverCaps, s.ctx.cfg.max_nonsync_literal).join(' ');
    s.write(`${tag} OK [CAPABILITY ${caps}] ${text.replace(/^\[CAPABILITY [^\]]*\]\s*/i, '')}\r\n`);
    this.relay(rest);
    s.parser.streaming = true;
    s.parser.resume();
  }

  refusal(name: string): string | undefined {
    return REFUSED[name];
  }

  command(cmd: ImapCommand): void {
    this.s.facts.commands++;
    if (cmd.name === 'IDLE') this.s.parser.expectDone();
    const audit = this.s.audit;
    if (audit) {
      const action = imapAction(cmd, audit);
      if (action) audit.command(action);
    }
  }

  /** The `DONE` that ends IDLE. */
  done(): void {
    this.toServer(Buffer.from('DONE\r\n'));
  }

  parseError(e: ParseError, text: string): void {
    this.s.protocolError(e.kind, text, e.tag);
    if (e.fatal) {
      this.inject(`* BYE ${text}\r\n`);
      return this.s.end(e.kind);
    }
    this.inject(`${e.tag ?? '*'} BAD ${text}\r\n`);
  }
}
