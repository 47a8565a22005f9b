/** Incidents and the notices sent about them, as the alerts service answers them: to the console and tests. */
import type { AlertRule } from "../lib/alerts";
import type { Page } from "../lib/paging";
import type { Lifecycle } from "./lifecycle";

export type IncidentStatus = "FIRING" | "RESOLVED";

/** An incident opens FIRING and resolves once; a new firing of its rule opens another. Acknowledging it is a mark on a
 * FIRING incident, not a status. */
export const INCIDENT_LIFECYCLE: Lifecycle<IncidentStatus> = { FIRING: ["RESOLVED"], RESOLVED: [] };

export type NotificationChannel = "email" | "webhook";

export interface Incident {
  id: string;
  rule: AlertRule;
  key: string;
  status: IncidentStatus;
  summary: string;
  notified: boolean;
  openedAt: string;
  resolvedAt: string | null;
  /** Someone has it in hand: who (`user:<id>`) and when. It stays open until what fired clears. */
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
}

export type IncidentPage = Page<Incident>;

/** A notice sent (or being sent) about an incident: `GET /api/alerts/:id`. */
export interface Notice {
  kind: "firing" | "resolved";
  channel: NotificationChannel;
  status: "PENDING" | "SENT" | "FAILED";
  attempts: number;
  lastError: string | null;
  createdAt: string;
  sentAt: string | null;
}
