// The postern command: parses the command line and runs one command.
import { runStart } from './cli/start.ts';
import { runConfig } from './cli/config.ts';
import { runTrace } from './cli/trace.ts';
import { runQueue } from './cli/queue.ts';
import { runStore } from './cli/store.ts';
import { runLearn } from './cli/learn.ts';
import { runEval } from './cli/eval.ts';

const USAGE = `usage: postern <command> [options]

commands:
  start [--config FILE]                  start Postern (writes a default postern.toml if missing)
  config check [FILE]                    validate a config file and print the effective config
  config show [--effective] [--config F] print the config; --effective lists every value, defaults marked
  config schema                          print the config's JSON Schema
  trace <queue-id|message-id> [--json]   the path of one message through Postern
  queue list [--json]                    messages waiting for delivery
  queue retry <queue-id>                 attempt delivery of one message now
  queue flush                            attempt delivery of every waiting message now
  store purge [--older-than-days N]      delete events and finished messages older than the retention now
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
      case 'learn':
        return await runLearn(rest);
      case 'eval':
        return await runEval(rest);
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
