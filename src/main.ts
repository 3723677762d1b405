// The postern command: parses the command line and runs one command.
import { runStart } from './cli/start.ts';
import { runConfig } from './cli/config.ts';
import { runTrace } from './cli/trace.ts';
import { runQueue } from './cli/queue.ts';
import { runStore } from './cli/store.ts';
import { runLearn } from './cli/learn.ts';
import { runEval } from './cli/eval.ts';
import { runPolicies } from './cli/policies.ts';
import { runSources } from './cli/sources.ts';
import { runSimulate } from './cli/simulate.ts';
import { runTrends } from './cli/trends.ts';
import { runQuarantine } from './cli/quarantine.ts';
import { runDigest } from './cli/digest.ts';
import { runAudit } from './cli/audit.ts';
import { runClusters } from './cli/clusters.ts';
import { runUser } from './cli/user.ts';
import { runDetectors } from './cli/detectors.ts';

const USAGE = `usage: postern <command> [options]

commands:
  start [--config FILE] [--role all|analyzer]
                                         start Postern (writes a default postern.toml if missing); --role
                                         analyzer runs only the trend analyzer (beside gateways on other hosts)
  config check [FILE]                    validate a config file and print the effective config
  config show [--effective] [--config F] print the config; --effective lists every value, defaults marked
  config schema                          print the config's JSON Schema
  trace <queue-id|message-id|connection-id> [--json]
                                         the path of one message (or connection) through Postern
  queue list [--json]                    messages waiting for delivery
  queue retry <queue-id>                 attempt delivery of one message now
  queue flush                            attempt delivery of every waiting message now
  store purge [--older-than-days N]      delete events and finished messages older than the retention now
  store rollups [--type T] [--since 24h] [--json]
                                         hourly counts of events deleted for age
  policies list [--all] [--source S] [--json]
                                         live policies: target, action, expiry, source, reason
  policies show <id> [--json]            one policy with its evidence
  policies add <kind> <target> <action> [--ttl D] [--reason TEXT] [--rate N --window D] [--delay D] [--to ADDR]
                                         add a policy (kinds: ip cidr helo sender domain recipient cluster user)
  policies allow <kind> <target> [--ttl D] [--reason TEXT]
                                         allow-list a source (no expiry unless --ttl)
  policies remove|pin|unpin <id>, policies extend <id> --ttl D|never
                                         lift, pin (never expires), unpin, or set a policy's expiry
  sources show <ip|cidr|helo|sender|domain> <key> [--json]
                                         what the data matrix knows of a source, and its policies
  sources list [--kind K] [--order unknown|refused|messages|last_seen] [--limit N] [--json]
                                         sources, most recently seen first
  trends status [--limit N] [--json]     the trend analyzer: how far behind, recent findings, its policies
  detectors list [--json]                the trend detectors: switch, thresholds, where each value comes from
  detectors set <detector> KEY=VALUE... | reset <detector> [KEY...]
                                         change a detector's settings at run time (the file's until reset)
  audit <user> [--since 24h|ISO] [--session ID] [--json|--csv]
                                         the audit trail of a mailbox user in monitor.audit.users, session by session
  audit users list|add PATTERN|remove PATTERN
                                         the audited mailbox users besides monitor.audit.users (address, *@domain, *)
  simulate harvest|harvest-distributed|flood [--wait-lift S] [--json]
                                         replay an attack against a running gateway, with legitimate mail beside it
  simulate brute-force|brute-force-distributed|spraying --user U --password P [--json]
                                         a password attack on the IMAP proxy, the real user logging in beside it;
                                         exit 0 when Postern stopped it
  quarantine list [--rcpt A] [--domain D] [--sender S] [--status held|released|deleted|any] [--limit N] [--json]
                                         held mail, newest first
  quarantine show <id> [--json] [--raw]  one held message: reason, score, symbols; --raw prints it as received
  quarantine release|delete <id>...      deliver a held copy to its recipient, or delete it
  quarantine allow|block <id> [--scope user|domain|global]
                                         allow or block the sender of a held message
  quarantine report <id> --spam|--ham    teach the classifier a held message
  quarantine purge                       delete quarantined mail past its retention now
  digest run [--recipient ADDR] [--json] send due quarantine digests now
  digest preview --recipient ADDR [--html]
                                         print the digest a recipient would get, without sending it
  clusters list [--state watching|outbreak|safe] [--since 24h] [--json]
                                         similarity clusters, latest first, with their state and verdict
  clusters show <id> [--json]            one cluster: its members, what was done to each copy, where copies went
  clusters mark <id> safe|bad [--reason TEXT] [--action quarantine|block]
                                         an admin's verdict on a cluster (replaces the last one)
  user add <name> --role admin|auditor|user [--address ADDR]... [--password-stdin]
                                         an account of the monitoring center (password asked twice without
                                         --password-stdin); user passwd|remove|disable|enable <name>, user list [--json]
  user token <name> [--label TEXT] [--ttl-days N]
                                         a new API token for an account, printed once; user revoke <token-id>
  learn --spam PATH... --ham PATH...     teach the classifier from files, folders or mbox files
  eval --spam PATH --ham PATH [--json] [--no-bayes]
                                         analyse labelled mail offline: precision, recall, F1, ham false positives

--config defaults to ./postern.toml`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'start':
        return await runStart(rest);
      case 'config':
        return await runConfig(rest);
      case 'trace':
        return await runTrace(rest);
      case 'queue':
        return await runQueue(rest);
      case 'store':
        return await runStore(rest);
      case 'trends':
        return await runTrends(rest);
      case 'simulate':
        return await runSimulate(rest);
      case 'learn':
        return await runLearn(rest);
      case 'eval':
        return await runEval(rest);
      case 'policies':
        return await runPolicies(rest);
      case 'sources':
        return await runSources(rest);
      case 'quarantine':
        return await runQuarantine(rest);
      case 'digest':
        return await runDigest(rest);
      case 'audit':
        return await runAudit(rest);
      case 'clusters':
        return await runClusters(rest);
      case 'user':
        return await runUser(rest);
      case 'detectors':
        return await runDetectors(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return cmd === undefined ? 64 : 0;
      default:
        console.error(`postern: unknown command "${cmd}"\n\n${USAGE}`);
        return 64;
    }
  } catch (err) {
    const e = err as Error & { name?: string };
    if (e.name === 'ConfigError') {
      console.error(e.message);
      return 78;
    }
    console.error(`postern: ${e.message}`);
    return 1;
  }
}
