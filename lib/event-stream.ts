/**
 * Server-sent events on a plain Node response, for the gateway's live views (the log tail, an order's progress): the
 * stream polls its source at an interval, one poll at a time, comments on a quiet line so proxies keep it open, and
 * ends when the client leaves, after `maxMs`, or when told to. The reading side's parser is here too: the web console
 * and the tests read these streams with it.
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
  /** A poll that throws (its source is away) is reported as `event: unavailable` and tried again next time. */
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
    } catch (err) {
      const { message, type } = err as { message?: string; type?: string };
      stream.send("unavailable", { type: type ?? "ERROR", message: message ?? String(err) });
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

export interface StreamEvent {
  event: string;
  data: string;
  id?: string;
}

/** The reading side: splits a text buffer into complete events and what is left over. */
export function parseEvents(buffer: string): { events: StreamEvent[]; rest: string } {
  const events: StreamEvent[] = [];
  let rest = buffer;
  let end: number;
  while ((end = rest.indexOf("\n\n")) >= 0) {
    const block = rest.slice(0, end);
    rest = rest.slice(end + 2);
    const event: Partial<StreamEvent> = {};
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event.event = value;
      else if (field === "data") event.data = event.data === undefined ? value : `${event.data}\n${value}`;
      else if (field === "id") event.id = value;
    }
    if (event.data !== undefined) events.push({ event: event.event ?? "message", data: event.data, id: event.id });
  }
  return { events, rest };
}
