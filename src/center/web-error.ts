// An error with an HTTP status and a stable code, thrown by route handlers; the server's error handler renders it
// as `{ error: { code, message } }` under /api and as a page elsewhere.
export class WebError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
