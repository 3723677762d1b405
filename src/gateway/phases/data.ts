// End of DATA: read the message, refuse what is malformed, analyse it in line, decide per recipient,
// and take ownership (spool + index) before answering 250. A refused message is never owned.
import os from 'node:os';
import type { SMTPServerSession } from 'smtp-server';
import type { Config } from '../../config/schema.ts';
import type { Logger } from '../../core/log.ts';
import type { Emit } from '../../core/events.ts';
import { REPLY, SmtpReplyError, type SmtpReply } from '../../core/reply.ts';
import { queueId } from '../../core/ids.ts';
import { normalizeAddress } from '../../core/address.ts';
import type { Analyse, AnalysisResult } from '../../analysis/analyse.ts';
import type { Runner } from '../../analysis/runner.ts';
import { total, type ScoreTable } from '../../analysis/scoring.ts';
import type { PolicyTable } from '../../policy/live.ts';
import { decideRecipient, settle, type RecipientDecision } from '../../policy/decide.ts';
import type { DataStream } from '../data-reader.ts';
import type { Acceptor } from '../accept.ts';
import type { ConnState } from '../server.ts';
import type { SourceBook } from '../sources.ts';
import { routeFor } from '../../relay/route.ts';
import type { Handoff } from '../../relay/queue.ts';
import type { ClusterWatch } from '../../similarity/watch.ts';
import type { SymbolHit } from '../../analysis/check.ts';

// Recorded with each decision: which host of a cluster made it.
const HOST = os.hostname();

export interface DataDeps {
  config: Config;
  log: Logger;
  emit: Emit;
  runner: Runner;
  /** The analysis after DATA: on the event loop, or in the analysis threads (analysis/threads.ts). */
  analyse: Analyse;
  scores: ScoreTable;
  policies: PolicyTable;
  acceptor: Acceptor;
  sources: SourceBook;
  state(session: SMTPServerSession): ConnState;
  /** Told of every message taken, with its rows and bytes so a local relay need not read them back. */
  onAccepted(msgId: string, handoff: Handoff): void;
  /** The clusters of recent mail (outbreak detection); absent when outbreak.enabled is off. */
  watch?: ClusterWatch;
}

type Callback = (err?: Error | null, message?: string) => void;

function readAll(stream: DataStream): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      done = true;
      resolve(Buffer.concat(chunks));
    });
    stream.on('error', () => {
      if (!done) resolve(null);
    });
    stream.on('close', () => {
      if (!done) resolve(null);
    });
  });
}

/** Turns every bare CR and bare LF into CRLF so the analyser and the downstream see the same lines. */
export function normalizeNewlines(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

function receivedHeader(config: Config, st: ConnState, session: SMTPServerSession, id: string, rcpts: string[]): string {
  const proto = `ESMTP${session.secure ? 'S' : ''}`;
  const helo = (st.helo ?? 'unknown').replace(/[^\x21-\x7e]/g, '?');
  const forPart = rcpts.length === 1 ? `\r\n\tfor <${rcpts[0]}>` : '';
  return `Received: from ${helo} ([${st.ip.replace(/^::ffff:/, '')}])\r\n\tby ${config.gateway.hostname} (Postern) with ${proto} id ${id}${forPart};\r\n\t${new Date().toUTCString().replace('GMT', '+0000')}\r\n`;
}

export async function handleData(deps: DataDeps, stream: DataStream, session: SMTPServerSession, cb: Callback): Promise<void> {
  const { config, emit, log } = deps;
  const st = deps.state(session);
  const env = session.envelope;
  const mailFrom = env.mailFrom ? env.mailFrom.address : '';
  const rcpts = env.rcptTo.map((r) => normalizeAddress(r.address));
  const ids = { ip: st.ip, conn_id: st.cid };
  // A refusal after analysis names the message (msg_id) and carries its fingerprint, so that the outbreak detector
  // counts refused copies of a campaign too.
  const refuse = (reply: SmtpReply, reason: string, extra: Record<string, unknown> = {}, msgId?: string) => {
    st.refused++;
    if (reply.code >= 500) deps.sources.refused(st.ip);
    emit('smtp.data.rejected', { ...ids, ...(msgId && { msg_id: msgId }), data: { reason, reply: `${reply.code} ${reply.enhanced}`, from: mailFrom, rcpts, ...extra } });
    cb(new SmtpReplyError(reply));
  };

  const raw0 = await readAll(stream);
  if (raw0 === null) {
    emit('smtp.data.aborted', { ...ids, data: { from: mailFrom, rcpts, bytes: stream.byteLength } });
    cb(new SmtpReplyError(REPLY.localProblem));
    return;
  }
  const flags = stream.flags;
  if (flags.beforeGo) {
    deps.sources.protocolError(st.ip);
    emit('smtp.protocol_error', { ...ids, data: { kind: 'pipelining', detail: 'message data before the 354 reply' } });
    refuse(REPLY.pipelining, 'pipelining');
    setImmediate(() => st.close());
    return;
  }
  if (stream.byteLength > config.gateway.max_message_bytes) {
    return refuse(REPLY.messageTooBig, 'too_big', { bytes: stream.byteLength });
  }
  if (flags.smuggling) return refuse(REPLY.smuggling, 'smuggling', { bare_lf: flags.bareLf, bare_cr: flags.bareCr });
  if (flags.nul) return refuse(REPLY.nulByte, 'nul_byte');
  const bare = flags.bareLf + flags.bareCr;
  if (bare > 0 && config.gateway.bare_newline === 'reject') return refuse(REPLY.bareNewline, 'bare_newline', { count: bare });

  const id = queueId();
  const body = bare > 0 ? normalizeNewlines(raw0) : raw0;
  const raw = Buffer.concat([Buffer.from(receivedHeader(config, st, session, id, rcpts), 'latin1'), body]);
  const t0 = performance.now();
  const eightBitDeclared = env.bodyType === '8bitmime' || Boolean(env.smtpUtf8);
  let analysed: AnalysisResult;
  try {
    analysed = await deps.analyse({
      raw,
      session: {
        ip: st.ip,
        ourHostname: config.gateway.hostname,
        ourDomains: config.gateway.domains,
        trusted: st.trusted,
        tls: Boolean(session.secure),
        helo: st.helo,
      },
      envelope: { mailFrom, rcptTo: rcpts, smtputf8: Boolean(env.smtpUtf8), eightBitMime: env.bodyType === '8bitmime' },
      transfer: { bareNewlines: bare, eightBitUndeclared: flags.eightBit && !eightBitDeclared },
      ids: { msg_id: id, conn_id: st.cid },
      ...(deps.watch && { fingerprint: { minShingles: config.similarity.min_shingles } }),
    });
  } catch (err) {
    // An analysis thread that died or overran its time with this message: the client tries again later.
    log.error({ err: (err as Error).message, msg_id: id }, 'analysis failed');
    emit('check.failed', { ...ids, msg_id: id, data: { check: 'analysis', error: (err as Error).message, on_error: 'defer' } });
    return refuse(REPLY.localProblem, 'check_failed');
  }
  const { mail: mailRes, data: dataRes, fp } = analysed;
  // A message the fingerprint cannot be made of is simply not compared (logged), never refused for it.
  if (analysed.fpError !== undefined) log.warn({ err: analysed.fpError, msg_id: id }, 'no similarity fingerprint for this message');
  if (mailRes.mustDefer || dataRes.mustDefer || st.checkFailed) return refuse(REPLY.localProblem, 'check_failed');
  const hits = [...st.connectHits, ...st.heloHits, ...mailRes.hits, ...dataRes.hits];
  let scored = total(hits, deps.scores);
  // Outbreaks: what the clusters of recent mail say of this message, with the score of everything else.
  const rule = deps.watch?.rule() ?? config.outbreak;
  const suspicious = scored.score >= rule.suspicious_score;
  let clusters: number[] = [];
  const similar: Record<string, unknown> = {};
  if (fp && deps.watch) {
    const w = deps.watch.check(fp, { ip: st.ip.replace(/^::ffff:/i, ''), recipients: rcpts.length, suspicious }, deps.policies);
    // A cluster an admin marked safe gets no outbreak symbol and no cluster policy, whatever else is on it.
    clusters = w.safe ? [] : w.clusters;
    const declared = w.safe ? [] : w.policies.filter((p) => p.action !== 'allow');
    const hit = (name: string, detail: string[]): SymbolHit => ({ name, check: 'similarity', score: deps.scores.scoreOf(name), weight: 1, detail });
    if (declared.length) hits.push(hit('OUTBREAK', [`cluster ${declared[0].target}`, declared[0].reason]));
    else if (w.tips) hits.push(hit('OUTBREAK', [w.tips.cluster ? `cluster ${w.tips.cluster}` : 'new cluster', `${w.tips.reason} (with this copy)`]));
    else if (suspicious && !w.safe && w.best && w.best.ips + 1 >= Math.max(2, rule.min_sources)) {
      hits.push(hit('SIMILAR_CAMPAIGN', [`cluster ${w.best.id}`, `${w.best.members} similar from ${w.best.ips} sources`]));
    }
    if (hits.length && hits[hits.length - 1].check === 'similarity') scored = total(hits, deps.scores);
    if (w.best) Object.assign(similar, { cluster: w.best.id, cluster_members: w.best.members });
    // The hold: a suspicious copy of a cluster too young to judge waits for the sender's retry (outbreak.hold_s).
    if (config.outbreak.hold_s > 0 && suspicious && w.young && !declared.length && !w.tips && !w.safe && !st.trusted) {
      deps.watch.note(id, fp, { ip: st.ip.replace(/^::ffff:/i, ''), senderDomain: '', recipients: rcpts.length, suspicious });
      emit('similarity.held', { ...ids, msg_id: id, data: { from: mailFrom, rcpts, score: scored.score, hold_s: config.outbreak.hold_s, ...similar } });
      return refuse(REPLY.similarityHold, 'held', { score: scored.score, from: mailFrom, message_id: analysed.messageId, subject: analysed.subject, fp, suspicious, ...similar }, id);
    }
  }
  // A recipient with hits of its own (the rcpt phase) is scored with them; the others share the message's score.
  const rcptHits = (r: string) => st.rcptHits.get(normalizeAddress(r)) ?? [];
  const decisions: RecipientDecision[] = rcpts.map((r) => {
    const own = rcptHits(r);
    // A cluster marked safe only keeps the outbreak symbols away (above); it is not an allow-list for the message.
    let live = deps.policies.match({ ip: st.ip, helo: st.helo, sender: mailFrom, recipient: r, clusters }).filter((p) => !(p.target_kind === 'cluster' && p.action === 'allow'));
    // postmaster@ stays reachable from a blocked source (RFC 5321 4.5.1): a source's refusal does not apply to it.
    if (normalizeAddress(r).startsWith('postmaster@')) live = live.filter((p) => p.target_kind === 'recipient' || (p.action !== 'block' && p.action !== 'defer'));
    return decideRecipient(r, mailFrom, own.length ? total([...hits, ...own], deps.scores) : scored, config, live);
  });
  for (const d of decisions) {
    for (const p of st.policies) if (!d.policies.some((x) => x.id === p.id)) d.policies.push(p);
  }
  const settled = settle(decisions);
  const analysisMs = Math.round((performance.now() - t0) * 100) / 100;
  const symbolsOut = [
    ...hits.map((h) => ({ name: h.name, score: h.score, detail: h.detail })),
    ...rcpts.flatMap((r) => rcptHits(r).map((h) => ({ name: h.name, score: h.score, detail: h.detail, rcpt: normalizeAddress(r) }))),
  ];
  if (settled.reply !== 'accept') {
    const a = settled.reply;
    if (fp) deps.watch?.note(id, fp, { ip: st.ip.replace(/^::ffff:/i, ''), senderDomain: '', recipients: rcpts.length, suspicious: true });
    const reply = a.kind === 'reject' || a.kind === 'defer' ? a.reply : REPLY.contentRejected;
    return refuse(
      reply,
      a.kind === 'defer' ? 'deferred' : 'rejected',
      {
        score: scored.score,
        symbols: symbolsOut,
        because: decisions.flatMap((d) => d.because),
        message_id: analysed.messageId,
        subject: analysed.subject,
        ...(fp && { fp, suspicious: true }),
        ...similar,
      },
      id,
    );
  }

  const now = Date.now();
  const recipients = settled.decisions.map((d) => {
    const quarantined = d.action.kind === 'quarantine';
    const deliverTo = d.action.kind === 'redirect' ? normalizeAddress(d.action.to) : d.rcpt;
    return {
      msg_id: id,
      rcpt: d.rcpt,
      action: d.action.kind,
      reasons: JSON.stringify(d.because),
      status: quarantined ? 'quarantined' : 'queued',
      route: quarantined ? 'quarantine' : routeFor(deliverTo, config),
      deliver_to: deliverTo,
      attempts: 0,
      next_attempt_at: now,
      last_error: null,
      updated_at: now,
    };
  });
  const quarantine = settled.decisions
    .filter((d) => d.action.kind === 'quarantine')
    .map((d) => ({
      id: `${id}.${d.rcpt}`,
      msg_id: id,
      rcpt: d.rcpt,
      reason: d.because.map((b) => b.detail).join('; ') || 'quarantine',
      score: d.score,
      symbols: JSON.stringify(symbolsOut),
      sender: mailFrom,
      subject: analysed.subject ?? null,
      size: raw.length,
      created_at: now,
      expires_at: now + config.quarantine.retention_days * 86_400_000,
      status: 'held',
      policy: JSON.stringify(d.policies.map((p) => p.id)),
      acted_at: null,
      acted_by: null,
    }));
  const message = {
    id,
    message_id: analysed.messageId ?? null,
    received_at: now,
    conn_id: st.cid,
    client_ip: st.ip,
    helo: st.helo ?? null,
    mail_from: mailFrom,
    size: raw.length,
    subject: analysed.subject ?? null,
    score: scored.score,
    symbols: JSON.stringify(symbolsOut),
    verdict: JSON.stringify({ policies: st.policies, analysis_ms: analysisMs, host: HOST }),
    status: recipients.some((r) => r.status === 'queued') ? 'queued' : 'done',
  };
  try {
    await deps.acceptor.accept({ message, recipients, quarantine, raw });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    log.error({ err: e.message, code: e.code, msg_id: id }, 'could not take ownership of message');
    emit('store.error', { ...ids, msg_id: id, data: { op: 'accept', error: e.message, code: e.code } });
    const full = e.code === 'ENOSPC' || e.code === 'EDQUOT' || /SQLITE_FULL|disk is full/i.test(e.message);
    cb(new SmtpReplyError(full ? REPLY.storageFull : REPLY.localProblem));
    return;
  }
  st.messages++;
  deps.sources.accepted(st.ip);
  if (fp) deps.watch?.note(id, fp, { ip: st.ip.replace(/^::ffff:/i, ''), senderDomain: '', recipients: rcpts.length, suspicious });
  emit('message.accepted', {
    ...ids,
    msg_id: id,
    data: {
      from: mailFrom,
      message_id: analysed.messageId,
      subject: analysed.subject,
      size: raw.length,
      score: scored.score,
      symbols: symbolsOut,
      analysis_ms: analysisMs,
      recipients: settled.decisions.map((d) => ({ rcpt: d.rcpt, action: d.action.kind, because: d.because, policies: d.policies.map((p) => p.id) })),
      ...(fp && { fp, suspicious }),
      ...similar,
    },
  });
  if (quarantine.length) emit('message.quarantined', { ...ids, msg_id: id, data: { rcpts: quarantine.map((q) => q.rcpt), score: scored.score } });
  cb(null, `2.0.0 Ok: queued as ${id}`);
  deps.onAccepted(id, { message, recipients, raw });
}
