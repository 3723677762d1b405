// Types of postern-webmail.mjs, for a webmail written in TypeScript.

export interface WebmailFields {
  user: string;
  /** The browser's address. */
  client_ip: string;
  user_agent?: string;
  /** Milliseconds since the epoch or an ISO 8601 time; default: when Postern receives it. */
  ts?: number | string;
  session?: string;
}

export interface WebmailResult {
  action: 'allow' | 'block' | 'protect';
  policy?: string;
  delay_ms?: number;
  session?: string;
}

export declare class PosternError extends Error {
  /** The HTTP status; 0 when Postern did not answer. */
  status: number;
  code: string;
}

export interface Collector {
  login(f: WebmailFields): Promise<WebmailResult>;
  loginFailed(f: WebmailFields): Promise<WebmailResult>;
  logout(f: WebmailFields): Promise<WebmailResult>;
  send(f: WebmailFields & { to: string[]; message_id?: string; size?: number }): Promise<WebmailResult>;
  read(f: WebmailFields & { folder?: string; uid?: number; message_id?: string }): Promise<WebmailResult>;
  flush(): Promise<void>;
}

export declare function createCollector(o: { url: string; key: string; timeoutMs?: number; batch?: { maxEvents?: number; maxDelayMs?: number } }): Collector;
