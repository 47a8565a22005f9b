/**
 * Server-sent events on a plain Node response, for the gateway's live views (the log tail, an order's progress): the
 * stream polls its source at an interval, one poll at a time, comments on a quiet line so proxies keep it open, and
 * ends when the client leaves, after `maxMs`, or when told to.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

const KEEPALIVE_MS = 15_000;

export interface EventStream {
  send(event: string, data: unknown, id?: string | number): void;
  end(): void;
}

export interface EventStreamOptions {
  pollMs: number;
  /** The longest the stream stays open (the client reconnects, re-authenticated). */
  maxMs: number;
  /** Must not throw: a source that fails says so on the stream. */
  poll(stream: EventStream): Promise<void>;
  onEnd?(): void;
}

/** Starts the stream (status line and headers are sent now) and its first poll. */
export function openEventStream(req: IncomingMessage, res: ServerResponse, options: EventStreamOptions): EventStream {
  res.writeHead(200, {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    Connection: "keep-alive",
    "X-Accel-Buffering": "no",
  });
  res.write("retry: 2000\n\n");
  let polling = false;
  const stream: EventStream = {
    send(event, data, id) {
      if (res.writableEnded) return;
      res.write(`${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    end() {
      clearInterval(pollTimer);
      clearInterval(keepAlive);
      clearTimeout(expiry);
      if (!res.writableEnded) res.end();
      options.onEnd?.();
    },
  };
  const poll = async () => {
    if (polling || res.writableEnded) return;
    polling = true;
    try {
      await options.poll(stream);
    } catch {
      stream.end(); // a source that fails without saying so cannot be followed any further
    } finally {
      polling = false;
    }
  };
  const pollTimer = setInterval(() => void poll(), options.pollMs);
  const keepAlive = setInterval(() => res.writableEnded || res.write(": keep-alive\n\n"), KEEPALIVE_MS);
  const expiry = setTimeout(() => stream.end(), options.maxMs);
  req.once("close", () => stream.end());
  // After the caller has the stream in hand (a first poll may already end it).
  queueMicrotask(() => void poll());
  return stream;
}
