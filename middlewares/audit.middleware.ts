/**
 * The audit trail's intake on every node: each successful call of an action that declares `audit` becomes an
 * `audit.recorded` message on a durable channel, which the audit service chains and stores. Declared on the action,
 * applied here, so no service can forget it. A handler whose service has an outbox writes the record in its own
 * transaction instead (`enqueueAudit`, mixins/outbox.mixin.ts): then it is part of the change, published after the
 * commit with its events, and this middleware leaves it. Otherwise the record is published before the caller gets the
 * answer. If the
 * channel cannot take it (NATS down), the change is committed all the same, so the record goes to a spool on disk
 * (lib/spool.ts, fsynced) before the answer goes out, and is published from there when the channel is back, also
 * after a crash and restart. While the spool is full, audited calls are refused (503) before their handler runs, so
 * no change is made whose record could not be kept; what the spool still cannot take (the disk failing, calls racing
 * for its last place) is counted in `aicunet_audit_unsent` and logged. A change too large for a message is recorded by its size and digest, so the record
 * of an answered call always fits the channel; a record the audit service still gives up on is reported by verify.
 */
import type { ActionHandler, ActionSchema, Context, Middleware, Service, ServiceBroker } from "moleculer";
import type { AuditLocals } from "../lib/audit";
import type { AuditContent } from "../contracts/audit";
import { auditEnvelope } from "../lib/audit-record";
import { channelsReady, ensureStream } from "../lib/delivery";
import type { EventEnvelope } from "../lib/events";
import { DependencyUnavailableError } from "../lib/errors";
import { EnvelopeSpool } from "../lib/spool";
import type { CallerMeta } from "../contracts/caller";

const SPOOL_LIMIT = 100_000;
const RETRY_MS = 2000;

export interface AuditMiddlewareOptions {
  /** Where records wait while the channel cannot take them; one directory per Moleculer namespace. */
  spoolDir: string;
  /** Most records the spool holds; default 100,000. */
  spoolLimit?: number;
}

export function AuditMiddleware(options: AuditMiddlewareOptions): Middleware {
  let broker: ServiceBroker;
  const spoolLimit = options.spoolLimit ?? SPOOL_LIMIT;
  const spool = new EnvelopeSpool(options.spoolDir, spoolLimit);
  let retryTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  /** Records are spooled: new ones queue behind them, so the trail keeps its order. */
  let spooled = false;

  let streamReady = false;
  const publish = async (envelope: EventEnvelope) => {
    // Before the channels can take it (the node's start), the record waits in the spool like one NATS refused.
    if (!channelsReady(broker)) throw new Error("the durable channels are not subscribed yet");
    if (!streamReady) {
      await ensureStream(broker.channelAdapter, envelope.type);
      streamReady = true;
    }
    await broker.sendToChannel(envelope.type, envelope, { headers: { "Nats-Msg-Id": envelope.id } });
  };

  const scheduleRetry = () => {
    if (!stopped) retryTimer ??= setTimeout(publishSpooled, RETRY_MS);
  };

  /** Publishes what the spool holds, oldest first, until it is empty or the channel refuses again. */
  async function publishSpooled() {
    retryTimer = undefined;
    try {
      for (const name of await spool.pending()) {
        const envelope = await spool.read(name);
        if (envelope) await publish(envelope);
        await spool.remove(name);
      }
      spooled = (await spool.pending()).length > 0;
      if (spooled) scheduleRetry();
    } catch {
      scheduleRetry();
    }
  }

  async function record(envelope: EventEnvelope) {
    if (!spooled) {
      try {
        await publish(envelope);
        return;
      } catch {
        // The channel cannot take it now: to the spool.
      }
    }
    let reason: string;
    try {
      if (await spool.add(envelope)) {
        spooled = true;
        scheduleRetry();
        return;
      }
      reason = `the spool holds ${spoolLimit} records already`;
    } catch (err) {
      reason = (err as Error).message;
    }
    broker.metrics.increment("aicunet.audit.unsent");
    broker.logger.error(`Audit record ${(envelope.payload as AuditContent).name} lost: ${reason}`, envelope);
  }

  return {
    name: "Audit",
    created(b: ServiceBroker) {
      broker = b;
      broker.metrics.register({
        type: "counter",
        name: "aicunet.audit.unsent",
        description: "Audit records this node could neither publish nor spool",
      });
    },
    async started() {
      // Records a previous run of this node (or a crashed one) spooled.
      spooled = (await spool.pending()).length > 0;
      if (spooled) scheduleRetry();
    },
    localAction(handler: ActionHandler, action: ActionSchema & { service?: { name: string } }) {
      const declared = action.audit;
      if (!declared) return handler;
      return async function audited(this: Service, ctx: Context<Record<string, unknown>, CallerMeta>) {
        // The record of this call would have nowhere to go: refused before anything changes.
        if (spooled && (await spool.pending()).length >= spoolLimit) {
          throw new DependencyUnavailableError(
            "audit trail",
            `the channel is away and the audit spool holds ${spoolLimit} records`,
          );
        }
        const result = await handler.call(this, ctx);
        // The handler wrote its record in its own transaction, through its service's outbox.
        if ((ctx.locals as AuditLocals | undefined)?.auditWritten) return result;
        const envelope = auditEnvelope(
          ctx,
          { name: action.name!, service: action.service?.name ?? "unknown", declared },
          result,
        );
        await record(envelope);
        return result;
      } as ActionHandler;
    },
    async stopped() {
      stopped = true;
      clearTimeout(retryTimer);
      const waiting = (await spool.pending()).length;
      if (waiting > 0) broker.logger.warn(`${waiting} audit record(s) wait in ${spool.dir} for the next start`);
    },
  };
}
