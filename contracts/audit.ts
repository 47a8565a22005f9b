/** Audit records as the trail answers them: to the console, tests and benches. */
import type { Page } from "../lib/paging";
import type { EventEnvelope } from "../lib/events";

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

export type AuditPage = Page<AuditRecord>;

/** A domain event as the event store keeps it. */
export interface StoredEvent {
  position: number;
  streamType: string;
  streamId: string;
  streamVersion: number;
  storedAt: string;
  envelope: EventEnvelope;
}

/** One version of an event type's payload schema, as the registry keeps it. */
export interface RegisteredSchema {
  type: string;
  version: number;
  payload: Record<string, unknown>;
  description: string | null;
  registeredBy: string;
  registeredAt: string;
}

export type ChainVerdict = { valid: true; checked: number } | { valid: false; checked: number; brokenAt: ChainBreak };

/** Where the chain breaks, and how. */
export type ChainBreak = {
  /** Null for a record that is missing altogether (`record missing`): it never got a place in the chain. */
  seq: number | null;
  /** Null where no record is there to name (`records removed`: seq is the first one gone). */
  id: string | null;
  reason: "content changed" | "link broken" | "not anchored" | "records removed" | "record missing";
};
