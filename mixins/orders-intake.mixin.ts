/**
 * Placing an order: the `create` action and what it checks before anything is written (the caller's earlier request
 * under the same Idempotency-Key, the backlog bound of backpressure at intake, the products and their prices).
 */
import { randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import type { Order, OrderLine, ShippingAddress } from "../contracts/orders";
import type { Product } from "../contracts/products";
import { ForbiddenError, OverloadedError, invalidFields, type FieldProblem } from "../lib/errors";
import { orderCreatedEvent } from "../lib/order-events";
import { createOrderParams, requestHash, type CreateOrderParams, type OrdersMeta } from "../lib/order-requests";
import { toOrder, type OrderRow } from "../lib/order-rows";
import { outboxRowsFrom } from "../lib/outbox";
import type { ParamsOf } from "../lib/params";
import { asSystem } from "../lib/permissions";
import { storableJson } from "../lib/storable";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";
import type { OrdersReadMethods } from "./orders-reads.mixin";
import type { OutboxMethods } from "./outbox.mixin";

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

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

export interface OrdersIntakeMethods {
  replayIdempotent(customerId: string, key: string, hash: string): Promise<Order | undefined>;
  priceItems(ctx: Context, items: CreateOrderParams["items"]): Promise<{ lines: OrderLine[]; currency: string }>;
  admitOrder(): Promise<void>;
}

interface IntakeState {
  backlog: Backlog;
}

type IntakeThis = Service<DbSettings> &
  DbServiceThis &
  DbMethods &
  OutboxMethods &
  OrdersReadMethods &
  OrdersIntakeMethods &
  IntakeState;

export function ordersIntakeMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, OrdersIntakeMethods, IntakeState, IntakeThis>> = {
    created(this: IntakeThis) {
      this.backlog = { count: 0, countedAt: 0 };
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
        params: createOrderParams,
        async handler(this: IntakeThis, ctx: Context<ParamsOf<typeof createOrderParams>, OrdersMeta>): Promise<Order> {
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
    },

    methods: {
      /**
       * Backpressure at intake: refuses a new order (503 OVERLOADED, `Retry-After`) while more orders than
       * ORDERS_MAX_BACKLOG are not yet final, so overload is turned away before anything is written instead of being
       * accepted and left behind. The measure is the orders' own: those PENDING, PAID or SHIPPED are exactly the ones
       * whose saga has not ended, one count on the (status, created_at) index of this service's database, with no call
       * to another service that an overloaded cluster would answer late.
       */
      async admitOrder(this: IntakeThis): Promise<void> {
        const limit = this.settings.config.orders.maxBacklog;
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

      /** The order an earlier request with this key created, if any; 422 when that request asked for something else. */
      async replayIdempotent(this: IntakeThis, customerId: string, key: string, hash: string) {
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
      async priceItems(this: IntakeThis, ctx: Context, items: CreateOrderParams["items"]) {
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
  return schema as Partial<ServiceSchema>;
}
