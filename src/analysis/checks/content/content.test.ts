// The content check's pieces on their own: the forms each heuristic must and must not accept, and hostile input
// that must neither throw nor take more than linear time.
import { describe, expect, it } from 'vitest';
import { htmlTraits, HTML_CAP } from './html.ts';
import { newsletterFooter, randomTail, wordingOf, TEXT_CAP } from './text.ts';
import { bulkMessageId, countRecipients, dateOddForm, forgedOutlookExpress, subjectAdvertLabel, subjectExclaims, subjectPadded, subjectShouts } from './headers.ts';
import { freemail, salesName } from './sender.ts';

describe('subject', () => {
  it('shouting needs three words and ten letters, almost all capitals', () => {
    expect(subjectShouts('MAKE MONEY FAST TODAY')).toBe(true);
    expect(subjectShouts('URGENT')).toBe(false);
    expect(subjectShouts('IBM and NASA sign deal')).toBe(false);
    expect(subjectShouts('RE: FW: OK')).toBe(false);
  });
  it('exclaims with doubled marks, dollar runs or three exclamation marks', () => {
    expect(subjectExclaims('Act now!!')).toBe(true);
    expect(subjectExclaims('$$$ for you')).toBe(true);
    expect(subjectExclaims('Yes! Really! Now!')).toBe(true);
    expect(subjectExclaims('Release 2.0 is out!')).toBe(false);
  });
  it('padding is a run of five blanks after a word, folds included', () => {
    expect(subjectPadded(' Lose weight now                     qkdjtq')).toBe(true);
    expect(subjectPadded(' Lose weight now\t     ')).toBe(true);
    expect(subjectPadded(' Re: [SAtalk]   a question')).toBe(false);
  });
  it('the ADV label may follow a list tag', () => {
    expect(subjectAdvertLabel('ADV: Lowest rates')).toBe(true);
    expect(subjectAdvertLabel('[ILUG] adv : cheap')).toBe(true);
    expect(subjectAdvertLabel('Advice on the ADV: label')).toBe(false);
  });
});

describe('headers', () => {
  it('Date forms no mail program writes', () => {
    expect(dateOddForm('Tue, 3 Sep 2002 14:05:11')).toBe('no zone');
    expect(dateOddForm('Tue, 3 Sep 02 14:05:11 +0100')).toBe('two-digit year');
    expect(dateOddForm('Tue, 3 Sep 2002 14:05 +0100')).toBe('no seconds');
    expect(dateOddForm('Tue, 3 Sep 2002 14:05:11 +0100 (BST)')).toBeUndefined();
    expect(dateOddForm('3 Sep 2002 14:05:11 GMT')).toBeUndefined();
    expect(dateOddForm('not a date')).toBeUndefined();
  });
  it("Outlook Express's Message-ID form, and the zero-padded imitation", () => {
    const oe = '<001801c25b3d$e0a6e1a0$6401a8c0@host>';
    expect(forgedOutlookExpress('Microsoft Outlook Express 6.00.2600.0000', oe)).toBe(false);
    expect(forgedOutlookExpress('Microsoft Outlook Express 6.00.2600.0000', '<20020903.4821@host>')).toBe(true);
    expect(forgedOutlookExpress('Microsoft Outlook Express Macintosh Edition - 4.5 (0410)', '<E17hrT0-0004gj-00@host>')).toBe(false);
    expect(bulkMessageId('<0000047b4e66$00005044$00005470@host>')).toBe(true);
    expect(bulkMessageId(oe)).toBe(false);
  });
  it('recipients are counted outside quoted display names, up to the cap', () => {
    expect(countRecipients(['"a@b, c@d" <x@example.com>', 'y@example.com'], 10)).toBe(2);
    expect(countRecipients(['a@x.example, '.repeat(10_000)], 15)).toBe(15);
  });
});

describe('sender', () => {
  it('free-mail domains match themselves and their subdomains only', () => {
    expect(freemail('Kim <kim@mail.yahoo.com>', ['yahoo.com'])).toBe(true);
    expect(freemail('kim@yahoo.com.evil.example', ['yahoo.com'])).toBe(false);
    expect(freemail('kim@notyahoo.com', ['yahoo.com'])).toBe(false);
  });
  it('sales roles in the display name, not people', () => {
    expect(salesName('"Sales Department" <info@cheap.example>')).toBe(true);
    expect(salesName('Anna Berg <anna@supplier.example>')).toBe(false);
    expect(salesName('info@cheap.example')).toBe(false);
  });
});

describe('wording', () => {
  it('counts each phrase once, and finds removal instructions and the disclaimer', () => {
    const w = wordingOf('Click here! click here. Act NOW, risk free. Reply with REMOVE in the subject. This is not spam.');
    expect(w.found).toEqual(expect.arrayContaining(['click here', 'act now', 'risk free']));
    expect(w.found.filter((p) => p === 'click here')).toHaveLength(1);
    expect(w.removal).toBe(true);
    expect(w.disclaimer).toBe(true);
  });
  it('obfuscated words need a substitution; the plain word does not count', () => {
    expect(wordingOf('buy v1agra and c1alis').obfuscated).toBe('v1agra');
    expect(wordingOf('cheap m0rtgage').obfuscated).toBe('m0rtgage');
    expect(wordingOf('ca$h today').obfuscated).toBe('ca$h');
    expect(wordingOf('v.i.a.g.r.a').obfuscated).toBe('v.i.a.g.r.a');
    expect(wordingOf('free software and cash flow, viagra in the news').obfuscated).toBeUndefined();
    expect(wordingOf('steps a b c d and e').obfuscated).toBeUndefined();
    expect(wordingOf('Get F R E E stuff').obfuscated).toBe('F R E E');
    expect(wordingOf('S O C I A L  M E D I A news').obfuscated).toBeUndefined();
  });
  it('counts dollar amounts and capitals', () => {
    const w = wordingOf('$5, $ 10, $1,000, US$ and $x. THIS IS LOUD but this is not');
    expect(w.dollars).toBe(3);
    expect(w.capsWords).toBe(2);
  });
  it('reads only the first TEXT_CAP characters', () => {
    expect(wordingOf(`${'a '.repeat(TEXT_CAP)} click here act now risk free`).phrases).toBe(0);
  });
});

describe('closing lines', () => {
  it('a random token closing the body, letters round digits or a long run of consonants', () => {
    expect(randomTail('Best regards\nSales Department\nSpain\nxay1992361y\n\n')).toBe('xay1992361y');
    expect(randomTail('Wie findest Du das ?\r\nPeter\r\ngcoakgwnibgafjecarccjbjiiqlluijseublait\r\n')).toBe('gcoakgwnibgafjecarccjbjiiqlluijseublait');
  });
  it('names, words, codes and links are not random tokens', () => {
    expect(randomTail('Thanks,\nPeter\n')).toBeUndefined();
    expect(randomTail('See you\nunsubscribeinstructions\n')).toBeUndefined();
    expect(randomTail('Order 2002\nRef: ABC12345\nhttp://example.com/xay1992361y\n')).toBeUndefined();
    expect(randomTail('Version 3\nmp3\n')).toBeUndefined();
  });
  it('only the last four non-empty lines count', () => {
    expect(randomTail('xay1992361y\none\ntwo\nthree\nfour\n')).toBeUndefined();
    expect(randomTail('xay1992361y\none\ntwo\nthree\n')).toBe('xay1992361y');
  });
  it("a newsletter footer needs both the copyright notice and the subscriber's terms, near the end", () => {
    const footer = 'You subscribed at example.com. Read our privacy policy.\n(c) 2002 Example Inc. All rights reserved.';
    expect(newsletterFooter(`News of the week.\n${footer}`)).toBe(true);
    expect(newsletterFooter('News of the week.\nCopyright 2002 Example Inc.')).toBe(false);
    expect(newsletterFooter('News of the week.\nTo change your preferences, reply.')).toBe(false);
    expect(newsletterFooter(`${footer}\n${'news '.repeat(2_000)}`)).toBe(false);
  });
  it('a body of 10 MB, one line without breaks: the tail is read, nothing throws', () => {
    const huge = `${'word '.repeat(2_000_000)}\nxay1992361y`;
    expect(randomTail(huge)).toBe('xay1992361y');
    expect(randomTail('x'.repeat(10_000_000))).toBeUndefined();
    expect(newsletterFooter(`Copyright 2002. ${'word '.repeat(2_000_000)}`)).toBe(false);
  });
});

describe('html', () => {
  it('text coloured as the background, tiny fonts, comment-split words', () => {
    const t = htmlTraits('<body bgcolor=black><font color="#000000">hidden words here</font><font size=1>x</font> vi<!-- a -->agra</body>');
    expect(t.invisible).toBe('color #000000 on #000000');
    expect(t.tiny).toBe(true);
    expect(t.commentSplit).toBe(true);
  });
  it('a white cell border is not hidden text, nor is white on a dark page', () => {
    expect(htmlTraits('<table style="border-color: #fff"><tr><td>x</td></tr></table>').invisible).toBeUndefined();
    expect(htmlTraits('<body bgcolor="#000033"><font color=white>Welcome back</font></body>').invisible).toBeUndefined();
  });
  it('visible text drops tags, comments, scripts and styles', () => {
    const t = htmlTraits('<style>p{color:red}</style><p>Hello&nbsp;<b>world</b></p><!-- note --><script>var a = "<p>";</script>!');
    expect(t.text).toBe('Hello world !');
  });
  it('images with almost no text', () => {
    expect(htmlTraits('<a href="http://x.example"><img src="http://x.example/a.gif"></a> Click').imageOnly).toBe(true);
    expect(htmlTraits(`<img src="a.gif"><p>${'words '.repeat(60)}</p>`).imageOnly).toBe(false);
  });
  it('hostile HTML: unclosed constructs and floods of tags stay linear and never throw', () => {
    for (const h of ['<'.repeat(HTML_CAP), '<!--'.repeat(HTML_CAP / 4), '<font color='.repeat(10_000), '<script>'.repeat(10_000), 'a<!--'.repeat(20_000)]) {
      const t = htmlTraits(h);
      expect(typeof t.text).toBe('string');
    }
    // Counting stops at 10,000 tags, long before the 64 KiB prefix runs out.
    expect(htmlTraits('<font>'.repeat(50_000)).fontTags).toBe(10_000);
  });
});
