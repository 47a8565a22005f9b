/**
 * Server-sent events from the API with the session's token (browsers' EventSource cannot send one): reads the
 * stream with fetch and hands each event on. Resolves when the stream ends; rejects with ApiError if it is refused.
 */
import { ApiError } from "./client";
import { sessionStore } from "../stores/session";

export interface StreamEvent {
  event: string;
  data: string;
  id?: string;
}

/** Splits a text buffer into complete events and what is left over. */
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

export async function followEvents(
  path: string,
  onEvent: (event: StreamEvent) => void,
  signal: AbortSignal,
  lastEventId?: string,
): Promise<void> {
  const open = () =>
    fetch(path, {
      signal,
      headers: {
        accept: "text/event-stream",
        authorization: `Bearer ${sessionStore.getState().accessToken ?? ""}`,
        ...(lastEventId ? { "last-event-id": lastEventId } : {}),
      },
    });
  let res = await open();
  if (res.status === 401 && (await sessionStore.getState().refresh())) res = await open();
  if (!res.ok || !res.body) {
    const body = (await res.json().catch(() => null)) as { type?: string; message?: string; data?: unknown } | null;
    throw new ApiError(res.status, body?.type ?? "HTTP_ERROR", body?.message ?? res.statusText, body?.data, null);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const parsed = parseEvents(buffer + decoder.decode(value, { stream: true }));
    buffer = parsed.rest;
    parsed.events.forEach(onEvent);
  }
}
