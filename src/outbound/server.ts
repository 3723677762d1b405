// The outbound listener: the organisation's own mail server (or clients in outbound.networks) hands Postern the
// mail it sends to other domains. Postern takes ownership as the gateway does (spool fsynced, rows committed, then
// 250), the relay sends it on (smarthost or MX), and each message teaches the correspondents it was sent to.
import net from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { decodeWords } from 'postal-mime';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import type { Emit } from '../core/events.ts';
import { REPLY, SmtpReplyError, type SmtpReply } from '../core/reply.ts';
import { addressProblem, domainOf, normalizeAddress } from '../core/address.ts';
import { queueId } from '../core/ids.ts';
import { cidrContains } from '../policy/match.ts';
import { splitHeaders } from '../analysis/message-view.ts';
import { normalizeNewlines } from '../gateway/phases/data.ts';
import type { Acceptor } from '../gateway/accept.ts';
import type { Handoff } from '../relay/queue.ts';
import { listenSmtp, smtpServerOptions } from '../gateway/server.ts';
import { routeFor } from '../relay/route.ts';
import { recordOutbound, type CorrespondentBook } from './correspondents.ts';
import type { StoreDb } from '../store/db.ts';
import { buildMessageView, type ParseLimits } from '../analysis/message-view.ts';
import { fingerprintOf, type Fingerprint } from '../similarity/fingerprint.ts';
import type { ClusterWatch } from '../similarity/watch.ts';
import type { PolicyTable } from '../policy/live.ts';

export interface OutboundDeps {
  config: Config;
  log: Logger;
  emit: Emit;
  acceptor: Acceptor;
  db: StoreDb['db'];
  /** Learns at once what this process relays; null when outbound.learn is off. */
  book: CorrespondentBook | null;
  tls: { key: string; cert: string };
  /** Called after a message is durably accepted (the relay's submit). */
  onAccepted(msgId: string, handoff: Handoff): void;
  /** The clusters of recent mail: a copy of a declared outbreak does not leave (absent when outbreak.enabled is off). */
  watch?: ClusterWatch;
  policies?: PolicyTable;
  parseLimits?: Readonly<ParseLimits>;
}

type Callback = (err?: Error | null, message?: string) => void;

export class OutboundListener {
  readonly server: SMTPServer;

  constructor(private readonly deps: OutboundDeps) {
    const { config } = deps;
    this.server = new SMTPServer({
      ...smtpServerOptions(config, deps.tls, 'Postern outbound'),
      logger: false,
      onConnect: (s, cb) => this.guard(s, cb),
      onMailFrom: (a, s, cb) => this.onMailFrom(a, s, cb),
      onRcptTo: (a, s, cb) => this.onRcptTo(a, s, cb),
      onData: (stream, s, cb) =>
        void this.onData(stream, s, cb).catch((err: Error) => {
          // Nothing above should throw; if it does, the client gets a 4xx and sends again, the process goes on.
          deps.log.error({ err: err.message, conn_id: s.id }, 'outbound message failed');
          cb(new SmtpReplyError(REPLY.localProblem));
        }),
    });
    this.server.on('error', (err) => deps.log.warn({ err: err.message }, 'outbound listener error'));
    // Our replies carry their own enhanced code (the REPLY catalogue); smtp-server's table must not put a second
    // one before it ("550 5.1.1 5.7.1 …"). The gateway's connection class does the same.
    type Conn = NodeJS.EventEmitter & { send(code: number, data?: string | string[], context?: string | false): void; init(): void };
    const server = this.server as unknown as { connect(socket: net.Socket, opts: unknown): void; connections: Set<unknown>; _onError(err: Error): void; _onClientConnect(d: unknown): void };
    server.connect = (socket, opts) => {
      const conn = new (SMTPConnection as unknown as new (server: SMTPServer, socket: net.Socket, opts: unknown) => Conn)(this.server, socket, opts);
      const send = conn.send.bind(conn);
      conn.send = (code, data, context) => send(code, data, typeof data === 'string' && /^[245]\.\d{1,3}\.\d{1,3} /.test(data) ? false : context);
      server.connections.add(conn);
      conn.on('error', (err: Error) => server._onError(err));
      conn.on('connect', (d: unknown) => server._onClientConnect(d));
      conn.init();
    };
  }

  listen(host: string, port: number): Promise<net.AddressInfo> {
    return listenSmtp(this.server, host, port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private allowed(ip: string): boolean {
    return this.deps.config.outbound.networks.some((c) => cidrContains(c, ip));
  }

  private refuse(cb: Callback, session: SMTPServerSession, reply: SmtpReply, reason: string, extra: Record<string, unknown> = {}): void {
    this.deps.emit('outbound.rejected', { ip: session.remoteAddress, conn_id: session.id, data: { reason, reply: `${reply.code} ${reply.enhanced}`, ...extra } });
    cb(new SmtpReplyError(reply));
  }

  private guard(session: SMTPServerSession, cb: Callback): void {
    if (this.allowed(session.remoteAddress)) return cb();
    this.refuse(cb, session, REPLY.relayDenied, 'client_not_allowed');
  }

  private onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): void {
    const from = address.address;
    const problem = from === '' ? 'syntax' : addressProblem(from, Boolean(session.envelope.smtpUtf8));
    // Only our own senders relay here: the listener must not become an open relay for a host in its networks that
    // sends in other domains' names (nor carry bounces, whose null sender names no one we could learn from).
    if (problem || !this.deps.config.gateway.domains.includes(domainOf(from))) {
      return this.refuse(cb, session, REPLY.senderNotOurs, problem ? `sender_${problem}` : 'sender_not_ours', { from });
    }
    cb();
  }

  private onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, cb: Callback): void {
    const rcpt = address.address;
    if (!this.allowed(session.remoteAddress)) return this.refuse(cb, session, REPLY.policyRejected, 'client_not_allowed', { rcpt });
    const problem = addressProblem(rcpt, Boolean(session.envelope.smtpUtf8));
    if (problem === 'too_long') return this.refuse(cb, session, REPLY.addressTooLong, 'address_too_long', { rcpt });
    if (problem === 'eight_bit') return this.refuse(cb, session, REPLY.eightBitAddress, 'eight_bit_without_smtputf8', { rcpt });
    if (problem === 'syntax') return this.refuse(cb, session, REPLY.badRecipientSyntax, 'syntax', { rcpt });
    if (session.envelope.rcptTo.length >= this.deps.config.gateway.max_recipients) return this.refuse(cb, session, REPLY.tooManyRcpts, 'too_many_recipients');
    cb();
  }

  private async onData(stream: NodeJS.ReadableStream & { sizeExceeded?: boolean }, session: SMTPServerSession, cb: Callback): Promise<void> {
    const { config, log, emit } = this.deps;
    const from = session.envelope.mailFrom ? normalizeAddress(session.envelope.mailFrom.address) : '';
    const rcpts = [...new Set(session.envelope.rcptTo.map((r) => normalizeAddress(r.address)))];
    const ids = { ip: session.remoteAddress, conn_id: session.id };
    const chunks: Buffer[] = [];
    try {
      for await (const c of stream) chunks.push(c as Buffer);
    } catch (err) {
      log.info({ err: (err as Error).message, ...ids }, 'outbound message not received in full');
      return cb(new SmtpReplyError(REPLY.localProblem));
    }
    if (stream.sizeExceeded) return this.refuse(cb, session, REPLY.messageTooBig, 'too_big', { from });
    const id = queueId();
    const now = Date.now();
    const received =
      `Received: from ${(session.hostNameAppearsAs || 'unknown').replace(/[^\x21-\x7e]/g, '?')} ([${session.remoteAddress.replace(/^::ffff:/, '')}])\r\n` +
      `\tby ${config.gateway.hostname} (Postern) with ESMTP id ${id};\r\n\t${new Date(now).toUTCString().replace('GMT', '+0000')}\r\n`;
    const raw = Buffer.concat([Buffer.from(received, 'latin1'), normalizeNewlines(Buffer.concat(chunks))]);
    const { headers } = splitHeaders(raw);
    const header = (n: string) => headers.find((h) => h.name === n)?.value;
    const messageId = header('message-id')?.trim() || null;
    const subject = header('subject');
    // A forwarded copy of a declared outbreak is refused (the user's client or server shows why); any other copy is
    // fingerprinted so the outbreak detector puts it in its cluster and a later declaration traces where it went.
    let fp: Fingerprint | null = null;
    let outbreak: { cluster: string; reason: string } | undefined;
    const { watch, policies } = this.deps;
    if (watch && policies) {
      try {
        fp = await fingerprintOf(await buildMessageView(raw, this.deps.parseLimits), this.deps.config.similarity.min_shingles);
        const w = watch.check(fp, { ip: session.remoteAddress.replace(/^::ffff:/i, ''), recipients: rcpts.length, suspicious: false }, policies);
        const p = w.safe ? undefined : w.policies.find((x) => x.action !== 'allow');
        if (p) outbreak = { cluster: p.target, reason: p.reason };
      } catch (err) {
        log.warn({ err: (err as Error).message, ...ids }, 'no similarity fingerprint for outbound message');
      }
    }
    if (outbreak) {
      emit('outbound.outbreak_refused', { ...ids, data: { cluster: Number(outbreak.cluster), from, rcpts, message_id: messageId, reason: outbreak.reason } });
      return this.refuse(cb, session, REPLY.outbreakRefused, 'outbreak', { from, cluster: Number(outbreak.cluster) });
    }
    const message = {
      id,
      message_id: messageId,
      received_at: now,
      conn_id: session.id,
      client_ip: session.remoteAddress,
      helo: session.hostNameAppearsAs || null,
      mail_from: from,
      size: raw.length,
      subject: subject === undefined ? null : safeDecode(subject),
      score: 0,
      symbols: '[]',
      verdict: JSON.stringify({ outbound: true }),
      status: 'queued',
    };
    const recipients = rcpts.map((r) => ({
      msg_id: id,
      rcpt: r,
      action: 'accept',
      reasons: JSON.stringify([{ source: 'outbound', action: 'accept', detail: 'relayed for our own sender' }]),
      status: 'queued',
      route: routeFor(r, config),
      deliver_to: r,
      attempts: 0,
      next_attempt_at: now,
      last_error: null,
      updated_at: now,
    }));
    try {
      await this.deps.acceptor.accept({ message, recipients, quarantine: [], raw });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      log.error({ err: e.message, code: e.code, msg_id: id }, 'could not take ownership of outbound message');
      emit('store.error', { ...ids, msg_id: id, data: { op: 'outbound_accept', error: e.message, code: e.code } });
      return cb(new SmtpReplyError(REPLY.localProblem));
    }
    // Learning follows ownership: the message goes out either way, and a failed write costs one lesson, not the mail.
    let learned: string[] = [];
    if (config.outbound.learn) {
      try {
        learned = await recordOutbound(this.deps.db, { sender: from, recipients: rcpts, messageId, now, ourDomains: config.gateway.domains }, this.deps.book ?? undefined);
      } catch (err) {
        log.warn({ err: (err as Error).message, msg_id: id }, 'could not learn correspondents of outbound message');
      }
    }
    emit('outbound.accepted', { ...ids, msg_id: id, data: { from, rcpts, message_id: messageId, size: raw.length, learned: learned.length, ...(fp && { fp }) } });
    cb(null, `2.0.0 Ok: queued as ${id}`);
    this.deps.onAccepted(id, { message, recipients, raw });
  }
}

function safeDecode(v: string): string {
  try {
    return decodeWords(v);
  } catch {
    return v;
  }
}
