// What a copy must look like before it goes to any downstream: CR and LF only as a CRLF pair.
// Dot-stuffing is the SMTP/LMTP client's job (nodemailer's DataStream); tests assert both on the wire bytes.

/** True when `raw` holds a CR not followed by LF or an LF not preceded by CR. */
export function hasBareNewline(raw: Buffer): boolean {
  for (let i = raw.indexOf(0x0d); i !== -1; i = raw.indexOf(0x0d, i + 1)) {
    if (raw[i + 1] !== 0x0a) return true;
  }
  for (let i = raw.indexOf(0x0a); i !== -1; i = raw.indexOf(0x0a, i + 1)) {
    if (i === 0 || raw[i - 1] !== 0x0d) return true;
  }
  return false;
}

/**
 * Turns every bare CR and bare LF into CRLF (RFC 5321 2.3.8). A message can reach the relay with them: written
 * into the spool by something other than the gateway's DATA reader, released from quarantine, or accepted
 * before the normalising policy existed. A downstream that treats a lone CR or LF as a line end would otherwise
 * read a different message, or an end of data, where we sent none (reliability.md S-09, CVE-2026-33604).
 */
export function crlfOnly(raw: Buffer): Buffer {
  if (!hasBareNewline(raw)) return raw;
  return Buffer.from(raw.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}
