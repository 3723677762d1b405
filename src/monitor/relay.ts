// The relay half of a logged-in monitor session, whatever the protocol: server bytes through the protocol's
// response stream to the client, client commands on to the server, each side waiting for the other to drain, the
// idle timeout, and Postern's own lines slipped in between two server responses.
import type net from 'node:net';
import type { SessionFacts } from './session.ts';

/** What the relay needs of the client's session. */
export interface RelayedSession {
  sock: net.Socket;
  readonly facts: SessionFacts;
  readonly ctx: { cfg: { idle_timeout_s: number } };
  fail(err: Error): void;
  end(reason: string): void;
}

/** A protocol's stream of server responses: push passes server bytes on, inject queues a line of Postern's own. */
export interface ResponseRelay {
  push(chunk: Buffer): void;
  inject(line: Buffer): void;
}

export abstract class Relay<S extends RelayedSession> {
  protected abstract readonly responses: ResponseRelay;
  protected stopped = false;

  constructor(
    protected readonly s: S,
    protected readonly server: net.Socket,
    /** Postern's line to a client silent for idle_timeout_s. */
    private readonly inactive: string,
  ) {}

  /** Why the session ends when the server closes. */
  protected serverClosed(): string {
    return 'server_closed';
  }

  /** Starts relaying; `rest` is what the server sent after its login answer. */
  protected relay(rest: Buffer): void {
    const { s, server } = this;
    server.on('data', (d: Buffer) => {
      try {
        this.responses.push(d);
      } catch (err) {
        s.fail(err as Error);
      }
    });
    server.on('error', () => s.end('server_error'));
    server.on('close', () => s.end(this.serverClosed()));
    // Large messages (FETCH and APPEND, RETR): each side waits for the other to drain instead of buffering
    // without bound.
    server.on('drain', () => s.sock.resume());
    s.sock.on('drain', () => server.resume());
    s.sock.setTimeout(s.ctx.cfg.idle_timeout_s * 1000, () => {
      this.inject(this.inactive);
      s.end('idle_timeout');
    });
    if (rest.length) this.responses.push(rest);
  }

  toServer(b: Buffer): void {
    if (this.stopped) return;
    if (!this.server.write(b)) this.s.sock.pause();
  }

  protected toClient(b: Buffer): void {
    if (this.stopped) return;
    this.s.facts.bytesOut += b.length;
    if (!this.s.sock.write(b)) this.server.pause();
  }

  /** A line of Postern's own to the client, in its turn among the server's responses. */
  inject(line: string): void {
    this.responses.inject(Buffer.from(line, 'latin1'));
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.server.destroy();
  }
}
