/**
 * The audit service's rows (audit records, stored events, registered schemas) as its database holds them, and as the
 * contracts (contracts/audit.ts) give them to clients.
 */
import type { AuditContent, AuditRecord, RegisteredSchema, StoredEvent } from "../contracts/audit";
import type { EventEnvelope } from "./events";

export interface EventRow {
  position: string;
  stream_type: string;
  stream_id: string;
  stream_version: number;
  stored_at: Date;
  envelope: EventEnvelope;
}

export function toStoredEvent(row: EventRow): StoredEvent {
  return {
    position: Number(row.position),
    streamType: row.stream_type,
    streamId: row.stream_id,
    streamVersion: row.stream_version,
    storedAt: row.stored_at.toISOString(),
    envelope: row.envelope,
  };
}

export interface SchemaRow {
  type: string;
  version: number;
  payload: Record<string, unknown>;
  description: string | null;
  registered_by: string;
  registered_at: Date;
}

export function toSchema(row: SchemaRow): RegisteredSchema {
  return {
    type: row.type,
    version: row.version,
    payload: row.payload,
    description: row.description,
    registeredBy: row.registered_by,
    registeredAt: row.registered_at.toISOString(),
  };
}

export interface AuditRow {
  seq: string;
  id: string;
  kind: "action" | "event";
  name: string;
  actor_type: string;
  actor_id: string | null;
  entity_type: string | null;
  entity_id: string | null;
  request_id: string | null;
  node_id: string | null;
  occurred_at: Date;
  recorded_at: Date;
  change: unknown;
  prev_hash: string;
  hash: string;
  anchor: string | null;
}

export function contentOf(row: AuditRow): AuditContent {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    actor: { type: row.actor_type, id: row.actor_id },
    entity: { type: row.entity_type, id: row.entity_id },
    requestId: row.request_id,
    nodeId: row.node_id,
    occurredAt: row.occurred_at.toISOString(),
    change: row.change,
  };
}

export function toRecord(row: AuditRow): AuditRecord {
  return {
    seq: Number(row.seq),
    ...contentOf(row),
    recordedAt: row.recorded_at.toISOString(),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
