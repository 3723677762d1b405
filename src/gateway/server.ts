// The inbound SMTP gateway: smtp-server with Postern's connection class, decision points at connect,
// HELO, MAIL, RCPT and end of DATA, and the hand-off to the spool.
import net from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import type { Emit } from '../core/events.ts';
import { REPLY, SmtpReplyError, type SmtpReply } from '../core/reply.ts';
import { addressProblem, domainOf, normalizeAddress } from '../core/address.ts';
import type { Runner } from '../analysis/runner.ts';
import { analyseMessage, type Analyse } from '../analysis/analyse.ts';
import type { ScoreTable } from '../analysis/scoring.ts';
import type { SessionFacts, SymbolHit } from '../analysis/check.ts';
import type { LivePolicy, PolicyTable } from '../policy/live.ts';
import { policyAction } from '../policy/decide.ts';
import type { AppliedPolicy } from '../policy/action.ts';
import { PosternConnection, type ConnectionHooks, type ParsedAddress } from './connection.ts';
import { SourceBook } from './sources.ts';
import { handleData, type DataDeps } from './phases/data.ts';
import { parseLimitsOf } from '../analysis/mime-scan.ts';
import type { ClusterWatch } from '../similarity/watch.ts';
import { mixedScriptLabel } from '../core/scripts.ts';
import type { Acceptor } from './accept.ts';
import type { RecipientVerifier } from './verify.ts';
import type { Handoff } from '../relay/queue.ts';
import type { LiveCounters } from '../matrix/live.ts';
import { HarvestGuard } from './harvest-guard.ts';

/** The longest a tarpit policy holds one reply: longer only loses the connection (RFC 5321 4.5.3.2 timeouts). */
const MAX_TARPIT_MS = 30_000;

export interface ConnState {
  cid: string;
  ip: string;
  startedAt: number;
  trusted: boolean;
  helo?: string;
  /** Hits of the `connect` and `helo` phases; they count for every message of the session. */
  connectHits: SymbolHit[];
  heloHits: SymbolHit[];
  /** Hits of the `rcpt` phase by recipient, for the current transaction; they count for that recipient only. */
  rcptHits: Map<string, SymbolHit[]>;
  /** A check of the connect or rcpt phase that must not fail open failed: the message gets 451 at DATA. */
  checkFailed: boolean;
  /** A refusal decided before RCPT (connect/HELO/MAIL policy), given at the first RCPT (delay_deny). */
  pendingRefusal?: { reply: SmtpReply; reason: string; policy?: AppliedPolicy };
  policies: AppliedPolicy[];
  messages: number;
  refused: number;
  protocolErrors: number;
  /** Ends the session (after the reply already sent). */
  close(): void;
}

export interface GatewayDeps {
  config: Config;
  log: Logger;
  emit: Emit;
  runner: Runner;
  /** The analysis after DATA; on this event loop with `runner` when absent. */
  analyse?: Analyse;
  scores: ScoreTable;
  policies: PolicyTable;
  acceptor: Acceptor;
  verifier?: RecipientVerifier;
  /** Live counters shared by every gateway node (harvest guard, throttle policies). */
  counters: LiveCounters;
  tls: { key: string; cert: string };
  /** Called after a message is durably accepted. */
  onAccepted(msgId: string, handoff: Handoff): void;
  /** What the data matrix remembers of an address this process has not seen (source_stats), if anything. */
  history?(ip: string): Promise<{ accepted: number; refused: number; protocolErrors: number } | undefined>;
  /** The clusters of recent mail, for the in-line outbreak check; absent when outbreak.enabled is off. */
  watch?: ClusterWatch;
  /** The config with the detector settings changed in the center (config/overrides.ts), for the harvest guard. */
  live?: () => Config;
}

/** Starts an smtp-server listening; resolves with the address it got (port 0: the one the system chose). */
export function listenSmtp(server: SMTPServer, host: string, port: number): Promise<net.AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve((server as unknown as { server: net.Server }).server.address() as net.AddressInfo);
    });
  });
}

/** The smtp-server settings the inbound gateway and the outbound listener share: limits, extensions, TLS. */
export function smtpServerOptions(config: Config, tls: { key: Buffer | string; cert: Buffer | string }, banner: string): SMTPServerOptions {
  const g = config.gateway;
  return {
    name: g.hostname,
    banner,
    size: g.max_message_bytes,
    hideENHANCEDSTATUSCODES: false,
    hideDSN: true,
    hideREQUIRETLS: true,
    disabledCommands: ['AUTH'],
    authOptional: true,
    disableReverseLookup: true,
    maxClients: g.max_connections,
    socketTimeout: g.idle_timeout_s * 1000,
    closeTimeout: 10_000,
    key: tls.key,
    cert: tls.cert,
  };
}

export class Gateway {
  readonly server: SMTPServer;
  readonly sources: SourceBook;
  readonly conns = new Map<string, ConnState>();
  private readonly dataDeps: DataDeps;
  private readonly harvest: HarvestGuard;

  constructor(private readonly deps: GatewayDeps) {
    const { config, log } = deps;
    const g = config.gateway;
    this.sources = new SourceBook(g.trusted_networks);
    this.harvest = new HarvestGuard(deps.counters, () => (deps.live?.() ?? config).trends.harvest, config.trends.enabled);
    // smtp-server formats an entry for every command it logs before the logger can drop it, which costs a few
    // percent of the gateway's time; its errors reach us through hooks and events anyway, so it only logs at debug.
    const smtpLog = log.level === 'debug' || log.level === 'trace' ? log.child({ component: 'smtp-server' }) : false;
    this.server = new SMTPServer({
      ...smtpServerOptions(config, deps.tls, 'Postern'),
      logger: smtpLog as never,
      onMailFrom: (a, s, cb) => this.onMailFrom(a, s).then(() => cb(), (e: Error) => cb(e)),
      onRcptTo: (a, s, cb) => this.onRcptTo(a, s).then(() => cb(), (e: Error) => cb(e)),
      onData: (stream, s, cb) => void handleData(this.dataDeps, stream as never, s, cb),
    });
    this.server.on('error', (err) => log.warn({ err: err.message }, 'smtp server error'));
    const hooks = this.hooks();
    const server = this.server as unknown as {
      connect(socket: net.Socket, opts: unknown): void;
      connections: Set<unknown>;
      _onError(err: Error): void;
      _onClientConnect(d: unknown): void;
    };
    server.connect = (socket, opts) => {
      // Replies are small writes answering a client that waits for each one: never hold them for Nagle.
      socket.setNoDelay(true);
      const conn = new PosternConnection(this.server, socket, opts) as PosternConnection & NodeJS.EventEmitter;
      conn.hooks = hooks;
      server.connections.add(conn);
      conn.on('error', (err: Error) => server._onError(err));
      conn.on('connect', (d: unknown) => server._onClientConnect(d));
      conn.init();
    };
    const limits = parseLimitsOf(config.analysis.parse);
    this.dataDeps = {
      config,
      log,
      emit: deps.emit,
      runner: deps.runner,
      analyse: deps.analyse ?? ((req) => analyseMessage(deps.runner, limits, req)),
      scores: deps.scores,
      policies: deps.policies,
      acceptor: deps.acceptor,
      sources: this.sources,
      state: (s) => this.state(s),
      onAccepted: deps.onAccepted,
      ...(deps.watch && { watch: deps.watch }),
    };
  }

  listen(host: string, port: number): Promise<net.AddressInfo> {
    return listenSmtp(this.server, host, port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  state(session: SMTPServerSession): ConnState {
    const st = this.conns.get(session.id);
    if (!st) throw new Error(`no state for session ${session.id}`);
    return st;
  }

  facts(st: ConnState, session?: SMTPServerSession): SessionFacts {
    return {
      ip: st.ip,
      ourHostname: this.deps.config.gateway.hostname,
      ourDomains: this.deps.config.gateway.domains,
      trusted: st.trusted,
      tls: Boolean(session?.secure),
      helo: st.helo,
    };
  }

  private hooks(): ConnectionHooks {
    const { config, emit } = this.deps;
    const g = config.gateway;
    return {
      maxCommandLine: g.max_command_line,
      maxErrors: g.max_errors,
      sessionTimeoutMs: g.session_timeout_s * 1000,
      requestTimeoutMs: g.idle_timeout_s * 1000,
      postmaster: `postmaster@${g.domains[0] ?? 'localhost'}`,
      beforeGreeting: async (conn) => {
        const ip = conn.ip;
        if (!this.sources.connect(ip, g.max_connections_per_ip)) {
          emit('smtp.connect.refused', { ip, conn_id: conn.cid, data: { reason: 'per_ip_limit' } });
          return { refuse: REPLY.tooManyConnections };
        }
        const trusted = this.sources.isTrusted(ip);
        if (!trusted && this.deps.history && !this.sources.knows(ip)) {
          // One read per new address: the greeting pause of a source known from before a restart (or from another
          // node) follows its record. A failed read leaves it unknown.
          const h = await this.deps.history(ip).catch(() => undefined);
          this.sources.seed(ip, h ?? { accepted: 0, refused: 0, protocolErrors: 0 });
        }
        const st: ConnState = {
          cid: conn.cid,
          ip,
          startedAt: Date.now(),
          trusted,
          connectHits: [],
          heloHits: [],
          rcptHits: new Map(),
          checkFailed: false,
          policies: [],
          messages: 0,
          refused: 0,
          protocolErrors: 0,
          close: () => (conn as unknown as { close(): void }).close(),
        };
        this.conns.set(conn.cid, st);
        const cls = this.sources.classify(ip);
        let pauseMs = g.greet_pause[`${cls}_ms`];
        for (const p of this.deps.policies.match({ ip })) {
          if (p.action === 'tarpit') pauseMs = Math.max(pauseMs, Number(p.params.delay_ms ?? 5000));
          const a = policyAction(p, config);
          if (a && (a.kind === 'reject' || a.kind === 'defer') && !st.pendingRefusal) {
            const applied = { id: p.id, target_kind: p.target_kind, target: p.target, action: p.action, reason: p.reason };
            st.pendingRefusal = { reply: a.reply, reason: p.reason, policy: applied };
            st.policies.push(applied);
          }
        }
        let symbols: string[] | undefined;
        if (this.deps.runner.has('connect')) {
          const res = await this.deps.runner.run('connect', { session: this.facts(st) }, { conn_id: st.cid });
          st.connectHits = res.hits;
          st.checkFailed ||= res.mustDefer;
          symbols = res.hits.map((h) => h.name);
        }
        emit('smtp.connect', { ip, conn_id: conn.cid, data: { class: cls, pause_ms: pauseMs, symbols } });
        return { pauseMs };
      },
      earlyTalker: (conn, bytes) => {
        this.sources.protocolError(conn.ip);
        emit('smtp.early_talker', { ip: conn.ip, conn_id: conn.cid, data: { pause_ms: conn.pauseMs, bytes } });
      },
      protocolError: (conn, kind, detail) => {
        this.sources.protocolError(conn.ip);
        const st = this.conns.get(conn.cid);
        if (st) st.protocolErrors++;
        emit('smtp.protocol_error', { ip: conn.ip, conn_id: conn.cid, data: { kind, detail } });
      },
      helo: (conn, name) => void this.onHelo(conn, name),
      mailRefused: (conn, from, reason, reply) => {
        const st = this.conns.get(conn.cid);
        if (st) st.refused++;
        emit('smtp.mail.rejected', { ip: conn.ip, conn_id: conn.cid, data: { from, reason, reply: reply.code } });
      },
      timeout: (conn, kind, detail) => {
        // Dripping and stalling are tactics; going quiet or a very long session may be an honest client.
        if (kind !== 'idle' && kind !== 'session') this.sources.protocolError(conn.ip);
        emit('smtp.timeout', { ip: conn.ip, conn_id: conn.cid, data: { kind, ...detail } });
      },
      closed: (conn) => {
        const st = this.conns.get(conn.cid);
        this.conns.delete(conn.cid);
        if (!st) return;
        this.sources.disconnect(conn.ip);
        emit('smtp.close', {
          ip: conn.ip,
          conn_id: conn.cid,
          data: { duration_ms: Date.now() - st.startedAt, messages: st.messages, refused: st.refused, protocol_errors: st.protocolErrors, helo: st.helo },
        });
      },
    };
  }

  private async onHelo(conn: PosternConnection, name: string): Promise<void> {
    const st = this.conns.get(conn.cid);
    if (!st) return;
    st.helo = name;
    const res = await this.deps.runner.run('helo', { session: this.facts(st) }, { conn_id: st.cid });
    st.heloHits = res.hits;
    for (const p of this.deps.policies.match({ helo: name })) {
      const a = policyAction(p, this.deps.config);
      if (a && (a.kind === 'reject' || a.kind === 'defer') && !st.pendingRefusal) {
        const applied = { id: p.id, target_kind: p.target_kind, target: p.target, action: p.action, reason: p.reason };
        st.pendingRefusal = { reply: a.reply, reason: p.reason, policy: applied };
        st.policies.push(applied);
      }
    }
    this.deps.emit('smtp.helo', { ip: st.ip, conn_id: st.cid, data: { helo: name, symbols: res.hits.map((h) => h.name) } });
  }

  private async onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const st = this.state(session);
    const from = address.address;
    st.rcptHits.clear();
    const refuse = (reply: SmtpReply, reason: string) => {
      st.refused++;
      this.deps.emit('smtp.mail.rejected', { ip: st.ip, conn_id: st.cid, data: { from, reason, reply: reply.code } });
      throw new SmtpReplyError(reply);
    };
    if (from !== '') {
      const problem = addressProblem(from, Boolean(session.envelope.smtpUtf8));
      if (problem === 'too_long') refuse(REPLY.addressTooLong, 'address_too_long');
      if (problem === 'eight_bit') refuse(REPLY.eightBitAddress, 'eight_bit_without_smtputf8');
      if (problem === 'syntax') refuse(REPLY.badSenderSyntax, 'syntax');
    }
    for (const p of this.deps.policies.match({ sender: from })) {
      const a = policyAction(p, this.deps.config);
      if (a && (a.kind === 'reject' || a.kind === 'defer') && !st.pendingRefusal) {
        const applied = { id: p.id, target_kind: p.target_kind, target: p.target, action: p.action, reason: p.reason };
        st.pendingRefusal = { reply: a.reply, reason: p.reason, policy: applied };
        st.policies.push(applied);
      }
    }
    const size = address.args && (address.args as Record<string, unknown>).SIZE;
    // The connection kept the A-label the client sent; the U-label and a mixed-script mark go with the event.
    const unicode = (address as ParsedAddress).unicode;
    const idn = unicode ? { from_unicode: unicode, mixed_script: mixedScriptLabel(domainOf(unicode)) !== undefined } : {};
    this.deps.emit('smtp.mail', { ip: st.ip, conn_id: st.cid, data: { from, size, ...idn } });
  }

  private async onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const st = this.state(session);
    const { config, emit } = this.deps;
    const rcpt = address.address;
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const refuse = (reply: SmtpReply, reason: string, extra: Record<string, unknown> = {}): never => {
      st.refused++;
      if (reply.code >= 500) this.sources.refused(st.ip);
      emit('smtp.rcpt.rejected', { ip: st.ip, conn_id: st.cid, data: { rcpt, from, reason, reply: `${reply.code} ${reply.enhanced}`, helo: st.helo, ...extra } });
      throw new SmtpReplyError(reply);
    };
    const problem = addressProblem(rcpt, Boolean(session.envelope.smtpUtf8));
    if (problem === 'too_long') refuse(REPLY.addressTooLong, 'address_too_long');
    if (problem === 'eight_bit') refuse(REPLY.eightBitAddress, 'eight_bit_without_smtputf8');
    if (problem === 'syntax' && rcpt.toLowerCase() !== 'postmaster') refuse(REPLY.badRecipientSyntax, 'syntax');
    if (session.envelope.rcptTo.length >= config.gateway.max_recipients) refuse(REPLY.tooManyRcpts, 'too_many_recipients');
    const lower = normalizeAddress(rcpt === 'postmaster' || rcpt === 'Postmaster' ? `postmaster@${config.gateway.domains[0] ?? 'localhost'}` : rcpt);
    const domain = domainOf(lower);
    if (!config.gateway.domains.includes(domain)) refuse(REPLY.relayDenied, 'relay_denied');
    const isPostmaster = lower.startsWith('postmaster@');
    if (st.pendingRefusal && !isPostmaster) {
      refuse(st.pendingRefusal.reply, 'policy', { policy: st.pendingRefusal.policy?.id, policy_reason: st.pendingRefusal.reason });
    }
    // Every live policy on the address, HELO, sender or recipient, as it stands now: one written during this
    // session takes effect on its next RCPT.
    let tarpitMs = 0;
    let allowed = false;
    const throttles: LivePolicy[] = [];
    for (const p of this.deps.policies.match({ ip: st.ip, helo: st.helo, recipient: lower, sender: from })) {
      if (p.action === 'allow' && (p.target_kind === 'ip' || p.target_kind === 'cidr')) allowed = true;
      if (p.action === 'tarpit') tarpitMs = Math.max(tarpitMs, Number(p.params.delay_ms ?? 5_000));
      if (p.action === 'throttle') throttles.push(p);
      if (isPostmaster) continue;
      const a = policyAction(p, config);
      if (a && (a.kind === 'reject' || a.kind === 'defer')) refuse(a.reply, 'policy', { policy: p.id, policy_reason: p.reason });
    }
    const guarded = this.harvest.enabled && !st.trusted && !isPostmaster && !allowed;
    if (guarded) {
      const b = await this.harvest.blocked(st.ip);
      if (b) refuse(REPLY.policyRejected, 'harvest_guard', { scope: b.scope, target: b.target, unknown: b.unknown });
    }
    if (tarpitMs > 0) await new Promise((r) => setTimeout(r, Math.min(tarpitMs, MAX_TARPIT_MS)));
    if (!isPostmaster) {
      const listed = config.gateway.recipients.map(normalizeAddress);
      const domainListed = listed.some((a) => domainOf(a) === domain);
      if (domainListed && !listed.includes(lower)) {
        if (guarded) await this.harvest.unknown(st.ip);
        refuse(REPLY.unknownRecipient, 'unknown_recipient');
      }
      if (!domainListed && this.deps.verifier) {
        const r = await this.deps.verifier.verify(lower);
        if (r === 'unknown') {
          if (guarded) await this.harvest.unknown(st.ip);
          refuse(REPLY.unknownRecipient, 'unknown_recipient', { verified: 'downstream' });
        }
        if (r === 'tempfail') refuse(REPLY.verifyTimeout, 'verify_unavailable');
      }
    }
    // A throttle counts messages: the first good recipient of a transaction counts one, up to the policy's rate.
    if (throttles.length && !isPostmaster && session.envelope.rcptTo.length === 0) {
      for (const p of throttles) {
        const rate = Number(p.params.rate ?? 1);
        const windowMs = Number(p.params.window_s ?? 60) * 1000;
        const key = `thr:${p.id}`;
        if ((await this.deps.counters.count(key, windowMs)) >= rate) {
          refuse(REPLY.tryLater, 'throttled', { policy: p.id, policy_reason: p.reason, rate, window_s: windowMs / 1000 });
        }
      }
      for (const p of throttles) await this.deps.counters.hit(`thr:${p.id}`, Number(p.params.window_s ?? 60) * 1000);
    }
    if (guarded) void this.harvest.known(st.ip);
    let symbols: string[] | undefined;
    if (this.deps.runner.has('rcpt')) {
      const env = session.envelope;
      const res = await this.deps.runner.run(
        'rcpt',
        {
          session: this.facts(st, session),
          envelope: { mailFrom: from, rcptTo: [lower], smtputf8: Boolean(env.smtpUtf8), eightBitMime: env.bodyType === '8bitmime' },
        },
        { conn_id: st.cid },
      );
      if (res.mustDefer) refuse(REPLY.localProblem, 'check_failed');
      st.rcptHits.set(lower, res.hits);
      symbols = res.hits.map((h) => h.name);
    }
    emit('smtp.rcpt.accepted', { ip: st.ip, conn_id: st.cid, data: { rcpt: lower, from, symbols } });
  }
}

export function splitListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!m) return { host: '127.0.0.1', port: Number(listen) };
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}
