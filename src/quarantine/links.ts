// The addresses of quarantine links: GET /q/<token> shows a confirmation page, POST /q/<token> acts
// (center/quarantine-pages.ts). A digest puts one per entry and action, and one "view" link for the whole list.
import type { Config } from '../config/schema.ts';
import type { LinkAction, LinkSigner } from './tokens.ts';

/** Where users reach the HTTP server: web.public_url, or http://web.listen. */
export function publicBase(config: Config, listening?: { host: string; port: number }): string {
  if (config.web.public_url) return config.web.public_url.replace(/\/+$/, '');
  if (listening) return `http://${listening.host.includes(':') ? `[${listening.host}]` : listening.host}:${listening.port}`;
  return `http://${config.web.listen}`;
}

export function linkUrl(
  signer: LinkSigner,
  base: string,
  action: LinkAction,
  qid: string,
  rcpt: string,
  ttlDays: number,
  now = Date.now(),
): string {
  const token = signer.sign({ action, qid, rcpt: rcpt.toLowerCase(), exp: now + ttlDays * 86_400_000 });
  return `${base}/q/${token}`;
}
