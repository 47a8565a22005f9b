/**
 * Spans as the log store keeps them. With `TRACING_EXPORTER=event` every node's tracer sends its finished spans, every
 * few seconds, as one `$tracing.spans` event that one instance of the logs service stores; a trace is then every span
 * with its trace id, which is the request id of the request that started it.
 */
import type { StoredSpan } from "../contracts/logs";

/** The event the Event trace exporter sends finished spans with. */
export const SPANS_EVENT = "$tracing.spans";

/** A finished span as Moleculer's Event exporter sends it. */
export interface ExportedSpan {
  id: string;
  traceID: string;
  parentID?: string | null;
  name: string;
  type?: string;
  service?: { name?: string; fullName?: string } | null;
  startTime: number;
  duration?: number;
  tags?: Record<string, unknown>;
  error?: { name?: string; message?: string } | null;
}

export function toStoredSpan(span: ExportedSpan): StoredSpan {
  const tags = span.tags ?? {};
  return {
    traceId: span.traceID,
    spanId: span.id,
    parentId: span.parentID ?? null,
    name: span.name,
    type: span.type ?? null,
    service: span.service?.fullName ?? span.service?.name ?? null,
    nodeId: typeof tags.nodeID === "string" ? tags.nodeID : null,
    startedAt: new Date(span.startTime).toISOString(),
    durationMs: typeof span.duration === "number" ? Math.round(span.duration * 1000) / 1000 : null,
    error: span.error ? `${span.error.name ?? "Error"}: ${span.error.message ?? ""}` : null,
    tags,
  };
}
