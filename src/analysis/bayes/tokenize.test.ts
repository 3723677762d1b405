// The tokenizer on real message bytes: which features it takes, what it ignores, and its caps on hostile input.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildMessageView } from '../message-view.ts';
import { TOKEN_LIMITS, stripHtml, tokenize } from './tokenize.ts';
import { toCrlf } from './learn.ts';

const CASES = path.resolve(import.meta.dirname, '../checks/bayes/cases');
const tokensOf = async (raw: string | Buffer) => tokenize(await buildMessageView(toCrlf(Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'utf8'))));

const MSG = (headers: string, body: string) => `${headers}\r\n\r\n${body}`;

describe('tokenize', () => {
  it('takes subject, body words, URL hosts and header hints of a real message, each once', async () => {
    const t = await tokensOf(fs.readFileSync(path.join(CASES, 'corpus-ham-sure.eml')));
    expect(new Set(t).size).toBe(t.length);
    expect(t.some((x) => x.startsWith('subject:'))).toBe(true);
    expect(t).toContain('hdr:message-id');
    expect(t.some((x) => x.startsWith('from:domain:'))).toBe(true);
    expect(t.some((x) => x.startsWith('received:'))).toBe(true);
  });

  it('lower-cases and normalises words, keeps 3-12 characters, and turns long ones into a length class', async () => {
    const t = await tokensOf(
      MSG('From: A <a@shop.example.net>\r\nSubject: FREE Offer!!\r\nContent-Type: text/plain; charset=utf-8', 'Ｗｏｒｌｄ Hello, ab supercalifragilistic\r\nvisit http://deals.shop.example.net/buy/now?x=1 today'),
    );
    expect(t).toEqual(expect.arrayContaining(['subject:free', 'subject:offer', 'world', 'hello', 'skip:s20', 'url:example.net', 'url:shop.example.net', 'url:path:buy', 'proto:http', 'from:domain:example.net', 'charset:utf-8', 'ct:text/plain']));
    expect(t).not.toContain('ab');
    expect(t).not.toContain('Hello');
  });

  it('reads the text of HTML-only mail without its tags, and notes which tags were used', async () => {
    const t = await tokensOf(MSG('From: a@b.example\r\nSubject: x\r\nContent-Type: text/html', '<html><body><font color=red>Cheap <b>pills</b></font><script>var hidden=1</script><a href="http://10.1.2.3/x">here</a></body></html>'));
    expect(t).toEqual(expect.arrayContaining(['cheap', 'pills', 'html:font', 'body:html-only', 'url:ip', 'url:ip:10.1']));
    expect(t).not.toContain('hidden');
    expect(t.some((x) => x.includes('<'))).toBe(false);
  });

  it('does not learn the mailbox or an earlier filter (X-Spam-*, Status, Delivered-To)', async () => {
    const t = await tokensOf(MSG('From: a@b.example\r\nX-Spam-Status: Yes, score=12\r\nStatus: RO\r\nDelivered-To: me@here.example\r\nSubject: hi', 'hello there'));
    expect(t.filter((x) => /spam|status|delivered/.test(x))).toEqual([]);
  });

  it('caps the number of tokens, whatever the message holds', async () => {
    const words = Array.from({ length: 20_000 }, (_, i) => `w${i.toString(36)}x`).join(' ');
    const t = await tokensOf(MSG('From: a@b.example\r\nSubject: many', words));
    expect(t.length).toBe(TOKEN_LIMITS.maxTokens);
  });

  it('never throws on arbitrary bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2_000 }), async (bytes) => {
        const t = await tokenize(await buildMessageView(Buffer.from(bytes)));
        expect(Array.isArray(t)).toBe(true);
        expect(t.length).toBeLessThanOrEqual(TOKEN_LIMITS.maxTokens);
      }),
      { numRuns: 200 },
    );
  });

  it('strips comments, scripts, styles and entities from HTML', () => {
    expect(stripHtml('a<!-- x -->b<style>p{}</style>c&amp;d&#65;').replace(/\s+/g, ' ')).toBe('a b c&dA');
  });
});
