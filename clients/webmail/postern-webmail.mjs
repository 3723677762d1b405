// The client of Postern's webmail collector (POST /api/v1/collect/webmail) for a webmail written in JavaScript:
// no dependencies, Node 18 or later (global fetch). Copy this file into the webmail; see docs/monitor.md.
//
//   import { createCollector } from './postern-webmail.mjs';
//   const postern = createCollector({ url: 'https://postern.example.org', key: process.env.POSTERN_WEBMAIL_KEY });
//   const { action } = await postern.login({ user, client_ip: req.ip, user_agent: req.headers['user-agent'], session });
//   if (action !== 'allow') refuseTheLogin();

const PATH = '/api/v1/collect/webmail';

/** A refusal from Postern (400: a bad event, 401: a wrong key), or no answer at all (status 0). */
export class PosternError extends Error {
  constructor(message, status, code) {
    super(message);
    this.name = 'PosternError';
    this.status = status;
    this.code = code;
  }
}

/**
 * A collector for one webmail installation.
 * - url: Postern's web server (https://postern.example.org), or the collector's full URL.
 * - key: the installation's key (monitor.webmail.keys).
 * - timeoutMs: how long one request may take (3000).
 * - batch: { maxEvents = 100, maxDelayMs = 1000 } to send events together; each call still resolves with its own
 *   result, once its batch is answered. Without it every call is one request.
 */
export function createCollector({ url, key, timeoutMs = 3000, batch } = {}) {
  if (!url || !key) throw new TypeError('createCollector needs { url, key }');
  const endpoint = url.replace(/\/+$/, '').endsWith(PATH) ? url.replace(/\/+$/, '') : `${url.replace(/\/+$/, '')}${PATH}`;
  const maxEvents = Math.min(batch?.maxEvents ?? 100, 500);
  const maxDelayMs = batch?.maxDelayMs ?? 1000;
  let queue = [];
  let timer = null;

  async function post(body) {
    let res;
    try {
      res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new PosternError(`Postern did not answer: ${err.message}`, 0, 'unreachable');
    }
    const json = await res.json().catch(() => null);
    if (!res.ok) throw new PosternError(json?.error?.message ?? `HTTP ${res.status}`, res.status, json?.error?.code ?? 'http');
    return json;
  }

  /** Sends what is queued as one batch and settles each call's promise with its own result. */
  async function flush() {
    if (timer) clearTimeout(timer);
    timer = null;
    const sending = queue;
    queue = [];
    if (!sending.length) return;
    try {
      const { results } = await post(sending.map((q) => q.event));
      sending.forEach((q, i) => q.resolve(results[i]));
    } catch (err) {
      for (const q of sending) q.reject(err);
    }
  }

  function send(event) {
    if (!batch) return post(event);
    return new Promise((resolve, reject) => {
      queue.push({ event, resolve, reject });
      if (queue.length >= maxEvents) void flush();
      else if (!timer) timer = setTimeout(() => void flush(), maxDelayMs);
    });
  }

  // A login is never held in a batch: the webmail waits for its answer before letting the user in.
  const now = (type, fields, urgent = false) => (urgent && batch ? post({ ...fields, type }) : send({ ...fields, type }));
  return {
    /** A login the webmail accepted; the answer's action says whether to let it stand (allow) or not (block, protect). */
    login: (fields) => now('login', fields, true),
    /** A login the webmail refused (wrong password). */
    loginFailed: (fields) => now('login_failed', fields),
    logout: (fields) => now('logout', fields),
    /** A message sent: fields.to (addresses), message_id, size. */
    send: (fields) => now('send', fields),
    /** A message read: fields.folder, uid, message_id. */
    read: (fields) => now('read', fields),
    /** Sends what a batch holds now. */
    flush,
  };
}
