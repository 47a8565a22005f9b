/**
 * The audit trail's intake on every node: each successful call of an action that declares `audit` becomes an
 * `audit.recorded` message on a durable channel, which the audit service chains and stores. Declared on the action,
 * applied here, so no service can forget it. The record is published before the caller gets the answer; if the
 * channel cannot take it (NATS down), the answer still goes out (the change is committed) and the record waits in a
 * bounded buffer that is retried; what overflows is counted in `aicunet_audit_unsent` and logged.
 */
import { randomUUID } from "node:crypto";
import type { ActionHandler, ActionSchema, Context, Middleware, Service, ServiceBroker } from "moleculer";
import { redact, type AuditContent } from "../lib/audit";
import { ensureStream } from "../lib/delivery";
import { createEnvelope, type EventEnvelope } from "../lib/events";
import type { CallerMeta } from "./permissions.middleware";

const BUFFER_LIMIT = 10_000;
const RETRY_MS = 2000;

function entityId(declared: { idParam?: string }, params: Record<string, unknown>, result: unknown): string | null {
  const fromResult = (result as { id?: unknown } | null)?.id;
  if (typeof fromResult === "string") return fromResult;
  const fromParams = params[declared.idParam ?? "id"];
  return typeof fromParams === "string" ? fromParams : null;
}

export function AuditMiddleware(): Middleware {
  let broker: ServiceBroker;
  const unsent: EventEnvelope[] = [];
  let retryTimer: NodeJS.Timeout | undefined;

  let streamReady = false;
  const publish = async (envelope: EventEnvelope) => {
    if (!streamReady) {
      await ensureStream(broker.channelAdapter, envelope.type);
      streamReady = true;
    }
    await broker.sendToChannel(envelope.type, envelope, { headers: { "Nats-Msg-Id": envelope.id } });
  };

  async function retryUnsent() {
    retryTimer = undefined;
    while (unsent.length > 0) {
      try {
        await publish(unsent[0]);
        unsent.shift();
      } catch {
        retryTimer = setTimeout(retryUnsent, RETRY_MS);
        return;
      }
    }
  }

  async function record(envelope: EventEnvelope) {
    try {
      if (unsent.length > 0) throw new Error("earlier records are still waiting");
      await publish(envelope);
    } catch (err) {
      if (unsent.length >= BUFFER_LIMIT) {
        broker.metrics.increment("aicunet.audit.unsent");
        broker.logger.error(
          `Audit record ${envelope.payload && (envelope.payload as AuditContent).name} lost: ${(err as Error).message}`,
        );
        return;
      }
      unsent.push(envelope);
      retryTimer ??= setTimeout(retryUnsent, RETRY_MS);
    }
  }

  return {
    name: "Audit",
    created(b: ServiceBroker) {
      broker = b;
      broker.metrics.register({
        type: "counter",
        name: "aicunet.audit.unsent",
        description: "Audit records this node could not publish (buffer full)",
      });
    },
    localAction(handler: ActionHandler, action: ActionSchema & { service?: { name: string } }) {
      const declared = action.audit;
      if (!declared) return handler;
      return async function audited(this: Service, ctx: Context<Record<string, unknown>, CallerMeta>) {
        const result = await handler.call(this, ctx);
        const caller = ctx.meta.caller;
        const content: AuditContent = {
          id: randomUUID(),
          kind: "action",
          name: action.name!,
          actor: { type: caller?.type ?? "anonymous", id: caller && "id" in caller ? caller.id : null },
          entity: { type: declared.entity, id: entityId(declared, ctx.params ?? {}, result) },
          requestId: ctx.requestID ?? null,
          nodeId: ctx.broker.nodeID,
          occurredAt: new Date().toISOString(),
          change: redact(ctx.params ?? {}),
        };
        const { id, ...payload } = content;
        const envelope = createEnvelope(
          "audit.recorded",
          { id, ...payload },
          {
            source: action.service?.name ?? "unknown",
            correlationId: ctx.requestID ?? id,
          },
        );
        await record(envelope);
        return result;
      } as ActionHandler;
    },
    async stopped() {
      clearTimeout(retryTimer);
      if (unsent.length > 0) broker.logger.error(`${unsent.length} audit record(s) unsent at shutdown`);
    },
  };
}
