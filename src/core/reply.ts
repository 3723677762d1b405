// SMTP replies: the type, the catalogue Postern answers with, and the error smtp-server turns into a reply line.

export interface SmtpReply<C extends 4 | 5 = 4 | 5> {
  code: number;
  enhanced: `${C}.${number}.${number}`;
  /** Generic text: never names the mechanism or the configuration. */
  text: string;
}

function make<C extends 4 | 5>(cls: C, code: number, enhanced: `${C}.${number}.${number}`, text: string): SmtpReply<C> {
  if (Math.floor(code / 100) !== cls || Number(enhanced[0]) !== cls) {
    throw new Error(`reply class mismatch: ${code} ${enhanced}`);
  }
  return Object.freeze({ code, enhanced, text });
}
export const temp = (code: number, enhanced: `4.${number}.${number}`, text: string) => make(4, code, enhanced, text);
export const perm = (code: number, enhanced: `5.${number}.${number}`, text: string) => make(5, code, enhanced, text);

/** Every reply Postern gives on its own account; docs/replies.md lists them. */
export const REPLY = {
  policyRejected: perm(550, '5.7.1', 'Message refused by policy'),
  unknownRecipient: perm(550, '5.1.1', 'No such recipient here'),
  relayDenied: perm(554, '5.7.1', 'Relay access denied'),
  senderNotOurs: perm(550, '5.7.1', 'Sender address not allowed here'),
  contentRejected: perm(554, '5.7.1', 'Message content refused'),
  outbreakRefused: perm(550, '5.7.1', 'Message refused: it is a copy of a mail outbreak held by this gateway'),
  bareNewline: perm(550, '5.5.2', 'Message refused: bare <CR> or <LF> in data'),
  smuggling: perm(550, '5.5.2', 'Message refused: end-of-data sequence with bare <CR> or <LF>'),
  nulByte: perm(550, '5.6.0', 'Message refused: NUL byte in data'),
  messageTooBig: perm(552, '5.3.4', 'Message size exceeds fixed limit'),
  sizeDeclaredTooBig: perm(552, '5.3.4', 'Declared message size exceeds fixed limit'),
  badSenderSyntax: perm(553, '5.1.7', 'Bad sender address syntax'),
  badRecipientSyntax: perm(553, '5.1.3', 'Bad recipient address syntax'),
  addressTooLong: perm(553, '5.1.3', 'Address exceeds RFC 5321 length limits'),
  eightBitAddress: perm(553, '5.6.7', 'Non-ASCII address requires SMTPUTF8'),
  lineTooLong: perm(500, '5.5.2', 'Line too long'),
  unknownCommand: perm(500, '5.5.2', 'Command not recognized'),
  syntaxError: perm(501, '5.5.4', 'Syntax error in parameters or arguments'),
  bdatNotSupported: perm(502, '5.5.1', 'BDAT not supported, closing connection'),
  pipelining: perm(554, '5.5.0', 'SMTP protocol synchronization error'),
  headerAsCommand: perm(554, '5.5.0', 'Message header received as a command'),
  forbiddenCommand: perm(554, '5.5.0', 'Not an SMTP command, closing connection'),
  tooManyRcpts: temp(452, '4.5.3', 'Too many recipients, send the rest later'),
  tooManyConnections: temp(421, '4.7.0', 'Too many connections, try again later'),
  tooManyErrors: temp(421, '4.7.0', 'Too many errors, closing connection'),
  earlyTalker: temp(421, '4.7.0', 'Protocol error: talked before the greeting'),
  lineTooLongClosing: temp(421, '4.7.0', 'Line too long, closing connection'),
  idleTimeout: temp(421, '4.4.2', 'Timeout, closing connection'),
  requestTimeout: temp(421, '4.4.2', 'Client too slow, closing connection'),
  sessionTimeout: temp(421, '4.4.2', 'Session time limit exceeded'),
  tryLater: temp(451, '4.7.1', 'Please try again later'),
  similarityHold: temp(451, '4.7.1', 'Message held for classification, please try again later'),
  verifyTimeout: temp(451, '4.4.3', 'Recipient verification unavailable, try again later'),
  localProblem: temp(451, '4.3.0', 'Temporary local problem, please try again later'),
  storageFull: temp(452, '4.3.1', 'Insufficient system storage, try again later'),
  shuttingDown: temp(421, '4.3.2', 'Service shutting down, try again later'),
} as const satisfies Record<string, SmtpReply>;

export type ReplyName = keyof typeof REPLY;

/** The error smtp-server turns into `code enhanced text` on the wire. */
export class SmtpReplyError extends Error {
  readonly responseCode: number;
  constructor(readonly reply: SmtpReply) {
    super(`${reply.enhanced} ${reply.text}`);
    this.responseCode = reply.code;
  }
}

export const replyLine = (r: SmtpReply): string => `${r.code} ${r.enhanced} ${r.text}`;
