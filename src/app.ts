// Assembles one Postern process: store, event sink, analysis, live policies, gateway and relay.
import fs from 'node:fs';
import path from 'node:path';
import type { LoadedConfig } from './config/load.ts';
import { resolveSecret } from './config/load.ts';
import { createLogger, type Logger } from './core/log.ts';
import { openStore, type StoreDb } from './store/db.ts';
import { EventSink } from './matrix/sink.ts';
import type { PosternEvent } from './core/events.ts';
import { CHECKS } from './analysis/checks/index.ts';
import type { Check } from './analysis/check.ts';
import { checkOptions } from './analysis/registry-options.ts';
import { ScoreTable } from './analysis/scoring.ts';
import { Runner } from './analysis/runner.ts';
import { AnalysisThreads } from './analysis/threads.ts';
import { loadAnalysisServices } from './analysis/services.ts';
import { PolicyTable } from './policy/live.ts';
import { Gateway, splitListen } from './gateway/server.ts';
import { Spool } from './gateway/spool.ts';
import { Acceptor, RowCommitter, type RowSink } from './gateway/accept.ts';
import type { Handoff } from './relay/queue.ts';
import { loadTls } from './gateway/tls.ts';
import { RecipientVerifier } from './gateway/verify.ts';
import { FileBlobStore } from './quarantine/blobs.ts';
import { MaildirStore } from './relay/maildir.ts';
import { Relay } from './relay/queue.ts';
import { Upkeep } from './store/upkeep.ts';
import { openLive } from './matrix/open-live.ts';
import type { Live } from './matrix/live.ts';
import { startAnalyzerThread, type AnalyzerThread } from './trends/thread.ts';
import { QuarantineService } from './quarantine/service.ts';
import { type CorrespondentBook, purgeSent } from './outbound/correspondents.ts';
import { OutboundListener } from './outbound/server.ts';
import { linkSigner, type LinkSigner } from './quarantine/tokens.ts';
import { startWeb, type WebServer } from './center/server.ts';
import { runDigests, startDigestSchedule, type DigestRun, type DigestSchedule } from './quarantine/digest.ts';
import { publicBase } from './quarantine/links.ts';
import { ImapProxy } from './monitor/imap/proxy.ts';
import { Pop3Proxy } from './monitor/pop3/proxy.ts';
import { SubmissionProxy } from './monitor/submission/proxy.ts';
import { KnownLogins } from './monitor/known-logins.ts';
import { AuditedUsers } from './monitor/audit/users.ts';
import { LiveSettings } from './config/overrides.ts';
import { purgeKnownLogins } from './trends/known-logins.ts';
import { ClusterWatch } from './similarity/watch.ts';
import { parseLimitsOf } from './analysis/mime-scan.ts';
import { Retro } from './retro/retro.ts';

/** What app.ts needs of a mailbox protocol's proxy. */
interface MailboxProxy {
  listen(plain: { host: string; port: number }, secure: { host: string; port: number } | null): Promise<{ host: string; port: number; tlsPort: number | null }>;
  close(): Promise<void>;
}

export interface Postern {
  /** Where SMTP listens; port 0 when this process runs no gateway. */
  smtp: { host: string; port: number };
  store: StoreDb;
  sink: EventSink;
  gateway: Gateway | null;
  /** The analysis threads of this gateway (analysis.threads), or null when it analyses on its event loop. */
  analysisThreads: AnalysisThreads | null;
  relay: Relay | null;
  /** Commits index rows for this process's gateway, and for the workers' when this is a cluster primary. */
  rows: RowSink;
  spool: Spool;
  maildir: MaildirStore;
  log: Logger;
  dataDir: string;
  /** Live counters and the policy fan-out. */
  live: Live;
  /** The trend analyzer's worker thread, in the process that owns the store's writes. */
  analyzer: AnalyzerThread | null;
  policies: PolicyTable;
  /** Quarantine operations (release, delete, lists, reports), for the CLI, the HTTP pages and the API. */
  quarantine: QuarantineService;
  /** Where the outbound listener listens; null when it does not run in this process. */
  outbound: { host: string; port: number } | null;
  /** The learned correspondents the business check reads. */
  correspondents: CorrespondentBook;
  /** Signs and verifies quarantine links (digests, the link pages). */
  signer: LinkSigner;
  /** The HTTP server (quarantine links and pages, the API); null when web.enabled is off or this process has no relay. */
  web: { host: string; port: number; url: string; routes: string[] } | null;
  /** Quarantine digests sent now (what the schedule does), with the links this process serves. */
  digests: { run(opts?: { recipient?: string; now?: number }): Promise<DigestRun> };
  /** This process's mirror of the clusters of recent mail; null where no gateway or outbound listener runs here. */
  clusters: ClusterWatch | null;
  /** Retroactive action on declared outbreaks; null where no relay runs or outbreak.retro is off. */
  retro: Retro | null;
  /** Where the monitor proxies listen; each is null when its section is off or this process runs no gateway. */
  monitor: {
    imap: { host: string; port: number; tlsPort: number | null } | null;
    pop3: { host: string; port: number; tlsPort: number | null } | null;
    submission: { host: string; port: number; tlsPort: number | null } | null;
  };
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Overrides gateway.listen (tests use port 0). */
  listen?: { host: string; port: number };
  /** Overrides outbound.listen (tests use port 0). */
  outboundListen?: { host: string; port: number };
  relayPollMs?: number;
  /** Which parts run here; both by default. A cluster primary runs the relay, its workers the gateway. */
  roles?: { gateway: boolean; relay: boolean };
  /** For a gateway without a local relay: told the queue id of every message it took. */
  onAccepted?: (id: string, handoff: Handoff) => void;
  /** Where the gateway's index rows go instead of this process's store (a cluster worker: to the primary). */
  rows?: RowSink;
  /** The checks to run instead of the built-in registry (an embedding program's own, or a test's). */
  checks?: readonly Check[];
  /** Where events go instead of this process's store (a cluster worker: to the primary). */
  forwardEvents?: (events: PosternEvent[]) => void;
  /**
   * Told of every policy change the analyzer of this process makes, and of its new similarity rows (a cluster
   * primary tells its workers).
   */
  onPolicyChange?: (what: 'policies' | 'similarity') => void;
  /** Overrides web.listen (tests use port 0). */
  webListen?: { host: string; port: number };
  /** Override monitor.imap.listen and listen_tls (tests use port 0). */
  imapListen?: { host: string; port: number };
  imapTlsListen?: { host: string; port: number };
  /** Override monitor.pop3.listen and listen_tls (tests use port 0). */
  pop3Listen?: { host: string; port: number };
  pop3TlsListen?: { host: string; port: number };
  /** Override monitor.submission.listen and listen_tls (tests use port 0). */
  submissionListen?: { host: string; port: number };
  submissionTlsListen?: { host: string; port: number };
}

export async function startPostern(loaded: LoadedConfig, opts: StartOptions = {}): Promise<Postern> {
  const { config, dataDir } = loaded;
  const log = opts.logger ?? createLogger(config.log.level);
  fs.mkdirSync(dataDir, { recursive: true });
  const store = await openStore({ url: config.store.url, dataDir, password: resolveSecret(config.store.password) });
  const sink = new EventSink(store, log.child({ component: 'matrix' }), { forward: opts.forwardEvents, flushMs: opts.forwardEvents ? 50 : undefined });
  const emit = sink.emit;
  const checks = opts.checks ?? CHECKS;
  const scores = new ScoreTable(checks, config.analysis.scores);
  const options = checkOptions(config.analysis.checks);
  // The classifier's model and the learned correspondents, in memory for the hot path. The model only where the data
  // phase runs on this event loop: with analysis threads each holds its own copy.
  const analysisLog = log.child({ component: 'analysis' });
  const services = await loadAnalysisServices(store.db, config, options, analysisLog, {
    classify: (opts.roles?.gateway ?? true) && (config.analysis.threads === 0 || Boolean(opts.checks)),
  });
  const { bayes, correspondents } = services;
  const runner = new Runner({
    checks,
    options,
    scores,
    timeoutMs: config.analysis.check_timeout_ms,
    log: analysisLog,
    emit,
    services: { bayes, correspondents },
  });
  const policies = new PolicyTable(store.db);
  await policies.load();
  // The table is re-read every second in any case (a policy an admin wrote with the CLI); a change announced on the
  // bus (the analyzer's, or another node's through Redis) is read at once.
  policies.watch(1000);
  const liveLog = log.child({ component: 'matrix' });
  const live = await openLive(config, { onError: (err) => liveLog.warn({ err: err.message }, 'live counters or policy bus failing; counting as zero') });
  // Who is audited: monitor.audit.users and the table the center and `postern audit users` change, re-read every
  // 5 s and at once when a change is announced.
  const audited = new AuditedUsers(store.db, config.monitor.audit.users, (err) => liveLog.warn({ err: err.message }, 'audited users reload failed'));
  await audited.load();
  audited.watch(5_000);
  // Detector settings changed in the center (config/overrides.ts): the in-line outbreak rule and the center read
  // them from here, re-read every 5 s and at once when a change is announced.
  const settings = new LiveSettings(store.db, config, (err) => liveLog.warn({ err: err.message }, 'detector settings'));
  await settings.load().catch((err: Error) => liveLog.warn({ err: err.message }, 'detector settings not read; the file\'s are in force'));
  settings.watch(5_000);
  // The gateway's mirror of the clusters (made below) reads the analyzer's new rows when they are announced.
  let watch: ClusterWatch | undefined;
  live.bus.subscribe((change) => {
    if (change.op === 'settings') {
      settings.load().catch((err: Error) => liveLog.warn({ err: err.message }, 'detector settings reload failed'));
      return;
    }
    if (change.op === 'audit') {
      audited.load().catch((err: Error) => liveLog.warn({ err: err.message }, 'audited users reload failed'));
      return;
    }
    if (change.op === 'similarity') {
      watch?.kick();
      opts.onPolicyChange?.('similarity');
      return;
    }
    policies.load().catch((err: Error) => liveLog.warn({ err: err.message }, 'policy reload failed'));
    opts.onPolicyChange?.('policies');
  });
  const roles = opts.roles ?? { gateway: true, relay: true };
  // Segment files for the process that relays what it spools; a cluster worker's files are read by its primary.
  const spool = new Spool(dataDir, { segments: roles.relay });
  const blobs = new FileBlobStore(path.join(dataDir, 'quarantine'));
  const rows = opts.rows ?? new RowCommitter(store.db, () => store.durable(), store.fast);
  const acceptor = new Acceptor(spool, blobs, rows);
  const maildir = new MaildirStore(path.join(dataDir, 'mailboxes'));
  let relay: Relay | null = null;
  if (roles.relay) {
    relay = new Relay({ config, db: store.db, fast: store.fast, spool, durable: () => store.durable(), maildir, log: log.child({ component: 'relay' }), emit });
    await relay.start(opts.relayPollMs ?? 1000);
  }
  // The store's writer purges what is past its retention (a cluster worker writes nothing of its own).
  let upkeep: Upkeep | null = null;
  if (roles.relay) {
    const upkeepLog = log.child({ component: 'store' });
    upkeep = new Upkeep(store.db, {
      store: config.store,
      log: upkeepLog,
      onPurged: (r) => upkeepLog.info({ ...r, cutoff: new Date(r.cutoff).toISOString() }, 'purged events and messages past their retention'),
    });
    upkeep.start();
  }
  const quarantine = new QuarantineService({
    db: store.db,
    blobs,
    spool,
    config,
    emit,
    durable: () => store.durable(),
    submit: relay ? (id) => relay?.submit(id) : undefined,
  });
  // Expired quarantined mail is deleted by the store's writer, on its own interval.
  let purgeTimer: NodeJS.Timeout | null = null;
  if (roles.relay) {
    const qlog = log.child({ component: 'quarantine' });
    const purge = () =>
      quarantine
        .purge()
        .then((r) => r.removed && qlog.info(r, 'purged quarantine entries past their retention'))
        .catch((err: Error) => qlog.warn({ err: err.message }, 'quarantine purge failed'));
    void purge();
    purgeTimer = setInterval(purge, config.quarantine.purge_interval_s * 1000);
    purgeTimer.unref();
  }
  // Sent Message-IDs past outbound.sent_retention_days are deleted by the store's writer, hourly.
  let sentPurgeTimer: NodeJS.Timeout | null = null;
  if (roles.relay) {
    const olog = log.child({ component: 'outbound' });
    const purge = () =>
      purgeSent(store.db, Date.now() - config.outbound.sent_retention_days * 86_400_000)
        .then((n) => n && olog.info({ removed: n }, 'purged sent Message-IDs past their retention'))
        .catch((err: Error) => olog.warn({ err: err.message }, 'sent Message-ID purge failed'));
    void purge();
    sentPurgeTimer = setInterval(purge, 3_600_000);
    sentPurgeTimer.unref();
  }
  // Mailbox users' known login addresses past monitor.known_logins.retention_days, by the store's writer, hourly.
  let knownPurgeTimer: NodeJS.Timeout | null = null;
  if (roles.relay) {
    const mlog = log.child({ component: 'monitor' });
    const purge = () =>
      purgeKnownLogins(store.db, Date.now() - config.monitor.known_logins.retention_days * 86_400_000)
        .then((n) => n && mlog.info({ removed: n }, 'forgot login addresses past their retention'))
        .catch((err: Error) => mlog.warn({ err: err.message }, 'known login address purge failed'));
    void purge();
    knownPurgeTimer = setInterval(purge, 3_600_000);
    knownPurgeTimer.unref();
  }
  // The analyzer runs beside the store's writer: the single process, or a cluster's primary.
  let analyzer: AnalyzerThread | null = null;
  if (roles.relay && config.trends.enabled) {
    analyzer = startAnalyzerThread({
      config,
      dataDir,
      password: resolveSecret(config.store.password),
      log: log.child({ component: 'trends' }),
      onPolicy: (change) => void live.bus.publish(change).catch((err: Error) => liveLog.warn({ err: err.message }, "policy change not announced; nodes read it within a second")),
    });
    const thread = analyzer;
    live.bus.subscribe((change) => change.op === 'settings' && thread.settingsChanged());
  }
  // Retroactive action on declared outbreaks runs beside the relay, which it tells to leave the copies it takes.
  let retro: Retro | null = null;
  if (relay && config.outbreak.enabled && config.outbreak.retro) {
    const r = relay;
    retro = new Retro({
      db: store.db,
      config,
      log: log.child({ component: 'retro' }),
      emit,
      spool,
      blobs,
      maildir,
      policies,
      durable: () => store.durable(),
      withhold: (id) => r.withhold(id),
      submit: (id) => r.submit(id),
    });
    retro.start();
    // A new cluster policy is swept at once (after the policy table has read it), not at the next second.
    live.bus.subscribe((change) => change.op !== 'similarity' && change.op !== 'audit' && change.op !== 'settings' && setTimeout(() => retro?.kick(), 200).unref());
  }
  const signer = linkSigner(dataDir, resolveSecret(config.quarantine.link_secret), config.quarantine.link_secret_previous);
  // The addresses mailbox users logged in from, for protect policies: the proxies' and Dovecot's auth policy requests.
  const kl = config.monitor.known_logins;
  const known = new KnownLogins(store.db, { retentionMs: kl.retention_days * 86_400_000, sameNetwork: kl.same_network });
  // The HTTP server runs beside the relay: one per installation, not one per gateway worker.
  let web: WebServer | null = null;
  // Made with the gateway below; the metrics read their figures.
  let threads: AnalysisThreads | null = null;
  if (roles.relay && config.web.enabled) {
    web = await startWeb({ config, quarantine, signer, db: store.db, emit, log: log.child({ component: 'web' }), listen: opts.webListen, policies, known,
      sink,
      audited,
      settings,
      configFile: loaded.file,
      dataDir,
      analyzer: analyzer ?? undefined,
      analysisThreads: () => threads?.stats() ?? null,
      spool: () => spool.segments?.stats() ?? null,
      announce: (change) => void live.bus.publish(change).catch((err: Error) => liveLog.warn({ err: err.message }, 'policy change not announced; nodes read it within a second')),
    });
    log.info({ web: `${web.host}:${web.port}`, url: web.url }, 'web server started');
  }
  const webInfo = web && { host: web.host, port: web.port, url: web.url, routes: web.routes };
  // Digests go out from the store's writer, after the web server so that their links point where it listens.
  const digestDeps = { quarantine, signer, base: webInfo?.url ?? publicBase(config), log: log.child({ component: 'quarantine' }) };
  const digests = { run: (o: { recipient?: string; now?: number } = {}) => runDigests(digestDeps, o) };
  let digestSchedule: DigestSchedule | null = null;
  if (roles.relay && config.quarantine.digest.enabled) digestSchedule = startDigestSchedule(digestDeps);
  const tls = await loadTls(config, dataDir);
  // The gateway, and the outbound listener, mirror the analyzer's clusters of recent mail to act on an outbreak's
  // copies in line.
  watch =
    config.outbreak.enabled && (roles.gateway || (config.outbound.enabled && roles.relay))
      ? new ClusterWatch(store.db, config, log.child({ component: 'similarity' }), () => settings.config)
      : undefined;
  await watch?.start();
  // The outbound listener runs beside the store's writer (it records correspondents as it takes mail), not in each
  // gateway worker: outbound mail is a fraction of inbound, and a worker must not wait on the store's write lock.
  let outbound: OutboundListener | null = null;
  let outboundAddr: { host: string; port: number } | null = null;
  if (config.outbound.enabled && roles.relay) {
    const olog = log.child({ component: 'outbound' });
    const submit = opts.onAccepted ?? ((id: string, handoff: Handoff) => relay?.submit(id, handoff));
    outbound = new OutboundListener({
      config,
      log: olog,
      emit,
      acceptor,
      db: store.db,
      book: correspondents,
      tls,
      onAccepted: submit,
      watch,
      policies,
      parseLimits: parseLimitsOf(config.analysis.parse),
    });
    const o = opts.outboundListen ?? splitListen(config.outbound.listen);
    const a = await outbound.listen(o.host, o.port);
    outboundAddr = { host: a.address, port: a.port };
    olog.info({ listen: `${a.address}:${a.port}`, networks: config.outbound.networks }, 'outbound listener started');
  }
  // Stops what runs behind the listeners, in the order that lets each finish what it holds: listeners that take
  // mail, then timers, the analyzer and the relay, and last the events and the store.
  const stopAll = async () => {
    await outbound?.close();
    watch?.stop();
    if (sentPurgeTimer) clearInterval(sentPurgeTimer);
    if (knownPurgeTimer) clearInterval(knownPurgeTimer);
    services.stop();
    digestSchedule?.stop();
    await web?.close();
    if (purgeTimer) clearInterval(purgeTimer);
    await upkeep?.stop();
    await analyzer?.stop();
    await retro?.stop();
    await relay?.stop();
    await live.close();
    policies.stop();
    audited.stop();
    settings.stop();
    await sink.flush();
    await store.close();
    spool.close();
  };
  // What every process has, whichever roles it runs.
  const parts = { store, sink, relay, rows, spool, maildir, log, dataDir, live, analyzer, policies, quarantine, signer, web: webInfo, digests, outbound: outboundAddr, correspondents, retro, clusters: watch ?? null };
  if (!roles.gateway) {
    log.info({ data_dir: dataDir, store: store.dialect, role: 'relay' }, 'postern relay started');
    return { ...parts, smtp: { host: '', port: 0 }, gateway: null, analysisThreads: null, monitor: { imap: null, pop3: null, submission: null }, close: stopAll };
  }
  const onAccepted = opts.onAccepted ?? ((id: string, handoff: Handoff) => relay?.submit(id, handoff));
  // The analysis after DATA in worker threads; on the event loop when analysis.threads is 0 or the checks are a
  // program's own (a thread loads the built-in registry).
  threads =
    config.analysis.threads > 0 && !opts.checks
      ? new AnalysisThreads({ count: config.analysis.threads, config, dataDir, password: resolveSecret(config.store.password), log: analysisLog, emit })
      : null;
  const analysing = threads;
  if (analysing) correspondents.onLearn((sender, external, messageId, now) => analysing.learned(sender, external, messageId, now));
  const gateway = new Gateway({
    watch,
    live: () => settings.config,
    config,
    log: log.child({ component: 'gateway' }),
    emit,
    runner,
    ...(analysing && { analyse: analysing.analyse }),
    scores,
    policies,
    acceptor,
    verifier: config.gateway.recipient_verify.enabled && config.relay.downstream ? new RecipientVerifier(config) : undefined,
    counters: live.counters,
    history: async (ip) => {
      const r = await store.db
        .selectFrom('source_stats')
        .select(['messages', 'refused', 'protocol_errors'])
        .where('kind', '=', 'ip')
        .where('key', '=', ip.replace(/^::ffff:/i, ''))
        .executeTakeFirst();
      return r && { accepted: Number(r.messages), refused: Number(r.refused), protocolErrors: Number(r.protocol_errors) };
    },
    tls,
    onAccepted,
  });
  const want = opts.listen ?? splitListen(config.gateway.listen);
  const addr = await gateway.listen(want.host, want.port).catch(async (err: unknown) => {
    await analysing?.stop();
    throw err;
  });
  log.info({ smtp: `${addr.address}:${addr.port}`, data_dir: dataDir, store: store.dialect, downstream: config.relay.downstream?.host ?? 'maildir' }, 'postern started');
  // The mailbox protocols' proxies in front of the mail server (monitor/), each when enabled.
  const mlog = log.child({ component: 'monitor' });
  const proxyDeps = { config, policies, emit, log: mlog, tls, known, audited };
  const startProxy = async (
    name: 'imap' | 'pop3' | 'submission',
    proxy: MailboxProxy,
    m: { listen: string; listen_tls: string; upstream: { host: string; port: number } },
    plain?: { host: string; port: number },
    secure?: { host: string; port: number },
  ) => {
    const at = await proxy.listen(plain ?? splitListen(m.listen), secure ?? (m.listen_tls ? splitListen(m.listen_tls) : null));
    mlog.info({ protocol: name, listen: `${at.host}:${at.port}`, tls_port: at.tlsPort, upstream: `${m.upstream.host}:${m.upstream.port}` }, `${name} proxy started`);
    return at;
  };
  const imap = config.monitor.imap.enabled ? new ImapProxy(proxyDeps) : null;
  const imapAddr = imap && (await startProxy('imap', imap, config.monitor.imap, opts.imapListen, opts.imapTlsListen));
  const pop3 = config.monitor.pop3.enabled ? new Pop3Proxy(proxyDeps) : null;
  const pop3Addr = pop3 && (await startProxy('pop3', pop3, config.monitor.pop3, opts.pop3Listen, opts.pop3TlsListen));
  const submission = config.monitor.submission.enabled ? new SubmissionProxy(proxyDeps) : null;
  const submissionAddr = submission && (await startProxy('submission', submission, config.monitor.submission, opts.submissionListen, opts.submissionTlsListen));
  let closed = false;
  return {
    ...parts,
    smtp: { host: addr.address, port: addr.port },
    gateway,
    analysisThreads: analysing,
    monitor: { imap: imapAddr, pop3: pop3Addr, submission: submissionAddr },
    async close() {
      if (closed) return;
      closed = true;
      await imap?.close();
      await pop3?.close();
      await submission?.close();
      await gateway.close();
      await analysing?.stop();
      await stopAll();
    },
  };
}
