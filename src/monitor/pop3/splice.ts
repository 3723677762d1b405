// A logged-in POP3 session: each client command line checked (commands.ts) and sent on re-serialised, the
// server's answers passed back through ResponseStream. Postern answers CAPA (from the server's list, filtered)
// and every refused command itself, in their turn among the server's answers.
import type net from 'node:net';
import { checkTransaction, clientCapabilities, multiline } from './commands.ts';
import { parseCommand, type LineErrorKind } from './parser.ts';
import { ResponseStream } from './responses.ts';
import type { Pop3Session } from './session.ts';

export class Pop3Splice {
  private readonly responses: ResponseStream;
  private readonly capabilities: string[];
  private stopped = false;
  /** QUIT went to the server, which answers and closes: the session ends as the client asked. */
  private quitting = false;

  constructor(
    private readonly s: Pop3Session,
    private readonly server: net.Socket,
    /** What the server's CAPA listed after login. */
    serverCaps: string[],
  ) {
    this.responses = new ResponseStream((b) => this.toClient(b));
    this.capabilities = clientCapabilities(serverCaps);
  }

  /** Answers the client's login with the server's +OK and starts relaying. */
  start(text: string, rest: Buffer): void {
    const { s, server } = this;
    s.write(`+OK ${text}\r\n`);
    server.on('data', (d: Buffer) => {
      try {
        this.responses.push(d);
      } catch (err) {
        s.fail(err as Error);
      }
    });
    server.on('error', () => s.end('server_error'));
    server.on('close', () => s.end(this.quitting ? 'quit' : 'server_closed'));
    // Large RETR: each side waits for the other to drain instead of buffering without bound.
    server.on('drain', () => s.sock.resume());
    s.sock.on('drain', () => server.resume());
    s.sock.setTimeout(s.ctx.cfg.idle_timeout_s * 1000, () => {
      this.inject('-ERR Disconnected for inactivity.\r\n');
      s.end('idle_timeout');
    });
    if (rest.length) this.responses.push(rest);
    s.reader.resume();
  }

  /** One client command line. */
  line(b: Buffer): void {
    const { s } = this;
    const cmd = parseCommand(b);
    if (cmd.name === 'CAPA' && !cmd.args.length) {
      s.facts.commands++;
      return this.inject(multiline('Capability list follows', this.capabilities));
    }
    const checked = checkTransaction(cmd);
    if (!checked.ok) {
      s.protocolError(checked.kind, checked.text, cmd.name.slice(0, 40) || null);
      return this.inject(`-ERR ${checked.text}\r\n`);
    }
    s.facts.commands++;
    if (checked.line === 'QUIT') this.quitting = true;
    this.responses.expect(checked.multiline);
    this.toServer(Buffer.from(`${checked.line}\r\n`, 'latin1'));
  }

  lineError(kind: LineErrorKind, text: string): void {
    this.s.protocolError(kind, text, null);
    this.inject(`-ERR ${text}\r\n`);
  }

  private toServer(b: Buffer): void {
    if (this.stopped) return;
    if (!this.server.write(b)) this.s.sock.pause();
  }

  private toClient(b: Buffer): void {
    if (this.stopped) return;
    this.s.facts.bytesOut += b.length;
    if (!this.s.sock.write(b)) this.server.pause();
  }

  /** An answer of Postern's own, in its turn among the server's. */
  inject(line: string): void {
    this.responses.inject(Buffer.from(line, 'latin1'));
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.server.destroy();
  }
}
