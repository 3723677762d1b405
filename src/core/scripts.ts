// Mixed scripts in a domain label (Unicode TR39): shared by the gateway, which records it for an IDN sender, and
// the urls check, which scores it for a link.

const SCRIPTS: readonly (readonly [string, RegExp])[] = [
  ['Latin', /\p{Script=Latin}/u],
  ['Cyrillic', /\p{Script=Cyrillic}/u],
  ['Greek', /\p{Script=Greek}/u],
  ['Armenian', /\p{Script=Armenian}/u],
  ['Han', /\p{Script=Han}/u],
  ['Hiragana', /\p{Script=Hiragana}/u],
  ['Katakana', /\p{Script=Katakana}/u],
  ['Hangul', /\p{Script=Hangul}/u],
  ['Bopomofo', /\p{Script=Bopomofo}/u],
];

// TR39 "highly restrictive": one script per label, or Latin with the scripts written together in Japanese,
// Chinese or Korean.
const ALLOWED_MIXES: readonly (readonly string[])[] = [
  ['Latin', 'Han', 'Hiragana', 'Katakana'],
  ['Latin', 'Han', 'Bopomofo'],
  ['Latin', 'Han', 'Hangul'],
];

/** The scripts of the letters of a label; digits, hyphens and marks belong to none. */
function scriptsOf(label: string): Set<string> {
  const found = new Set<string>();
  for (const ch of label) {
    if (!/\p{L}/u.test(ch)) continue;
    const s = SCRIPTS.find(([, re]) => re.test(ch));
    found.add(s ? s[0] : 'Other');
  }
  return found;
}

/** A label of the (Unicode) host whose letters mix scripts in a way no language writes; undefined when none. */
export function mixedScriptLabel(hostUnicode: string): string | undefined {
  for (const label of hostUnicode.split('.')) {
    // eslint-disable-next-line no-control-regex
    if (!/[^\x00-\x7f]/.test(label)) continue;
    const scripts = scriptsOf(label);
    if (scripts.size < 2) continue;
    if (ALLOWED_MIXES.some((mix) => [...scripts].every((s) => mix.includes(s)))) continue;
    return label;
  }
  return undefined;
}
