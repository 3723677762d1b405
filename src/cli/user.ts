// postern user add|passwd|remove|list|token|revoke|disable|enable: the accounts of the monitoring center, their
// passwords and API tokens. Changes are in the store; a running Postern sees them at the next request.
import fs from 'node:fs';
import { args, fmtTime, load, withStore } from './common.ts';
import { table, usageFailure, UsageError } from './policies.ts';
import {
  AccountError,
  accountName,
  createAccount,
  createToken,
  enabledAdmins,
  isRole,
  listAccounts,
  listTokens,
  removeAccount,
  revokeToken,
  ROLES,
  setDisabled,
  setPassword,
} from '../center/auth/accounts.ts';
import { PasswordError, weakPassword } from '../center/auth/password.ts';

const USAGE = `usage: postern user add <name> --role admin|auditor|user [--address ADDR]... [--password-stdin | --password-file F]
       postern user passwd <name> [--password-stdin | --password-file F]
       postern user remove <name>
       postern user disable|enable <name>
       postern user list [--json]
       postern user token <name> [--label TEXT] [--ttl-days N]
       postern user revoke <token-id>
Roles: admin does everything; auditor reads everything and changes nothing; user sees and acts on the quarantined
mail of its own --address(es) only. Without --password-stdin or --password-file the password is asked twice on
the terminal.`;

const OPTIONS = {
  role: { type: 'string' },
  address: { type: 'string', multiple: true },
  'password-stdin': { type: 'boolean' },
  'password-file': { type: 'string' },
  json: { type: 'boolean' },
  label: { type: 'string' },
  'ttl-days': { type: 'string' },
} as const;

const SUBS = ['add', 'passwd', 'remove', 'disable', 'enable', 'list', 'token', 'revoke'];

/** One trailing line break is the end of the input, not part of the password (echo, here-strings, files). */
const chomp = (s: string) => s.replace(/\r?\n$/, '');

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Asks on the terminal without echoing what is typed. */
async function askHidden(question: string): Promise<string> {
  const input = process.stdin;
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  input.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            input.off('data', onData);
            process.stderr.write('\n');
            return resolve(text);
          }
          if (ch === '\u0003') {
            input.off('data', onData);
            process.stderr.write('\n');
            return reject(new UsageError('cancelled'));
          }
          if (ch === '\u007f' || ch === '\b') text = [...text].slice(0, -1).join('');
          else text += ch;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
  }
}

async function newPassword(values: { 'password-stdin'?: boolean; 'password-file'?: string }): Promise<string> {
  if (values['password-stdin'] && values['password-file']) throw new UsageError('give --password-stdin or --password-file, not both');
  let pw: string;
  if (values['password-file']) {
    try {
      pw = chomp(fs.readFileSync(values['password-file'], 'utf8'));
    } catch (err) {
      throw new UsageError(`cannot read --password-file: ${(err as Error).message}`);
    }
  } else if (values['password-stdin']) pw = chomp(await readStdin());
  else {
    if (!process.stdin.isTTY) throw new UsageError('no terminal to ask the password on: pipe it in with --password-stdin, or use --password-file');
    pw = await askHidden('Password: ');
    const why = weakPassword(pw);
    if (why) throw new UsageError(why);
    if ((await askHidden('Password again: ')) !== pw) throw new UsageError('the two passwords differ; nothing was changed');
  }
  const why = weakPassword(pw);
  if (why) throw new UsageError(why);
  return pw;
}

const when = (ms: number | null, never = 'never') => (ms === null ? never : fmtTime(ms));

/**
 * The shell is where an admin locked out of the center gets back in, so it may remove or disable the last admin
 * (the center refuses to); it says what that leaves.
 */
async function warnNoAdmin(db: Parameters<typeof enabledAdmins>[0]): Promise<void> {
  if ((await enabledAdmins(db)) > 0) return;
  console.error('warning: no enabled admin account is left; the center takes only web.api_token for admin work until you add one: postern user add NAME --role admin');
}

export async function runUser(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    const { values, positionals } = args(rest, OPTIONS);
    if (!SUBS.includes(sub ?? '')) throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'a subcommand is needed', true);
    const [target, extra] = positionals;
    if (sub !== 'list' && !target) throw new UsageError(`${sub} needs ${sub === 'revoke' ? 'a token id' : 'an account name'}`, true);
    if (extra !== undefined || (sub === 'list' && target !== undefined)) throw new UsageError(`unexpected argument "${extra ?? target}"`, true);
    if (sub === 'add') {
      if (!values.role) throw new UsageError(`add needs --role (${ROLES.join(', ')})`);
      if (!isRole(values.role)) throw new UsageError(`--role "${values.role}" is not one of ${ROLES.join(', ')}`);
      accountName(target!);
    } else if (values.role !== undefined || values.address !== undefined) throw new UsageError('--role and --address apply to add only');
    let ttlDays: number | undefined;
    if (values['ttl-days'] !== undefined) {
      if (sub !== 'token') throw new UsageError('--ttl-days applies to token only');
      if (!/^[1-9]\d{0,4}$/.test(values['ttl-days'])) throw new UsageError(`--ttl-days "${values['ttl-days']}" is not a whole number of days from 1 to 99999`);
      ttlDays = Number(values['ttl-days']);
    }
    if (values.label !== undefined && sub !== 'token') throw new UsageError('--label applies to token only');
    const password = sub === 'add' || sub === 'passwd' ? await newPassword(values) : undefined;

    return await withStore(load(values.config), async ({ db }) => {
      switch (sub) {
        case 'add': {
          const a = await createAccount(db, { name: target!, role: values.role as (typeof ROLES)[number], password: password!, addresses: values.address ?? [] });
          if (a.role === 'user' && !a.addresses.length) console.error(`postern: note: ${a.name} has no --address, so it sees no quarantined mail`);
          console.log(`account ${a.name} added (role ${a.role}${a.addresses.length ? `, ${a.addresses.join(', ')}` : ''})`);
          return 0;
        }
        case 'passwd':
          await setPassword(db, target!, password!);
          console.log(`password of ${target!.toLowerCase()} changed; its sessions were ended`);
          return 0;
        case 'remove':
          await removeAccount(db, target!);
          console.log(`account ${target!.toLowerCase()} removed, with its tokens and sessions`);
          await warnNoAdmin(db);
          return 0;
        case 'disable':
        case 'enable':
          await setDisabled(db, target!, sub === 'disable');
          console.log(`account ${target!.toLowerCase()} ${sub}d${sub === 'disable' ? '; its sessions were ended and its tokens stop working' : ''}`);
          if (sub === 'disable') await warnNoAdmin(db);
          return 0;
        case 'token': {
          const { token, info } = await createToken(db, target!, { label: values.label, ttlDays });
          console.log(token);
          console.error(`token ${info.id} for ${info.account}${info.expires_at ? `, expires ${fmtTime(info.expires_at)}` : ', no expiry'}: shown once, only its hash is kept (revoke: postern user revoke ${info.id})`);
          return 0;
        }
        case 'revoke': {
          const t = await revokeToken(db, target!);
          console.log(`token ${t.id} of ${t.account} revoked`);
          return 0;
        }
        default: {
          const accounts = await listAccounts(db);
          const tokens = await listTokens(db);
          if (values.json) {
            console.log(JSON.stringify(accounts.map((a) => ({ ...a, tokens: tokens.filter((t) => t.account === a.name) })), null, 2));
            return 0;
          }
          if (!accounts.length) {
            console.log('no accounts (postern user add NAME --role admin makes the first)');
            return 0;
          }
          const rows = accounts.map((a) => [a.name, a.role, a.addresses.join(', ') || '-', String(a.tokens), String(a.sessions), a.disabled ? 'yes' : 'no', fmtTime(a.created_at)]);
          console.log(table([['NAME', 'ROLE', 'ADDRESSES', 'TOKENS', 'SESSIONS', 'DISABLED', 'CREATED'], ...rows]));
          if (tokens.length) {
            const now = Date.now();
            const trows = tokens.map((t) => [t.id, t.account, t.label || '-', fmtTime(t.created_at), when(t.last_used_at), t.expires_at !== null && t.expires_at <= now ? `expired ${fmtTime(t.expires_at)}` : when(t.expires_at)]);
            console.log(`\n${table([['TOKEN', 'ACCOUNT', 'LABEL', 'CREATED', 'LAST USED', 'EXPIRES'], ...trows])}`);
          }
          return 0;
        }
      }
    });
  } catch (err) {
    if (err instanceof AccountError || err instanceof PasswordError) {
      console.error(`postern: ${err.message}`);
      return err instanceof PasswordError || err.code === 'bad_request' ? 64 : 1;
    }
    return usageFailure(err, USAGE);
  }
}
