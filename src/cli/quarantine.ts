// postern quarantine list|show|release|delete|allow|block|report|purge: held mail, from the command line. A released
// copy is queued in the store, where the running Postern's relay (it polls every second) picks it up.
import os from 'node:os';
import path from 'node:path';
import { args, fmtTime, load, withStore } from './common.ts';
import { table, usageFailure, UsageError } from './policies.ts';
import type { LoadedConfig } from '../config/load.ts';
import { silentLogger } from '../core/log.ts';
import { EventSink } from '../matrix/sink.ts';
import { Spool } from '../gateway/spool.ts';
import { FileBlobStore } from '../quarantine/blobs.ts';
import { QuarantineError, QuarantineService, type QuarantineEntry, type QuarantineStatus } from '../quarantine/service.ts';

const USAGE = `usage: postern quarantine list [--rcpt A] [--domain D] [--sender S] [--status held|released|deleted|expired|any]
                                [--limit N] [--json]
       postern quarantine show <id> [--json] [--raw]
       postern quarantine release <id>...
       postern quarantine delete <id>...
       postern quarantine allow|block <id> [--scope user|domain|global]
       postern quarantine report <id> --spam|--ham
       postern quarantine purge`;

const OPTIONS = {
  rcpt: { type: 'string' },
  domain: { type: 'string' },
  sender: { type: 'string' },
  status: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  raw: { type: 'boolean' },
  scope: { type: 'string' },
  spam: { type: 'boolean' },
  ham: { type: 'boolean' },
} as const;

const STATUSES = ['held', 'released', 'deleted', 'expired', 'any'] as const;
const SCOPES = ['user', 'domain', 'global'] as const;

/** Who acts from this command line, as events and entries record it. */
export function cliActor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    // A uid without a passwd entry (some containers).
    return `cli:${process.env.USER ?? process.getuid?.() ?? 'unknown'}`;
  }
}

/**
 * The quarantine service of this config's store, blob store and spool, as the running Postern has them. Events go
 * to the store (through a sink flushed before returning), not to the console.
 */
export async function withQuarantine<T>(loaded: LoadedConfig, fn: (svc: QuarantineService) => Promise<T>): Promise<T> {
  return withStore(loaded, async (store) => {
    const sink = new EventSink(store, silentLogger);
    const svc = new QuarantineService({
      db: store.db,
      blobs: new FileBlobStore(path.join(loaded.dataDir, 'quarantine')),
      spool: new Spool(loaded.dataDir),
      config: loaded.config,
      emit: sink.emit,
      durable: () => store.durable(),
    });
    try {
      return await fn(svc);
    } finally {
      await sink.flush();
    }
  });
}

function show(e: QuarantineEntry): string {
  const lines = [
    `id          ${e.id}`,
    `status      ${e.status}${e.acted_at !== null ? ` (${fmtTime(e.acted_at)} by ${e.acted_by ?? 'unknown'})` : ''}`,
    `recipient   ${e.rcpt}`,
    `sender      ${e.sender || '<>'}`,
    `subject     ${e.subject ?? '(none)'}`,
    `received    ${fmtTime(e.created_at)}`,
    `expires     ${fmtTime(e.expires_at)}`,
    `size        ${e.size} bytes`,
    `score       ${e.score.toFixed(2)}`,
    `reason      ${e.reason}`,
    `message     ${e.msg_id} (postern trace ${e.msg_id})`,
  ];
  if (e.policies.length) lines.push(`policies    ${e.policies.join(', ')}`);
  const syms = e.symbols.filter((s) => !s.rcpt || s.rcpt === e.rcpt);
  if (syms.length) lines.push('symbols', ...syms.map((s) => `  ${s.name} ${s.score >= 0 ? '+' : ''}${s.score}${s.detail ? ` ${[s.detail].flat().join(', ')}` : ''}`));
  return lines.join('\n');
}

/** One line of a list: control characters in sender-chosen text must not move the terminal's cursor. */
const cell = (s: string, max = 60) => {
  const flat = s.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

function positiveInt(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`${flag} "${text}" is not a positive whole number`);
  return Number(text);
}

export async function runQuarantine(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    const { values, positionals } = args(rest, OPTIONS);
    const status = values.status;
    if (status !== undefined && !(STATUSES as readonly string[]).includes(status)) throw new UsageError(`--status "${status}" is not one of ${STATUSES.join(', ')}`);
    const scope = values.scope ?? 'user';
    if (!(SCOPES as readonly string[]).includes(scope)) throw new UsageError(`--scope "${scope}" is not one of ${SCOPES.join(', ')}`);
    const limit = positiveInt(values.limit, '--limit');
    if (!['list', 'show', 'release', 'delete', 'allow', 'block', 'report', 'purge'].includes(sub ?? '')) {
      throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'a subcommand is needed', true);
    }
    const single = ['show', 'allow', 'block', 'report'].includes(sub!);
    const many = ['release', 'delete'].includes(sub!);
    if ((single || many) && !positionals.length) throw new UsageError(`${sub} needs ${many ? 'one or more quarantine ids' : 'a quarantine id'}`, true);
    if (single && positionals.length > 1) throw new UsageError(`${sub} takes one quarantine id`, true);
    if (sub === 'report' && values.spam === values.ham) throw new UsageError('report needs exactly one of --spam or --ham', true);
    const actor = cliActor();
    return await withQuarantine(load(values.config), async (svc) => {
      switch (sub) {
        case 'list': {
          const { entries, total } = await svc.list({ rcpt: values.rcpt, domain: values.domain, sender: values.sender, status: status as QuarantineStatus | 'any' | undefined, limit });
          if (values.json) console.log(JSON.stringify({ entries, total }, null, 2));
          else if (!entries.length) console.log(`nothing ${status && status !== 'any' ? status : status === 'any' ? 'in quarantine' : 'held'}`);
          else {
            const head = ['ID', 'RECEIVED', 'STATUS', 'RECIPIENT', 'SENDER', 'SCORE', 'SUBJECT'];
            const rows = entries.map((e) => [e.id, fmtTime(e.created_at), e.status, e.rcpt, cell(e.sender || '<>', 40), e.score.toFixed(1), cell(e.subject ?? '')]);
            console.log(table([head, ...rows]));
            if (total > entries.length) console.log(`(${entries.length} of ${total}; --limit N shows more)`);
          }
          return 0;
        }
        case 'show': {
          const e = await svc.get(positionals[0]);
          if (!e) throw new QuarantineError('not_found', `no quarantined message ${positionals[0]}`);
          if (values.raw) process.stdout.write(await svc.raw(e.id));
          else console.log(values.json ? JSON.stringify(e, null, 2) : show(e));
          return 0;
        }
        case 'release':
        case 'delete': {
          let failed = 0;
          for (const id of positionals) {
            try {
              if (sub === 'release') {
                const { queueId, entry } = await svc.release(id, actor);
                console.log(`${id} released to ${entry.rcpt}: queued as ${queueId}; the running Postern's relay picks it up within a second`);
              } else {
                await svc.delete(id, actor);
                console.log(`${id} deleted`);
              }
            } catch (err) {
              if (!(err instanceof QuarantineError)) throw err;
              console.error(`postern: ${err.message}`);
              failed++;
            }
          }
          return failed ? 1 : 0;
        }
        case 'allow':
        case 'block': {
          const p = await svc.listSender(positionals[0], sub, scope as (typeof SCOPES)[number], actor);
          console.log(`${p.id}: ${p.reason}`);
          return 0;
        }
        case 'report': {
          const cls = values.spam ? 'spam' : 'ham';
          const { learned } = await svc.report(positionals[0], cls, actor);
          console.log(learned ? `${positionals[0]} learned as ${cls}` : `${positionals[0]} was already learned as ${cls}`);
          return 0;
        }
        default: {
          const r = await svc.purge();
          console.log(`purged ${r.removed} entries past their expiry (${r.expired} still held), ${r.blobs} stored messages`);
          return 0;
        }
      }
    });
  } catch (err) {
    if (err instanceof QuarantineError) {
      console.error(`postern: ${err.message}`);
      return err.code === 'bad_request' ? 64 : 1;
    }
    return usageFailure(err, USAGE);
  }
}
