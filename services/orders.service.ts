/**
 * orders (Service 2, DB 2 + read replica): customers' orders with their lines, prices captured at order time, and
 * the order lifecycle (lib/order-status.ts). Writes go to the primary; list and get read from the replica once it
 * has replayed everything the primary had committed when the read began, so nobody reads older data than their own
 * last write (read-your-writes by waiting for the replica position, else the primary).
 */
import { createHash, randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import type { AuditLocals } from "../lib/audit";
import { selectPage } from "../lib/database";
import { config } from "../lib/config";
import {
  ForbiddenError,
  NotFoundError,
  OverloadedError,
  invalidFields,
  type FieldProblem,
  MoleculerClientError,
} from "../lib/errors";
import type { GatewayMeta } from "../lib/gateway-meta";
import { transition } from "../lib/order-status";
import {
  isFinal,
  type Order,
  ORDER_STATUSES,
  type OrderLine,
  type OrderPage,
  type OrderStatus,
  type OrderWithSaga,
  type ShippingAddress,
} from "../contracts/orders";
import type { Saga } from "../contracts/sagas";
import { asSystem, ownerScope } from "../lib/permissions";
import orderMigrations from "../migrations/orders";
import type { CallerMeta } from "../contracts/caller";
import {
  dbMixin,
  type DbMethods,
  type DbServiceThis,
  type DbSettings,
  type QueryOptions,
  type ReadFrom,
} from "../mixins/db.mixin";
import { outboxMixin, type OutboxMethods } from "../mixins/outbox.mixin";
import { outboxRowsFrom } from "../lib/outbox";
import { createEnvelope } from "../lib/events";
import { deterministicId } from "../lib/delivery";
import type { Product } from "../contracts/products";
import { storableJson } from "../lib/storable";

export interface CreateOrderParams {
  items: { productId: string; quantity: number }[];
  shippingAddress: ShippingAddress;
  paymentMethod: string;
}

interface OrderRow {
  id: string;
  customer_id: string;
  status: OrderStatus;
  status_reason: string | null;
  currency: string;
  total_amount: string;
  shipping_address: ShippingAddress;
  payment_method: string;
  request_hash: string | null;
  request_id: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

interface LineRow {
  order_id: string;
  product_id: string;
  sku: string;
  name: string;
  quantity: number;
  unit_price_amount: string;
}

type OrdersMeta = GatewayMeta & CallerMeta;

const MAX_PAGE_SIZE = 100;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

const READ = ["orders:read:any", "orders:read:own"];
const CANCEL = ["orders:cancel:any", "orders:cancel:own"];

function toOrder(row: OrderRow, lines: LineRow[]): Order {
  return {
    id: row.id,
    customerId: row.customer_id,
    status: row.status,
    statusReason: row.status_reason,
    total: { amount: Number(row.total_amount), currency: row.currency },
    lines: lines.map((line) => ({
      productId: line.product_id,
      sku: line.sku,
      name: line.name,
      quantity: line.quantity,
      unitPrice: { amount: Number(line.unit_price_amount), currency: row.currency },
    })),
    shippingAddress: row.shipping_address,
    paymentMethod: row.payment_method,
    requestId: row.request_id,
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/** A stable hash of what was asked, so a retried request with the same Idempotency-Key can be told from a new one. */
function requestHash(params: CreateOrderParams): string {
  const canonical = JSON.stringify({
    items: params.items.map((item) => [item.productId, item.quantity]),
    shippingAddress: Object.entries(params.shippingAddress).sort(([a], [b]) => a.localeCompare(b)),
    paymentMethod: params.paymentMethod,
  });
  return createHash("sha256").update(canonical).digest("hex");
}

interface OrdersMethods {
  changeStatus(order: Order, next: OrderStatus, reason: string | null, ctx: Context): Promise<Order | undefined>;
  loadOrders(rows: OrderRow[], from: QueryOptions): Promise<Order[]>;
  findOrder(id: string, owner: string | undefined, from: ReadFrom): Promise<Order>;
  replayIdempotent(customerId: string, key: string, hash: string): Promise<Order | undefined>;
  priceItems(ctx: Context, items: CreateOrderParams["items"]): Promise<{ lines: OrderLine[]; currency: string }>;
  admitOrder(): Promise<void>;
  reannounceStalled(): Promise<number>;
}

/**
 * How long a count of the backlog stands for it. Under a burst every request would otherwise count the same rows
 * again; the orders this node admits meanwhile are added to the count it holds, so a burst cannot slip past the bound
 * between two counts on one node (nodes add only their own: the cluster's bound is approximate by a few orders each).
 */
const BACKLOG_FRESH_MS = 250;
/** Seconds a refused client is told to wait: a few recounts, and about the time a saga takes to move a step. */
const BACKLOG_RETRY_AFTER_S = 1;

/** The last count of orders not yet final, when it was taken, and the count being taken now (shared by callers). */
interface Backlog {
  count: number;
  countedAt: number;
  counting?: Promise<number>;
}

/**
 * The event that starts an order's saga. Its id is the order's own, so when it is sent again (below) every consumer's
 * inbox recognises it.
 */
function orderCreatedEvent(order: Order, correlationId: string) {
  const envelope = createEnvelope("order.created", { order }, { source: "orders", correlationId });
  return { ...envelope, id: deterministicId("order.created", order.id) };
}

/** Orders sent again by one round of `reannounceStalled`; the next round takes the rest. */
const REANNOUNCE_BATCH = 100;

interface Reannouncer {
  timer?: NodeJS.Timeout;
  round?: Promise<void>;
  stopping: boolean;
}

type OrdersState = { backlog: Backlog; reannouncer: Reannouncer };

type OrdersThis = Service<DbSettings> & DbServiceThis & DbMethods & OrdersMethods & OutboxMethods & OrdersState;

const OrdersService: ServiceSchema<DbSettings, DbMethods & OrdersMethods & OutboxMethods, DbServiceThis & OrdersState> =
  {
    name: "orders",
    mixins: [
      outboxMixin(),
      dbMixin({
        service: "orders",
        migrations: orderMigrations,
        readReplica: true,
      }),
    ],

    created(this: OrdersThis) {
      this.backlog = { count: 0, countedAt: 0 };
      this.reannouncer = { stopping: false };
    },

    started(this: OrdersThis) {
      const every = Math.max(50, Math.floor(config().saga.stallAfterMs / 4));
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
      /**
       * Places an order for the calling customer, capturing each product's current price. With an `Idempotency-Key`
       * the same key and body return the first order (200), the same key with another body is 422. Publishes
       * `order.created` through the outbox (written in the order's transaction). `orders:create`.
       */
      create: {
        audit: { entity: "order" },
        rest: "POST /",
        status: 201,
        permissions: ["orders:create"],
        params: {
          items: {
            type: "array",
            min: 1,
            max: 50,
            items: {
              type: "object",
              strict: true,
              props: {
                productId: { type: "uuid" },
                quantity: { type: "number", integer: true, min: 1, max: 1000 },
              },
            },
          },
          shippingAddress: {
            type: "object",
            strict: true,
            props: {
              name: { type: "string", trim: true, min: 1, max: 200 },
              street: { type: "string", trim: true, min: 1, max: 200 },
              city: { type: "string", trim: true, min: 1, max: 100 },
              postalCode: { type: "string", trim: true, min: 1, max: 20 },
              country: { type: "string", pattern: /^[A-Z]{2}$/ },
            },
          },
          paymentMethod: { type: "string", pattern: /^pm_[a-z0-9_]{1,60}$/ },
          $$strict: true,
        },
        async handler(this: OrdersThis, ctx: Context<CreateOrderParams, OrdersMeta>): Promise<Order> {
          const caller = ctx.meta.caller;
          if (caller?.type !== "user")
            throw new ForbiddenError("Orders are placed by customers", { caller: caller?.type });
          const key = ctx.meta.idempotencyKey;
          if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
            throw invalidFields("Idempotency-Key must be 1 to 255 visible ASCII characters", [
              { field: "Idempotency-Key", message: "invalid", type: "idempotencyKey" },
            ]);
          }
          const hash = requestHash(ctx.params);
          // The order this key made before: found, not created, so 200 rather than the declared 201.
          const replay = async () => {
            const replayed = await this.replayIdempotent(caller.id, key!, hash);
            if (replayed) ctx.meta.$statusCode = 200;
            return replayed;
          };
          if (key) {
            const replayed = await replay();
            if (replayed) return replayed;
          }

          await this.admitOrder();
          const { lines, currency } = await this.priceItems(ctx, ctx.params.items);
          const total = lines.reduce((sum, line) => sum + line.quantity * line.unitPrice.amount, 0);
          const id = randomUUID();
          const now = new Date();
          const shippingAddress = storableJson(ctx.params.shippingAddress);
          // The row as the statement below writes it, so the answer, the event and the audit record hold what was
          // written without reading it back.
          const row: OrderRow = {
            id,
            customer_id: caller.id,
            status: "PENDING",
            status_reason: null,
            currency,
            total_amount: String(total),
            shipping_address: JSON.parse(shippingAddress) as ShippingAddress,
            payment_method: ctx.params.paymentMethod,
            request_hash: hash,
            request_id: ctx.requestID ?? id,
            version: 1,
            created_at: now,
            updated_at: now,
          };
          const order = toOrder(
            row,
            lines.map((line) => ({
              order_id: id,
              product_id: line.productId,
              sku: line.sku,
              name: line.name,
              quantity: line.quantity,
              unit_price_amount: String(line.unitPrice.amount),
            })),
          );
          // The order, its lines, the event that announces it and its audit record, in one statement: committed
          // together or not at all, in one round trip. Concurrent requests with one key meet at the unique index: one
          // inserts, the others insert nothing (no lines or rows either: those are joined to what was inserted).
          const outbox = await this.prepareOutbox([orderCreatedEvent(order, ctx.requestID ?? id)], {
            ctx,
            result: order,
          });
          const created = await this.rows<{ id: string }>(
            `WITH created AS (
               INSERT INTO orders (id, customer_id, status, currency, total_amount, shipping_address, payment_method,
                                   idempotency_key, request_hash, request_id, version, created_at, updated_at)
               VALUES ($1, $2, 'PENDING', $3, $4, $5, $6, $7, $8, $9, 1, $10, $10)
               ON CONFLICT (customer_id, idempotency_key) DO NOTHING RETURNING id
             ), lines AS (
               INSERT INTO order_lines (order_id, line_no, product_id, sku, name, quantity, unit_price_amount)
               SELECT created.id, line.*
               FROM created, unnest($11::int[], $12::uuid[], $13::text[], $14::text[], $15::int[], $16::bigint[])
                 AS line(line_no, product_id, sku, name, quantity, unit_price_amount)
             ), announced AS (
               INSERT INTO outbox (id, channel, envelope)
               SELECT outbox_row.* FROM created, ${outboxRowsFrom("$17")}
             )
             SELECT id FROM created`,
            [
              row.id,
              row.customer_id,
              currency,
              total,
              shippingAddress,
              ctx.params.paymentMethod,
              key ?? null,
              hash,
              row.request_id,
              now,
              lines.map((_, index) => index + 1),
              lines.map((line) => line.productId),
              lines.map((line) => line.sku),
              lines.map((line) => line.name),
              lines.map((line) => line.quantity),
              lines.map((line) => line.unitPrice.amount),
              outbox.rows,
            ],
          );
          if (created.length === 0) return (await replay())!;
          outbox.committed();
          // Answered from what was written, not read back: once committed, the order is the client's, and a read
          // failing now (the database going away) must not answer 503 for an order that exists.
          ctx.meta.$location = `/api/orders/${order.id}`;
          return order;
        },
      },

      /** A page of orders, newest first: a customer's own, or everyone's with `orders:read:any`. */
      list: {
        rest: "GET /",
        list: "page",
        permissions: READ,
        params: {
          page: { type: "number", integer: true, positive: true, convert: true, default: 1 },
          pageSize: { type: "number", integer: true, positive: true, max: MAX_PAGE_SIZE, convert: true, default: 20 },
          status: { type: "enum", values: [...ORDER_STATUSES], optional: true },
          customerId: { type: "uuid", optional: true },
          from: { type: "date", convert: true, optional: true },
          to: { type: "date", convert: true, optional: true },
          $$strict: true,
        },
        async handler(
          this: OrdersThis,
          ctx: Context<
            { page: number; pageSize: number; status?: OrderStatus; customerId?: string; from?: Date; to?: Date },
            OrdersMeta
          >,
        ): Promise<OrderPage> {
          const { page, pageSize, status, from, to } = ctx.params;
          const owner = ownerScope(ctx.meta.caller, "orders:read:any");
          const customerId = owner ?? ctx.params.customerId ?? null;
          const filters = `($1::uuid IS NULL OR customer_id = $1) AND ($2::text IS NULL OR status = $2)
          AND ($3::timestamptz IS NULL OR created_at >= $3) AND ($4::timestamptz IS NULL OR created_at < $4)`;
          const bind = [customerId, status ?? null, from ?? null, to ?? null];
          const source = await this.readYourWrites();
          const query = { table: "orders", where: filters, order: "created_at DESC, id", bind, ...source };
          const found = await selectPage<OrderRow, OrderRow>(this.rows, query, page, pageSize, (row) => row);
          return { ...found, rows: await this.loadOrders(found.rows, source) };
        },
      },

      /**
       * One order with its saga (steps and their timeline; null when there is none or the sagas service does not
       * answer): a customer's own only (another's is 404), anyone's with `orders:read:any`.
       */
      get: {
        rest: "GET /:id",
        permissions: READ,
        params: { id: { type: "uuid" }, $$strict: true },
        async handler(this: OrdersThis, ctx: Context<{ id: string }, OrdersMeta>): Promise<OrderWithSaga> {
          const owner = ownerScope(ctx.meta.caller, "orders:read:any");
          const order = await this.findOrder(ctx.params.id, owner, await this.readYourWrites());
          const saga = await this.broker
            .call<Saga | null, object>(
              "sagas.forSubject",
              { definition: "order", subjectId: order.id },
              { ...asSystem(ctx), timeout: 2000, retries: 0 },
            )
            .catch(() => null);
          // A saga ends only after its last step has moved the order: an ended saga beside an unfinished order is a
          // read of the order taken just before that step (or on a lagging replica). Read it again from the primary,
          // so an answer never shows the order behind its saga.
          const sagaEnded = saga?.status === "COMPLETED" || saga?.status === "COMPENSATED";
          if (sagaEnded && !isFinal(order.status)) {
            return { ...(await this.findOrder(order.id, owner, { replica: false })), saga };
          }
          return { ...order, saga };
        },
      },

      /** Cancels an order while it is still PENDING (409 `INVALID_TRANSITION` after). Own orders, or any with `orders:cancel:any`. */
      cancel: {
        audit: { entity: "order" },
        rest: "POST /:id/cancel",
        permissions: CANCEL,
        params: { id: { type: "uuid" }, reason: { type: "string", max: 500, optional: true }, $$strict: true },
        async handler(this: OrdersThis, ctx: Context<{ id: string; reason?: string }, OrdersMeta>): Promise<Order> {
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
        params: {
          id: { type: "uuid" },
          status: { type: "enum", values: [...ORDER_STATUSES] },
          reason: { type: "string", max: 1000, optional: true },
          $$strict: true,
        },
        async handler(this: OrdersThis, ctx: Context<{ id: string; status: OrderStatus; reason?: string }>) {
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
       * Backpressure at intake: refuses a new order (503 OVERLOADED, `Retry-After`) while more orders than
       * ORDERS_MAX_BACKLOG are not yet final, so overload is turned away before anything is written instead of being
       * accepted and left behind. The measure is the orders' own: those PENDING, PAID or SHIPPED are exactly the ones
       * whose saga has not ended, one count on the (status, created_at) index of this service's database, with no call
       * to another service that an overloaded cluster would answer late.
       */
      async admitOrder(this: OrdersThis): Promise<void> {
        const limit = config().orders.maxBacklog;
        const backlog = this.backlog;
        if (Date.now() - backlog.countedAt > BACKLOG_FRESH_MS) {
          backlog.counting ??= this.rows<{ count: string }>(
            "SELECT count(*) AS count FROM orders WHERE status IN ('PENDING', 'PAID', 'SHIPPED')",
          )
            .then(([row]) => {
              backlog.count = Number(row.count);
              backlog.countedAt = Date.now();
              return backlog.count;
            })
            .finally(() => (backlog.counting = undefined));
          await backlog.counting;
        }
        if (backlog.count >= limit) throw new OverloadedError(backlog.count, limit, BACKLOG_RETRY_AFTER_S);
        // Counted as admitted at once, so concurrent requests see it; one that then fails is forgotten at the recount.
        backlog.count += 1;
      },

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
            [config().saga.stallAfterMs, REANNOUNCE_BATCH],
            { transaction },
          );
          const orders = await this.loadOrders(rows, { transaction });
          for (const [index, order] of orders.entries()) {
            const event = orderCreatedEvent(order, rows[index].request_id ?? order.id);
            await this.enqueueEvent(transaction, event, randomUUID());
          }
          if (orders.length > 0)
            this.logger.warn(`Sent order.created again for ${orders.length} order(s) still PENDING`);
          return orders.length;
        });
      },

      async loadOrders(this: OrdersThis, rows: OrderRow[], from: QueryOptions): Promise<Order[]> {
        if (rows.length === 0) return [];
        const lines = await this.rows<LineRow>(
          "SELECT * FROM order_lines WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, line_no",
          [rows.map((row) => row.id)],
          from,
        );
        return rows.map((row) =>
          toOrder(
            row,
            lines.filter((line) => line.order_id === row.id),
          ),
        );
      },

      async findOrder(this: OrdersThis, id: string, owner: string | undefined, from: ReadFrom): Promise<Order> {
        const rows = await this.rows<OrderRow>(
          "SELECT * FROM orders WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2)",
          [id, owner ?? null],
          from,
        );
        if (rows.length === 0) throw new NotFoundError("Order", id);
        return (await this.loadOrders(rows, from))[0];
      },

      /** The order an earlier request with this key created, if any; 422 when that request asked for something else. */
      async replayIdempotent(this: OrdersThis, customerId: string, key: string, hash: string) {
        const [row] = await this.rows<OrderRow>(
          "SELECT * FROM orders WHERE customer_id = $1 AND idempotency_key = $2",
          [customerId, key],
        );
        if (!row) return undefined;
        if (row.request_hash !== hash) {
          throw invalidFields("This Idempotency-Key was used for a different order", [
            { field: "Idempotency-Key", message: "reused with a different body", type: "idempotencyKeyReused" },
          ]);
        }
        return (await this.loadOrders([row], { replica: false }))[0];
      },

      /** Each item's product at its current price; unknown or inactive products and mixed currencies are 422. */
      async priceItems(this: OrdersThis, ctx: Context, items: CreateOrderParams["items"]) {
        const ids = [...new Set(items.map((item) => item.productId))];
        // One call for all lines. A product it does not return does not exist; a failed call (no node hosts products
        // right now) is an outage, not the client's mistake.
        const found = await this.broker.call<Product[], { ids: string[] }>("products.getMany", { ids }, asSystem(ctx));
        const products = new Map(found.map((product) => [product.id, product]));
        const problems: FieldProblem[] = [];
        items.forEach((item, index) => {
          const product = products.get(item.productId);
          if (!product)
            problems.push({
              field: `items[${index}].productId`,
              message: "unknown product",
              type: "unknownProduct",
              actual: item.productId,
            });
          else if (!product.active)
            problems.push({
              field: `items[${index}].productId`,
              message: "product not available",
              type: "inactiveProduct",
              actual: item.productId,
            });
        });
        // Stock is reserved by the saga; an order no stock could ever fill is refused here, before it exists.
        const wanted = new Map<string, number>();
        for (const item of items) wanted.set(item.productId, (wanted.get(item.productId) ?? 0) + item.quantity);
        items.forEach((item, index) => {
          const product = products.get(item.productId);
          if (product?.active && wanted.get(item.productId)! > product.stock)
            problems.push({
              field: `items[${index}].quantity`,
              message: `only ${product.stock} in stock`,
              type: "insufficientStock",
              actual: wanted.get(item.productId),
            });
        });
        const currencies = new Set([...products.values()].filter(Boolean).map((product) => product!.price.currency));
        if (currencies.size > 1)
          problems.push({
            field: "items",
            message: "products in one order must share a currency",
            type: "mixedCurrency",
          });
        if (problems.length > 0) throw invalidFields("The order cannot be placed as asked", problems);
        const lines = items.map((item) => {
          const product = products.get(item.productId)!;
          return {
            productId: product.id,
            sku: product.sku,
            name: product.name,
            quantity: item.quantity,
            unitPrice: product.price,
          };
        });
        return { lines, currency: [...currencies][0] };
      },
    },
  };

export default OrdersService;
