// postern digest run|preview: quarantine digests now, for admins and tests. The digest is queued in the store and the
// running Postern's relay delivers it (downstream, or to the local Maildir by default).
import { args, load } from './common.ts';
import { usageFailure, UsageError } from './policies.ts';
import { withQuarantine } from './quarantine.ts';
import { resolveSecret } from '../config/load.ts';
import { createLogger } from '../core/log.ts';
import { previewDigest, runDigests, type DigestDeps } from '../quarantine/digest.ts';
import { publicBase } from '../quarantine/links.ts';
import { linkSigner } from '../quarantine/tokens.ts';
import type { QuarantineService } from '../quarantine/service.ts';

const USAGE = `usage: postern digest run [--recipient ADDRESS] [--json]
       postern digest preview --recipient ADDRESS [--html]`;

const OPTIONS = {
  recipient: { type: 'string' },
  json: { type: 'boolean' },
  html: { type: 'boolean' },
} as const;

export async function runDigest(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    const { values, positionals } = args(rest, OPTIONS);
    if (sub !== 'run' && sub !== 'preview') throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'a subcommand is needed', true);
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`, true);
    const rcpt = values.recipient?.trim().toLowerCase();
    if (rcpt !== undefined && !/^[^@\s]+@[^@\s]+$/.test(rcpt)) throw new UsageError(`--recipient "${values.recipient}" is not an email address`);
    if (sub === 'preview' && !rcpt) throw new UsageError('preview needs --recipient ADDRESS', true);
    const loaded = load(values.config);
    const { config, dataDir } = loaded;
    // The same key file (or secret) as the running Postern, so that its HTTP server accepts these links.
    const signer = linkSigner(dataDir, resolveSecret(config.quarantine.link_secret), config.quarantine.link_secret_previous);
    return await withQuarantine(loaded, async (quarantine: QuarantineService) => {
      const deps: DigestDeps = { quarantine, signer, base: publicBase(config), log: createLogger('warn', process.stderr) };
      if (sub === 'preview') {
        const d = await previewDigest(deps, rcpt!);
        if (!d) {
          console.log(`nothing held for ${rcpt} since their last digest`);
          return 0;
        }
        console.log(values.html ? d.html : `Subject: ${d.subject}\n\n${d.text}`);
        return 0;
      }
      const r = await runDigests(deps, { recipient: rcpt });
      if (values.json) console.log(JSON.stringify(r, null, 2));
      else {
        for (const s of r.sent) console.log(`${s.rcpt}: digest of ${s.entries} held message(s) queued as ${s.queueId}`);
        for (const s of r.skipped) console.log(`${s.rcpt}: skipped, ${s.reason}`);
        if (!r.sent.length && !r.skipped.length) console.log(rcpt ? `nothing held for ${rcpt} since their last digest` : 'no digest due: nothing held since the last ones');
        else if (r.sent.length) console.log("the running Postern's relay picks them up within a second");
      }
      return r.skipped.some((s) => s.reason.startsWith('failed')) ? 1 : 0;
    });
  } catch (err) {
    return usageFailure(err, USAGE);
  }
}
