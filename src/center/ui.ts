// The monitoring center's pages: the single-page app built into ui/dist (npm run build:ui), served at /ui/ with the
// index page for every path under it that is not a file, hashed assets cached for good, and a CSP of their own.
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import type { WebDeps } from './server.ts';
import { notice } from './html.ts';

export const UI_PATH = '/ui';
export const UI_DIST = path.resolve(import.meta.dirname, '../../ui/dist');

/**
 * The app's own scripts and styles and calls to this server only; still nothing inline, no frames, no outside
 * resources. The quarantine pages keep the stricter policy of server.ts (no script at all).
 */
export const UI_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
};

interface Asset {
  body: Buffer;
  type: string;
}

/** Every file of a build, read once: the build is small and never changes under a running server. */
function load(dir: string): Map<string, Asset> | undefined {
  if (!fs.existsSync(path.join(dir, 'index.html'))) return undefined;
  const files = new Map<string, Asset>();
  for (const rel of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const abs = path.join(dir, rel);
    if (!fs.statSync(abs).isFile()) continue;
    files.set(rel.split(path.sep).join('/'), { body: fs.readFileSync(abs), type: TYPES[path.extname(rel)] ?? 'application/octet-stream' });
  }
  return files;
}

export const centerUi: FastifyPluginAsync<WebDeps & { dist?: string }> = async (app, opts) => {
  const dist = opts.dist ?? UI_DIST;
  // Read at the first request, not at start-up, so a build made after the server started is still found.
  let files: Map<string, Asset> | undefined;
  const build = () => (files ??= load(dist));

  // What an answer may be cached for; server.ts's hook sets no-store on everything, and this one runs after it
  // (a plugin's hooks follow its parent's), so it replaces that and the strict CSP for these routes only.
  const caching = new WeakMap<object, string>();
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('content-security-policy', UI_CSP);
    const cache = caching.get(reply);
    if (cache) reply.header('cache-control', cache);
    return payload;
  });

  app.get(UI_PATH, async (_req, reply) => reply.redirect(`${UI_PATH}/`, 301));
  app.get<{ Params: { '*': string } }>(`${UI_PATH}/*`, async (req, reply) => {
    const b = build();
    if (!b) {
      opts.log.warn({ dist }, 'the center pages are not built: run npm run build:ui');
      return reply.code(503).type('text/html; charset=utf-8').send(notice('The center is not built', 'Its pages are missing on this server. Run npm run build:ui and reload.'));
    }
    const rel = req.params['*'];
    const file = rel && !rel.endsWith('/') ? b.get(rel) : undefined;
    if (file) {
      // Names under assets/ carry their content hash: a new build has new names, so these never go stale.
      caching.set(reply, rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
      return reply.type(file.type).send(file.body);
    }
    // A missing asset is a 404, never the index page served as a script.
    if (rel.startsWith('assets/') || /\.(js|css|map|png|svg|woff2)$/.test(rel)) {
      return reply.code(404).type('text/plain; charset=utf-8').send('not found');
    }
    // Every other path is a page of the app; the index always comes fresh, so a new build is picked up at once.
    const index = b.get('index.html')!;
    return reply.type(index.type).send(index.body);
  });
};
