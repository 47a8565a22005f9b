/**
 * products (Service 1, DB 1): the product catalog in its own PostgreSQL database. A stock change publishes
 * `product.stockChanged` through the outbox.
 *
 * Stock is reserved by the order saga (`reserve`, then `release` as its compensation or `commitReservation` when the
 * order completes), once per reservation key (`meta.idempotencyKey`, the saga step's key) like payments: a repeat
 * answers the first outcome. Popular products make these rows hot, so every change is a short transaction of
 * conditional UPDATEs (`stock >= quantity`), rows locked in product id order, with nothing held across calls.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { DataTypes, Op, UniqueConstraintError, type Model, type Transaction, type WhereOptions } from "sequelize";
import { escapeLike } from "../lib/database";
import type { AuditLocals } from "../lib/audit";
import {
  ConflictError,
  InsufficientStockError,
  NotFoundError,
  PreconditionRequiredError,
  invalidFields,
} from "../lib/errors";
import type { GatewayMeta } from "../lib/gateway-meta";
import productMigrations from "../migrations/products";
import type { DbMethods } from "../mixins/db.mixin";
import { entityMixin, type EntityServiceThis, type EntitySettings } from "../mixins/entity.mixin";
import { outboxMixin, type OutboxMethods } from "../mixins/outbox.mixin";
import { createEnvelope } from "../lib/events";
import { perProduct, reservationSources, type ReservationLine, type ReservationStatus } from "../lib/stock-reservation";
import { storableJson } from "../lib/storable";
import type { Price, Product, ProductPage, StockReservation } from "../contracts/products";

export interface ListProductsParams {
  page: number;
  pageSize: number;
  sort?: string;
  search?: string;
  active?: boolean;
  currency?: string;
  minPrice?: number;
  maxPrice?: number;
  inStock?: boolean;
}

export type UpdateProductParams = Partial<CreateProductParams> & { id: string; version?: number };

export interface CreateProductParams {
  sku: string;
  name: string;
  description?: string;
  price: Price;
  stock: number;
  active: boolean;
}

export interface ReserveParams {
  orderId: string;
  lines: ReservationLine[];
}

interface ReservationRow {
  reservation_key: string;
  order_id: string | null;
  lines: ReservationLine[];
  status: ReservationStatus;
  reason: string | null;
  created_at: Date;
  updated_at: Date;
}

interface StockRow {
  id: string;
  sku: string;
  name: string;
  stock: number;
}

interface ProductRow {
  id: string;
  sku: string;
  name: string;
  description: string;
  priceAmount: string | number;
  currency: string;
  stock: number;
  active: boolean;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export const MAX_PAGE_SIZE = 100;

/** Sortable fields as clients name them, mapped to model attributes; anything else is rejected by validation. */
const SORT_FIELDS: Record<string, string> = {
  name: "name",
  sku: "sku",
  price: "priceAmount",
  stock: "stock",
  createdAt: "createdAt",
  updatedAt: "updatedAt",
};
const SORT_VALUES = Object.keys(SORT_FIELDS).flatMap((field) => [field, `-${field}`]);

/** The writable fields and their rules; create and PUT require them (or their defaults), PATCH takes any of them. */
const PRODUCT_FIELDS = {
  sku: { type: "string", trim: true, pattern: /^[A-Za-z0-9._-]{1,64}$/ },
  name: { type: "string", trim: true, min: 1, max: 200 },
  description: { type: "string", max: 5000, default: "" },
  price: {
    type: "object",
    strict: true,
    props: {
      amount: { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER },
      currency: { type: "string", pattern: /^[A-Z]{3}$/ },
    },
  },
  stock: { type: "number", integer: true, min: 0, max: 2_147_483_647, default: 0 },
  active: { type: "boolean", default: true },
} as const;

const OPTIONAL_PRODUCT_FIELDS = Object.fromEntries(
  Object.entries(PRODUCT_FIELDS).map(([name, rule]) => {
    const { default: _default, ...withoutDefault } = rule as Record<string, unknown>;
    return [name, { ...withoutDefault, optional: true }];
  }),
);

const VERSION = { type: "number", integer: true, min: 0, convert: true, optional: true } as const;

/** The version an update is based on: `If-Match` (`"3"` or `3`) or the body's `version`; 428 when neither is given. */
function expectedVersion(ctx: Context<{ version?: number }, GatewayMeta>): number {
  const header = ctx.meta.ifMatch?.replace(/^W\//, "").replace(/"/g, "").trim();
  const fromHeader = header !== undefined && header !== "" ? Number(header) : undefined;
  if (fromHeader !== undefined && !Number.isInteger(fromHeader)) {
    throw invalidFields("If-Match must carry the version number", [
      { field: "If-Match", message: "not a version number", type: "version", actual: ctx.meta.ifMatch },
    ]);
  }
  const version = fromHeader ?? ctx.params.version;
  if (version === undefined) {
    throw new PreconditionRequiredError("Send the version you are updating, as If-Match or a version field");
  }
  return version;
}

/** Moleculer-web answers with these headers: the entity's version as its ETag. */
function withETag(ctx: Context<unknown, GatewayMeta>, product: Product): Product {
  ctx.meta.$responseHeaders = { ...ctx.meta.$responseHeaders, ETag: `"${product.version}"` };
  return product;
}

const duplicateSku = (sku: string) =>
  new ConflictError(`A product with sku ${sku} exists`, "DUPLICATE", { field: "sku", value: sku });

function toProduct(model: Model): Product {
  return productOf(model.get({ plain: true }) as ProductRow);
}

/** A product from its row as a `raw` read answers it: reads that only answer rows build no model instances. */
function productOf(row: ProductRow): Product {
  return {
    id: row.id,
    sku: row.sku,
    name: row.name,
    description: row.description,
    price: { amount: Number(row.priceAmount), currency: row.currency },
    stock: row.stock,
    active: row.active,
    version: row.version,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

function toReservation(row: ReservationRow): StockReservation {
  return {
    key: row.reservation_key,
    orderId: row.order_id,
    lines: row.lines,
    status: row.status,
    reason: row.reason,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

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

const RESERVATION_KEY = { type: "string", min: 1, max: 300 } as const;

type ProductsThis = Service<EntitySettings> & EntityServiceThis & DbMethods & ProductsMethods & OutboxMethods;

interface ProductsMethods {
  updateProduct(ctx: Context<UpdateProductParams, GatewayMeta>): Promise<Product>;
  explainMissedWrite(id: string): Promise<never>;
  reservation(key: string): Promise<ReservationRow | undefined>;
  moveStock(
    ctx: Context,
    lines: ReservationLine[],
    sign: 1 | -1,
    transaction: Transaction,
  ): Promise<ReservationLine | null>;
  answerReserve(row: ReservationRow): StockReservation;
}

const ProductsService: ServiceSchema<EntitySettings, DbMethods & ProductsMethods & OutboxMethods, EntityServiceThis> = {
  name: "products",
  mixins: [
    outboxMixin(),
    entityMixin({
      service: "products",
      migrations: productMigrations,
      model: {
        name: "product",
        define: {
          id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
          sku: { type: DataTypes.STRING(64), allowNull: false },
          name: { type: DataTypes.STRING(200), allowNull: false },
          description: { type: DataTypes.TEXT, allowNull: false, defaultValue: "" },
          priceAmount: { type: DataTypes.BIGINT, allowNull: false },
          currency: { type: DataTypes.CHAR(3), allowNull: false },
          stock: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
          active: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
        },
        options: { tableName: "products", underscored: true, timestamps: true, version: true },
      },
    }),
  ],

  actions: {
    /**
     * A page of products, sorted on a whitelisted field, filtered by a text search over sku, name and description and
     * by `active`, `currency`, price range and `inStock`. Public.
     */
    list: {
      rest: "GET /",
      list: "page",
      permissions: "public",
      params: {
        page: { type: "number", integer: true, positive: true, convert: true, default: 1 },
        pageSize: { type: "number", integer: true, positive: true, max: MAX_PAGE_SIZE, convert: true, default: 20 },
        sort: { type: "enum", values: SORT_VALUES, optional: true },
        search: { type: "string", trim: true, max: 100, optional: true },
        active: { type: "boolean", convert: true, optional: true },
        currency: { type: "string", pattern: /^[A-Z]{3}$/, optional: true },
        minPrice: { type: "number", integer: true, min: 0, convert: true, optional: true },
        maxPrice: { type: "number", integer: true, min: 0, convert: true, optional: true },
        inStock: { type: "boolean", convert: true, optional: true },
        $$strict: true,
      },
      async handler(ctx: Context<ListProductsParams>): Promise<ProductPage> {
        const { page, pageSize, sort = "name", search, active, currency, minPrice, maxPrice, inStock } = ctx.params;
        const direction = sort.startsWith("-") ? "DESC" : "ASC";
        const field = SORT_FIELDS[sort.replace(/^-/, "")];
        const conditions: WhereOptions[] = [];
        if (search) {
          conditions.push({
            [Op.or]: ["sku", "name", "description"].map((column) => ({
              [column]: { [Op.iLike]: `%${escapeLike(search)}%` },
            })),
          });
        }
        if (active !== undefined) conditions.push({ active });
        if (currency) conditions.push({ currency });
        if (minPrice !== undefined) conditions.push({ priceAmount: { [Op.gte]: minPrice } });
        if (maxPrice !== undefined) conditions.push({ priceAmount: { [Op.lte]: maxPrice } });
        if (inStock !== undefined) conditions.push({ stock: inStock ? { [Op.gt]: 0 } : 0 });
        const where: WhereOptions = { [Op.and]: conditions };
        // The page and the total in one statement: the window's count is taken before LIMIT applies.
        const rows = (await this.model.findAll({
          raw: true,
          where,
          attributes: { include: [[this.sequelize.literal("count(*) OVER ()"), "fullCount"]] },
          order: [
            [field, direction],
            ["id", "ASC"],
          ],
          limit: pageSize,
          offset: (page - 1) * pageSize,
        })) as unknown as (ProductRow & { fullCount: string })[];
        // A page past the end has no row to carry the total: only then is it counted apart.
        const total = rows.length > 0 ? Number(rows[0].fullCount) : page > 1 ? await this.model.count({ where }) : 0;
        return { rows: rows.map(productOf), total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
      },
    },

    /** One product by id, its version as the ETag; 404 when there is none. Public. */
    get: {
      rest: "GET /:id",
      permissions: "public",
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(ctx: Context<{ id: string }, GatewayMeta>): Promise<Product> {
        const found = await this.model.findByPk(ctx.params.id);
        if (!found) throw new NotFoundError("Product", ctx.params.id);
        return withETag(ctx, toProduct(found));
      },
    },

    /**
     * The products of a set of ids, in one statement (those that exist; an unknown id is left out). System only: the
     * order service prices all lines of an order with one call.
     */
    getMany: {
      params: { ids: { type: "array", min: 1, max: 100, unique: true, items: { type: "uuid" } }, $$strict: true },
      async handler(ctx: Context<{ ids: string[] }>): Promise<Product[]> {
        const found = await this.model.findAll({ raw: true, where: { id: { [Op.in]: ctx.params.ids } } });
        return (found as unknown as ProductRow[]).map(productOf);
      },
    },

    /** Adds a product; 409 `DUPLICATE` when the sku is taken. `products:write`. */
    create: {
      audit: { entity: "product" },
      rest: "POST /",
      status: 201,
      permissions: ["products:write"],
      params: { ...PRODUCT_FIELDS, $$strict: true },
      async handler(ctx: Context<CreateProductParams, GatewayMeta>): Promise<Product> {
        const { price, ...fields } = ctx.params;
        try {
          const created = await this.model.create({ ...fields, priceAmount: price.amount, currency: price.currency });
          const product = toProduct(created);
          ctx.meta.$location = `/api/products/${product.id}`;
          return withETag(ctx, product);
        } catch (err) {
          if (err instanceof UniqueConstraintError) throw duplicateSku(fields.sku);
          throw err;
        }
      },
    },

    /** Replaces a product's fields, based on the version the client saw (409 `STALE_VERSION` if it moved). `products:write`. */
    replace: {
      audit: { entity: "product" },
      rest: "PUT /:id",
      permissions: ["products:write"],
      params: { id: { type: "uuid" }, ...PRODUCT_FIELDS, version: VERSION, $$strict: true },
      handler(ctx: Context<UpdateProductParams, GatewayMeta>): Promise<Product> {
        return this.updateProduct(ctx);
      },
    },

    /** Changes some of a product's fields, based on the version the client saw. `products:write`. */
    update: {
      audit: { entity: "product" },
      rest: "PATCH /:id",
      permissions: ["products:write"],
      params: { id: { type: "uuid" }, ...OPTIONAL_PRODUCT_FIELDS, version: VERSION, $$strict: true },
      handler(ctx: Context<UpdateProductParams, GatewayMeta>): Promise<Product> {
        return this.updateProduct(ctx);
      },
    },

    /** Deletes a product; with If-Match or `version`, only if it is still that version. 204. `products:write`. */
    remove: {
      audit: { entity: "product" },
      rest: "DELETE /:id",
      status: 204,
      permissions: ["products:write"],
      params: { id: { type: "uuid" }, version: VERSION, $$strict: true },
      async handler(ctx: Context<{ id: string; version?: number }, GatewayMeta>): Promise<void> {
        const conditional = ctx.meta.ifMatch !== undefined || ctx.params.version !== undefined;
        const where = conditional ? { id: ctx.params.id, version: expectedVersion(ctx) } : { id: ctx.params.id };
        const deleted = await this.sequelize.transaction(async (transaction) => {
          const before = await this.model.findOne({ where, transaction, lock: transaction.LOCK.UPDATE });
          if (!before) return 0;
          (ctx.locals as AuditLocals).auditBefore = toProduct(before);
          return this.model.destroy({ where, transaction });
        });
        if (deleted === 0) await this.explainMissedWrite(ctx.params.id);
      },
    },

    /**
     * Takes an order's quantities from stock, all lines or none, once per `meta.idempotencyKey`: a repeat answers
     * the first outcome. 422 `INSUFFICIENT_STOCK` when a line cannot be filled (every repeat too), 409 when the key
     * was voided by a release that came first. Emits `product.stockChanged` per product. System only (order saga).
     */
    reserve: {
      audit: { entity: "stockReservation", idParam: "orderId" },
      ...STOCK_CALL,
      params: {
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
      },
      async handler(this: ProductsThis, ctx: Context<ReserveParams, GatewayMeta>): Promise<StockReservation> {
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
            // A repeat, a concurrent duplicate (or a release that voided the key) got there first: its row is the answer.
            if (!claimed) return undefined;
            const short = await this.moveStock(ctx, lines, -1, transaction);
            if (!short) {
              const reservation = toReservation(claimed);
              await this.enqueueAudit(transaction, ctx, reservation);
              return reservation;
            }
            const [product] = await this.rows<StockRow>("SELECT stock FROM products WHERE id = $1", [short.productId], {
              transaction,
            });
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
      params: { reservationKey: RESERVATION_KEY, $$strict: true },
      async handler(this: ProductsThis, ctx: Context<{ reservationKey: string }>): Promise<StockReservation> {
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
      params: { reservationKey: RESERVATION_KEY, $$strict: true },
      async handler(this: ProductsThis, ctx: Context<{ reservationKey: string }>): Promise<StockReservation> {
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
    async reservation(this: ProductsThis, key: string) {
      const [row] = await this.rows<ReservationRow>("SELECT * FROM stock_reservations WHERE reservation_key = $1", [
        key,
      ]);
      return row;
    },

    /**
     * Moves each line's quantity out of stock (-1) or back (+1), one short conditional UPDATE per product in id order,
     * with its `product.stockChanged` in the same transaction. Taking stops at the first line stock cannot fill and
     * returns it (the caller rolls back); giving back skips a product deleted since.
     */
    async moveStock(this: ProductsThis, ctx, lines, sign, transaction) {
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

    /** One conditional UPDATE: it changes the row only if its version is the expected one, and bumps the version. */
    async updateProduct(ctx: Context<UpdateProductParams, GatewayMeta>): Promise<Product> {
      const version = expectedVersion(ctx);
      const { id, price, version: _bodyVersion, ...fields } = ctx.params;
      const values = {
        ...fields,
        ...(price ? { priceAmount: price.amount, currency: price.currency } : {}),
        version: this.sequelize.literal("version + 1"),
      };
      try {
        const updated = await this.sequelize.transaction(async (transaction) => {
          // The row at the expected version is what a successful conditional UPDATE changes (for the audit trail).
          const before = await this.model.findOne({ where: { id, version }, transaction });
          const [count, rows] = await this.model.update(values, {
            where: { id, version },
            returning: true,
            transaction,
          });
          if (count === 0) return undefined;
          const previous = before ? toProduct(before) : undefined;
          if (previous) (ctx.locals as AuditLocals).auditBefore = previous;
          const product = toProduct(rows[0]);
          // Committed with the change or not at all: exec's rules (low stock) react to it. Only a change of the stock
          // is one: an edit that sends the stock it already had (a form sending every field) would re-fire them.
          if (fields.stock !== undefined && fields.stock !== previous?.stock) {
            const { sku, name, stock } = product;
            await this.enqueueEvent(
              transaction,
              createEnvelope(
                "product.stockChanged",
                { product: { id, sku, name, stock } },
                { source: "products", correlationId: ctx.requestID ?? id },
              ),
            );
          }
          return product;
        });
        if (!updated) return this.explainMissedWrite(id);
        return withETag(ctx, updated);
      } catch (err) {
        if (err instanceof UniqueConstraintError) throw duplicateSku(fields.sku ?? "");
        throw err;
      }
    },

    /** After a conditional write changed nothing: 404 if the product is gone, else 409 with its current version. */
    async explainMissedWrite(id: string): Promise<never> {
      const current = await this.model.findByPk(id);
      if (!current) throw new NotFoundError("Product", id);
      const currentVersion = (current.get({ plain: true }) as ProductRow).version;
      throw new ConflictError("The product changed since you read it", "STALE_VERSION", { id, currentVersion });
    },
  },
};

export default ProductsService;
