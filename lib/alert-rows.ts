/**
 * The alerts service's rows (incidents, the notices about them, the notifications due to be sent) as its database
 * holds them, and as the contracts (contracts/alerts.ts) give them to clients.
 */
import type { Incident, IncidentStatus, Notice, NotificationChannel } from "../contracts/alerts";
import type { AlertRule } from "./alerts";

export interface IncidentRow {
  id: string;
  rule: AlertRule;
  key: string;
  status: IncidentStatus;
  summary: string;
  notified: boolean;
  opened_at: Date;
  resolved_at: Date | null;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
}

export interface NoticeRow {
  kind: Notice["kind"];
  channel: NotificationChannel;
  status: Notice["status"];
  attempts: number;
  last_error: string | null;
  created_at: Date;
  sent_at: Date | null;
}

export interface DueNotification {
  id: string;
  kind: "firing" | "resolved";
  channel: NotificationChannel;
  attempts: number;
  rule: AlertRule;
  key: string;
  summary: string;
  opened_at: Date;
  resolved_at: Date | null;
}

export function toIncident(row: IncidentRow): Incident {
  return {
    id: row.id,
    rule: row.rule,
    key: row.key,
    status: row.status,
    summary: row.summary,
    notified: row.notified,
    openedAt: row.opened_at.toISOString(),
    resolvedAt: row.resolved_at?.toISOString() ?? null,
    acknowledgedAt: row.acknowledged_at?.toISOString() ?? null,
    acknowledgedBy: row.acknowledged_by,
  };
}

export function toNotice(row: NoticeRow): Notice {
  return {
    kind: row.kind,
    channel: row.channel,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    createdAt: row.created_at.toISOString(),
    sentAt: row.sent_at?.toISOString() ?? null,
  };
}
