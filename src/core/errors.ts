// Coded internal errors. The code names the condition; docs/errors.md lists them.

export const ERRORS = {
  PST_E_CONFIG: 'The configuration is invalid',
  PST_E_SPOOL_WRITE: 'The spool could not be written',
  PST_E_STORE: 'The store failed',
  PST_E_NOT_FOUND: 'No such message or queue entry',
  PST_E_RELAY_ENVELOPE: 'An envelope value would inject a command line',
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class PosternError extends Error {
  constructor(
    readonly code: ErrorCode,
    detail?: string,
    options?: { cause?: unknown },
  ) {
    super(detail ? `${ERRORS[code]}: ${detail}` : ERRORS[code], options);
    this.name = 'PosternError';
  }
}
