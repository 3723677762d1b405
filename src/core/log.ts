// The root logger and the fixed field vocabulary every component logs with.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Field names used across components; nothing else names these things differently. */
export interface LogFields {
  component?: string;
  cid?: string;
  ip?: string;
  msg_id?: string;
  rcpt?: string;
  check?: string;
}

export function createLogger(level: LevelWithSilent = 'info', dest?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: ['password', '*.password', 'pass', '*.pass', 'auth.credentials'], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    dest as pino.DestinationStream | undefined,
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
