/**
 * orders (Service 2, DB 2 + read replica): customers' orders with their lines, prices captured at order time, and
 * the order lifecycle (lib/order-status.ts). Writes go to the primary; list and get read from the replica once it
 * has replayed everything the primary had committed when the read began, so nobody reads older data than their own
 * last write (read-your-writes by waiting for the replica position, else the primary).
 *
 * Its parts: placing an order (mixins/orders-intake.mixin.ts: `create`, the idempotent replay, backpressure at intake
 * and pricing), reading orders (mixins/orders-reads.mixin.ts: `list`, `get` and the loading of orders with their
 * lines), the rows (lib/order-rows.ts); the lifecycle (`cancel`, `transition`) and the re-announcing of stalled
 * orders are here.
 */
import { randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import type { AuditLocals } from "../lib/audit";
import { MoleculerClientError } from "../lib/errors";
import { transition } from "../lib/order-status";
import { ORDER_STATUSES, type Order, type OrderStatus } from "../contracts/orders";
import { ownerScope } from "../lib/permissions";
import orderMigrations from "../migrations/orders";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { outboxMixin, type OutboxMethods } from "../mixins/outbox.mixin";
import { ordersIntakeMixin } from "../mixins/orders-intake.mixin";
import { ordersReadsMixin, type OrdersReadMethods } from "../mixins/orders-reads.mixin";
import { createEnvelope } from "../lib/events";
import { orderCreatedEvent } from "../lib/order-events";
import type { OrdersMeta } from "../lib/order-requests";
import { toOrder, type OrderRow } from "../lib/order-rows";
import { paramsSchema, type ParamsOf } from "../lib/params";

const CANCEL = ["orders:cancel:any", "orders:cancel:own"];

const cancelParams = paramsSchema({
  id: { type: "uuid" },
  reason: { type: "string", max: 500, optional: true },
  $$strict: true,
});
const transitionParams = paramsSchema({
  id: { type: "uuid" },
  status: { type: "enum", values: [...ORDER_STATUSES] },
  reason: { type: "string", max: 1000, optional: true },
  $$strict: true,
});

interface OrdersMethods {
  changeStatus(order: Order, next: OrderStatus, reason: string | null, ctx: Context): Promise<Order | undefined>;
  reannounceStalled(): Promise<number>;
}

/** Orders sent again by one round of `reannounceStalled`; the next round takes the rest. */
const REANNOUNCE_BATCH = 100;

interface Reannouncer {
  timer?: NodeJS.Timeout;
  round?: Promise<void>;
  stopping: boolean;
}

type OrdersState = { reannouncer: Reannouncer };

type OrdersThis = Service<DbSettings> &
  DbServiceThis &
  DbMethods &
  OrdersMethods &
  OutboxMethods &
  OrdersReadMethods &
  OrdersState;

const OrdersService: ServiceSchema<DbSettings, OrdersMethods, OrdersState, OrdersThis> = {
  name: "orders",
  /**
   * Merged the last first: the intake's action (`POST /`), then the reads' (`GET /`, `GET /:id`), are declared before
   * this schema's (`POST /:id/cancel`, `transition`). The mixins' own lifecycle handlers run before the db mixin's
   * `started` (connect and migrate); this schema's `started` runs after it, once the database is there, and its
   * `stopped` runs first, before the outbox relay stops.
   */
  mixins: [
    outboxMixin(),
    dbMixin({
      service: "orders",
      migrations: orderMigrations,
      readReplica: true,
    }),
    ordersReadsMixin(),
    ordersIntakeMixin(),
  ],

  created(this: OrdersThis) {
    this.reannouncer = { stopping: false };
  },

  started(this: OrdersThis) {
    const every = Math.max(50, Math.floor(this.settings.config.saga.stallAfterMs / 4));
    const round = async () => {
      try {
        while ((await this.reannounceStalled()) === REANNOUNCE_BATCH && !this.reannouncer.stopping);
      } catch (err) {
        this.logger.warn(`Re-announcing stalled orders: ${(err as Error).message}`);
      }
      if (!this.reannouncer.stopping) this.reannouncer.timer = setTimeout(schedule, every);
    };
    const schedule = () => {
      this.reannouncer.round = round();
    };
    this.reannouncer.timer = setTimeout(schedule, every);
  },

  async stopped(this: OrdersThis) {
    this.reannouncer.stopping = true;
    clearTimeout(this.reannouncer.timer);
    await this.reannouncer.round;
  },

  actions: {
    /** Cancels an order while it is still PENDING (409 `INVALID_TRANSITION` after). Own orders, or any with `orders:cancel:any`. */
    cancel: {
      audit: { entity: "order" },
      rest: "POST /:id/cancel",
      permissions: CANCEL,
      params: cancelParams,
      async handler(this: OrdersThis, ctx: Context<ParamsOf<typeof cancelParams>, OrdersMeta>): Promise<Order> {
        const owner = ownerScope(ctx.meta.caller, "orders:cancel:any");
        const order = await this.findOrder(ctx.params.id, owner, { replica: false });
        const next = transition(order.status, "CANCELLED");
        const reason = ctx.params.reason ?? "cancelled by request";
        const changed = await this.changeStatus(order, next, reason, ctx);
        if (!changed) {
          throw new MoleculerClientError("The order changed meanwhile; read it again", 409, "STALE_VERSION", {
            id: order.id,
          });
        }
        return changed;
      },
    },

    /**
     * Moves an order to `status` for the order saga. Idempotent: an order already there is answered as it is; a move
     * the lifecycle lacks is 409 `INVALID_TRANSITION`. System only.
     */
    transition: {
      audit: { entity: "order" },
      params: transitionParams,
      async handler(this: OrdersThis, ctx: Context<ParamsOf<typeof transitionParams>>) {
        const { id, status, reason } = ctx.params;
        for (;;) {
          const order = await this.findOrder(id, undefined, { replica: false });
          if (order.status === status) return order;
          const next = transition(order.status, status);
          const changed = await this.changeStatus(order, next, reason ?? null, ctx);
          if (changed) return changed;
          // Changed meanwhile (a customer's cancel): decide again on what it is now.
        }
      },
    },
  },

  methods: {
    /**
     * One conditional UPDATE from the version read, and in the same transaction its `order.statusChanged` event and
     * the audit record of the call `ctx` (of an audited action); the order as changed, or undefined (and nothing
     * written) when it changed meanwhile.
     */
    async changeStatus(this: OrdersThis, order: Order, next: OrderStatus, reason: string | null, ctx: Context) {
      const correlationId = ctx.requestID ?? order.id;
      return this.sequelize.transaction(async (transaction) => {
        const [updated] = await this.rows<OrderRow>(
          `UPDATE orders SET status = $3, status_reason = $4, version = version + 1, updated_at = now()
           WHERE id = $1 AND version = $2 RETURNING *`,
          [order.id, order.version, next, reason],
          { transaction },
        );
        if (!updated) return undefined;
        const changed = {
          id: order.id,
          customerId: order.customerId,
          previousStatus: order.status,
          status: next,
          reason,
          version: updated.version,
        };
        const statusChanged = createEnvelope(
          "order.statusChanged",
          { order: changed },
          { source: "orders", correlationId },
        );
        // The UPDATE was conditional on the version read: `order` is exactly what it changed. The lines never
        // change, so the order as it is now needs no second read.
        (ctx.locals as AuditLocals).auditBefore = order;
        const after: Order = { ...toOrder(updated, []), lines: order.lines };
        await this.enqueueAudit(transaction, ctx, after, [statusChanged]);
        return after;
      });
    },

    /**
     * Sends `order.created` again for the orders still PENDING SAGA_STALL_AFTER after it was last sent: JetStream
     * acknowledges a publish before it is on disk, so the first may be lost, and nothing else would start the
     * order's saga. Sent through the outbox under a new message id (past JetStream's duplicate window) with the
     * event's own id, so a saga engine that did get the first drops this one in its inbox. An order PENDING because
     * its saga waits (a participant down) is sent again at that pace too, harmlessly. Returns how many it sent.
     */
    async reannounceStalled(this: OrdersThis): Promise<number> {
      return this.sequelize.transaction(async (transaction) => {
        const rows = await this.rows<OrderRow>(
          `UPDATE orders SET announced_at = now() WHERE id IN (
             SELECT id FROM orders WHERE status = 'PENDING'
               AND announced_at < now() - make_interval(secs => $1 / 1000.0)
             ORDER BY announced_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING *`,
          [this.settings.config.saga.stallAfterMs, REANNOUNCE_BATCH],
          { transaction },
        );
        const orders = await this.loadOrders(rows, { transaction });
        for (const [index, order] of orders.entries()) {
          const event = orderCreatedEvent(order, rows[index].request_id ?? order.id);
          await this.enqueueEvent(transaction, event, randomUUID());
        }
        if (orders.length > 0) this.logger.warn(`Sent order.created again for ${orders.length} order(s) still PENDING`);
        return orders.length;
      });
    },
  },
};

export default OrdersService;
