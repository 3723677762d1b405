// A private Dovecot for the monitor tests: its own temp dir, config, passwd-file users and free loopback ports,
// started with `dovecot -c FILE` and stopped with `doveadm stop`; nothing touches the system's Dovecot.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './postern.ts';
import { findBinary, lmtpBinary, submissionBinary } from './services.ts';

const run = promisify(execFile);

export interface Dovecot {
  imapPort: number;
  pop3Port: number;
  /** Dovecot's LMTP service, when started with `lmtp: true`. */
  lmtpPort?: number;
  /** Dovecot's submission service, when started with `submission`. */
  submissionPort?: number;
  dir: string;
  /** Dovecot's log so far. */
  log(): string;
  stop(): Promise<void>;
}

export interface DovecotOptions {
  /** user → password; users are `name@localhost` unless they contain @. */
  users: Record<string, string>;
  /** Dovecot's own delay before a failure reply; 0 where a test is about Postern's delays. */
  authFailureDelayS?: number;
  /**
   * Turns off Dovecot's auth penalty (2 s doubling to 15 s per client address, with no setting to disable it), for
   * tests about Postern's own delays: the auth process cannot open anvil's penalty socket and skips the penalty.
   */
  noPenalty?: boolean;
  /** Extra config lines. */
  extra?: string;
  /** Ask this auth policy server about every login (authPolicyLines). */
  authPolicy?: { url: string; apiKey: string; nonce: string };
  /** Also run the LMTP service on a loopback port (deliveries arrive the way a relay hands them over). */
  lmtp?: boolean;
  /** A master user: `alice@localhost*admin` logs in as alice with admin's password. */
  master?: { user: string; password: string };
  /** Also run the submission service on a loopback port, relaying what it takes to this SMTP server. */
  submission?: { relayPort: number; relayHost?: string };
}

/** The auth policy settings the tests use, as docs/monitor.md shows them. */
export function authPolicyLines(p: { url: string; apiKey: string; nonce: string }): string {
  return `auth_policy_server_url = ${p.url}
auth_policy_server_api_header = Authorization: Bearer ${p.apiKey}
auth_policy_hash_nonce = ${p.nonce}
auth_policy_request_attributes = login=%{requested_username} pwhash=%{hashed_password} remote=%{rip} device_id=%{client_id} protocol=%s session_id=%{session}
auth_policy_reject_on_fail = no
`;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts one, trying again with new ports when it fails: a port found free can be taken by another suite's server
 * before this Dovecot binds it.
 */
export async function startDovecot(o: DovecotOptions): Promise<Dovecot> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(o);
    } catch (err) {
      if (attempt >= 3 || /not installed/.test((err as Error).message)) throw err;
    }
  }
}

async function startOnce(o: DovecotOptions): Promise<Dovecot> {
  const dovecot = findBinary('dovecot');
  const doveadm = findBinary('doveadm');
  if (!dovecot || !doveadm) throw new Error('dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)');
  if (o.lmtp && !lmtpBinary()) throw new Error("dovecot's LMTP service is not installed (apt-get install dovecot-lmtpd)");
  if (o.submission && !submissionBinary()) throw new Error("dovecot's submission service is not installed (apt-get install dovecot-submissiond)");
  const dir = tempDir('postern-dovecot-');
  fs.chmodSync(dir, 0o755);
  const mail = path.join(dir, 'mail');
  fs.mkdirSync(mail);
  const lines: string[] = [];
  for (const [name, password] of Object.entries(o.users)) {
    const user = name.includes('@') ? name : `${name}@localhost`;
    const { stdout } = await run(doveadm, ['pw', '-s', 'SHA512-CRYPT', '-p', password]);
    lines.push(`${user}:${stdout.trim()}::::${path.join(mail, user)}::`);
  }
  fs.writeFileSync(path.join(dir, 'passwd'), lines.join('\n') + '\n', { mode: 0o644 });
  if (o.master) {
    const { stdout } = await run(doveadm, ['pw', '-s', 'SHA512-CRYPT', '-p', o.master.password]);
    fs.writeFileSync(path.join(dir, 'master-passwd'), `${o.master.user}:${stdout.trim()}\n`, { mode: 0o644 });
  }
  const [imapPort, pop3Port] = [await freePort(), await freePort()];
  const lmtpPort = o.lmtp ? await freePort() : undefined;
  const submissionPort = o.submission ? await freePort() : undefined;
  const conf = path.join(dir, 'dovecot.conf');
  fs.writeFileSync(
    conf,
    `protocols = imap pop3${o.lmtp ? ' lmtp' : ''}${o.submission ? ' submission' : ''}
listen = 127.0.0.1
base_dir = ${dir}/run
state_dir = ${dir}/state
instance_name = postern-test-${path.basename(dir)}
default_internal_user = dovecot
default_login_user = dovenull
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = ${o.authFailureDelayS ?? 2}s
log_path = ${dir}/dovecot.log
mail_location = maildir:~/Maildir
mail_uid = nobody
mail_gid = nogroup
${o.master ? masterLines(dir) : ''}passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT ${dir}/passwd
}
userdb {
  driver = passwd-file
  args = ${dir}/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = ${pop3Port}
  }
  inet_listener pop3s {
    port = 0
  }
}
${lmtpPort ? lmtpLines(lmtpPort) : ''}${o.submission && submissionPort ? submissionLines(submissionPort, o.submission) : ''}service anvil {
  chroot =
${o.noPenalty ? '  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n' : ''}}
${o.noPenalty ? 'service auth {\n  user = $default_internal_user\n}\n' : ''}
${o.authPolicy ? authPolicyLines(o.authPolicy) : ''}
${o.extra ?? ''}
`,
  );
  fs.chownSync(mail, 65534, 65534);
  // Dovecot forks into the background; its stdio must not be pipes that the forked master keeps open.
  await new Promise<void>((resolve, reject) => {
    const child = spawn(dovecot, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`dovecot failed to start (exit ${code}): ${err.trim()}`))));
  });
  try {
    await waitForPort(imapPort);
    await waitForPort(pop3Port);
    if (lmtpPort) await waitForPort(lmtpPort);
    if (submissionPort) await waitForPort(submissionPort);
  } catch (err) {
    await run(doveadm, ['-c', conf, 'stop']).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    imapPort,
    pop3Port,
    ...(lmtpPort ? { lmtpPort } : {}),
    ...(submissionPort ? { submissionPort } : {}),
    dir,
    log: () => (fs.existsSync(path.join(dir, 'dovecot.log')) ? fs.readFileSync(path.join(dir, 'dovecot.log'), 'utf8') : ''),
    async stop() {
      await run(doveadm, ['-c', conf, 'stop']).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Before the users' passdb: a master login is tried here first; result_success = continue then looks the target
// user up in the users' passdb, so a master user can only become a user that exists.
function masterLines(dir: string): string {
  return `auth_master_user_separator = *
passdb {
  driver = passwd-file
  master = yes
  args = scheme=SHA512-CRYPT ${dir}/master-passwd
  result_success = continue
}
`;
}

// LMTP on TCP, as a relay would deliver; RCPT TO is the full address, which is the passwd-file userdb's key.
function lmtpLines(port: number): string {
  return `service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${port}
  }
}
`;
}

// Submission (RFC 6409) on TCP: users log in against the same passdb, and what they send goes to the relay host.
function submissionLines(port: number, s: { relayPort: number; relayHost?: string }): string {
  return `hostname = dovecot.localhost
submission_relay_host = ${s.relayHost ?? '127.0.0.1'}
submission_relay_port = ${s.relayPort}
submission_relay_trusted = yes
service submission-login {
  inet_listener submission {
    address = 127.0.0.1
    port = ${port}
  }
}
`;
}

async function waitForPort(port: number): Promise<void> {
  const end = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`dovecot did not listen on ${port} within 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
