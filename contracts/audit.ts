/** Audit records as the trail answers them: to the console, tests and benches. */

export interface AuditContent {
  id: string;
  /** An action call, or a domain event. */
  kind: "action" | "event";
  /** The action (`products.update`) or event type (`order.created`). */
  name: string;
  actor: { type: string; id: string | null };
  entity: { type: string | null; id: string | null };
  requestId: string | null;
  nodeId: string | null;
  occurredAt: string;
  /**
   * For an action, what was asked and what came of it: `params`, the entity `before` (when the service read it:
   * `auditBefore`) and `after` (the action's result); for an event, its payload. Secrets redacted throughout.
   */
  change: unknown;
}

/** A record with its place in the hash chain. */
export interface AuditRecord extends AuditContent {
  seq: number;
  recordedAt: string;
  hash: string;
  prevHash: string;
}
