// Registrable domains of common URL shorteners: a link through one hides where it goes until it is followed.
// Extend with [analysis.checks.urls] extra_shorteners.
export const SHORTENERS: readonly string[] = [
  'bit.ly', 'bitly.com', 'bit.do', 'buff.ly', 'cutt.ly', 'did.li', 'goo.gl', 'git.io', 'is.gd', 'lnkd.in', 'ow.ly',
  'rb.gy', 'rebrand.ly', 'shorturl.at', 'snip.ly', 't.co', 't.ly', 'tiny.cc', 'tinyurl.com', 'tr.im', 'u.to',
  'v.gd', 'x.co', 'qrco.de', 'shorte.st', 'adf.ly', 'bl.ink', 'short.io', 'urlz.fr', 'surl.li', 'clck.ru',
  'soo.gd', 's.id', 'gg.gg', 'tiny.one', 'smarturl.it', 'y2u.be', '1url.com', 'mcaf.ee',
  'po.st', 'db.tt', 'ift.tt', 'dlvr.it', 'trib.al', 'zpr.io', 'hyperurl.co', 'short.gy', 'shorturl.com',
  'makeashorterlink.com', 'snipurl.com', 'snurl.com', 'lnk.to',
];
