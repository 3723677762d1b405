// Password attacks on the IMAP proxy over real sockets, each attacker and the legitimate user from its own
// loopback address: guessing from one address, guessing one account from a new address every guess or two, and
// spraying one password guess over many users from one address. The legitimate user logs in correctly once before
// the attack (so that its address is known) and then every second throughout. Postern answers its own refusals
// exactly as the server answers a wrong password, so which refusals were Postern's is read from the events it
// stores (the oracle), as the other simulations read the policies.
import { ImapSimClient } from './sim-imap.ts';

export type AuthScenario = 'brute-force' | 'brute-force-distributed' | 'spraying';

export interface AuthSimTarget {
  host: string;
  port: number;
  /** The legitimate user and its password; attacked in brute-force and brute-force-distributed. */
  user: string;
  password: string;
  /** The legitimate user's address, and the attackers' first /24 (first three octets, e.g. "127.0.5"). */
  legitIp: string;
  attackerNet: string;
  /** Pause between the legitimate user's logins. */
  legitEveryMs: number;
  oracle: AttackOracle;
  /** Told each notable moment. */
  onStep?: (line: string) => void;
}

export interface AuthSimOptions {
  /** Guesses at most (default: 60). */
  maxGuesses?: number;
  /** Guesses made after the first refusal by Postern, to show that they are refused too (default: 5). */
  after?: number;
  /** brute-force-distributed: guesses per address (default: 2). */
  perIp?: number;
  /** spraying: the users tried (default: common role names at the legitimate user's domain). */
  users?: string[];
}

/** One login attempt of the attack as Postern recorded it. */
export interface AttackEvent {
  id: number;
  ts: number;
  ip: string;
  user: string | null;
  /** server: the mailbox server answered; postern: refused by a live policy without asking it. */
  by: 'server' | 'postern';
  ok: boolean;
  /** The policy behind a refusal by Postern. */
  policy: string | null;
}

/** What Postern recorded of the attack's addresses since a time: its events, read from the store. */
export interface AttackOracle {
  events(since: number, ips: readonly string[]): Promise<AttackEvent[]>;
}

export interface LegitLogins {
  logins: number;
  ok: number;
  failed: number;
  errors: number;
  /** The first few failed answers. */
  samples: string[];
}

export interface AuthSimReport {
  scenario: AuthScenario;
  /** Users attacked (the first few with spraying) and addresses the attack came from. */
  users: string[];
  addresses_used: number;
  /** Login attempts the attacker made (a connection refused at the greeting counts as one). */
  guesses: number;
  stopped: boolean;
  /** Milliseconds from the first guess to the first refusal by Postern; null when none came. */
  stopped_after_ms: number | null;
  /** Guesses the mailbox server answered before the first refusal by Postern, and in all. */
  reached_server_before_stop: number;
  reached_server: number;
  refused_by_postern: number;
  /** The first refusal: at the greeting (an address block) or at login, and the policy. */
  first_refusal: { at: 'connect' | 'login'; ip: string; policy: string | null } | null;
  /** Guesses that logged in (a password in the word list that was right). */
  succeeded: number;
  legit: LegitLogins;
}

const BASE_WORDS = ['password', 'welcome', 'letmein', 'qwerty', 'summer', 'winter', 'spring', 'autumn', 'dragon', 'monkey', 'sunshine', 'football', 'company', 'secret', 'admin'];
const SUFFIXES = ['', '1', '123', '2025', '2026', '!', '2026!', '@1'];
const ROLE_USERS = ['info', 'admin', 'sales', 'support', 'office', 'contact', 'hr', 'billing', 'jobs', 'marketing', 'accounts', 'service', 'webmaster', 'press', 'finance'];

/** Wrong passwords an attacker would try first: common words, capitalised, with the usual suffixes. */
export function wordList(n: number, exclude: string): string[] {
  const out: string[] = [];
  for (const suffix of SUFFIXES) {
    for (const w of BASE_WORDS) {
      for (const word of [w, w[0].toUpperCase() + w.slice(1)]) {
        const guess = word + suffix;
        if (guess !== exclude) out.push(guess);
        if (out.length >= n) return out;
      }
    }
  }
  for (let i = 0; out.length < n; i++) if (`Guess-${i}` !== exclude) out.push(`Guess-${i}`);
  return out;
}

/** The n-th attacker address from attackerNet.2 on, moving to the next /24 after .254. */
function attackerAddress(net: string, n: number): string {
  const [a, b, c] = net.split('.').map(Number);
  const third = c + Math.floor(n / 253);
  if (third > 255) throw new Error(`the attack needs more addresses than ${net}.0/24 and the networks after it hold`);
  return `${a}.${b}.${third}.${2 + (n % 253)}`;
}

/** The legitimate user's logins, one every legitEveryMs, until stopped. */
function legitLogins(t: AuthSimTarget): { stop(): Promise<LegitLogins> } {
  const tally: LegitLogins = { logins: 0, ok: 0, failed: 0, errors: 0, samples: [] };
  let running = true;
  let wake: (() => void) | null = null;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      await oneLogin(t, tally);
      const wait = t.legitEveryMs - (Date.now() - started);
      if (running && wait > 0) await new Promise<void>((r) => ((wake = r), setTimeout(r, wait)));
    }
  })();
  return {
    async stop() {
      running = false;
      wake?.();
      await loop;
      return tally;
    },
  };
}

async function oneLogin(t: AuthSimTarget, tally: LegitLogins): Promise<string> {
  tally.logins++;
  try {
    const { client, greeting } = await ImapSimClient.open(t.host, t.port, t.legitIp);
    const r = greeting.startsWith('* OK') ? await client.login(t.user, t.password) : greeting;
    client.close();
    if (/^\S+ OK/.test(r)) tally.ok++;
    else {
      tally.failed++;
      if (tally.samples.length < 5) tally.samples.push(r || '(connection closed)');
    }
    return r;
  } catch (err) {
    tally.errors++;
    if (tally.samples.length < 5) tally.samples.push((err as Error).message);
    return '';
  }
}

/** Runs one attack scenario with the legitimate user beside it; see the file's comment. */
export async function simulateAuthAttack(t: AuthSimTarget, scenario: AuthScenario, o: AuthSimOptions = {}): Promise<AuthSimReport> {
  const maxGuesses = o.maxGuesses ?? 60;
  const after = o.after ?? 5;
  const perIp = o.perIp ?? 2;
  const domain = t.user.includes('@') ? t.user.slice(t.user.lastIndexOf('@') + 1) : '';
  const users = scenario === 'spraying' ? (o.users ?? ROLE_USERS.map((u) => (domain ? `${u}@${domain}` : u))) : [t.user];
  const words = wordList(maxGuesses, t.password);
  // First the owner logs in once from its address, so that Postern knows it.
  const first: LegitLogins = { logins: 0, ok: 0, failed: 0, errors: 0, samples: [] };
  const r = await oneLogin(t, first);
  if (!first.ok) throw new Error(`the legitimate user ${t.user} cannot log in from ${t.legitIp} before the attack (${r || first.samples[0]}): check --user and --password`);
  t.onStep?.(`${t.user} logged in from ${t.legitIp}; the attack starts`);
  const legit = legitLogins(t);
  const ips: string[] = [];
  const since = Date.now();
  let guesses = 0;
  let stopAt: number | null = null;
  let client: ImapSimClient | null = null;
  let clientIp = '';
  let onConn = 0;
  try {
    for (let i = 0; i < maxGuesses && (stopAt === null || guesses < stopAt + after); i++) {
      const ip = scenario === 'brute-force-distributed' ? attackerAddress(t.attackerNet, Math.floor(i / perIp)) : `${t.attackerNet}.66`;
      if (!ips.includes(ip)) ips.push(ip);
      // A tool reconnects after three failures (servers close there) and whenever the address changes.
      if (!client || client.closed || ip !== clientIp || onConn >= 3) {
        client?.close();
        client = null;
        onConn = 0;
        const g = await ImapSimClient.open(t.host, t.port, ip);
        if (!g.greeting.startsWith('* OK')) {
          // Refused at the greeting: an attempt all the same.
          guesses++;
          g.client.close();
          stopAt ??= await refusalSeen(t, since, ips, guesses);
          continue;
        }
        client = g.client;
        clientIp = ip;
      }
      guesses++;
      onConn++;
      await client.login(users[i % users.length], words[i]);
      stopAt ??= await refusalSeen(t, since, ips, guesses);
    }
  } finally {
    client?.close();
  }
  const legitTally = await legit.stop();
  const events = await settled(t.oracle, since, ips, guesses);
  return report(scenario, users, ips, guesses, since, events, legitTally, t);
}

/** The guess count at the first refusal by Postern, once the oracle shows one; null before. */
async function refusalSeen(t: AuthSimTarget, since: number, ips: readonly string[], guesses: number): Promise<number | null> {
  const ev = await t.oracle.events(since, ips);
  const first = ev.find((e) => e.by === 'postern');
  if (!first) return null;
  t.onStep?.(`Postern refused ${first.ip}${first.policy ? ` (policy ${first.policy})` : ''}; ${ev.filter((e) => e.by === 'server' && e.id < first.id).length} guesses reached the mailbox server before`);
  return guesses;
}

/** The attack's events once all of them are stored (the event sink writes in batches), or after 5 s. */
async function settled(oracle: AttackOracle, since: number, ips: readonly string[], guesses: number): Promise<AttackEvent[]> {
  const end = Date.now() + 5_000;
  for (;;) {
    const ev = await oracle.events(since, ips);
    if (ev.length >= guesses || Date.now() > end) return ev;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function report(scenario: AuthScenario, users: string[], ips: string[], guesses: number, since: number, ev: AttackEvent[], legit: LegitLogins, t: AuthSimTarget): AuthSimReport {
  const firstRefusal = ev.find((e) => e.by === 'postern');
  const server = ev.filter((e) => e.by === 'server');
  const rep: AuthSimReport = {
    scenario,
    users: users.slice(0, 10),
    addresses_used: ips.length,
    guesses,
    stopped: firstRefusal !== undefined,
    stopped_after_ms: firstRefusal ? Math.max(0, firstRefusal.ts - since) : null,
    reached_server_before_stop: firstRefusal ? server.filter((e) => e.id < firstRefusal.id).length : server.length,
    reached_server: server.length,
    refused_by_postern: ev.length - server.length,
    first_refusal: firstRefusal ? { at: firstRefusal.user === null ? 'connect' : 'login', ip: firstRefusal.ip, policy: firstRefusal.policy } : null,
    succeeded: ev.filter((e) => e.ok).length,
    legit,
  };
  if (!rep.stopped) t.onStep?.(`not stopped after ${guesses} guesses`);
  return rep;
}
