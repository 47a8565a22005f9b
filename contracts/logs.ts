/** Log records and trace spans as the log store answers them: to the console, alert rules, tests and benches. */
import type { CursorPage, Page } from "../lib/paging";

/** A log line as a node ships it. */
export interface ShippedLogRecord {
  time: string;
  level: string;
  nodeId: string;
  module: string;
  requestId: string | null;
  message: string;
  fields: Record<string, unknown> | null;
}

/** A stored log line. */
export interface LogRecord extends ShippedLogRecord {
  id: number;
}

/** A span as the log store keeps it. */
export interface StoredSpan {
  traceId: string;
  spanId: string;
  parentId: string | null;
  name: string;
  type: string | null;
  service: string | null;
  nodeId: string | null;
  startedAt: string;
  durationMs: number | null;
  error: string | null;
  tags: Record<string, unknown>;
}

export interface Trace {
  traceId: string;
  spans: StoredSpan[];
}

export type LogPage = Page<LogRecord>;

export type LogTailPage = CursorPage<LogRecord>;
