// Refreshing a page when something happens: the server's event stream (/api/v1/stream) where it exists, and a slow
// poll in any case, so a page without the stream still moves.
import { useEffect, useState } from 'preact/hooks';

/** A number that changes after one of `types` happens, and every `pollMs`. */
export function useLiveTick(types: string, pollMs = 15_000): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    // A second after the last of a burst (the store has written them by then), but at least every 5 seconds.
    let timer: ReturnType<typeof setTimeout> | undefined;
    let first = 0;
    const fire = () => {
      timer = undefined;
      first = 0;
      setTick((t) => t + 1);
    };
    const bump = () => {
      if (timer) clearTimeout(timer);
      first ||= Date.now();
      timer = setTimeout(fire, Date.now() - first > 4000 ? 0 : 1000);
    };
    const poll = setInterval(() => setTick((t) => t + 1), pollMs);
    let es: EventSource | undefined;
    if (typeof EventSource === 'function') {
      es = new EventSource(`/api/v1/stream?types=${encodeURIComponent(types)}`);
      es.onmessage = bump;
      // What happened between the page's first load and the stream's start is caught by one refresh.
      es.onopen = bump;
      // No stream on this server (or not allowed): the poll alone keeps the page current.
      es.onerror = () => {
        if (es?.readyState === EventSource.CLOSED) es = undefined;
      };
    }
    return () => {
      clearInterval(poll);
      if (timer) clearTimeout(timer);
      es?.close();
    };
  }, [types, pollMs]);
  return tick;
}
