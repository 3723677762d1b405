// What the monitor proxy records of one client connection, whatever the protocol: session id, client address, TLS,
// timing, the user once known, and counters. The close event of each protocol carries summary().
import net from 'node:net';
import tls from 'node:tls';
import { connId } from '../core/ids.ts';
import { peerOf } from './proxy-protocol.ts';

export interface TlsFacts {
  version: string | null;
  cipher: string | null;
}

export function tlsFacts(socket: net.Socket): TlsFacts | null {
  if (!(socket instanceof tls.TLSSocket) || !socket.encrypted) return null;
  return { version: socket.getProtocol() ?? null, cipher: socket.getCipher()?.name ?? null };
}

export class SessionFacts {
  readonly id = connId();
  readonly startedAt = Date.now();
  readonly ip: string;
  readonly port: number;
  tls: TlsFacts | null;
  /** The user of the last login attempt, successful or not. */
  user: string | null = null;
  loggedInAt: number | null = null;
  loginAttempts = 0;
  loginFailures = 0;
  commands = 0;
  errors = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Name and version from the client's ID, when it sent one. */
  client: Record<string, string> | null = null;

  constructor(socket: net.Socket) {
    // Behind a trusted load balancer, the client's address from its PROXY header (proxy-protocol.ts).
    const peer = peerOf(socket);
    this.ip = peer.address.replace(/^::ffff:/i, '');
    this.port = peer.port;
    this.tls = tlsFacts(socket);
  }

  summary(reason: string): Record<string, unknown> {
    const now = Date.now();
    return {
      session: this.id,
      user: this.user,
      logged_in: this.loggedInAt !== null,
      tls: this.tls,
      client: this.client,
      duration_ms: now - this.startedAt,
      login_attempts: this.loginAttempts,
      login_failures: this.loginFailures,
      commands: this.commands,
      errors: this.errors,
      bytes_in: this.bytesIn,
      bytes_out: this.bytesOut,
      reason,
    };
  }
}
