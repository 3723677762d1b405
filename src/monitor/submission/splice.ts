// A logged-in submission session: each client command line checked (commands.ts) and sent on re-serialised, the
// message after DATA streamed through the DataScanner, the server's replies passed back through ReplyStream.
// Postern answers EHLO (from the server's keywords, filtered), HELP and every refused command itself, in their
// turn among the server's replies. For an audited user each MAIL FROM, RCPT TO and message is recorded with the
// server's reply to it.
import type net from 'node:net';
import { Relay } from '../relay.ts';
import { dataAction, mailAction, rcptAction, simpleAction } from '../audit/submission.ts';
import { checkPath, ehloReply, heloName, postLoginKeywords } from './commands.ts';
import type { DataScanner } from './data.ts';
import { parseCommand, type LineErrorKind } from './parser.ts';
import { ReplyStream, type Reply } from './replies.ts';
import type { SubmissionSession } from './session.ts';

export class SubmissionSplice extends Relay<SubmissionSession> {
  protected readonly responses: ReplyStream;
  private readonly keywords: string[];
  /** QUIT went to the server, which answers and closes: the session ends as the client asked. */
  private quitting = false;

  constructor(
    s: SubmissionSession,
    server: net.Socket,
    /** The server's EHLO keywords. */
    serverKeywords: string[],
  ) {
    super(s, server, '421 4.4.2 Disconnected for inactivity\r\n');
    this.responses = new ReplyStream((b) => this.toClient(b));
    this.keywords = postLoginKeywords(serverKeywords);
  }

  protected serverClosed(): string {
    return this.quitting ? 'quit' : 'server_closed';
  }

  /** Answers the client's AUTH with the server's 235 and starts relaying. */
  start(text: string, rest: Buffer): void {
    const { s } = this;
    s.write(`${text}\r\n`);
    this.relay(rest);
    s.reader.resume();
  }

  private refuse(kind: string, text: string, verb: string | null): void {
    this.s.protocolError(kind, text, verb);
    this.inject(`${text}\r\n`);
  }

  /** Sends a checked command; `onReply` hears the server's reply to it. */
  private send(line: string, onReply?: (r: Reply) => void, replace?: Buffer): void {
    this.s.facts.commands++;
    this.responses.expect(onReply, replace);
    this.toServer(Buffer.from(`${line}\r\n`, 'latin1'));
  }

  /** One client command line. */
  line(b: Buffer): void {
    const { s } = this;
    const audit = s.audit;
    const { verb, rest } = parseCommand(b);
    switch (verb) {
      case 'MAIL':
      case 'RCPT': {
        const c = checkPath(verb, rest);
        if (!c.ok) return this.refuse(c.kind, c.text, verb);
        const record = verb === 'MAIL' ? mailAction : rcptAction;
        return this.send(c.line, audit ? (r) => audit.command(record(c.address, r)) : undefined);
      }
      case 'DATA': {
        if (rest.trim()) return this.refuse('syntax', '501 5.5.4 DATA takes no arguments', verb);
        // What follows is the message only if the server says 354: until then nothing more is read.
        s.reader.pause();
        s.sock.pause();
        return this.send('DATA', (r) => {
          if (r.code === 354) s.reader.startData();
          else audit?.command(dataAction(null, r));
          s.sock.resume();
          s.reader.resume();
        });
      }
      case 'RSET':
      case 'NOOP':
      case 'QUIT': {
        if (rest.trim()) return this.refuse('syntax', `501 5.5.4 ${verb} takes no arguments here`, verb);
        // QUIT is recorded as asked: a client may close without waiting for the 221.
        if (verb === 'QUIT') {
          this.quitting = true;
          audit?.command({ command: 'QUIT' });
        }
        return this.send(verb, audit && verb === 'RSET' ? (r) => audit.command(simpleAction(verb, r)) : undefined);
      }
      case 'EHLO':
      case 'HELO': {
        const name = heloName(rest);
        if (!name) return this.refuse('syntax', `501 5.5.4 Syntax: ${verb} hostname`, verb);
        // EHLO resets the transaction (RFC 5321 §4.1.4): the server gets RSET, the client Postern's own EHLO reply.
        const hostname = s.ctx.cfg.hostname;
        return this.send('RSET', undefined, Buffer.from(verb === 'EHLO' ? ehloReply(hostname, this.keywords) : `250 ${hostname}\r\n`, 'latin1'));
      }
      case 'HELP':
        s.facts.commands++;
        return this.inject('214 2.0.0 https://www.rfc-editor.org/rfc/rfc6409\r\n');
      case 'AUTH':
        return this.refuse('refused', '503 5.5.1 Already authenticated', verb);
      case 'STARTTLS':
        return this.refuse('refused', '503 5.5.1 STARTTLS not available after login', verb);
      case 'BDAT':
        return this.refuse('refused', '502 5.5.1 BDAT not supported, use DATA', verb);
      case 'VRFY':
      case 'EXPN':
      case 'ETRN':
        return this.refuse('refused', `502 5.5.1 ${verb} not supported`, verb);
      default:
        return this.refuse('unknown_command', '500 5.5.2 Unknown command', verb.slice(0, 40) || null);
    }
  }

  lineError(kind: LineErrorKind, text: string): void {
    this.refuse(kind, text, null);
  }

  /** Message bytes, passed on as the scanner normalised them. */
  data(b: Buffer): void {
    this.toServer(b);
  }

  /** The message ended: the server's reply is its fate. */
  dataEnd(scan: DataScanner): void {
    const { s } = this;
    if (scan.normalised) s.protocolError('bare_newline', `${scan.normalised} bare CR or LF in the message became CRLF`, 'DATA');
    const audit = s.audit;
    this.responses.expect(audit ? (r) => audit.command(dataAction(scan, r)) : undefined);
  }
}
