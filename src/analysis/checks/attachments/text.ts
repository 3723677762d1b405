// Byte and text patterns: the EICAR test file, and a password given in the message for an encrypted archive.

/** The 68 characters every anti-virus product recognises as its test file (eicar.org). */
export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

/**
 * The EICAR definition: the file starts with the string, followed only by blanks, CR, LF or Ctrl-Z, 128 bytes at
 * most. A longer or prefixed file is not the test file.
 */
export function isEicar(b: Uint8Array): boolean {
  if (b.length < EICAR.length || b.length > 128) return false;
  for (let i = 0; i < EICAR.length; i++) if (b[i] !== EICAR.charCodeAt(i)) return false;
  for (let i = EICAR.length; i < b.length; i++) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0x1a) return false;
  }
  return true;
}

// A keyword, then within a short distance a separator or "is", then a token: "Password: Inv-2025",
// "pwd 4471", "das Kennwort lautet x8Qa", "mot de passe : 1234", "contraseña es 9981".
const PASSWORD =
  /(?:\b(?:pass(?:word|wort|code|phrase)|pwd|pw|kennwort|mot de passe|mdp|contrase[ñn]a|clave|senha|wachtwoord|parola)\b)[^\n\r]{0,24}?(?:[:=：]|\b(?:is|ist|lautet|est|es)\b)\s*["'«“]?([^\s"'»”]{3,64})/iu;

// "pwd 4471", "Passwort 2025inv": the keyword right before a token with a digit in it.
const PASSWORD_BARE = /\b(?:pass(?:word|wort|code)|pwd|pw|kennwort|mdp|contrase[ñn]a|clave)\s+([^\s]*\d[^\s]*)/iu;

/** A password-like phrase in the first 64 KiB of the message text. */
export function passwordInText(text: string): string | undefined {
  const t = text.length > 65536 ? text.slice(0, 65536) : text;
  const m = PASSWORD.exec(t) ?? PASSWORD_BARE.exec(t);
  return m ? m[1] : undefined;
}
