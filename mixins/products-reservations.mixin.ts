/**
 * Stock reservations for the order saga (`reserve`, then `release` as its compensation or `commitReservation` when the
 * order completes), once per reservation key (`meta.idempotencyKey`, the saga step's key) like payments: a repeat
 * answers the first outcome. Popular products make these rows hot, so every change is a short transaction of
 * conditional UPDATEs (`stock >= quantity`), rows locked in product id order, with nothing held across calls. Each
 * stock change publishes `product.stockChanged` through the outbox.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { Transaction } from "sequelize";
import type { StockReservation } from "../contracts/products";
import { ConflictError, InsufficientStockError, NotFoundError, invalidFields } from "../lib/errors";
import { createEnvelope } from "../lib/events";
import type { GatewayMeta } from "../lib/gateway-meta";
import { paramsSchema, type ParamsOf } from "../lib/params";
import { toReservation, type ReservationRow, type StockRow } from "../lib/product-rows";
import { perProduct, reservationSources, type ReservationLine } from "../lib/stock-reservation";
import { storableJson } from "../lib/storable";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";
import type { OutboxMethods } from "./outbox.mixin";

/**
 * Per-action fault tolerance of the saga's stock actions. Each is idempotent under its key, so Moleculer may retry
 * a transient database fault before the saga sees it; the bulkhead keeps a burst of orders for one popular product
 * from queueing every database connection behind its row lock.
 */
const STOCK_CALL = {
  // A caller that sets no timeout of its own waits this long (the saga sets its step timeout on every call).
  timeout: 10_000,
  retryPolicy: { enabled: true, retries: 1, delay: 100, maxDelay: 500, factor: 2 },
  bulkhead: { enabled: true, concurrency: 20, maxQueueSize: 500 },
};

const reserveParams = paramsSchema({
  orderId: { type: "uuid" },
  lines: {
    type: "array",
    min: 1,
    max: 100,
    items: {
      type: "object",
      strict: true,
      props: {
        productId: { type: "uuid" },
        quantity: { type: "number", integer: true, positive: true, max: 2_147_483_647 },
      },
    },
  },
  $$strict: true,
});
/** The reservation key (`reserve`'s `meta.idempotencyKey`) that `release` and `commitReservation` act on. */
const reservationKeyParams = paramsSchema({ reservationKey: { type: "string", min: 1, max: 300 }, $$strict: true });

export interface ProductsReservationsMethods {
  reservation(key: string): Promise<ReservationRow | undefined>;
  moveStock(
    ctx: Context,
    lines: ReservationLine[],
    sign: 1 | -1,
    transaction: Transaction,
  ): Promise<ReservationLine | null>;
  answerReserve(row: ReservationRow): StockReservation;
}

type ReservationsThis = Service<DbSettings> & DbServiceThis & DbMethods & OutboxMethods & ProductsReservationsMethods;

export function productsReservationsMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, ProductsReservationsMethods, object, ReservationsThis>> = {
    actions: {
      /**
       * Takes an order's quantities from stock, all lines or none, once per `meta.idempotencyKey`: a repeat answers
       * the first outcome. 422 `INSUFFICIENT_STOCK` when a line cannot be filled (every repeat too), 409 when the key
       * was voided by a release that came first. Emits `product.stockChanged` per product. System only (order saga).
       */
      reserve: {
        audit: { entity: "stockReservation", idParam: "orderId" },
        ...STOCK_CALL,
        params: reserveParams,
        async handler(
          this: ReservationsThis,
          ctx: Context<ParamsOf<typeof reserveParams>, GatewayMeta>,
        ): Promise<StockReservation> {
          const key = ctx.meta.idempotencyKey;
          if (!key) {
            throw invalidFields("A reservation needs an idempotency key", [
              { field: "idempotencyKey", message: "required in meta", type: "required" },
            ]);
          }
          const lines = perProduct(ctx.params.lines);
          let refusal: InsufficientStockError | undefined;
          try {
            const taken = await this.sequelize.transaction(async (transaction) => {
              const [claimed] = await this.rows<ReservationRow>(
                `INSERT INTO stock_reservations (reservation_key, order_id, lines, status) VALUES ($1, $2, $3, 'RESERVED')
                 ON CONFLICT (reservation_key) DO NOTHING RETURNING *`,
                [key, ctx.params.orderId, storableJson(lines)],
                { transaction },
              );
              // A repeat, a concurrent duplicate (or a release that voided the key) got there first: its row is the
              // answer.
              if (!claimed) return undefined;
              const short = await this.moveStock(ctx, lines, -1, transaction);
              if (!short) {
                const reservation = toReservation(claimed);
                await this.enqueueAudit(transaction, ctx, reservation);
                return reservation;
              }
              const [product] = await this.rows<StockRow>(
                "SELECT stock FROM products WHERE id = $1",
                [short.productId],
                {
                  transaction,
                },
              );
              const left = product ? `only ${product.stock} in stock` : "the product is gone";
              // Thrown to roll the claim and the lines already taken back: all lines or none.
              throw new InsufficientStockError(`product ${short.productId}: ${short.quantity} wanted, ${left}`, {
                productId: short.productId,
                wanted: short.quantity,
                available: product?.stock ?? null,
              });
            });
            if (taken) {
              this.logger.info(`Reserved stock for order ${ctx.params.orderId} (${key})`);
              return taken;
            }
          } catch (err) {
            if (!(err instanceof InsufficientStockError)) throw err;
            refusal = err;
            // Kept so a repeat answers the same refusal, even if stock came back meanwhile.
            await this.rows(
              `INSERT INTO stock_reservations (reservation_key, order_id, lines, status, reason)
               VALUES ($1, $2, $3, 'REJECTED', $4) ON CONFLICT (reservation_key) DO NOTHING`,
              [key, ctx.params.orderId, storableJson(lines), (err.data as { reason: string }).reason],
            );
          }
          const row = await this.reservation(key);
          // The refusal as it happened names the product and what was left; a repeat gets it from the row.
          if (refusal && row?.status === "REJECTED") throw refusal;
          return this.answerReserve(row!);
        },
      },

      /**
       * Puts a reservation's stock back, once; with no reservation yet, voids the key so a late reserve is refused.
       * Idempotent: a repeat answers the same. Emits `product.stockChanged` per product. System only (compensation).
       */
      release: {
        audit: { entity: "stockReservation", idParam: "reservationKey" },
        ...STOCK_CALL,
        params: reservationKeyParams,
        async handler(
          this: ReservationsThis,
          ctx: Context<ParamsOf<typeof reservationKeyParams>>,
        ): Promise<StockReservation> {
          const { reservationKey } = ctx.params;
          const released = await this.sequelize.transaction(async (transaction) => {
            // The conditional UPDATE is the once: a concurrent repeat waits for this row, then matches nothing.
            const [releasing] = await this.rows<ReservationRow>(
              `UPDATE stock_reservations SET status = 'RELEASED', updated_at = now()
               WHERE reservation_key = $1 AND status = ANY($2::text[]) RETURNING *`,
              [reservationKey, reservationSources("RELEASED")],
              { transaction },
            );
            if (releasing) {
              await this.moveStock(ctx, releasing.lines, 1, transaction);
              await this.enqueueAudit(transaction, ctx, toReservation(releasing));
              return releasing;
            }
            await this.rows(
              `INSERT INTO stock_reservations (reservation_key, status, reason)
               VALUES ($1, 'VOIDED', 'released before any reserve') ON CONFLICT (reservation_key) DO NOTHING`,
              [reservationKey],
              { transaction },
            );
            return undefined;
          });
          if (released) {
            this.logger.info(`Released the stock of order ${released.order_id} (${reservationKey})`);
            return toReservation(released);
          }
          const row = await this.reservation(reservationKey);
          return toReservation(row!);
        },
      },

      /**
       * Makes a reservation final once its order completed: the stock stays taken. Idempotent; 409 when it was
       * released or refused, 404 when there is none. System only (order saga).
       */
      commitReservation: {
        audit: { entity: "stockReservation", idParam: "reservationKey" },
        ...STOCK_CALL,
        params: reservationKeyParams,
        async handler(
          this: ReservationsThis,
          ctx: Context<ParamsOf<typeof reservationKeyParams>>,
        ): Promise<StockReservation> {
          const { reservationKey } = ctx.params;
          const [committed] = await this.rows<ReservationRow>(
            `UPDATE stock_reservations SET status = 'COMMITTED', updated_at = now()
             WHERE reservation_key = $1 AND status = ANY($2::text[]) RETURNING *`,
            [reservationKey, reservationSources("COMMITTED")],
          );
          if (committed) return toReservation(committed);
          // Committed before (a repeat), released or refused, or never made.
          const row = await this.reservation(reservationKey);
          if (!row) throw new NotFoundError("Stock reservation", reservationKey);
          if (row.status !== "COMMITTED") {
            throw new ConflictError(`The reservation is ${row.status} and cannot be committed`, "CONFLICT", {
              reservationKey,
              status: row.status,
            });
          }
          return toReservation(row);
        },
      },
    },

    methods: {
      async reservation(this: ReservationsThis, key: string) {
        const [row] = await this.rows<ReservationRow>("SELECT * FROM stock_reservations WHERE reservation_key = $1", [
          key,
        ]);
        return row;
      },

      /**
       * Moves each line's quantity out of stock (-1) or back (+1), one short conditional UPDATE per product in id
       * order, with its `product.stockChanged` in the same transaction. Taking stops at the first line stock cannot
       * fill and returns it (the caller rolls back); giving back skips a product deleted since.
       */
      async moveStock(this: ReservationsThis, ctx, lines, sign, transaction) {
        for (const line of perProduct(lines)) {
          const [product] = await this.rows<StockRow>(
            `UPDATE products SET stock = stock + $2, version = version + 1, updated_at = now()
             WHERE id = $1 AND stock + $2 >= 0 RETURNING id, sku, name, stock`,
            [line.productId, sign * line.quantity],
            { transaction },
          );
          if (!product) {
            if (sign < 0) return line;
            continue;
          }
          await this.enqueueEvent(
            transaction,
            createEnvelope(
              "product.stockChanged",
              { product },
              { source: "products", correlationId: ctx.requestID ?? product.id },
            ),
          );
        }
        return null;
      },

      /** The result a reservation key stands for: the reservation, or the refusal it recorded. */
      answerReserve(row: ReservationRow): StockReservation {
        if (row.status === "REJECTED") {
          throw new InsufficientStockError(row.reason ?? "refused", { reservationKey: row.reservation_key });
        }
        if (row.status === "VOIDED") {
          throw new ConflictError("This reservation was voided by a release before it was made", "CONFLICT", {
            reservationKey: row.reservation_key,
          });
        }
        return toReservation(row);
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
