// Pull-back of copies already delivered: log in to the downstream IMAP server as the mailbox user through a master
// user, find the copies by Message-ID, fetch the first (Postern keeps it), then move them to a folder or delete them.
// One connection per user, closed on every path; the whole of it bounded by timeout_ms.
import type { ImapFlow as ImapFlowClient } from 'imapflow';

/** Loaded on the first pull-back: most processes never pull anything back, and imapflow is slow to load. */
let loaded: Promise<typeof import('imapflow')> | undefined;
const imapflow = () => (loaded ??= import('imapflow'));
import type { Config } from '../config/schema.ts';
import { resolveSecret } from '../config/load.ts';
import type { Logger } from '../core/log.ts';

export type PullbackConfig = Config['outbreak']['pullback'];

export interface PullbackResult {
  /** Copies found, per folder searched. */
  found: { mailbox: string; uid: number }[];
  /** The first copy's full bytes (BODY.PEEK[]), so the caller can keep it in quarantine; null when none found. */
  raw: Buffer | null;
  /** What was done: 'moved' | 'deleted' | 'not_found'. */
  outcome: 'moved' | 'deleted' | 'not_found';
}

export interface PullbackOptions {
  log?: Logger;
}

/** RFC 5322's line limit: no real Message-ID is longer. */
const MAX_ID_LENGTH = 998;

/**
 * `<id>` from an id with or without its angle brackets. Ids come from mail, so they are hostile: CR, LF and NUL
 * could end the IMAP command early or be refused by the server mid-session, and are refused here before any
 * connection is made.
 */
export function normalizeMessageId(id: string): string {
  if (/[\r\n\0]/.test(id)) throw new Error('pull-back: refused a Message-ID containing CR, LF or NUL');
  if (id.length > MAX_ID_LENGTH) throw new Error(`pull-back: refused a Message-ID longer than ${MAX_ID_LENGTH} characters`);
  const bare = id.trim().replace(/^</, '').replace(/>$/, '');
  if (!bare.trim()) throw new Error('pull-back: empty Message-ID');
  return `<${bare}>`;
}

/** Finds the copies of `messageId` (with or without <>) in `user`'s mailboxes and moves or deletes them. */
export async function pullBack(conf: PullbackConfig, user: string, messageId: string, opts: PullbackOptions = {}): Promise<PullbackResult> {
  const results = await pullBackMany(conf, user, [messageId], opts);
  return results.get(messageId)!;
}

/** One login for several pull-backs of the same user; the map is keyed by the ids as given. */
export async function pullBackMany(
  conf: PullbackConfig,
  user: string,
  messageIds: string[],
  opts: PullbackOptions = {},
): Promise<Map<string, PullbackResult>> {
  // Everything is checked before a connection is made: nothing hostile reaches the server.
  const wanted = new Map(messageIds.map((id) => [id, normalizeMessageId(id)]));
  if (/[\r\n\0]/.test(user) || !user) throw new Error('pull-back: refused an empty mailbox user or one containing CR, LF or NUL');
  if (!conf.host) throw new Error('pull-back: outbreak.pullback.host is not set');
  if (!wanted.size) return new Map();
  const password = resolveSecret(conf.master_password);
  if (!password) throw new Error('pull-back: outbreak.pullback.master_password is not set (or its environment variable is empty)');
  const login = conf.login_format.replaceAll('{user}', user).replaceAll('{master}', conf.master_user);
  const where = `${conf.host}:${conf.port}`;
  const log = opts.log?.child({ component: 'retro', imap: where, user });

  // imapflow reports a refused command by logging it and returning false; its warning keeps the server's answer.
  let lastWarning: ServerError | undefined;
  const keep = (o: { err?: ServerError }) => {
    if (o?.err) lastWarning = o.err;
  };
  const { ImapFlow } = await imapflow();
  const client: ImapFlowClient = new ImapFlow({
    host: conf.host,
    port: conf.port,
    secure: conf.tls === 'implicit',
    doSTARTTLS: conf.tls === 'starttls' ? true : conf.tls === 'none' ? false : undefined,
    tls: { rejectUnauthorized: conf.tls_verify },
    auth: { user: login, pass: password },
    connectionTimeout: conf.timeout_ms,
    greetingTimeout: conf.timeout_ms,
    socketTimeout: conf.timeout_ms,
    disableAutoIdle: true,
    logger: { debug() {}, info() {}, warn: keep, error: keep },
  });
  client.on('error', () => undefined); // a socket error after the deadline; the awaited command already failed

  const state = { step: `connect to ${where}`, timedOut: false };
  const at = (step: string) => {
    state.step = step;
    lastWarning = undefined;
  };
  const refused = (what: string): Error => {
    const text = serverText(lastWarning);
    return new Error(`pull-back: ${what} refused by ${where}${text ? `: ${text}` : ''}`);
  };

  const work = async (): Promise<Map<string, PullbackResult>> => {
    await client.connect();
    const results = new Map<string, PullbackResult>([...wanted.keys()].map((id) => [id, { found: [], raw: null, outcome: 'not_found' }]));
    let folderReady = false;
    for (const mailbox of conf.mailboxes) {
      // Copies already moved there are where they should be.
      if (conf.action === 'move' && mailbox === conf.folder) continue;
      at(`open ${mailbox}`);
      let lock;
      try {
        lock = await client.getMailboxLock(mailbox);
      } catch (err) {
        // Dovecot answers a plain NO without [NONEXISTENT]; imapflow recognises its text as mailboxMissing.
        const e = err as { serverResponseCode?: string; mailboxMissing?: boolean };
        if (e.mailboxMissing || e.serverResponseCode === 'NONEXISTENT') {
          log?.debug({ mailbox }, 'pull-back: mailbox does not exist');
          continue;
        }
        throw err;
      }
      try {
        for (const [given, id] of wanted) {
          at(`search ${mailbox}`);
          const hits = await client.search({ header: { 'message-id': id } }, { uid: true });
          if (!hits) throw refused(`search in ${mailbox}`);
          if (!hits.length) continue;
          // SEARCH HEADER matches a substring, case-insensitively: only the exact <id>, brackets and case, is taken.
          at(`fetch from ${mailbox}`);
          const uids: number[] = [];
          for await (const m of client.fetch(hits.join(','), { uid: true, headers: ['message-id'] }, { uid: true })) {
            if (m.headers && messageIdHeaders(m.headers).some((v) => v.includes(id))) uids.push(m.uid);
          }
          if (!uids.length) continue;
          uids.sort((a, b) => a - b);
          const result = results.get(given)!;
          if (!result.raw) {
            const m = await client.fetchOne(String(uids[0]), { source: true }, { uid: true });
            if (!m || !m.source) throw refused(`fetch of UID ${uids[0]} in ${mailbox}`);
            result.raw = m.source;
          }
          const range = uids.join(',');
          if (conf.action === 'move') {
            // Without MOVE, imapflow copies and expunges; without UIDPLUS that EXPUNGE would take every \Deleted message.
            if (!client.capabilities.has('MOVE') && !client.capabilities.has('UIDPLUS')) {
              throw new Error(`pull-back: ${where} has neither MOVE nor UIDPLUS; cannot move only these copies`);
            }
            if (!folderReady) {
              at(`create folder ${conf.folder}`);
              await client.mailboxCreate(conf.folder);
              folderReady = true;
            }
            at(`move from ${mailbox} to ${conf.folder}`);
            if (!(await client.messageMove(range, conf.folder, { uid: true }))) throw refused(`moving UID ${range} from ${mailbox} to ${conf.folder}`);
            result.outcome = 'moved';
          } else {
            if (!client.capabilities.has('UIDPLUS')) throw new Error(`pull-back: ${where} has no UIDPLUS; cannot expunge only these copies`);
            at(`delete from ${mailbox}`);
            if (!(await client.messageDelete(range, { uid: true }))) throw refused(`deleting UID ${range} in ${mailbox}`);
            result.outcome = 'deleted';
          }
          result.found.push(...uids.map((uid) => ({ mailbox, uid })));
          log?.info({ msg_id: id, mailbox, uids, action: conf.action }, 'pull-back: copies taken back');
        }
      } finally {
        lock.release();
      }
    }
    at('logout');
    await client.logout();
    return results;
  };

  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      state.timedOut = true;
      reject(new Error(`pull-back: ${where} timed out after ${conf.timeout_ms} ms (${state.step})`));
    }, conf.timeout_ms);
  });
  const running = work();
  running.catch(() => undefined); // after the deadline its rejection is nobody's
  try {
    return await Promise.race([running, deadline]);
  } catch (err) {
    if (state.timedOut) throw err;
    throw scrub(describe(err as ImapError, state.step, where, login), password);
  } finally {
    clearTimeout(timer);
    client.close();
  }
}

interface ServerError {
  message?: string;
  /** The tagged answer's text, without tag and status. */
  responseText?: string;
  /** The whole tagged answer. */
  response?: unknown;
}

interface ImapError extends Error {
  responseText?: string;
  response?: unknown;
  code?: string;
  authenticationFailed?: boolean;
  tlsFailed?: boolean;
}

function describe(err: ImapError, step: string, where: string, login: string): Error {
  if (err.message.startsWith('pull-back: ')) return err;
  const text = serverText(err) || err.code || 'failed';
  if (err.authenticationFailed) return new Error(`pull-back: login as ${login} refused by ${where}: ${text}`);
  if (err.tlsFailed || /TLS|SSL|CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(err.code ?? '')) return new Error(`pull-back: TLS with ${where} failed: ${text}`);
  if (step.startsWith('connect')) return new Error(`pull-back: cannot connect to ${where}: ${text}`);
  return new Error(`pull-back: ${step} on ${where} failed: ${text}`);
}

/** The server's answer when there was one, else the error's own message. */
function serverText(err: ServerError | undefined): string {
  if (!err) return '';
  if (err.responseText) return err.responseText;
  if (typeof err.response === 'string' && err.response) return err.response;
  return err.message && err.message !== 'Command failed' ? err.message : '';
}

/** Never let the master password reach a log or a caller through an error text. */
function scrub(err: Error, password: string): Error {
  return err.message.includes(password) ? new Error(err.message.replaceAll(password, '[redacted]')) : err;
}

/** The values of the Message-ID header lines in a fetched header block, unfolded. */
export function messageIdHeaders(headers: Buffer): string[] {
  const text = headers.toString('utf8').replace(/\r?\n[ \t]+/g, ' ');
  const values: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^message-id\s*:(.*)$/i.exec(line);
    if (m) values.push(m[1].trim());
  }
  return values;
}
