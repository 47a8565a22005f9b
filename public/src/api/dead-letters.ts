/**
 * The dead-letter API's answers as the console reads them (services/dlq.service.ts has the server's types; the
 * console's build does not compile the services, so what it uses of them is stated here once).
 */
export interface ErrorRecord {
  name: string;
  message: string;
  type: string;
  code: number;
  data?: unknown;
}

export interface DeadLetter {
  id: string;
  channel: string;
  group: string;
  message: unknown;
  replayable: boolean;
  status: string;
  attempts: number;
  error: ErrorRecord;
  failures: { failedAt: string; attempts: number; error: ErrorRecord }[];
  correlationId: string | null;
  replayCount: number;
  discardedBy: string | null;
  discardReason: string | null;
  failedAt: string;
  fingerprint: string;
  errorSummary: string;
}

export interface Replay {
  id: string;
  deadLetterId: string;
  operationId: string | null;
  state: "WAITING" | "SENT" | "SKIPPED" | "CANCELLED";
  detail: string | null;
  attempt: number | null;
  replayedBy: string | null;
  replayedAt: string | null;
  outcome: "PENDING" | "RESOLVED" | "FAILED" | null;
  outcomeError: ErrorRecord | null;
  outcomeAt: string | null;
}

export interface ReplayOperation {
  id: string;
  selection: Record<string, string>;
  status: "RUNNING" | "CANCELLED" | "DONE";
  total: number;
  ratePerSecond: number;
  startedBy: string;
  startedAt: string;
  cancelledBy: string | null;
  finishedAt: string | null;
  progress: Record<"waiting" | "sent" | "skipped" | "cancelled", number>;
  outcomes: Record<"pending" | "resolved" | "failed", number>;
}

export interface DeadLetterGroup {
  fingerprint: string;
  channel: string;
  group: string;
  errorType: string;
  summary: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
  sampleId: string;
  sampleError: ErrorRecord;
  orders: string[];
}

/** What an error says for a person: its first field's message (a validation error names the field), or its message. */
export function errorText(error: ErrorRecord): string {
  const fields = Array.isArray(error.data) ? (error.data as { message?: string }[]) : [];
  return `${error.type}: ${fields[0]?.message ?? error.message}`;
}
