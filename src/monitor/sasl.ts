// SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) as Postern reads them from a client (IMAP
// AUTHENTICATE, POP3 AUTH) before passing the credentials on in its own login to the server. Strict base64:
// Dovecot's CVE-2025-59028 was invalid base64 in authentication.

export type SaslStep =
  | { kind: 'done'; user: Buffer; password: Buffer }
  | { kind: 'continue'; challenge: string }
  | { kind: 'error'; text: string };

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes a client response: `=` is the empty response (RFC 4959); anything not canonical base64 is refused. */
export function decodeResponse(text: string): Buffer | undefined {
  if (text === '=') return Buffer.alloc(0);
  if (!text.length || !B64.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

/** One SASL exchange for one mechanism; `step` is fed each decoded client response. */
export class SaslExchange {
  private user: Buffer | null = null;

  constructor(readonly mechanism: 'PLAIN' | 'LOGIN') {}

  /** The first challenge when there was no initial response. */
  first(): string {
    return this.mechanism === 'PLAIN' ? '' : Buffer.from('Username:').toString('base64');
  }

  step(data: Buffer): SaslStep {
    if (this.mechanism === 'PLAIN') {
      const parts = splitNul(data);
      if (parts.length !== 3) return { kind: 'error', text: 'Invalid PLAIN response' };
      const [authz, user, password] = parts;
      if (!user.length) return { kind: 'error', text: 'Invalid PLAIN response: empty user name' };
      // Logging in as someone else (a master user) is not passed on: Postern logs in as the user only.
      if (authz.length && !authz.equals(user)) return { kind: 'error', text: 'Authorization identity not supported' };
      return { kind: 'done', user, password };
    }
    if (this.user === null) {
      if (!data.length || data.includes(0)) return { kind: 'error', text: 'Invalid user name' };
      this.user = data;
      return { kind: 'continue', challenge: Buffer.from('Password:').toString('base64') };
    }
    if (data.includes(0)) return { kind: 'error', text: 'Invalid password' };
    return { kind: 'done', user: this.user, password: data };
  }
}

function splitNul(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0) {
      out.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  out.push(b.subarray(start));
  return out;
}
