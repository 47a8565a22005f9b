/**
 * The audit record of one successful action call, as an `audit.recorded` envelope: who called what on which entity,
 * and what changed. Built in one place for both ways a record leaves: the audit middleware's publish after the call,
 * and a service's outbox in the action's own transaction (`enqueueAudit`), which makes the record part of the change.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Context } from "moleculer";
import { canonicalJson, redact, type AuditLocals } from "./audit";
import type { AuditContent } from "../contracts/audit";
import { MAX_MESSAGE_BYTES } from "./delivery";
import { createEnvelope, type EventEnvelope } from "./events";
import type { CallerMeta } from "../contracts/caller";

/** Largest change a record carries in full: a message, less room for the rest of the record (names and ids). */
const MAX_CHANGE_BYTES = MAX_MESSAGE_BYTES - 16 * 1024;

/** What the audit declaration of an action says: the entity type, and the parameter naming it. */
export interface AuditDeclaration {
  entity: string;
  idParam?: string;
}

function entityId(declared: AuditDeclaration, params: Record<string, unknown>, result: unknown): string | null {
  const fromResult = (result as { id?: unknown } | null)?.id;
  if (typeof fromResult === "string") return fromResult;
  const fromParams = params[declared.idParam ?? "id"];
  return typeof fromParams === "string" ? fromParams : null;
}

/**
 * What a record keeps of the change: the parameters, and the entity before and after where there is one. A change too
 * large for the channel (the audit consumer would refuse the message, after the call was answered) is kept as its
 * size and the SHA-256 of its canonical JSON instead.
 */
function actionChange(params: object, before: unknown, result: unknown): unknown {
  const change = {
    params: redact(params),
    ...(before !== undefined ? { before: redact(before) } : {}),
    ...(result !== null && typeof result === "object" ? { after: redact(result) } : {}),
  };
  const text = canonicalJson(change);
  const bytes = Buffer.byteLength(text);
  if (bytes <= MAX_CHANGE_BYTES) return change;
  return { omitted: "too large", bytes, sha256: createHash("sha256").update(text).digest("hex") };
}

/** The record of `ctx`'s call of `action`, which answered `result`. */
export function auditEnvelope(
  ctx: Context,
  action: { name: string; service: string; declared: AuditDeclaration },
  result: unknown,
): EventEnvelope {
  const caller = (ctx.meta as CallerMeta).caller;
  const params = (ctx.params ?? {}) as Record<string, unknown>;
  const content: AuditContent = {
    id: randomUUID(),
    kind: "action",
    name: action.name,
    actor: { type: caller?.type ?? "anonymous", id: caller && "id" in caller ? caller.id : null },
    entity: { type: action.declared.entity, id: entityId(action.declared, params, result) },
    requestId: ctx.requestID ?? null,
    nodeId: ctx.broker.nodeID,
    occurredAt: new Date().toISOString(),
    change: actionChange(params, (ctx.locals as AuditLocals | undefined)?.auditBefore, result),
  };
  return createEnvelope("audit.recorded", content, {
    source: action.service,
    correlationId: ctx.requestID ?? content.id,
  });
}
