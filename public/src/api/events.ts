/**
 * Server-sent events from the API with the session's token (browsers' EventSource cannot send one): reads the
 * stream with fetch and hands each event on. Resolves when the stream ends; rejects with ApiError if it is refused.
 */
import { parseEvents, type StreamEvent } from "../../../lib/event-stream";
import { ApiError } from "./http";
import { sessionStore } from "../stores/session";

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
