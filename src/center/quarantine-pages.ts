// The quarantine as its recipient sees it: the pages behind digest links (/q/TOKEN) and the recipient's own page
// (/quarantine), opened by a "view" link with a session cookie scoped to that one address.
//
// A GET never changes anything: mail scanners and link prefetchers follow every URL in a digest (RFC 8058 exists
// for the same reason), so a link opens a confirmation page and only its form's POST acts.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { decodeWords } from 'postal-mime';
import { buildMessageView } from '../analysis/message-view.ts';
import { QuarantineError, type QuarantineEntry } from '../quarantine/service.ts';
import { SINGLE_USE, TokenError, spendToken, type LinkClaims } from '../quarantine/tokens.ts';
import { notice } from './html.ts';
import { confirmPage, htmlToText, listPage, messagePage, resultPage, FLASH, type LinkVerb } from './quarantine-views.ts';
import type { WebDeps } from './server.ts';

export const SESSION_COOKIE = 'postern_q';

type Refusal = 'malformed' | 'forged' | 'expired' | 'used' | 'not_held' | 'gone' | 'other_rcpt' | 'cross_site';

const PAGE_SIZE = 100;
/** Most of a held message's text shown on its page. */
const MAX_TEXT = 200_000;
const USER_ACTIONS = new Set(['release', 'delete', 'allow', 'block', 'ham', 'spam']);

export const quarantinePages: FastifyPluginAsync<WebDeps> = async (app, deps) => {
  const { config, signer, quarantine, log } = deps;
  const secure = config.web.public_url.startsWith('https:');
  const publicHost = config.web.public_url ? new URL(config.web.public_url).host : undefined;

  const REFUSED: Record<Refusal, [number, string, string]> = {
    malformed: [400, 'This is not a valid quarantine link', 'Part of the link may have been lost when it was copied. Open it again from your quarantine digest.'],
    forged: [403, 'This link is not valid', 'It was not issued by this server, or it was changed after it was sent.'],
    expired: [410, 'This link has expired', `Links in a quarantine digest work for ${config.quarantine.link_ttl_days} days. Use the links in your latest digest.`],
    used: [409, 'This link was already used', 'Release and delete links work once, and this one has been used. Nothing was changed now.'],
    not_held: [409, 'This message is no longer in quarantine', 'It was already released, deleted, or it expired. Nothing was changed now.'],
    gone: [410, 'This message is no longer in quarantine', 'It was removed when its time in quarantine ended.'],
    other_rcpt: [403, 'This link does not match this message', 'The link was issued for another recipient. Nothing was changed.'],
    cross_site: [403, 'Request refused', 'The form was sent from another site. Open the link again and press the button there.'],
  };

  function refuse(req: FastifyRequest, reply: FastifyReply, reason: Refusal, action: string, entry?: QuarantineEntry) {
    const [status, title, text] = REFUSED[reason];
    log.warn({ reason, action, ip: req.ip, qid: entry?.id }, 'quarantine link refused');
    deps.emit('quarantine.link_refused', { ip: req.ip, msg_id: entry?.msg_id ?? null, data: { reason, action, ip: req.ip, id: entry?.id ?? null } });
    return reply.code(status).type('text/html; charset=utf-8').send(notice(title, text));
  }

  const html = (reply: FastifyReply, status: number, body: string) => reply.code(status).type('text/html; charset=utf-8').send(body);

  /**
   * A second line behind the tokens (OWASP): a POST that a browser says came from another site is refused. Clients
   * that send neither header (curl, scripts) are let through; they hold the token or the CSRF value anyway.
   */
  function crossSite(req: FastifyRequest): boolean {
    if (req.headers['sec-fetch-site'] === 'cross-site') return true;
    const origin = req.headers.origin;
    if (origin === undefined) return false;
    try {
      const host = new URL(origin).host;
      return host !== req.headers.host && host !== publicHost;
    } catch {
      return true; // "null" and other opaque origins
    }
  }

  function verify(req: FastifyRequest, reply: FastifyReply, token: string): LinkClaims | undefined {
    try {
      const c = signer.verify(token);
      if (c.action !== 'session') return c;
      refuse(req, reply, 'malformed', c.action); // a session cookie is not a link
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      refuse(req, reply, err.reason, 'unknown');
    }
    return undefined;
  }

  /** The entry a link acts on, after every check that does not change anything; undefined when refused. */
  async function linkEntry(req: FastifyRequest, reply: FastifyReply, c: LinkClaims): Promise<QuarantineEntry | undefined> {
    const entry = await quarantine.get(c.qid);
    if (!entry) return void refuse(req, reply, 'gone', c.action);
    if (entry.rcpt !== c.rcpt) return void refuse(req, reply, 'other_rcpt', c.action, entry);
    if (SINGLE_USE.has(c.action)) {
      const spent = await deps.db.selectFrom('quarantine_tokens').select('nonce').where('nonce', '=', c.nonce).executeTakeFirst();
      if (spent) return void refuse(req, reply, 'used', c.action, entry);
      if (entry.status !== 'held') return void refuse(req, reply, 'not_held', c.action, entry);
    }
    return entry;
  }

  function openSession(reply: FastifyReply, rcpt: string) {
    const exp = Date.now() + config.quarantine.session_ttl_h * 3_600_000;
    const token = signer.sign({ action: 'session', qid: '*', rcpt, exp });
    reply.setCookie(SESSION_COOKIE, token, { httpOnly: true, sameSite: 'lax', secure, path: '/', expires: new Date(exp) });
    return reply.redirect('/quarantine', 303);
  }

  app.get<{ Params: { token: string } }>('/q/:token', async (req, reply) => {
    const c = verify(req, reply, req.params.token);
    if (!c) return reply;
    if (c.action === 'view') return openSession(reply, c.rcpt);
    const entry = await linkEntry(req, reply, c);
    if (!entry) return reply;
    return html(reply, 200, confirmPage(entry, c.action as LinkVerb, req.params.token, config));
  });

  app.post<{ Params: { token: string }; Body: unknown }>('/q/:token', async (req, reply) => {
    const c = verify(req, reply, req.params.token);
    if (!c) return reply;
    if (c.action === 'view') return openSession(reply, c.rcpt);
    if (crossSite(req)) return refuse(req, reply, 'cross_site', c.action);
    const entry = await linkEntry(req, reply, c);
    if (!entry) return reply;
    if ((req.body as Record<string, unknown> | undefined)?.confirm !== '1') {
      return html(reply, 400, notice('Not confirmed', 'Nothing was changed. Open the link and press the button on the page it shows.'));
    }
    // Spent before acting: of two clicks (or a replay) exactly one acts.
    const single = SINGLE_USE.has(c.action);
    if (single && !(await spendToken(deps.db, c))) return refuse(req, reply, 'used', c.action, entry);
    const actor = `link:${c.rcpt}`;
    let done: [string, string];
    try {
      switch (c.action) {
        case 'release':
          await quarantine.release(entry.id, actor);
          done = ['Message released', 'It is on its way to your mailbox.'];
          break;
        case 'delete':
          await quarantine.delete(entry.id, actor);
          done = ['Message deleted', 'It has been removed from the quarantine.'];
          break;
        case 'allow':
          await quarantine.listSender(entry.id, 'allow', 'user', actor);
          done = ['Sender allowed', `Mail from ${entry.sender} to you is accepted from now on. This message stays held until you release it.`];
          break;
        default:
          await quarantine.listSender(entry.id, 'block', 'user', actor);
          done = ['Sender blocked', `Mail from ${entry.sender} to you is refused from now on.`];
      }
    } catch (err) {
      if (err instanceof QuarantineError && err.code === 'not_held') return refuse(req, reply, 'not_held', c.action, entry);
      if (err instanceof QuarantineError && err.code === 'not_found') return refuse(req, reply, 'gone', c.action, entry);
      if (err instanceof QuarantineError) return html(reply, 400, notice('This cannot be done', err.message));
      // The action failed on our side: give the link back, so that trying again later works.
      if (single) await deps.db.deleteFrom('quarantine_tokens').where('nonce', '=', c.nonce).execute();
      throw err;
    }
    return html(reply, 200, resultPage(done[0], done[1], entry, config));
  });

  function session(req: FastifyRequest): LinkClaims | undefined {
    const v = req.cookies[SESSION_COOKIE];
    if (!v) return undefined;
    try {
      const c = signer.verify(v);
      return c.action === 'session' ? c : undefined;
    } catch {
      return undefined;
    }
  }

  const csrfOf = (s: LinkClaims) => signer.mac(`csrf:${s.nonce}`);
  const noSession = (reply: FastifyReply) =>
    html(reply, 401, notice('Open your quarantine from a digest', 'This page opens from the "view your quarantine" link in your latest quarantine digest email. Your earlier visit may have ended.'));

  function csrfOk(req: FastifyRequest, s: LinkClaims): boolean {
    const got = (req.body as Record<string, unknown> | undefined)?.csrf;
    if (typeof got !== 'string') return false;
    const want = Buffer.from(csrfOf(s));
    const have = Buffer.from(got);
    return have.length === want.length && timingSafeEqual(have, want);
  }

  app.get<{ Querystring: Record<string, unknown> }>('/quarantine', async (req, reply) => {
    const s = session(req);
    if (!s) return noSession(reply);
    const off = Number(req.query.offset);
    const offset = Number.isSafeInteger(off) && off > 0 ? off : 0;
    const { entries, total } = await quarantine.list({ rcpt: s.rcpt, status: 'held', limit: PAGE_SIZE, offset });
    const flash = typeof req.query.done === 'string' && req.query.done in FLASH ? req.query.done : undefined;
    return html(reply, 200, listPage({ rcpt: s.rcpt, entries, total, offset, limit: PAGE_SIZE, flash, csrf: csrfOf(s), config }));
  });

  const notYours = (reply: FastifyReply) => html(reply, 404, notice('Not found', 'There is no such message in your quarantine.'));

  app.get<{ Params: { id: string } }>('/quarantine/:id', async (req, reply) => {
    const s = session(req);
    if (!s) return noSession(reply);
    const entry = await quarantine.get(req.params.id);
    // 404, not 403, for another recipient's entry: ids must not be probed.
    if (!entry || entry.rcpt !== s.rcpt) return notYours(reply);
    if (entry.status !== 'held') return html(reply, 409, notice('No longer in quarantine', `This message was ${entry.status}.`));
    const raw = await quarantine.raw(entry.id);
    const view = await buildMessageView(raw);
    const parsed = await view.parse();
    let text = parsed.email?.text ?? (parsed.email?.html ? htmlToText(parsed.email.html) : '');
    let note = parsed.error ? `The message could not be read in full (${parsed.error}).` : parsed.email?.text ? undefined : parsed.email?.html ? 'Text taken from the HTML part; the HTML itself is not shown.' : undefined;
    if (text.length > MAX_TEXT) {
      text = text.slice(0, MAX_TEXT);
      note = `Only the first ${MAX_TEXT} characters are shown.`;
    }
    const headers = view.headers.map((h) => ({ name: h.name, value: safeDecode(h.value) }));
    const attachments = (parsed.email?.attachments ?? []).map((a) => ({
      filename: a.filename ?? '',
      mimeType: a.mimeType,
      size: typeof a.content === 'string' ? a.content.length : a.content.byteLength,
    }));
    return html(reply, 200, messagePage({ entry, headers, text, note, attachments, csrf: csrfOf(s), config }));
  });

  app.post('/quarantine/logout', async (req, reply) => {
    const s = session(req);
    if (s && !csrfOk(req, s)) return html(reply, 403, notice('Request refused', 'The form was out of date. Reload the page and try again.'));
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return html(reply, 200, notice('Signed out', 'Use the link in your latest digest to open your quarantine again.', 'flash'));
  });

  app.post<{ Params: { id: string; action: string } }>('/quarantine/:id/:action', async (req, reply) => {
    const s = session(req);
    if (!s) return noSession(reply);
    if (crossSite(req) || !csrfOk(req, s)) {
      log.warn({ ip: req.ip, rcpt: s.rcpt, action: req.params.action }, 'quarantine page form refused: missing or wrong csrf, or sent from another site');
      return html(reply, 403, notice('Request refused', 'The form was out of date or sent from another site. Reload your quarantine page and try again.'));
    }
    const { id, action } = req.params;
    const entry = USER_ACTIONS.has(action) ? await quarantine.get(id) : undefined;
    if (!entry || entry.rcpt !== s.rcpt) return notYours(reply);
    const actor = `user:${s.rcpt}`;
    let done: string;
    if (entry.status !== 'held' && action !== 'allow' && action !== 'block') return reply.redirect('/quarantine?done=not_held', 303);
    try {
      switch (action) {
        case 'release':
          await quarantine.release(id, actor);
          done = 'released';
          break;
        case 'delete':
          await quarantine.delete(id, actor);
          done = 'deleted';
          break;
        case 'allow':
        case 'block':
          await quarantine.listSender(id, action, 'user', actor);
          done = action === 'allow' ? 'allowed' : 'blocked';
          break;
        case 'ham':
          await quarantine.report(id, 'ham', actor);
          await quarantine.release(id, actor);
          done = 'ham';
          break;
        default:
          // Learned before the delete removes the stored copy.
          await quarantine.report(id, 'spam', actor);
          await quarantine.delete(id, actor);
          done = 'spam';
      }
    } catch (err) {
      if (!(err instanceof QuarantineError)) throw err;
      done = err.code === 'bad_request' ? 'refused' : 'not_held';
    }
    return reply.redirect(`/quarantine?done=${done}`, 303);
  });
};

/** A header value with its encoded words decoded for reading; the raw value when it does not decode. */
function safeDecode(v: string): string {
  try {
    return decodeWords(v);
  } catch {
    return v;
  }
}
