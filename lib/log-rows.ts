/**
 * The log store's records and spans as its database holds them, and as the contracts (contracts/logs.ts) give them.
 */
import type { LogRecord, StoredSpan } from "../contracts/logs";

export interface LogRow {
  id: string;
  time: Date;
  level: string;
  node_id: string;
  module: string;
  request_id: string | null;
  message: string;
  fields: Record<string, unknown> | null;
}

export interface SpanRow {
  trace_id: string;
  span_id: string;
  parent_id: string | null;
  name: string;
  type: string | null;
  service: string | null;
  node_id: string | null;
  started_at: Date;
  duration_ms: number | null;
  error: string | null;
  tags: Record<string, unknown>;
}

export function toSpan(row: SpanRow): StoredSpan {
  return {
    traceId: row.trace_id,
    spanId: row.span_id,
    parentId: row.parent_id,
    name: row.name,
    type: row.type,
    service: row.service,
    nodeId: row.node_id,
    startedAt: row.started_at.toISOString(),
    durationMs: row.duration_ms,
    error: row.error,
    tags: row.tags,
  };
}

export function toRecord(row: LogRow): LogRecord {
  return {
    id: Number(row.id),
    time: row.time.toISOString(),
    level: row.level,
    nodeId: row.node_id,
    module: row.module,
    requestId: row.request_id,
    message: row.message,
    fields: row.fields,
  };
}
