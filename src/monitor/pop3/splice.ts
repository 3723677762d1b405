// A logged-in POP3 session: each client command line checked (commands.ts) and sent on re-serialised, the
// server's answers passed back through ResponseStream. Postern answers CAPA (from the server's list, filtered)
// and every refused command itself, in their turn among the server's answers.
import type net from 'node:net';
import { checkTransaction, clientCapabilities, multiline } from './commands.ts';
import { Relay } from '../relay.ts';
import { parseCommand, type LineErrorKind } from './parser.ts';
import { ResponseStream } from './responses.ts';
import type { Pop3Session } from './session.ts';
import { pop3Action } from '../audit/pop3.ts';

export class Pop3Splice extends Relay<Pop3Session> {
  protected readonly responses: ResponseStream;
  private readonly capabilities: string[];
  /** QUIT went to the server, which answers and closes: the session ends as the client asked. */
  private quitting = false;

  constructor(
    s: Pop3Session,
    server: net.Socket,
    /** What the server's CAPA listed after login. */
    serverCaps: string[],
  ) {
    super(s, server, '-ERR Disconnected for inactivity.\r\n');
    this.responses = new ResponseStream((b) => this.toClient(b));
    this.capabilities = clientCapabilities(serverCaps);
  }

  protected serverClosed(): string {
    return this.quitting ? 'quit' : 'server_closed';
  }

  /** Answers the client's login with the server's +OK and starts relaying. */
  start(text: string, rest: Buffer): void {
    const { s } = this;
    s.write(`+OK ${text}\r\n`);
    this.relay(rest);
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
    const audit = s.audit;
    if (audit) {
      const action = pop3Action(cmd);
      if (action) audit.command(action);
    }
    this.responses.expect(checked.multiline);
    this.toServer(Buffer.from(`${checked.line}\r\n`, 'latin1'));
  }

  lineError(kind: LineErrorKind, text: string): void {
    this.s.protocolError(kind, text, null);
    this.inject(`-ERR ${text}\r\n`);
  }

}
