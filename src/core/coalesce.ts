// Group commit for a flush-like operation (fsync of a file or a directory): callers that arrive while one run is
// in progress share the single run that starts after it, since what they wrote may have missed the running one.
// However many callers arrive together, that costs at most two runs, and no caller resolves before a run that
// started after its own call has finished.
export function coalesce(run: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  const call = (): Promise<void> => {
    if (!running) {
      running = run().finally(() => {
        running = null;
      });
      return running;
    }
    queued ??= running
      .catch(() => undefined)
      .then(() => {
        queued = null;
        return call();
      });
    return queued;
  };
  return call;
}
