// Reading messages for learn and eval: single files, folders walked recursively in order, and mbox files.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listFiles, messagesOf } from './mail-files.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-mail-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

describe('mail files', () => {
  it('splits an mbox on "From " lines, drops the separators and undoes >From quoting', () => {
    const dir = tree({
      'box.mbox':
        'From alice@example.org Thu Aug 22 13:17:22 2002\nFrom: alice@example.org\nSubject: one\n\nbody one\n>From here on\n\n' +
        'From bob@example.org Thu Aug 22 13:18:00 2002\nFrom: bob@example.org\nSubject: two\n\nbody two\n' +
        'From carol@example.org Thu Aug 22 13:19:00 2002\nSubject: three\n\nFrom: is not a separator\n',
    });
    const msgs = [...messagesOf([path.join(dir, 'box.mbox')])];
    expect(msgs.map((m) => m.raw.toString())).toEqual([
      'From: alice@example.org\nSubject: one\n\nbody one\nFrom here on\n\n',
      'From: bob@example.org\nSubject: two\n\nbody two\n',
      'Subject: three\n\nFrom: is not a separator\n',
    ]);
    expect(msgs.map((m) => path.basename(m.where))).toEqual(['box.mbox#1', 'box.mbox#2', 'box.mbox#3']);
  });

  it('reads a plain message file whole and walks folders recursively in name order, skipping dot files', () => {
    const dir = tree({ 'b/2.eml': 'Subject: b2\n\nx\n', 'a.eml': 'Subject: a\n\nx\n', 'b/1.eml': 'Subject: b1\n\nx\n', '.hidden': 'x' });
    expect(listFiles([dir]).map((f) => path.relative(dir, f))).toEqual(['a.eml', 'b/1.eml', 'b/2.eml']);
    expect([...messagesOf([dir])].map((m) => m.raw.toString().split('\n')[0])).toEqual(['Subject: a', 'Subject: b1', 'Subject: b2']);
  });

  it('skips files that are not messages, such as the JSON sidecars of the corpus package', () => {
    const dir = tree({ '00001.txt': 'From x@y Thu Aug 22 13:17:22 2002\nSubject: a\n\nx\n', '00001.json': '{"id":"00001","text":"From x"}', 'notes.md': '# notes\n' });
    const skipped: string[] = [];
    expect([...messagesOf([dir], (f) => skipped.push(path.basename(f)))].map((m) => path.basename(m.where))).toEqual(['00001.txt']);
    expect(skipped).toEqual(['00001.json', 'notes.md']);
  });
});
