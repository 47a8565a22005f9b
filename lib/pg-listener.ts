/**
 * A PostgreSQL `LISTEN` on its own connection (a pooled one would be given back and lose it), kept up while the
 * database comes and goes: after a lost connection it connects again with a backoff. `onWake` runs on each
 * notification and once after every (re)connect, since what was notified while it was away is not replayed.
 */
import { Client } from "pg";
import { quoteIdentifier } from "./database";
import { backoff } from "./backoff";

export interface PgListener {
  close(): Promise<void>;
}

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 5000;

export function listen(url: string, channel: string, onWake: () => void, onError: (err: Error) => void): PgListener {
  let client: Client | undefined;
  let closed = false;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;

  const retry = () => {
    if (closed || retryTimer) return;
    const delay = backoff(failures + 1, RECONNECT_MIN_MS, RECONNECT_MAX_MS);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, delay);
  };

  async function connect() {
    const next = new Client({ connectionString: url });
    let lost = false;
    const lose = (err?: Error) => {
      if (lost) return;
      lost = true;
      if (client === next) client = undefined;
      if (closed) return;
      failures += 1;
      if (err) onError(err);
      void next.end().catch(() => undefined);
      retry();
    };
    // Without a listener an 'error' (the server going away) would be thrown at the process.
    next.on("error", lose);
    next.on("end", () => lose());
    next.on("notification", () => onWake());
    try {
      await next.connect();
      await next.query(`LISTEN ${quoteIdentifier(channel)}`);
    } catch (err) {
      lose(err as Error);
      return;
    }
    if (closed || lost) {
      await next.end().catch(() => undefined);
      return;
    }
    failures = 0;
    client = next;
    onWake();
  }

  void connect();
  return {
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      await client?.end().catch(() => undefined);
      client = undefined;
    },
  };
}
