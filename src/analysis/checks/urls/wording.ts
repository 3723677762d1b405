// Credential-harvest wording: the phrases that ask a reader to log in, verify or restore an account, in English,
// German, French and Spanish. Each phrase alone is ordinary in some legitimate mail (sign-up confirmations, IT
// notices), so the check uses them only next to a link and weighs them by where the link goes.

// One entry per phrase family; spaces match any run of white space (text from HTML keeps its line breaks).
const PHRASES: readonly string[] = [
  // English
  'verify your (?:account|identity|mailbox|e-?mail account|login|password|billing|payment)',
  'confirm your (?:identity|login|billing|banking|payment|card)',
  'unusual (?:sign-?in|log-?in|login) (?:activity|attempt)',
  'suspicious (?:sign-?in|log-?in|login) (?:activity|attempt)',
  'unusual activity (?:on|in) your account',
  'password (?:expires|will expire|has expired|is about to expire|expiration notice)',
  'mailbox (?:quota|is full|storage (?:is )?full|has exceeded|size limit)',
  'e-?mail quota',
  '(?:account|mailbox) (?:has been|will be|is|was) (?:temporarily )?(?:suspended|locked|disabled|deactivated|limited|restricted|blocked|on hold)',
  'update your (?:billing|payment|account|banking) (?:information|details|info)',
  '(?:validate|re-?activate|restore|unlock|reconfirm) your (?:account|mailbox|e-?mail)',
  '(?:log|sign) ?in (?:now )?to (?:verify|confirm|restore|unlock|reactivate)',
  'failure to (?:verify|confirm|update|validate) (?:your|this)',
  're-?enter your (?:password|login)',
  // German
  'bestätigen sie (?:ihr(?:e|en)?|ihre) (?:konto|identität|passwort|zugangsdaten|daten)',
  'verifizieren sie (?:ihr(?:e|en)?) (?:konto|identität|zugangsdaten)',
  'ihr (?:konto|postfach|passwort) (?:wurde|wird|ist) (?:vorübergehend )?(?:gesperrt|eingeschränkt|deaktiviert|abgelaufen)',
  'ihr passwort läuft (?:heute )?ab',
  'ungewöhnliche anmelde(?:aktivität|versuche?)',
  'postfach (?:ist voll|speicher(?:platz)? (?:ist )?voll)',
  // French
  'vérifie[rz] votre (?:compte|identité)',
  'confirme[rz] votre (?:identité|compte|mot de passe)',
  'votre compte (?:a été|sera|est) (?:temporairement )?(?:suspendu|bloqué|désactivé|limité)',
  'votre mot de passe (?:expire|a expiré|va expirer)',
  'activité (?:de connexion )?inhabituelle',
  'boîte (?:aux lettres|mail|de réception) (?:est )?pleine',
  // Spanish
  'verifi(?:que|ca|car) (?:su|tu) (?:cuenta|identidad)',
  'confirm(?:e|a|ar) (?:su|tu) (?:identidad|cuenta|contraseña)',
  '(?:su|tu) cuenta (?:ha sido|será|está) (?:temporalmente )?(?:suspendida|bloqueada|desactivada|limitada)',
  '(?:su|tu) contraseña (?:caduca|expira|ha caducado|ha expirado|va a caducar)',
  'actividad (?:de inicio de sesión )?inusual',
  'buzón (?:de correo )?(?:está )?lleno',
];

const WORDING = new RegExp(`(?:^|[^\\p{L}])(${PHRASES.map((p) => p.replace(/ /g, '\\s+')).join('|')})`, 'giu');

/** Text scanned per source; the lure of a credential phish is near the top. */
export const MAX_WORDING_CHARS = 64 * 1024;
const MAX_PHRASES = 10;

/** Distinct credential-harvest phrases in the texts (lower case, white space collapsed), at most 10. */
export function phishPhrases(texts: readonly string[]): string[] {
  const found = new Set<string>();
  for (const t of texts) {
    if (!t) continue;
    for (const m of (t.length > MAX_WORDING_CHARS ? t.slice(0, MAX_WORDING_CHARS) : t).matchAll(WORDING)) {
      found.add(m[1].toLowerCase().replace(/\s+/g, ' '));
      if (found.size >= MAX_PHRASES) return [...found];
    }
  }
  return [...found];
}
