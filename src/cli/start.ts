// postern start: runs every role in this process until SIGINT/SIGTERM; SIGHUP reloads the config.
import { startPostern } from '../app.ts';
import { args, load } from './common.ts';

export async function runStart(argv: string[]): Promise<number> {
  const { values } = args(argv, {});
  const loaded = load(values.config, true);
  const app = await startPostern(loaded);
  console.log(`Postern is accepting mail on ${app.smtp.host}:${app.smtp.port} (config ${loaded.file}, data in ${app.dataDir})`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      app.log.info({ signal: sig }, 'shutting down');
      void app.close().then(resolve, resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
