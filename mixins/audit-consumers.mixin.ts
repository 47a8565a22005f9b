/**
 * The audit group's consumers: they consume `audit.recorded` (every successful call of an action that declares
 * `audit`, from middlewares/audit.middleware.ts) and every domain event, and append each as a record chained to the
 * one before it by SHA-256 (lib/audit.ts). Appends take a transaction-scoped advisory lock of the audit database only,
 * so they queue behind each other, never behind anything else in the system. Domain events are also kept in the event
 * store (mixins/audit-event-store.mixin.ts reads it).
 */
import type { ServiceSchema } from "moleculer";
import type { Transaction } from "sequelize";
import type { AuditContent } from "../contracts/audit";
import type { ErrorRecord } from "../contracts/dead-letters";
import { GENESIS_HASH, anchorOf, chainHash, redact } from "../lib/audit";
import { DOMAIN_EVENT_TYPES } from "../lib/event-types";
import type { EventEnvelope } from "../lib/events";
import { storable, storableJson, storableText } from "../lib/storable";
import type { AuditState, AuditVerifyMethods } from "./audit-verify.mixin";
import { consumerMixin, type ConsumerThis, type EventHandler } from "./consumer.mixin";
import type { DbMethods } from "./db.mixin";

/** An arbitrary constant; advisory locks are scoped to the audit database. */
const CHAIN_LOCK = 7_426_101;

type AuditConsumer = ConsumerThis &
  Pick<DbMethods, "rows"> &
  AuditState &
  Pick<AuditVerifyMethods, "scheduleCheckpoint">;

/** Appends one record to the chain, in the consumer's transaction. */
async function append(svc: AuditConsumer, content: AuditContent, transaction: Transaction): Promise<void> {
  await svc.rows("SELECT pg_advisory_xact_lock($1)", [CHAIN_LOCK], { transaction });
  const [last] = await svc.rows<{ hash: string }>("SELECT hash FROM audit_records ORDER BY seq DESC LIMIT 1", [], {
    transaction,
  });
  const prevHash = last?.hash ?? GENESIS_HASH;
  // What is stored must be what was hashed: normalised as jsonb keeps it (no undefined, no Dates) and with the text
  // PostgreSQL cannot store escaped (lib/storable.ts), so a record holding a NUL is chained and verifiable like any.
  const stored = storable(content);
  const hash = chainHash(prevHash, stored);
  const inserted = await svc.rows<{ seq: string }>(
    `INSERT INTO audit_records (id, kind, name, actor_type, actor_id, entity_type, entity_id, request_id, node_id,
       occurred_at, change, prev_hash, hash, anchor)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING RETURNING seq`,
    [
      stored.id,
      stored.kind,
      stored.name,
      stored.actor.type,
      stored.actor.id,
      stored.entity.type,
      stored.entity.id,
      stored.requestId,
      stored.nodeId,
      stored.occurredAt,
      storableJson(content.change),
      prevHash,
      hash,
      anchorOf(svc.anchorKey, hash),
    ],
    { transaction },
  );
  if (inserted[0]) {
    const seq = Number(inserted[0].seq);
    transaction.afterCommit(() => {
      svc.headSeq = Math.max(svc.headSeq, seq);
      svc.scheduleCheckpoint();
    });
  }
}

const recordAction: EventHandler<AuditConsumer> = async function (envelope, transaction) {
  await append(this, envelope.payload as AuditContent, transaction);
};

/**
 * Before the audit group dead-letters a message, notes the record it would have been, in the audit database: verify
 * reports the trail incomplete until the record is there (replayed from the dead-letter queue). A failure here leaves
 * the message to be delivered again, so no record leaves the trail without a trace.
 */
async function noteMissing(
  this: AuditConsumer,
  { deadLetterId, envelope, error }: { deadLetterId: string; envelope: EventEnvelope | undefined; error: ErrorRecord },
): Promise<void> {
  const action = envelope?.type === "audit.recorded" ? (envelope.payload as Partial<AuditContent> | null) : null;
  const recordId = action ? String(action.id) : (envelope?.id ?? deadLetterId);
  const name = action ? String(action.name) : (envelope?.type ?? null);
  await this.rows(
    `INSERT INTO missing_records (record_id, name, dead_letter_id, error) VALUES ($1, $2, $3, $4)
     ON CONFLICT (record_id) DO NOTHING`,
    [storableText(recordId), name === null ? null : storableText(name), deadLetterId, storableJson(error)],
  );
}

/**
 * A domain event: stored in the event store (its stream is the entity it is about, the payload's first key) and
 * recorded in the audit trail as its producer's doing, in one transaction.
 */
const recordEvent: EventHandler<AuditConsumer> = async function (envelope: EventEnvelope, transaction) {
  const [streamType, subject] = Object.entries(envelope.payload as Record<string, { id?: unknown }>)[0] ?? [];
  const streamId = typeof subject?.id === "string" ? subject.id : null;
  await append(
    this,
    {
      id: envelope.id,
      kind: "event",
      name: envelope.type,
      actor: { type: "service", id: envelope.source },
      entity: { type: streamType ?? null, id: streamId },
      requestId: envelope.correlationId,
      nodeId: null,
      occurredAt: envelope.occurredAt,
      change: redact(envelope.payload),
    },
    transaction,
  );
  // Under the chain's lock (taken by append), so stream versions are handed out one at a time.
  await this.rows(
    `INSERT INTO events (id, stream_type, stream_id, stream_version, type, version, occurred_at, envelope)
     SELECT $1::uuid, $2::text, $3::text, coalesce(max(stream_version), 0) + 1, $4::text, $5::int, $6::timestamptz, $7::jsonb
     FROM events WHERE stream_type = $2::text AND stream_id = $3::text
     ON CONFLICT (id) DO NOTHING`,
    [
      envelope.id,
      storableText(streamType ?? envelope.type),
      storableText(streamId ?? envelope.id),
      envelope.type,
      envelope.version,
      envelope.occurredAt,
      storableJson(envelope),
    ],
    { transaction },
  );
};

export function auditConsumersMixin(): Partial<ServiceSchema> {
  return consumerMixin<AuditConsumer>({
    group: "audit",
    onDeadLetter: noteMissing,
    handlers: {
      "audit.recorded": recordAction,
      ...Object.fromEntries(DOMAIN_EVENT_TYPES.map((type) => [type, recordEvent])),
    },
  });
}
